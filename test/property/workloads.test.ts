// A workload and an equivalent Pod give the same matrix: with the Pod at an address outside every
// ipBlock that holds only part of the pod network, every decided cell of the workload equals the
// pod's, and every open cell (null) is the pod's false — and turns true when the pod moves to an
// address inside the block that left it open. Never a guess, never a different answer.
import test from 'ava';
import fc from 'fast-check';
import { ClusterStore } from '../../src/cluster/store.js';
import { networkPolicyArb } from '../support/arbitraries.js';
import type { ContainerPort, LabelSelector, NetworkPolicy, Pod, PolicyPeer, PolicyRule, Workload } from '../../src/cluster/model.js';
import { compile } from '../../src/policy/compile.js';
import { matrixFromPlan, verdictBetween } from '../../src/sim/matrix.js';
import type { ProbePort } from '../../src/policy/ports.js';
import { blockCoverage, ipInBlock, mustCIDR, witnessAddress } from '../../src/net/ip.js';
import { DEFAULT_POD_NETWORK } from '../../src/policy/plan.js';

const NS = ['x', 'y'];
const VALUES = ['a', 'b'];
const PORTS: ProbePort[] = [
  { port: 80, protocol: 'TCP' },
  { port: 81, protocol: 'UDP' },
];
const BLOCKS = [
  { cidr: '10.0.0.0/8', except: ['10.0.1.0/24'] },
  { cidr: '10.0.2.0/24', except: [] },
  { cidr: '0.0.0.0/0', except: [] },
  { cidr: '10.1.0.0/16', except: [] },
  { cidr: '192.168.0.0/16', except: [] },
];
const NETWORKS: (string[] | undefined)[] = [undefined, ['10.0.0.0/16'], ['10.0.0.0/16', '10.1.0.0/16']];
/** Addresses the equivalent pod may take: the first in the pod network and outside every partial block. */
const CANDIDATES = ['172.16.0.1', '10.0.1.200', '10.1.5.5', '10.0.3.3'];

const labels = fc.dictionary(fc.constantFrom('app', 'tier'), fc.constantFrom(...VALUES), { maxKeys: 2 });
const selector = fc.record({ matchLabels: labels, matchExpressions: fc.constant([]) });
const peer = fc.oneof(
  fc.record({ podSelector: selector }),
  fc.record({ namespaceSelector: selector }),
  fc.record({ podSelector: selector, namespaceSelector: fc.constant({ matchLabels: {}, matchExpressions: [] }) }),
  fc.record({ ipBlock: fc.constantFrom(...BLOCKS) }),
  fc.record({ ipBlock: fc.constantFrom(...BLOCKS) }),
) as fc.Arbitrary<PolicyPeer>;
const rule: fc.Arbitrary<PolicyRule> = fc.record({
  peers: fc.array(peer, { maxLength: 2 }),
  ports: fc.array(fc.record({ protocol: fc.constantFrom('TCP' as const, 'UDP' as const), port: fc.constantFrom(80, 81, 'http') }), { maxLength: 1 }),
});
const policies = fc.integer({ min: 0, max: 4 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => networkPolicyArb(i, NS, selector as unknown as fc.Arbitrary<LabelSelector>, rule))));
const portsOf = (named: boolean): ContainerPort[] => (named ? [{ name: 'http', port: 80, protocol: 'TCP' }] : [{ name: 'http', port: 81, protocol: 'UDP' }]);
const pods: fc.Arbitrary<Pod[]> = fc.array(fc.tuple(fc.constantFrom(...NS), labels, fc.boolean()), { minLength: 1, maxLength: 5 }).map((list) =>
  list.map(([ns, l, named], i) => ({ kind: 'Pod' as const, namespace: ns, name: `pod${i}`, labels: l, hostNetwork: false, phase: 'Running' as const, ips: [`10.0.${i % 3}.${i + 1}`], ports: portsOf(named) })),
);
const endpoint = fc.tuple(fc.constantFrom(...NS), labels, fc.boolean(), fc.constantFrom('Deployment' as const, 'StatefulSet' as const, 'CronJob' as const));

