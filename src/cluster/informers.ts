// The Kubernetes API source: one supervised @kubernetes/client-node ListWatch per kind (Pods in all
// namespaces, Namespaces, NetworkPolicies, Nodes, Services), every object normalised at the boundary.
//
// What client-node 2.0.1 does not do, and this module does:
// - list items are typed models (a rule's `from` is `_from`, dates are Date objects, no kind):
//   they are serialised back to the wire shape before normalisation, so list and watch agree;
// - an informer stops for good on any error other than 410 (5xx, 403, connection refused, a failed
//   list): it is restarted here with exponential backoff and jitter, and the restart's list
//   removes objects that vanished while it was down (a fresh ListWatch only knows what it lists);
// - `stop()` emits AbortError, does not stop an in-flight start, and a reconnect delay or watch
//   connect that finishes after stop() would open a new watch: stopped informers are fenced off;
// - handlers that throw, and rejected promises inside the watch machinery, never escape: they are
//   logged and counted;
// - a watch stream that breaks mid-way (connection reset: `TypeError: terminated`) makes it stop
//   for good; here it resumes from the last resourceVersion instead (as client-go does), which
//   costs no relist (a too-old RV still gets 410 and a relist);
// - it never asks for bookmarks or sets timeoutSeconds: watches here ask for both.
//
// ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2) is a custom resource: a cluster without
// its CRD is normal. A 404 means "no ClusterNetworkPolicies" (any known ones are removed), is logged
// once and rechecked periodically; enforcement starts when the CRD appears, and it does not hold up
// the sync of the other kinds. A 403 (a ClusterRole without the permission) after they were listed
// keeps the last known ones, logged at every recheck; a 403 before any list is an informer failure
// like any other (not synced: the rules in the kernel stay, nothing is applied without them).
import * as k8s from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import pino, { type Logger } from 'pino';
import type { ClusterObject } from './model.js';
import { CNP_API_VERSION } from './model.js';
import { objectKey } from './model.js';
import { normalizeObject } from './normalize.js';
import { formatFinding } from './findings.js';

export type ClusterKind = ClusterObject['kind'];

export interface ClusterEvents {
  upsert(obj: ClusterObject): void;
  remove(kind: ClusterKind, key: string): void;
}

export interface RestartInfo {
  kind: ClusterKind;
  /** Consecutive failures before this restart (1 = first retry). */
  attempt: number;
  delayMs: number;
  error: string;
}

export interface InformerErrorInfo {
  kind: ClusterKind;
  error: Error;
  /** True when the error came from a handler (the sink or normalisation), not from the API. */
  handler: boolean;
}

export interface InformerSet {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True once every informer has completed a successful list (and stays true). */
  synced(): boolean;
  /** Resolves true once synced, false when `timeoutMs` passes first (or the set is stopped). */
  waitForSync(timeoutMs: number): Promise<boolean>;
  /** Restarts performed after informer errors. */
  restarts(): number;
  /** Exceptions thrown by handlers (caught, logged). */
  handlerErrors(): number;
  /** Optional kinds (custom resources) that cannot be listed now, and why. */
  unavailableKinds(): UnavailableKind[];
  on(ev: 'restart', fn: (info: RestartInfo) => void): void;
  on(ev: 'error', fn: (info: InformerErrorInfo) => void): void;
  on(ev: 'synced', fn: () => void): void;
}

export interface InformerOptions {
  logger?: Logger;
  backoff?: { initialMs: number; maxMs: number };
  /** Watches ask the server to end after a random time in [t, 2t] seconds (default 300). */
  watchTimeoutSeconds?: number;
  /** How often an optional custom resource that is not installed (404) or not readable (403) is checked again (default 60 s). */
  crdRecheckMs?: number;
}

/** An optional kind that cannot be listed: why. */
export interface UnavailableKind {
  kind: ClusterKind;
  reason: 'not-installed' | 'forbidden';
  since: number;
}

/** How long stop() waits for an in-flight start to finish before returning anyway. */
const STOP_WAIT_MS = 5000;

