// Conformance scenarios: each a sequence of steps (objects applied or removed) with the expected
// reachability after each, written from the Kubernetes spec. Used by the simulator tests and, with
// real packets, by the lab e2e suite (ports 80/81 on TCP and UDP: this kernel has no SCTP).
import { policy, type Raw } from './conformance.js';
import { CNP_SCENARIOS } from './scenarios-cnp.js';

export interface Peer {
  ns: string;
  pod: string;
}
export type Expect = (from: Peer, to: Peer, port: { port: number; protocol: string }) => boolean;

export interface Step {
  /** Objects to create or replace. */
  apply?: Raw[];
  /** Objects to delete. */
  remove?: { kind: string; namespace?: string; name: string }[];
  /** Expected verdict for every ordered pair of distinct pods (a pod always reaches itself). */
  expect: Expect;
}

export interface Scenario {
  name: string;
  steps: Step[];
}

const is = (p: Peer, ns: string, pod?: string) => p.ns === ns && (pod === undefined || p.pod === pod);
const tcp = (port: number) => (x: { port: number; protocol: string }) => x.protocol === 'TCP' && x.port === port;
const udp = (port: number) => (x: { port: number; protocol: string }) => x.protocol === 'UDP' && x.port === port;

export function extraPod(ns: string, name: string, labels: Record<string, string>, ip: string, node = 'node-1', ports = [80, 81]): Raw {
  const containerPorts = ports.flatMap((port) => ['TCP', 'UDP'].map((protocol) => ({ name: `serve-${port}-${protocol.toLowerCase()}`, containerPort: port, protocol })));
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels },
    spec: { nodeName: node, containers: [{ name: 'server', image: 'agnhost', ports: containerPorts }] },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
  };
}

const denyIngress = (ns: string) => policy(ns, 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] });
const denyEgress = (ns: string) => policy(ns, 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] });

