// Reachability over many pairs: the matrix, diff and test ask millions of cells. Endpoints that no
// rule of the plan can tell apart — the same isolating policies, the same ClusterNetworkPolicy tiers,
// the same memberships in every peer and named-port target (of NetworkPolicies and
// ClusterNetworkPolicies), the same address families — get the same verdict against any other
// endpoint; each pair of such classes is decided once, on a real pair of its members, by the same
// evaluateFlow every other answer comes from. A property test holds the result to deciding every
// pair on its own.
import type { Family } from '../cluster/model.js';
import { familyOf } from '../cluster/model.js';
import { blockCoverage, cidrContainsIP, mustCIDR, parseIP, type Cidr } from '../net/ip.js';
import type { Plan, PlanPeer, PlanPod } from '../policy/plan.js';
import type { ProbePort } from '../policy/ports.js';
import { decideFlow, evaluateFlow, flowBetween, podNetworkFamilies, podNetworkOf, type Verdict } from './evaluate.js';

interface Block {
  id: number;
  family: Family;
  cidr: Cidr;
  except: Cidr[];
  text: { cidr: string; except: readonly string[] };
}

/** The class of every endpoint of a plan: endpoints of one class are interchangeable to every rule. */
export function endpointClasses(plan: Plan): { classOf: Map<string, number>; count: number; unique: Set<string> } {
  // Every peer and named-port target gets an id; memberships become tokens.
  const byIP = new Map<string, string[]>();
  const byKey = new Map<string, string[]>();
  const add = (m: Map<string, string[]>, k: string, token: string) => {
    let l = m.get(k);
    if (!l) m.set(k, (l = []));
    l.push(token);
  };
  const blocks = new Map<string, Block>();
  let n = 0;
  const seenPeer = new Set<PlanPeer>();
  for (const pol of [...plan.policies, ...(plan.clusterPolicies ?? [])]) {
    for (const rule of [...pol.ingress, ...pol.egress]) {
      if (rule.peers !== 'all') {
        for (const peer of rule.peers) {
          if (seenPeer.has(peer)) continue;
          seenPeer.add(peer);
          if (peer.kind === 'cidr') {
            const text = `${peer.block.cidr}|${peer.block.except.join(',')}`;
            if (!blocks.has(text)) blocks.set(text, { id: blocks.size, family: peer.family, cidr: mustCIDR(peer.block.cidr), except: peer.block.except.map(mustCIDR), text: peer.block });
            continue;
          }
          const token = `p${n++}`;
          for (const ip of peer.ips) add(byIP, ip, token);
          for (const k of peer.pods) add(byKey, k, token);
        }
      }
      if (rule.ports !== 'all') {
        for (const port of rule.ports) {
          if (!port.namedTargets) continue;
          const token = `n${n++}`;
          for (const ip of port.namedTargets.ips) add(byIP, ip, token);
          for (const k of port.namedTargets.pods) add(byKey, k, token);
        }
      }
    }
  }
  const blockList = [...blocks.values()];
  const region = podNetworkOf(plan);
  const coverage = blockList.map((b) => blockCoverage(b.text, region));
  const families = podNetworkFamilies(plan);
  const nodeOf = new Map(plan.nodes.flatMap((nd) => nd.addresses.map((a) => [a, nd.name] as const)));
  // An IP claimed twice makes its endpoints special (same-ip verdicts): each is a class of its own.
  const ipCount = new Map<string, number>();
  for (const p of plan.pods) for (const ip of p.ips) ipCount.set(ip, (ipCount.get(ip) ?? 0) + 1);
  // The own-node exception needs a node address as source: only then does a pod's node matter.
  const podOnNodeAddress = plan.pods.some((p) => p.ips.some((ip) => nodeOf.has(ip)));
  const unique = new Set<string>();
  const classOf = new Map<string, number>();
  const ids = new Map<string, number>();
  for (const p of plan.pods) {
    const parts: string[] = [`E${p.egressPolicies.join(',')}`, `I${p.ingressPolicies.join(',')}`];
    if (p.tiers) parts.push(`T${[p.tiers.admin.egress, p.tiers.admin.ingress, p.tiers.baseline.egress, p.tiers.baseline.ingress].map((l) => l.join(',')).join('|')}`);
    if (p.ips.some((ip) => (ipCount.get(ip) ?? 0) > 1)) parts.push(`K${p.key}`);
    else unique.add(p.key);
    if (p.ips.length === 0) {
      parts.push('L');
      for (const t of byKey.get(p.key) ?? []) parts.push(t);
      for (const f of families) blockList.forEach((b, i) => b.family === f && coverage[i] !== 'none' && parts.push(`b${b.id}${coverage[i] === 'all' ? '' : '?'}`));
    } else {
      for (const ip of p.ips) {
        const parsed = parseIP(ip)!;
        parts.push(`@${familyOf(ip)}`);
        for (const t of byIP.get(ip) ?? []) parts.push(t);
        for (const b of blockList) if (b.family === parsed.family && cidrContainsIP(b.cidr, parsed) && !b.except.some((e) => cidrContainsIP(e, parsed))) parts.push(`b${b.id}`);
        const node = nodeOf.get(ip);
        if (node !== undefined) parts.push(`N${node}`);
      }
    }
    // Only a node address as source meets the own-node exception; a pod's node matters then.
    if (podOnNodeAddress && p.nodeName !== undefined) parts.push(`O${p.nodeName}`);
    const sig = parts.join(' ');
    let id = ids.get(sig);
    if (id === undefined) ids.set(sig, (id = ids.size));
    classOf.set(p.key, id);
  }
  return { classOf, count: ids.size, unique };
}

