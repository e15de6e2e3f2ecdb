// The reconcile loop: store changes mark the node dirty; bursts coalesce (one reconcile in flight, at
// most one pending); each reconcile compiles the node's Plan, renders it and lets the dataplane write
// only the difference. Failures retry with exponential backoff and keep the last good state in the
// kernel; a periodic resync reads the live state back and repairs drift, and so does a resync as soon
// as the drift watcher (dataplane/drift-watch.ts) reports a change made by someone else.
// Level-triggered: a reconcile always converges the kernel to the current store, never replays events.
import type { Logger } from 'pino';
import type { ClusterStore, StoreChange } from '../cluster/store.js';
import { compile } from '../policy/compile.js';
import type { Plan } from '../policy/plan.js';
import type { Metrics } from './metrics.js';

/** What the reconciler needs from the dataplane (src/dataplane/apply.ts implements it). */
export interface DataplanePort<D> {
  apply(desired: D[]): Promise<ApplyOutcome>;
  resync(desired: D[]): Promise<ApplyOutcome & { drift: number; driftWhat?: string[] }>;
}

/** Resyncs read the kernel back (periodic, or because drift was seen); the others write from memory. */
const READS_BACK = new Set(['resync', 'drift']);

export interface ApplyOutcome {
  ipsetLines: number;
  iptablesLines: number;
  chains: number;
  sets: number;
  /** What the kernel refused and was left out, one line each (their pods stay fail-closed). */
  rejected?: string[];
  /** The same, by kind (`policy-chain`, `pod-chain`, `set`, `member`), for the metrics. */
  refusals?: { kind: string }[];
  timings?: Partial<Record<'ipset' | 'iptablesV4' | 'iptablesV6' | 'saveV4' | 'saveV6', number>>;
}

export interface ReconcilerOptions<D> {
  store: ClusterStore;
  node: string;
  render: (plan: Plan) => D[];
  /** Plan producer (default: a full compile for the node; the agent passes the incremental compiler). */
  compile?: () => Plan;
  /** Start reacting to store changes at once (default true; the agent waits for the first sync). */
  eventsEnabled?: boolean;
  dataplane: DataplanePort<D>;
  metrics: Metrics;
  logger: Logger;
  syncPeriodMs: number;
  backoff?: { initialMs: number; maxMs: number };
  /** Called after every successful apply. */
  onApplied?: (s: ReconcileStatus) => void;
  /**
   * Called after an apply that changed something, with the Plan now enforced (strict mode cuts the
   * established connections it denies). Awaited; a failure is logged, never fails the reconcile.
   */
  afterChange?: (plan: Plan) => Promise<void>;
}

export interface ReconcileStatus {
  /** Store version the kernel reflects. */
  appliedVersion: number;
  appliedAt: number;
  lastError?: string;
  /** What the kernel refused at the last apply (left out; never wider), one line each. */
  refused?: string[];
  syncs: number;
}

export class Reconciler<D> {
  private running: Promise<void> | undefined;
  private pending = false;
  private pendingReason = 'event';
  private retryTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  /** Drift reported and not repaired yet: when it was seen first, by what, and what. */
  private drifted: { at: number; source: string; what: string[] } | undefined;
  /** Unapplied changes with their arrival time, for the event → enforcement histogram. */
  private changes: { kind: string; at: number; version: number }[] = [];
  private waiters: { version: number; resolve: () => void }[] = [];
  private eventsEnabled: boolean;
  readonly status: ReconcileStatus = { appliedVersion: -1, appliedAt: 0, syncs: 0 };

  constructor(private readonly o: ReconcilerOptions<D>) {
    this.eventsEnabled = o.eventsEnabled ?? true;
    o.store.onChange((c: StoreChange) => this.onChange(c));
  }

  private onChange(c: StoreChange): void {
    if (!this.eventsEnabled) return;
    if (this.changes.length < 10_000) this.changes.push({ kind: c.kind, at: performance.now(), version: this.o.store.version });
    this.kick('event');
  }

  /** From now on, store changes trigger reconciles. */
  startEvents(): void {
    this.eventsEnabled = true;
  }

  /** Requests a reconcile; coalesces with one in flight. */
  kick(reason = 'event'): void {
    if (this.stopped) return;
    if (this.running) {
      this.pending = true;
      if (READS_BACK.has(reason) && !READS_BACK.has(this.pendingReason)) this.pendingReason = reason;
      return;
    }
    this.running = this.run(reason).finally(() => {
      this.running = undefined;
      if (this.pending && !this.stopped) {
        this.pending = false;
        const r = this.pendingReason;
        this.pendingReason = 'event';
        this.kick(r);
      }
    });
  }

  /**
   * Someone else changed podwall's chains, jumps or sets (the drift watcher saw it at `detectedAt`,
   * a performance.now() time): resync at once. The time to repair is measured from `detectedAt`.
   */
  drift(what: string[], detectedAt: number, source: string): void {
    if (this.stopped) return;
    if (!this.drifted) this.drifted = { at: detectedAt, source, what };
    else this.drifted.what = [...new Set([...this.drifted.what, ...what])].slice(0, 20);
    this.o.metrics.driftDetected.inc({ source });
    this.kick('drift');
  }

  /** Starts the periodic resync. The first reconcile is the caller's `kick('startup')`. */
  startResync(): void {
    const tick = () => {
      this.kick('resync');
      this.resyncTimer = setTimeout(tick, this.o.syncPeriodMs);
      this.resyncTimer.unref();
    };
    this.resyncTimer = setTimeout(tick, this.o.syncPeriodMs);
    this.resyncTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    await this.running;
  }

