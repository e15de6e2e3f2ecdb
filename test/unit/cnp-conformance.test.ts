// ClusterNetworkPolicy on the conformance model of kubernetes-sigs/network-policy-api (four houses ×
// two StatefulSet replicas over two nodes, the ports the upstream pods serve, host-network centaurs;
// test/support/npapi-conformance.ts). The cases are written here from the v1alpha2 API documentation
// (apis/v1alpha2/clusternetworkpolicy_types.go and the site's API overview), one per behaviour the
// upstream suite exercises: rule order per protocol and direction in both tiers, priority, Pass,
// the Admin → NetworkPolicy → Baseline integration, inline CIDRs, named ports, port ranges, pod
// subjects and peers, host-network pods. Each case states the whole matrix (every ordered pair of
// pods, every served port) as a predicate; the simulator on the Plan AND the iptables interpreter
// on the rules rendered for each node on the packet's path must both give it.
import test, { type ExecutionContext } from 'ava';
import { storeOf, policy, type Raw } from '../support/conformance.js';
import { CENTAURS, HOUSE_PODS, HOUSE_PORTS, NODES, houseNs, houseObjects, type House, type HousePod, type ProbePort } from '../support/npapi-conformance.js';
import { compile } from '../../src/policy/compile.js';
import { evaluate } from '../../src/sim/evaluate.js';
import { render } from '../../src/dataplane/render.js';
import { filterTableFor } from '../../src/dataplane/trace.js';
import { clusterNodeViews, clusterPaths, combinedVerdict } from '../../src/dataplane/path.js';
import { interpret } from '../../src/iptables/interpret.js';
import type { ClusterStore } from '../../src/cluster/store.js';
import type { Ipset } from '../../src/iptables/model.js';

type Rule = Record<string, unknown>;
type Expect = (from: HousePod, to: HousePod, p: ProbePort) => boolean;

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

// --- building blocks, in the API's own words --------------------------------------------------
const house = (h: House) => ({ namespaces: { matchLabels: { 'conformance-house': h } } });
/** Upstream selects namespaces by the label the API server sets on every namespace. */
const byName = (h: House) => ({ namespaces: { matchLabels: { 'kubernetes.io/metadata.name': houseNs(h) } } });
const everyNamespace = { namespaces: {} };
const replica = (h: House, i: 0 | 1) => ({ pods: { namespaceSelector: { matchLabels: { 'conformance-house': h } }, podSelector: { matchLabels: { 'apps.kubernetes.io/pod-index': String(i) } } } });
const port = (protocol: ProbePort['protocol'], n: number) => ({ [protocol.toLowerCase()]: { destinationPort: { number: n } } });
const range = (protocol: ProbePort['protocol'], start: number, end: number) => ({ [protocol.toLowerCase()]: { destinationPort: { range: { start, end } } } });

function cnp(name: string, tier: 'Admin' | 'Baseline', priority: number, subject: Rule, rules: { ingress?: Rule[]; egress?: Rule[] }): Raw {
  return { apiVersion: 'policy.networking.k8s.io/v1alpha2', kind: 'ClusterNetworkPolicy', metadata: { name }, spec: { tier, priority, subject, ...rules } };
}
const is = (p: ProbePort, protocol: string, n: number) => p.protocol === protocol && p.port === n;
const between = (from: HousePod, to: HousePod, a: House, b: House) => from.house === a && to.house === b;

