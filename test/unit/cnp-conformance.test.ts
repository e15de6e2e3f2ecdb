// ClusterNetworkPolicy on the conformance model of kubernetes-sigs/network-policy-api (four houses ×
// two StatefulSet replicas over two nodes, the ports the upstream pods serve, host-network centaurs;
// test/support/npapi-conformance.ts). Every case of test/support/npapi-cases.ts (written from the
// v1alpha2 API documentation) states the whole matrix — every ordered pair of pods, every served port,
// SCTP included — and the simulator on the Plan AND the iptables interpreter on the rules rendered for
// each node on the packet's path must both give it. Below them, the cases about addresses that are not
// pods: outside the cluster, and the host-network pods' node addresses.
import test, { type ExecutionContext } from 'ava';
import { storeOf, policy, type Raw } from '../support/conformance.js';
import { CENTAURS, HOUSE_PODS, HOUSE_PORTS, NODES, houseNs, houseObjects, type House, type ProbePort } from '../support/npapi-conformance.js';
import { NPAPI_CASES, type Expect } from '../support/npapi-cases.js';
import { compile } from '../../src/policy/compile.js';
import { evaluate } from '../../src/sim/evaluate.js';
import { render } from '../../src/dataplane/render.js';
import { filterTableFor } from '../../src/dataplane/trace.js';
import { clusterNodeViews, clusterPaths, combinedVerdict } from '../../src/dataplane/path.js';
import { interpret } from '../../src/iptables/interpret.js';
import type { ClusterStore } from '../../src/cluster/store.js';
import type { Ipset } from '../../src/iptables/model.js';

type Rule = Record<string, unknown>;

const RENDER = { family: 'ipv4' as const, serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] as [number, number] };

/** Both verdicts for a packet: the simulator's, and the interpreter's on the rendered rules of every node it crosses. */
function verdicts(store: ClusterStore): (src: string, dst: string, p: ProbePort) => { sim: boolean; rules: boolean } {
  const plan = compile(store);
  const tables = new Map<string, { table: ReturnType<typeof filterTableFor>; sets: Map<string, Ipset>; address: string }>(
    NODES.map((n) => {
      const d = render(compile(store, { node: n.name }), { ...RENDER, node: n.name });
      return [n.name, { table: filterTableFor(d), sets: new Map(d.sets.map((s) => [s.name, s])), address: n.address }];
    }),
  );
  const views = clusterNodeViews(plan);
  return (src, dst, p) => {
    const sim = evaluate(plan, { src, dst, protocol: p.protocol, port: p.port }).allowed;
    const hops = clusterPaths(views, src, dst, p.protocol.toLowerCase() as 'tcp', p.port);
    const rules =
      combinedVerdict(
        hops.map((h) => {
          const nt = tables.get(h.node)!;
          return interpret(nt.table, nt.sets, h.packet, { localAddresses: [nt.address] }).verdict;
        }),
      ) === 'ACCEPT';
    return { sim, rules };
  };
}

function check(t: ExecutionContext, objects: Raw[], expect: Expect): void {
  const v = verdicts(storeOf([...houseObjects(), ...objects]));
  const wrong: string[] = [];
  let allowed = 0;
  let denied = 0;
  for (const from of HOUSE_PODS)
    for (const to of HOUSE_PODS) {
      if (from === to) continue;
      for (const p of HOUSE_PORTS) {
        const want = expect(from, to, p);
        const got = v(from.ip, to.ip, p);
        if (got.sim !== want || got.rules !== want) wrong.push(`${from.name} -> ${to.name} ${p.port}/${p.protocol}: simulator ${got.sim}, rendered rules ${got.rules}, want ${want}`);
        if (want) allowed++;
        else denied++;
      }
    }
  t.deepEqual(wrong.slice(0, 12), [], `${wrong.length} of ${allowed + denied} probes differ`);
  t.true(allowed + denied === 8 * 7 * 6);
}

for (const c of NPAPI_CASES) test(c.name, (t) => check(t, c.objects, c.expect));

test('the cases cover both tiers, both directions, every protocol, and a kernel subset', (t) => {
  t.true(NPAPI_CASES.length >= 30, `${NPAPI_CASES.length}`);
  t.true(NPAPI_CASES.filter((c) => c.lab).length >= 10);
  t.is(new Set(NPAPI_CASES.map((c) => c.name)).size, NPAPI_CASES.length, 'unique names');
});

