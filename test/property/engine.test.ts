// Properties of the engine over random clusters and policies (fast-check).
import test from 'ava';
import fc from 'fast-check';
import { ClusterStore } from '../../src/cluster/store.js';
import { networkPolicyArb } from '../support/arbitraries.js';
import type { LabelSelector, NetworkPolicy, Pod, PolicyPeer, PolicyRule } from '../../src/cluster/model.js';
import { compile } from '../../src/policy/compile.js';
import { matrixFromPlan, type MatrixJson } from '../../src/sim/matrix.js';
import type { ProbePort } from '../../src/policy/ports.js';

const NS = ['x', 'y', 'z'];
const VALUES = ['a', 'b', 'c'];
const PORTS: ProbePort[] = [
  { port: 80, protocol: 'TCP' },
  { port: 81, protocol: 'UDP' },
];

const labels = fc.dictionary(fc.constantFrom('pod', 'app', 'tier'), fc.constantFrom(...VALUES), { maxKeys: 2 });
const selector = fc.record({
  matchLabels: labels,
  matchExpressions: fc.array(
    fc.oneof(
      fc.record({ key: fc.constantFrom('pod', 'app', 'ns'), operator: fc.constantFrom('In' as const, 'NotIn' as const), values: fc.uniqueArray(fc.constantFrom(...VALUES, ...NS), { minLength: 1, maxLength: 2 }) }),
      fc.record({ key: fc.constantFrom('pod', 'app', 'ns'), operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const), values: fc.constant([] as string[]) }),
    ),
    { maxLength: 1 },
  ),
});
const peer = fc.oneof(
  fc.record({ podSelector: selector }),
  fc.record({ namespaceSelector: selector }),
  fc.record({ podSelector: selector, namespaceSelector: selector }),
  fc.record({ ipBlock: fc.constantFrom({ cidr: '10.0.0.0/8', except: ['10.0.1.0/24'] }, { cidr: '10.0.2.0/24', except: [] }, { cidr: '0.0.0.0/0', except: [] }) }),
) as fc.Arbitrary<PolicyPeer>;
const rule: fc.Arbitrary<PolicyRule> = fc.record({
  peers: fc.array(peer, { maxLength: 2 }),
  ports: fc.array(
    fc.oneof(
      fc.record({ protocol: fc.constantFrom('TCP' as const, 'UDP' as const), port: fc.constantFrom(80, 81, 'http') }),
      fc.record({ protocol: fc.constantFrom('TCP' as const, 'UDP' as const), port: fc.constant(79), endPort: fc.constantFrom(80, 81) }),
    ),
    { maxLength: 2 },
  ),
});
const netpol = (i: number): fc.Arbitrary<NetworkPolicy> => networkPolicyArb(i, NS, selector as unknown as fc.Arbitrary<LabelSelector>, rule);
const pods: fc.Arbitrary<Pod[]> = fc.array(fc.tuple(fc.constantFrom(...NS), labels, fc.boolean()), { minLength: 2, maxLength: 7 }).map((list) =>
  list.map(([ns, l, named], i) => ({
    kind: 'Pod' as const,
    namespace: ns,
    name: `pod${i}`,
    labels: l,
    hostNetwork: false,
    phase: 'Running' as const,
    nodeName: i % 2 ? 'n1' : 'n2',
    ips: [`10.0.${i % 3}.${i + 1}`],
    ports: named ? [{ name: 'http', port: 80, protocol: 'TCP' as const }] : [{ name: 'http', port: 81, protocol: 'UDP' as const }],
  })),
);
const policies = fc.integer({ min: 0, max: 4 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => netpol(i))));

function storeWith(ps: Pod[], nps: NetworkPolicy[]): ClusterStore {
  const s = new ClusterStore();
  for (const ns of NS) s.upsert({ kind: 'Namespace', name: ns, labels: { ns, 'kubernetes.io/metadata.name': ns } });
  ps.forEach((p) => s.upsert(p));
  nps.forEach((p) => s.upsert(p));
  return s;
}

