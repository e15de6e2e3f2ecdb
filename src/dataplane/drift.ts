// Drift: what changed in podwall's own chains, jumps and sets since podwall last wrote them. Pure.
//
// Three sources feed the watcher (drift-watch.ts), cheapest first:
//   - `nft monitor` (nft backend): every ruleset transaction, printed as its rule/chain/table lines
//     followed by `# new generation N by process PID (name)`. A transaction by a process podwall did
//     not start that touches INPUT/FORWARD/OUTPUT or an owned chain of a managed family is drift.
//   - `ipset list -t` (every tick): the set headers only — existence, type, number of entries —
//     compared with what podwall last wrote (ipset has no events).
//   - a full read (`iptables-save -t filter`, `ipset save`; legacy backend every tick, otherwise now
//     and then): every owned chain rule by rule, the jumps and their positions, every member.
// None of them decides what to write: drift only triggers a resync, which reads the state again until
// two reads agree (never acting on a torn read) and writes the difference.
import type { Family } from '../cluster/model.js';
import { memberKeys, emptyFamilyState, sameChain, type FamilyState, type SetState } from './diff.js';
import { BUILTIN_HOOKS, isOwnedChain, isOwnedSet } from './names.js';

// ---------------------------------------------------------------------------------------------
// nft monitor

export interface MonitorBatch {
  /** The rule/chain/table lines of one transaction. */
  lines: string[];
  generation?: number;
  pid?: number;
  process?: string;
}

const GENERATION = /^# new generation (\d+) by process (\d+) \((.*)\)\s*$/;

/** Splits `nft monitor` output into transactions (its lines arrive in arbitrary chunks). */
export class MonitorParser {
  private partial = '';
  private lines: string[] = [];

  push(chunk: string): MonitorBatch[] {
    const text = this.partial + chunk;
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    const out: MonitorBatch[] = [];
    for (const raw of parts) {
      const line = raw.trimEnd();
      if (line === '') continue;
      const g = GENERATION.exec(line);
      if (g) {
        out.push({ lines: this.lines, generation: Number(g[1]), pid: Number(g[2]), process: g[3]! });
        this.lines = [];
      } else if (!line.startsWith('#')) this.lines.push(line);
    }
    return out;
  }
}

const FAMILY_TABLE: Record<Family, string> = { ipv4: 'ip filter', ipv6: 'ip6 filter' };
const OBJECT_LINE = /^(add|insert|replace|delete|flush|destroy|reset) (rule|chain|table) (ip6?|inet|arp|bridge|netdev) (\S+)(?: (\S+))?/;

/**
 * The lines of a transaction that touch what podwall depends on in a managed family's filter table:
 * a built-in hook chain (a rule inserted before podwall's jump, the jump deleted), an owned chain, or
 * the table itself. Empty when the transaction is none of podwall's business.
 */