// --- rule order, per protocol, per direction, per tier ------------------------------------------
// "Rules are evaluated in order; the first rule that matches the traffic decides." For each protocol
// the policy holds, on gryffindor: Accept everything with ravenclaw, then Deny everything with
// ravenclaw (never reached); Deny slytherin on the protocol's first port only; Accept hufflepuff on
// that port, then Deny the rest of hufflepuff. With no NetworkPolicy, unmatched traffic is allowed —
// in the Baseline tier too, which decides here because no NetworkPolicy isolates the pods.
const PROTOCOLS: [ProbePort['protocol'], number][] = [
  ['TCP', 80],
  ['UDP', 53],
  ['SCTP', 9003],
];
for (const tier of ['Admin', 'Baseline'] as const)
  for (const direction of ['ingress', 'egress'] as const)
    for (const [protocol, first] of PROTOCOLS) {
      test(`${tier} ${direction} ${protocol}: the first matching rule decides, the port narrows it`, (t) => {
        const peers = direction === 'ingress' ? 'from' : 'to';
        const rules: Rule[] = [
          { name: 'accept-ravenclaw', action: 'Accept', [peers]: [house('ravenclaw')] },
          { name: 'deny-ravenclaw', action: 'Deny', [peers]: [house('ravenclaw')] },
          { name: `deny-slytherin-${first}`, action: 'Deny', [peers]: [house('slytherin')], protocols: [port(protocol, first)] },
          { name: `accept-hufflepuff-${first}`, action: 'Accept', [peers]: [house('hufflepuff')], protocols: [port(protocol, first)] },
          { name: 'deny-hufflepuff', action: 'Deny', [peers]: [house('hufflepuff')] },
        ];
        check(t, [cnp(`${direction}-${protocol.toLowerCase()}`, tier, 3, byName('gryffindor'), { [direction]: rules })], (from, to, p) => {
          const [subject, other] = direction === 'ingress' ? [to, from] : [from, to];
          if (subject.house !== 'gryffindor') return true;
          if (other.house === 'slytherin') return !is(p, protocol, first);
          if (other.house === 'hufflepuff') return is(p, protocol, first);
          return true;
        });
      });
      if (protocol === 'TCP')
        test(`${tier} ${direction}: rules swapped, the Deny now comes first and decides`, (t) => {
          const peers = direction === 'ingress' ? 'from' : 'to';
          check(
            t,
            [cnp('swapped', tier, 3, byName('gryffindor'), { [direction]: [{ action: 'Deny', [peers]: [house('ravenclaw')] }, { action: 'Accept', [peers]: [house('ravenclaw')] }] })],
            (from, to) => !(direction === 'ingress' ? between(from, to, 'ravenclaw', 'gryffindor') : between(from, to, 'gryffindor', 'ravenclaw')),
          );
        });
    }

test('both directions in one policy: ingress rules judge what enters the subject, egress rules what leaves it', (t) =>
  check(
    t,
    [cnp('gress', 'Admin', 4, house('gryffindor'), { ingress: [{ action: 'Deny', from: [house('slytherin')], protocols: [port('TCP', 8080)] }], egress: [{ action: 'Deny', to: [house('hufflepuff')], protocols: [port('UDP', 5353), port('SCTP', 9005)] }] })],
    (from, to, p) => {
      if (between(from, to, 'slytherin', 'gryffindor')) return !is(p, 'TCP', 8080);
      if (between(from, to, 'gryffindor', 'hufflepuff')) return !(is(p, 'UDP', 5353) || is(p, 'SCTP', 9005));
      return true; // hufflepuff → gryffindor is ingress, and no ingress rule names hufflepuff
    },
  ));

// --- priority -------------------------------------------------------------------------------------
// "Policies with lower priority values have higher precedence, and are checked before policies
// with higher priority values." Whole tiers keep their order whatever the numbers.
test('priority: the lower value is checked first; changing it changes who decides', (t) => {
  const accept = (priority: number) => cnp('accept-ravenclaw', 'Admin', priority, house('gryffindor'), { ingress: [{ action: 'Accept', from: [house('ravenclaw')] }] });
  const deny = (priority: number) => cnp('deny-ravenclaw', 'Admin', priority, house('gryffindor'), { ingress: [{ action: 'Deny', from: [house('ravenclaw'), house('slytherin')] }] });
  const denied = (from: HousePod, to: HousePod) => to.house === 'gryffindor' && from.house === 'slytherin';
  check(t, [accept(5), deny(6)], (f, to) => !denied(f, to));
  check(t, [accept(5), deny(4)], (f, to) => !(denied(f, to) || between(f, to, 'ravenclaw', 'gryffindor')));
  check(t, [accept(1000), deny(0)], (f, to) => !(denied(f, to) || between(f, to, 'ravenclaw', 'gryffindor')));
  check(t, [accept(0), deny(1000)], (f, to) => !denied(f, to));
});

