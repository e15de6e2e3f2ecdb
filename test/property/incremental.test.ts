// The incremental compiler always equals a from-scratch compile, over random change sequences.
import test from 'ava';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { ClusterStore } from '../../src/cluster/store.js';
import type { ClusterObject, LabelSelector, NetworkPolicy, Pod } from '../../src/cluster/model.js';
import { compile } from '../../src/policy/compile.js';
import { IncrementalCompiler } from '../../src/policy/incremental.js';
import { clusterNetworkPolicyArb } from '../support/arbitraries.js';

const NS = ['x', 'y', 'z'];
const V = ['a', 'b'];
const labels = fc.dictionary(fc.constantFrom('pod', 'app'), fc.constantFrom(...V), { maxKeys: 2 });
const sel = fc.record({ matchLabels: labels, matchExpressions: fc.constant([]) });
const ports = fc.array(fc.record({ protocol: fc.constant('TCP' as const), port: fc.constantFrom(80, 'http', 'metrics') }), { maxLength: 1 });
const peers = fc.array(
  fc.oneof(fc.record({ podSelector: sel }), fc.record({ namespaceSelector: sel }), fc.record({ podSelector: sel, namespaceSelector: sel }), fc.constant({ ipBlock: { cidr: '10.0.1.0/24', except: [] } })),
  { maxLength: 2 },
);
const policyArb = fc.record({
  kind: fc.constant('NetworkPolicy' as const),
  namespace: fc.constantFrom(...NS),
  name: fc.constantFrom('p1', 'p2', 'p3'),
  podSelector: sel,
  policyTypes: fc.subarray(['ingress', 'egress'] as ('ingress' | 'egress')[], { minLength: 1 }),
  ingress: fc.array(fc.record({ peers, ports }), { maxLength: 2 }),
  egress: fc.array(fc.record({ peers, ports }), { maxLength: 2 }),
  // Audited (staged) or explicitly enforced; absent follows the namespace.
  enforcement: fc.constantFrom(undefined, undefined, 'audit' as const, 'enforce' as const),
}).map(({ enforcement, ...p }) => (enforcement === undefined ? p : { ...p, enforcement })) as unknown as fc.Arbitrary<NetworkPolicy>;
const podArb = fc.record({
  kind: fc.constant('Pod' as const),
  namespace: fc.constantFrom(...NS),
  name: fc.constantFrom('a', 'b', 'c', 'd'),
  labels,
  hostNetwork: fc.boolean().map((b) => b && false),
  phase: fc.constantFrom('Running' as const, 'Succeeded' as const),
  nodeName: fc.constantFrom('n1', 'n2'),
  ips: fc.constantFrom(['10.0.1.1'], ['10.0.1.2'], ['10.0.2.3'], ['10.0.2.4'], [] as string[]),
  ports: fc.constantFrom([{ name: 'http', port: 8080, protocol: 'TCP' as const }], [{ name: 'metrics', port: 9090, protocol: 'TCP' as const }], []),
}) as fc.Arbitrary<Pod>;
const cnpArb = clusterNetworkPolicyArb(['g1', 'g2'], sel as unknown as fc.Arbitrary<LabelSelector>, {
  networks: ['10.0.1.0/24', '10.0.0.0/8'],
  ports: fc.oneof(fc.constant({ kind: 'port' as const, protocol: 'TCP' as const, port: 80 }), fc.constantFrom('http', 'metrics').map((name) => ({ kind: 'named' as const, name }))),
});
type Op = { upsert: ClusterObject } | { remove: ['Pod' | 'NetworkPolicy' | 'Namespace' | 'ClusterNetworkPolicy', string] };
const op: fc.Arbitrary<Op> = fc.oneof(
  podArb.map((p) => ({ upsert: p })),
  policyArb.map((p) => ({ upsert: p })),
  fc.tuple(fc.constantFrom(...NS), labels, fc.constantFrom(undefined, 'audit' as const, 'enforce' as const)).map(([name, l, e]) => ({
    upsert: { kind: 'Namespace' as const, name, labels: { ...l, 'kubernetes.io/metadata.name': name }, ...(e ? { enforcement: e } : {}) },
  })),
  // A namespace whose labels could not be read (model.ts labelsUnreadable): no namespace selector matches it.
  fc.constantFrom(...NS).map((name) => ({ upsert: { kind: 'Namespace' as const, name, labels: { 'kubernetes.io/metadata.name': name }, labelsUnreadable: true as const } })),
  fc.tuple(fc.constantFrom(...NS), fc.constantFrom('a', 'b', 'c', 'd')).map(([ns, n]) => ({ remove: ['Pod' as const, `${ns}/${n}`] as ['Pod', string] })),
  fc.tuple(fc.constantFrom(...NS), fc.constantFrom('p1', 'p2', 'p3')).map(([ns, n]) => ({ remove: ['NetworkPolicy' as const, `${ns}/${n}`] as ['NetworkPolicy', string] })),
  fc.constantFrom(...NS).map((n) => ({ remove: ['Namespace' as const, n] as ['Namespace', string] })),
  cnpArb.map((c) => ({ upsert: c })),
  fc.constantFrom('g1', 'g2').map((n) => ({ remove: ['ClusterNetworkPolicy' as const, n] as ['ClusterNetworkPolicy', string] })),
);

