// The matrix decides each side of a cell once per pair of classes: it must equal deciding every pair
// on its own, cell by cell and a row at once — with IP-less endpoints, dual-stack pods, shared IPs,
// pods on node addresses, ipBlocks, named ports and ClusterNetworkPolicy tiers — and counting by
// namespace must equal counting the cells.
import test from 'ava';
import fc from 'fast-check';
import { ClusterStore } from '../../src/cluster/store.js';
import { clusterNetworkPolicyArb, networkPolicyArb } from '../support/arbitraries.js';
import type { ClusterNetworkPolicy, CnpPort, ContainerPort, LabelSelector, NetworkPolicy, Pod, PolicyPeer, PolicyRule, Workload } from '../../src/cluster/model.js';
import { compile } from '../../src/policy/compile.js';
import { matrixView, verdictBetween } from '../../src/sim/matrix.js';
import { aggregateByNamespace } from '../../src/sim/aggregate.js';
import type { ProbePort } from '../../src/policy/ports.js';
import { CELL_ALLOWED, CELL_DENIED, CELL_DEPENDS } from '../../src/sim/reachability.js';

const NS = ['x', 'y', 'z'];
const PORTS: ProbePort[] = [
  { port: 80, protocol: 'TCP' },
  { port: 81, protocol: 'UDP' },
];
const labels = fc.dictionary(fc.constantFrom('app', 'tier'), fc.constantFrom('a', 'b'), { maxKeys: 2 });
const selector = fc.record({ matchLabels: labels, matchExpressions: fc.constant([]) });
const peer = fc.oneof(
  fc.record({ podSelector: selector }),
  fc.record({ namespaceSelector: selector }),
  fc.record({ ipBlock: fc.constantFrom({ cidr: '10.0.0.0/8', except: ['10.0.1.0/24'] }, { cidr: '10.0.2.0/24', except: [] }, { cidr: '0.0.0.0/0', except: [] }, { cidr: 'fd00::/8', except: [] }, { cidr: '172.18.0.0/24', except: [] }) }),
) as unknown as fc.Arbitrary<PolicyPeer>;
const rule: fc.Arbitrary<PolicyRule> = fc.record({
  peers: fc.array(peer, { maxLength: 2 }),
  ports: fc.array(fc.record({ protocol: fc.constantFrom('TCP' as const, 'UDP' as const), port: fc.constantFrom(80, 81, 'http') }), { maxLength: 1 }),
});
const policies = fc.integer({ min: 0, max: 5 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => networkPolicyArb(i, NS, selector as unknown as fc.Arbitrary<LabelSelector>, rule))));
const cnpPort: fc.Arbitrary<CnpPort> = fc.oneof(
  fc.record({ kind: fc.constant('port' as const), protocol: fc.constantFrom('TCP' as const, 'UDP' as const), port: fc.constantFrom(80, 81) }),
  fc.constant({ kind: 'named' as const, name: 'http' }),
);
// Namespaces carry only ns/name labels: empty selectors make CNP subjects and peers select by pod labels.
const cnpSelector = fc.oneof(fc.constant({ matchLabels: {}, matchExpressions: [] }), selector) as unknown as fc.Arbitrary<LabelSelector>;
const clusterPolicies = fc.uniqueArray(clusterNetworkPolicyArb(['g0', 'g1'], cnpSelector, { networks: ['10.0.0.0/8', '10.0.2.0/24', '0.0.0.0/0', 'fd00::/8'], ports: cnpPort }), { maxLength: 2, selector: (c) => c.name });
const portsOf = (named: boolean): ContainerPort[] => (named ? [{ name: 'http', port: 80, protocol: 'TCP' }] : [{ name: 'http', port: 81, protocol: 'UDP' }]);
// Addresses from a small pool: some pods share one, some sit on a node's address, some are dual-stack.
const ADDRS = [['10.0.0.1'], ['10.0.0.1'], ['10.0.1.5'], ['10.0.2.7', 'fd00::7'], ['fd00::9'], ['172.18.0.2'], ['10.0.3.3'], [], []];
const endpoints = fc.array(fc.tuple(fc.constantFrom(...NS), labels, fc.boolean(), fc.nat(ADDRS.length - 1), fc.boolean()), { minLength: 2, maxLength: 9 });

