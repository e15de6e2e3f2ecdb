// The lab's network: a Kubernetes-like cluster made of network namespaces on this machine.
//
//   pwl-<N>-fabric   bridge `fabric`; one veth `vn<i>` per node ─────┐   (the private node network)
//   pwl-<N>-n-<i>    `eth0` (node IP, peer of vn<i>), bridge `kube-bridge` (pod CIDR gateway),
//                    one veth `vp<j>` per local pod on kube-bridge, routes to the other nodes' pod CIDRs,
//                    forwarding + bridge-nf-call-ip(6)tables on (per namespace on this kernel)
//   pwl-<N>-p-<j>    `eth0` (peer of vp<j>) with the pod's IP(s), default route via the gateway
//
// Same-node pod traffic is bridged inside the node namespace (iptables FORWARD sees it with
// `physdev-is-bridged`), cross-node traffic is routed node → fabric → node. Nothing links into the
// host's own namespace: links are made inside the lab's namespaces (`ip -n NS link add ... peer ...
// netns OTHER`). Kernel names come from indexes only; pod and node names (any text) live in the state file.
import { createHash } from 'node:crypto';
import type { ContainerPort, Family, Node, Pod } from '../cluster/model.js';
import { objectKey } from '../cluster/model.js';
import { bitsOf, cidrContainsIP, cidrsOverlap, formatCIDR, formatIP, parseCIDR, parseIP, type Cidr } from '../net/ip.js';
import { ipBatch, killAndWait, LabExecError, listNetns, mapLimit, netnsPids, run } from './netns.js';
import { alive, checkNsName, procStartTime } from './netns.js';
import { checkLabName, DEFAULT_LAB_NAME, readState, removeLabDir, STATE_VERSION, writeState, labDirNames, type LabState } from './state.js';

export const NS_PREFIX = 'pwl-';
export const BRIDGE = 'kube-bridge';
export const FABRIC_BRIDGE = 'fabric';
export const NODE_LINK = 'eth0';
export const POD_LINK = 'eth0';

export const nodeNsName = (lab: string, idx: number): string => `${NS_PREFIX}${lab}-n-${idx}`;
export const podNsName = (lab: string, idx: number): string => `${NS_PREFIX}${lab}-p-${idx}`;
export const fabricNsName = (lab: string): string => `${NS_PREFIX}${lab}-fabric`;
export const podHostVeth = (idx: number): string => `vp${idx}`;
export const fabricVeth = (nodeIdx: number): string => `vn${nodeIdx}`;

/** The lab a namespace name belongs to (`pwl-<lab>-<kind>-<i>` or `pwl-<lab>-fabric`), else undefined. */
export function labOfNamespace(ns: string): string | undefined {
  const m = /^pwl-(.+)-(?:[a-z]+-\d+|fabric)$/.exec(ns);
  return m ? m[1] : undefined;
}

export interface TopologyInput {
  nodes: Node[];
  pods: Pod[];
  /** Default `default`. */
  labName?: string;
  /** Recorded in the state file. */
  inputDir?: string;
  /** Use the Node objects' addresses (first of each family) as node-network IPs; default true. */
  useNodeAddresses?: boolean;
}

export interface AddrPlan {
  family: Family;
  ip: string;
  /** Prefix length used on the interface. */
  prefix: number;
}

export interface NodePlan {
  idx: number;
  name: string;
  ns: string;
  /** One per lab family, the node's own when valid, else allocated. */
  podCIDRs: string[];
  /** The subset of podCIDRs the lab allocated (tell the simulator). */
  allocatedCIDRs: string[];
  /** kube-bridge addresses: the first host of each pod CIDR, with the CIDR's prefix. */
  gateways: AddrPlan[];
  /** Node-network addresses of `eth0` (/32, /128). */
  nodeIPs: AddrPlan[];
  /** Whether the node came from a Node object (else from a pod's nodeName or the default). */
  fromObject: boolean;
  /** MAC of `eth0` (node network), of `kube-bridge`, and of its veth `vn<idx>` in the fabric. */
  mac: string;
  bridgeMac: string;
  fabricMac: string;
}

export interface PodPlan {
  idx: number;
  /** `namespace/name`. */
  key: string;
  namespace: string;
  name: string;
  node: string;
  nodeIdx: number;
  ns: string;
  hostVeth: string;
  /** MAC of the pod's eth0 and of its host-side veth. */
  mac: string;
  hostMac: string;
  /** Addresses on eth0: the node CIDR's prefix when inside it, else a host prefix (off-link). */
  addrs: (AddrPlan & { offLink: boolean })[];
  /** All IPs of the pod in the lab (status IPs kept, allocated ones added). */
  ips: string[];
  allocatedIPs: string[];
  /** The pod's own status IPs the lab took into account (valid, the first of each lab family). */
  requestedIPs: string[];
  ports: ContainerPort[];
}

