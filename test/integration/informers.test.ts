// The real @kubernetes/client-node informers, supervised by src/cluster/informers.ts, against the
// fake API server: sync, events, dropped watches, 410 both ways, failing lists, throwing handlers,
// stop(), and list/watch agreement on NetworkPolicy `from`.
import test from 'ava';
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { FakeApiServer, waitFor, type Obj } from '../support/fake-apiserver.js';
import { createInformers, listItemToWire, type InformerSet, type RestartInfo, type InformerErrorInfo } from '../../src/cluster/informers.js';
import type { ClusterObject, NetworkPolicy, Pod } from '../../src/cluster/model.js';

const unhandled: unknown[] = [];
process.on('unhandledRejection', (e) => unhandled.push(e));

class RecordingSink {
  readonly objects = new Map<string, ClusterObject>();
  readonly removed: string[] = [];
  upserts = 0;
  throwOn?: (o: ClusterObject | string) => boolean;
  upsert(o: ClusterObject): void {
    if (this.throwOn?.(o)) throw new Error(`sink refuses ${o.name}`);
    this.upserts++;
    this.objects.set(`${o.kind} ${'namespace' in o ? `${o.namespace}/` : ''}${o.name}`, o);
  }
  remove(kind: ClusterObject['kind'], key: string): void {
    if (this.throwOn?.(`${kind} ${key}`)) throw new Error(`sink refuses to remove ${key}`);
    this.removed.push(`${kind} ${key}`);
    this.objects.delete(`${kind} ${key}`);
  }
  has(id: string): boolean {
    return this.objects.has(id);
  }
  get<T extends ClusterObject>(id: string): T {
    const o = this.objects.get(id);
    if (!o) throw new Error(`sink has no ${id}`);
    return o as T;
  }
}

interface Env {
  server: FakeApiServer;
  sink: RecordingSink;
  informers: InformerSet;
  logs: Record<string, unknown>[];
  restarts: RestartInfo[];
  errors: InformerErrorInfo[];
}

const BACKOFF = { initialMs: 40, maxMs: 400 };

function kubeConfig(server: FakeApiServer): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromClusterAndUser({ name: 'fake', server: server.url, skipTLSVerify: true }, { name: 'test', token: 'x' });
  return kc;
}

async function setup(seed: Obj[] = [], opts: ConstructorParameters<typeof FakeApiServer>[0] = {}): Promise<Env> {
  const server = await FakeApiServer.start(opts);
  seed.forEach((o) => server.apply(o));
  const sink = new RecordingSink();
  const logs: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  const informers = createInformers(kubeConfig(server), sink, { logger: pino({ level: 'debug' }, stream), backoff: BACKOFF });
  const env: Env = { server, sink, informers, logs, restarts: [], errors: [] };
  informers.on('restart', (i) => env.restarts.push(i));
  informers.on('error', (i) => env.errors.push(i));
  return env;
}

async function teardown(env: Env): Promise<void> {
  await env.informers.stop();
  await env.server.close();
}

const withEnv = (seed: () => Obj[], fn: (t: any, env: Env) => Promise<void>, opts?: ConstructorParameters<typeof FakeApiServer>[0]) => async (t: any) => {
  const env = await setup(seed(), opts);
  try {
    await fn(t, env);
  } finally {
    await teardown(env);
  }
  t.deepEqual(unhandled, [], 'no unhandled rejections');
};

