// Desired vs current (last applied, or read back from the kernel): what to write. Pure.
//
// Only podwall-owned objects are considered (names.ts: isOwnedChain / isOwnedSet); everything else
// in the filter table and in the ipset list is never rewritten, flushed or destroyed.
import type { Family } from '../cluster/model.js';
import type { Ipset, IpsetMember, IptChain, IptRule } from '../iptables/model.js';
import { parseIpsetSave, parseIptablesSave } from '../iptables/parse.js';
import type { IpsetOp, RestoreTable } from '../iptables/write.js';
import { canonicalMember, isSortedCanonical, setOptions, maxelemFor } from './ipset.js';
import { BUILTIN_HOOKS, ISOLATED_SET, PROGRAMMED_SET, TMP_SET_PREFIX, isOwnedChain, isOwnedSet, tmpSetName, type BuiltinHook } from './names.js';
import type { Desired, JumpRule } from './render.js';

/** The podwall-owned part of one family's filter table. */
export interface FamilyState {
  chains: Map<string, IptChain>;
  /** Rules of INPUT/FORWARD/OUTPUT that target an owned chain, with their 1-based position. */
  jumps: { chain: BuiltinHook; position: number; rule: IptRule }[];
  /** Rules of other foreign chains that target an owned chain (kept; they pin their target). */
  foreignRefs: { chain: string; rule: IptRule }[];
}

/** Owned sets by name. */
export type SetState = Map<string, Ipset>;

export function emptyFamilyState(): FamilyState {
  return { chains: new Map(), jumps: [], foreignRefs: [] };
}

function target(rule: IptRule): string | undefined {
  const a = rule.args;
  for (let i = 0; i < a.length - 1; i++) if (a[i] === '-j' || a[i] === '-g') return a[i + 1];
  return undefined;
}

/** The owned part of an `iptables-save` (any tables; only filter is read). */
export function familyStateFromSave(text: string): FamilyState {
  const filter = parseIptablesSave(text).tables.find((t) => t.name === 'filter');
  const st = emptyFamilyState();
  if (!filter) return st;
  for (const c of filter.chains) {
    if (isOwnedChain(c.name)) {
      st.chains.set(c.name, { name: c.name, policy: '-', rules: c.rules.map((r) => ({ args: [...r.args] })) });
      continue;
    }
    c.rules.forEach((r, i) => {
      const t = target(r);
      if (t === undefined || !isOwnedChain(t)) return;
      if ((BUILTIN_HOOKS as readonly string[]).includes(c.name)) st.jumps.push({ chain: c.name as BuiltinHook, position: i + 1, rule: { args: [...r.args] } });
      else st.foreignRefs.push({ chain: c.name, rule: { args: [...r.args] } });
    });
  }
  return st;
}

/** The owned sets of the given families in an `ipset save`. */
export function setStateFromSave(text: string, families: readonly Family[]): SetState {
  const fams = new Set(families.map((f) => (f === 'ipv6' ? 'inet6' : 'inet')));
  const out: SetState = new Map();
  for (const s of parseIpsetSave(text)) if (isOwnedSet(s.name) && fams.has(s.family)) out.set(s.name, s);
  return out;
}

const sameArgs = (a: IptRule, b: IptRule): boolean => a === b || a.args === b.args || (a.args.length === b.args.length && a.args.every((x, i) => x === b.args[i]));

export function sameChain(a: IptChain | undefined, b: IptChain | undefined): boolean {
  if (!a || !b) return a === b;
  // Renders reuse the rule list of an unchanged policy chain; nothing mutates one once rendered.
  if (a.rules === b.rules) return true;
  return a.rules.length === b.rules.length && a.rules.every((r, i) => sameArgs(r, b.rules[i]!));
}

export interface IptablesPlan {
  table: RestoreTable;
  created: string[];
  updated: string[];
  deleted: string[];
  jumpsInserted: number;
  jumpsDeleted: number;
}

