// NetworkPolicy v1 semantics on the upstream conformance model, one case per behaviour of the spec.
// Expectations are written from the Kubernetes documentation as predicates over (from, to, port).
import test from 'ava';
import { ALL_PODS, conformanceObjects, policy, storeOf, type Raw, podIP } from '../support/conformance.js';
import { computeMatrix } from '../../src/sim/matrix.js';
import { compile } from '../../src/policy/compile.js';
import { evaluate } from '../../src/sim/evaluate.js';
import type { ProbePort } from '../../src/policy/ports.js';

interface P {
  ns: string;
  pod: string;
}
type Expect = (from: P, to: P, port: ProbePort) => boolean;

const PORTS: ProbePort[] = [
  { port: 80, protocol: 'TCP' },
  { port: 81, protocol: 'TCP' },
  { port: 80, protocol: 'UDP' },
  { port: 81, protocol: 'UDP' },
  { port: 80, protocol: 'SCTP' },
];

const split = (k: string): P => {
  const [ns, pod] = k.split('/') as [string, string];
  return { ns, pod };
};

function check(t: import('ava').ExecutionContext, objects: Raw[], expect: Expect, ports = PORTS): void {
  const m = computeMatrix(storeOf([...conformanceObjects(), ...objects]), ports);
  const wrong: string[] = [];
  for (const probe of m.probes) {
    const port = { port: probe.port, protocol: probe.protocol as ProbePort['protocol'] };
    for (const from of ALL_PODS) {
      for (const to of ALL_PODS) {
        const want = from === to ? true : expect(split(from), split(to), port);
        const got = probe.allowed[from]![to];
        if (got !== want) wrong.push(`${from} -> ${to} ${probe.port}/${probe.protocol}: got ${got}, want ${want}`);
      }
    }
  }
  t.deepEqual(wrong, [], `${wrong.length} pair(s) differ`);
}

const denyAllIngress = (ns: string) => policy(ns, 'deny-all-ingress', { podSelector: {}, policyTypes: ['Ingress'] });

test('no policies: everything reachable', (t) => check(t, [], () => true));

test('deny all ingress in x isolates every pod of x', (t) => check(t, [denyAllIngress('x')], (_f, to) => to.ns !== 'x'));

test('policy without policyTypes and without egress defaults to Ingress only', (t) =>
  check(t, [policy('x', 'p', { podSelector: {} })], (_f, to) => to.ns !== 'x'));

test('policy without policyTypes but with egress rules isolates both directions', (t) =>
  check(t, [policy('x', 'p', { podSelector: { matchLabels: { pod: 'a' } }, egress: [{ to: [{ podSelector: {} }] }] })], (f, to) => {
    if (to.ns === 'x' && to.pod === 'a') return false; // ingress isolated, no ingress rules
    if (f.ns === 'x' && f.pod === 'a') return to.ns === 'x'; // egress to pods of x only
    return true;
  }));

test('`egress: []` without policyTypes does not isolate egress (API defaulting)', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, egress: [] })], (_f, to) => to.ns !== 'x'));

test('deny all egress from x', (t) =>
  check(t, [policy('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] })], (f) => f.ns !== 'x'));

test('deny all in both directions', (t) =>
  check(t, [policy('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })], (f, to) => f.ns !== 'x' && to.ns !== 'x'));

test('`ingress: [{}]` (a rule with no from and no ports) allows everything', (t) =>
  check(t, [policy('x', 'allow-all', { podSelector: {}, ingress: [{}] })], () => true));

test('`from: []` is the same as a missing from: all sources', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ from: [], ports: [{ port: 80 }] }] })], (_f, to, port) => to.ns !== 'x' || (port.port === 80 && port.protocol === 'TCP')));

test('`ports: []` is the same as missing ports: all ports', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }], ports: [] }] })], (f, to) => to.ns !== 'x' || f.ns === 'x'));

test('`ingress: []` with policyTypes Ingress denies all ingress', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, policyTypes: ['Ingress'], ingress: [] })], (_f, to) => to.ns !== 'x'));

test('podSelector matchLabels selects only matching pods as targets', (t) =>
  check(t, [policy('x', 'p', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Ingress'] })], (_f, to) => !(to.ns === 'x' && to.pod === 'a')));

test('allow from pods in the same namespace by podSelector', (t) =>
  check(t, [policy('x', 'p', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] })], (f, to) =>
    !(to.ns === 'x' && to.pod === 'a') || (f.ns === 'x' && f.pod === 'b')));

test('podSelector peer without namespaceSelector looks only in the policy namespace', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })], (f, to) => to.ns !== 'x' || f.ns === 'x'));

test('namespaceSelector peer: all pods of matching namespaces', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] })], (f, to) => to.ns !== 'x' || f.ns === 'y'));

test('empty namespaceSelector: all pods of all namespaces', (t) =>
  check(t, [denyAllIngress('x'), policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] })], () => true));