test('priority: the Admin tier decides before NetworkPolicy and Baseline whatever their numbers', (t) =>
  check(
    t,
    [
      cnp('baseline-accept', 'Baseline', 0, house('gryffindor'), { ingress: [{ action: 'Accept', from: [everyNamespace] }] }),
      cnp('admin-deny', 'Admin', 1000, house('gryffindor'), { ingress: [{ action: 'Deny', from: [house('slytherin')] }] }),
    ],
    (f, to) => !between(f, to, 'slytherin', 'gryffindor'),
  ));

test('priority within the Baseline tier: the lower value decides first', (t) => {
  const b = (name: string, priority: number, action: string) => cnp(name, 'Baseline', priority, house('hufflepuff'), { egress: [{ action, to: [house('ravenclaw')] }] });
  check(t, [b('b-accept', 1, 'Accept'), b('b-deny', 2, 'Deny')], () => true);
  check(t, [b('b-accept', 3, 'Accept'), b('b-deny', 2, 'Deny')], (f, to) => !between(f, to, 'hufflepuff', 'ravenclaw'));
});

// --- Pass ------------------------------------------------------------------------------------------
// "Pass: skips all further ClusterNetworkPolicy rules in the current tier for the selected traffic,
// and passes evaluation to the next tier" — for the Admin tier, NetworkPolicy.
test('Admin Pass hands the traffic to NetworkPolicy; the rest of the Admin tier is skipped for it', (t) =>
  check(
    t,
    [
      cnp('pass-slytherin', 'Admin', 5, house('gryffindor'), { ingress: [{ action: 'Pass', from: [house('slytherin')] }] }),
      cnp('deny-everyone', 'Admin', 20, house('gryffindor'), { ingress: [{ action: 'Deny', from: [everyNamespace] }] }),
      policy(houseNs('gryffindor'), 'web-from-slytherin', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'conformance-house': 'slytherin' } } }], ports: [{ port: 'web' }] }] }),
    ],
    (f, to, p) => {
      if (to.house !== 'gryffindor') return true;
      if (f.house === 'slytherin') return is(p, 'TCP', 80); // the NetworkPolicy's named port `web`
      return false; // everyone else, gryffindor's other replica included: the Admin Deny
    },
  ));

test('Admin Pass with no NetworkPolicy: the Baseline tier decides, else the traffic is allowed', (t) => {
  const pass = cnp('pass', 'Admin', 5, house('gryffindor'), { egress: [{ action: 'Pass', to: [everyNamespace] }] });
  check(t, [pass, cnp('deny-all', 'Admin', 6, house('gryffindor'), { egress: [{ action: 'Deny', to: [everyNamespace] }] })], () => true);
  check(t, [pass, cnp('default', 'Baseline', 5, house('gryffindor'), { egress: [{ action: 'Deny', to: [house('ravenclaw')] }] })], (f, to) => !between(f, to, 'gryffindor', 'ravenclaw'));
});

test('Baseline Pass ends the Baseline tier: the traffic is allowed', (t) =>
  check(
    t,
    [
      cnp('b-pass', 'Baseline', 1, house('gryffindor'), { ingress: [{ action: 'Pass', from: [replica('slytherin', 0)] }] }),
      cnp('b-deny', 'Baseline', 2, house('gryffindor'), { ingress: [{ action: 'Deny', from: [house('slytherin')] }] }),
    ],
    (f, to) => !(between(f, to, 'slytherin', 'gryffindor') && f.replica === 1),
  ));

