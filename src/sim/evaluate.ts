// evaluate(plan, packet) → verdict + reason, reading the Plan and nothing else.
import type { Direction, Protocol } from '../cluster/model.js';
import { ipInBlock, parseIP } from '../net/ip.js';
import type { Plan, PlanPeer, PlanPod, PlanPolicy, PlanPort, PlanRule } from '../policy/plan.js';

export interface Packet {
  src: string;
  dst: string;
  protocol: Protocol;
  port: number;
}

export interface RuleMatch {
  policy: string;
  ruleId: string;
  ruleIndex: number;
  /** Index of the matching peer (`from`/`to`), absent when the rule allows every peer. */
  peerIndex?: number;
  /** Index of the matching port entry, absent when the rule allows every port. */
  portIndex?: number;
  peerText: string;
  portText: string;
}

export interface SideVerdict {
  direction: Direction;
  /** The pod this side is about (the source for egress, the destination for ingress). */
  pod?: string;
  /** Why this side does not apply or what decided it. */
  outcome: 'not-a-pod' | 'not-local' | 'not-isolated' | 'allowed' | 'denied' | 'self' | 'node-local';
  /** Policies isolating the pod for this direction. */
  policies: string[];
  allowedBy?: RuleMatch;
}

export interface Verdict {
  allowed: boolean;
  egress: SideVerdict;
  ingress: SideVerdict;
  summary: string;
}

/** Per-plan lookup caches (a Plan is immutable once compiled). */
interface Index {
  pods: Map<string, PlanPod>;
  policies: Map<string, PlanPolicy>;
  peerIPs: WeakMap<PlanPeer, Set<string>>;
  namedIPs: WeakMap<PlanPort, Set<string>>;
  nodeOfAddress: Map<string, string>;
}

const indexes = new WeakMap<Plan, Index>();

function indexOf(plan: Plan): Index {
  let ix = indexes.get(plan);
  if (!ix) {
    ix = {
      pods: new Map(plan.pods.map((p) => [p.key, p])),
      policies: new Map(plan.policies.map((p) => [p.id, p])),
      peerIPs: new WeakMap(),
      namedIPs: new WeakMap(),
      nodeOfAddress: new Map(plan.nodes.flatMap((n) => n.addresses.map((a) => [a, n.name] as const))),
    };
    indexes.set(plan, ix);
  }
  return ix;
}

function peerMatches(ix: Index, peer: PlanPeer, ip: string): boolean {
  if (peer.kind === 'cidr') return ipInBlock(ip, peer.block);
  let s = ix.peerIPs.get(peer);
  if (!s) ix.peerIPs.set(peer, (s = new Set(peer.ips)));
  return s.has(ip);
}

function portMatches(ix: Index, p: PlanPort, pkt: Packet): boolean {
  if (p.protocol !== pkt.protocol) return false;
  if (p.port !== undefined && (pkt.port < p.port || pkt.port > (p.endPort ?? p.port))) return false;
  if (p.namedTargets) {
    let s = ix.namedIPs.get(p);
    if (!s) ix.namedIPs.set(p, (s = new Set(p.namedTargets.ips)));
    if (!s.has(pkt.dst)) return false;
  }
  return true;
}

/** The first peer/port combination of `rule` that admits the packet; `other` is the far side's IP. */
export function matchRule(plan: Plan, rule: PlanRule, pkt: Packet, other: string): RuleMatch | undefined {
  if (rule.invalid !== undefined) return undefined;
  const ix = indexOf(plan);
  let peerIndex: number | undefined;
  let peerText = 'any peer';
  if (rule.peers !== 'all') {
    const hit = rule.peers.find((p) => peerMatches(ix, p, other));
    if (!hit) return undefined;
    peerIndex = hit.peerIndex;
    peerText = hit.describe;
  }
  let portIndex: number | undefined;
  let portText = 'any port';
  if (rule.ports !== 'all') {
    const hit = rule.ports.find((p) => portMatches(ix, p, pkt));
    if (!hit) return undefined;
    portIndex = hit.portIndex;
    portText = hit.name ? `${hit.spec} (= ${hit.port}/${hit.protocol} on the destination)` : hit.spec;
  }
  const m: RuleMatch = { policy: `${rule.origin.namespace}/${rule.origin.policy}`, ruleId: rule.id, ruleIndex: rule.origin.ruleIndex, peerText, portText };
  if (peerIndex !== undefined) m.peerIndex = peerIndex;
  if (portIndex !== undefined) m.portIndex = portIndex;
  return m;
}

