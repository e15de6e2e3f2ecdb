// A small in-memory Kubernetes API server for integration tests: list and watch (chunked JSON lines)
// for pods, namespaces, nodes, services, networkpolicies and clusternetworkpolicies (a custom
// resource: served only while its CRD is installed, 404 otherwise), following the API's list/watch contract
// (global resourceVersion, items without kind/apiVersion, watch from an RV, 410 Gone when the RV has
// left the event window, bookmarks, label/field selectors, timeoutSeconds). Plus fault injection.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomUUID } from 'node:crypto';

export type Obj = { kind?: string; apiVersion?: string; metadata?: Record<string, any>; [k: string]: any };

interface ResourceDef {
  kind: string;
  apiVersion: string;
  plural: string;
  namespaced: boolean;
  /** URL prefix: /api/v1 or /apis/<group>/<version>. */
  prefix: string;
  /** A custom resource: served only while its CRD is installed (installCRD). */
  crd?: boolean;
}

export const RESOURCES: readonly ResourceDef[] = [
  { kind: 'Pod', apiVersion: 'v1', plural: 'pods', namespaced: true, prefix: '/api/v1' },
  { kind: 'Namespace', apiVersion: 'v1', plural: 'namespaces', namespaced: false, prefix: '/api/v1' },
  { kind: 'Node', apiVersion: 'v1', plural: 'nodes', namespaced: false, prefix: '/api/v1' },
  { kind: 'Service', apiVersion: 'v1', plural: 'services', namespaced: true, prefix: '/api/v1' },
  { kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1', plural: 'networkpolicies', namespaced: true, prefix: '/apis/networking.k8s.io/v1' },
  { kind: 'ClusterNetworkPolicy', apiVersion: 'policy.networking.k8s.io/v1alpha2', plural: 'clusternetworkpolicies', namespaced: false, prefix: '/apis/policy.networking.k8s.io/v1alpha2', crd: true },
];

export interface LoggedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  watch: boolean;
  status: number;
}

interface WatchEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  kind: string;
  object: Obj;
  /** The object before a MODIFIED, for selector transitions. */
  previous?: Obj;
}

interface OpenWatch {
  res: http.ServerResponse;
  def: ResourceDef;
  matches: (o: Obj) => boolean;
  bookmark?: NodeJS.Timeout;
  deadline?: NodeJS.Timeout;
}

export interface FakeApiServerOptions {
  /** Events kept for watches that resume from an older RV (default 1000). */
  historyLimit?: number;
  /** How 410 Gone is reported to a watch: HTTP status (default) or an ERROR event in a 200 stream. */
  goneAs?: 'status' | 'event';
  /** Interval of BOOKMARK events when a watch asks for them (default 1000 ms). */
  bookmarkIntervalMs?: number;
}

type Selector = (o: Obj) => boolean;

class BadRequest extends Error {}

const clone = <T>(o: T): T => JSON.parse(JSON.stringify(o)) as T;

function status(code: number, reason: string, message: string): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, comma-separated (AND). */
export function parseLabelSelector(s: string): Selector {
  const terms = s.match(/[^,(]+(\([^)]*\))?/g) ?? [];
  const tests = terms
    .map((t) => t.trim())
    .filter((t) => t !== '')
    .map((t): Selector => {
      let m: RegExpExecArray | null;
      const labels = (o: Obj): Record<string, string> => o.metadata?.labels ?? {};
      if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(t))) {
        const [, k, op, v] = m as unknown as [string, string, string, string];
        return op === '!=' ? (o) => labels(o)[k] !== v : (o) => labels(o)[k] === v;
      }
      if ((m = /^([\w./-]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(t))) {
        const [, k, op, list] = m as unknown as [string, string, string, string];
        const values = list.split(',').map((x) => x.trim());
        return op === 'in' ? (o) => values.includes(labels(o)[k] as string) : (o) => !values.includes(labels(o)[k] as string);
      }
      if ((m = /^(!?)([\w./-]+)$/.exec(t))) {
        const [, not, k] = m as unknown as [string, string, string];
        return not ? (o) => !(k in labels(o)) : (o) => k in labels(o);
      }
      throw new BadRequest(`unable to parse requirement: ${JSON.stringify(t)}`);
    });
  return (o) => tests.every((f) => f(o));
}

const FIELDS: Record<string, (o: Obj) => unknown> = {
  'metadata.name': (o) => o.metadata?.name,
  'metadata.namespace': (o) => o.metadata?.namespace,
  'spec.nodeName': (o) => o.spec?.nodeName ?? '',
  'status.phase': (o) => o.status?.phase ?? '',
};

