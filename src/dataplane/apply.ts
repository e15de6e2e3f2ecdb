// Dataplane: writes Desired (render.ts) into the kernel, only the difference.
//
// Order of one apply, so the kernel never sees a reference to a missing set or chain, and a pod
// counts as programmed only once its chain is in place:
//   1. ipset restore: stale temporary sets destroyed, new sets created, members changed (add/del, or
//      a temporary set filled and swapped in when shorter), removals from podwall-programmed and
//      podwall-isolated;
//   2. per family one `iptables-restore --noflush --wait`: changed chains edited rule by rule (`-D` by
//      specification, `-I` at a position) or rewritten whole, whichever is shorter
//      (`:CHAIN - [0:0]` + rules), stale jumps deleted, missing jumps inserted at position 1, stale
//      chains flushed and deleted — all in one transaction, other chains untouched;
//   3. ipset restore: additions to podwall-programmed and podwall-isolated, then stale sets destroyed
//      (one process; a destroy the kernel refuses falls back to one `ipset destroy` per set).
// Payloads are chunked at 500 sets per ipset restore. The last applied state is kept in memory; the
// kernel is read back only by init() and resync().
//
// A restore the kernel rejects leaves that transaction's previous state in place (iptables-restore
// is atomic per payload; ipset restore stops at the failing line, so the sets are read back). When
// the refusal can be contained to one object (containment.ts: a set member, a set, a policy chain,
// a pod chain), that object is left out — never widening — and the apply retried, so the rest of the
// node is programmed. Anything else throws DataplaneError.
import { readLogCounters, type LogCounter } from './counters.js';
import type { Family } from '../cluster/model.js';
import type { Ipset, IptChain, IptRule } from '../iptables/model.js';
import { writeIpsetRestore, writeRestore, type IpsetOp } from '../iptables/write.js';
import { canonicalMember } from './ipset.js';
import { detectBackend, toolsFor, type Backend, type Tools } from './backend.js';
import {
  emptyFamilyState,
  familyStateAfter,
  familyStateFromSave,
  iptablesPlanEmpty,
  memberKeys,
  planIpset,
  planIptables,
  setStateAfter,
  setStateFromSave,
  type FamilyState,
  type IpsetGroup,
  type SetState,
} from './diff.js';
import { ExecError, failingLine, makeRunner, type Runner } from './exec.js';
import { BUILTIN_HOOKS, DST_SET_PREFIX, SRC_SET_PREFIX, isOwnedChain, isOwnedSet, isPolicyChain, isSharedSet } from './names.js';
import { describeRefusal, Refusals, type Refusal } from './containment.js';
import { familyDrift, parseIpsetTerse, setDrift, setHeaderDrift } from './drift.js';
import { DriftWatcher, type DriftCheckScope, type DriftWatchOptions } from './drift-watch.js';
import { referencedSets, type Desired } from './render.js';