export const SCENARIOS: Scenario[] = [
  { name: 'no policies', steps: [{ expect: () => true }] },
  { name: 'deny all ingress in x', steps: [{ apply: [denyIngress('x')], expect: (_f, t) => !is(t, 'x') }] },
  { name: 'deny all egress from x', steps: [{ apply: [denyEgress('x')], expect: (f) => !is(f, 'x') }] },
  {
    name: 'deny all both ways in x, then allow within x',
    steps: [
      { apply: [policy('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })], expect: (f, t) => !is(f, 'x') && !is(t, 'x') },
      {
        apply: [policy('x', 'allow-self-ns', { podSelector: {}, policyTypes: ['Ingress', 'Egress'], ingress: [{ from: [{ podSelector: {} }] }], egress: [{ to: [{ podSelector: {} }] }] })],
        expect: (f, t) => (!is(f, 'x') && !is(t, 'x')) || (is(f, 'x') && is(t, 'x')),
      },
    ],
  },
  { name: 'allow all ingress with an empty rule', steps: [{ apply: [denyIngress('x'), policy('x', 'allow-all', { podSelector: {}, ingress: [{}] })], expect: () => true }] },
  {
    name: 'ingress from same namespace only',
    steps: [{ apply: [policy('x', 'same-ns', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })], expect: (f, t) => !is(t, 'x') || is(f, 'x') }],
  },
  {
    name: 'ingress to x/a from x/b by podSelector',
    steps: [{ apply: [policy('x', 'a-from-b', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] })], expect: (f, t) => !is(t, 'x', 'a') || is(f, 'x', 'b') }],
  },
  {
    name: 'ingress from namespace y by namespaceSelector',
    steps: [{ apply: [policy('x', 'from-y', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] })], expect: (f, t) => !is(t, 'x') || is(f, 'y') }],
  },
  {
    name: 'both selectors in one peer (AND)',
    steps: [
      {
        apply: [policy('x', 'and', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'c' } } }] }] })],
        expect: (f, t) => !is(t, 'x') || is(f, 'y', 'c'),
      },
    ],
  },
  {
    name: 'selectors in two peers (OR)',
    steps: [
      {
        apply: [policy('x', 'or', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }, { podSelector: { matchLabels: { pod: 'c' } } }] }] })],
        expect: (f, t) => !is(t, 'x') || is(f, 'y') || is(f, 'x', 'c'),
      },
    ],
  },
  {
    name: 'matchExpressions In / NotIn',
    steps: [
      {
        apply: [
          policy('x', 'in', { podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['a', 'b'] }] }, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'NotIn', values: ['z'] }] } }] }] }),
        ],
        expect: (f, t) => !(is(t, 'x') && t.pod !== 'c') || !is(f, 'z'),
      },
    ],
  },
  {
    name: 'matchExpressions Exists / DoesNotExist',
    steps: [
      {
        apply: [policy('y', 'exists', { podSelector: { matchExpressions: [{ key: 'pod', operator: 'Exists' }] }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'missing', operator: 'DoesNotExist' }] } }] }] })],
        expect: () => true,
      },
      {
        apply: [policy('y', 'exists', { podSelector: { matchExpressions: [{ key: 'pod', operator: 'Exists' }] }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'pod', operator: 'DoesNotExist' }] } }] }] })],
        expect: (_f, t) => !is(t, 'y'),
      },
    ],
  },
  { name: 'ingress on port 80 TCP only', steps: [{ apply: [policy('x', 'p80', { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] })], expect: (_f, t, p) => !is(t, 'x') || tcp(80)(p) }] },
  { name: 'ingress on 81 UDP only', steps: [{ apply: [policy('x', 'u81', { podSelector: {}, ingress: [{ ports: [{ port: 81, protocol: 'UDP' }] }] })], expect: (_f, t, p) => !is(t, 'x') || udp(81)(p) }] },
  { name: 'ingress on every UDP port', steps: [{ apply: [policy('x', 'udp', { podSelector: {}, ingress: [{ ports: [{ protocol: 'UDP' }] }] })], expect: (_f, t, p) => !is(t, 'x') || p.protocol === 'UDP' }] },
  { name: 'port range 80-81 TCP', steps: [{ apply: [policy('x', 'range', { podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 81 }] }] })], expect: (_f, t, p) => !is(t, 'x') || p.protocol === 'TCP' }] },
  { name: 'port range 81-90 TCP', steps: [{ apply: [policy('x', 'range', { podSelector: {}, ingress: [{ ports: [{ port: 81, endPort: 90 }] }] })], expect: (_f, t, p) => !is(t, 'x') || tcp(81)(p) }] },
  { name: 'named port on ingress', steps: [{ apply: [policy('x', 'named', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-81-udp', protocol: 'UDP' }] }] })], expect: (_f, t, p) => !is(t, 'x') || udp(81)(p) }] },
  { name: 'named port with the wrong protocol matches nothing', steps: [{ apply: [policy('x', 'named', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-80-udp', protocol: 'TCP' }] }] })], expect: (_f, t) => !is(t, 'x') }] },
  {
    name: 'named port on egress resolves on the destination',
    steps: [
      {
        apply: [policy('x', 'egress-named', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 'serve-80-tcp' }] }] })],
        expect: (f, _t, p) => !is(f, 'x', 'a') || tcp(80)(p),
      },
    ],
  },
  {
    name: 'egress to namespace y only',
    steps: [{ apply: [policy('x', 'to-y', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] })], expect: (f, t) => !is(f, 'x') || is(t, 'y') }],
  },
  {
    name: 'egress ipBlock with except',
    steps: [
      {
        apply: [policy('x', 'cidr', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.244.0.0/16', except: ['10.244.2.0/24'] } }] }] })],
        expect: (f, t) => !is(f, 'x') || t.pod !== 'c',
      },
    ],
  },
  {
    name: 'ingress ipBlock matches pod IPs of one node',
    steps: [{ apply: [policy('y', 'from-node-2', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.244.2.0/24' } }] }] })], expect: (f, t) => !is(t, 'y') || f.pod === 'c' }],
  },
  { name: 'ipBlock 0.0.0.0/0 covers everything', steps: [{ apply: [denyIngress('z'), policy('z', 'all-v4', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }] })], expect: () => true }] },
  {
    name: 'ingress and egress policies combine',
    steps: [
      {
        apply: [
          policy('x', 'egress-to-y', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] }),
          policy('y', 'ingress-from-x-a', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } }, podSelector: { matchLabels: { pod: 'a' } } }] }] }),
        ],
        expect: (f, t) => (!is(f, 'x') || is(t, 'y')) && (!is(t, 'y') || is(f, 'x', 'a')),
      },
    ],
  },
  { name: 'stateful: an egress-isolated destination still answers', steps: [{ apply: [denyEgress('y')], expect: (f) => !is(f, 'y') }] },
  {
    name: 'policies are additive across ports',
    steps: [
      {
        apply: [
          policy('x', 'p1', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }] }] }),
          policy('x', 'p2', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }], ports: [{ port: 81, protocol: 'UDP' }] }] }),
        ],
        expect: (f, t, p) => !is(t, 'x') || (is(f, 'y') && tcp(80)(p)) || (is(f, 'z') && udp(81)(p)),
      },
    ],
  },
  {
    name: 'pod relabel moves a pod in and out of a peer set and a target set',
    steps: [
      {
        apply: [policy('x', 'from-b', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'b' } } }] }] })],
        expect: (f, t) => !is(t, 'x', 'a') || f.pod === 'b',
      },
      {
        // y/c now carries pod: b (a peer); x/b becomes pod: a (a target).
        apply: [relabel('y', 'c', { pod: 'b' }), relabel('x', 'b', { pod: 'a' })],
        expect: (f, t) => !(is(t, 'x', 'a') || is(t, 'x', 'b')) || (f.pod === 'b' && !is(f, 'x', 'b')) || is(f, 'y', 'c'),
      },
    ],
  },
  {
    name: 'namespace relabel changes a namespaceSelector peer',
    steps: [
      { apply: [policy('x', 'from-team', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'blue' } } }] }] })], expect: (_f, t) => !is(t, 'x') },
      { apply: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'z', labels: { ns: 'z', team: 'blue' } } }], expect: (f, t) => !is(t, 'x') || is(f, 'z') },
      { apply: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'z', labels: { ns: 'z' } } }], expect: (_f, t) => !is(t, 'x') },
    ],
  },
  {
    name: 'pods added and deleted: a new pod is isolated at once, a deleted peer loses access',
    steps: [
      { apply: [policy('x', 'from-a', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'a' } } }] }] })], expect: (f, t) => !is(t, 'x') || f.pod === 'a' },
      { apply: [extraPod('x', 'd', { pod: 'd' }, '10.244.1.100'), extraPod('z', 'e', { pod: 'a' }, '10.244.2.101', 'node-2')], expect: (f, t) => !is(t, 'x') || f.pod === 'a' || is(f, 'z', 'e') },
      { remove: [{ kind: 'Pod', namespace: 'z', name: 'e' }, { kind: 'Pod', namespace: 'y', name: 'a' }], expect: (f, t) => !is(t, 'x') || f.pod === 'a' },
    ],
  },
  {
    name: 'policy updated then deleted',
    steps: [
      { apply: [policy('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] })], expect: (_f, t, p) => !is(t, 'x') || tcp(80)(p) },
      { apply: [policy('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 81 }] }] })], expect: (_f, t, p) => !is(t, 'x') || tcp(81)(p) },
      { remove: [{ kind: 'NetworkPolicy', namespace: 'x', name: 'p' }], expect: () => true },
    ],
  },
  {
    name: 'default deny everywhere, then a three-tier chain x → y → z',
    steps: [
      {
        apply: [denyIngress('x'), denyIngress('y'), denyIngress('z')],
        expect: () => false,
      },
      {
        apply: [
          policy('y', 'from-x', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } } }], ports: [{ port: 80 }] }] }),
          policy('z', 'from-y', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }] }] }),
        ],
        expect: (f, t, p) => tcp(80)(p) && ((is(f, 'x') && is(t, 'y')) || (is(f, 'y') && is(t, 'z'))),
      },
    ],
  },
  ...CNP_SCENARIOS,
];

function relabel(ns: string, name: string, labels: Record<string, string>): Raw {
  const node = name === 'c' ? 'node-2' : 'node-1';
  const ip = `10.244.${node === 'node-2' ? 2 : 1}.${10 + ['x', 'y', 'z'].indexOf(ns) * 10 + ['a', 'b', 'c'].indexOf(name)}`;
  const p = extraPod(ns, name, labels, ip, node, [80, 81]);
  // Keep the SCTP ports of the conformance pods so only the labels change.
  (p.spec as { containers: { ports: unknown[] }[] }).containers[0]!.ports.push(
    ...[80, 81].map((port) => ({ name: `serve-${port}-sctp`, containerPort: port, protocol: 'SCTP' })),
  );
  return p;
}