export interface TopologyPlan {
  labName: string;
  fabricNs: string;
  families: Family[];
  nodes: NodePlan[];
  pods: PodPlan[];
  /** Pods with no namespace in the lab (hostNetwork, Succeeded/Failed, duplicates, no address left). */
  skipped: { key: string; reason: string }[];
  /** IPs the lab chose for pods (tell the simulator). */
  allocations: { pod: string; ips: string[] }[];
  /** Pods without (a known) nodeName placed on a node by the lab (tell the simulator). */
  placements: { pod: string; node: string }[];
  warnings: string[];
  /** The warnings about a pod's own status IPs (not an IP, a second of a family), by pod. */
  podInputWarnings: { pod: string; text: string }[];
  inputDir?: string;
}

function famOfCidr(c: Cidr): Family {
  return c.family;
}

function firstHost(c: Cidr): bigint {
  return c.addr + 1n;
}

function lastHost(c: Cidr): bigint {
  const size = 1n << BigInt(bitsOf(c.family) - c.prefix);
  return c.family === 'ipv4' && c.prefix < 31 ? c.addr + size - 2n : c.addr + size - 1n;
}

/**
 * Fixed MACs (locally administered: 02:<lab>:<kind>:<idx, 24 bits>) so every neighbour entry can be
 * static: the kernel's ARP/NDP tables are shared by all namespaces with one global gc_thresh3 (1024
 * by default), and a lab whose pods resolve each other dynamically overflows it (dropped packets in
 * the lab, and evicted entries for the host itself). Permanent entries are exempt from that limit.
 */
export const MAC_KIND = { podEth: 1, podHostVeth: 2, nodeEth: 3, fabricVeth: 4, kubeBridge: 5, fabricBridge: 6 } as const;

