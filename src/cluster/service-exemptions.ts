// Which Service addresses and ports KUBE-ROUTER-INPUT lets through before the pods' egress is judged.
// Pure; shared by the render (what the node exempts) and lint (what it refuses, and why).
//
// Why there is an exemption at all: with an IPVS service proxy (kube-router's, kube-proxy's IPVS
// mode) every Service address is bound to a dummy interface of each node, so a pod's connection to
// it arrives in INPUT addressed to the Service; the proxy then hands it to a backend, and the
// policy is judged on that backend. Whoever may create a Service chooses its externalIPs (and, with
// some controllers, its load-balancer IPs), so an exemption is a hole unless bounded:
//   - an address is exempted only when it lies in the range the operator configured for its kind
//     (--service-cluster-ip-range for cluster IPs, --service-external-ip-range for external IPs,
//     --loadbalancer-ip-range for load-balancer IPs);
//   - never a node's own address nor an address inside a node's pod CIDR, whatever the ranges say;
//   - only with the Service's own ports and protocols (address,proto:port), never the whole
//     address: an IPVS address answers on every other port with the node's own sockets.
// Node ports are exempted on the node's own (LOCAL) addresses only for the node ports Services
// really have inside --service-node-port-range.
import { LRUCache } from 'lru-cache';
import type { Protocol } from './model.js';
import { mustCIDR, parseCIDR, parseIP, prefixMask, type Cidr } from '../net/ip.js';

export interface ServiceRanges {
  /** --service-cluster-ip-range (canonical CIDRs, any family). */
  clusterIP: readonly string[];
  /** --service-external-ip-range. */
  externalIP: readonly string[];
  /** --loadbalancer-ip-range. */
  loadBalancerIP: readonly string[];
  /** --service-node-port-range, inclusive. */
  nodePort: readonly [number, number];
}

/** The parts of a Service this needs (the cluster model's Service and the Plan's both have them). */
export interface ServiceAddresses {
  key: string;
  clusterIPs: readonly string[];
  externalIPs: readonly string[];
  loadBalancerIPs: readonly string[];
  ports: readonly { port: number; protocol: Protocol }[];
  nodePorts: readonly { port: number; protocol: Protocol; index?: number }[];
}

export interface NodeAddresses {
  name: string;
  addresses: readonly string[];
  podCIDRs: readonly string[];
}

export type AddressKind = 'clusterIP' | 'externalIP' | 'loadBalancerIP';

/** One address not exempted, and why (lint turns these into warnings). */
export interface RefusedAddress {
  service: string;
  kind: AddressKind;
  /** Index within its list (spec.clusterIPs, spec.externalIPs, status.loadBalancer.ingress). */
  index: number;
  ip: string;
  reason: 'outside-range' | 'node-address' | 'pod-cidr';
  /** The node whose address or pod CIDR it is. */
  node?: string;
}

export interface RefusedNodePort {
  service: string;
  /** Index of the entry in spec.ports (when known), else in the node port list. */
  index: number;
  port: number;
  protocol: Protocol;
}

export interface ServiceExemptions {
  /** Exempted address, protocol and port, deduplicated, sorted (IPv4 and IPv6 mixed). */
  addressPorts: { ip: string; protocol: Protocol; port: number }[];
  /** Node ports exempted on LOCAL addresses, per protocol, sorted and deduplicated. */
  nodePorts: Record<Protocol, number[]>;
  refused: RefusedAddress[];
  refusedNodePorts: RefusedNodePort[];
}

export const RANGE_FLAG: Record<AddressKind, string> = {
  clusterIP: '--service-cluster-ip-range',
  externalIP: '--service-external-ip-range',
  loadBalancerIP: '--loadbalancer-ip-range',
};

/** Service addresses parsed once (every node add or Service change re-judges all of them). */
// Bounded by count without preallocating 200,000 slots (lru-cache does for `max`).
const parsed = new LRUCache<string, { ip: ReturnType<typeof parseIP> }>({ maxSize: 200_000, sizeCalculation: () => 1 });
const ip = (s: string) => {
  let hit = parsed.get(s);
  if (!hit) parsed.set(s, (hit = { ip: parseIP(s) }));
  return hit.ip;
};