export function relevantChanges(batch: MonitorBatch, families: readonly Family[]): string[] {
  const tables = new Set(families.map((f) => FAMILY_TABLE[f]));
  const out: string[] = [];
  for (const line of batch.lines) {
    const m = OBJECT_LINE.exec(line);
    if (!m) continue;
    const [, , what, fam, table, chain] = m;
    if (!tables.has(`${fam} ${table}`)) continue;
    if (what === 'table' || chain === undefined || (BUILTIN_HOOKS as readonly string[]).includes(chain) || isOwnedChain(chain)) out.push(line);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// ipset list -t

export interface SetHeader {
  name: string;
  type: string;
  family?: string;
  entries: number;
}

/** Parses `ipset list -t` (headers only, no members). */
export function parseIpsetTerse(text: string): Map<string, SetHeader> {
  const out = new Map<string, SetHeader>();
  let cur: Partial<SetHeader> & { name?: string } = {};
  const flush = () => {
    if (cur.name !== undefined) out.set(cur.name, { name: cur.name, type: cur.type ?? '', entries: cur.entries ?? 0, ...(cur.family ? { family: cur.family } : {}) });
    cur = {};
  };
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const key = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    if (key === 'Name') {
      flush();
      cur.name = value;
    } else if (key === 'Type') cur.type = value;
    else if (key === 'Header') {
      const f = /(?:^|\s)family (\S+)/.exec(value);
      if (f) cur.family = f[1]!;
    } else if (key === 'Number of entries') cur.entries = Number(value);
  }
  flush();
  return out;
}

const familyOfSet = (f: Family): string => (f === 'ipv6' ? 'inet6' : 'inet');

/** What differs between the owned sets podwall last wrote and the headers the kernel has. */
export function setHeaderDrift(expected: SetState, live: ReadonlyMap<string, SetHeader>, families: readonly Family[]): string[] {
  const fams = new Set(families.map(familyOfSet));
  const out: string[] = [];
  for (const [name, s] of expected) {
    const h = live.get(name);
    if (!h) out.push(`set ${name} is gone`);
    else if (h.type !== s.type) out.push(`set ${name} is ${h.type}, not ${s.type}`);
    else if (h.entries !== memberKeys(s).size) out.push(`set ${name} has ${h.entries} entries, not ${memberKeys(s).size}`);
  }
  for (const [name, h] of live) {
    if (expected.has(name) || !isOwnedSet(name) || (h.family !== undefined && !fams.has(h.family))) continue;
    out.push(`set ${name} appeared`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// full reads

/** What differs, chain by chain and jump by jump, between the expected and the live owned state. */
export function familyDrift(family: Family, expected: FamilyState | undefined, live: FamilyState | undefined): string[] {
  const exp = expected ?? emptyFamilyState();
  const lv = live ?? emptyFamilyState();
  const out: string[] = [];
  for (const name of new Set([...exp.chains.keys(), ...lv.chains.keys()])) {
    const a = exp.chains.get(name);
    const b = lv.chains.get(name);
    if (!b) out.push(`${family} chain ${name} is gone`);
    else if (!a) out.push(`${family} chain ${name} appeared`);
    else if (!sameChain(a, b)) out.push(`${family} chain ${name} changed (${a.rules.length} rules expected, ${b.rules.length} found)`);
  }
  for (const hook of BUILTIN_HOOKS) {
    const a = exp.jumps.filter((j) => j.chain === hook);
    const b = lv.jumps.filter((j) => j.chain === hook);
    const same = a.length === b.length && a.every((j, i) => j.position === b[i]!.position && j.rule.args.join('\u0000') === b[i]!.rule.args.join('\u0000'));
    if (!same) out.push(`${family} ${hook}: podwall's jump ${b.length === 0 ? 'is gone' : `is at ${b.map((j) => j.position).join(',')}, not ${a.map((j) => j.position).join(',') || 'absent'}`}`);
  }
  return out;
}

/** What differs between the expected and the live owned sets, member by member. */
export function setDrift(expected: SetState, live: SetState): string[] {
  const out: string[] = [];
  for (const name of new Set([...expected.keys(), ...live.keys()])) {
    const a = expected.get(name);
    const b = live.get(name);
    if (!b) out.push(`set ${name} is gone`);
    else if (!a) out.push(`set ${name} appeared`);
    else if (a.type !== b.type) out.push(`set ${name} is ${b.type}, not ${a.type}`);
    else {
      const ka = memberKeys(a);
      const kb = memberKeys(b);
      const extra = [...kb].filter((k) => !ka.has(k));
      const missing = [...ka].filter((k) => !kb.has(k));
      if (extra.length || missing.length) out.push(`set ${name}: ${extra.length ? `${extra.length} member(s) added (${extra.slice(0, 3).join(', ')})` : ''}${extra.length && missing.length ? ', ' : ''}${missing.length ? `${missing.length} removed (${missing.slice(0, 3).join(', ')})` : ''}`);
    }
  }
  return out;
}
