// Packet path classification: how kube-router's topology presents one new connection's first packet
// to a node's filter table. Pure.
//
// The topology (kube-router's bridge CNI): every node has a bridge (`kube-bridge`) holding its pods'
// veths and an address in the node's pod CIDR; traffic between nodes is routed through the uplink.
// With br_netfilter on, the filter table sees:
//   local pod  → local pod      FORWARD, bridged: -i/-o kube-bridge, physdev in/out = the pods' veths
//   local pod  → elsewhere      FORWARD, routed:  -i kube-bridge -o <uplink>, physdev-in = the veth
//   elsewhere  → local pod      FORWARD, routed:  -i <uplink> -o kube-bridge
//   this node  → local pod      OUTPUT  -o kube-bridge (source addrtype LOCAL)
//   local pod  → this node      INPUT   -i kube-bridge (destination addrtype LOCAL)
//   this node  → elsewhere      OUTPUT  -o <uplink>
//   elsewhere  → this node      INPUT   -i <uplink>
//   anything else               not seen by this node: no hop
// A pod talking to itself never leaves its network namespace, and the node talking to itself stays
// on loopback: neither has a hop. "Elsewhere" is any address that is neither a local pod nor one of
// this node's addresses (a pod on another node, another node, the outside world).
import { createHash } from 'node:crypto';
import type { Packet } from '../iptables/interpret.js';
import { netContains, parseIp, parseNet, type Ip, type Net } from '../iptables/addr.js';
import type { Plan } from '../policy/plan.js';

export type PathProtocol = 'tcp' | 'udp' | 'sctp';

/** What one node knows about itself, enough to place a packet on its hooks. */
export interface NodeView {
  node: string;
  /** Local pod IP → pod key (`ns/name`); the key may be empty when unknown (live mode). */
  localPods: Map<string, string>;
  /** This node's pod CIDRs: any address in them (other than a node address) is a local pod. */
  localPodCIDRs: string[];
  /** This node's own addresses (uplink, bridge, loopback, ...): addrtype LOCAL. */
  nodeAddresses: string[];
  /** The pod bridge, `kube-bridge`. */
  bridge: string;
  /** The interface towards other nodes, `eth0`. */
  uplink: string;
  /** Pod IP → its veth on the bridge, when known; otherwise a stable made-up name is used. */
  podInterfaces?: Map<string, string>;
  /**
   * Local pods reached through their own interface by routing (a host route to a veth, as
   * Calico-style CNIs do), not through the bridge: pod IP → that interface. Their packets are routed
   * (no physdev), between two local pods too.
   */
  routedPods?: Map<string, string>;
  /** Routes (`dst` CIDR or `default`, `dev`): when given, the interface towards a non-local address
   *  is chosen by longest prefix match instead of `uplink`. */
  routes?: { dst: string; dev: string }[];
}

export type HopKind = 'bridged' | 'routed' | 'pod-out' | 'pod-in' | 'node-to-pod' | 'pod-to-node' | 'node-out' | 'node-in';

export interface PathHop {
  node: string;
  kind: HopKind;
  /** One line for people: `FORWARD, bridged on kube-bridge (vethA → vethB)`. */
  describe: string;
  /** What the interpreter gets. */
  packet: Packet;
}

export class PathError extends Error {}

interface Classified {
  ip: Ip;
  text: string;
  localPod: boolean;
  node: boolean;
}

function sameIp(a: Ip, b: Ip): boolean {
  return a.family === b.family && a.value === b.value;
}

function isLoopback(ip: Ip): boolean {
  return ip.family === 4 ? ip.value >> 24n === 127n : ip.value === 1n;
}

interface Compiled {
  pods: Ip[];
  cidrs: Net[];
  nodeAddrs: Ip[];
  routes: { net: Net; dev: string }[];
}

const compiledViews = new WeakMap<NodeView, Compiled>();