test('namespaceSelector and podSelector in one peer are ANDed', (t) =>
  check(
    t,
    [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'a' } } }] }] })],
    (f, to) => to.ns !== 'x' || (f.ns === 'y' && f.pod === 'a'),
  ));

test('namespaceSelector and podSelector in two peers are ORed', (t) =>
  check(
    t,
    [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }, { podSelector: { matchLabels: { pod: 'a' } } }] }] })],
    (f, to) => to.ns !== 'x' || f.ns === 'y' || (f.ns === 'x' && f.pod === 'a'),
  ));

test('kubernetes.io/metadata.name is added to namespaces that lack it', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'z' } } }] }] })], (f, to) => to.ns !== 'x' || f.ns === 'z'));

test('matchExpressions In', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['a', 'c'] }] } }] }] })], (f, to) =>
    to.ns !== 'x' || f.pod !== 'b'));

test('matchExpressions NotIn (also matches pods lacking the key)', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'NotIn', values: ['y'] }] } }] }] })], (f, to) =>
    to.ns !== 'x' || f.ns !== 'y'));

test('matchExpressions Exists and DoesNotExist', (t) =>
  check(
    t,
    [
      policy('x', 'p', { podSelector: { matchExpressions: [{ key: 'pod', operator: 'Exists' }] }, policyTypes: ['Ingress'] }),
      policy('y', 'q', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'pod', operator: 'DoesNotExist' }] } }] }] }),
    ],
    (_f, to) => to.ns === 'z',
  ));

test('ports by number: only that port and protocol', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] })], (_f, to, port) => to.ns !== 'x' || (port.port === 80 && port.protocol === 'TCP')));

test('protocol UDP and SCTP on a port', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 81, protocol: 'UDP' }, { port: 80, protocol: 'SCTP' }] }] })], (_f, to, port) =>
    to.ns !== 'x' || (port.port === 81 && port.protocol === 'UDP') || (port.port === 80 && port.protocol === 'SCTP')));

test('a port entry without port matches every port of its protocol', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ ports: [{ protocol: 'UDP' }] }] })], (_f, to, port) => to.ns !== 'x' || port.protocol === 'UDP'));

test('port range with endPort', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 81, endPort: 90 }] }] })], (_f, to, port) => to.ns !== 'x' || (port.protocol === 'TCP' && port.port === 81)));

test('named port resolves on the destination pod and protocol (ingress)', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-81-udp', protocol: 'UDP' }] }] })], (_f, to, port) =>
    to.ns !== 'x' || (port.port === 81 && port.protocol === 'UDP')));

test('named port with the wrong protocol resolves to nothing (matches nothing)', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-81-udp' }] }] })], (_f, to) => to.ns !== 'x'));

test('named port on egress resolves on the destination pods', (t) =>
  check(
    t,
    [policy('x', 'p', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 'serve-80-tcp' }] }] })],
    (f, to, port) => !(f.ns === 'x' && f.pod === 'a') || (to.ns === 'y' && port.port === 80 && port.protocol === 'TCP'),
  ));

test('egress to an ipBlock with except', (t) =>
  check(
    t,
    [policy('x', 'p', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.244.1.0/24', except: [`${podIP('y', 'a')}/32`] } }] }] })],
    (f, to) => f.ns !== 'x' || (to.pod !== 'c' && !(to.ns === 'y' && to.pod === 'a')),
  ));

test('ingress from an ipBlock matches pod IPs', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.244.2.0/24' } }] }] })], (f, to) => to.ns !== 'x' || f.pod === 'c'));

test('ipBlock 0.0.0.0/0 covers the whole IPv4 family', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }] })], () => true));

test('an IPv6 ipBlock does not match IPv4 pods', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '::/0' } }] }] })], (_f, to) => to.ns !== 'x'));

test('policies are additive: the union of all policies selecting a pod', (t) =>
  check(
    t,
    [
      policy('x', 'p1', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }] }] }),
      policy('x', 'p2', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }], ports: [{ port: 81 }] }] }),
    ],
    (f, to, port) => to.ns !== 'x' || (port.protocol === 'TCP' && ((f.ns === 'y' && port.port === 80) || (f.ns === 'z' && port.port === 81))),
  ));

test('ingress and egress both must allow: egress-isolated source to ingress-isolated destination', (t) =>
  check(
    t,
    [
      policy('x', 'egress-to-y', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] }),
      policy('y', 'ingress-from-x-a', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } }, podSelector: { matchLabels: { pod: 'a' } } }] }] }),
    ],
    (f, to) => {
      const egressOk = f.ns !== 'x' || to.ns === 'y';
      const ingressOk = to.ns !== 'y' || (f.ns === 'x' && f.pod === 'a');
      return egressOk && ingressOk;
    },
  ));

test('connections are stateful: an egress-isolated destination still answers', (t) =>
  check(t, [policy('y', 'no-egress', { podSelector: {}, policyTypes: ['Egress'] })], (f) => f.ns !== 'y'));

test('rules for a direction missing from policyTypes are ignored', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, policyTypes: ['Egress'], ingress: [{}], egress: [] })], (f) => f.ns !== 'x'));