// --- Admin → NetworkPolicy → Baseline --------------------------------------------------------------
// The upstream integration case, step by step: an Admin Deny, a namespace NetworkPolicy that allows
// the same traffic, and a Baseline Deny of it.
test('integration: Admin Deny, then Pass to the NetworkPolicy, then without it the Baseline, then a Baseline Accept', (t) => {
  const admin = (action: string) =>
    cnp('pass-example', 'Admin', 10, house('gryffindor'), { ingress: [{ action, from: [house('slytherin')] }], egress: [{ action, to: [house('slytherin')] }] });
  const baseline = (action: string) =>
    cnp('default', 'Baseline', 10, house('gryffindor'), { ingress: [{ action, from: [house('slytherin')] }], egress: [{ action, to: [house('slytherin')] }] });
  const slytherin = { namespaceSelector: { matchLabels: { 'conformance-house': 'slytherin' } } };
  const np = policy(houseNs('gryffindor'), 'allow-gress-slytherin', { podSelector: {}, policyTypes: ['Ingress', 'Egress'], ingress: [{ from: [slytherin] }], egress: [{ to: [slytherin] }] });
  const withSlytherin = (f: HousePod, to: HousePod) => between(f, to, 'slytherin', 'gryffindor') || between(f, to, 'gryffindor', 'slytherin');
  const touchesGryffindor = (f: HousePod, to: HousePod) => f.house === 'gryffindor' || to.house === 'gryffindor';
  // The NetworkPolicy isolates gryffindor both ways and opens only slytherin; the Admin Deny closes that.
  check(t, [admin('Deny'), np, baseline('Deny')], (f, to) => !touchesGryffindor(f, to));
  check(t, [admin('Pass'), np, baseline('Deny')], (f, to) => !touchesGryffindor(f, to) || withSlytherin(f, to));
  check(t, [admin('Pass'), baseline('Deny')], (f, to) => !withSlytherin(f, to));
  check(t, [admin('Pass'), baseline('Accept')], () => true);
});

test('Baseline only where NetworkPolicy does not isolate, per direction', (t) =>
  check(
    t,
    [
      cnp('default', 'Baseline', 10, house('gryffindor'), { ingress: [{ action: 'Deny', from: [house('slytherin')] }], egress: [{ action: 'Deny', to: [house('slytherin')] }] }),
      policy(houseNs('gryffindor'), 'egress-open', { podSelector: {}, policyTypes: ['Egress'], egress: [{}] }),
    ],
    (f, to) => !between(f, to, 'slytherin', 'gryffindor'), // egress to slytherin: the NetworkPolicy's (open)
  ));

test('an Admin Accept cannot be blocked by NetworkPolicy, but an egress Accept does not open the destination', (t) =>
  check(
    t,
    [
      cnp('monitoring', 'Admin', 1, house('ravenclaw'), { ingress: [{ action: 'Accept', from: [house('hufflepuff')], protocols: [port('TCP', 8080)] }], egress: [{ action: 'Accept', to: [house('gryffindor')] }] }),
      policy(houseNs('ravenclaw'), 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
      policy(houseNs('gryffindor'), 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] }),
    ],
    (f, to, p) => {
      if (to.house === 'gryffindor') return false; // gryffindor's own NetworkPolicy decides its ingress
      if (to.house === 'ravenclaw') return f.house === 'hufflepuff' && is(p, 'TCP', 8080);
      return f.house !== 'ravenclaw'; // ravenclaw's egress elsewhere: its NetworkPolicy denies
    },
  ));