/**
 * The --noflush payload for one family: changed chains rewritten whole, stale chains deleted,
 * jumps inserted at position 1 when missing. With `checkPosition` (after a read-back), a desired
 * jump that is not the first rule of its chain, duplicates and other owned jumps are replaced.
 */
export function planIptables(desired: Desired, current: FamilyState, opts: { checkPosition?: boolean } = {}): IptablesPlan {
  const chains: IptChain[] = [];
  const created: string[] = [];
  const updated: string[] = [];
  const editDeletes: { chain: string; rule: IptRule }[] = [];
  const editInserts: { chain: string; position: number; rule: IptRule }[] = [];
  const wanted = new Set(desired.chains.map((c) => c.name));
  for (const c of desired.chains) {
    const cur = current.chains.get(c.name);
    if (!cur) {
      chains.push(c);
      created.push(c.name);
    } else if (!sameChain(cur, c)) {
      updated.push(c.name);
      const edit = editScript(cur, c);
      if (edit) {
        editDeletes.push(...edit.deletes.map((rule) => ({ chain: c.name, rule })));
        editInserts.push(...edit.inserts.map(({ position, rule }) => ({ chain: c.name, position, rule })));
      } else chains.push(c);
    }
  }
  // Stale chains; one a foreign chain still jumps to cannot be deleted: it is emptied instead.
  const pinned = new Set(current.foreignRefs.map((r) => target(r.rule)!));
  const deleted: string[] = [];
  const flushOnly: string[] = [];
  for (const name of current.chains.keys()) {
    if (wanted.has(name)) continue;
    if (pinned.has(name)) {
      if ((current.chains.get(name)?.rules.length ?? 0) > 0) flushOnly.push(name);
    } else deleted.push(name);
  }
  const deleteRules: { chain: string; rule: IptRule }[] = [...editDeletes];
  const insertRules: { chain: string; position: number; rule: IptRule }[] = [...editInserts];
  for (const hook of BUILTIN_HOOKS) {
    const want = desired.jumps.filter((j) => j.chain === hook);
    const have = current.jumps.filter((j) => j.chain === hook);
    const ok =
      want.length === 0
        ? have.length === 0
        : opts.checkPosition
          ? have.length === want.length && want.every((w, i) => have[i] !== undefined && have[i]!.position === i + 1 && sameArgs(have[i]!.rule, w.rule))
          : want.every((w) => have.some((h) => sameArgs(h.rule, w.rule))) && have.every((h) => want.some((w) => sameArgs(h.rule, w.rule)));
    if (ok) continue;
    // Replace every owned jump of this hook in one transaction: no moment without the jump.
    for (const h of have) deleteRules.push({ chain: hook, rule: h.rule });
    // Inserted at 1 in reverse order so that they end up in the desired order.
    for (const w of [...want].reverse()) insertRules.push({ chain: hook, position: 1, rule: w.rule });
  }
  const table: RestoreTable = { name: 'filter', chains, deleteChains: deleted, deleteRules, insertRules };
  if (flushOnly.length) table.flushChains = flushOnly;
  return { table, created, updated, deleted, jumpsInserted: insertRules.length - editInserts.length, jumpsDeleted: deleteRules.length - editDeletes.length };
}

/** Rule identity text (arguments never contain NUL); kept per rule object, which renders reuse. */
const ruleKeys = new WeakMap<IptRule, string>();
function ruleKey(r: IptRule): string {
  let k = ruleKeys.get(r);
  if (k === undefined) ruleKeys.set(r, (k = r.args.join('\u0000')));
  return k;
}

/**
 * An in-place edit of a chain: `-D` by specification for rules to drop, then `-I CHAIN position` in
 * ascending final position for rules to add, keeping the longest common subsequence. Only when every
 * rule is unique in both versions (a `-D` by specification removes the first match) and the edit is
 * shorter than a rewrite; undefined otherwise. Every changed chain is edited this way when it can be:
 * the kernel commits a pod's one new leaf rule or a pod chain's one new policy jump several times
 * faster than the same chain flushed and written again (measured: `npm run bench` reports each event
 * kind's kernel time beside a floor transaction of rule-level edits).
 */