  /** Resolves once the kernel reflects at least this store version. */
  waitForVersion(version: number): Promise<void> {
    if (this.status.appliedVersion >= version) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ version, resolve }));
  }

  /** Settles when no reconcile is running or pending. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(reason: string): Promise<void> {
    const { store, metrics, logger } = this.o;
    const version = store.version;
    const started = performance.now();
    let stage = 'compile';
    const readsBack = READS_BACK.has(reason);
    const drifted = readsBack ? this.drifted : undefined;
    if (readsBack) this.drifted = undefined;
    try {
      const plan = this.o.compile ? this.o.compile() : compile(store, { node: this.o.node });
      stage = 'render';
      const desired = this.o.render(plan);
      stage = 'apply';
      const out = readsBack ? await this.o.dataplane.resync(desired) : await this.o.dataplane.apply(desired);
      const seconds = (performance.now() - started) / 1000;
      metrics.syncTime.observe(seconds);
      metrics.policyChainsSyncTime.observe(seconds);
      metrics.syncs.inc({ reason });
      metrics.linesWritten.inc({ target: 'ipset' }, out.ipsetLines);
      metrics.linesWritten.inc({ target: 'iptables' }, out.iptablesLines);
      metrics.policyChains.set(out.chains);
      metrics.policyIpsets.set(out.sets);
      const kinds = new Map<string, number>();
      for (const r of out.refusals ?? []) kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
      metrics.rejectedPolicies.set(kinds.get('policy-chain') ?? 0);
      for (const kind of ['policy-chain', 'pod-chain', 'set', 'member']) metrics.kernelRefusals.set({ kind }, kinds.get(kind) ?? 0);
      const t = out.timings ?? {};
      if (t.ipset !== undefined) metrics.ipsetRestoreTime.ipv4.observe(t.ipset / 1000);
      if (t.iptablesV4 !== undefined) metrics.restoreTime.ipv4.observe(t.iptablesV4 / 1000);
      if (t.iptablesV6 !== undefined) metrics.restoreTime.ipv6.observe(t.iptablesV6 / 1000);
      if (t.saveV4 !== undefined) metrics.saveTime.ipv4.observe(t.saveV4 / 1000);
      if (t.saveV6 !== undefined) metrics.saveTime.ipv6.observe(t.saveV6 / 1000);
      if ('drift' in out && typeof out.drift === 'number' && out.drift > 0) {
        metrics.driftRepairs.inc(out.drift);
        const what = ('driftWhat' in out && Array.isArray(out.driftWhat) ? out.driftWhat : []).slice(0, 10);
        if (drifted) {
          const ms = performance.now() - drifted.at;
          metrics.driftRepairTime.observe(ms / 1000);
          logger.warn({ drift: out.drift, what, seenBy: drifted.source, seen: drifted.what.slice(0, 5), repairedInMs: Math.round(ms) }, 'repaired drift: podwall\'s chains or sets had been changed by someone else');
        } else logger.warn({ drift: out.drift, what }, 'resync repaired drift: chains or sets had been changed outside podwall');
      } else if (drifted) logger.debug({ seenBy: drifted.source, seen: drifted.what.slice(0, 5) }, 'reported drift needed no repair (already undone, or not podwall\'s)');
      if (out.rejected?.length) {
        this.status.refused = out.rejected;
        logger.error({ rejected: out.rejected }, 'the kernel refused some objects; they are left out and their pods stay fail-closed');
      } else delete this.status.refused;
      const now = performance.now();
      const done = this.changes.filter((c) => c.version <= version);
      this.changes = this.changes.filter((c) => c.version > version);
      for (const c of done) metrics.eventLatency.observe({ kind: c.kind }, (now - c.at) / 1000);
      this.failures = 0;
      this.status.appliedVersion = version;
      this.status.appliedAt = Date.now();
      this.status.syncs++;
      delete this.status.lastError;
      metrics.appliedGeneration.set(version);
      logger.info(
        { reason, version, ms: Math.round(now - started), pods: plan.pods.length, policies: plan.policies.length, ipsetLines: out.ipsetLines, iptablesLines: out.iptablesLines, changes: done.length },
        out.ipsetLines + out.iptablesLines === 0 ? 'in sync, nothing to write' : 'applied',
      );
      this.o.onApplied?.(this.status);
      if (this.o.afterChange && out.ipsetLines + out.iptablesLines > 0) {
        await this.o.afterChange(plan).catch((e: Error) => logger.warn({ err: e.message }, 'after-change step failed; the rules are applied'));
      }
      const ready = this.waiters.filter((w) => w.version <= version);
      this.waiters = this.waiters.filter((w) => w.version > version);
      for (const w of ready) w.resolve();
    } catch (e) {
      const err = e as Error & { line?: string };
      metrics.syncErrors.inc({ stage });
      this.failures++;
      this.status.lastError = `${stage}: ${err.message}`;
      const b = this.o.backoff ?? { initialMs: 200, maxMs: 30_000 };
      const delay = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(this.failures - 1, 20));
      logger.error({ stage, err: err.message, line: err.line, retryInMs: delay, failures: this.failures }, 'reconcile failed; the previous rules stay in place');
      if (drifted && !this.drifted) this.drifted = drifted; // still to repair: measured from the first sighting
      if (!this.stopped) {
        if (this.retryTimer) clearTimeout(this.retryTimer);
        // Kept referenced: a pending retry is work that must happen. A failed resync is retried as one.
        this.retryTimer = setTimeout(() => this.kick(readsBack ? reason : 'retry'), delay);
      }
    }
  }
}