const matrix = (s: ClusterStore): MatrixJson => matrixFromPlan(compile(s), PORTS).json;
const pairs = (m: MatrixJson) => m.probes.flatMap((p, i) => m.pods.flatMap((f) => m.pods.map((t) => ({ i, f, t, v: p.allowed[f]![t]! }))));

test('with no policies everything is reachable', (t) => {
  fc.assert(fc.property(pods, (ps) => pairs(matrix(storeWith(ps, []))).every((x) => x.v)));
  t.pass();
});

test('a pod always reaches itself', (t) => {
  fc.assert(fc.property(pods, policies, (ps, nps) => pairs(matrix(storeWith(ps, nps))).every((x) => x.f !== x.t || x.v)));
  t.pass();
});

test('a pod no policy selects for ingress is reachable from every pod whose egress allows it', (t) => {
  fc.assert(
    fc.property(pods, policies, (ps, nps) => {
      const s = storeWith(ps, nps);
      const plan = compile(s);
      const withoutIngress = storeWith(
        ps,
        nps.map((p) => ({ ...p, policyTypes: p.policyTypes.filter((d) => d !== 'ingress') })).filter((p) => p.policyTypes.length > 0),
      );
      const m = matrixFromPlan(plan, PORTS).json;
      const egressOnly = matrix(withoutIngress);
      for (const pod of plan.pods) {
        if (pod.ingressPolicies.length > 0) continue;
        for (const [i, probe] of m.probes.entries()) {
          for (const from of m.pods) if (probe.allowed[from]![pod.key] !== egressOnly.probes[i]!.allowed[from]![pod.key]) return false;
        }
      }
      return true;
    }),
  );
  t.pass();
});

test('adding an allow policy to an already-isolated pod never removes a reachable pair', (t) => {
  fc.assert(
    fc.property(pods, policies, netpol(99), (ps, nps, extra) => {
      const before = matrix(storeWith(ps, nps));
      // An extra policy can only add allow rules for directions already isolated (it may also isolate new ones).
      const isolating = new Set(compile(storeWith(ps, nps)).pods.flatMap((p) => [...(p.ingressPolicies.length ? [`${p.key}:ingress`] : []), ...(p.egressPolicies.length ? [`${p.key}:egress`] : [])]));
      const planAfter = compile(storeWith(ps, [...nps, extra]));
      const newlyIsolated = planAfter.pods.some((p) => (p.ingressPolicies.length > 0 && !isolating.has(`${p.key}:ingress`)) || (p.egressPolicies.length > 0 && !isolating.has(`${p.key}:egress`)));
      fc.pre(!newlyIsolated);
      const after = matrixFromPlan(planAfter, PORTS).json;
      return pairs(before).every((x) => !x.v || after.probes[x.i]!.allowed[x.f]![x.t] === true);
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('the matrix JSON round-trips and is deterministic', (t) => {
  fc.assert(
    fc.property(pods, policies, (ps, nps) => {
      const m = matrix(storeWith(ps, nps));
      const again = matrix(storeWith([...ps].reverse(), [...nps].reverse()));
      return JSON.stringify(JSON.parse(JSON.stringify(m))) === JSON.stringify(m) && JSON.stringify(again) === JSON.stringify(m);
    }),
  );
  t.pass();
});

test('a node plan agrees with the cluster plan for every pair whose egress and ingress are both local', (t) => {
  fc.assert(
    fc.property(pods, policies, (ps, nps) => {
      const s = storeWith(ps, nps);
      const whole = matrix(s);
      for (const node of ['n1', 'n2']) {
        const plan = compile(s, { node });
        const local = new Set(plan.pods.map((p) => p.key));
        const m = matrixFromPlan({ ...plan, pods: compile(s).pods.map((p) => plan.pods.find((q) => q.key === p.key) ?? { ...p, ingressPolicies: [], egressPolicies: [] }) }, PORTS).json;
        for (const [i, probe] of whole.probes.entries())
          for (const f of whole.pods) for (const to of whole.pods) if (local.has(f) && local.has(to) && probe.allowed[f]![to] !== m.probes[i]!.allowed[f]![to]) return false;
      }
      return true;
    }),
  );
  t.pass();
});
