// lint warnings about Service addresses the node agent will not exempt in KUBE-ROUTER-INPUT
// (service-exemptions.ts): an address outside the range flag of its kind, a node's own address, an
// address inside a pod CIDR, a node port outside --service-node-port-range. Each is a Service that
// does not work as its author expects on nodes with an IPVS service proxy (egress-locked pods are
// judged on the address itself), or one that tries to open a node.
import type { ClusterStore } from './store.js';
import type { Service } from './model.js';
import { objectKey } from './model.js';
import type { Finding } from './findings.js';
import { RANGE_FLAG, serviceExemptions, type AddressKind, type RefusedAddress, type ServiceRanges } from './service-exemptions.js';

const FIELD: Record<AddressKind, (i: number) => string> = {
  clusterIP: (i) => `spec.clusterIPs[${i}]`,
  externalIP: (i) => `spec.externalIPs[${i}]`,
  loadBalancerIP: (i) => `status.loadBalancer.ingress[${i}].ip`,
};

const KIND_TEXT: Record<AddressKind, string> = { clusterIP: 'cluster IP', externalIP: 'external IP', loadBalancerIP: 'load-balancer IP' };

function message(r: RefusedAddress, ranges: ServiceRanges): { code: string; text: string } {
  const what = `${KIND_TEXT[r.kind]} ${r.ip}`;
  switch (r.reason) {
    case 'node-address':
      return { code: 'service-ip-is-node-address', text: `${what} is the address of node ${r.node}: podwall never lets pods' traffic to a node's address through as a Service's (that would open the node to egress-locked pods); their egress policies decide` };
    case 'pod-cidr':
      return { code: 'service-ip-in-pod-cidr', text: `${what} lies in the pod CIDR of node ${r.node}: podwall never lets traffic to a pod CIDR through as a Service's; the pods' egress policies decide` };
    case 'outside-range': {
      const list = r.kind === 'clusterIP' ? ranges.clusterIP : r.kind === 'externalIP' ? ranges.externalIP : ranges.loadBalancerIP;
      return {
        code: 'service-ip-outside-range',
        text: `${what} is outside ${RANGE_FLAG[r.kind]} (${list.length ? list.join(', ') : 'none given'}): podwall does not let pods' traffic to it through KUBE-ROUTER-INPUT, so with an IPVS service proxy their egress policies judge it as traffic to that address`,
      };
    }
  }
}

/**
 * Warnings for every Service address and node port the agent would not exempt with these ranges.
 * Cluster IPs and node ports are checked only when their flags were given (the API server allocates
 * them; podwall's defaults may simply not be this cluster's); external and load-balancer IPs always.
 */
export function lintServices(store: ClusterStore, ranges: ServiceRanges, given: { clusterIPRangeGiven: boolean; nodePortRangeGiven: boolean }): Finding[] {
  // Keys computed once, not per comparison.
  const keyed = [...store.services.values()].map((s) => ({ ...s, key: objectKey(s) })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const byKey = new Map<string, Service>(keyed.map((s) => [s.key, s]));
  const e = serviceExemptions(
    keyed,
    [...store.nodes.values()],
    ranges,
  );
  const out: Finding[] = [];
  const finding = (key: string, code: string, field: string, text: string): Finding => {
    const f: Finding = { severity: 'warning', code, message: text, object: `Service ${key}`, field };
    const file = byKey.get(key)?.origin?.file;
    if (file) f.file = file;
    return f;
  };
  for (const r of e.refused) {
    if (r.kind === 'clusterIP' && r.reason === 'outside-range' && !given.clusterIPRangeGiven) continue;
    const m = message(r, ranges);
    out.push(finding(r.service, m.code, FIELD[r.kind](r.index), m.text));
  }
  if (given.nodePortRangeGiven) {
    for (const r of e.refusedNodePorts) {
      out.push(
        finding(r.service, 'service-node-port-outside-range', `spec.ports[${r.index}].nodePort`, `node port ${r.port}/${r.protocol} is outside --service-node-port-range (${ranges.nodePort[0]}-${ranges.nodePort[1]}): podwall does not let pods' traffic to it on the node through KUBE-ROUTER-INPUT`),
      );
    }
  }
  return out.sort((a, b) => (a.object! < b.object! ? -1 : a.object! > b.object! ? 1 : 0));
}
