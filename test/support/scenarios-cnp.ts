// ClusterNetworkPolicy scenarios on the conformance model (x, y, z × a, b, c; ports 80/81 TCP and
// UDP; c pods on node-2, 10.244.2.0/24), with the expected reachability after each step written from
// the network-policy-api v1alpha2 documentation. Part of SCENARIOS: the simulator tests and the lab
// (real packets) run them.
import { policy, type Raw } from './conformance.js';

interface Peer {
  ns: string;
  pod: string;
}
type Port = { port: number; protocol: string };
interface Step {
  apply?: Raw[];
  remove?: { kind: string; namespace?: string; name: string }[];
  expect: (from: Peer, to: Peer, port: Port) => boolean;
}

const is = (p: Peer, ns: string, pod?: string) => p.ns === ns && (pod === undefined || p.pod === pod);
const tcp = (port: number) => (x: Port) => x.protocol === 'TCP' && x.port === port;
const udp = (port: number) => (x: Port) => x.protocol === 'UDP' && x.port === port;

type Rule = Record<string, unknown>;
export function clusterPolicy(name: string, tier: 'Admin' | 'Baseline', priority: number, subject: Rule, rules: { ingress?: Rule[]; egress?: Rule[] }): Raw {
  return { apiVersion: 'policy.networking.k8s.io/v1alpha2', kind: 'ClusterNetworkPolicy', metadata: { name }, spec: { tier, priority, subject, ...rules } };
}
const ns = (n: string) => ({ namespaces: { matchLabels: { ns: n } } });
const everyNs = { namespaces: {} };
const cnpRef = (name: string) => ({ kind: 'ClusterNetworkPolicy', name });

export const CNP_SCENARIOS: { name: string; steps: Step[] }[] = [
  {
    name: 'CNP: Admin Deny that a NetworkPolicy cannot open, then Pass hands it to the NetworkPolicy',
    steps: [
      { apply: [clusterPolicy('guard', 'Admin', 10, ns('x'), { ingress: [{ name: 'deny-y', action: 'Deny', from: [ns('y')] }] })], expect: (f, t) => !(is(t, 'x') && is(f, 'y')) },
      { apply: [policy('x', 'allow-all', { podSelector: {}, ingress: [{}] })], expect: (f, t) => !(is(t, 'x') && is(f, 'y')) },
      { apply: [clusterPolicy('guard', 'Admin', 10, ns('x'), { ingress: [{ name: 'delegate-y', action: 'Pass', from: [ns('y')] }] })], expect: () => true },
      { apply: [policy('x', 'allow-all', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })], expect: (f, t) => !is(t, 'x') || is(f, 'x') },
      { remove: [cnpRef('guard'), { kind: 'NetworkPolicy', namespace: 'x', name: 'allow-all' }], expect: () => true },
    ],
  },
  {
    name: 'CNP: Admin Accept wins over a NetworkPolicy deny; a lower priority number Deny wins over the Accept',
    steps: [
      {
        apply: [policy('x', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] }), clusterPolicy('accept-y', 'Admin', 20, ns('x'), { ingress: [{ action: 'Accept', from: [ns('y')], protocols: [{ tcp: { destinationPort: { number: 80 } } }] }] })],
        expect: (f, t, p) => !is(t, 'x') || (is(f, 'y') && tcp(80)(p)),
      },
      { apply: [clusterPolicy('deny-y-b', 'Admin', 10, ns('x'), { ingress: [{ action: 'Deny', from: [{ pods: { namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } } }] }] })], expect: (f, t, p) => !is(t, 'x') || (is(f, 'y') && !is(f, 'y', 'b') && tcp(80)(p)) },
    ],
  },
  {
    name: 'CNP: Baseline default deny, opened per pod by NetworkPolicy',
    steps: [
      { apply: [clusterPolicy('default-deny', 'Baseline', 100, everyNs, { ingress: [{ name: 'deny-all', action: 'Deny', from: [everyNs] }] })], expect: () => false },
      { apply: [policy('x', 'a-from-y', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }] }] })], expect: (f, t, p) => is(t, 'x', 'a') && is(f, 'y') && tcp(80)(p) },
      { apply: [clusterPolicy('open-z', 'Admin', 5, everyNs, { ingress: [{ action: 'Accept', from: [ns('z')], protocols: [{ udp: { destinationPort: { number: 81 } } }] }] })], expect: (f, t, p) => (is(t, 'x', 'a') && is(f, 'y') && tcp(80)(p)) || (is(f, 'z') && udp(81)(p)) },
    ],
  },
  {
    name: 'CNP: egress tiers — networks Deny after a Pass for pod peers, Baseline egress Deny',
    steps: [
      {
        apply: [clusterPolicy('egress-guard', 'Admin', 10, ns('x'), { egress: [{ action: 'Pass', to: [ns('y')] }, { action: 'Deny', to: [{ networks: ['10.244.2.0/24'] }] }] })],
        expect: (f, t) => !is(f, 'x') || is(t, 'y') || t.pod !== 'c',
      },
      {
        apply: [clusterPolicy('egress-default', 'Baseline', 10, ns('x'), { egress: [{ action: 'Deny', to: [ns('z')], protocols: [{ udp: { destinationPort: { range: { start: 80, end: 81 } } } }] }] })],
        expect: (f, t, p) => !is(f, 'x') || is(t, 'y') || (t.pod !== 'c' && !(is(t, 'z') && p.protocol === 'UDP')),
      },
    ],
  },
  {
    name: 'CNP: named ports resolve on the destination, any protocol it declares',
    steps: [
      { apply: [clusterPolicy('named', 'Admin', 1, ns('y'), { ingress: [{ action: 'Deny', from: [everyNs], protocols: [{ destinationNamedPort: 'serve-81-udp' }, { destinationNamedPort: 'serve-80-tcp' }] }] })], expect: (_f, t, p) => !is(t, 'y') || !(udp(81)(p) || tcp(80)(p)) },
    ],
  },
  {
    name: 'CNP: subjects and peers follow pod and namespace labels',
    steps: [
      { apply: [clusterPolicy('team', 'Admin', 1, { namespaces: { matchLabels: { team: 'red' } } }, { ingress: [{ action: 'Deny', from: [{ namespaces: { matchLabels: { team: 'blue' } } }] }] })], expect: () => true },
      { apply: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x', labels: { ns: 'x', team: 'red' } } }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'z', labels: { ns: 'z', team: 'blue' } } }], expect: (f, t) => !(is(t, 'x') && is(f, 'z')) },
      { apply: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x', labels: { ns: 'x' } } }], expect: () => true },
    ],
  },
];