const cnp = (name: string, tier: 'Admin' | 'Baseline', priority: number, subject: Rule, rules: { ingress?: Rule[]; egress?: Rule[] }): Raw => ({
  apiVersion: 'policy.networking.k8s.io/v1alpha2',
  kind: 'ClusterNetworkPolicy',
  metadata: { name },
  spec: { tier, priority, subject, ...rules },
});
const house = (h: House) => ({ namespaces: { matchLabels: { 'conformance-house': h } } });
const everyNamespace = { namespaces: {} };

test('networks: addresses outside the cluster, Admin over the NetworkPolicy and Baseline under it', (t) => {
  const store = storeOf([
    ...houseObjects(),
    cnp('metadata', 'Admin', 1, everyNamespace, { egress: [{ action: 'Deny', to: [{ networks: ['169.254.169.254/32'] }] }, { action: 'Accept', to: [{ networks: ['192.0.2.0/24'] }] }] }),
    cnp('outside', 'Baseline', 1, everyNamespace, { egress: [{ action: 'Deny', to: [{ networks: ['0.0.0.0/0'] }] }] }),
    policy(houseNs('gryffindor'), 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] }),
    policy(houseNs('slytherin'), 'egress-to-198', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '198.51.100.0/24' } }] }] }),
  ]);
  const v = verdicts(store);
  const harry = HOUSE_PODS.find((p) => p.name === 'harry-potter-0')!.ip;
  const draco = HOUSE_PODS.find((p) => p.name === 'draco-malfoy-1')!.ip;
  const luna = HOUSE_PODS.find((p) => p.name === 'luna-lovegood-0')!.ip;
  const cases: [string, string, boolean, string][] = [
    [harry, '169.254.169.254', false, 'Admin Deny'],
    [harry, '192.0.2.9', true, 'Admin Accept over the NetworkPolicy egress lockdown'],
    [harry, '198.51.100.1', false, "gryffindor's NetworkPolicy (isolated: Baseline skipped)"],
    [draco, '198.51.100.1', true, "slytherin's NetworkPolicy"],
    [draco, '203.0.113.1', false, "slytherin's NetworkPolicy"],
    [luna, '203.0.113.1', false, 'Baseline Deny (ravenclaw has no NetworkPolicy)'],
    [luna, '192.0.2.9', true, 'Admin Accept'],
  ];
  for (const [src, dst, want, why] of cases) t.deepEqual(v(src, dst, { port: 443, protocol: 'TCP' }), { sim: want, rules: want }, `${src} -> ${dst}: ${why}`);
});

// --- host-network pods -----------------------------------------------------------------------------
// "Note that host-networked pods are not included in subject selection" nor in namespaces/pods peers.
test('host-network pods (the centaurs) are neither subjects nor peers; networks match their node addresses', (t) => {
  const denyAll = cnp('deny-all', 'Admin', 1, everyNamespace, { ingress: [{ action: 'Deny', from: [everyNamespace] }], egress: [{ action: 'Deny', to: [everyNamespace] }] });
  check(t, [denyAll], () => false);
  const harry0 = HOUSE_PODS.find((p) => p.name === 'harry-potter-0')!;
  const remoteCentaur = CENTAURS.find((c) => c.node !== harry0.node)!;
  let v = verdicts(storeOf([...houseObjects(), denyAll]));
  t.deepEqual(v(remoteCentaur.ip, harry0.ip, { port: 80, protocol: 'TCP' }), { sim: true, rules: true }, 'a centaur is not in any namespace peer');
  t.deepEqual(v(harry0.ip, remoteCentaur.ip, { port: 34345, protocol: 'TCP' }), { sim: true, rules: true }, 'nor a destination namespace peer');
  t.false(compile(storeOf([...houseObjects(), denyAll])).pods.some((p) => p.key.startsWith('network-policy-conformance-forbidden-forrest/')), 'no centaur in the Plan');
  v = verdicts(storeOf([...houseObjects(), cnp('no-nodes', 'Admin', 1, house('gryffindor'), { egress: [{ action: 'Deny', to: [{ networks: ['172.18.0.0/16'] }] }] })]));
  t.deepEqual(v(harry0.ip, remoteCentaur.ip, { port: 34345, protocol: 'TCP' }), { sim: false, rules: false }, 'a networks peer covering the node addresses');
});
