// ClusterNetworkPolicy semantics on the upstream NetworkPolicy conformance model (namespaces x, y, z
// labelled ns: <name>; pods a, b, c labelled pod: <name>, serving 80 and 81 on TCP, UDP, SCTP with
// ports named serve-<port>-<proto>; c on node-2, 10.244.2.0/24). One case per rule of the API's
// documentation (network-policy-api v0.2.0, apis/v1alpha2 and the API overview), expectations
// written from it as predicates over (from, to, port).
import test from 'ava';
import { ALL_PODS, conformanceObjects, policy, storeOf, podIP, type Raw } from '../support/conformance.js';
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

function check(t: import('ava').ExecutionContext, objects: Raw[], expect: Expect): void {
  const m = computeMatrix(storeOf([...conformanceObjects(), ...objects]), PORTS);
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
  t.deepEqual(wrong.slice(0, 20), [], `${wrong.length} pair(s) differ`);
}

type Rule = Record<string, unknown>;
const ns = (n: string) => ({ namespaces: { matchLabels: { ns: n } } });
const allNs = { namespaces: {} };
const podsIn = (n: string, pod: string) => ({ pods: { namespaceSelector: { matchLabels: { ns: n } }, podSelector: { matchLabels: { pod } } } });
const tcp = (port: number) => ({ tcp: { destinationPort: { number: port } } });
const udp = (port: number) => ({ udp: { destinationPort: { number: port } } });

function cnp(name: string, tier: 'Admin' | 'Baseline', priority: number, subject: Rule, rules: { ingress?: Rule[]; egress?: Rule[] }): Raw {
  return { apiVersion: 'policy.networking.k8s.io/v1alpha2', kind: 'ClusterNetworkPolicy', metadata: { name }, spec: { tier, priority, subject, ...rules } };
}
const admin = (name: string, priority: number, subject: Rule, rules: { ingress?: Rule[]; egress?: Rule[] }) => cnp(name, 'Admin', priority, subject, rules);
const baseline = (name: string, priority: number, subject: Rule, rules: { ingress?: Rule[]; egress?: Rule[] }) => cnp(name, 'Baseline', priority, subject, rules);
const denyIngressNP = (n: string) => policy(n, 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] });

test('Admin Deny: denies no matter what NetworkPolicy allows', (t) =>
  check(
    t,
    [admin('guard', 10, ns('x'), { ingress: [{ name: 'deny-y', action: 'Deny', from: [ns('y')] }] }), policy('x', 'allow-all', { podSelector: {}, ingress: [{}] })],
    (f, to) => !(to.ns === 'x' && f.ns === 'y'),
  ));

test('Admin Accept: allows what NetworkPolicy denies (namespace owners cannot block it)', (t) =>
  check(t, [admin('monitoring', 10, allNs, { ingress: [{ action: 'Accept', from: [ns('y')] }] }), denyIngressNP('x')], (f, to) => to.ns !== 'x' || f.ns === 'y'));