function side(plan: Plan, ix: Index, direction: Direction, pkt: Packet): SideVerdict {
  const selfIP = direction === 'egress' ? pkt.src : pkt.dst;
  const other = direction === 'egress' ? pkt.dst : pkt.src;
  const key = plan.podByIP.get(selfIP);
  if (key === undefined) return { direction, outcome: 'not-a-pod', policies: [] };
  const pod = ix.pods.get(key);
  if (!pod) return { direction, pod: key, outcome: 'not-local', policies: [] };
  const policies = direction === 'egress' ? pod.egressPolicies : pod.ingressPolicies;
  if (policies.length === 0) return { direction, pod: key, outcome: 'not-isolated', policies };
  for (const id of policies) {
    const pol = ix.policies.get(id)!;
    for (const rule of pol[direction]) {
      const m = matchRule(plan, rule, pkt, other);
      if (m) return { direction, pod: key, outcome: 'allowed', policies, allowedBy: m };
    }
  }
  return { direction, pod: key, outcome: 'denied', policies };
}

/**
 * Decides a new connection src → dst:port. Connections are stateful: only the first packet is
 * judged, replies always pass. A pod reaches itself; a pod's own node reaches it (kubelet probes).
 */
export function evaluate(plan: Plan, pkt: Packet): Verdict {
  const ix = indexOf(plan);
  const srcPod = plan.podByIP.get(pkt.src);
  const dstPod = plan.podByIP.get(pkt.dst);
  if (srcPod !== undefined && srcPod === dstPod) {
    const s: SideVerdict = { direction: 'egress', pod: srcPod, outcome: 'self', policies: [] };
    return { allowed: true, egress: s, ingress: { ...s, direction: 'ingress' }, summary: `${srcPod} reaches itself: always allowed` };
  }
  const egress = side(plan, ix, 'egress', pkt);
  let ingress = side(plan, ix, 'ingress', pkt);
  const dst = dstPod !== undefined ? ix.pods.get(dstPod) : undefined;
  const srcNode = ix.nodeOfAddress.get(pkt.src);
  if (dst && srcNode !== undefined && srcNode === dst.nodeName && ingress.outcome === 'denied') {
    ingress = { ...ingress, outcome: 'node-local' };
  }
  const ok = (s: SideVerdict) => s.outcome !== 'denied';
  const allowed = ok(egress) && ok(ingress);
  return { allowed, egress, ingress, summary: summarize(allowed, egress, ingress) };
}

function sideText(s: SideVerdict): string {
  const who = s.pod ?? (s.direction === 'egress' ? 'the source' : 'the destination');
  switch (s.outcome) {
    case 'not-a-pod':
      return `${s.direction}: ${who} is not a pod; no policy applies`;
    case 'not-local':
      return `${s.direction}: ${who} is not on this node; its own node enforces it`;
    case 'not-isolated':
      return `${s.direction}: ${who} is not isolated for ${s.direction} (no policy selects it)`;
    case 'self':
      return `${s.direction}: a pod reaches itself`;
    case 'node-local':
      return `${s.direction}: traffic from ${who}'s own node is always allowed`;
    case 'allowed':
      return `${s.direction}: allowed by rule ${s.allowedBy!.ruleIndex} of ${s.allowedBy!.policy} (${s.allowedBy!.peerText}, ${s.allowedBy!.portText})`;
    case 'denied':
      return `${s.direction}: ${who} is isolated by ${s.policies.join(', ')} and no rule allows it`;
  }
}

function summarize(allowed: boolean, e: SideVerdict, i: SideVerdict): string {
  return `${allowed ? 'ALLOWED' : 'DENIED'}: ${sideText(e)}; ${sideText(i)}`;
}

/** Whether an IP is valid text for a packet endpoint. */
export function isIPText(s: string): boolean {
  return parseIP(s) !== undefined;
}