/** Everything about exemptions for these Services, nodes and ranges. */
export function serviceExemptions(services: readonly ServiceAddresses[], nodes: readonly NodeAddresses[], ranges: ServiceRanges): ServiceExemptions {
  // With their masks computed once (12,000 addresses at L are judged against them).
  const withMask = (c: Cidr) => ({ family: c.family, addr: c.addr, mask: prefixMask(c.family, c.prefix) });
  const rangeCidrs: Record<AddressKind, { family: Cidr['family']; addr: bigint; mask: bigint }[]> = {
    clusterIP: ranges.clusterIP.map((r) => withMask(mustCIDR(r))),
    externalIP: ranges.externalIP.map((r) => withMask(mustCIDR(r))),
    loadBalancerIP: ranges.loadBalancerIP.map((r) => withMask(mustCIDR(r))),
  };
  const nodeAddr = new Map<string, string>();
  for (const n of nodes) for (const a of n.addresses) if (!nodeAddr.has(a)) nodeAddr.set(a, n.name);
  // Pod CIDRs by family and prefix length, then network address: a lookup per distinct prefix length
  // instead of a scan of every node's CIDRs per Service address (50,000 addresses × 2,000 nodes at L).
  // Longest prefix first, and within a prefix the first node in the given order: which node an
  // address is refused for depends only on the nodes whose CIDRs hold it (so a node change can be
  // judged by its own CIDRs alone, see ServiceExemptionCache).
  const podCIDRs = new Map<string, { family: Cidr['family']; prefix: number; mask: bigint; byAddr: Map<bigint, string> }>();
  for (const n of nodes) {
    for (const c of n.podCIDRs) {
      const cidr = mustCIDR(c);
      const k = `${cidr.family}/${cidr.prefix}`;
      let g = podCIDRs.get(k);
      if (!g) podCIDRs.set(k, (g = { family: cidr.family, prefix: cidr.prefix, mask: prefixMask(cidr.family, cidr.prefix), byAddr: new Map() }));
      if (!g.byAddr.has(cidr.addr)) g.byAddr.set(cidr.addr, n.name);
    }
  }
  const groups = [...podCIDRs.values()].sort((a, b) => b.prefix - a.prefix);
  const podCIDRNode = (a: { family: Cidr['family']; value: bigint }): string | undefined => {
    for (const g of groups) {
      if (g.family !== a.family) continue;
      const node = g.byAddr.get(a.value & g.mask);
      if (node !== undefined) return node;
    }
    return undefined;
  };
  const seen = new Set<string>();
  const collected: AddressIndex | undefined = addressIndexes.has(services) ? undefined : { texts: new Set(), values: { ipv4: [], ipv6: [] } };
  const addressPorts: ServiceExemptions['addressPorts'] = [];
  const refused: RefusedAddress[] = [];
  for (const s of services) {
    for (const [kind, list] of [
      ['clusterIP', s.clusterIPs],
      ['externalIP', s.externalIPs],
      ['loadBalancerIP', s.loadBalancerIPs],
    ] as const) {
      list.forEach((text, index) => {
        const a = ip(text);
        if (collected) indexAddress(collected, text, a);
        if (!a) return; // normalisation already refused it
        const base = { service: s.key, kind, index, ip: text };
        const node = nodeAddr.get(text);
        if (node !== undefined) return void refused.push({ ...base, reason: 'node-address', node });
        const podNode = podCIDRNode(a);
        if (podNode !== undefined) return void refused.push({ ...base, reason: 'pod-cidr', node: podNode });
        if (!rangeCidrs[kind].some((r) => r.family === a.family && (a.value & r.mask) === r.addr)) return void refused.push({ ...base, reason: 'outside-range' });
        for (const p of s.ports) {
          const k = `${text},${p.protocol}:${p.port}`;
          if (seen.has(k)) continue;
          seen.add(k);
          addressPorts.push({ ip: text, protocol: p.protocol, port: p.port });
        }
      });
    }
  }
  if (collected) addressIndexes.set(services, collected);
  addressPorts.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : a.port - b.port));

  const byProto: Record<Protocol, Set<number>> = { TCP: new Set(), UDP: new Set(), SCTP: new Set() };
  const refusedNodePorts: RefusedNodePort[] = [];
  const [lo, hi] = ranges.nodePort;
  for (const s of services) {
    s.nodePorts.forEach((p, index) => {
      if (p.port < lo || p.port > hi) refusedNodePorts.push({ service: s.key, index: p.index ?? index, port: p.port, protocol: p.protocol });
      else byProto[p.protocol].add(p.port);
    });
  }
  const sorted = (x: Set<number>) => [...x].sort((a, b) => a - b);
  return { addressPorts, nodePorts: { TCP: sorted(byProto.TCP), UDP: sorted(byProto.UDP), SCTP: sorted(byProto.SCTP) }, refused, refusedNodePorts };
}

