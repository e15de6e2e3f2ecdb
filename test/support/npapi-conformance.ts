// The conformance model of kubernetes-sigs/network-policy-api (conformance/base/manifests.yaml), as
// podwall reads it: four namespaces `network-policy-conformance-<house>` labelled
// `conformance-house: <house>`, each with a StatefulSet of two replicas whose pods carry the house
// label (and the labels the StatefulSet controller adds: pod-name, pod-index). Every pod serves
// 80/TCP (declared, named `web`), 8080/TCP, 53/UDP (declared, named `dns`), 5353/UDP, 9003/SCTP and
// 9005/SCTP (served but not declared, so no name resolves to them). A fifth namespace,
// forbidden-forrest (sic, as upstream), holds two host-network pods (`centaur`), one per node, with
// the node's address. Replica 0 runs on node-1 (10.244.1.0/24), replica 1 on node-2 (10.244.2.0/24).
// Objects are raw, as a manifest holds them.
import type { Raw } from './conformance.js';

export const HOUSES = ['gryffindor', 'slytherin', 'hufflepuff', 'ravenclaw'] as const;
export type House = (typeof HOUSES)[number];
export const STATEFULSETS: Record<House, string> = { gryffindor: 'harry-potter', slytherin: 'draco-malfoy', hufflepuff: 'cedric-diggory', ravenclaw: 'luna-lovegood' };
export const FOREST = 'network-policy-conformance-forbidden-forrest';
export const NODES = [
  { name: 'node-1', cidr: '10.244.1.0/24', address: '172.18.0.2' },
  { name: 'node-2', cidr: '10.244.2.0/24', address: '172.18.0.3' },
] as const;

export const houseNs = (h: House) => `network-policy-conformance-${h}`;

export interface HousePod {
  house: House;
  ns: string;
  name: string;
  replica: 0 | 1;
  ip: string;
  node: string;
  key: string;
}

export const HOUSE_PODS: HousePod[] = HOUSES.flatMap((house, h) =>
  ([0, 1] as const).map((replica) => {
    const name = `${STATEFULSETS[house]}-${replica}`;
    const ns = houseNs(house);
    return { house, ns, name, replica, ip: `10.244.${replica + 1}.${10 + h}`, node: NODES[replica].name, key: `${ns}/${name}` };
  }),
);

export const CENTAURS = NODES.map((n, i) => ({ name: `centaur-${i}`, ip: n.address, node: n.name }));

export interface ProbePort {
  port: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
}
/** What the conformance suite probes: every port the pods serve. */
export const HOUSE_PORTS: ProbePort[] = [
  { port: 80, protocol: 'TCP' },
  { port: 8080, protocol: 'TCP' },
  { port: 53, protocol: 'UDP' },
  { port: 5353, protocol: 'UDP' },
  { port: 9003, protocol: 'SCTP' },
  { port: 9005, protocol: 'SCTP' },
];

/**
 * The model's objects. `declareServed`: also declare the served ports upstream leaves undeclared
 * (8080/TCP, 5353/UDP, unnamed, so no named port changes) — the lab's servers listen on declared ports
 * only.
 */
export function houseObjects(opts: { declareServed?: boolean } = {}): Raw[] {
  const out: Raw[] = NODES.map((n) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n.name },
    spec: { podCIDR: n.cidr, podCIDRs: [n.cidr] },
    status: { addresses: [{ type: 'InternalIP', address: n.address }] },
  }));
  for (const house of HOUSES) out.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: houseNs(house), labels: { 'conformance-house': house } } });
  out.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: FOREST, labels: { 'conformance-house': 'forbidden-forrest' } } });
  for (const p of HOUSE_PODS) {
    const set = STATEFULSETS[p.house];
    out.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace: p.ns, labels: { 'conformance-house': p.house, 'statefulset.kubernetes.io/pod-name': p.name, 'apps.kubernetes.io/pod-index': String(p.replica) } },
      spec: {
        nodeName: p.node,
        containers: [
          { name: `${set}-client`, image: 'agnhost' },
          { name: `${set}-80`, image: 'agnhost', ports: [{ containerPort: 80, protocol: 'TCP', name: 'web' }] },
          { name: `${set}-8080`, image: 'agnhost', ...(opts.declareServed ? { ports: [{ containerPort: 8080, protocol: 'TCP' }] } : {}) },
          { name: `${set}-5353`, image: 'agnhost', ...(opts.declareServed ? { ports: [{ containerPort: 5353, protocol: 'UDP' }] } : {}) },
          { name: `${set}-53`, image: 'agnhost', ports: [{ containerPort: 53, protocol: 'UDP', name: 'dns' }] },
          { name: `${set}-9003`, image: 'agnhost' },
          { name: `${set}-9005`, image: 'agnhost' },
        ],
      },
      status: { phase: 'Running', podIP: p.ip, podIPs: [{ ip: p.ip }] },
    });
  }
  for (const c of CENTAURS) {
    out.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: c.name, namespace: FOREST, labels: { 'conformance-house': 'forbidden-forrest' } },
      spec: { nodeName: c.node, hostNetwork: true, containers: [{ name: 'centaur', image: 'agnhost', ports: [{ containerPort: 34345, protocol: 'TCP', name: 'web-34345' }] }] },
      status: { phase: 'Running', podIP: c.ip, podIPs: [{ ip: c.ip }] },
    });
  }
  return out;
}