function compileView(v: NodeView): Compiled {
  const hit = compiledViews.get(v);
  if (hit) return hit;
  const ip = (s: string, what: string): Ip => {
    const r = parseIp(s);
    if (!r) throw new PathError(`node ${v.node}: ${what} ${JSON.stringify(s)} is not an IP address`);
    return r;
  };
  const net = (s: string, what: string): Net => {
    const r = parseNet(s);
    if (!r) throw new PathError(`node ${v.node}: ${what} ${JSON.stringify(s)} is not a CIDR`);
    return r;
  };
  const routes: Compiled['routes'] = [];
  for (const r of v.routes ?? []) {
    if (r.dst === 'default') {
      routes.push({ net: net('0.0.0.0/0', 'route'), dev: r.dev }, { net: net('::/0', 'route'), dev: r.dev });
      continue;
    }
    const n = parseNet(r.dst);
    if (n) routes.push({ net: n, dev: r.dev }); // other route kinds (multicast, ...) are of no use here
  }
  const c: Compiled = {
    pods: [...v.localPods.keys()].map((s) => ip(s, 'local pod IP')),
    cidrs: v.localPodCIDRs.map((s) => net(s, 'pod CIDR')),
    nodeAddrs: v.nodeAddresses.map((s) => ip(s, 'node address')),
    routes,
  };
  compiledViews.set(v, c);
  return c;
}

function classify(v: NodeView, c: Compiled, text: string, role: string): Classified {
  const ip = parseIp(text);
  if (!ip) throw new PathError(`${role} ${JSON.stringify(text)} is not an IP address`);
  const node = isLoopback(ip) || c.nodeAddrs.some((a) => sameIp(a, ip));
  const localPod = !node && (c.pods.some((p) => sameIp(p, ip)) || c.cidrs.some((n) => netContains(n, ip)));
  return { ip, text, node, localPod };
}

/** The veth of a local pod: the known one, else `veth` + 8 hex digits derived from the IP. */
export function podInterface(v: NodeView, ip: string): string {
  const known = v.podInterfaces?.get(ip);
  if (known) return known;
  return `veth${createHash('sha256').update(ip).digest('hex').slice(0, 8)}`;
}

/** The interface a non-local address is reached through (longest prefix match, else the uplink). */
function interfaceTowards(v: NodeView, c: Compiled, ip: Ip): string {
  let best: { net: Net; dev: string } | undefined;
  for (const r of c.routes) if (netContains(r.net, ip) && (!best || r.net.prefix > best.net.prefix)) best = r;
  return best && best.dev !== v.bridge ? best.dev : v.uplink;
}

/**
 * The hops of the first packet src → dst:port on node `v` (at most one: the filter table judges a
 * packet once per node, in INPUT, FORWARD or OUTPUT). Empty when this node does not see the packet.
 */
