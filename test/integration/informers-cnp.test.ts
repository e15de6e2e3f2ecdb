// The ClusterNetworkPolicy informer against the fake API server: a cluster without the CRD is normal
// (404 = none, logged once, rechecked, the other kinds sync), the CRD appearing starts enforcement,
// the CRD removed removes them, 403 keeps the last known ones, invalid objects keep the previous
// version, and list and watch read a CNP identically.
import test from 'ava';
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { FakeApiServer, waitFor, type Obj } from '../support/fake-apiserver.js';
import { createInformers, type InformerSet } from '../../src/cluster/informers.js';
import type { ClusterNetworkPolicy, ClusterObject } from '../../src/cluster/model.js';

const unhandled: unknown[] = [];
process.on('unhandledRejection', (e) => unhandled.push(e));

class Sink {
  readonly objects = new Map<string, ClusterObject>();
  readonly removed: string[] = [];
  upsert(o: ClusterObject): void {
    this.objects.set(`${o.kind} ${'namespace' in o ? `${o.namespace}/` : ''}${o.name}`, o);
  }
  remove(kind: ClusterObject['kind'], key: string): void {
    this.removed.push(`${kind} ${key}`);
    this.objects.delete(`${kind} ${key}`);
  }
  cnp(name: string): ClusterNetworkPolicy | undefined {
    return this.objects.get(`ClusterNetworkPolicy ${name}`) as ClusterNetworkPolicy | undefined;
  }
}

interface Env {
  server: FakeApiServer;
  sink: Sink;
  informers: InformerSet;
  logs: Record<string, unknown>[];
}

const RECHECK_MS = 150;

async function setup(opts: { crd: boolean; seed?: Obj[] }): Promise<Env> {
  const server = await FakeApiServer.start();
  if (opts.crd) server.installCRD('ClusterNetworkPolicy');
  for (const o of opts.seed ?? []) server.apply(o);
  const sink = new Sink();
  const logs: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  const kc = new k8s.KubeConfig();
  kc.loadFromClusterAndUser({ name: 'fake', server: server.url, skipTLSVerify: true }, { name: 'test', token: 'x' });
  const informers = createInformers(kc, sink, { logger: pino({ level: 'debug' }, stream), backoff: { initialMs: 40, maxMs: 400 }, crdRecheckMs: RECHECK_MS });
  return { server, sink, informers, logs };
}

const run = (opts: { crd: boolean; seed?: Obj[] }, fn: (t: any, env: Env) => Promise<void>) => async (t: any) => {
  const env = await setup(opts);
  try {
    await fn(t, env);
  } finally {
    await env.informers.stop();
    await env.server.close();
  }
  t.deepEqual(unhandled, [], 'no unhandled rejections');
};

const ns = (name: string): Obj => ({ kind: 'Namespace', metadata: { name } });
const cnp = (name: string, action = 'Deny', priority = 10): Obj => ({
  kind: 'ClusterNetworkPolicy',
  metadata: { name },
  spec: {
    tier: 'Admin',
    priority,
    subject: { namespaces: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } },
    ingress: [{ name: 'guard', action, from: [{ namespaces: {} }], protocols: [{ tcp: { destinationPort: { range: { start: 1, end: 1024 } } } }, { destinationNamedPort: 'dns' }] }],
    egress: [{ action: 'Accept', to: [{ networks: ['10.0.0.0/8'] }, { pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'x' } } } }] }],
  },
});
const msgs = (env: Env, re: RegExp) => env.logs.filter((l) => re.test(String(l.msg)));
const cnpRequests = (env: Env) => env.server.requests.filter((r) => r.path.includes('clusternetworkpolicies'));

test(
  'no CRD: 404 means no ClusterNetworkPolicies — the other kinds sync, it is logged once and rechecked',
  run({ crd: false, seed: [ns('a')] }, async (t, env) => {
    await env.informers.start();
    t.true(await env.informers.waitForSync(5000), 'synced without the CRD');
    t.true(env.sink.objects.has('Namespace a'));
    t.deepEqual(env.informers.unavailableKinds().map((u) => [u.kind, u.reason]), [['ClusterNetworkPolicy', 'not-installed']]);
    await waitFor(() => cnpRequests(env).length >= 4, 'three rechecks');
    t.true(cnpRequests(env).every((r) => r.status === 404 && !r.watch), 'lists only, each 404');
    t.is(msgs(env, /clusternetworkpolicies\.policy\.networking\.k8s\.io is not installed/).length, 1, 'logged once');
    t.is(env.informers.restarts(), 0, 'a missing CRD is not an informer failure');
    t.false(env.logs.some((l) => l.level === 50), 'nothing logged as an error');
  }),
);

test(
  'the CRD appears: its objects are read and enforcement starts; updates and deletes follow the watch',
  run({ crd: false }, async (t, env) => {
    await env.informers.start();
    t.true(await env.informers.waitForSync(5000));
    env.server.installCRD('ClusterNetworkPolicy');
    env.server.apply(cnp('kube-system-guard'));
    await waitFor(() => env.sink.cnp('kube-system-guard') !== undefined, 'the CNP read after the CRD appeared');
    t.is(msgs(env, /can be listed now: enforcing them/).length, 1);
    t.deepEqual(env.informers.unavailableKinds(), []);
    env.server.apply(cnp('kube-system-guard', 'Pass'));
    await waitFor(() => env.sink.cnp('kube-system-guard')?.ingress[0]?.action === 'Pass', 'the update through the watch');
    env.server.apply(cnp('second', 'Accept', 5));
    await waitFor(() => env.sink.cnp('second') !== undefined, 'a new CNP through the watch');
    env.server.remove('ClusterNetworkPolicy', undefined, 'second');
    await waitFor(() => env.sink.removed.includes('ClusterNetworkPolicy second'), 'the delete through the watch');
    t.true(cnpRequests(env).some((r) => r.watch && r.status === 200), 'watching');
  }),
);

