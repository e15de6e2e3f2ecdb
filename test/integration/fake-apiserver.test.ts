// The fake API server against plain HTTP: list shape, watch from an RV, 410 both ways, bookmarks,
// selectors, timeoutSeconds and the fault-injection controls.
import test from 'ava';
import http from 'node:http';
import { FakeApiServer, waitFor, parseLabelSelector, parseFieldSelector, type Obj } from '../support/fake-apiserver.js';

interface Reply {
  status: number;
  body: any;
}

function get(server: FakeApiServer, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    http
      .get(server.url + path, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data === '' ? undefined : JSON.parse(data) }));
      })
      .on('error', reject);
  });
}

interface WatchClient {
  status: number;
  events: { type: string; object: Obj }[];
  /** 'end' for a clean end of stream, 'error' for a broken connection. */
  done: Promise<'end' | 'error'>;
  ended: boolean;
  close(): void;
}

function watch(server: FakeApiServer, path: string): Promise<WatchClient> {
  return new Promise((resolve, reject) => {
    const req = http.get(server.url + path, (res) => {
      const client: WatchClient = {
        status: res.statusCode ?? 0,
        events: [],
        ended: false,
        done: new Promise((r) => {
          res.on('end', () => r('end'));
          res.on('error', () => r('error'));
          res.on('aborted', () => r('error'));
        }),
        close: () => req.destroy(),
      };
      void client.done.then(() => (client.ended = true));
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          client.events.push(JSON.parse(buf.slice(0, nl)));
          buf = buf.slice(nl + 1);
        }
      });
      resolve(client);
    });
    req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
  });
}

const pod = (ns: string, name: string, labels: Record<string, string> = {}, nodeName = 'node-a'): Obj => ({
  kind: 'Pod',
  metadata: { namespace: ns, name, labels },
  spec: { nodeName, containers: [{ name: 'c', image: 'x' }] },
  status: { podIP: '10.0.0.1' },
});

const withServer = (fn: (t: any, s: FakeApiServer) => Promise<void>, opts?: ConstructorParameters<typeof FakeApiServer>[0]) => async (t: any) => {
  const s = await FakeApiServer.start(opts);
  try {
    await fn(t, s);
  } finally {
    await s.close();
  }
};