test('incremental build == compile(store, {node}) after every change', (t) => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), (ops, buildAfter) => {
      const store = new ClusterStore();
      const inc = new IncrementalCompiler(store, 'n1');
      for (const [i, o] of ops.entries()) {
        if ('upsert' in o) store.upsert(o.upsert);
        else store.remove(o.remove[0], o.remove[1]);
        if (buildAfter[i] || i === ops.length - 1) {
          // Deep equality (object key order is not part of a Plan's meaning; the IP index is read as a Map).
          const plan = inc.build();
          if (!isDeepStrictEqual({ ...plan, podByIP: new Map(plan.podByIP) }, compile(store, { node: 'n1' }))) return false;
        }
      }
      return true;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

// The render keeps results across calls (pod chains, policy chains, peer member lists, dispatch
// trees, exemptions): after every change of a random sequence, rendering the incremental plan with
// those caches warm equals a render by a fresh copy of the module (no caches) of a from-scratch compile.
test('render with its caches warm over a change sequence == a fresh render of compile(store, {node})', async (t) => {
  const { render } = await import('../../src/dataplane/render.js');
  const opts = { node: 'n1', family: 'ipv4' as const, serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] as [number, number] };
  let fresh = 0;
  let isolated = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 16 }), async (ops) => {
      const store = new ClusterStore();
      // A base of isolated local pods (the random changes then add, move and remove pods, policies, namespaces).
      for (const [i, ns] of NS.entries()) {
        for (const [j, name] of ['a', 'b', 'c'].entries()) {
          store.upsert({ kind: 'Pod', namespace: ns, name, labels: { pod: V[j % 2]! }, hostNetwork: false, phase: 'Running', nodeName: j < 2 ? 'n1' : 'n2', ips: [`10.0.${i + 1}.${j + 1}`], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] } as Pod);
        }
        store.upsert({ kind: 'NetworkPolicy', namespace: ns, name: 'p1', podSelector: { matchLabels: {}, matchExpressions: [] }, policyTypes: ['ingress', 'egress'], ingress: [{ peers: [{ podSelector: { matchLabels: { pod: 'a' }, matchExpressions: [] } }, { namespaceSelector: { matchLabels: {}, matchExpressions: [] } }], ports: [] }], egress: [{ peers: [{ podSelector: { matchLabels: {}, matchExpressions: [] } }], ports: [{ protocol: 'TCP', port: 'http' }] }] } as unknown as NetworkPolicy);
      }
      const inc = new IncrementalCompiler(store, 'n1');
      for (const o of ops) {
        if ('upsert' in o) store.upsert(o.upsert);
        else store.remove(o.remove[0], o.remove[1]);
        const warm = render(inc.build(), opts);
        const cold = (await import(`../../src/dataplane/render.js?fresh=${fresh++}`)) as typeof import('../../src/dataplane/render.js');
        if (!t.deepEqual(warm, cold.render(compile(store, { node: 'n1' }), opts))) return false;
        if (warm.chains.some((c) => c.name.startsWith('KUBE-POD-FW-'))) isolated++;
      }
      return true;
    }),
    { numRuns: 60 },
  );
  // Most renders had isolated local pods (dispatch trees, pod and policy chains, peer sets).
  t.true(isolated > fresh / 2, `${isolated} of ${fresh} renders with an isolated pod`);
});