/** `field=value`, `field==value`, `field!=value` for the fields in FIELDS, comma-separated. */
export function parseFieldSelector(s: string): Selector {
  const tests = s
    .split(',')
    .filter((t) => t.trim() !== '')
    .map((t): Selector => {
      const m = /^\s*([\w.]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(t);
      if (!m) throw new BadRequest(`invalid field selector: ${JSON.stringify(t)}`);
      const [, field, op, value] = m as unknown as [string, string, string, string];
      const get = FIELDS[field];
      if (!get) throw new BadRequest(`field label not supported: ${field}`);
      return op === '!=' ? (o) => get(o) !== value : (o) => get(o) === value;
    });
  return (o) => tests.every((f) => f(o));
}

export class FakeApiServer {
  readonly requests: LoggedRequest[] = [];
  goneAs: 'status' | 'event';
  bookmarkIntervalMs: number;
  private readonly historyLimit: number;
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly objects = new Map<string, Map<string, Obj>>(RESOURCES.map((r) => [r.kind, new Map()]));
  private readonly history: WatchEvent[] = [];
  /** Custom resource kinds whose CRD is installed. */
  private readonly installed = new Set<string>();
  private readonly watches = new Set<OpenWatch>();
  private rv = 1;
  /** Watches from an RV below this answer 410 Gone. */
  private compactedRV = 0;
  private failures: { watch: boolean; code: number; kind?: string }[] = [];
  private paused: (() => void)[] | undefined;
  private port = 0;

  constructor(opts: FakeApiServerOptions = {}) {
    this.historyLimit = opts.historyLimit ?? 1000;
    this.goneAs = opts.goneAs ?? 'status';
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 1000;
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(opts?: FakeApiServerOptions): Promise<FakeApiServer> {
    const s = new FakeApiServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(0, '127.0.0.1', resolve);
    });
    s.port = (s.server.address() as AddressInfo).port;
    return s;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Number of watch streams currently open. */
  get openWatches(): number {
    return this.watches.size;
  }

  /** Installs the CRD of a custom resource kind (ClusterNetworkPolicy): from now on it is served. */
  installCRD(kind: string): void {
    const def = this.def(kind);
    if (!def.crd) throw new Error(`fake apiserver: ${kind} is not a custom resource`);
    this.installed.add(def.kind);
  }

  /**
   * Removes the CRD, as the API server does: every object of the kind is deleted (DELETED events),
   * its watches end, and further requests get 404.
   */
  uninstallCRD(kind: string): void {
    const def = this.def(kind);
    for (const o of this.list(def.kind)) this.remove(def.kind, o.metadata?.namespace, o.metadata!.name);
    for (const w of [...this.watches]) if (w.def.kind === def.kind) this.closeWatch(w, 'end');
    this.installed.delete(def.kind);
  }

  /** Creates or replaces an object (kind, metadata.name required); returns the stored copy. */
  apply(obj: Obj): Obj {
    const def = this.def(obj.kind);
    if (def.crd && !this.installed.has(def.kind)) throw new Error(`apply: the server could not find the requested resource (${def.plural}): install its CRD first`);
    const o = clone(obj);
    o.apiVersion = def.apiVersion;
    const meta = (o.metadata ??= {});
    if (typeof meta.name !== 'string' || meta.name === '') throw new Error(`apply: ${def.kind} without metadata.name`);
    if (def.namespaced) meta.namespace ??= 'default';
    else delete meta.namespace;
    const key = this.key(def, meta.namespace, meta.name);
    const previous = this.objects.get(def.kind)!.get(key);
    meta.uid = previous?.metadata?.uid ?? meta.uid ?? randomUUID();
    meta.creationTimestamp = previous?.metadata?.creationTimestamp ?? meta.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    meta.resourceVersion = String(++this.rv);
    this.objects.get(def.kind)!.set(key, o);
    this.record({ rv: this.rv, type: previous ? 'MODIFIED' : 'ADDED', kind: def.kind, object: o, ...(previous ? { previous } : {}) });
    return clone(o);
  }

  /** Deletes an object; false when it did not exist. */
  remove(kind: string, namespace: string | undefined, name: string): boolean {
    const def = this.def(kind);
    const key = this.key(def, namespace, name);
    const old = this.objects.get(def.kind)!.get(key);
    if (!old) return false;
    this.objects.get(def.kind)!.delete(key);
    const o = clone(old);
    o.metadata!.resourceVersion = String(++this.rv);
    this.record({ rv: this.rv, type: 'DELETED', kind: def.kind, object: o });
    return true;
  }

  /** Stored objects of a kind (with kind and apiVersion). */
  list(kind: string): Obj[] {
    return [...this.objects.get(this.def(kind).kind)!.values()].map(clone);
  }

  /** Ends every open watch: abruptly (socket destroyed, the default) or cleanly (stream ended). */
  dropWatches(how: 'destroy' | 'end' = 'destroy'): number {
    const n = this.watches.size;
    for (const w of [...this.watches]) this.closeWatch(w, how);
    return n;
  }

  /** The next `n` list requests (of `kind`, or of any kind) answer with `code` (500, 403, ...). */
  failLists(n: number, code = 500, kind?: string): void {
    for (let i = 0; i < n; i++) this.failures.push({ watch: false, code, ...(kind ? { kind } : {}) });
  }

  /** The next `n` watch requests (of `kind`, or of any kind) answer with `code`. */
  failWatches(n: number, code = 500, kind?: string): void {
    for (let i = 0; i < n; i++) this.failures.push({ watch: true, code, ...(kind ? { kind } : {}) });
  }

  /** Writes a raw line (malformed events, garbage) to the open watches of `kind`. */
  injectWatchLine(kind: string, line: string): number {
    const open = [...this.watches].filter((w) => w.def.kind === this.def(kind).kind);
    open.forEach((w) => w.res.write(`${line}\n`));
    return open.length;
  }

  /** Forgets the failures not yet served. */
  clearFailures(): void {
    this.failures = [];
  }

  /** New watch requests wait (unanswered) until resumeWatches(); lists are served. */
  pauseWatches(): void {
    this.paused ??= [];
  }

  resumeWatches(): void {
    const held = this.paused ?? [];
    this.paused = undefined;
    held.forEach((f) => f());
  }

  /** Watch requests currently held by pauseWatches(). */
  get heldWatches(): number {
    return this.paused?.length ?? 0;
  }

  /** Forgets the event history (like an etcd compaction): every watch from an RV up to now gets 410. */
  expireHistory(): void {
    this.history.length = 0;
    this.compactedRV = ++this.rv;
  }

  async close(): Promise<void> {
    this.resumeWatches();
    this.dropWatches('destroy');
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  // ------------------------------------------------------------------ internals

  private def(kind: string | undefined): ResourceDef {
    const d = RESOURCES.find((r) => r.kind === kind);
    if (!d) throw new Error(`fake apiserver: unsupported kind ${JSON.stringify(kind)}`);
    return d;
  }

  private key(def: ResourceDef, namespace: string | undefined, name: string): string {
    return def.namespaced ? `${namespace ?? 'default'}/${name}` : name;
  }

  private record(ev: WatchEvent): void {
    this.history.push(ev);
    while (this.history.length > this.historyLimit) this.compactedRV = this.history.shift()!.rv;
    for (const w of this.watches) if (w.def.kind === ev.kind) this.send(w, ev);
  }

  /** Writes an event to a watch, translating selector transitions as the API server does. */
  private send(w: OpenWatch, ev: WatchEvent): void {
    const now = w.matches(ev.object);
    const before = ev.previous ? w.matches(ev.previous) : false;
    let type: string = ev.type;
    if (ev.type === 'MODIFIED' && !before) type = 'ADDED';
    if (ev.type === 'MODIFIED' && before && !now) type = 'DELETED';
    if (!now && !(type === 'DELETED' && before)) return;
    this.writeEvent(w, type, { kind: w.def.kind, apiVersion: w.def.apiVersion, ...ev.object });
  }

  private writeEvent(w: OpenWatch, type: string, object: Obj): void {
    if (!w.res.writableEnded && !w.res.destroyed) w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  private closeWatch(w: OpenWatch, how: 'destroy' | 'end'): void {
    if (!this.watches.delete(w)) return;
    clearTimeout(w.bookmark);
    clearTimeout(w.deadline);
    if (how === 'destroy') w.res.socket?.destroy();
    else w.res.end();
  }

  private route(path: string): { def: ResourceDef; namespace?: string } | undefined {
    for (const def of RESOURCES) {
      if (path === `${def.prefix}/${def.plural}`) return { def };
      const m = def.namespaced ? new RegExp(`^${def.prefix}/namespaces/([^/]+)/${def.plural}$`).exec(path) : null;
      if (m) return { def, namespace: decodeURIComponent(m[1]!) };
    }
    return undefined;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams);
    const watch = query.watch === 'true' || query.watch === '1';
    const entry: LoggedRequest = { method: req.method ?? 'GET', path: url.pathname, query, watch, status: 200 };
    this.requests.push(entry);
    const reply = (code: number, body: Obj): void => {
      entry.status = code;
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const route = this.route(url.pathname);
    if (!route) return reply(404, status(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`));
    if (req.method !== 'GET') return reply(405, status(405, 'MethodNotAllowed', `${req.method} is not supported`));
    const { def, namespace } = route;
    if (def.crd && !this.installed.has(def.kind)) return reply(404, status(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`));
    let matches: Selector;
    try {
      const label = parseLabelSelector(query.labelSelector ?? '');
      const field = parseFieldSelector(query.fieldSelector ?? '');
      matches = (o) => (namespace === undefined || o.metadata?.namespace === namespace) && label(o) && field(o);
    } catch (e) {
      if (e instanceof BadRequest) return reply(400, status(400, 'BadRequest', e.message));
      throw e;
    }
    if (watch && this.paused) {
      this.paused.push(() => (res.socket && !res.socket.destroyed ? this.handle(req, res) : undefined));
      this.requests.pop();
      return;
    }
    const i = this.failures.findIndex((f) => f.watch === watch && (f.kind === undefined || f.kind === def.kind));
    const injected = i >= 0 ? this.failures.splice(i, 1)[0]!.code : undefined;
    if (injected !== undefined) {
      const reason = injected === 403 ? 'Forbidden' : injected === 401 ? 'Unauthorized' : 'InternalError';
      return reply(injected, status(injected, reason, `injected failure (${injected})`));
    }
    if (!watch) {
      // As the real API: list items carry no kind / apiVersion.
      const items = [...this.objects.get(def.kind)!.values()].filter(matches).map(({ kind: _k, apiVersion: _a, ...rest }) => clone(rest));
      return reply(200, { kind: `${def.kind}List`, apiVersion: def.apiVersion, metadata: { resourceVersion: String(this.rv) }, items });
    }
    this.startWatch(def, matches, query, entry, res);
  }

  private startWatch(def: ResourceDef, matches: Selector, query: Record<string, string>, entry: LoggedRequest, res: http.ServerResponse): void {
    const from = query.resourceVersion === undefined || query.resourceVersion === '' || query.resourceVersion === '0' ? undefined : Number(query.resourceVersion);
    if (from !== undefined && !Number.isInteger(from)) {
      entry.status = 400;
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify(status(400, 'BadRequest', `invalid resource version: ${query.resourceVersion}`)));
      return;
    }
    const gone = from !== undefined && from < this.compactedRV;
    const goneStatus = status(410, 'Expired', `too old resource version: ${from} (${this.compactedRV})`);
    if (gone && this.goneAs === 'status') {
      entry.status = 410;
      res.writeHead(410, { 'content-type': 'application/json' });
      res.end(JSON.stringify(goneStatus));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const w: OpenWatch = { res, def, matches };
    if (gone) {
      this.writeEvent(w, 'ERROR', goneStatus);
      res.end();
      return;
    }
    this.watches.add(w);
    res.on('close', () => this.closeWatch(w, 'end'));
    if (from === undefined) {
      // "Start at any": synthetic ADDED events for the current state.
      for (const o of this.objects.get(def.kind)!.values()) if (matches(o)) this.writeEvent(w, 'ADDED', { kind: def.kind, apiVersion: def.apiVersion, ...o });
    } else {
      for (const ev of this.history) if (ev.rv > from && ev.kind === def.kind) this.send(w, ev);
    }
    if (query.allowWatchBookmarks === 'true') {
      const tick = (): void => {
        this.writeEvent(w, 'BOOKMARK', { kind: def.kind, apiVersion: def.apiVersion, metadata: { resourceVersion: String(this.rv) } });
        w.bookmark = setTimeout(tick, this.bookmarkIntervalMs).unref();
      };
      w.bookmark = setTimeout(tick, this.bookmarkIntervalMs).unref();
    }
    const timeout = Number(query.timeoutSeconds);
    if (query.timeoutSeconds !== undefined && Number.isFinite(timeout) && timeout > 0) {
      w.deadline = setTimeout(() => this.closeWatch(w, 'end'), timeout * 1000).unref();
    }
  }
}

/** Polls `pred` until it holds; rejects with `what` after `timeoutMs` (a bound, not a sleep). */
export async function waitFor(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