export interface DataplaneLogger {
  debug?(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface DataplaneOptions {
  /** Run every command inside this network namespace (`ip netns exec NS ...`). */
  netns?: string;
  /** iptables backend; `auto` (default) detects it as kube-proxy's iptables-wrapper does. */
  backend?: Backend | 'auto';
  /** Families podwall manages; objects of other families are never touched. */
  families: Family[];
  logger?: DataplaneLogger;
  /** Command runner (tests); default spawns the binaries, inside `netns` when given. */
  runner?: Runner;
  /** Sets per ipset restore call (default 500). */
  ipsetChunk?: number;
}

export interface ApplyReport {
  /** Lines written to ipset restore (all phases). */
  ipsetLines: number;
  /** Lines written to iptables-restore (all families). */
  iptablesLines: number;
  lines: { ipset: number; iptables: Partial<Record<Family, number>> };
  /** Policy chains and policy ipsets now programmed (metrics gauges). */
  chains: number;
  sets: number;
  chainsCreated: number;
  chainsUpdated: number;
  chainsDeleted: number;
  setsCreated: number;
  setsUpdated: number;
  setsDeleted: number;
  jumpsInserted: number;
  /** What the kernel refused and was left out, one line each (containment.ts). */
  rejected?: string[];
  refusals?: Refusal[];
  /** Stale sets that could not be destroyed (still used by something else). */
  keptSets?: string[];
  /** Milliseconds. */
  timings: Partial<Record<'ipset' | 'iptablesV4' | 'iptablesV6' | 'saveV4' | 'saveV6', number>>;
}

export class DataplaneError extends Error {
  /** 1-based line of the payload the tool reported. */
  readonly line?: number;
  readonly lineText?: string;
  /** Chain (iptables) or set (ipset) that line belongs to. */
  readonly object?: string;
  readonly stderr?: string;
  readonly tool?: string;
  constructor(message: string, detail: { line?: number; lineText?: string; object?: string; stderr?: string; tool?: string } = {}) {
    super(message);
    this.name = 'DataplaneError';
    Object.assign(this, detail);
  }
}

/** Internal: one restore failed at a line we could attribute. */
class RestoreFailure extends Error {
  constructor(
    readonly kind: 'ipset' | 'iptables',
    readonly object: string | undefined,
    readonly error: DataplaneError,
    readonly family?: Family,
    /** ipset: the op on the failing line. */
    readonly op?: IpsetOp,
  ) {
    super(error.message);
  }
}

const NOOP_LOGGER: DataplaneLogger = { info() {}, warn() {}, error() {} };

const isPeerSet = (name: string): boolean => {
  const base = name.startsWith('inet6:') ? name.slice(6) : name;
  return base.startsWith(SRC_SET_PREFIX) || base.startsWith(DST_SET_PREFIX);
};

function jumpTarget(rule: IptRule): string | undefined {
  const a = rule.args;
  for (let i = 0; i < a.length - 1; i++) if (a[i] === '-j' || a[i] === '-g') return a[i + 1];
  return undefined;
}

/** Desired without the given policy chains, the rules jumping to them and the peer sets only they used. */
export function withoutChains(d: Desired, bad: ReadonlySet<string>): Desired {
  if (bad.size === 0) return d;
  const chains: IptChain[] = d.chains
    .filter((c) => !bad.has(c.name))
    .map((c) => (c.rules.some((r) => bad.has(jumpTarget(r) ?? '')) ? { ...c, rules: c.rules.filter((r) => !bad.has(jumpTarget(r) ?? '')) } : c));
  const used = new Set(chains.flatMap(referencedSets));
  const origins = { ...d.origins };
  for (const b of bad) delete origins[b];
  return { ...d, chains, sets: d.sets.filter((s) => !isPeerSet(s.name) || used.has(s.name)), origins };
}

const now = (): number => performance.now();

export class Dataplane {
  backend: Backend | undefined;
  private tools: Tools | undefined;
  private readonly run: Runner;
  private readonly log: DataplaneLogger;
  private readonly families: Family[];
  private fam = new Map<Family, FamilyState>();
  private sets: SetState = new Map();
  private initialized = false;
  private lastDesired: Desired[] | undefined;
  /** What the kernel refused: left out while it stays the same (containment.ts). */
  private readonly refusals = new Refusals();
  private queue: Promise<unknown> = Promise.resolve();
  /** Per family, the owned lines of the last read that matched what podwall wrote (drift checks skip the parse while they stay the same). */
  private readonly tableBaseline = new Map<Family, string>();
  /** The in-memory state was read from the kernel (init) and not yet written from: check jump positions. */
  private stateIsReadBack = false;
  /** Pids of podwall's own restore processes (pid → started at), to tell its ruleset changes from others'. */
  private readonly ownPids = new Map<number, number>();

  constructor(private readonly opts: DataplaneOptions) {
    if (!Array.isArray(opts.families) || opts.families.length === 0 || opts.families.some((f) => f !== 'ipv4' && f !== 'ipv6')) {
      throw new DataplaneError(`families must be a non-empty list of ipv4/ipv6, got ${JSON.stringify(opts.families)}`);
    }
    this.families = [...new Set(opts.families)];
    this.run = opts.runner ?? makeRunner(opts.netns, { onSpawn: (pid, cmd) => this.noteOwnProcess(pid, cmd) });
    this.log = opts.logger ?? NOOP_LOGGER;
  }

  /** The families this dataplane manages. */
  get managedFamilies(): readonly Family[] {
    return this.families;
  }

  private noteOwnProcess(pid: number, cmd: string): void {
    if (!/restore$/.test(cmd)) return;
    const t = Date.now();
    this.ownPids.set(pid, t);
    if (this.ownPids.size > 256) for (const [p, at] of this.ownPids) if (t - at > 60_000) this.ownPids.delete(p);
  }

  /** Whether podwall itself started the process with this pid (one of its restores, in the last minute). */
  isOwnPid(pid: number): boolean {
    const at = this.ownPids.get(pid);
    return at !== undefined && Date.now() - at < 60_000;
  }

  /**
   * Compares a cheap read of the kernel with what podwall last wrote, without writing anything:
   * the set headers (`ipset list -t`), with `members` every member (`ipset save`), with `tables` the
   * owned chains and the jumps of the managed families (`iptables-save -t filter`). Returns what
   * differs; empty when nothing does or nothing was applied yet.
   */
  async checkDrift(scope: DriftCheckScope): Promise<string[]> {
    return this.serial(async () => {
      const tools = this.requireTools();
      if (!this.initialized || !this.lastDesired) return [];
      const out: string[] = [];
      if (scope.tables) {
        for (const f of this.families) {
          const r = await this.run(tools.save[f], ['-t', 'filter']);
          if (r.code !== 0) throw new DataplaneError(`${tools.save[f]} -t filter failed: ${r.stderr.trim() || `exit ${r.code}`}`, { tool: tools.save[f] });
          // The text of the owned lines, compared with the last read that matched: no parse while nothing changed.
          const text = ownedLines(r.stdout);
          if (this.tableBaseline.get(f) === text) continue;
          const cur = this.fam.get(f) ?? emptyFamilyState();
          // Podwall's jumps belong first in their hook chains, whatever position they were found at.
          const want = this.lastDesired.find((d) => d.family === f);
          const expected: FamilyState = want ? { ...cur, jumps: BUILTIN_HOOKS.flatMap((h) => want.jumps.filter((j) => j.chain === h).map((j, i) => ({ chain: h, position: i + 1, rule: j.rule }))) } : cur;
          const drift = familyDrift(f, expected, familyStateFromSave(r.stdout));
          if (drift.length === 0) this.tableBaseline.set(f, text);
          out.push(...drift);
        }
      }
      if (scope.members) {
        const r = await this.run(tools.ipset, ['save']);
        if (r.code !== 0) throw new DataplaneError(`ipset save failed: ${r.stderr.trim() || `exit ${r.code}`}`, { tool: 'ipset' });
        out.push(...setDrift(this.sets, setStateFromSave(r.stdout, this.families)));
      } else {
        const r = await this.run(tools.ipset, ['list', '-t']);
        if (r.code !== 0) throw new DataplaneError(`ipset list -t failed: ${r.stderr.trim() || `exit ${r.code}`}`, { tool: 'ipset' });
        out.push(...setHeaderDrift(this.sets, parseIpsetTerse(r.stdout), this.families));
      }
      return out;
    });
  }

  /** Starts watching for drift (drift-watch.ts); `onDrift` should trigger a resync. */
  startDriftWatch(o: { periodMs: number; fullEvery?: number; onDrift: DriftWatchOptions['onDrift'] }): DriftWatcher {
    const w = new DriftWatcher({
      target: { backend: this.backend, families: this.families, isOwnPid: (pid) => this.isOwnPid(pid), checkDrift: (scope) => this.checkDrift(scope) },
      periodMs: o.periodMs,
      ...(o.fullEvery !== undefined ? { fullEvery: o.fullEvery } : {}),
      ...(this.opts.netns !== undefined ? { netns: this.opts.netns } : {}),
      logger: this.log,
      onDrift: o.onDrift,
    });
    w.start();
    return w;
  }

  /** Detects the backend and reads the live podwall-owned state. */
  async init(): Promise<void> {
    return this.serial(async () => {
      const b = this.opts.backend ?? 'auto';
      if (b === 'auto') {
        const d = await detectBackend(this.run);
        this.backend = d.backend;
        this.log.info({ backend: d.backend, reason: d.reason }, 'iptables backend detected');
      } else if (b === 'nft' || b === 'legacy') this.backend = b;
      else throw new DataplaneError(`backend must be nft, legacy or auto, got ${JSON.stringify(b)}`);
      this.tools = toolsFor(this.backend);
      const live = await this.readLiveStable();
      this.fam = live.fam;
      this.sets = live.sets;
      this.initialized = true;
      this.stateIsReadBack = true;
    });
  }

  /** Writes the difference between `desired` and the last applied state. */
  async apply(desired: Desired[]): Promise<ApplyReport> {
    // Right after a read-back (init), the state is the kernel's: podwall's jumps must also be first.
    return this.serial(() => this.applyLocked(desired, this.stateIsReadBack, {}));
  }

  /**
   * Reads the live state back, counts drift from the last applied state, and repairs it. The state is
   * read until two reads in a row agree, so a resync never acts on a table someone was changing.
   */
  async resync(desired?: Desired[]): Promise<ApplyReport & { drift: number; driftWhat: string[] }> {
    return this.serial(async () => {
      const want = desired ?? this.lastDesired;
      const live = await this.readLiveStable();
      const expected: { fam: Map<Family, FamilyState>; sets: SetState } = { fam: this.fam, sets: this.sets };
      // One line per chain, hook or set that differs from what podwall last wrote.
      const driftWhat = this.initialized ? [...this.families.flatMap((f) => familyDrift(f, expected.fam.get(f), live.fam.get(f))), ...setDrift(expected.sets, live.sets)] : [];
      const drift = driftWhat.length;
      this.fam = live.fam;
      this.sets = live.sets;
      this.initialized = true;
      // Every refused object gets one fresh try per resync: a transient refusal does not outlive it.
      this.refusals.retryAll();
      if (!want) return { ...emptyReport(), timings: live.timings, drift, driftWhat };
      const rep = await this.applyLocked(want, true, live.timings);
      return { ...rep, drift, driftWhat };
    });
  }

  /**
   * The packet counters of podwall's NFLOG rules and of the rule after each (read-only, not serialised
   * with applies: `iptables-save -c` of the filter table per family), for the denial metrics.
   */
  async logCounters(): Promise<LogCounter[]> {
    const tools = this.requireTools();
    const out: LogCounter[] = [];
    for (const f of this.families) out.push(...(await readLogCounters(this.run, f, [tools.save[f]])).counters);
    return out;
  }

  /** Removes every podwall / kube-router firewall chain, jump and set of the managed families. */
  async cleanup(): Promise<void> {
    return this.serial(async () => {
      this.requireTools();
      const live = await this.readLive();
      for (const f of this.families) {
        const st = live.fam.get(f) ?? emptyFamilyState();
        const deleteRules = [...st.jumps.map((j) => ({ chain: j.chain as string, rule: j.rule })), ...st.foreignRefs];
        const deleteChains = [...st.chains.keys()];
        if (deleteRules.length === 0 && deleteChains.length === 0) continue;
        const payload = writeRestore([{ name: 'filter', chains: [], deleteRules, deleteChains }]);
        try {
          await this.restoreIptables(f, payload);
        } catch (e) {
          throw e instanceof RestoreFailure ? e.error : e;
        }
      }
      const { kept } = await this.destroySets([...live.sets.keys()]);
      if (kept.length) this.log.warn({ sets: kept }, 'sets still used by other software were left in place');
      this.fam = new Map(this.families.map((f) => [f, emptyFamilyState()]));
      this.sets = new Map([...live.sets].filter(([n]) => kept.includes(n)));
      this.lastDesired = undefined;
    });
  }

  /** The state podwall believes is in the kernel (tests, status). */
  snapshot(): { families: Map<Family, FamilyState>; sets: SetState } {
    return { families: this.fam, sets: this.sets };
  }

  // -------------------------------------------------------------------------------------------

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private requireTools(): Tools {
    if (!this.tools) throw new DataplaneError('Dataplane.init() must be called first');
    return this.tools;
  }

  /**
   * Reads until two reads in a row see the same owned state (compared as text, parsed once): a read
   * that overlapped someone's change (a torn read) is never acted on. Throws when it keeps changing.
   */
  private async readLiveStable(): Promise<{ fam: Map<Family, FamilyState>; sets: SetState; timings: ApplyReport['timings'] }> {
    let prev = await this.readRaw();
    for (let i = 0; i < 5; i++) {
      const next = await this.readRaw();
      if (next.key === prev.key) return this.parseRaw(next);
      prev = next;
    }
    throw new DataplaneError('podwall\'s chains and sets kept changing while being read (6 reads); not acting on a torn read, trying again later');
  }

  private async readLive(): Promise<{ fam: Map<Family, FamilyState>; sets: SetState; timings: ApplyReport['timings'] }> {
    return this.parseRaw(await this.readRaw());
  }

  /** `*-save -t filter` of the managed families and `ipset save`, as text; `key` holds only what podwall owns. */
  private async readRaw(): Promise<{ saves: Map<Family, string>; ipset: string; key: string; timings: ApplyReport['timings'] }> {
    const tools = this.requireTools();
    const saves = new Map<Family, string>();
    const timings: ApplyReport['timings'] = {};
    const keys: string[] = [];
    for (const f of this.families) {
      const t0 = now();
      const r = await this.run(tools.save[f], ['-t', 'filter']);
      if (r.code !== 0) throw new DataplaneError(`${tools.save[f]} -t filter failed: ${r.stderr.trim() || `exit ${r.code}`}`, { stderr: r.stderr, tool: tools.save[f] });
      saves.set(f, r.stdout);
      keys.push(`${f}\n${ownedLines(r.stdout)}`);
      timings[f === 'ipv4' ? 'saveV4' : 'saveV6'] = now() - t0;
    }
    const r = await this.run(tools.ipset, ['save']);
    if (r.code !== 0) throw new DataplaneError(`ipset save failed: ${r.stderr.trim() || `exit ${r.code}`}`, { stderr: r.stderr, tool: 'ipset' });
    keys.push(ownedIpsetLines(r.stdout));
    return { saves, ipset: r.stdout, key: keys.join('\n\u0000'), timings };
  }

  private parseRaw(raw: { saves: Map<Family, string>; ipset: string; timings: ApplyReport['timings'] }): { fam: Map<Family, FamilyState>; sets: SetState; timings: ApplyReport['timings'] } {
    const tools = this.requireTools();
    const fam = new Map<Family, FamilyState>();
    for (const [f, text] of raw.saves) {
      try {
        fam.set(f, familyStateFromSave(text));
      } catch (e) {
        throw new DataplaneError(`cannot parse ${tools.save[f]} output: ${(e as Error).message}`, { tool: tools.save[f] });
      }
    }
    let sets: SetState;
    try {
      sets = setStateFromSave(raw.ipset, this.families);
    } catch (e) {
      throw new DataplaneError(`cannot parse ipset save output: ${(e as Error).message}`, { tool: 'ipset' });
    }
    return { fam, sets, timings: raw.timings };
  }

  private async applyLocked(desired: Desired[], checkPosition: boolean, timings: ApplyReport['timings']): Promise<ApplyReport> {
    this.requireTools();
    if (!this.initialized) throw new DataplaneError('Dataplane.init() must be called before apply()');
    for (const d of desired) {
      if (!this.families.includes(d.family)) throw new DataplaneError(`desired state for ${d.family}, which this dataplane does not manage (families: ${this.families.join(', ')})`);
    }
    if (new Set(desired.map((d) => d.family)).size !== desired.length) throw new DataplaneError('two desired states for the same family');
    this.lastDesired = desired;

    for (const r of this.refusals.prune(desired)) {
      this.log.info({ kind: r.kind, family: r.family, object: r.object, member: r.member, origin: r.origin }, 'a refused object changed or went away; trying it again');
    }
    const chainCount = desired.reduce((n, d) => n + d.chains.length, 0);
    const maxAttempts = 16 + chainCount;
    for (let attempt = 0; ; attempt++) {
      const effective = desired.map((d) => this.refusals.applyTo(d));
      try {
        const rep = await this.applyOnce(effective, checkPosition, timings);
        this.stateIsReadBack = false;
        const refusals = this.refusals.list();
        if (refusals.length) {
          rep.refusals = refusals;
          rep.rejected = refusals.map(describeRefusal);
        }
        rep.chains = effective.reduce((n, d) => n + d.chains.filter((c) => isPolicyChain(c.name)).length, 0);
        rep.sets = new Set(effective.flatMap((d) => d.sets.map((s) => s.name)).filter(isPeerSet)).size;
        return rep;
      } catch (e) {
        if (!(e instanceof RestoreFailure)) throw e;
        const got = attempt < maxAttempts ? this.refusals.record({ kind: e.kind, message: e.error.message, ...(e.object !== undefined ? { object: e.object } : {}), ...(e.family ? { family: e.family } : {}), ...(e.op ? { op: e.op } : {}) }, effective, desired) : undefined;
        if (!got) throw e.error;
        for (const r of got) {
          this.log.error({ kind: r.kind, family: r.family, object: r.object, member: r.member, origin: r.origin, err: r.error }, `the kernel refused a ${r.kind.replace('-', ' ')}; it is left out and the rest of the node is programmed (nothing is widened)`);
        }
      }
    }
  }

  private async applyOnce(desired: Desired[], checkPosition: boolean, timings: ApplyReport['timings']): Promise<ApplyReport> {
    const rep: ApplyReport = { ...emptyReport(), timings: { ...timings } };
    const allSets: Ipset[] = desired.flatMap((d) => d.sets);
    const ipPlan = planIpset(allSets, this.sets);
    if (ipPlan.conflicts.length) {
      const name = ipPlan.conflicts[0]!;
      const cur = this.sets.get(name)!;
      const want = allSets.find((s) => s.name === name)!;
      throw new RestoreFailure('ipset', name, new DataplaneError(`ipset ${name} exists as ${cur.type} ${cur.family} but podwall renders it as ${want.type} ${want.family}; destroy it by hand (podwall cleanup)`, { object: name, tool: 'ipset' }));
    }

    // 1. sets and members (not yet the programmed-pod additions)
    const t0 = now();
    rep.ipsetLines += await this.restoreIpset(ipPlan.early);
    const prev = this.sets;
    const next = setStateAfter(allSets, prev, ipPlan);
    for (const n of ipPlan.destroy) next.set(n, prev.get(n)!); // until destroyed
    const lateSets = new Set(ipPlan.late.map((g) => g.set));
    for (const n of lateSets) {
      // Additions are still pending: the set holds the old members that stay.
      const want = next.get(n)!;
      const had = prev.get(n) ? memberKeys(prev.get(n)!) : new Set<string>();
      next.set(n, { ...want, members: want.members.filter((m) => had.has(canonicalMember(m, want.type, want.family))) });
    }
    this.sets = next;
    let ipsetMs = now() - t0;

    // 2. iptables, one transaction per family
    for (const d of desired) {
      const cur = this.fam.get(d.family) ?? emptyFamilyState();
      const plan = planIptables(d, cur, { checkPosition });
      if (iptablesPlanEmpty(plan)) {
        rep.lines.iptables[d.family] = 0;
        continue;
      }
      const payload = writeRestore([plan.table]);
      const t1 = now();
      await this.restoreIptables(d.family, payload);
      rep.timings[d.family === 'ipv4' ? 'iptablesV4' : 'iptablesV6'] = now() - t1;
      const n = lineCount(payload);
      rep.lines.iptables[d.family] = n;
      rep.iptablesLines += n;
      rep.chainsCreated += plan.created.length;
      rep.chainsUpdated += plan.updated.length;
      rep.chainsDeleted += plan.deleted.length;
      rep.jumpsInserted += plan.jumpsInserted;
      this.fam.set(d.family, familyStateAfter(d, cur, plan));
    }

    // 3. pods whose chains are now in place count as programmed, and 4. stale sets are destroyed — in
    // one ipset restore when there are both (one process fewer per change).
    const t2 = now();
    let destroyLeft = ipPlan.destroy;
    if (ipPlan.late.length) {
      const lateOps = ipPlan.late.reduce((n, g) => n + g.ops.length, 0);
      const merge = destroyLeft.length > 0 && ipPlan.late.length < Math.max(1, this.opts.ipsetChunk ?? 500);
      const groups = merge ? [...ipPlan.late, { set: '', ops: destroyLeft.map((name): IpsetOp => ({ op: 'destroy', name })) }] : ipPlan.late;
      try {
        // A refused member here is a pod left unprogrammed: contained by the caller (the pod stays fail-closed).
        rep.ipsetLines += await this.restoreIpset(groups);
        if (merge) {
          for (const n of destroyLeft) this.sets.delete(n);
          destroyLeft = [];
        }
      } catch (e) {
        // Only a destroy refused (a set still used by other software): the additions went through.
        if (!(merge && e instanceof RestoreFailure && e.error.line !== undefined && e.error.line > lateOps)) throw e;
        rep.ipsetLines += lateOps;
      }
      for (const n of lateSets) this.sets.set(n, allSets.find((s) => s.name === n)!);
    }
    if (destroyLeft.length) {
      const { kept, lines } = await this.destroySets(destroyLeft);
      rep.ipsetLines += lines;
      for (const n of destroyLeft) if (!kept.includes(n)) this.sets.delete(n);
      if (kept.length) rep.keptSets = kept;
    }
    ipsetMs += now() - t2;
    rep.timings.ipset = ipsetMs;
    rep.lines.ipset = rep.ipsetLines;
    rep.setsCreated = ipPlan.created.length;
    rep.setsUpdated = ipPlan.updated.length;
    rep.setsDeleted = ipPlan.destroy.length - (rep.keptSets?.length ?? 0);
    return rep;
  }

  /** Runs ipset restore for the groups, chunked; on failure re-reads the sets and throws RestoreFailure. */
  private async restoreIpset(groups: IpsetGroup[]): Promise<number> {
    const tools = this.requireTools();
    const chunk = Math.max(1, this.opts.ipsetChunk ?? 500);
    let lines = 0;
    for (let i = 0; i < groups.length; i += chunk) {
      const part = groups.slice(i, i + chunk);
      const ops: IpsetOp[] = [];
      const owners: string[] = [];
      for (const g of part) for (const op of g.ops) ops.push(op), owners.push(g.set);
      if (ops.length === 0) continue;
      let payload: string;
      try {
        payload = writeIpsetRestore(ops);
      } catch (e) {
        // A member the writer refuses (cannot happen for a render; guards hand-made Desired).
        const name = (e as Error).message.match(/set ([^\s:]+)/)?.[1];
        throw new RestoreFailure('ipset', name, new DataplaneError(`ipset payload: ${(e as Error).message}`, { tool: 'ipset', ...(name ? { object: name } : {}) }));
      }
      const r = await this.run(tools.ipset, ['restore'], payload);
      if (r.code !== 0) {
        const line = failingLine(r.stderr);
        const text = line !== undefined ? payload.split('\n')[line - 1] : undefined;
        const owner = line !== undefined ? owners[line - 1] : undefined;
        const op = line !== undefined ? ops[line - 1] : undefined;
        // ipset restore is not atomic: read back what it did.
        try {
          const back = await this.run(tools.ipset, ['save']);
          if (back.code === 0) this.sets = setStateFromSave(back.stdout, this.families);
        } catch {
          /* keep the old view; the next resync repairs it */
        }
        const err = new DataplaneError(`ipset restore failed${line !== undefined ? ` at line ${line} (${text})` : ''}: ${firstLines(r.stderr)}`, {
          tool: 'ipset',
          stderr: r.stderr,
          ...(line !== undefined ? { line } : {}),
          ...(text !== undefined ? { lineText: text } : {}),
          ...(owner !== undefined ? { object: owner } : {}),
        });
        throw new RestoreFailure('ipset', owner, err, undefined, op);
      }
      lines += ops.length;
    }
    return lines;
  }

  private async restoreIptables(family: Family, payload: string): Promise<void> {
    const tools = this.requireTools();
    this.tableBaseline.delete(family);
    const bin = tools.restore[family];
    const r = await this.run(bin, ['--noflush', '--wait'], payload);
    if (r.code === 0) return;
    const line = failingLine(r.stderr);
    const lines = payload.split('\n');
    const text = line !== undefined ? lines[line - 1] : undefined;
    const owner = text !== undefined ? lineOwner(text) : undefined;
    const err = new DataplaneError(`${bin} failed${line !== undefined ? ` at line ${line} (${text})` : ''}: ${firstLines(r.stderr)}`, {
      tool: bin,
      stderr: r.stderr,
      ...(line !== undefined ? { line } : {}),
      ...(text !== undefined ? { lineText: text } : {}),
      ...(owner !== undefined ? { object: owner } : {}),
    });
    throw new RestoreFailure('iptables', owner, err, family);
  }

  /** Destroys sets (one restore; if that fails, one by one, keeping those still in use). */
  private async destroySets(names: string[]): Promise<{ kept: string[]; lines: number }> {
    const tools = this.requireTools();
    if (names.length === 0) return { kept: [], lines: 0 };
    const payload = writeIpsetRestore(names.map((name) => ({ op: 'destroy', name })));
    const r = await this.run(tools.ipset, ['restore'], payload);
    if (r.code === 0) return { kept: [], lines: names.length };
    const kept: string[] = [];
    for (const name of names) {
      const one = await this.run(tools.ipset, ['destroy', name]);
      if (one.code === 0 || /does not exist/i.test(one.stderr)) continue;
      kept.push(name);
      const level = isSharedSet(name) ? 'info' : 'warn';
      this.log[level]({ set: name, err: firstLines(one.stderr) }, 'stale set not destroyed');
    }
    return { kept, lines: names.length };
  }
}

/**
 * The lines of an `iptables-save -t filter` that podwall's state depends on — declarations and rules
 * of owned chains and every rule of INPUT/FORWARD/OUTPUT — without counters: equal texts mean an
 * equal owned state.
 */
export function ownedLines(save: string): string {
  const out: string[] = [];
  for (const line of save.split('\n')) {
    if (line.startsWith('-A ')) {
      const chain = line.slice(3, line.indexOf(' ', 3) >>> 0);
      if (isOwnedChain(chain) || chain === 'INPUT' || chain === 'FORWARD' || chain === 'OUTPUT') out.push(line);
    } else if (line.startsWith(':')) {
      const name = line.slice(1, line.indexOf(' ') >>> 0);
      if (isOwnedChain(name)) out.push(name);
    }
  }
  return out.join('\n');
}

/** The lines of an `ipset save` about podwall's own sets (`create`/`add` of an owned name). */
export function ownedIpsetLines(save: string): string {
  const out: string[] = [];
  for (const line of save.split('\n')) {
    const a = line.indexOf(' ');
    const b = line.indexOf(' ', a + 1);
    if (a < 0) continue;
    const name = line.slice(a + 1, b < 0 ? undefined : b);
    if (isOwnedSet(name)) out.push(line);
  }
  return out.join('\n');
}

/** The chain (or built-in chain) a restore payload line belongs to. */
export function lineOwner(line: string): string | undefined {
  const m = /^(?::(\S+)|-[AFXDIN] (\S+))/.exec(line);
  return m ? (m[1] ?? m[2]) : undefined;
}

function lineCount(payload: string): number {
  return payload === '' ? 0 : payload.split('\n').length - (payload.endsWith('\n') ? 1 : 0);
}

function firstLines(s: string): string {
  return (
    s
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('Try `'))
      .slice(0, 3)
      .join(' | ') || '(no message)'
  );
}

function emptyReport(): ApplyReport {
  return {
    ipsetLines: 0,
    iptablesLines: 0,
    lines: { ipset: 0, iptables: {} },
    chains: 0,
    sets: 0,
    chainsCreated: 0,
    chainsUpdated: 0,
    chainsDeleted: 0,
    setsCreated: 0,
    setsUpdated: 0,
    setsDeleted: 0,
    jumpsInserted: 0,
    timings: {},
  };
}

export { ExecError };