export function labMac(lab: string, kind: number, idx: number): string {
  const b = [0x02, labOctet(lab), kind & 0xff, (idx >> 16) & 0xff, (idx >> 8) & 0xff, idx & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

function labOctet(lab: string): number {
  return createHash('sha256').update(lab).digest()[0]!;
}

/** Pure: what the lab would build for these objects. Never throws on bad objects (warnings instead); throws on a bad lab name. */
export function planTopology(input: TopologyInput): TopologyPlan {
  const labName = checkLabName(input.labName ?? DEFAULT_LAB_NAME);
  const warnings: string[] = [];
  const skipped: { key: string; reason: string }[] = [];
  const placements: { pod: string; node: string }[] = [];
  const podInputWarnings: { pod: string; text: string }[] = [];
  const inputWarning = (pod: string, text: string) => {
    warnings.push(text);
    podInputWarnings.push({ pod, text });
  };

  // Pods that get a namespace.
  const seenPods = new Set<string>();
  const candidates: Pod[] = [];
  for (const p of [...(input.pods ?? [])].sort((a, b) => objectKey(a).localeCompare(objectKey(b)))) {
    const key = objectKey(p);
    if (seenPods.has(key)) {
      skipped.push({ key, reason: 'duplicate pod' });
      warnings.push(`pod ${key}: listed twice, the second copy is ignored`);
      continue;
    }
    seenPods.add(key);
    if (p.hostNetwork) skipped.push({ key, reason: 'hostNetwork' });
    else if (p.phase === 'Succeeded' || p.phase === 'Failed') skipped.push({ key, reason: `phase ${p.phase}` });
    else candidates.push(p);
  }

  // Pod status IPs, parsed.
  const podIPs = new Map<string, { family: Family; value: bigint; text: string }[]>();
  for (const p of candidates) {
    const list: { family: Family; value: bigint; text: string }[] = [];
    for (const ipText of p.ips ?? []) {
      const ip = parseIP(ipText);
      if (!ip) {
        inputWarning(objectKey(p), `pod ${objectKey(p)}: status IP ${JSON.stringify(ipText)} is not an IP address, ignored`);
        continue;
      }
      if (list.some((x) => x.family === ip.family)) {
        inputWarning(objectKey(p), `pod ${objectKey(p)}: more than one ${ip.family} status IP, ${ipText} ignored`);
        continue;
      }
      list.push({ ...ip, text: formatIP(ip.family, ip.value) });
    }
    podIPs.set(objectKey(p), list);
  }

  // Nodes: Node objects, else pods' nodeName, else one node.
  const nodeObjects = new Map<string, Node>();
  for (const n of input.nodes ?? []) {
    if (nodeObjects.has(n.name)) warnings.push(`node ${n.name}: listed twice, the second copy is ignored`);
    else nodeObjects.set(n.name, n);
  }
  const nodeNames = [...nodeObjects.keys()].sort();
  for (const p of candidates) {
    if (p.nodeName !== undefined && p.nodeName !== '' && !nodeNames.includes(p.nodeName)) {
      if (nodeObjects.size > 0) warnings.push(`pod ${objectKey(p)}: node ${JSON.stringify(p.nodeName)} has no Node object; the lab adds that node`);
      nodeNames.push(p.nodeName);
    }
  }
  if (nodeObjects.size === 0) nodeNames.sort();
  if (nodeNames.length === 0) nodeNames.push('node-1');
  const podNode = new Map<string, string>();
  for (const p of candidates) {
    if (p.nodeName !== undefined && p.nodeName !== '') podNode.set(objectKey(p), p.nodeName);
    else {
      podNode.set(objectKey(p), nodeNames[0]!);
      placements.push({ pod: objectKey(p), node: nodeNames[0]! });
    }
  }

  // Families of the lab.
  const fams = new Set<Family>();
  for (const n of nodeObjects.values()) for (const c of n.podCIDRs ?? []) {
    const r = parseCIDR(c);
    if (r.ok) fams.add(r.cidr.family);
  }
  for (const l of podIPs.values()) for (const ip of l) fams.add(ip.family);
  if (fams.size === 0) fams.add('ipv4');
  const families: Family[] = (['ipv4', 'ipv6'] as Family[]).filter((f) => fams.has(f));

  // Pod CIDRs: the node's own (first valid, non-overlapping per family), else allocated.
  const taken: Cidr[] = [];
  const nodeCidrs = new Map<string, Map<Family, { cidr: Cidr; allocated: boolean }>>();
  for (const name of nodeNames) {
    const m = new Map<Family, { cidr: Cidr; allocated: boolean }>();
    for (const text of nodeObjects.get(name)?.podCIDRs ?? []) {
      const r = parseCIDR(text);
      if (!r.ok) {
        warnings.push(`node ${name}: spec.podCIDRs entry ${JSON.stringify(text)} is invalid (${r.reason}), ignored`);
        continue;
      }
      const c = r.cidr;
      if (m.has(c.family)) continue;
      if (bitsOf(c.family) - c.prefix < 2) {
        warnings.push(`node ${name}: pod CIDR ${text} is too small for a gateway and pods, ignored`);
        continue;
      }
      if (taken.some((t) => cidrsOverlap(t, c))) {
        warnings.push(`node ${name}: pod CIDR ${text} overlaps another node's, ignored`);
        continue;
      }
      if (!families.includes(c.family)) continue;
      m.set(c.family, { cidr: c, allocated: false });
      taken.push(c);
    }
    nodeCidrs.set(name, m);
  }
  const nextCidr = (family: Family): Cidr => {
    // 10.244.<i>.0/24, fd00:10:244:<i>::/64
    for (let i = 0; i < (family === 'ipv4' ? 256 : 65536); i++) {
      const c: Cidr =
        family === 'ipv4'
          ? { family, addr: (10n << 24n) | (244n << 16n) | (BigInt(i) << 8n), prefix: 24 }
          : { family, addr: (0xfd00n << 112n) | (0x10n << 96n) | (0x244n << 80n) | (BigInt(i) << 64n), prefix: 64 };
      if (!taken.some((t) => cidrsOverlap(t, c))) return c;
    }
    throw new Error(`lab ${labName}: no free ${family} pod CIDR left to allocate`);
  };
  for (const name of nodeNames) {
    const m = nodeCidrs.get(name)!;
    for (const f of families) {
      if (m.has(f)) continue;
      const c = nextCidr(f);
      m.set(f, { cidr: c, allocated: true });
      taken.push(c);
    }
  }

  // Node-network addresses.
  const useAddrs = input.useNodeAddresses !== false;
  const usedNodeIPs = new Set<string>();
  const octet = labOctet(labName);
  const nodeAddr = new Map<string, AddrPlan[]>();
  const inPodCidr = (ip: { family: Family; value: bigint }) => taken.some((c) => cidrContainsIP(c, ip));
  const statusIPs = new Set([...podIPs.values()].flatMap((l) => l.map((ip) => ip.text)));
  nodeNames.forEach((name, idx) => {
    const list: AddrPlan[] = [];
    for (const f of families) {
      let chosen: string | undefined;
      if (useAddrs) {
        for (const a of nodeObjects.get(name)?.addresses ?? []) {
          const ip = parseIP(a);
          if (!ip || ip.family !== f) continue;
          const text = formatIP(ip.family, ip.value);
          if (usedNodeIPs.has(text) || inPodCidr(ip)) {
            warnings.push(`node ${name}: address ${a} is shared with another node or inside a pod CIDR; the lab uses its own`);
            continue;
          }
          chosen = text;
          break;
        }
      }
      if (chosen === undefined) {
        for (let host = idx + 1; ; host++) {
          const text = f === 'ipv4' ? `172.31.${octet}.${host}` : formatIP('ipv6', (0xfd31n << 112n) | (BigInt(octet) << 96n) | BigInt(host));
          if (f === 'ipv4' && host > 254) throw new Error(`lab ${labName}: too many nodes for the node network`);
          if (!usedNodeIPs.has(text) && !inPodCidr(parseIP(text)!) && !statusIPs.has(text)) {
            chosen = text;
            break;
          }
        }
      }
      usedNodeIPs.add(chosen);
      list.push({ family: f, ip: chosen, prefix: bitsOf(f) });
    }
    nodeAddr.set(name, list);
  });

  const nodes: NodePlan[] = nodeNames.map((name, idx) => {
    const m = nodeCidrs.get(name)!;
    const cidrs = families.map((f) => m.get(f)!);
    return {
      idx,
      name,
      ns: nodeNsName(labName, idx),
      podCIDRs: cidrs.map((c) => formatCIDR(c.cidr)),
      allocatedCIDRs: cidrs.filter((c) => c.allocated).map((c) => formatCIDR(c.cidr)),
      gateways: cidrs.map((c) => ({ family: famOfCidr(c.cidr), ip: formatIP(c.cidr.family, firstHost(c.cidr)), prefix: c.cidr.prefix })),
      nodeIPs: nodeAddr.get(name)!,
      fromObject: nodeObjects.has(name),
      mac: labMac(labName, MAC_KIND.nodeEth, idx),
      bridgeMac: labMac(labName, MAC_KIND.kubeBridge, idx),
      fabricMac: labMac(labName, MAC_KIND.fabricVeth, idx),
    };
  });
  const nodeByName = new Map(nodes.map((n) => [n.name, n]));

  // Pod addresses: keep status IPs unless they clash; allocate when a pod has none.
  const reserved = new Set<string>();
  for (const n of nodes) {
    for (const g of n.gateways) reserved.add(g.ip);
    for (const a of n.nodeIPs) reserved.add(a.ip);
    for (const c of n.podCIDRs) {
      const cc = parseCIDR(c);
      if (cc.ok) {
        reserved.add(formatIP(cc.cidr.family, cc.cidr.addr));
        if (cc.cidr.family === 'ipv4') reserved.add(formatIP('ipv4', cc.cidr.addr + (1n << BigInt(32 - cc.cidr.prefix)) - 1n));
      }
    }
  }
  const used = new Set<string>();
  const wanted = new Set<string>();
  for (const l of podIPs.values()) for (const ip of l) wanted.add(ip.text);
  const cursor = new Map<string, bigint>();
  const allocate = (node: NodePlan, family: Family): string | undefined => {
    const text = node.podCIDRs.find((c) => parseCIDR(c).ok && (parseCIDR(c) as { cidr: Cidr }).cidr.family === family);
    if (!text) return undefined;
    const c = (parseCIDR(text) as { cidr: Cidr }).cidr;
    const ck = `${node.idx}/${family}`;
    for (let v = cursor.get(ck) ?? firstHost(c) + 1n; v <= lastHost(c); v++) {
      const ip = formatIP(family, v);
      if (reserved.has(ip) || used.has(ip) || wanted.has(ip)) continue;
      cursor.set(ck, v + 1n);
      return ip;
    }
    return undefined;
  };

  const pods: PodPlan[] = [];
  const allocations: { pod: string; ips: string[] }[] = [];
  for (const p of candidates) {
    const key = objectKey(p);
    const node = nodeByName.get(podNode.get(key)!)!;
    const addrs: PodPlan['addrs'] = [];
    const allocated: string[] = [];
    const status = podIPs.get(key)!;
    for (const ip of status) {
      if (!families.includes(ip.family)) continue;
      let text = ip.text;
      let problem: string | undefined;
      if (used.has(text)) problem = 'is used by another pod';
      else if (reserved.has(text)) problem = 'is a gateway, node or network address in the lab';
      if (problem) {
        const fresh = allocate(node, ip.family);
        if (!fresh) {
          warnings.push(`pod ${key}: IP ${text} ${problem} and node ${node.name} has no free address; IP dropped`);
          continue;
        }
        warnings.push(`pod ${key}: IP ${text} ${problem}; the lab gives it ${fresh}`);
        text = fresh;
        allocated.push(fresh);
      }
      used.add(text);
      const cidr = node.podCIDRs.map((c) => (parseCIDR(c) as { cidr: Cidr }).cidr).find((c) => c.family === ip.family)!;
      const inside = cidrContainsIP(cidr, parseIP(text)!);
      if (!inside) warnings.push(`pod ${key}: IP ${text} is outside node ${node.name}'s pod CIDR ${formatCIDR(cidr)}; attached with a host route (traffic to it is routed, not bridged)`);
      addrs.push({ family: ip.family, ip: text, prefix: inside ? cidr.prefix : bitsOf(ip.family), offLink: !inside });
    }
    if (status.length === 0) {
      for (const f of families) {
        const fresh = allocate(node, f);
        if (!fresh) {
          warnings.push(`pod ${key}: node ${node.name} has no free ${f} address`);
          continue;
        }
        used.add(fresh);
        allocated.push(fresh);
        const cidr = node.podCIDRs.map((c) => (parseCIDR(c) as { cidr: Cidr }).cidr).find((c) => c.family === f)!;
        addrs.push({ family: f, ip: fresh, prefix: cidr.prefix, offLink: false });
      }
    }
    if (addrs.length === 0) {
      skipped.push({ key, reason: 'no address' });
      continue;
    }
    const idx = pods.length;
    addrs.sort((a, b) => (a.family === b.family ? 0 : a.family === 'ipv4' ? -1 : 1));
    if (allocated.length > 0) allocations.push({ pod: key, ips: allocated });
    pods.push({
      idx,
      key,
      namespace: p.namespace,
      name: p.name,
      node: node.name,
      nodeIdx: node.idx,
      ns: podNsName(labName, idx),
      hostVeth: podHostVeth(idx),
      mac: labMac(labName, MAC_KIND.podEth, idx),
      hostMac: labMac(labName, MAC_KIND.podHostVeth, idx),
      addrs,
      ips: addrs.map((a) => a.ip),
      allocatedIPs: allocated,
      requestedIPs: status.filter((ip) => families.includes(ip.family)).map((ip) => ip.text),
      ports: (p.ports ?? []).map((x) => ({ ...x })),
    });
  }

  return { labName, fabricNs: fabricNsName(labName), families, nodes, pods, skipped, allocations, placements, warnings, podInputWarnings, ...(input.inputDir !== undefined ? { inputDir: input.inputDir } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Kernel commands (pure): what `ip -batch` runs in each namespace.

export interface TopologyCommands {
  /** Namespaces to create (`ip netns add`), fabric first. */
  namespaces: string[];
  fabric: string[][];
  /** Per node namespace: links, addresses, routes, pod veths. */
  nodes: { ns: string; commands: string[][] }[];
  /** Per pod namespace. */
  pods: { ns: string; commands: string[][] }[];
}

const withPrefix = (a: AddrPlan) => `${a.ip}/${a.prefix}`;
const hostPrefix = (ip: string, f: Family) => `${ip}/${bitsOf(f)}`;
const dad = (f: Family) => (f === 'ipv6' ? ['nodad'] : []);
const defaultDst = (f: Family) => (f === 'ipv4' ? '0.0.0.0/0' : '::/0');

export function topologyCommands(plan: TopologyPlan): TopologyCommands {
  const fabric: string[][] = [
    ['link', 'set', 'lo', 'up'],
    ['link', 'add', FABRIC_BRIDGE, 'address', labMac(plan.labName, MAC_KIND.fabricBridge, 0), 'type', 'bridge', 'mcast_snooping', '0'],
    ['link', 'set', FABRIC_BRIDGE, 'up'],
  ];
  for (const n of plan.nodes) {
    fabric.push(['link', 'add', fabricVeth(n.idx), 'address', n.fabricMac, 'type', 'veth', 'peer', 'name', NODE_LINK, 'address', n.mac, 'netns', n.ns]);
    fabric.push(['link', 'set', fabricVeth(n.idx), 'master', FABRIC_BRIDGE]);
    fabric.push(['link', 'set', fabricVeth(n.idx), 'up']);
  }
  const nodes = plan.nodes.map((n) => {
    const c: string[][] = [['link', 'set', 'lo', 'up']];
    for (const a of n.nodeIPs) c.push(['addr', 'add', withPrefix(a), 'dev', NODE_LINK, ...dad(a.family)]);
    c.push(['link', 'set', NODE_LINK, 'up']);
    c.push(['link', 'add', BRIDGE, 'address', n.bridgeMac, 'type', 'bridge', 'mcast_snooping', '0']);
    for (const g of n.gateways) c.push(['addr', 'add', withPrefix(g), 'dev', BRIDGE, ...dad(g.family)]);
    c.push(['link', 'set', BRIDGE, 'up']);
    for (const peer of plan.nodes) {
      if (peer.idx === n.idx) continue;
      for (const a of peer.nodeIPs) {
        c.push(['route', 'add', hostPrefix(a.ip, a.family), 'dev', NODE_LINK, 'scope', 'link']);
        c.push(['neigh', 'replace', a.ip, 'lladdr', peer.mac, 'dev', NODE_LINK, 'nud', 'permanent']);
        for (const cidr of peer.podCIDRs) if (cidr.includes(':') === (a.family === 'ipv6')) c.push(['route', 'add', cidr, 'via', a.ip, 'dev', NODE_LINK]);
        for (const p of plan.pods) {
          if (p.nodeIdx !== peer.idx) continue;
          for (const pa of p.addrs) if (pa.offLink && pa.family === a.family) c.push(['route', 'add', hostPrefix(pa.ip, pa.family), 'via', a.ip, 'dev', NODE_LINK]);
        }
      }
    }
    for (const p of plan.pods) {
      if (p.nodeIdx !== n.idx) continue;
      c.push(['link', 'add', p.hostVeth, 'address', p.hostMac, 'type', 'veth', 'peer', 'name', POD_LINK, 'address', p.mac, 'netns', p.ns]);
      c.push(['link', 'set', p.hostVeth, 'master', BRIDGE]);
      c.push(['link', 'set', p.hostVeth, 'up']);
      for (const pa of p.addrs) {
        if (pa.offLink) c.push(['route', 'add', hostPrefix(pa.ip, pa.family), 'dev', BRIDGE]);
        c.push(['neigh', 'replace', pa.ip, 'lladdr', p.mac, 'dev', BRIDGE, 'nud', 'permanent']);
      }
    }
    return { ns: n.ns, commands: c };
  });
  const pods = plan.pods.map((p) => {
    const node = plan.nodes[p.nodeIdx]!;
    const c: string[][] = [['link', 'set', 'lo', 'up']];
    for (const a of p.addrs) c.push(['addr', 'add', withPrefix(a), 'dev', POD_LINK, ...dad(a.family)]);
    c.push(['link', 'set', POD_LINK, 'up']);
    for (const a of p.addrs) {
      const gw = node.gateways.find((g) => g.family === a.family);
      if (!gw) continue;
      c.push(['neigh', 'replace', gw.ip, 'lladdr', node.bridgeMac, 'dev', POD_LINK, 'nud', 'permanent']);
      c.push(['route', 'add', defaultDst(a.family), 'via', gw.ip, 'dev', POD_LINK, ...(a.offLink ? ['onlink'] : [])]);
      if (a.offLink) continue;
      // Same-node pods on the same subnet are reached directly, across the bridge.
      for (const q of plan.pods) {
        if (q.idx === p.idx || q.nodeIdx !== p.nodeIdx) continue;
        for (const qa of q.addrs) if (qa.family === a.family && !qa.offLink) c.push(['neigh', 'replace', qa.ip, 'lladdr', q.mac, 'dev', POD_LINK, 'nud', 'permanent']);
      }
    }
    return { ns: p.ns, commands: c };
  });
  return { namespaces: [plan.fabricNs, ...plan.nodes.map((n) => n.ns), ...plan.pods.map((p) => p.ns)], fabric, nodes, pods };
}

// ---------------------------------------------------------------------------------------------
// Building and tearing down.

export interface BuildProgress {
  phase: 'namespaces' | 'fabric' | 'nodes' | 'pods' | 'done';
  done: number;
  total: number;
}

export interface BuildOptions {
  /** Parallel `ip` processes; default 16. */
  concurrency?: number;
  /** Leave what was built when a step fails (default: tear the lab down, then rethrow). */
  keepOnError?: boolean;
}

export function requireRoot(what = 'the lab'): void {
  if (process.getuid?.() !== 0) throw new Error(`${what} needs root: it creates network namespaces (run as root, e.g. with sudo)`);
}

// No rate limit on the nodes' destination-unreachable errors. A REJECT answers with an ICMP
// port-unreachable, and the kernel limits those twice: per destination (`icmp_ratelimit`: a burst of
// 6, then one per second) and per namespace (`icmp_msgs_per_sec` 1000, `icmp_msgs_burst` 50). Either
// turns most denials of a probe round (or of a burst from one pod) into timeouts instead of immediate
// refusals. Taking the type out of the rate mask (IPv4 type 3: 6168 → 6160; IPv6 type 1) exempts it
// from both; the per-destination limit is switched off as well. All of these are per namespace.
const NODE_SYSCTLS = [
  'net.ipv4.ip_forward=1',
  'net.ipv6.conf.all.forwarding=1',
  'net.bridge.bridge-nf-call-iptables=1',
  'net.bridge.bridge-nf-call-ip6tables=1',
  'net.ipv4.icmp_ratelimit=0',
  'net.ipv6.icmp.ratelimit=0',
  'net.ipv4.icmp_ratemask=6160',
  'net.ipv6.icmp.ratemask=0,3-127',
];

/** Forwarding, bridge netfilter and no ICMP error rate limits in a node namespace (loads br_netfilter when needed). */
export async function nodeSysctls(ns: string): Promise<void> {
  const set = () => run('sysctl', ['-q', '-w', ...NODE_SYSCTLS], { ns, allowFail: true });
  let r = await set();
  if (r.code !== 0 && /bridge-nf-call/.test(r.stderr)) {
    await run('modprobe', ['br_netfilter'], { allowFail: true }).catch(() => undefined);
    r = await set();
    if (r.code !== 0 && /bridge-nf-call/.test(r.stderr)) {
      throw new Error(`${ns}: net.bridge.bridge-nf-call-iptables is missing: the br_netfilter kernel module is not loaded and 'modprobe br_netfilter' did not load it`);
    }
  }
  if (r.code !== 0) throw new LabExecError(`ip netns exec ${ns} sysctl -w ${NODE_SYSCTLS.join(' ')}`, r.code, r.stderr);
}

/** The state a plan is recorded as (before anything is built). */
export function stateFromPlan(plan: TopologyPlan): LabState {
  return {
    version: STATE_VERSION,
    name: plan.labName,
    createdAt: new Date().toISOString(),
    ...(plan.inputDir !== undefined ? { inputDir: plan.inputDir } : {}),
    fabricNs: plan.fabricNs,
    namespaces: [plan.fabricNs, ...plan.nodes.map((n) => n.ns), ...plan.pods.map((p) => p.ns)],
    nodes: plan.nodes.map((n) => ({ idx: n.idx, name: n.name, ns: n.ns, podCIDRs: n.podCIDRs, gateways: n.gateways.map((g) => g.ip), nodeIPs: n.nodeIPs.map((a) => a.ip) })),
    pods: plan.pods.map((p) => ({ idx: p.idx, key: p.key, namespace: p.namespace, name: p.name, node: p.node, ns: p.ns, ips: p.ips, allocatedIPs: p.allocatedIPs, requestedIPs: p.requestedIPs, hostVeth: p.hostVeth, ports: p.ports })),
    pids: [],
    warnings: plan.warnings,
  };
}

/**
 * Builds the plan's namespaces, links, addresses and routes; records the lab's state file first (so
 * an interrupted build can be torn down). Refuses when namespaces of this lab already exist.
 */
export async function buildTopology(plan: TopologyPlan, onProgress?: (p: BuildProgress) => void, opts: BuildOptions = {}): Promise<LabState> {
  requireRoot(`lab ${plan.labName}`);
  const lab = checkLabName(plan.labName);
  const existing = (await listNetns()).filter((ns) => labOfNamespace(ns) === lab);
  if (existing.length > 0) throw new Error(`lab ${lab} already exists (${existing.length} namespaces, e.g. ${existing[0]}); run 'podwall lab down --name ${lab}' first`);
  const cmds = topologyCommands(plan);
  for (const ns of cmds.namespaces) checkNsName(ns);
  const limit = Math.max(1, opts.concurrency ?? 16);
  const state = stateFromPlan(plan);
  writeState(state);
  const progress = (phase: BuildProgress['phase'], done: number, total: number) => onProgress?.({ phase, done, total });
  try {
    progress('namespaces', 0, cmds.namespaces.length);
    await ipBatch(cmds.namespaces.map((ns) => ['netns', 'add', ns]));
    progress('namespaces', cmds.namespaces.length, cmds.namespaces.length);

    let done = 0;
    const nodeTotal = plan.nodes.length;
    progress('fabric', 0, 1);
    await Promise.all([
      ipBatch(cmds.fabric, { ns: plan.fabricNs }).then(() => progress('fabric', 1, 1)),
      mapLimit(plan.nodes, limit, (n) => nodeSysctls(n.ns)),
    ]);
    progress('nodes', 0, nodeTotal);
    await mapLimit(cmds.nodes, limit, async (n) => {
      await ipBatch(n.commands, { ns: n.ns });
      progress('nodes', ++done, nodeTotal);
    });
    done = 0;
    progress('pods', 0, cmds.pods.length);
    await mapLimit(cmds.pods, limit, async (p) => {
      await ipBatch(p.commands, { ns: p.ns });
      progress('pods', ++done, cmds.pods.length);
    });
    progress('done', 1, 1);
    return state;
  } catch (e) {
    if (!opts.keepOnError) await teardownTopology(lab).catch(() => undefined);
    throw e;
  }
}

export interface TeardownResult {
  /** Namespaces deleted. */
  namespaces: string[];
  /** Processes killed. */
  killed: number[];
  /** Namespaces or processes that could not be removed. */
  problems: string[];
}

/**
 * Removes every namespace of the lab (found by name in `ip netns list`, plus the state file's list),
 * after killing every process inside them and every recorded process still alive (checked by start
 * time, so a reused pid is never killed). Idempotent; works without or with a corrupt state file.
 */
export async function teardownTopology(labName: string): Promise<TeardownResult> {
  requireRoot(`lab ${labName}`);
  const lab = checkLabName(labName);
  const st = readState(lab);
  // The follower first: it creates namespaces, and must not add one after they are listed.
  if (st.ok) {
    const followers = st.state.pids.filter((p) => p.role === 'follower' && Number.isInteger(p.pid) && p.pid > 1 && p.pid !== process.pid && alive(p.pid) && p.startTime !== undefined && procStartTime(p.pid) === p.startTime);
    if (followers.length) await killAndWait(followers.map((p) => p.pid));
  }
  const all = await listNetns();
  const names = new Set(all.filter((ns) => labOfNamespace(ns) === lab));
  if (st.ok) for (const ns of st.state.namespaces) if (all.includes(ns)) names.add(ns);
  const pids = new Set<number>();
  for (const list of await mapLimit([...names], 16, (ns) => netnsPids(ns))) for (const pid of list) pids.add(pid);
  if (st.ok) {
    for (const p of st.state.pids) {
      if (!Number.isInteger(p.pid) || p.pid <= 1 || !alive(p.pid)) continue;
      const start = procStartTime(p.pid);
      if (p.startTime !== undefined && start === p.startTime) pids.add(p.pid);
    }
  }
  pids.delete(process.pid);
  const problems: string[] = [];
  const left = await killAndWait([...pids]);
  for (const pid of left) problems.push(`process ${pid} survived SIGKILL`);
  const list = [...names].sort();
  if (list.length > 0) await ipBatch(list.map((ns) => ['netns', 'del', ns]), { force: true });
  const after = new Set(await listNetns());
  for (const ns of list) if (after.has(ns)) problems.push(`namespace ${ns} could not be deleted`);
  if (problems.length === 0) removeLabDir(lab);
  return { namespaces: list.filter((ns) => !after.has(ns)), killed: [...pids].filter((p) => !left.includes(p)), problems };
}

export interface LabSummary {
  name: string;
  /** Live namespaces of the lab. */
  namespaces: string[];
  state?: LabState;
  /** Why the state file could not be used (missing, corrupt). */
  stateError?: string;
}

/** Labs on this machine: from `ip netns list` (names `pwl-<lab>-...`) and the labs directory. */
export async function listLabs(): Promise<LabSummary[]> {
  const byLab = new Map<string, string[]>();
  for (const ns of await listNetns()) {
    const lab = labOfNamespace(ns);
    if (lab === undefined) continue;
    if (!byLab.has(lab)) byLab.set(lab, []);
    byLab.get(lab)!.push(ns);
  }
  for (const name of labDirNames()) if (!byLab.has(name)) byLab.set(name, []);
  return [...byLab.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, namespaces]) => {
      let r: ReturnType<typeof readState> | undefined;
      try {
        r = readState(name);
      } catch (e) {
        return { name, namespaces: namespaces.sort(), stateError: (e as Error).message };
      }
      return r.ok ? { name, namespaces: namespaces.sort(), state: r.state } : { name, namespaces: namespaces.sort(), stateError: r.error };
    });
}