export function editScript(cur: IptChain, want: IptChain): { deletes: IptRule[]; inserts: { position: number; rule: IptRule }[] } | undefined {
  const key = ruleKey;
  const curIndex = new Map<string, number>();
  for (const [i, r] of cur.rules.entries()) {
    const k = key(r);
    if (curIndex.has(k)) return undefined;
    curIndex.set(k, i);
  }
  const wantKeys = want.rules.map(key);
  if (new Set(wantKeys).size !== wantKeys.length) return undefined;
  // Longest increasing subsequence of the current positions of the desired rules = rules kept in place.
  const seq: { w: number; c: number }[] = [];
  wantKeys.forEach((k, w) => {
    const c = curIndex.get(k);
    if (c !== undefined) seq.push({ w, c });
  });
  const tails: number[] = [];
  const prev = new Array<number>(seq.length).fill(-1);
  for (let i = 0; i < seq.length; i++) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seq[tails[mid]!]!.c < seq[i]!.c) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) prev[i] = tails[lo - 1]!;
    tails[lo] = i;
  }
  const keptW = new Set<number>();
  const keptC = new Set<number>();
  for (let i = tails.length ? tails[tails.length - 1]! : -1; i >= 0; i = prev[i]!) {
    keptW.add(seq[i]!.w);
    keptC.add(seq[i]!.c);
  }
  const deletes = cur.rules.filter((_, i) => !keptC.has(i));
  const inserts = want.rules.flatMap((rule, w) => (keptW.has(w) ? [] : [{ position: w + 1, rule }]));
  if (deletes.length + inserts.length >= want.rules.length + 1) return undefined;
  return { deletes, inserts };
}

/** Whether the plan writes anything. */
export function iptablesPlanEmpty(p: IptablesPlan): boolean {
  const t = p.table;
  return t.chains.length === 0 && (t.deleteChains ?? []).length === 0 && (t.deleteRules ?? []).length === 0 && (t.insertRules ?? []).length === 0 && (t.flushChains ?? []).length === 0;
}

/** The state after a plan was applied. */
export function familyStateAfter(desired: Desired, prev: FamilyState, plan: IptablesPlan): FamilyState {
  const chains = new Map<string, IptChain>();
  for (const c of desired.chains) chains.set(c.name, c);
  for (const name of plan.table.flushChains ?? []) chains.set(name, { name, policy: '-', rules: [] });
  for (const [name, c] of prev.chains) if (!chains.has(name) && !plan.deleted.includes(name) && !(plan.table.flushChains ?? []).includes(name)) chains.set(name, c);
  let jumps = prev.jumps;
  if ((plan.table.insertRules ?? []).length > 0 || (plan.table.deleteRules ?? []).length > 0) {
    const changed = new Set([...(plan.table.insertRules ?? []), ...(plan.table.deleteRules ?? [])].map((r) => r.chain));
    jumps = prev.jumps.filter((j) => !changed.has(j.chain));
    for (const hook of changed) desired.jumps.filter((j) => j.chain === hook).forEach((j, i) => jumps.push({ chain: j.chain, position: i + 1, rule: j.rule }));
  }
  return { chains, jumps, foreignRefs: prev.foreignRefs };
}

/**
 * Member lists are never mutated once built (renders share the list of an unchanged set), so their
 * comparable form is kept per list.
 */
const memberKeyCache = new WeakMap<readonly IpsetMember[], { type: string; family: string; keys: Set<string> }>();

