// The benchmark's cluster generator (determinism, exact profile counts, objects that survive the
// normalising boundary, a realistic policy mix), its event generators (each event changes what the
// local node enforces, and its undo restores it), and the statistics helpers.
import test from 'ava';
import { createHash } from 'node:crypto';
import type { ClusterObject, NetworkPolicy, Pod } from '../../src/cluster/model.js';
import { objectKey } from '../../src/cluster/model.js';
import { normalizeObject } from '../../src/cluster/normalize.js';
import { compile } from '../../src/policy/compile.js';
import { ipInBlock } from '../../src/net/ip.js';
import {
  EVENT_KINDS,
  GeneratorError,
  PROFILES,
  applyChanges,
  clusterObjects,
  generateCluster,
  loadIntoStore,
  localPods,
  makeEvents,
  toRawObject,
  type GeneratedCluster,
} from '../../src/bench/generator.js';
import { formatBytes, formatCount, formatMs, formatRatio, median, percentile, round, summarize, textTable, timed } from '../../src/bench/stats.js';

const digest = (c: GeneratedCluster) => createHash('sha256').update(JSON.stringify(c)).digest('hex');

const S1 = generateCluster('S', 1);

test('same profile and seed → byte-identical cluster; another seed → another cluster', (t) => {
  t.is(digest(generateCluster('S', 1)), digest(S1));
  t.is(digest(generateCluster('S', 1, { dualStack: true })), digest(generateCluster('S', 1, { dualStack: true })));
  t.not(digest(generateCluster('S', 2)), digest(S1));
  t.not(digest(generateCluster('S', 1, { dualStack: true })), digest(S1));
  t.is(JSON.stringify(makeEvents(S1, 'pod-relabel', 20, 5)), JSON.stringify(makeEvents(generateCluster('S', 1), 'pod-relabel', 20, 5)));
  t.not(JSON.stringify(makeEvents(S1, 'pod-relabel', 20, 5)), JSON.stringify(makeEvents(S1, 'pod-relabel', 20, 6)));
});

for (const name of ['S', 'M', 'L'] as const) {
  test(`profile ${name}: exact pods, policies, namespaces, local pods and node count`, (t) => {
    const c = name === 'S' ? S1 : generateCluster(name, 42);
    const p = PROFILES[name];
    t.is(c.pods.length, p.pods);
    t.is(c.policies.length, p.policies);
    t.is(c.namespaces.length, p.namespaces);
    t.is(localPods(c).length, p.localPods);
    t.is(c.nodes.length, Math.ceil(p.pods / p.localPods));
    const perNode = new Map<string, number>();
    for (const pod of c.pods) perNode.set(pod.nodeName!, (perNode.get(pod.nodeName!) ?? 0) + 1);
    t.true(Math.max(...perNode.values()) <= p.localPods, 'no node holds more pods than the local node');
    t.is(c.localNode, c.nodes[0]!.name);
  });
}

test('custom profiles: the local node gets exactly localPods even when round-robin would not', (t) => {
  const c = generateCluster({ pods: 100, policies: 10, namespaces: 5, localPods: 30 }, 3);
  t.is(localPods(c).length, 30);
  t.is(c.nodes.length, 4);
  t.is(c.pods.length, 100);
  t.is(c.policies.length, 10);
  t.is(c.profile.name, 'custom');
});

test('bad profiles and arguments fail with one clear line', (t) => {
  const bad: [Parameters<typeof generateCluster>[0], RegExp][] = [
    [{ pods: 100, policies: 1, namespaces: 5, localPods: 0 }, /localPods must be 1-250, got 0/],
    [{ pods: 1000, policies: 1, namespaces: 5, localPods: 300 }, /localPods must be 1-250, got 300/],
    [{ pods: 100, policies: 1, namespaces: 2, localPods: 10 }, /namespaces must be at least 4, got 2/],
    [{ pods: 10, policies: 1, namespaces: 50, localPods: 5 }, /pods must be at least 55/],
    [{ pods: 100, policies: -1, namespaces: 5, localPods: 5 }, /policies must be a non-negative integer, got -1/],
    [{ pods: 1.5, policies: 1, namespaces: 5, localPods: 5 }, /pods must be a non-negative integer, got 1.5/],
    ['XXL' as 'S', /unknown profile "XXL"/],
  ];
  for (const [p, re] of bad) t.throws(() => generateCluster(p, 1), { instanceOf: GeneratorError, message: re });
  t.throws(() => generateCluster('S', Number.NaN), { instanceOf: GeneratorError, message: /seed must be a finite number/ });
  t.throws(() => makeEvents(S1, 'pod-explode' as 'pod-relabel', 1, 1), { instanceOf: GeneratorError, message: /unknown event kind "pod-explode"/ });
  t.throws(() => makeEvents(S1, 'pod-relabel', -1, 1), { instanceOf: GeneratorError, message: /non-negative integer/ });
  for (const kind of EVENT_KINDS) t.deepEqual(makeEvents(S1, kind, 0, 1), [], `${kind}: zero events asked, none made (no error)`);
});