test(
  'list: XList with the global resourceVersion, items without kind/apiVersion, namespaced paths filter',
  withServer(async (t, s) => {
    s.apply(pod('a', 'p1'));
    s.apply(pod('b', 'p2'));
    s.apply({ kind: 'NetworkPolicy', metadata: { namespace: 'a', name: 'np' }, spec: { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] } });
    s.apply({ kind: 'Namespace', metadata: { name: 'a', namespace: 'ignored' } });
    const pods = await get(s, '/api/v1/pods');
    t.is(pods.status, 200);
    t.is(pods.body.kind, 'PodList');
    t.is(pods.body.apiVersion, 'v1');
    t.is(pods.body.metadata.resourceVersion, s.resourceVersion);
    t.deepEqual(pods.body.items.map((p: Obj) => `${p.metadata!.namespace}/${p.metadata!.name}`), ['a/p1', 'b/p2']);
    for (const item of pods.body.items) {
      t.false('kind' in item);
      t.false('apiVersion' in item);
      t.regex(item.metadata.uid, /^[0-9a-f-]{36}$/);
      t.regex(item.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
    t.true(Number(pods.body.items[0].metadata.resourceVersion) < Number(pods.body.items[1].metadata.resourceVersion));
    const inA = await get(s, '/api/v1/namespaces/a/pods');
    t.deepEqual(inA.body.items.map((p: Obj) => p.metadata!.name), ['p1']);
    const nps = await get(s, '/apis/networking.k8s.io/v1/networkpolicies');
    t.is(nps.body.kind, 'NetworkPolicyList');
    t.is(nps.body.apiVersion, 'networking.k8s.io/v1');
    t.deepEqual(nps.body.items[0].spec.ingress[0].from, [{ podSelector: {} }]);
    t.is((await get(s, '/apis/networking.k8s.io/v1/namespaces/b/networkpolicies')).body.items.length, 0);
    const nss = await get(s, '/api/v1/namespaces');
    t.is(nss.body.kind, 'NamespaceList');
    t.false('namespace' in nss.body.items[0].metadata, 'cluster-scoped objects have no namespace');
    t.is((await get(s, '/api/v1/nodes')).body.kind, 'NodeList');
    t.is((await get(s, '/api/v1/services')).body.kind, 'ServiceList');
    const missing = await get(s, '/api/v1/secrets');
    t.is(missing.status, 404);
    t.is(missing.body.kind, 'Status');
    t.is(missing.body.code, 404);
  }),
);

test(
  'apply keeps uid and creationTimestamp on update, bumps the resourceVersion; remove reports absence',
  withServer(async (t, s) => {
    const a = s.apply(pod('a', 'p1'));
    const b = s.apply(pod('a', 'p1', { v: '2' }));
    t.is(a.metadata!.uid, b.metadata!.uid);
    t.is(a.metadata!.creationTimestamp, b.metadata!.creationTimestamp);
    t.true(Number(b.metadata!.resourceVersion) > Number(a.metadata!.resourceVersion));
    t.true(s.remove('Pod', 'a', 'p1'));
    t.false(s.remove('Pod', 'a', 'p1'));
    t.throws(() => s.apply({ kind: 'Secret', metadata: { name: 'x' } }), { message: /unsupported kind/ });
    t.throws(() => s.apply({ kind: 'Pod', metadata: {} }), { message: /without metadata.name/ });
  }),
);

test(
  'watch from a list RV streams ADDED, MODIFIED, DELETED after it, with kind and apiVersion',
  withServer(async (t, s) => {
    s.apply(pod('a', 'before'));
    const rv = (await get(s, '/api/v1/pods')).body.metadata.resourceVersion;
    const w = await watch(s, `/api/v1/pods?watch=true&resourceVersion=${rv}`);
    t.is(w.status, 200);
    s.apply(pod('a', 'p1'));
    s.apply(pod('a', 'p1', { v: '2' }));
    s.remove('Pod', 'a', 'p1');
    s.apply({ kind: 'Node', metadata: { name: 'n1' } }); // other resource: not on this watch
    await waitFor(() => w.events.length >= 3, 'three events');
    t.deepEqual(
      w.events.map((e) => [e.type, e.object.kind, e.object.apiVersion, e.object.metadata!.name]),
      [
        ['ADDED', 'Pod', 'v1', 'p1'],
        ['MODIFIED', 'Pod', 'v1', 'p1'],
        ['DELETED', 'Pod', 'v1', 'p1'],
      ],
    );
    const rvs = w.events.map((e) => Number(e.object.metadata!.resourceVersion));
    t.true(rvs[0]! > Number(rv) && rvs[0]! < rvs[1]! && rvs[1]! < rvs[2]!);
    t.is(s.openWatches, 1);
    w.close();
    await waitFor(() => s.openWatches === 0, 'server to notice the closed watch');
  }),
);

test(
  'watch from an older RV replays the events after it; without an RV it starts with the current state',
  withServer(async (t, s) => {
    const first = s.apply(pod('a', 'p1'));
    s.apply(pod('a', 'p2'));
    s.remove('Pod', 'a', 'p1');
    const w = await watch(s, `/api/v1/pods?watch=true&resourceVersion=${first.metadata!.resourceVersion}`);
    await waitFor(() => w.events.length >= 2, 'replayed events');
    t.deepEqual(w.events.map((e) => `${e.type} ${e.object.metadata!.name}`), ['ADDED p2', 'DELETED p1']);
    w.close();
    const fresh = await watch(s, '/api/v1/pods?watch=true');
    await waitFor(() => fresh.events.length >= 1, 'synthetic ADDED');
    t.deepEqual(fresh.events.map((e) => `${e.type} ${e.object.metadata!.name}`), ['ADDED p2']);
    fresh.close();
  }),
);

test(
  'an RV older than the event window gets 410 Gone as an HTTP status',
  withServer(
    async (t, s) => {
      const old = s.apply(pod('a', 'p0')).metadata!.resourceVersion;
      for (let i = 1; i <= 4; i++) s.apply(pod('a', `p${i}`));
      const r = await get(s, `/api/v1/pods?watch=true&resourceVersion=${old}`);
      t.is(r.status, 410);
      t.like(r.body, { kind: 'Status', status: 'Failure', reason: 'Expired', code: 410 });
      // The newest RVs are still inside the window.
      const ok = await watch(s, `/api/v1/pods?watch=true&resourceVersion=${Number(s.resourceVersion) - 2}`);
      t.is(ok.status, 200);
      await waitFor(() => ok.events.length >= 2, 'the two newest events');
      ok.close();
      t.true(s.requests.some((q) => q.watch && q.status === 410));
    },
    { historyLimit: 3 },
  ),
);

test(
  'an RV older than the event window gets 410 Gone as an ERROR event, then the stream ends',
  withServer(
    async (t, s) => {
      const old = s.apply(pod('a', 'p0')).metadata!.resourceVersion;
      for (let i = 1; i <= 4; i++) s.apply(pod('a', `p${i}`));
      const w = await watch(s, `/api/v1/pods?watch=true&resourceVersion=${old}`);
      t.is(w.status, 200);
      t.is(await w.done, 'end');
      t.is(w.events.length, 1);
      t.is(w.events[0]!.type, 'ERROR');
      t.like(w.events[0]!.object, { kind: 'Status', code: 410, reason: 'Expired' });
    },
    { historyLimit: 3, goneAs: 'event' },
  ),
);

test(
  'expireHistory forces 410 on the next watch from a current RV; a relist gets a usable RV',
  withServer(async (t, s) => {
    s.apply(pod('a', 'p1'));
    const rv = (await get(s, '/api/v1/pods')).body.metadata.resourceVersion;
    s.expireHistory();
    t.is((await get(s, `/api/v1/pods?watch=true&resourceVersion=${rv}`)).status, 410);
    s.goneAs = 'event';
    const ev = await watch(s, `/api/v1/pods?watch=true&resourceVersion=${rv}`);
    t.is(await ev.done, 'end');
    t.is(ev.events[0]!.object.code, 410);
    const relist = await get(s, '/api/v1/pods');
    t.true(Number(relist.body.metadata.resourceVersion) > Number(rv));
    const w = await watch(s, `/api/v1/pods?watch=true&resourceVersion=${relist.body.metadata.resourceVersion}`);
    t.is(w.status, 200);
    s.apply(pod('a', 'p2'));
    await waitFor(() => w.events.length === 1, 'event after relist');
    t.is(w.events[0]!.type, 'ADDED');
    w.close();
  }),
);

test(
  'allowWatchBookmarks sends periodic BOOKMARK events carrying the current RV',
  withServer(
    async (t, s) => {
      const plain = await watch(s, `/api/v1/nodes?watch=true&resourceVersion=${s.resourceVersion}`);
      const w = await watch(s, `/api/v1/nodes?watch=true&resourceVersion=${s.resourceVersion}&allowWatchBookmarks=true`);
      s.apply(pod('a', 'p1')); // bumps the global RV, not a node event
      await waitFor(() => w.events.filter((e) => e.type === 'BOOKMARK').length >= 2, 'two bookmarks');
      const bm = w.events.find((e) => e.type === 'BOOKMARK' && e.object.metadata!.resourceVersion === s.resourceVersion);
      t.truthy(bm);
      t.like(bm!.object, { kind: 'Node', apiVersion: 'v1' });
      t.true(w.events.every((e) => e.type === 'BOOKMARK'));
      t.is(plain.events.length, 0, 'no bookmarks unless asked for');
      w.close();
      plain.close();
    },
    { bookmarkIntervalMs: 20 },
  ),
);

test(
  'label and field selectors filter lists and watches; leaving or entering the selection is DELETED/ADDED',
  withServer(async (t, s) => {
    s.apply(pod('a', 'web-a', { app: 'web' }, 'node-a'));
    s.apply(pod('a', 'web-b', { app: 'web' }, 'node-b'));
    s.apply(pod('a', 'db-a', { app: 'db', tier: 'x' }, 'node-a'));
    const names = async (q: string) => (await get(s, `/api/v1/pods?${q}`)).body.items.map((p: Obj) => p.metadata!.name).sort();
    t.deepEqual(await names('labelSelector=app%3Dweb'), ['web-a', 'web-b']);
    t.deepEqual(await names('labelSelector=app%21%3Dweb'), ['db-a']);
    t.deepEqual(await names('labelSelector=tier'), ['db-a']);
    t.deepEqual(await names('labelSelector=!tier,app==web'), ['web-a', 'web-b']);
    t.deepEqual(await names('labelSelector=app%20in%20(db,web),!tier'), ['web-a', 'web-b']);
    t.deepEqual(await names('fieldSelector=spec.nodeName%3Dnode-a'), ['db-a', 'web-a']);
    t.deepEqual(await names('fieldSelector=spec.nodeName%3Dnode-a&labelSelector=app%3Dweb'), ['web-a']);
    const bad = await get(s, '/api/v1/pods?fieldSelector=spec.foo%3Dx');
    t.is(bad.status, 400);
    t.regex(bad.body.message, /field label not supported: spec.foo/);
    t.is((await get(s, '/api/v1/pods?labelSelector=a%3D%3D%3D')).status, 400);

    const w = await watch(s, `/api/v1/pods?watch=true&resourceVersion=${s.resourceVersion}&labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dnode-a`);
    s.apply(pod('a', 'web-a', { app: 'api' }, 'node-a')); // leaves the selection
    s.apply(pod('a', 'db-a', { app: 'web' }, 'node-a')); // enters it
    s.apply(pod('a', 'other', { app: 'web' }, 'node-b')); // never in it
    s.apply(pod('a', 'db-a', { app: 'web', v: '2' }, 'node-a')); // stays in it
    await waitFor(() => w.events.length >= 3, 'three events');
    t.deepEqual(w.events.map((e) => `${e.type} ${e.object.metadata!.name}`), ['DELETED web-a', 'ADDED db-a', 'MODIFIED db-a']);
    w.close();
  }),
);

test('selector parsers', (t) => {
  const o = (labels: Record<string, string>, nodeName?: string): Obj => ({ metadata: { name: 'n', namespace: 'ns', labels }, spec: nodeName ? { nodeName } : {} });
  t.true(parseLabelSelector('')(o({})));
  t.true(parseLabelSelector('a=1,b')(o({ a: '1', b: '' })));
  t.false(parseLabelSelector('a=1,b')(o({ a: '1' })));
  t.true(parseLabelSelector('a notin (1,2)')(o({ a: '3' })));
  t.true(parseLabelSelector('example.com/x=y')(o({ 'example.com/x': 'y' })));
  t.throws(() => parseLabelSelector('a=b=c'));
  t.true(parseFieldSelector('spec.nodeName=')(o({})));
  t.true(parseFieldSelector('metadata.name=n,metadata.namespace!=kube-system')(o({})));
  t.throws(() => parseFieldSelector('nonsense'), { message: /invalid field selector/ });
});

test(
  'timeoutSeconds ends the watch stream cleanly',
  withServer(async (t, s) => {
    const w = await watch(s, `/api/v1/services?watch=true&resourceVersion=${s.resourceVersion}&timeoutSeconds=1`);
    t.is(w.status, 200);
    t.is(await w.done, 'end');
    await waitFor(() => s.openWatches === 0, 'watch forgotten');
  }),
);

test(
  'failLists answers the next n lists with the given status, then recovers; failWatches likewise',
  withServer(async (t, s) => {
    s.failLists(2, 403);
    const a = await get(s, '/api/v1/nodes');
    const b = await get(s, '/api/v1/pods');
    const c = await get(s, '/api/v1/pods');
    t.is(a.status, 403);
    t.like(a.body, { kind: 'Status', code: 403, reason: 'Forbidden' });
    t.is(b.status, 403);
    t.is(c.status, 200);
    s.failLists(1);
    t.is((await get(s, '/api/v1/pods')).status, 500);
    s.failWatches(1, 500);
    t.is((await get(s, '/api/v1/pods')).status, 200, 'a watch failure does not hit lists');
    t.is((await get(s, `/api/v1/pods?watch=true&resourceVersion=${s.resourceVersion}`)).status, 500);
    t.deepEqual(
      s.requests.map((r) => [r.path, r.watch, r.status]),
      [
        ['/api/v1/nodes', false, 403],
        ['/api/v1/pods', false, 403],
        ['/api/v1/pods', false, 200],
        ['/api/v1/pods', false, 500],
        ['/api/v1/pods', false, 200],
        ['/api/v1/pods', true, 500],
      ],
    );
    t.is(s.requests.at(-1)!.query.resourceVersion, s.resourceVersion);
  }),
);

test(
  'failures can target one kind; clearFailures forgets them; pauseWatches holds watches until resumed',
  withServer(async (t, s) => {
    s.failLists(2, 500, 'Node');
    t.is((await get(s, '/api/v1/pods')).status, 200);
    t.is((await get(s, '/api/v1/nodes')).status, 500);
    s.clearFailures();
    t.is((await get(s, '/api/v1/nodes')).status, 200);
    s.failWatches(1, 403, 'Pod');
    t.is((await get(s, `/api/v1/nodes?watch=true&resourceVersion=${s.resourceVersion}&timeoutSeconds=1`)).status, 200);
    t.is((await get(s, `/api/v1/pods?watch=true&resourceVersion=${s.resourceVersion}`)).status, 403);

    const raw = await watch(s, `/api/v1/pods?watch=true&resourceVersion=${s.resourceVersion}`);
    await waitFor(() => s.openWatches === 1, 'the watch');
    t.is(s.injectWatchLine('Pod', '{"type":"ADDED","object":{"kind":"Pod"}}'), 1);
    t.is(s.injectWatchLine('Node', '{}'), 0);
    await waitFor(() => raw.events.length === 1, 'the injected line');
    t.deepEqual(raw.events[0], { type: 'ADDED', object: { kind: 'Pod' } });
    raw.close();

    const rv = s.resourceVersion;
    s.pauseWatches();
    const held = watch(s, `/api/v1/pods?watch=true&resourceVersion=${rv}`);
    t.is((await get(s, '/api/v1/pods')).status, 200, 'lists are served while watches are paused');
    await waitFor(() => s.heldWatches === 1, 'the watch to be held');
    t.is(s.openWatches, 0);
    s.apply(pod('a', 'while-paused'));
    s.resumeWatches();
    const w = await held;
    t.is(w.status, 200);
    await waitFor(() => w.events.length === 1, 'the event made while paused');
    t.is(w.events[0]!.object.metadata!.name, 'while-paused');
    w.close();
  }),
);

test(
  'dropWatches breaks open watch connections (destroy) or ends them (end); close() ends the rest',
  withServer(async (t, s) => {
    const w1 = await watch(s, `/api/v1/pods?watch=true&resourceVersion=${s.resourceVersion}`);
    const w2 = await watch(s, `/api/v1/namespaces?watch=true&resourceVersion=${s.resourceVersion}`);
    await waitFor(() => s.openWatches === 2, 'two watches');
    t.is(s.dropWatches(), 2);
    t.is(await w1.done, 'error');
    t.is(await w2.done, 'error');
    const w3 = await watch(s, `/api/v1/pods?watch=true&resourceVersion=${s.resourceVersion}`);
    t.is(s.dropWatches('end'), 1);
    t.is(await w3.done, 'end');
    const w4 = await watch(s, `/api/v1/pods?watch=true&resourceVersion=${s.resourceVersion}`);
    await s.close();
    t.is(await w4.done, 'error');
  }),
);