type Wire = k8s.KubernetesObject & Record<string, unknown>;
type ListFn = () => Promise<{ metadata?: { resourceVersion?: string }; items: unknown[] }>;

interface ResourceSpec {
  kind: ClusterKind;
  apiVersion: string;
  path: string;
  /** client-node model name, for serialising list items back to the wire shape; absent: items are wire JSON already (custom resources). */
  model?: string;
  namespaced: boolean;
  /** A custom resource whose CRD may be absent (see the header): its name, for messages. */
  optional?: { resource: string };
  list(kc: k8s.KubeConfig): ListFn;
}

export const RESOURCES: readonly ResourceSpec[] = [
  {
    kind: 'Pod',
    apiVersion: 'v1',
    path: '/api/v1/pods',
    model: 'V1Pod',
    namespaced: true,
    list: (kc) => {
      const api = kc.makeApiClient(k8s.CoreV1Api);
      return () => api.listPodForAllNamespaces({});
    },
  },
  {
    kind: 'Namespace',
    apiVersion: 'v1',
    path: '/api/v1/namespaces',
    model: 'V1Namespace',
    namespaced: false,
    list: (kc) => {
      const api = kc.makeApiClient(k8s.CoreV1Api);
      return () => api.listNamespace({});
    },
  },
  {
    kind: 'NetworkPolicy',
    apiVersion: 'networking.k8s.io/v1',
    path: '/apis/networking.k8s.io/v1/networkpolicies',
    model: 'V1NetworkPolicy',
    namespaced: true,
    list: (kc) => {
      const api = kc.makeApiClient(k8s.NetworkingV1Api);
      return () => api.listNetworkPolicyForAllNamespaces({});
    },
  },
  {
    kind: 'Node',
    apiVersion: 'v1',
    path: '/api/v1/nodes',
    model: 'V1Node',
    namespaced: false,
    list: (kc) => {
      const api = kc.makeApiClient(k8s.CoreV1Api);
      return () => api.listNode({});
    },
  },
  {
    kind: 'Service',
    apiVersion: 'v1',
    path: '/api/v1/services',
    model: 'V1Service',
    namespaced: true,
    list: (kc) => {
      const api = kc.makeApiClient(k8s.CoreV1Api);
      return () => api.listServiceForAllNamespaces({});
    },
  },
  {
    kind: 'ClusterNetworkPolicy',
    apiVersion: CNP_API_VERSION,
    path: '/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies',
    namespaced: false,
    optional: { resource: 'clusternetworkpolicies.policy.networking.k8s.io' },
    list: (kc) => {
      const api = kc.makeApiClient(k8s.CustomObjectsApi);
      return () => api.listClusterCustomObject({ group: 'policy.networking.k8s.io', version: 'v1alpha2', plural: 'clusternetworkpolicies' }) as Promise<{ metadata?: { resourceVersion?: string }; items: unknown[] }>;
    },
  },
];

/**
 * A list item (typed client-node model) back in the wire shape a watch event has: `from` instead of
 * `_from`, RFC 3339 strings instead of Dates, no undefined members, kind and apiVersion set.
 */
export function listItemToWire(item: unknown, spec: Pick<ResourceSpec, 'kind' | 'apiVersion' | 'model'>): Wire {
  const wire = JSON.parse(JSON.stringify((spec.model ? ObjectSerializer.serialize(item, spec.model, '') : item) ?? {})) as Wire;
  wire.kind = spec.kind;
  wire.apiVersion ??= spec.apiVersion;
  return wire;
}

function errorOf(e: unknown): Error {
  return e instanceof Error ? e : new Error(typeof e === 'string' ? e : JSON.stringify(e));
}

/** The HTTP status of an API error (list: ApiException.code; watch: statusCode), if any. */
function statusOf(e: unknown): number | undefined {
  const err = e as { statusCode?: unknown; code?: unknown } | null | undefined;
  const v = err?.statusCode ?? err?.code;
  return typeof v === 'number' ? v : undefined;
}