for (const dualStack of [false, true]) {
  test(`every generated object passes the normalising boundary unchanged${dualStack ? ' (dual-stack)' : ''}`, (t) => {
    const c = dualStack ? generateCluster('S', 9, { dualStack: true }) : S1;
    let n = 0;
    for (const o of clusterObjects(c)) {
      const r = normalizeObject(toRawObject(o));
      const errors = r.findings.filter((f) => f.severity === 'error' || f.severity === 'warning');
      if (errors.length || !r.object) t.fail(`${o.kind} ${objectKey(o)}: ${errors.map((f) => `${f.field}: ${f.message}`).join('; ')}`);
      // JSON comparison: the generator shares frozen label/port objects, normalize builds fresh ones.
      else if (JSON.stringify(sortKeys(r.object)) !== JSON.stringify(sortKeys(o))) t.deepEqual(sortKeys(r.object), sortKeys(o), `${o.kind} ${objectKey(o)}`);
      n++;
    }
    t.is(n, c.namespaces.length + c.nodes.length + c.services.length + c.pods.length + c.policies.length);
  });
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

test('addresses: unique pod IPs inside their node pod CIDR; unique keys; nodes 172.16.x.y', (t) => {
  for (const c of [S1, generateCluster('S', 4, { dualStack: true })]) {
    const nodes = new Map(c.nodes.map((n) => [n.name, n]));
    const ips = new Set<string>();
    for (const p of c.pods) {
      const node = nodes.get(p.nodeName!)!;
      t.truthy(node, `${objectKey(p)} runs on a known node`);
      t.is(p.ips.length, c.dualStack ? 2 : 1);
      for (const ip of p.ips) {
        if (ips.has(ip)) t.fail(`IP ${ip} used twice`);
        ips.add(ip);
        if (!node.podCIDRs.some((cidr) => ipInBlock(ip, { cidr, except: [] }))) t.fail(`${objectKey(p)} ${ip} outside ${node.podCIDRs.join(',')}`);
      }
      t.is(p.phase, 'Running');
    }
    for (const kind of ['namespaces', 'pods', 'policies', 'nodes', 'services'] as const) {
      const keys = (c[kind] as ClusterObject[]).map((o) => `${o.kind}:${objectKey(o as { name: string })}`);
      t.is(new Set(keys).size, keys.length, `${kind} keys are unique`);
    }
    for (const n of c.nodes) {
      t.regex(n.addresses[0]!, /^172\.16\.\d+\.\d+$/);
      t.regex(n.podCIDRs[0]!, /^10\.\d+\.\d+\.0\/24$/);
      if (c.dualStack) t.regex(n.podCIDRs[1]!, /^fd00:[0-9a-f]+::\/64$/);
    }
  }
});

test('the policy mix has every feature the benchmark promises', (t) => {
  const c = generateCluster('M', 1);
  const pols = c.policies;
  const rules = (p: NetworkPolicy) => [...p.ingress, ...p.egress];
  const peers = pols.flatMap((p) => rules(p).flatMap((r) => r.peers));
  const ports = pols.flatMap((p) => rules(p).flatMap((r) => r.ports));
  const isEmpty = (p: NetworkPolicy) => Object.keys(p.podSelector.matchLabels).length === 0 && p.podSelector.matchExpressions.length === 0;
  t.true(pols.some((p) => isEmpty(p) && p.policyTypes.join() === 'ingress' && p.ingress.length === 0), 'default deny ingress');
  t.true(pols.some((p) => isEmpty(p) && p.policyTypes.join() === 'ingress,egress' && p.ingress.length === 0 && p.egress.length === 0), 'default deny all');
  t.true(pols.some((p) => p.name === 'allow-same-namespace'), 'allow same namespace');
  t.true(peers.some((p) => p.namespaceSelector && !p.podSelector), 'namespaceSelector-only peer');
  t.true(peers.some((p) => p.namespaceSelector && p.podSelector), 'both selectors in one peer');
  t.true(peers.some((p) => p.podSelector?.matchExpressions.length), 'matchExpressions');
  t.true(peers.some((p) => p.ipBlock && p.ipBlock.except.length > 0 && p.ipBlock.cidr !== '0.0.0.0/0'), 'ingress ipBlock with except');
  t.true(peers.some((p) => p.ipBlock?.cidr === '0.0.0.0/0' && p.ipBlock.except.includes('169.254.169.254/32')), 'egress to the internet except metadata');
  t.true(ports.some((p) => typeof p.port === 'string'), 'named ports');
  t.true(ports.some((p) => p.endPort !== undefined), 'port ranges');
  t.true(
    pols.some((p) => p.egress.some((r) => r.peers.some((x) => x.namespaceSelector?.matchLabels['kubernetes.io/metadata.name'] === 'kube-system' && x.podSelector?.matchLabels['k8s-app'] === 'kube-dns') && r.ports.some((x) => x.port === 53 && x.protocol === 'UDP'))),
    'egress DNS to kube-dns',
  );
  const dns = c.pods.filter((p) => p.namespace === 'kube-system' && p.labels['k8s-app'] === 'kube-dns');
  t.true(dns.length >= 2);
  t.true(dns.every((p) => p.ports.some((x) => x.name === 'dns' && x.port === 53 && x.protocol === 'UDP')));
  t.true(c.services.some((s) => s.type === 'LoadBalancer' && s.loadBalancerIPs.length > 0));
  t.true(c.services.some((s) => s.externalIPs.length > 0));
  t.true(c.services.some((s) => s.name === 'kube-dns' && s.clusterIPs[0] === '10.96.0.10'));
  // Realistic pods: several replicas per app, labels from the small vocabularies.
  const apps = new Map<string, number>();
  for (const p of c.pods) apps.set(`${p.namespace}/${p.labels.app}`, (apps.get(`${p.namespace}/${p.labels.app}`) ?? 0) + 1);
  t.true(c.pods.length / apps.size > 2, 'several replicas per app on average');
  t.true(c.pods.every((p) => ['app', 'tier', 'team', 'version'].every((k) => typeof p.labels[k] === 'string')));
  // The local node's policies are a real share of the cluster's.
  const plan = compile(loadIntoStore(c), { node: c.localNode });
  t.true(plan.policies.length > 20, `${plan.policies.length} policies select local pods`);
  t.true(plan.pods.some((p) => p.egressPolicies.length > 0) && plan.pods.some((p) => p.ingressPolicies.length > 0));
});

// ---------------------------------------------------------------- events

const localPlanJson = (c: GeneratedCluster, store: ReturnType<typeof loadIntoStore>) => JSON.stringify(compile(store, { node: c.localNode }));

for (const kind of EVENT_KINDS) {
  test(`event ${kind}: changes the local node's plan, and its undo restores it`, (t) => {
    const c = S1;
    const events = makeEvents(c, kind, 200, 11);
    t.is(events.length, 200);
    t.true(events.every((e) => e.kind === kind && e.description.length > 0));
    const store = loadIntoStore(c);
    const base = localPlanJson(c, store);
    // Every distinct event among the first ones (apply → check → undo → check).
    for (const ev of events.slice(0, 8)) {
      applyChanges(store, ev);
      const after = compile(store, { node: c.localNode });
      t.not(JSON.stringify(after), base, `${ev.description} changes the local plan`);
      checkClaim(t, c, ev.kind, ev.upserts, ev.removes, after);
      applyChanges(store, ev.undo);
      t.is(localPlanJson(c, store), base, `undo of ${ev.description}`);
    }
  });
}

function checkClaim(t: import('ava').ExecutionContext, c: GeneratedCluster, kind: string, upserts: ClusterObject[], removes: { kind: string; key: string }[], plan: ReturnType<typeof compile>): void {
  const peerIPs = new Set(plan.policies.flatMap((p) => [...p.ingress, ...p.egress]).flatMap((r) => (r.peers === 'all' ? [] : r.peers.flatMap((x) => (x.kind === 'pods' ? x.ips : [])))));
  switch (kind) {
    case 'local-pod-add': {
      const pod = upserts[0] as Pod;
      t.is(pod.nodeName, c.localNode);
      const pp = plan.pods.find((p) => p.key === objectKey(pod));
      t.truthy(pp && pp.ingressPolicies.length + pp.egressPolicies.length > 0, 'the new local pod is selected by a policy');
      break;
    }
    case 'remote-pod-add': {
      const pod = upserts[0] as Pod;
      t.not(pod.nodeName, c.localNode);
      t.true(peerIPs.has(pod.ips[0]!), 'the new remote pod is a peer of a local policy');
      break;
    }
    case 'local-pod-delete':
      t.false(plan.pods.some((p) => p.key === removes[0]!.key));
      t.is(c.pods.find((p) => objectKey(p) === removes[0]!.key)?.nodeName, c.localNode);
      break;
    case 'remote-pod-delete': {
      const gone = c.pods.find((p) => objectKey(p) === removes[0]!.key)!;
      t.not(gone.nodeName, c.localNode);
      t.false(peerIPs.has(gone.ips[0]!));
      break;
    }
    case 'pod-relabel':
      t.is(upserts[0]!.kind, 'Pod');
      break;
    case 'namespace-relabel':
      t.is(upserts[0]!.kind, 'Namespace');
      t.notDeepEqual((upserts[0] as { labels: object }).labels, c.namespaces.find((n) => n.name === objectKey(upserts[0]!))!.labels);
      break;
    case 'policy-add':
      t.true(plan.policies.some((p) => p.id === objectKey(upserts[0]!)), 'the new policy selects a local pod');
      break;
    case 'policy-update':
      t.true(plan.policies.some((p) => p.id === objectKey(upserts[0]!)));
      break;
    case 'policy-delete':
      t.false(plan.policies.some((p) => p.id === removes[0]!.key));
      break;
    case 'node-add':
      t.true(plan.nodes.some((n) => n.name === objectKey(upserts[0]!)));
      break;
    default:
      t.fail(`unchecked kind ${kind}`);
  }
}

test('events of every kind exist at M too, and local pod adds use a free address of the local node', (t) => {
  const c = generateCluster('M', 3);
  for (const kind of EVENT_KINDS) t.is(makeEvents(c, kind, 200, 1).length, 200, kind);
  const used = new Set(c.pods.map((p) => p.ips[0]));
  for (const ev of makeEvents(c, 'local-pod-add', 20, 2)) t.false(used.has((ev.upserts[0] as Pod).ips[0]!));
});

// ---------------------------------------------------------------- stats

test('stats: nearest-rank percentiles, median, summary', (t) => {
  const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
  t.is(percentile(xs, 50), 5);
  t.is(percentile(xs, 90), 9);
  t.is(percentile(xs, 99), 10);
  t.is(percentile(xs, 0), 1);
  t.is(percentile(xs, 100), 10);
  t.is(median(xs), 5.5);
  t.is(median([3, 1, 2]), 2);
  t.true(Number.isNaN(median([])));
  t.true(Number.isNaN(percentile([], 50)));
  t.throws(() => percentile(xs, 101), { instanceOf: RangeError });
  t.throws(() => percentile([1, Number.NaN], 50), { instanceOf: TypeError });
  t.deepEqual(summarize([3, 1, 2]), { n: 3, min: 1, p50: 2, p90: 3, p99: 3, max: 3, mean: 2 });
  t.is(summarize([]).n, 0);
  t.deepEqual(xs, [5, 1, 4, 2, 3, 10, 9, 8, 7, 6], 'inputs are not reordered');
});

test('stats: formatting helpers', (t) => {
  t.is(formatMs(0.123), '0.12 ms');
  t.is(formatMs(12.34), '12.3 ms');
  t.is(formatMs(456.7), '457 ms');
  t.is(formatMs(1234), '1.23 s');
  t.is(formatMs(125_000), '2 min 5 s');
  t.is(formatMs(Number.NaN), '–');
  t.is(formatBytes(512), '512 B');
  t.is(formatBytes(1536), '1.5 KiB');
  t.is(formatBytes(5 * 1024 * 1024), '5.0 MiB');
  t.is(formatCount(1234567), '1,234,567');
  t.is(formatCount(-1000), '-1,000');
  t.is(formatRatio(50, 2), '25.0×');
  t.is(formatRatio(1000, 2), '500×');
  t.is(formatRatio(1, 0), '–');
  t.is(round(1.26, 1), 1.3);
  t.is(textTable([['kind', 'p50'], ['pod-add', '1.5 ms'], ['node-add', '12.0 ms']]), ['kind          p50', '--------  -------', 'pod-add    1.5 ms', 'node-add  12.0 ms'].join('\n'));
  const r = timed(() => 6 * 7);
  t.is(r.value, 42);
  t.true(r.ms >= 0 && r.cpuMs >= 0);
});