export function packetPaths(v: NodeView, src: string, dst: string, protocol: PathProtocol, port: number): PathHop[] {
  const c = compileView(v);
  const s = classify(v, c, src, 'source');
  const d = classify(v, c, dst, 'destination');
  if (s.ip.family !== d.ip.family) throw new PathError(`source ${src} and destination ${dst} are different IP families`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new PathError(`port ${port} is not 0-65535`);
  if (sameIp(s.ip, d.ip)) return [];
  const base = { src, dst, protocol, dport: port, ctstate: 'NEW' as const, mark: 0 };
  const types = { srcType: s.node ? ('LOCAL' as const) : ('UNICAST' as const), dstType: d.node ? ('LOCAL' as const) : ('UNICAST' as const) };
  const hop = (kind: HopKind, describe: string, p: Omit<Packet, 'src' | 'dst' | 'protocol'>): PathHop[] => [
    { node: v.node, kind, describe, packet: { ...base, ...types, ...p } },
  ];
  const br = v.bridge;
  // A routed pod's packets come and go through its own interface: no bridge port, no physdev.
  const routedIn = s.localPod ? v.routedPods?.get(src) : undefined;
  const routedOut = d.localPod ? v.routedPods?.get(dst) : undefined;
  const inPort = (): Pick<Packet, 'inIface' | 'physdevIn'> => (routedIn !== undefined ? { inIface: routedIn } : { inIface: br, physdevIn: podInterface(v, src) });
  const via = (routed: string | undefined, ip: string): string => (routed !== undefined ? routed : `${br}, ${podInterface(v, ip)}`);
  if (s.localPod && d.localPod) {
    if (routedIn !== undefined || routedOut !== undefined) {
      const out = routedOut !== undefined ? { outIface: routedOut } : { outIface: br, physdevOut: podInterface(v, dst) };
      return hop('routed', `FORWARD, routed between local pods (${via(routedIn, src)} → ${via(routedOut, dst)})`, { hook: 'FORWARD', ...inPort(), ...out });
    }
    const i = podInterface(v, src);
    const o = podInterface(v, dst);
    return hop('bridged', `FORWARD, bridged on ${br} (${i} → ${o})`, { hook: 'FORWARD', inIface: br, outIface: br, bridged: true, physdevIn: i, physdevOut: o });
  }
  if (s.localPod && d.node) return hop('pod-to-node', `INPUT, local pod to this node via ${via(routedIn, src)}`, { hook: 'INPUT', ...inPort() });
  if (s.localPod) {
    const out = interfaceTowards(v, c, d.ip);
    return hop('pod-out', `FORWARD, routed from local pod (${via(routedIn, src)}) out ${out}`, { hook: 'FORWARD', ...inPort(), outIface: out });
  }
  if (s.node && d.localPod) return hop('node-to-pod', `OUTPUT, this node to a local pod via ${routedOut ?? br}`, { hook: 'OUTPUT', outIface: routedOut ?? br });
  if (d.localPod) {
    const inIf = interfaceTowards(v, c, s.ip);
    return hop('pod-in', `FORWARD, routed in ${inIf} to local pod via ${routedOut ?? br}`, { hook: 'FORWARD', inIface: inIf, outIface: routedOut ?? br });
  }
  if (s.node && d.node) return []; // the node to itself: loopback
  if (s.node) {
    const out = interfaceTowards(v, c, d.ip);
    return hop('node-out', `OUTPUT, this node out ${out}`, { hook: 'OUTPUT', outIface: out });
  }
  if (d.node) {
    const inIf = interfaceTowards(v, c, s.ip);
    return hop('node-in', `INPUT, to this node in ${inIf}`, { hook: 'INPUT', inIface: inIf });
  }
  return [];
}

// ---------------------------------------------------------------------------------------------
// Cluster level

export interface ViewOptions {
  bridge?: string;
  uplink?: string;
}

/**
 * One NodeView per node of a plan (a whole-cluster plan knows every pod; a node plan only that
 * node's pods, so use a whole-cluster one). Pods without a node name belong to no view.
 */
export function clusterNodeViews(plan: Plan, opts: ViewOptions = {}): NodeView[] {
  const podsByNode = new Map<string, Map<string, string>>();
  for (const p of plan.pods) {
    if (p.nodeName === undefined) continue;
    let m = podsByNode.get(p.nodeName);
    if (!m) podsByNode.set(p.nodeName, (m = new Map()));
    for (const ip of p.ips) m.set(ip, p.key);
  }
  return plan.nodes.map((n) => ({
    node: n.name,
    localPods: podsByNode.get(n.name) ?? new Map(),
    localPodCIDRs: [...n.podCIDRs],
    nodeAddresses: [...n.addresses],
    bridge: opts.bridge ?? 'kube-bridge',
    uplink: opts.uplink ?? 'eth0',
  }));
}

/**
 * Every hop of the packet across the cluster: the sending side's node first (the node holding the
 * source pod or address), then the receiving side's. The overall verdict is ACCEPT only when every
 * hop accepts. Empty when no node's filter table sees the packet.
 */
export function clusterPaths(views: NodeView[], src: string, dst: string, protocol: PathProtocol, port: number): PathHop[] {
  const hops = views.flatMap((v) => packetPaths(v, src, dst, protocol, port));
  const sending = (h: PathHop): number => (h.kind === 'pod-in' || h.kind === 'node-in' ? 1 : 0);
  return hops.map((h, i) => ({ h, i })).sort((a, b) => sending(a.h) - sending(b.h) || a.i - b.i).map((x) => x.h);
}

/** Names of the nodes whose filter tables see the packet, in path order. */
export function nodesOnPath(views: NodeView[], src: string, dst: string, protocol: PathProtocol, port: number): string[] {
  return clusterPaths(views, src, dst, protocol, port).map((h) => h.node);
}

/** ACCEPT only when every hop accepts; otherwise the first hop's refusal (in path order). */
export function combinedVerdict<V extends string>(verdicts: V[]): V | 'ACCEPT' {
  return verdicts.find((v) => v !== 'ACCEPT') ?? 'ACCEPT';
}