test('a pod always reaches itself, even when isolated both ways', (t) => {
  const plan = compile(storeOf([...conformanceObjects(), policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })]));
  const ip = podIP('x', 'a');
  t.true(evaluate(plan, { src: ip, dst: ip, protocol: 'TCP', port: 80 }).allowed);
});

test("traffic from the pod's own node is allowed; from another node it is not", (t) => {
  const plan = compile(storeOf([...conformanceObjects(), denyAllIngress('x')]));
  t.true(evaluate(plan, { src: '172.18.0.2', dst: podIP('x', 'a'), protocol: 'TCP', port: 80 }).allowed); // node-1 → x/a on node-1
  t.false(evaluate(plan, { src: '172.18.0.3', dst: podIP('x', 'a'), protocol: 'TCP', port: 80 }).allowed); // node-2 → x/a
});

function podObj(ns: string, name: string, extra: { spec?: Raw; status?: Raw; labels?: Record<string, string> }): Raw {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: extra.labels ?? { pod: name } },
    spec: { nodeName: 'node-1', containers: [{ name: 's', ports: [{ containerPort: 80 }] }], ...extra.spec },
    status: { phase: 'Running', ...extra.status },
  };
}

test('hostNetwork, IP-less and finished pods are neither targets nor peers', (t) => {
  const objects = [
    ...conformanceObjects(),
    podObj('x', 'host', { spec: { hostNetwork: true }, status: { podIP: '172.18.0.2' }, labels: { pod: 'a' } }),
    podObj('x', 'pending', { status: { phase: 'Pending' }, labels: { pod: 'a' } }),
    podObj('x', 'done', { status: { phase: 'Succeeded', podIP: '10.244.1.200' }, labels: { pod: 'a' } }),
    podObj('x', 'failed', { status: { phase: 'Failed', podIP: '10.244.1.201' }, labels: { pod: 'a' } }),
    policy('y', 'from-x-a', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } }, podSelector: { matchLabels: { pod: 'a' } } }] }] }),
  ];
  const plan = compile(storeOf(objects));
  t.deepEqual(
    plan.pods.map((p) => p.key),
    ALL_PODS,
  );
  const peer = plan.policies[0]!.ingress[0]!.peers;
  t.not(peer, 'all');
  t.deepEqual((peer as { ips: string[] }[])[0]!.ips, [podIP('x', 'a')]);
  // The finished pod's IP gets nothing from the peer set.
  t.false(evaluate(plan, { src: '10.244.1.200', dst: podIP('y', 'a'), protocol: 'TCP', port: 80 }).allowed);
});

test('an invalid rule grants nothing while the rest of the policy still applies (fail closed)', (t) =>
  check(
    t,
    [
      policy('x', 'p', {
        podSelector: {},
        ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/33' } }] }, { from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }, { from: [{ podSelectr: {} }] }],
      }),
    ],
    (f, to) => to.ns !== 'x' || f.ns === 'y',
  ));

test('a typo in `from` never becomes "allow from anywhere"', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ form: [{ podSelector: { matchLabels: { pod: 'a' } } }] }] })], (_f, to) => to.ns !== 'x'));

test('an unreadable podSelector isolates the whole namespace and grants nothing of its own', (t) =>
  check(t, [policy('x', 'p', { podSelector: { matchExpressions: [{ key: 'pod', operator: 'Is', values: ['a'] }] }, ingress: [{}] })], (_f, to) => to.ns !== 'x'));

test('an unknown protocol makes the rule grant nothing (never all ports)', (t) =>
  check(t, [policy('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 80, protocol: 'ICMP' }] }] })], (_f, to) => to.ns !== 'x'));

test('a NetworkPolicy from another API group (Calico) is not read as a Kubernetes policy', (t) =>
  check(t, [{ ...policy('x', 'calico', { podSelector: {}, policyTypes: ['Ingress'] }), apiVersion: 'projectcalico.org/v3' }], () => true));

test('a node plan keeps only local targets and the policies selecting them; peers stay cluster-wide', (t) => {
  const store = storeOf([...conformanceObjects(), policy('x', 'p', { podSelector: { matchLabels: { pod: 'c' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'a' } } }] }] }), denyAllIngress('y')]);
  const plan1 = compile(store, { node: 'node-1' });
  t.deepEqual(plan1.pods.map((p) => p.key).sort(), ['x/a', 'x/b', 'y/a', 'y/b', 'z/a', 'z/b']);
  t.deepEqual(plan1.policies.map((p) => p.id), ['y/deny-all-ingress']);
  const plan2 = compile(store, { node: 'node-2' });
  t.deepEqual(plan2.policies.map((p) => p.id), ['x/p', 'y/deny-all-ingress']);
  const peers = plan2.policies[0]!.ingress[0]!.peers as { pods: string[] }[];
  t.deepEqual(peers[0]!.pods, ['x/a', 'y/a', 'z/a']);
});