function store(list: [string, Record<string, string>, boolean, number, boolean][], nps: readonly NetworkPolicy[], cnps: readonly ClusterNetworkPolicy[] = []): ClusterStore {
  const s = new ClusterStore();
  for (const ns of NS) s.upsert({ kind: 'Namespace', name: ns, labels: { ns, 'kubernetes.io/metadata.name': ns } });
  s.upsert({ kind: 'Node', name: 'n1', labels: {}, podCIDRs: ['10.0.0.0/16'], addresses: ['172.18.0.2'] });
  list.forEach(([ns, l, named, a, workload], i) => {
    const ips = ADDRS[a]!;
    if (ips.length === 0 && workload) {
      const w: Workload = { kind: 'Workload', workloadKind: 'Deployment', namespace: ns, name: `w${i}`, labels: l, hostNetwork: false, ips: [], ports: portsOf(named), owners: [] };
      s.upsert(w);
      return;
    }
    const p: Pod = { kind: 'Pod', namespace: ns, name: `p${i}`, labels: l, hostNetwork: false, ips: [...ips], ports: portsOf(named), nodeName: 'n1', ...(ips.length === 0 ? { planned: true } : { phase: 'Running' as const }) };
    s.upsert(p);
  });
  nps.forEach((p) => s.upsert(p));
  cnps.forEach((c) => s.upsert(c));
  return s;
}

test('cells decided per class pair == every pair decided on its own; namespace counts == counted cells', (t) => {
  fc.assert(
    fc.property(endpoints, policies, clusterPolicies, fc.constantFrom(undefined, ['10.0.0.0/16'], ['10.0.0.0/16', 'fd00::/64']), (list, nps, cnps, net) => {
      const plan = compile(store(list, nps, cnps), { ipless: true, ...(net ? { podNetwork: net } : {}) });
      const view = matrixView(plan, PORTS);
      const agg = aggregateByNamespace(view);
      const all = plan.pods.map((_, i) => i);
      const row = new Uint8Array(all.length);
      for (const [pi, port] of PORTS.entries()) {
        const counts = new Map<string, { allowed: number; denied: number; unknown: number }>();
        for (const [i, a] of plan.pods.entries()) {
          // A whole row at once (what the JSON writer and diff use) agrees with the cells.
          view.reach.rowAt(i, all, pi, row);
          for (const [j, b] of plan.pods.entries()) {
            const code = row[j] === CELL_ALLOWED ? true : row[j] === CELL_DENIED ? false : row[j] === CELL_DEPENDS ? null : 'bad';
            if (code !== view.cell(i, j, pi)) return false;
            const direct = i === j ? undefined : verdictBetween(plan, a, b, port);
            // (`?? false` would turn an open null into false: no common family is the only false here.)
            const v = i === j ? true : direct === undefined ? false : direct.allowed;
            if (view.cell(i, j, pi) !== v) return false;
            const k = `${a.namespace}>${b.namespace}`;
            const c = counts.get(k) ?? { allowed: 0, denied: 0, unknown: 0 };
            if (v === true) c.allowed++;
            else if (v === false) c.denied++;
            else c.unknown++;
            counts.set(k, c);
          }
        }
        for (const [k, c] of counts) {
          const [f, to] = k.split('>') as [string, string];
          const got = agg.probes[pi]!.pairs[f]?.[to];
          if (!got || got.allowed !== c.allowed || got.denied !== c.denied || got.unknown !== c.unknown) return false;
        }
      }
      return true;
    }),
    { numRuns: 400 },
  );
  t.pass();
});