test('Admin Accept of egress does not bypass the destination ingress', (t) =>
  check(t, [admin('out', 10, ns('x'), { egress: [{ action: 'Accept', to: [ns('y')] }] }), denyIngressNP('y'), policy('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] })], (f, to) => {
    if (to.ns === 'y') return false; // y's NetworkPolicy isolates ingress
    return f.ns !== 'x'; // x's egress: accepted only to y (then denied there); NetworkPolicy denies the rest
  }));

test('priority order: the lower priority decides first', (t) => {
  const accept = (p: number) => admin('accept-y', p, ns('x'), { ingress: [{ action: 'Accept', from: [ns('y')] }] });
  const deny = (p: number) => admin('deny-y', p, ns('x'), { ingress: [{ action: 'Deny', from: [ns('y')] }] });
  check(t, [accept(10), deny(20)], () => true);
  check(t, [accept(20), deny(10)], (f, to) => !(to.ns === 'x' && f.ns === 'y'));
  check(t, [accept(0), deny(1000)], () => true);
});

test('rule order within a policy: the first matching rule decides', (t) =>
  check(t, [admin('g', 10, ns('x'), { ingress: [{ action: 'Accept', from: [ns('y')], protocols: [tcp(80)] }, { action: 'Deny', from: [ns('y')] }] })], (f, to, p) => {
    if (to.ns === 'x' && f.ns === 'y') return p.port === 80 && p.protocol === 'TCP';
    return true;
  }));

test('equal priorities: podwall orders by name (documented), the first by name decides', (t) => {
  const a = admin('a-accept', 5, ns('x'), { ingress: [{ action: 'Accept', from: [ns('y')] }] });
  const b = admin('b-deny', 5, ns('x'), { ingress: [{ action: 'Deny', from: [ns('y')] }] });
  check(t, [b, a], () => true);
  const c = admin('0-deny', 5, ns('x'), { ingress: [{ action: 'Deny', from: [ns('y')] }] });
  check(t, [a, c], (f, to) => !(to.ns === 'x' && f.ns === 'y'));
});

test('Pass: skips the rest of the Admin tier and lets NetworkPolicy decide', (t) =>
  check(
    t,
    [
      admin('delegate-y', 5, ns('x'), { ingress: [{ action: 'Pass', from: [ns('y')] }] }),
      admin('deny-all', 10, ns('x'), { ingress: [{ action: 'Deny', from: [allNs] }] }),
      policy('x', 'allow-y-80', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }] }] }),
    ],
    (f, to, p) => {
      if (to.ns !== 'x') return true;
      if (f.ns === 'y') return p.port === 80 && p.protocol === 'TCP'; // NetworkPolicy decides
      return false; // the Admin Deny
    },
  ));

test('Pass with no NetworkPolicy: Baseline decides, else allowed', (t) => {
  const pass = admin('delegate', 5, ns('x'), { ingress: [{ action: 'Pass', from: [ns('y')] }] });
  check(t, [pass], () => true);
  check(t, [pass, baseline('default', 1, ns('x'), { ingress: [{ action: 'Deny', from: [ns('y'), ns('z')] }] })], (f, to) => to.ns !== 'x' || f.ns === 'x');
});

test('Baseline Deny applies when no NetworkPolicy isolates the pod', (t) =>
  check(t, [baseline('default', 10, allNs, { ingress: [{ action: 'Deny', from: [allNs] }] })], () => false));

test('Baseline is skipped where NetworkPolicy isolates the pod: namespace owners can open it', (t) =>
  check(
    t,
    [baseline('default', 10, allNs, { ingress: [{ action: 'Deny', from: [allNs] }] }), policy('x', 'allow-from-y', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] })],
    (f, to) => to.ns === 'x' && f.ns === 'y',
  ));

test('Baseline: isolation is per direction (an egress-only NetworkPolicy leaves ingress to Baseline)', (t) =>
  check(
    t,
    [baseline('default', 10, ns('x'), { ingress: [{ action: 'Deny', from: [ns('y')] }], egress: [{ action: 'Deny', to: [ns('z')] }] }), policy('x', 'egress-open', { podSelector: {}, policyTypes: ['Egress'], egress: [{}] })],
    (f, to) => !(to.ns === 'x' && f.ns === 'y'), // x's egress is NetworkPolicy's (all open), its ingress Baseline's
  ));

test('Baseline: first match decides, Accept before a Deny-all, Pass ends the tier', (t) =>
  check(
    t,
    [
      baseline('b1', 1, ns('x'), { ingress: [{ action: 'Accept', from: [podsIn('y', 'a')] }, { action: 'Pass', from: [podsIn('y', 'b')] }] }),
      baseline('b2', 2, ns('x'), { ingress: [{ action: 'Deny', from: [allNs] }] }),
    ],
    (f, to) => to.ns !== 'x' || (f.ns === 'y' && (f.pod === 'a' || f.pod === 'b')),
  ));

test('Admin before Baseline, whatever the priorities', (t) =>
  check(t, [baseline('b', 0, ns('x'), { ingress: [{ action: 'Accept', from: [ns('y')] }] }), admin('a', 1000, ns('x'), { ingress: [{ action: 'Deny', from: [ns('y')] }] })], (f, to) => !(to.ns === 'x' && f.ns === 'y')));

test('egress Deny to a namespace', (t) => check(t, [admin('no-z', 10, ns('x'), { egress: [{ action: 'Deny', to: [ns('z')] }] })], (f, to) => !(f.ns === 'x' && to.ns === 'z')));