/** A set's members as comparable text (`entry` or `entry nomatch`). Do not mutate the result. */
export function memberKeys(s: Ipset): Set<string> {
  const hit = memberKeyCache.get(s.members);
  if (hit && hit.type === s.type && hit.family === s.family) return hit.keys;
  // A list built by hashIpSet is canonical already: its keys are its entries.
  const keys = isSortedCanonical(s.members) ? new Set(s.members.map((m) => m.entry)) : new Set(s.members.map((m) => canonicalMember(m, s.type, s.family)));
  memberKeyCache.set(s.members, { type: s.type, family: s.family, keys });
  return keys;
}

function maxelemOf(s: Ipset): number {
  const i = s.options.indexOf('maxelem');
  return i >= 0 ? Number(s.options[i + 1]) || 65536 : 65536;
}

export interface IpsetPlan {
  /** Before the iptables restore: new sets, member changes, removals from the programmed set. */
  early: IpsetGroup[];
  /** After the iptables restore: additions to the programmed set (a pod counts as programmed only once its chain is in place). */
  late: IpsetGroup[];
  /** After the iptables restore: stale sets. */
  destroy: string[];
  created: string[];
  updated: string[];
  /** Sets whose type or family differ from the render: they cannot be changed in place. */
  conflicts: string[];
}

/** The ops of one set (payloads are chunked at set boundaries). */
export interface IpsetGroup {
  set: string;
  ops: IpsetOp[];
}

/**
 * Sets whose additions wait until the iptables transaction committed and whose removals go before it:
 * podwall-programmed (a pod counts as programmed only once its chain is in place) and podwall-isolated
 * (it only ever holds pods whose chain is in place, so accepting their established packets at once is
 * what the chain would do).
 */
function isLateAddSet(name: string): boolean {
  const base = name.startsWith('inet6:') ? name.slice(6) : name;
  return base === PROGRAMMED_SET || base === ISOLATED_SET;
}

function parseMember(key: string): { entry: string; nomatch: boolean } {
  return key.endsWith(' nomatch') ? { entry: key.slice(0, -8), nomatch: true } : { entry: key, nomatch: false };
}

/** `add` ops for member keys (one object per member, no intermediate copies: sets hold 10^4-10^5). */
function addOps(name: string, keys: Iterable<string>): IpsetOp[] {
  const out: IpsetOp[] = [];
  for (const k of keys) out.push(k.endsWith(' nomatch') ? { op: 'add', name, entry: k.slice(0, -8), nomatch: true, exist: true } : { op: 'add', name, entry: k, nomatch: false, exist: true });
  return out;
}

/**
 * Member keys to add and to delete going from `cur` to `want`. Two lists built by hashIpSet (sorted,
 * canonical, deduplicated: their keys are their entries) are compared in one merge walk — a peer
 * set of thousands of pods that gained one pod costs a walk, not two sets of keys; anything else
 * as sets of canonical keys.
 */
export function memberChanges(cur: Ipset, want: Ipset): { toAdd: string[]; toDel: string[] } {
  const toAdd: string[] = [];
  const toDel: string[] = [];
  const a = cur.members;
  const b = want.members;
  if (cur.type === want.type && cur.family === want.family && isSortedCanonical(a) && isSortedCanonical(b)) {
    let i = 0;
    let j = 0;
    while (i < a.length && j < b.length) {
      const x = a[i]!.entry;
      const y = b[j]!.entry;
      if (x === y) {
        i++;
        j++;
      } else if (x < y) {
        toDel.push(x);
        i++;
      } else {
        toAdd.push(y);
        j++;
      }
    }
    for (; i < a.length; i++) toDel.push(a[i]!.entry);
    for (; j < b.length; j++) toAdd.push(b[j]!.entry);
    return { toAdd, toDel };
  }
  const have = memberKeys(cur);
  const wantKeys = memberKeys(want);
  for (const k of wantKeys) if (!have.has(k)) toAdd.push(k);
  for (const k of have) if (!wantKeys.has(k)) toDel.push(k);
  return { toAdd, toDel };
}

/**
 * Set changes: a new set is created and filled; a changed one gets add/del lines, or a temporary set
 * filled and swapped in when that is shorter (or when it needs a larger maxelem).
 */