// --- peers and subjects --------------------------------------------------------------------------
test('subject pods: namespaceSelector AND podSelector (one replica of one house)', (t) =>
  check(
    t,
    [cnp('guard-harry-0', 'Admin', 1, { pods: { namespaceSelector: { matchLabels: { 'conformance-house': 'gryffindor' } }, podSelector: { matchLabels: { 'statefulset.kubernetes.io/pod-name': 'harry-potter-0' } } } }, { ingress: [{ action: 'Deny', from: [everyNamespace] }] })],
    (_f, to) => to.name !== 'harry-potter-0',
  ));

test('peer pods: namespaceSelector AND podSelector; every namespace with a pod selector', (t) => {
  check(t, [cnp('deny-draco-1', 'Admin', 1, house('gryffindor'), { ingress: [{ action: 'Deny', from: [replica('slytherin', 1)] }] })], (f, to) => !(to.house === 'gryffindor' && f.name === 'draco-malfoy-1'));
  check(t, [cnp('deny-replica-1', 'Admin', 1, house('gryffindor'), { egress: [{ action: 'Deny', to: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { 'apps.kubernetes.io/pod-index': '1' } } } }] }] })], (f, to) => !(f.house === 'gryffindor' && to.replica === 1));
});

// --- ports -----------------------------------------------------------------------------------------
test('named ports: resolved on the destination pod with the protocol it declares; undeclared ports have no name', (t) => {
  check(t, [cnp('deny-web', 'Admin', 1, house('gryffindor'), { ingress: [{ action: 'Deny', from: [everyNamespace], protocols: [{ destinationNamedPort: 'web' }] }] })], (_f, to, p) => !(to.house === 'gryffindor' && is(p, 'TCP', 80)));
  check(t, [cnp('deny-dns', 'Admin', 1, house('gryffindor'), { egress: [{ action: 'Deny', to: [house('hufflepuff')], protocols: [{ destinationNamedPort: 'dns' }] }] })], (f, to, p) => !(between(f, to, 'gryffindor', 'hufflepuff') && is(p, 'UDP', 53)));
  // 8080 is served but not declared: a name for it matches nothing, and a Deny of nothing denies nothing.
  check(t, [cnp('deny-undeclared', 'Admin', 1, house('gryffindor'), { ingress: [{ action: 'Deny', from: [everyNamespace], protocols: [{ destinationNamedPort: 'http-alt' }] }] })], () => true);
});

test('port ranges: start and end included, per protocol', (t) =>
  check(
    t,
    [cnp('ranges', 'Baseline', 1, house('gryffindor'), { ingress: [{ action: 'Deny', from: [everyNamespace], protocols: [range('TCP', 8000, 8080), range('UDP', 5000, 5353), range('SCTP', 9004, 9005)] }] })],
    (_f, to, p) => !(to.house === 'gryffindor' && (is(p, 'TCP', 8080) || is(p, 'UDP', 5353) || is(p, 'SCTP', 9005))),
  ));

// --- networks ----------------------------------------------------------------------------------
// "networks ... match pod IPs too: to keep pod traffic out of a CIDR rule, add a rule that Passes all
// pod traffic before the Networks rule."
test('networks: egress CIDRs match pods by address; a Pass before them keeps pod traffic out', (t) => {
  const np = policy(houseNs('gryffindor'), 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] });
  check(
    t,
    [cnp('cidr', 'Admin', 1, house('gryffindor'), { egress: [{ action: 'Deny', to: [{ networks: ['10.244.2.0/24'] }] }, { action: 'Accept', to: [{ networks: [`${HOUSE_PODS.find((p) => p.name === 'draco-malfoy-0')!.ip}/32`] }] }] }), np],
    (f, to) => f.house !== 'gryffindor' || to.name === 'draco-malfoy-0',
  );
  check(
    t,
    [cnp('cidr', 'Admin', 1, house('gryffindor'), { egress: [{ action: 'Pass', to: [house('hufflepuff')] }, { action: 'Deny', to: [{ networks: ['0.0.0.0/0'] }] }] })],
    (f, to) => f.house !== 'gryffindor' || to.house === 'hufflepuff',
  );
});

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
