// The kernel floor of a change: the same net effect as podwall's apply, written as the smallest
// transaction the tools allow, and measured on the same table in the same run. The benchmark reports
// podwall's kernel time per event beside it.
//
// From the state before (S0) to the state after (S1), per family:
//   ipset restore (before)  sets created with their members, member adds and dels — one process
//   iptables-restore --noflush   new chains (`:N` + `-A`), changed chains edited rule by rule
//                           (`-D CHAIN n` by number, `-I CHAIN n rule`) or rewritten when that is
//                           shorter, removed chains `-F` + `-X` — one process
//   ipset restore (after)   stale sets destroyed — only when there are any
// No ordering for safety (podwall adds pods to podwall-programmed only after their chain is in place;
// the floor does not care), no read-back, no retries: a lower bound, not an alternative.
import type { Family } from '../cluster/model.js';
import type { IptChain, IptRule } from '../iptables/model.js';
import { formatRule, writeIpsetRestore, type IpsetOp } from '../iptables/write.js';
import { memberKeys, type FamilyState, type SetState } from '../dataplane/diff.js';
import { setOptions } from '../dataplane/ipset.js';
import type { Runner } from '../dataplane/exec.js';

export interface StateSnapshot {
  families: ReadonlyMap<Family, FamilyState>;
  sets: SetState;
}

export interface FloorPayloads {
  ipsetBefore: string;
  iptables: Partial<Record<Family, string>>;
  ipsetAfter: string;
}

const key = (r: IptRule): string => r.args.join('\u0000');

/** `-D`/`-I` by number turning `from` into `to` (longest common subsequence kept), or a rewrite when shorter. */
function chainEdit(name: string, from: IptChain, to: IptChain): string[] {
  const a = from.rules.map(key);
  const b = to.rules.map(key);
  // LCS by dynamic programming: chains are small (a pod chain, a tree leaf, a policy chain).
  const n = a.length;
  const m = b.length;
  if (n * m > 4_000_000) return rewrite(name, to);
  const dp: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) dp[i]![j] = a[i] === b[j] ? dp[i + 1]![j + 1]! + 1 : Math.max(dp[i + 1]![j]!, dp[i]![j + 1]!);
  const keptA = new Set<number>();
  const keptB = new Set<number>();
  for (let i = 0, j = 0; i < n && j < m; ) {
    if (a[i] === b[j]) {
      keptA.add(i++);
      keptB.add(j++);
    } else if (dp[i + 1]![j]! >= dp[i]![j + 1]!) i++;
    else j++;
  }
  const lines: string[] = [];
  // Deletes by number from the end, so the numbers stay valid; then inserts at their final positions.
  for (let i = n - 1; i >= 0; i--) if (!keptA.has(i)) lines.push(`-D ${name} ${i + 1}`);
  for (let j = 0; j < m; j++) if (!keptB.has(j)) lines.push(formatRule(name, to.rules[j]!).replace(/^-A (\S+)/, `-I $1 ${j + 1}`));
  const re = rewrite(name, to);
  return lines.length <= re.length ? lines : re;
}

function rewrite(name: string, to: IptChain): string[] {
  return [`:${name} - [0:0]`, ...to.rules.map((r) => formatRule(name, r))];
}

/** The iptables-restore --noflush payload of the minimal S0 → S1 change of one family ('' when none). */
export function iptablesFloor(from: FamilyState, to: FamilyState): string {
  const declare: string[] = [];
  const edits: string[] = [];
  const appends: string[] = [];
  const removes: string[] = [];
  for (const [name, c] of to.chains) {
    const old = from.chains.get(name);
    if (!old) {
      declare.push(`:${name} - [0:0]`);
      for (const r of c.rules) appends.push(formatRule(name, r));
    } else if (old.rules !== c.rules && (old.rules.length !== c.rules.length || old.rules.some((r, i) => key(r) !== key(c.rules[i]!)))) {
      const e = chainEdit(name, old, c);
      for (const l of e) (l.startsWith(':') ? declare : l.startsWith('-A') ? appends : edits).push(l);
    }
  }
  for (const name of from.chains.keys()) if (!to.chains.has(name)) removes.push(name);
  if (!declare.length && !edits.length && !appends.length && !removes.length) return '';
  return ['*filter', ...declare, ...edits, ...appends, ...removes.map((n) => `-F ${n}`), ...removes.map((n) => `-X ${n}`), 'COMMIT', ''].join('\n');
}

/** The ipset payloads of the minimal S0 → S1 change: creates and member changes, then destroys. */
export function ipsetFloor(from: SetState, to: SetState): { before: string; after: string } {
  const before: IpsetOp[] = [];
  const after: IpsetOp[] = [];
  for (const [name, s] of to) {
    const old = from.get(name);
    const want = memberKeys(s);
    if (!old) {
      before.push({ op: 'create', name, type: s.type, family: s.family, options: setOptions(want.size) });
      for (const k of want) before.push(addOp(name, k));
      continue;
    }
    if (old.members === s.members) continue;
    const have = memberKeys(old);
    for (const k of have) if (!want.has(k)) before.push({ op: 'del', name, entry: k.replace(/ nomatch$/, ''), exist: true });
    for (const k of want) if (!have.has(k)) before.push(addOp(name, k));
  }
  for (const name of from.keys()) if (!to.has(name)) after.push({ op: 'destroy', name });
  return { before: writeIpsetRestore(before), after: writeIpsetRestore(after) };
}

function addOp(name: string, k: string): IpsetOp {
  return k.endsWith(' nomatch') ? { op: 'add', name, entry: k.slice(0, -8), nomatch: true, exist: true } : { op: 'add', name, entry: k, exist: true };
}

export function floorPayloads(from: StateSnapshot, to: StateSnapshot): FloorPayloads {
  const iptables: FloorPayloads['iptables'] = {};
  for (const [family, st] of to.families) {
    const text = iptablesFloor(from.families.get(family) ?? { chains: new Map(), jumps: [], foreignRefs: [] }, st);
    if (text) iptables[family] = text;
  }
  const sets = ipsetFloor(from.sets, to.sets);
  return { ipsetBefore: sets.before, iptables, ipsetAfter: sets.after };
}

/** Runs the floor's commands in order; returns the milliseconds they took (spawn to exit, as podwall's timings). */
export async function runFloor(run: Runner, p: FloorPayloads, tools: { restore: Record<Family, string>; ipset: string }): Promise<number> {
  let ms = 0;
  const step = async (cmd: string, args: string[], input: string) => {
    const t0 = performance.now();
    const r = await run(cmd, args, input);
    ms += performance.now() - t0;
    if (r.code !== 0) throw new Error(`floor: ${cmd} failed: ${r.stderr.trim().split('\n').slice(0, 2).join(' | ')}`);
  };
  if (p.ipsetBefore) await step(tools.ipset, ['restore'], p.ipsetBefore);
  for (const [family, text] of Object.entries(p.iptables) as [Family, string][]) await step(tools.restore[family], ['--noflush', '--wait'], text);
  if (p.ipsetAfter) await step(tools.ipset, ['restore'], p.ipsetAfter);
  return ms;
}

/** A copy of the dataplane's view that later applies do not change (they replace entries, never mutate them). */
export function snapshotOf(s: { families: ReadonlyMap<Family, FamilyState>; sets: SetState }): StateSnapshot {
  return { families: new Map(s.families), sets: new Map(s.sets) };
}