export function planIpset(desiredSets: readonly Ipset[], current: SetState): IpsetPlan {
  const plan: IpsetPlan = { early: [], late: [], destroy: [], created: [], updated: [], conflicts: [] };
  const wanted = new Set<string>();
  // Leftover temporary sets (a crash between create and swap) go first: they are never referenced.
  for (const name of current.keys()) {
    if (name.startsWith(TMP_SET_PREFIX) || name.startsWith(`inet6:${TMP_SET_PREFIX}`)) plan.early.push({ set: name, ops: [{ op: 'destroy', name }] });
  }
  for (const s of desiredSets) {
    if (wanted.has(s.name)) continue;
    wanted.add(s.name);
    const cur = current.get(s.name);
    const want = cur && cur.type === s.type && cur.family === s.family && isSortedCanonical(cur.members) && isSortedCanonical(s.members) ? { size: s.members.length } : memberKeys(s);
    const late = isLateAddSet(s.name);
    if (!cur) {
      plan.created.push(s.name);
      const keys = memberKeys(s);
      const create: IpsetOp = { op: 'create', name: s.name, type: s.type, family: s.family, options: setOptions(keys.size) };
      const adds = addOps(s.name, keys);
      if (late) {
        plan.early.push({ set: s.name, ops: [create] });
        if (adds.length) plan.late.push({ set: s.name, ops: adds });
      } else plan.early.push({ set: s.name, ops: [create, ...adds] });
      continue;
    }
    if (cur.type !== s.type || cur.family !== s.family) {
      plan.conflicts.push(s.name);
      continue;
    }
    // The very member list applied last time (state keeps the desired list once it is in the kernel).
    if (cur.members === s.members && maxelemOf(cur) >= s.members.length) continue;
    const { toAdd, toDel } = memberChanges(cur, s);
    const needRoom = maxelemOf(cur) < want.size;
    if (toAdd.length === 0 && toDel.length === 0 && !needRoom) continue;
    plan.updated.push(s.name);
    const swapCost = want.size + 3;
    if (!late && (needRoom || swapCost < toAdd.length + toDel.length)) {
      const tmp = tmpSetName(s.name);
      plan.early.push({
        set: s.name,
        ops: [
          { op: 'create', name: tmp, type: s.type, family: s.family, options: ['maxelem', String(Math.max(maxelemFor(want.size), maxelemOf(cur)))] },
          ...addOps(tmp, memberKeys(s)),
          { op: 'swap', name: tmp, other: s.name },
          { op: 'destroy', name: tmp },
        ],
      });
      continue;
    }
    // del before add: a member may change between entry and nomatch.
    const dels: IpsetOp[] = toDel.map((k) => ({ op: 'del', name: s.name, entry: parseMember(k).entry, exist: true }));
    const adds = addOps(s.name, toAdd);
    if (late) {
      if (dels.length) plan.early.push({ set: s.name, ops: dels });
      if (adds.length) plan.late.push({ set: s.name, ops: adds });
    } else plan.early.push({ set: s.name, ops: [...dels, ...adds] });
  }
  for (const name of current.keys()) {
    if (wanted.has(name) || name.startsWith(TMP_SET_PREFIX) || name.startsWith(`inet6:${TMP_SET_PREFIX}`)) continue;
    plan.destroy.push(name);
  }
  return plan;
}

/** The set state after the plan (members as desired). */
export function setStateAfter(desiredSets: readonly Ipset[], prev: SetState, plan: IpsetPlan): SetState {
  const out: SetState = new Map();
  for (const s of desiredSets) {
    if (plan.conflicts.includes(s.name)) {
      const p = prev.get(s.name);
      if (p) out.set(s.name, p);
      continue;
    }
    const p = prev.get(s.name);
    out.set(s.name, { ...s, options: p ? p.options : setOptions(s.members.length) });
  }
  return out;
}

export type { JumpRule };