test('subject pods: namespaceSelector AND podSelector', (t) =>
  check(t, [admin('a-only', 10, podsIn('x', 'a'), { ingress: [{ action: 'Deny', from: [allNs] }] })], (_f, to) => !(to.ns === 'x' && to.pod === 'a')));

test('peer pods: namespaceSelector AND podSelector', (t) =>
  check(t, [admin('g', 10, allNs, { ingress: [{ action: 'Deny', from: [podsIn('y', 'b')] }] })], (f) => !(f.ns === 'y' && f.pod === 'b')));

test('protocols: a TCP port does not match UDP or SCTP; SCTP matches SCTP', (t) => {
  check(t, [admin('g', 10, ns('x'), { ingress: [{ action: 'Deny', from: [allNs], protocols: [tcp(80)] }] })], (_f, to, p) => !(to.ns === 'x' && p.port === 80 && p.protocol === 'TCP'));
  check(t, [admin('g', 10, ns('x'), { ingress: [{ action: 'Deny', from: [allNs], protocols: [udp(81), { sctp: { destinationPort: { number: 80 } } }] }] })], (_f, to, p) => !(to.ns === 'x' && ((p.port === 81 && p.protocol === 'UDP') || p.protocol === 'SCTP')));
});

test('port ranges: start and end included', (t) =>
  check(t, [admin('g', 10, ns('x'), { ingress: [{ action: 'Deny', from: [allNs], protocols: [{ tcp: { destinationPort: { range: { start: 79, end: 80 } } } }] }] })], (_f, to, p) => !(to.ns === 'x' && p.protocol === 'TCP' && p.port === 80)));

test('named ports: resolved on the destination pod, with the protocol it declares', (t) => {
  // serve-80-udp is 80/UDP on every pod: it never matches 80/TCP.
  check(t, [admin('g', 10, ns('x'), { ingress: [{ action: 'Deny', from: [allNs], protocols: [{ destinationNamedPort: 'serve-80-udp' }] }] })], (_f, to, p) => !(to.ns === 'x' && p.port === 80 && p.protocol === 'UDP'));
  // egress: on the peer pods.
  check(t, [admin('g', 10, ns('x'), { egress: [{ action: 'Deny', to: [ns('y')], protocols: [{ destinationNamedPort: 'serve-81-tcp' }] }] })], (f, to, p) => !(f.ns === 'x' && to.ns === 'y' && p.port === 81 && p.protocol === 'TCP'));
  // a name no destination declares matches nothing (never "every port").
  check(t, [admin('g', 10, ns('x'), { ingress: [{ action: 'Deny', from: [allNs], protocols: [{ destinationNamedPort: 'nope' }] }] })], () => true);
});

test('networks: egress CIDRs match pod addresses too (c pods are 10.244.2.0/24)', (t) => {
  check(t, [admin('g', 10, ns('x'), { egress: [{ action: 'Deny', to: [{ networks: ['10.244.2.0/24'] }] }] })], (f, to) => !(f.ns === 'x' && to.pod === 'c'));
  // Pass pod traffic before a networks rule, as the API suggests, to keep it out of the CIDR rule.
  check(t, [admin('g', 10, ns('x'), { egress: [{ action: 'Pass', to: [ns('y')] }, { action: 'Deny', to: [{ networks: ['0.0.0.0/0'] }] }] })], (f, to) => f.ns !== 'x' || to.ns === 'y');
});