const ns = (name: string, labels: Record<string, string> = {}): Obj => ({ kind: 'Namespace', metadata: { name, labels } });
const pod = (namespace: string, name: string, ip: string, labels: Record<string, string> = {}): Obj => ({
  kind: 'Pod',
  metadata: { namespace, name, labels },
  spec: { nodeName: 'node-a', containers: [{ name: 'c', image: 'x', ports: [{ name: 'http', containerPort: 8080 }] }] },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
});
const node = (name: string, cidr: string, ip: string): Obj => ({
  kind: 'Node',
  metadata: { name },
  spec: { podCIDR: cidr, podCIDRs: [cidr] },
  status: { addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: name }] },
});
const service = (namespace: string, name: string, clusterIP: string): Obj => ({
  kind: 'Service',
  metadata: { namespace, name },
  spec: { type: 'NodePort', clusterIP, clusterIPs: [clusterIP], ports: [{ port: 80, targetPort: 8080, nodePort: 30080, protocol: 'TCP' }] },
});
/** A policy whose meaning depends on `from` and `to`: lose them and it allows everything. */
const policy = (namespace: string, name: string): Obj => ({
  kind: 'NetworkPolicy',
  metadata: { namespace, name },
  spec: {
    podSelector: { matchLabels: { app: 'db' } },
    policyTypes: ['Ingress', 'Egress'],
    ingress: [
      {
        from: [
          { podSelector: { matchLabels: { app: 'web' } } },
          { namespaceSelector: { matchLabels: { team: 'a' } }, podSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['fe', 'be'] }] } },
          { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } },
        ],
        ports: [{ protocol: 'TCP', port: 5432 }, { port: 'http' }, { protocol: 'UDP', port: 1000, endPort: 2000 }],
      },
    ],
    egress: [{ to: [{ ipBlock: { cidr: '192.168.0.0/16' } }], ports: [{ port: 53, protocol: 'UDP' }] }],
  },
});

const cluster = (): Obj[] => [
  ns('a', { team: 'a' }),
  ns('b'),
  pod('a', 'web', '10.244.1.5', { app: 'web' }),
  pod('b', 'db', '10.244.2.7', { app: 'db' }),
  node('node-a', '10.244.1.0/24', '192.0.2.10'),
  service('a', 'web', '10.96.0.10'),
  policy('b', 'db-allow'),
];