test(
  'the CRD removed: its objects are removed (none exist any more), and it is rechecked again',
  run({ crd: true, seed: [cnp('a'), cnp('b')] }, async (t, env) => {
    await env.informers.start();
    t.true(await env.informers.waitForSync(5000));
    t.truthy(env.sink.cnp('a'));
    t.truthy(env.sink.cnp('b'));
    env.server.uninstallCRD('ClusterNetworkPolicy');
    await waitFor(() => !env.sink.cnp('a') && !env.sink.cnp('b'), 'both removed');
    await waitFor(() => env.informers.unavailableKinds().some((u) => u.reason === 'not-installed'), 'known as not installed');
    env.server.installCRD('ClusterNetworkPolicy');
    env.server.apply(cnp('c'));
    await waitFor(() => env.sink.cnp('c') !== undefined, 'back once reinstalled');
  }),
);

test(
  '403 (the ClusterRole lacks the permission): the last known ClusterNetworkPolicies stay, an error each check, sync not held up',
  run({ crd: true, seed: [cnp('a')] }, async (t, env) => {
    await env.informers.start();
    t.true(await env.informers.waitForSync(5000));
    t.truthy(env.sink.cnp('a'));
    // The watch breaks and every list from now on is forbidden.
    env.server.failLists(1000, 403, 'ClusterNetworkPolicy');
    env.server.failWatches(1000, 403, 'ClusterNetworkPolicy');
    env.server.dropWatches();
    await waitFor(() => msgs(env, /403 Forbidden\): the ClusterRole lacks get\/list\/watch/).length >= 2, 'an error at each check');
    t.truthy(env.sink.cnp('a'), 'kept: podwall cannot see whether it changed');
    t.deepEqual(env.informers.unavailableKinds().map((u) => u.reason), ['forbidden']);
    const e = msgs(env, /403 Forbidden/)[0]!;
    t.is(e.level, 50);
    t.regex(String(e.msg), /the 1 last known ClusterNetworkPolicy objects stay in force/);
    env.server.clearFailures();
    await waitFor(() => env.informers.unavailableKinds().length === 0, 'readable again');
  }),
);

test(
  '403 from the start: not synced (the rules in the kernel stay), an error naming the permission, synced once it can be read',
  run({ crd: true, seed: [ns('a'), cnp('g')] }, async (t, env) => {
    env.server.failLists(3, 403, 'ClusterNetworkPolicy');
    await env.informers.start();
    await waitFor(() => msgs(env, /403 Forbidden\): the ClusterRole lacks get\/list\/watch on it; not synced/).length > 0, 'the error');
    t.true(env.sink.objects.has('Namespace a'), 'the other kinds are read');
    t.false(env.informers.synced(), 'never synced without the ClusterNetworkPolicies it may have to enforce');
    t.true(await env.informers.waitForSync(10_000), 'synced once allowed');
    t.truthy(env.sink.cnp('g'));
  }),
);

test(
  'an invalid update is not understood: the previous version stays, the log names object and field',
  run({ crd: true, seed: [cnp('guard')] }, async (t, env) => {
    await env.informers.start();
    t.true(await env.informers.waitForSync(5000));
    const before = env.sink.cnp('guard');
    t.truthy(before);
    const bad = cnp('guard');
    bad.spec.priority = 5000;
    env.server.apply(bad);
    await waitFor(() => msgs(env, /ClusterNetworkPolicy guard: spec\.priority: 5000 is out of range/).length > 0, 'the finding logged');
    await waitFor(() => msgs(env, /object not understood; keeping the previous version/).length > 0, 'kept');
    t.deepEqual(env.sink.cnp('guard'), before);
    // An unsupported peer is kept (read fail closed) and reported.
    const experimental = cnp('guard');
    experimental.spec.egress = [{ action: 'Deny', to: [{ nodes: {} }] }];
    env.server.apply(experimental);
    await waitFor(() => env.sink.cnp('guard')?.egress[0]?.peers[0]?.kind === 'unsupported', 'the unsupported peer kept');
    t.true(msgs(env, /spec\.egress\[0\]\.to\[0\]\.nodes: nodes peers are experimental/).length > 0);
  }),
);

test(
  'list and watch read a ClusterNetworkPolicy identically',
  run({ crd: true, seed: [cnp('listed')] }, async (t, env) => {
    await env.informers.start();
    t.true(await env.informers.waitForSync(5000));
    env.server.apply({ ...cnp('watched'), metadata: { name: 'watched' } });
    await waitFor(() => env.sink.cnp('watched') !== undefined, 'watched');
    const strip = (c: ClusterNetworkPolicy) => ({ ...c, name: 'x', uid: undefined, origin: undefined });
    t.deepEqual(strip(env.sink.cnp('listed')!), strip(env.sink.cnp('watched')!));
    t.is(env.sink.cnp('listed')!.ingress[0]!.ports.length, 2);
  }),
);