/**
 * Every Service address of a Services list (text, and parsed value per family), collected by the
 * full judgement as it goes — a node change then checks the node's addresses and pod CIDRs against
 * it without parsing 10^4 addresses again on the first node event.
 */
interface AddressIndex {
  texts: Set<string>;
  values: Record<Cidr['family'], bigint[]>;
}
const addressIndexes = new WeakMap<readonly ServiceAddresses[], AddressIndex>();

function addressIndex(services: readonly ServiceAddresses[]): AddressIndex {
  let idx = addressIndexes.get(services);
  if (idx) return idx;
  idx = { texts: new Set(), values: { ipv4: [], ipv6: [] } };
  for (const s of services) for (const list of [s.clusterIPs, s.externalIPs, s.loadBalancerIPs]) for (const text of list) indexAddress(idx, text, ip(text));
  addressIndexes.set(services, idx);
  return idx;
}

function indexAddress(idx: AddressIndex, text: string, a: ReturnType<typeof parseIP>): void {
  if (idx.texts.has(text)) return;
  idx.texts.add(text);
  if (a) idx.values[a.family].push(a.value);
}

/** Whether any Service address equals one of these node addresses or lies inside one of these CIDRs. */
function holdsServiceAddress(services: readonly ServiceAddresses[], node: NodeAddresses): boolean {
  const idx = addressIndex(services);
  for (const a of node.addresses) if (idx.texts.has(a)) return true;
  for (const c of node.podCIDRs) {
    const r = parseCIDR(c);
    // A CIDR that does not parse is judged by the full computation (which rejects it the same way).
    if (!r.ok) return true;
    const mask = prefixMask(r.cidr.family, r.cidr.prefix);
    for (const v of idx.values[r.cidr.family]) if ((v & mask) === r.cidr.addr) return true;
  }
  return false;
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The exemptions of one Services list and one set of ranges, kept across node changes. A node
 * joining, leaving or changing can only change the verdict of a Service address that equals one of
 * that node's addresses or lies in one of its pod CIDRs (before or after the change): when no
 * Service address does — the usual case, pod CIDRs and Service ranges do not overlap — the result
 * is the previous one, the same object (so the render reuses its set); otherwise everything is
 * judged again. Always equal to serviceExemptions(services, nodes, ranges) (a property test holds it
 * to that).
 */
export class ServiceExemptionCache {
  private last: { nodes: readonly NodeAddresses[]; result: ServiceExemptions } | undefined;
  /** How the last call was answered (tests, benchmarks). */
  lastPath: 'same' | 'incremental' | 'full' = 'full';

  constructor(
    private readonly services: readonly ServiceAddresses[],
    private readonly ranges: ServiceRanges,
  ) {}

  forNodes(nodes: readonly NodeAddresses[]): ServiceExemptions {
    const last = this.last;
    if (last && last.nodes === nodes) {
      this.lastPath = 'same';
      return last.result;
    }
    if (last && this.unaffected(last.nodes, nodes)) {
      this.last = { nodes, result: last.result };
      this.lastPath = 'incremental';
      return last.result;
    }
    const result = serviceExemptions(this.services, nodes, this.ranges);
    this.last = { nodes, result };
    this.lastPath = 'full';
    return result;
  }

  /** Whether going from `before` to `after` leaves every Service address's verdict as it was. */
  private unaffected(before: readonly NodeAddresses[], after: readonly NodeAddresses[]): boolean {
    const old = new Map<string, NodeAddresses>();
    for (const n of before) {
      if (old.has(n.name)) return false; // duplicate names: judge everything
      old.set(n.name, n);
    }
    const kept: string[] = [];
    const seen = new Set<string>();
    for (const n of after) {
      if (seen.has(n.name)) return false;
      seen.add(n.name);
      const o = old.get(n.name);
      if (o && o === n) {
        kept.push(n.name);
        continue;
      }
      if (o && sameList(o.addresses, n.addresses) && sameList(o.podCIDRs, n.podCIDRs)) {
        kept.push(n.name);
        continue;
      }
      if (holdsServiceAddress(this.services, n) || (o && holdsServiceAddress(this.services, o))) return false;
    }
    for (const n of before) if (!seen.has(n.name) && holdsServiceAddress(this.services, n)) return false;
    // The nodes that stayed keep their relative order (ties between them are decided by it).
    const keptSet = new Set(kept);
    const keptBefore = before.filter((n) => keptSet.has(n.name)).map((n) => n.name);
    return sameList(keptBefore, kept);
  }
}