test(
  'initial sync of all five kinds, normalised, keys ns/name and name',
  withEnv(cluster, async (t, { server, sink, informers }) => {
    t.false(informers.synced());
    await informers.start();
    t.true(await informers.waitForSync(10_000));
    t.true(informers.synced());
    t.deepEqual([...sink.objects.keys()].sort(), [
      'Namespace a',
      'Namespace b',
      'NetworkPolicy b/db-allow',
      'Node node-a',
      'Pod a/web',
      'Pod b/db',
      'Service a/web',
    ]);
    t.like(sink.get('Pod a/web'), { kind: 'Pod', namespace: 'a', name: 'web', ips: ['10.244.1.5'], nodeName: 'node-a', labels: { app: 'web' } });
    t.deepEqual(sink.get<Pod>('Pod a/web').ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
    t.like(sink.get('Node node-a'), { podCIDRs: ['10.244.1.0/24'], addresses: ['192.0.2.10'] });
    t.like(sink.get('Namespace a'), { labels: { team: 'a', 'kubernetes.io/metadata.name': 'a' } });
    t.like(sink.get('Service a/web'), { type: 'NodePort', clusterIPs: ['10.96.0.10'], nodePorts: [{ port: 30080, protocol: 'TCP' }] });
    const np = sink.get<NetworkPolicy>('NetworkPolicy b/db-allow');
    t.is(np.ingress[0]!.peers.length, 3, 'list-delivered policy kept its `from` peers');
    t.is(np.egress[0]!.peers.length, 1, 'and its `to` peers');
    t.is(np.invalid, undefined);
    // Pods from every namespace and node; each kind listed once and watched from the list's RV.
    const lists = server.requests.filter((r) => !r.watch).map((r) => r.path).sort();
    // ClusterNetworkPolicies are listed too; without their CRD (this server) that list is a 404 and there is no watch.
    t.deepEqual(lists, ['/api/v1/namespaces', '/api/v1/nodes', '/api/v1/pods', '/api/v1/services', '/apis/networking.k8s.io/v1/networkpolicies', '/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies']);
    await waitFor(() => server.openWatches === 5, 'five watches');
    for (const w of server.requests.filter((r) => r.watch)) {
      t.is(w.query.resourceVersion, server.resourceVersion);
      t.is(w.query.allowWatchBookmarks, 'true');
      t.true(Number(w.query.timeoutSeconds) >= 300);
    }
    t.is(informers.restarts(), 0);
  }),
);

test(
  'add, update and delete events reach the sink',
  withEnv(cluster, async (t, { server, sink, informers }) => {
    await informers.start();
    t.true(await informers.waitForSync(10_000));
    server.apply(pod('a', 'new', '10.244.1.9', { app: 'web' }));
    server.apply(pod('a', 'web', '10.244.1.5', { app: 'web', v: '2' }));
    server.apply(ns('c'));
    server.apply(node('node-b', '10.244.2.0/24', '192.0.2.11'));
    await waitFor(() => sink.has('Pod a/new') && sink.get<Pod>('Pod a/web').labels.v === '2' && sink.has('Namespace c') && sink.has('Node node-b'), 'adds and update');
    server.remove('Pod', 'a', 'new');
    server.remove('Namespace', undefined, 'b');
    server.remove('NetworkPolicy', 'b', 'db-allow');
    server.remove('Service', 'a', 'web');
    server.remove('Node', undefined, 'node-a');
    await waitFor(() => sink.removed.length === 5, 'five removes');
    t.deepEqual(sink.removed.sort(), ['Namespace b', 'NetworkPolicy b/db-allow', 'Node node-a', 'Pod a/new', 'Service a/web']);
    t.false(sink.has('Pod a/new'));
    t.true(sink.has('Pod a/web'));
    t.is(informers.restarts(), 0);
  }),
);

for (const how of ['destroy', 'end'] as const) {
  test(
    `watch dropped (${how}) → re-watch from the last RV, catch up on what happened meanwhile, no relist`,
    withEnv(cluster, async (t, { server, sink, informers }) => {
      await informers.start();
      t.true(await informers.waitForSync(10_000));
      await waitFor(() => server.openWatches === 5, 'five watches');
      const listsBefore = server.requests.filter((r) => !r.watch).length;
      server.pauseWatches();
      t.is(server.dropWatches(how), 5);
      // While disconnected:
      server.apply(pod('a', 'meanwhile', '10.244.1.77'));
      server.remove('Pod', 'b', 'db');
      server.apply(policy('a', 'second'));
      await waitFor(() => server.heldWatches === 5, 'five re-watches');
      server.resumeWatches();
      await waitFor(() => sink.has('Pod a/meanwhile') && !sink.has('Pod b/db') && sink.has('NetworkPolicy a/second'), 'catch-up');
      t.deepEqual(sink.removed, ['Pod b/db']);
      t.is(server.requests.filter((r) => !r.watch).length, listsBefore, 'no relist');
      t.is(informers.restarts(), 0);
      // Still live afterwards.
      server.apply(pod('a', 'after', '10.244.1.78'));
      await waitFor(() => sink.has('Pod a/after'), 'event after reconnect');
    }),
  );
}

for (const goneAs of ['status', 'event'] as const) {
  test(
    `410 Gone as ${goneAs === 'status' ? 'an HTTP status' : 'an ERROR event'} → relist, vanished objects removed`,
    withEnv(
      cluster,
      async (t, { server, sink, informers }) => {
        await informers.start();
        t.true(await informers.waitForSync(10_000));
        await waitFor(() => server.openWatches === 5, 'five watches');
        server.pauseWatches();
        server.dropWatches('end');
        server.remove('Pod', 'b', 'db');
        server.remove('NetworkPolicy', 'b', 'db-allow');
        server.apply(pod('a', 'meanwhile', '10.244.1.77'));
        server.expireHistory();
        await waitFor(() => server.heldWatches === 5, 'five re-watches');
        server.resumeWatches();
        await waitFor(() => !sink.has('Pod b/db') && !sink.has('NetworkPolicy b/db-allow') && sink.has('Pod a/meanwhile'), 'relist');
        t.deepEqual(sink.removed.sort(), ['NetworkPolicy b/db-allow', 'Pod b/db']);
        t.true(server.requests.some((r) => r.watch && r.status === (goneAs === 'status' ? 410 : 200)));
        t.is(server.requests.filter((r) => !r.watch && !r.path.includes('clusternetworkpolicies')).length, 10, 'every kind relisted once');
        t.is(informers.restarts(), 0, 'client-node handles 410 itself');
        server.apply(pod('a', 'after', '10.244.1.78'));
        await waitFor(() => sink.has('Pod a/after'), 'event after the relist');
      },
      { goneAs },
    ),
  );
}

test(
  'a list failing 3 times: not synced, restarted with exponential backoff, then synced',
  withEnv(cluster, async (t, { server, informers, restarts, errors }) => {
    server.failLists(3, 500, 'NetworkPolicy');
    const synced: boolean[] = [];
    informers.on('synced', () => synced.push(true));
    await informers.start();
    t.false(informers.synced(), 'a failed list is not a sync');
    t.true(await informers.waitForSync(10_000));
    t.deepEqual(synced, [true]);
    t.is(informers.restarts(), 3);
    t.deepEqual(
      restarts.map((r) => [r.kind, r.attempt]),
      [
        ['NetworkPolicy', 1],
        ['NetworkPolicy', 2],
        ['NetworkPolicy', 3],
      ],
    );
    restarts.forEach((r, i) => {
      const base = Math.min(BACKOFF.maxMs, BACKOFF.initialMs * 2 ** i);
      t.true(r.delayMs >= base / 2 && r.delayMs <= base, `delay ${r.delayMs} within [${base / 2}, ${base}]`);
      t.regex(r.error, /500/);
    });
    t.is(errors.length, 3);
    t.true(errors.every((e) => e.kind === 'NetworkPolicy' && !e.handler));
    t.is(server.requests.filter((r) => !r.watch && r.path.endsWith('/networkpolicies')).length, 4);
  }),
);

test(
  'a permanently forbidden list: waitForSync resolves false on timeout, retries continue, stop() ends them',
  withEnv(cluster, async (t, { server, informers, restarts }) => {
    server.failLists(10_000, 403, 'Node');
    await informers.start();
    t.false(await informers.waitForSync(300));
    t.false(informers.synced());
    await waitFor(() => restarts.length >= 3, 'three restarts');
    t.true(restarts.every((r) => r.kind === 'Node' && /403/.test(r.error)));
    t.true(restarts.every((r) => r.delayMs <= BACKOFF.maxMs));
    await informers.stop();
    t.false(await informers.waitForSync(10_000), 'a stopped set never syncs');
  }),
);

test(
  'a broken watch (HTTP 500) restarts the informer; its relist removes what vanished while it was down',
  withEnv(cluster, async (t, { server, sink, informers, restarts }) => {
    await informers.start();
    t.true(await informers.waitForSync(10_000));
    await waitFor(() => server.openWatches === 5, 'five watches');
    server.failWatches(1, 500, 'Pod');
    server.failLists(1, 503, 'Pod');
    server.dropWatches('end');
    // Invisible to the pods informer: its watch is gone and its restart has to list.
    server.remove('Pod', 'b', 'db');
    server.apply(pod('a', 'meanwhile', '10.244.1.77'));
    await waitFor(() => !sink.has('Pod b/db') && sink.has('Pod a/meanwhile'), 'pods caught up after restart');
    t.deepEqual(
      restarts.map((r) => [r.kind, r.attempt]),
      [
        ['Pod', 1],
        ['Pod', 2],
      ],
    );
    t.deepEqual(sink.removed, ['Pod b/db']);
    await waitFor(() => server.openWatches === 5, 'five watches again');
  }),
);

test(
  'connection refused at start: restarted until the server is there',
  withEnv(cluster, async (t, { server }) => {
    const sink = new RecordingSink();
    // A config pointing at a port nobody listens on, then at the server: the first tries fail.
    const kc = kubeConfig(server);
    const real = kc.clusters[0]!.server;
    kc.clusters = [{ ...kc.clusters[0]!, server: 'http://127.0.0.1:1' }];
    const informers = createInformers(kc, sink, { backoff: BACKOFF });
    const restarts: RestartInfo[] = [];
    informers.on('restart', (r) => {
      restarts.push(r);
      if (restarts.length === 5) kc.clusters = [{ ...kc.clusters[0]!, server: real }];
    });
    try {
      await informers.start();
      t.false(informers.synced());
      t.true(await informers.waitForSync(10_000));
      t.true(restarts.length >= 5);
      t.true(sink.has('NetworkPolicy b/db-allow'));
    } finally {
      await informers.stop();
    }
  }),
);

test(
  'handlers that throw are logged and counted, never crash, and later events still flow',
  withEnv(cluster, async (t, { server, sink, informers, errors, logs }) => {
    informers.on('error', () => {
      throw new Error('listener bug');
    });
    sink.throwOn = (o) => (typeof o === 'string' ? o === 'Pod a/boom' : o.name === 'boom');
    await informers.start();
    t.true(await informers.waitForSync(10_000));
    server.apply(pod('a', 'boom', '10.244.1.66'));
    server.apply(pod('a', 'fine', '10.244.1.67'));
    await waitFor(() => sink.has('Pod a/fine'), 'the next event');
    server.remove('Pod', 'a', 'boom');
    server.remove('Pod', 'a', 'fine');
    await waitFor(() => sink.removed.includes('Pod a/fine'), 'the next remove');
    t.is(informers.handlerErrors(), 2);
    t.deepEqual(
      errors.map((e) => [e.kind, e.handler, e.error.message]),
      [
        ['Pod', true, 'sink refuses boom'],
        ['Pod', true, 'sink refuses to remove a/boom'],
      ],
    );
    t.true(logs.some((l) => l.msg === 'informer event listener threw'));
    t.true(logs.some((l) => /upsert threw/.test(String(l.msg))));
    t.is(informers.restarts(), 0);
  }),
);

test(
  'a malformed watch event (no metadata) inside client-node restarts the informer instead of an unhandled rejection',
  withEnv(cluster, async (t, { server, sink, informers, restarts }) => {
    await informers.start();
    t.true(await informers.waitForSync(10_000));
    await waitFor(() => server.openWatches === 5, 'five watches');
    server.injectWatchLine('Pod', 'not json at all'); // client-node skips unparsable lines
    server.injectWatchLine('Pod', '{"type":"ADDED","object":{"kind":"Pod"}}');
    await waitFor(() => restarts.length === 1, 'a restart');
    t.is(restarts[0]!.kind, 'Pod');
    t.regex(restarts[0]!.error, /metadata|undefined/);
    server.apply(pod('a', 'after', '10.244.1.78'));
    await waitFor(() => sink.has('Pod a/after'), 'events after the restart');
  }),
);

test(
  'objects with findings are logged; an object that cannot be read keeps its previous version',
  withEnv(cluster, async (t, { server, sink, informers, logs }) => {
    await informers.start();
    t.true(await informers.waitForSync(10_000));
    server.apply({ ...pod('a', 'web', 'not-an-ip', { app: 'web' }) });
    await waitFor(() => logs.some((l) => l.msg === 'object not understood; keeping the previous version'), 'the error log');
    t.deepEqual(sink.get<Pod>('Pod a/web').ips, ['10.244.1.5']);
    t.true(logs.some((l) => l.code === 'invalid-ip' && /Pod a\/web/.test(String(l.msg)) && /status\.pod/.test(String(l.msg))));
  }),
);

test(
  'stop() ends cleanly: watches closed, the AbortError it causes is ignored, no restart',
  withEnv(cluster, async (t, { server, informers, restarts, errors, logs }) => {
    await informers.start();
    t.true(await informers.waitForSync(10_000));
    await waitFor(() => server.openWatches === 5, 'five watches');
    const requests = server.requests.length;
    await informers.stop();
    await waitFor(() => server.openWatches === 0, 'watches closed');
    await waitFor(() => logs.filter((l) => l.msg === 'ignoring informer error after stop or restart').length === 5, 'the five AbortErrors');
    t.true(logs.filter((l) => l.msg === 'ignoring informer error after stop or restart').every((l) => /abort/i.test(String(l.err))));
    t.deepEqual(restarts, []);
    t.deepEqual(errors, []);
    t.is(informers.restarts(), 0);
    t.is(server.requests.length, requests, 'no request after stop');
    await informers.stop(); // idempotent
  }),
);

test(
  'stop() during an in-flight start leaves no watch behind',
  withEnv(cluster, async (t, { server, informers }) => {
    server.pauseWatches();
    const starting = informers.start();
    await waitFor(() => server.heldWatches === 5, 'five watch requests in flight');
    const stopping = informers.stop();
    server.resumeWatches();
    await stopping;
    await starting;
    await waitFor(() => server.openWatches === 0, 'no open watch');
    t.is(informers.restarts(), 0);
  }),
);

test(
  'a NetworkPolicy delivered by list (typed `_from`) and by watch (raw `from`) normalises identically',
  withEnv(cluster, async (t, { server, sink, informers }) => {
    // The trap is real: client-node's typed list renames `from`.
    const typed = await kubeConfig(server).makeApiClient(k8s.NetworkingV1Api).listNetworkPolicyForAllNamespaces({});
    const rule = typed.items[0]!.spec!.ingress![0]! as unknown as Record<string, unknown>;
    t.truthy(rule._from);
    t.is(rule.from, undefined);
    t.true(typed.items[0]!.metadata!.creationTimestamp instanceof Date);

    await informers.start();
    t.true(await informers.waitForSync(10_000));
    server.apply(policy('b', 'via-watch'));
    await waitFor(() => sink.has('NetworkPolicy b/via-watch'), 'watch delivery');
    const viaList = sink.get<NetworkPolicy>('NetworkPolicy b/db-allow');
    const viaWatch = sink.get<NetworkPolicy>('NetworkPolicy b/via-watch');
    const strip = ({ name: _n, uid: _u, ...rest }: NetworkPolicy) => rest;
    t.deepEqual(strip(viaList), strip(viaWatch));
    t.is(viaList.ingress[0]!.peers.length, 3);
    t.deepEqual(viaList.ingress[0]!.peers[2], { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } });
    t.deepEqual(viaList.egress[0]!.peers, [{ ipBlock: { cidr: '192.168.0.0/16', except: [] } }]);
  }),
);

test('listItemToWire: typed model back to the wire shape', (t) => {
  const wire = listItemToWire(
    {
      metadata: { name: 'x', namespace: 'a', creationTimestamp: new Date('2024-01-02T03:04:05Z') },
      spec: { podSelector: {}, ingress: [{ _from: [{ podSelector: {} }], ports: [{ port: 'http' }] }] },
    },
    { kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1', model: 'V1NetworkPolicy' },
  );
  t.deepEqual(wire, {
    kind: 'NetworkPolicy',
    apiVersion: 'networking.k8s.io/v1',
    metadata: { name: 'x', namespace: 'a', creationTimestamp: '2024-01-02T03:04:05.000Z' },
    spec: { podSelector: {}, ingress: [{ from: [{ podSelector: {} }], ports: [{ port: 'http' }] }] },
  });
});