function storeWith(ps: readonly Pod[], extra: Pod | Workload, nps: readonly NetworkPolicy[]): ClusterStore {
  const s = new ClusterStore();
  for (const ns of NS) s.upsert({ kind: 'Namespace', name: ns, labels: { ns, 'kubernetes.io/metadata.name': ns } });
  ps.forEach((p) => s.upsert(p));
  s.upsert(extra);
  nps.forEach((p) => s.upsert(p));
  return s;
}

test('a workload and an equivalent pod outside every partial ipBlock give the same matrix; open cells are false there and true inside the block', (t) => {
  let openCells = 0;
  let decided = 0;
  fc.assert(
    fc.property(pods, policies, endpoint, fc.constantFrom(...NETWORKS), (ps, nps, [ns, l, named, kind], net) => {
      const region = (net ?? DEFAULT_POD_NETWORK).map(mustCIDR);
      const partial = BLOCKS.filter((b) => blockCoverage(b, region) === 'part');
      const inNet = (ip: string) => (net ?? DEFAULT_POD_NETWORK).some((c) => ipInBlock(ip, { cidr: c, except: [] }));
      const ip = CANDIDATES.find((c) => inNet(c) && !partial.some((b) => ipInBlock(c, b)));
      if (!ip) throw new Error(`no address outside the partial blocks of ${String(net)}`);
      const w: Workload = { kind: 'Workload', workloadKind: kind, namespace: ns, name: 'w', labels: l, hostNetwork: false, ips: [], ports: portsOf(named), owners: [] };
      const asPod = (addr: string): Pod => ({ kind: 'Pod', namespace: ns, name: 'w', labels: l, hostNetwork: false, phase: 'Running', ips: [addr], ports: portsOf(named) });
      const opts = { ipless: true, ...(net ? { podNetwork: net } : {}) };
      const planW = compile(storeWith(ps, w, nps), opts);
      const planP = compile(storeWith(ps, asPod(ip), nps), opts);
      const mw = matrixFromPlan(planW, PORTS).json;
      const mp = matrixFromPlan(planP, PORTS).json;
      const wKey = `${ns}/w[${kind}]`;
      const asP = (k: string) => (k === wKey ? `${ns}/w` : k);
      t.deepEqual(mw.pods.map(asP).sort(), [...mp.pods].sort());
      for (const [pi, probe] of mw.probes.entries()) {
        for (const from of mw.pods) {
          for (const to of mw.pods) {
            const cw = probe.allowed[from]![to]!;
            const cp = mp.probes[pi]!.allowed[asP(from)]![asP(to)]!;
            if (cw !== null) {
              decided++;
              if (cw !== cp) return false;
              continue;
            }
            openCells++;
            if (cp !== false) return false;
            // Inside the block that left it open, the pod is allowed.
            const v = verdictBetween(planW, planW.pods.find((p) => p.key === from)!, planW.pods.find((p) => p.key === to)!, PORTS[pi]!)!;
            const maybe = (v.egress.maybeBy ?? v.ingress.maybeBy)!;
            const pol = planW.policies.find((p) => p.id === maybe.policy)!;
            const r = [...pol.ingress, ...pol.egress].find((x) => x.id === maybe.ruleId)!;
            const blockPeer = (r.peers as Exclude<typeof r.peers, 'all'>).find((x) => x.peerIndex === maybe.peerIndex)!;
            if (blockPeer.kind !== 'cidr') return false;
            const inside = witnessAddress(blockPeer.block, region, true);
            if (!inside) return false;
            if (ps.some((p) => p.ips.includes(inside))) continue;
            const planIn = compile(storeWith(ps, asPod(inside), nps), opts);
            const f = planIn.pods.find((p) => p.key === asP(from))!;
            const tt = planIn.pods.find((p) => p.key === asP(to))!;
            if (verdictBetween(planIn, f, tt, PORTS[pi]!)?.allowed !== true) return false;
          }
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.log(`${decided} decided and ${openCells} open cells checked`);
  t.true(openCells > 0, 'the generator never produced an open cell');
});