/** Cells of one plan over some probe ports, decided once per pair of endpoint classes. */
export class Reachability {
  readonly endpoints: readonly PlanPod[];
  private readonly byKey: Map<string, PlanPod>;
  private readonly index: Map<string, number>;
  /** Class of endpoints[i], or -1 when it has a class of its own (a shared IP): never cached. */
  private readonly classAt: Int32Array;
  private readonly classes: number;
  private readonly cache: Int8Array | Map<number, number>;
  /** How many pairs were decided by evaluation (the rest came from the class cache). */
  evaluated = 0;

  constructor(
    readonly plan: Plan,
    readonly ports: readonly ProbePort[],
  ) {
    this.endpoints = plan.pods;
    this.byKey = new Map(plan.pods.map((p) => [p.key, p]));
    this.index = new Map(plan.pods.map((p, i) => [p.key, i]));
    const c = endpointClasses(plan);
    this.classAt = Int32Array.from(plan.pods, (p) => (c.unique.has(p.key) ? c.classOf.get(p.key)! : -1));
    this.classes = c.count;
    const size = c.count * c.count * Math.max(1, ports.length);
    this.cache = size <= 64_000_000 ? new Int8Array(size) : new Map();
  }

  /** The class of endpoints[i]; -1 when it is a class of its own (its cells are never shared). */
  classOfIndex(i: number): number {
    return this.classAt[i]!;
  }

  endpoint(key: string): PlanPod | undefined {
    return this.byKey.get(key);
  }

  /** The cell: true, false, or null (depends on an address the input does not give). */
  allowed(from: PlanPod, to: PlanPod, portIndex: number): boolean | null {
    return this.allowedAt(this.index.get(from.key)!, this.index.get(to.key)!, portIndex);
  }

  /** The cell between endpoints[i] and endpoints[j] (the fast way through the whole matrix). */
  allowedAt(i: number, j: number, portIndex: number): boolean | null {
    if (i === j) return true;
    const from = this.endpoints[i]!;
    const to = this.endpoints[j]!;
    const port = this.ports[portIndex]!;
    const ci = this.classAt[i]!;
    const cj = this.classAt[j]!;
    if (ci < 0 || cj < 0) return this.decide(from, to, port);
    const slot = (ci * this.classes + cj) * this.ports.length + portIndex;
    // 0: unknown, 1: false, 2: true, 3: null.
    let v = this.cache instanceof Int8Array ? this.cache[slot]! : (this.cache.get(slot) ?? 0);
    if (v === 0) {
      const a = this.decide(from, to, port);
      v = a === false ? 1 : a === true ? 2 : 3;
      if (this.cache instanceof Int8Array) this.cache[slot] = v;
      else this.cache.set(slot, v);
    }
    return v === 1 ? false : v === 2 ? true : null;
  }

  private decide(from: PlanPod, to: PlanPod, port: ProbePort): boolean | null {
    this.evaluated++;
    const flow = flowBetween(this.plan, from, to, port.protocol, port.port);
    // No common address family: they cannot talk.
    return flow === undefined ? false : decideFlow(this.plan, flow).allowed;
  }

  /** The whole verdict of a cell, with its summary (undefined: no common address family). */
  verdict(from: PlanPod, to: PlanPod, portIndex: number): Verdict | undefined {
    const port = this.ports[portIndex]!;
    const flow = flowBetween(this.plan, from, to, port.protocol, port.port);
    return flow && evaluateFlow(this.plan, flow);
  }
}