test('networks: non-pod destinations', (t) => {
  const store = storeOf([...conformanceObjects(), admin('g', 10, ns('x'), { egress: [{ action: 'Deny', to: [{ networks: ['169.254.169.254/32'] }] }, { action: 'Accept', to: [{ networks: ['0.0.0.0/0'] }] }] }), policy('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] })]);
  const plan = compile(store);
  const src = podIP('x', 'a');
  t.false(evaluate(plan, { src, dst: '169.254.169.254', protocol: 'TCP', port: 80 }).allowed);
  t.true(evaluate(plan, { src, dst: '192.0.2.1', protocol: 'TCP', port: 443 }).allowed, 'the Admin Accept overrides the NetworkPolicy egress lockdown');
  t.true(evaluate(plan, { src: podIP('y', 'a'), dst: '169.254.169.254', protocol: 'TCP', port: 80 }).allowed, 'y is not a subject');
});

test('a pod always reaches itself, even under an Admin Deny of everything', (t) =>
  check(t, [admin('g', 10, allNs, { ingress: [{ action: 'Deny', from: [allNs] }], egress: [{ action: 'Deny', to: [allNs, { networks: ['0.0.0.0/0'] }] }] })], () => false));

test("a pod's own node reaches it (kubelet probes), as with NetworkPolicy", (t) => {
  const store = storeOf([...conformanceObjects(), admin('g', 10, allNs, { ingress: [{ action: 'Deny', from: [allNs] }] })]);
  const plan = compile(store);
  t.true(evaluate(plan, { src: '172.18.0.2', dst: podIP('x', 'a'), protocol: 'TCP', port: 80 }).allowed);
  t.false(evaluate(plan, { src: podIP('y', 'a'), dst: podIP('x', 'a'), protocol: 'TCP', port: 80 }).allowed);
});

test('ingress peers are pods: a non-pod source is not matched by an Admin Deny of all namespaces', (t) => {
  const store = storeOf([...conformanceObjects(), admin('g', 10, allNs, { ingress: [{ action: 'Deny', from: [allNs] }] })]);
  t.true(evaluate(compile(store), { src: '192.0.2.1', dst: podIP('x', 'a'), protocol: 'TCP', port: 80 }).allowed);
});

test('a CNP without rules for a direction does not affect it; one without rules at all selects nothing to enforce', (t) => {
  check(t, [admin('ingress-only', 10, allNs, { ingress: [{ action: 'Deny', from: [ns('z')] }] }), policy('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] })], (f) => f.ns !== 'x' && f.ns !== 'z');
  check(t, [admin('empty', 10, allNs, {})], () => true);
});

test('an unsupported nodes peer: a Deny rule denies every destination (with its protocols)', (t) =>
  check(t, [admin('g', 10, ns('x'), { egress: [{ action: 'Deny', to: [{ nodes: {} }], protocols: [tcp(81)] }] })], (f, _to, p) => !(f.ns === 'x' && p.port === 81 && p.protocol === 'TCP')));

test('an unsupported peer in an Accept rule matches nothing', (t) =>
  check(t, [admin('g', 10, ns('x'), { egress: [{ action: 'Accept', to: [{ nodes: {} }] }] }), policy('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] })], (f) => f.ns !== 'x'));

test('an unsupported peer in a Pass rule: enforced as Deny of every destination', (t) =>
  check(t, [admin('g', 10, ns('x'), { egress: [{ action: 'Pass', to: [{ nodes: {} }] }] })], (f) => f.ns !== 'x'));

test('an invalid CNP is ignored whole: the pods keep what the valid policies give them', (t) => {
  const bad = admin('bad', 10, ns('x'), { ingress: [{ action: 'Accept', from: [ns('y')], protocols: [{ tcp: { destinationPort: { range: { start: 90, end: 80 } } } }] }] });
  t.throws(() => storeOf([bad]), { message: /invalid-port-range/ }, 'the boundary rejects it');
  check(t, [denyIngressNP('x')], (_f, to) => to.ns !== 'x');
});

test('verdict names the deciding rule, tier and priority', (t) => {
  const store = storeOf([
    ...conformanceObjects(),
    admin('admin-guard', 10, ns('x'), { ingress: [{ name: 'deny-kube-system', action: 'Deny', from: [ns('y')] }, { name: 'delegate', action: 'Pass', from: [ns('z')] }] }),
    denyIngressNP('x'),
  ]);
  const plan = compile(store);
  const v = evaluate(plan, { src: podIP('y', 'a'), dst: podIP('x', 'b'), protocol: 'TCP', port: 80 });
  t.false(v.allowed);
  t.is(v.ingress.decidedIn, 'Admin');
  t.regex(v.summary, /denied by rule 'deny-kube-system' \(Deny\) of ClusterNetworkPolicy admin-guard, Admin tier, priority 10/);
  const p = evaluate(plan, { src: podIP('z', 'a'), dst: podIP('x', 'b'), protocol: 'TCP', port: 80 });
  t.false(p.allowed);
  t.is(p.ingress.decidedIn, 'NetworkPolicy');
  t.regex(p.summary, /passed to NetworkPolicy by rule 'delegate' \(Pass\)/);
});