function describeError(e: unknown): string {
  const err = e as { statusCode?: number; code?: number | string; body?: unknown; message?: string };
  const status = err?.statusCode ?? (typeof err?.code === 'number' ? err.code : undefined);
  const msg = err?.message ?? String(e);
  return status !== undefined && !msg.includes(String(status)) ? `HTTP ${status}: ${msg}` : msg;
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as PromiseLike<unknown> | undefined)?.then === 'function';
}

/** One kind: its current ListWatch, the keys delivered to the sink, restart state. */
interface Supervised {
  spec: ResourceSpec;
  /** Bumped on every (re)start and on failure: events of an older generation are ignored. */
  gen: number;
  informer?: k8s.ListWatch<Wire>;
  starting?: Promise<void>;
  listedGen: number;
  listedOnce: boolean;
  startedAt: number;
  failures: number;
  restartTimer?: NodeJS.Timeout;
  /** Reconnect delays of the current ListWatch, cleared on stop. */
  delays: Set<NodeJS.Timeout>;
  /** Keys delivered to the sink (upserted and not removed since). */
  known: Set<string>;
  /** An optional kind that cannot be listed right now (404: not installed; 403: forbidden). */
  unavailable?: UnavailableKind;
}

class Informers implements InformerSet {
  private readonly logger: Logger;
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly watchTimeoutSeconds: number;
  private readonly crdRecheckMs: number;
  private readonly sups: Supervised[];
  private readonly listeners: { restart: ((i: RestartInfo) => void)[]; error: ((i: InformerErrorInfo) => void)[]; synced: (() => void)[] } = {
    restart: [],
    error: [],
    synced: [],
  };
  private running = false;
  private stopping = false;
  private isSynced = false;
  private restartCount = 0;
  private handlerErrorCount = 0;
  private syncWaiters = new Set<(ok: boolean) => void>();

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly sink: ClusterEvents,
    opts: InformerOptions = {},
  ) {
    this.logger = opts.logger ?? pino({ level: 'silent' });
    this.backoff = opts.backoff ?? { initialMs: 1000, maxMs: 30_000 };
    this.watchTimeoutSeconds = opts.watchTimeoutSeconds ?? 300;
    this.crdRecheckMs = opts.crdRecheckMs ?? 60_000;
    this.sups = RESOURCES.map((spec) => ({ spec, gen: 0, listedGen: -1, listedOnce: false, startedAt: 0, failures: 0, delays: new Set(), known: new Set() }));
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.stopping = false;
    await Promise.all(this.sups.map((s) => this.run(s)));
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.running = false;
    for (const w of this.syncWaiters) w(false);
    this.syncWaiters.clear();
    await Promise.all(
      this.sups.map(async (s) => {
        clearTimeout(s.restartTimer);
        s.restartTimer = undefined;
        s.gen++;
        this.fence(s);
        const informer = s.informer;
        s.informer = undefined;
        // stop() does not stop an in-flight start: stop now, and again once that start is over
        // (waiting a bounded time: a list that hangs must not hang shutdown).
        await informer?.stop();
        const starting = s.starting;
        if (starting && informer) {
          const settled = starting.then(
            () => informer.stop(),
            () => informer.stop(),
          );
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([settled, new Promise<void>((r) => (timer = setTimeout(r, STOP_WAIT_MS).unref()))]);
          clearTimeout(timer);
        }
      }),
    );
  }

  synced(): boolean {
    return this.isSynced;
  }

  waitForSync(timeoutMs: number): Promise<boolean> {
    if (this.isSynced) return Promise.resolve(true);
    if (this.stopping) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.syncWaiters.delete(done);
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.syncWaiters.add(done);
    });
  }

  restarts(): number {
    return this.restartCount;
  }

  handlerErrors(): number {
    return this.handlerErrorCount;
  }

  on(ev: 'restart' | 'error' | 'synced', fn: (arg: never) => void): void {
    (this.listeners[ev] as unknown[]).push(fn);
  }

  // ---------------------------------------------------------------- supervision

  private emit<E extends keyof Informers['listeners']>(ev: E, arg?: Parameters<Informers['listeners'][E][number]>[0]): void {
    for (const fn of this.listeners[ev]) {
      try {
        (fn as (a: unknown) => void)(arg);
      } catch (e) {
        this.logger.error({ err: describeError(e), event: ev }, 'informer event listener threw');
      }
    }
  }

  private dead(s: Supervised, gen: number): boolean {
    return this.stopping || s.gen !== gen;
  }

  /** Cancels pending reconnect delays: their promises never resolve, so no watch follows. */
  private fence(s: Supervised): void {
    for (const t of s.delays) clearTimeout(t);
    s.delays.clear();
  }

  private async run(s: Supervised): Promise<void> {
    if (this.stopping) return;
    const gen = ++s.gen;
    this.fence(s);
    const { spec } = s;
    const list = spec.list(this.kc);
    const listFn = async (): Promise<k8s.KubernetesListObject<Wire>> => {
      const result = await list();
      if (this.dead(s, gen)) throw new Error('informer stopped');
      const items = (result.items ?? []).map((i) => listItemToWire(i, spec));
      this.reconcileList(s, items);
      s.listedGen = gen;
      if (s.unavailable) {
        this.logger.info({ kind: spec.kind, objects: items.length }, `${spec.optional?.resource ?? spec.kind} can be listed now: enforcing them`);
        s.unavailable = undefined;
      }
      return { metadata: { resourceVersion: result.metadata?.resourceVersion ?? '' }, items };
    };
    const delayFn = (ms: number): Promise<void> =>
      new Promise((resolve) => {
        if (this.dead(s, gen)) return;
        const t = setTimeout(() => {
          s.delays.delete(t);
          if (!this.dead(s, gen)) resolve();
        }, ms);
        s.delays.add(t);
      });
    const watch = new GuardedWatch(this.kc, {
      isDead: () => this.dead(s, gen),
      onFailure: (e) => this.onInformerError(s, gen, e),
      onBroken: (e) => this.logger.info({ kind: spec.kind, err: describeError(e) }, 'watch stream broke; resuming from the last resourceVersion'),
      timeoutSeconds: this.watchTimeoutSeconds,
    });
    const informer = new k8s.ListWatch<Wire>(spec.path, watch, listFn, false, undefined, undefined, { delayFn });
    informer.on('add', (o) => this.deliver(s, gen, o));
    informer.on('update', (o) => this.deliver(s, gen, o));
    informer.on('delete', (o) => this.deliverRemove(s, gen, o));
    informer.on('error', (e) => this.onInformerError(s, gen, e));
    s.informer = informer;
    s.startedAt = Date.now();
    const starting = informer.start();
    s.starting = starting;
    try {
      await starting;
    } catch (e) {
      this.onInformerError(s, gen, e);
    } finally {
      if (s.starting === starting) s.starting = undefined;
    }
    if (this.dead(s, gen)) {
      await informer.stop();
      return;
    }
    if (s.listedGen === gen) this.markListed(s);
  }

  private markListed(s: Supervised): void {
    if (!s.listedOnce) this.logger.info({ kind: s.spec.kind, objects: s.known.size }, 'informer synced');
    s.listedOnce = true;
    if (this.isSynced || !this.sups.every((x) => x.listedOnce)) return;
    this.isSynced = true;
    for (const w of [...this.syncWaiters]) w(true);
    this.emit('synced');
  }

  private onInformerError(s: Supervised, gen: number, e: unknown): void {
    // Includes the AbortError our own stop() (or a restart's stop of the old informer) causes.
    if (this.dead(s, gen)) {
      this.logger.debug({ kind: s.spec.kind, err: describeError(e) }, 'ignoring informer error after stop or restart');
      return;
    }
    const code = statusOf(e);
    // 404: none exist. 403 once listed: keep what is known. 403 before any list: the normal error
    // path — not synced, retried with backoff — so a restart never runs without the ones it had.
    if (s.spec.optional && (code === 404 || (code === 403 && s.listedOnce))) {
      this.unavailable(s, code, e);
      return;
    }
    if (s.spec.optional && code === 403) {
      this.logger.error({ kind: s.spec.kind, status: code }, `cannot list ${s.spec.optional.resource} (403 Forbidden): the ClusterRole lacks get/list/watch on it; not synced until it can be read (the rules in the kernel stay)`);
    }
    const error = errorOf(e);
    this.logger.warn({ kind: s.spec.kind, err: describeError(e) }, 'informer failed; restarting');
    this.emit('error', { kind: s.spec.kind, error, handler: false });
    s.gen++;
    this.fence(s);
    const old = s.informer;
    s.informer = undefined;
    void old?.stop().catch(() => undefined);
    // A run that listed and then lasted longer than the maximum delay was healthy: start over.
    if (s.listedGen === gen && Date.now() - s.startedAt >= this.backoff.maxMs) s.failures = 0;
    const base = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** s.failures);
    const delayMs = Math.round(base / 2 + (Math.random() * base) / 2);
    s.failures++;
    const info: RestartInfo = { kind: s.spec.kind, attempt: s.failures, delayMs, error: describeError(e) };
    s.restartTimer = setTimeout(() => {
      s.restartTimer = undefined;
      if (this.stopping) return;
      this.restartCount++;
      this.logger.info(info, 'restarting informer');
      this.emit('restart', info);
      void this.run(s);
    }, delayMs);
  }

  /**
   * An optional custom resource that cannot be listed. 404 (its CRD is not installed, or was
   * removed): none exist — known ones are removed — logged once. 403: the last known ones stay,
   * logged at every check. Either way the kind counts as listed (the others' sync does not wait
   * for it) and it is checked again every crdRecheckMs.
   */
  private unavailable(s: Supervised, code: 404 | 403, e: unknown): void {
    const { spec } = s;
    s.gen++;
    this.fence(s);
    const old = s.informer;
    s.informer = undefined;
    void old?.stop().catch(() => undefined);
    const reason = code === 404 ? 'not-installed' : 'forbidden';
    const recheck = `checking again every ${Math.round(this.crdRecheckMs / 1000)} s`;
    if (reason === 'not-installed') {
      if (s.unavailable?.reason !== reason) this.logger.info({ kind: spec.kind, status: code }, `${spec.optional!.resource} is not installed: no ${spec.kind} objects; ${recheck}`);
      this.reconcileList(s, []);
    } else {
      this.logger.error(
        { kind: spec.kind, status: code, err: describeError(e) },
        `cannot list ${spec.optional!.resource} (403 Forbidden): the ClusterRole lacks get/list/watch on it; the ${s.known.size} last known ${spec.kind} objects stay in force; ${recheck}`,
      );
    }
    if (s.unavailable?.reason !== reason) s.unavailable = { kind: spec.kind, reason, since: Date.now() };
    s.failures = 0;
    this.markListed(s);
    s.restartTimer = setTimeout(() => {
      s.restartTimer = undefined;
      if (!this.stopping) void this.run(s);
    }, this.crdRecheckMs);
  }

  unavailableKinds(): UnavailableKind[] {
    return this.sups.flatMap((s) => (s.unavailable ? [{ ...s.unavailable }] : []));
  }

  // ---------------------------------------------------------------- delivery

  private keyOf(s: Supervised, o: unknown): string | undefined {
    const meta = (o as { metadata?: { name?: unknown; namespace?: unknown } } | undefined)?.metadata;
    if (typeof meta?.name !== 'string') return undefined;
    if (!s.spec.namespaced) return meta.name;
    return objectKey({ namespace: typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default', name: meta.name });
  }

  private handlerFailed(s: Supervised, e: unknown, what: string): void {
    this.handlerErrorCount++;
    this.logger.error({ kind: s.spec.kind, err: describeError(e) }, `${what} threw; event dropped`);
    this.emit('error', { kind: s.spec.kind, error: errorOf(e), handler: true });
  }

  private deliver(s: Supervised, gen: number, raw: Wire): void {
    if (this.dead(s, gen)) return;
    try {
      // Watch objects are wire JSON already; list items were converted in the list function.
      const obj = raw.kind === s.spec.kind ? raw : { ...raw, kind: s.spec.kind };
      const r = normalizeObject(obj, { file: 'api' }, s.spec.kind);
      for (const f of r.findings) (f.severity === 'error' ? this.logger.error : this.logger.warn).call(this.logger, { kind: s.spec.kind, code: f.code }, formatFinding(f));
      if (!r.object) {
        // Not understood: the previous version (if any) stays; never widen on bad input.
        if (!r.skipped) this.logger.error({ kind: s.spec.kind, key: this.keyOf(s, raw) }, 'object not understood; keeping the previous version');
        return;
      }
      const key = objectKey(r.object as { namespace?: string; name: string });
      s.known.add(key);
      this.sink.upsert(r.object);
    } catch (e) {
      this.handlerFailed(s, e, 'upsert');
    }
  }

  private deliverRemove(s: Supervised, gen: number, raw: Wire): void {
    if (this.dead(s, gen)) return;
    try {
      const key = this.keyOf(s, raw);
      if (key === undefined || !s.known.delete(key)) return;
      this.sink.remove(s.spec.kind, key);
    } catch (e) {
      this.handlerFailed(s, e, 'remove');
    }
  }

  /** After any list: objects delivered before but absent now are removed (restart or 410 relist). */
  private reconcileList(s: Supervised, items: Wire[]): void {
    const listed = new Set(items.map((i) => this.keyOf(s, i)));
    for (const key of [...s.known]) {
      if (listed.has(key)) continue;
      s.known.delete(key);
      try {
        this.sink.remove(s.spec.kind, key);
      } catch (e) {
        this.handlerFailed(s, e, 'remove');
      }
    }
  }
}

/**
 * client-node's Watch with the gaps closed: asks for bookmarks and a server-side timeout, opens no
 * watch for a stopped informer (and aborts one that connected after the stop), and turns rejected
 * promises of the ListWatch's callbacks into informer errors instead of unhandled rejections.
 */
class GuardedWatch extends k8s.Watch {
  constructor(
    kc: k8s.KubeConfig,
    private readonly hooks: {
      isDead: () => boolean;
      onFailure: (e: unknown) => void;
      onBroken: (e: unknown) => void;
      timeoutSeconds: number;
    },
  ) {
    super(kc);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: any, watchObj?: any) => void,
    done: (err: any) => void,
  ): Promise<AbortController> {
    const { isDead, onFailure, onBroken, timeoutSeconds } = this.hooks;
    if (isDead()) return new AbortController();
    const guard =
      <A extends unknown[]>(fn: (...args: A) => unknown) =>
      (...args: A): void => {
        try {
          const r = fn(...args);
          if (isPromiseLike(r)) r.then(undefined, onFailure);
        } catch (e) {
          onFailure(e);
        }
      };
    // Set once the server answered 200: a later network error broke an established stream.
    let established = false;
    const finished = (err: unknown): unknown => {
      const e = err as { name?: string; statusCode?: number } | null | undefined;
      if (e && established && !isDead() && e.statusCode === undefined && e.name !== 'AbortError' && e.name !== 'TimeoutError') {
        onBroken(err);
        return done(null);
      }
      return done(err);
    };
    const params = {
      ...queryParams,
      allowWatchBookmarks: true,
      timeoutSeconds: timeoutSeconds + Math.floor(Math.random() * timeoutSeconds),
    };
    const controller = await super.watch(path, params, guard(callback), guard(finished));
    established = true;
    if (isDead()) controller.abort();
    return controller;
  }
}

export function createInformers(kc: k8s.KubeConfig, sink: ClusterEvents, opts?: InformerOptions): InformerSet {
  return new Informers(kc, sink, opts);
}
