// The node agent: a source (informers or a watched manifests directory) fills the store; the
// incremental compiler and the reconciler keep the kernel converged; endpoints report health,
// readiness, the applied generation and metrics. SIGTERM leaves the rules in place.
import { writeFile, rename, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { ClusterStore } from '../cluster/store.js';
import { defaultStateFile, ManifestSource, type SourceState } from '../cluster/manifest-source.js';
import { formatFinding } from '../cluster/findings.js';
import { IncrementalCompiler } from '../policy/incremental.js';
import { Reconciler, type DataplanePort } from './reconciler.js';
import { ConntrackCutter } from '../dataplane/conntrack.js';
import { cutDenied } from './strict.js';
import { Metrics } from './metrics.js';
import { startEndpoints, type Endpoints } from './health.js';
import type { RunConfig } from './flags.js';
import type { Family } from '../cluster/model.js';
import type { Plan } from '../policy/plan.js';
import type { LogCounter } from '../dataplane/counters.js';
import { DenialCounters } from './denials.js';

export const VERSION = '0.1.0';

/** A source of cluster objects: the informers or a manifests directory. */
export interface Source {
  start(): Promise<void>;
  stop(): Promise<void>;
  synced(): boolean;
  waitForSync(timeoutMs: number): Promise<boolean>;
  /** With --manifests: digest of the directory contents at the store version it produced. */
  loads?: { digest: string; version: number }[];
  /** With --manifests: whether the directory can be read, what was rejected, what is settling. */
  state?(): SourceState;
  /** Informers: optional kinds (ClusterNetworkPolicy) that cannot be listed now, and why. */
  unavailable?(): { kind: string; reason: 'not-installed' | 'forbidden'; since: number }[];
}

export interface AgentDeps<D> {
  createDataplane(families: Family[]): Promise<
    DataplanePort<D> & {
      cleanup(): Promise<void>;
      backend?: string;
      logCounters?(): Promise<LogCounter[]>;
      /** Reports changes by someone else to podwall's chains, jumps and sets (dataplane/drift-watch.ts). */
      startDriftWatch?(o: { periodMs: number; onDrift: (what: string[], detectedAt: number, source: string) => void }): { stop(): Promise<void> };
    }
  >;
  render(plan: Plan, family: Family): D;
  createInformerSource?(store: ClusterStore, metrics: Metrics): Source;
  /** --netpol-strict's conntrack access (tests inject one; default: the conntrack tool). */
  createConntrackCutter?(): ConntrackCutter;
}

export interface AgentStatus {
  node: string;
  version: string;
  storeVersion: number;
  appliedVersion: number;
  appliedAt?: string;
  synced: boolean;
  lastError?: string;
  /** What the kernel refused and podwall left out (its pods fail closed). */
  refused?: string[];
  manifestsDigest?: string;
  /** With --manifests: the source's state (available, rejected objects, errors of the last load). */
  source?: SourceState;
  /**
   * Kinds podwall watches that the API cannot list now: `not-installed` (no CRD: none exist, normal)
   * or `forbidden` (403: the last known objects stay in force).
   */
  unavailable?: { kind: string; reason: 'not-installed' | 'forbidden'; since: string }[];
  syncs: number;
}

export class Agent<D> {
  readonly store = new ClusterStore();
  readonly metrics = new Metrics({ defaultMetrics: true });
  private source: Source | undefined;
  private reconciler: Reconciler<D> | undefined;
  private driftWatch: { stop(): Promise<void> } | undefined;
  private endpoints: Endpoints | undefined;
  private appliedDigest: string | undefined;
  private stopping = false;

  constructor(
    private readonly cfg: RunConfig,
    private readonly deps: AgentDeps<D>,
    private readonly logger: Logger,
  ) {}

  families(): Family[] {
    return [...(this.cfg.enableIPv4 ? ['ipv4' as const] : []), ...(this.cfg.enableIPv6 ? ['ipv6' as const] : [])];
  }

  status(): AgentStatus {
    const r = this.reconciler?.status;
    const s: AgentStatus = {
      node: this.cfg.nodeName,
      version: VERSION,
      storeVersion: this.store.version,
      appliedVersion: r?.appliedVersion ?? -1,
      synced: this.source?.synced() ?? false,
      syncs: r?.syncs ?? 0,
    };
    if (r?.appliedAt) s.appliedAt = new Date(r.appliedAt).toISOString();
    if (r?.lastError) s.lastError = r.lastError;
    if (r?.refused) s.refused = r.refused;
    if (this.appliedDigest) s.manifestsDigest = this.appliedDigest;
    const src = this.source?.state?.();
    if (src) s.source = src;
    const un = this.source?.unavailable?.() ?? [];
    if (un.length > 0) s.unavailable = un.map((u) => ({ kind: u.kind, reason: u.reason, since: new Date(u.since).toISOString() }));
    return s;
  }

  /** /healthz: synced, the last reconcile succeeded within the sync period, and (with --manifests) the directory read without errors. */
  health(): { ok: boolean; reason: string } {
    const st = this.status();
    const src = st.source;
    if (src && !src.available) return { ok: false, reason: `manifests unavailable since ${src.unavailableSince} (${src.reason}): ${st.synced ? 'the last good state stays enforced' : 'nothing applied yet; the rules in the kernel stay'}` };
    if (!st.synced) return { ok: false, reason: 'waiting for the cluster state to sync' };
    const age = Date.now() - (this.reconciler?.status.appliedAt || 0);
    if (st.lastError && age > this.cfg.syncPeriodMs) return { ok: false, reason: `last successful sync ${Math.round(age / 1000)}s ago: ${st.lastError}` };
    if (src?.lastFailure) return { ok: false, reason: `reading the manifests failed at ${src.lastFailure}; the last good state stays enforced` };
    const forbidden = (st.unavailable ?? []).filter((u) => u.reason === 'forbidden');
    if (forbidden.length > 0) return { ok: false, reason: `cannot list ${forbidden.map((u) => u.kind).join(', ')} since ${forbidden[0]!.since} (403: the ClusterRole lacks get/list/watch); the last known ones stay in force` };
    if (src && src.errors > 0) return { ok: false, reason: `${src.errors} error(s) in the manifests (${src.rejected.length} object(s) rejected: the last accepted version of each stays in force), first: ${src.firstErrors[0] ?? ''}` };
    return { ok: true, reason: `applied version ${st.appliedVersion}${st.refused ? `; the kernel refused ${st.refused.length} object(s), left out closed (see /status)` : ''}` };
  }

  async start(): Promise<void> {
    const { cfg, logger } = this;
    const families = this.families();
    const dataplane = await this.deps.createDataplane(families);
    this.metrics.buildInfo.set({ version: VERSION, node: cfg.nodeName, backend: dataplane.backend ?? 'unknown' }, 1);
    const compiler = new IncrementalCompiler(this.store, cfg.nodeName);
    let lastPlan: Plan | undefined;
    let baselined = false;
    // Denial metrics from the kernel's counters, read when Prometheus scrapes.
    const denials = dataplane.logCounters ? new DenialCounters(this.metrics, () => dataplane.logCounters!(), () => lastPlan) : undefined;
    if (denials) this.metrics.collectDenials = () => denials.refresh();
    const cutter = cfg.strict ? (this.deps.createConntrackCutter?.() ?? new ConntrackCutter(logger)) : undefined;
    if (cfg.strict) logger.info({}, '--netpol-strict: established connections a change denies are removed from conntrack');
    this.reconciler = new Reconciler<D>({
      store: this.store,
      node: cfg.nodeName,
      render: (plan) => families.map((f) => this.deps.render(plan, f)),
      compile: () => (lastPlan = compiler.build()),
      dataplane,
      metrics: this.metrics,
      logger,
      syncPeriodMs: cfg.syncPeriodMs,
      eventsEnabled: false,
      ...(cfg.strict ? { afterChange: async (plan: Plan) => void (await cutDenied(cutter!, plan, families)) } : {}),
      onApplied: (st) => {
        // The first reading after the first sync is the baseline: what the kernel counted before
        // this process (an earlier agent) is not reported again.
        if (denials && !baselined) {
          baselined = true;
          void denials.refresh();
        }
        const loads = this.source?.loads;
        if (loads) {
          const hit = loads.filter((l) => l.version <= st.appliedVersion).at(-1);
          if (hit) this.appliedDigest = hit.digest;
        }
        void this.writeStatus();
      },
    });
    this.endpoints = await startEndpoints({
      health: {
        healthy: () => this.health(),
        ready: () => (this.reconciler!.status.appliedVersion >= 0 ? { ok: true, reason: 'first sync applied' } : { ok: false, reason: 'first sync not applied yet' }),
        status: () => this.status(),
      },
      metrics: this.metrics,
      healthPort: cfg.healthPort,
      healthAddr: cfg.healthAddr,
      metricsPort: cfg.metricsPort,
      metricsAddr: cfg.metricsAddr,
      metricsPath: cfg.metricsPath,
    });

    this.source = cfg.manifests ? this.manifestSource(cfg.manifests) : this.deps.createInformerSource?.(this.store, this.metrics);
    if (!this.source) throw new Error('no cluster source: give --manifests DIR or a kubeconfig');
    // Nothing is applied before the first full view of the cluster: a partial view could drop
    // rules of pods not listed yet. Until then the rules already in the kernel stay in force.
    await this.source.start();
    let synced = await this.source.waitForSync(cfg.cacheSyncTimeoutMs);
    while (!synced && !this.stopping) {
      logger.error({ timeoutMs: cfg.cacheSyncTimeoutMs }, 'cluster state not synced within --cache-sync-timeout; keeping the current rules and waiting');
      synced = await this.source.waitForSync(cfg.cacheSyncTimeoutMs);
    }
    if (this.stopping) return;
    logger.info({ objects: { pods: this.store.pods.size, policies: this.store.policies.size, clusterNetworkPolicies: this.store.clusterPolicies.size, namespaces: this.store.namespaces.size, nodes: this.store.nodes.size, services: this.store.services.size } }, 'cluster state synced; first sync');
    this.reconciler.startEvents();
    this.reconciler.kick('startup');
    this.reconciler.startResync();
    // Drift is repaired as soon as it is seen, not only at the periodic resync.
    const reconciler = this.reconciler;
    this.driftWatch = dataplane.startDriftWatch?.({ periodMs: cfg.driftCheckPeriodMs, onDrift: (what, at, source) => reconciler.drift(what, at, source) });
  }

  private manifestSource(dir: string): Source {
    const loads: { digest: string; version: number }[] = [];
    const src = new ManifestSource(
      dir,
      this.store,
      (r) => {
        // Every load's problems are logged, every time: a rejected object stays rejected until fixed.
        for (const f of r.findings) (f.severity === 'error' ? this.logger.error.bind(this.logger) : this.logger.warn.bind(this.logger))({ code: f.code }, formatFinding(f));
        if (r.state.settling.length > 0) this.logger.debug({ settling: r.state.settling }, 'files still being written; read once they settle');
        void this.writeStatus();
        if (!r.complete) return;
        loads.push({ digest: r.digest, version: this.store.version });
        if (loads.length > 100) loads.splice(0, loads.length - 100);
        // The kernel may already reflect this load (a load that changed nothing, or a reconcile that
        // finished while the load was still saving its state): then this content is applied now.
        if (this.reconciler && this.reconciler.status.appliedVersion >= this.store.version) {
          this.appliedDigest = r.digest;
          void this.writeStatus();
        }
      },
      { settleMs: this.cfg.manifestsSettleMs, stateFile: this.cfg.manifestsStateFile ?? defaultStateFile(dir) },
    );
    let waiting: (() => void) | undefined;
    return {
      loads,
      start: async () => {
        await src.start();
      },
      stop: async () => {
        src.stop();
        waiting?.();
      },
      synced: () => src.loaded,
      state: () => src.state,
      // Until the directory has been read whole once, nothing is applied (the kernel keeps its rules).
      waitForSync: (timeoutMs: number) =>
        new Promise<boolean>((resolve) => {
          if (src.loaded) return resolve(true);
          const poll = setInterval(() => {
            if (src.loaded) finish(true);
          }, 50);
          const timer = setTimeout(() => finish(src.loaded), timeoutMs);
          const finish = (v: boolean) => {
            clearInterval(poll);
            clearTimeout(timer);
            waiting = undefined;
            resolve(v);
          };
          waiting = () => finish(false);
        }),
    };
  }

  private statusWrite: Promise<void> = Promise.resolve();
  private writeStatus(): Promise<void> {
    const file = this.cfg.statusFile;
    if (!file) return Promise.resolve();
    this.statusWrite = this.statusWrite.then(async () => {
      const tmp = `${file}.${process.pid}.tmp`;
      try {
        await mkdir(dirname(file), { recursive: true });
        await writeFile(tmp, `${JSON.stringify(this.status())}\n`);
        await rename(tmp, file);
      } catch (e) {
        this.logger.warn({ err: (e as Error).message, file }, 'cannot write the status file');
      }
    });
    return this.statusWrite;
  }

  /** Stops watching; leaves every rule in place (enforcement continues). */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.source?.stop();
    await this.driftWatch?.stop();
    await this.reconciler?.stop();
    await this.endpoints?.close();
  }
}
