// evaluate(plan, packet) → verdict + reason, reading the Plan and nothing else.
//
// Two ways in: a packet between addresses (what the kernel sees; the dataplane's differential tests
// hold the simulator to it), and a flow between endpoints (matrix, explain, diff, test), where an
// endpoint may have no address (a workload, a planned pod). An IP-less endpoint matches pod peers by
// identity and ipBlock peers through the pod network: a block holding all of it matches, one holding
// none does not, one holding part leaves the verdict open — `allowed: null`, never a guess.
import type { Direction, Family, Protocol } from '../cluster/model.js';
import { familyOf } from '../cluster/model.js';
import { blockCoverage, formatCIDR, ipInBlock, mustCIDR, parseIP, type Cidr } from '../net/ip.js';
import type { CnpRuleOrigin, Plan, PlanClusterPolicy, PlanCnpRule, PlanPeer, PlanPod, PlanPolicy, PlanPort, PlanRule } from '../policy/plan.js';
import { DEFAULT_POD_NETWORK, describeCnpRule } from '../policy/plan.js';
import { asEnforced } from '../policy/audit.js';

export interface Packet {
  src: string;
  dst: string;
  protocol: Protocol;
  port: number;
}

/** One end of a flow: an address, an endpoint (plan key), or both. At least one is set. */
export interface FlowEnd {
  ip?: string;
  endpoint?: string;
}

/** A new connection between two ends, in one address family. */
export interface Flow {
  from: FlowEnd;
  to: FlowEnd;
  family: Family;
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
  /** Set when the match depends on an address the input does not give: why. */
  uncertain?: string;
}

/** A ClusterNetworkPolicy rule that matched a flow. */
export interface CnpRuleMatch {
  origin: CnpRuleOrigin;
  ruleId: string;
  /** The action enforced (a Pass read fail closed is a Deny). */
  action: CnpRuleOrigin['action'];
  peerIndex?: number;
  portIndex?: number;
  peerText: string;
  portText: string;
  /** Set when the rule is enforced fail closed: why. */
  failClosed?: string;
  /** Set when the match depends on an address the input does not give: why. */
  uncertain?: string;
}

export interface SideVerdict {
  direction: Direction;
  /** The endpoint this side is about (the source for egress, the destination for ingress). */
  pod?: string;
  /** Why this side does not apply or what decided it. */
  outcome: 'not-a-pod' | 'not-local' | 'not-isolated' | 'allowed' | 'denied' | 'self' | 'node-local' | 'depends' | 'same-ip';
  /** Policies isolating the pod for this direction. */
  policies: string[];
  /** Audited policies selecting the pod for this direction (they isolate nobody until enforced). */
  audited?: string[];
  allowedBy?: RuleMatch;
  /** outcome `depends`: the first rule that would allow it for some addresses of the pod network. */
  maybeBy?: RuleMatch;
  /**
   * A ClusterNetworkPolicy rule that decided this side (decidedIn Admin or Baseline: Accept →
   * allowed, Deny → denied), or the Admin rule whose Pass handed it to NetworkPolicy, or (outcome
   * `depends`) the first one that matches only for some addresses of the pod network.
   */
  clusterRule?: CnpRuleMatch;
  /** Which tier decided: Admin or Baseline (clusterRule), NetworkPolicy; absent when none did. */
  decidedIn?: 'Admin' | 'NetworkPolicy' | 'Baseline';
}

/** The verdict once every audited policy is enforced (policy/audit.ts), when any of them applies. */
export interface AuditVerdict {
  /** Once enforced (null: depends on an address the input does not give). */
  allowed: boolean | null;
  egress: SideVerdict;
  ingress: SideVerdict;
  /** What enforcing the audited policies would change for this connection. */
  change: 'would-deny' | 'would-allow' | 'none';
  /** The audited policies behind the change: those that would isolate a denying side, or the one whose rule would allow. */
  policies: string[];
}

export interface Verdict {
  /** What is enforced now (audited policies isolate nobody); null: the verdict depends on an address the input does not give. */
  allowed: boolean | null;
  egress: SideVerdict;
  ingress: SideVerdict;
  summary: string;
  /** Present when an audited policy selects the source (egress) or the destination (ingress). */
  audit?: AuditVerdict;
}

/** Per-plan lookup caches (a Plan is immutable once compiled). */
interface Index {
  pods: Map<string, PlanPod>;
  policies: Map<string, PlanPolicy>;
  clusterPolicies: Map<string, PlanClusterPolicy>;
  peerIPs: WeakMap<PlanPeer, Set<string>>;
  peerKeys: WeakMap<PlanPeer, Set<string>>;
  namedIPs: WeakMap<PlanPort, Set<string>>;
  namedKeys: WeakMap<PlanPort, Set<string>>;
  /** ipBlock peer → its relation to the pod network, per family. */
  coverage: WeakMap<PlanPeer, 'all' | 'none' | 'part'>;
  podNetwork: Cidr[];
  /** The pod network's families, IPv4 first. */
  families: Family[];
  nodeOfAddress: Map<string, string>;
}

const indexes = new WeakMap<Plan, Index>();

function indexOf(plan: Plan): Index {
  let ix = indexes.get(plan);
  if (!ix) {
    ix = {
      pods: new Map(plan.pods.map((p) => [p.key, p])),
      policies: new Map(plan.policies.map((p) => [p.id, p])),
      clusterPolicies: new Map((plan.clusterPolicies ?? []).map((p) => [p.id, p])),
      peerIPs: new WeakMap(),
      peerKeys: new WeakMap(),
      namedIPs: new WeakMap(),
      namedKeys: new WeakMap(),
      coverage: new WeakMap(),
      podNetwork: podNetworkOf(plan),
      families: [],
      nodeOfAddress: new Map(plan.nodes.flatMap((n) => n.addresses.map((a) => [a, n.name] as const))),
    };
    const fams = new Set(ix.podNetwork.map((c) => c.family));
    ix.families = (['ipv4', 'ipv6'] as const).filter((f) => fams.has(f));
    indexes.set(plan, ix);
  }
  return ix;
}

export function podNetworkOf(plan: Plan): Cidr[] {
  return (plan.podNetwork ?? DEFAULT_POD_NETWORK).map(mustCIDR);
}

/** The families the pod network has, IPv4 first (the order IP-less endpoints are paired in). */
export function podNetworkFamilies(plan: Plan): readonly Family[] {
  return indexOf(plan).families;
}

function podNetworkText(ix: Index, family: Family): string {
  return ix.podNetwork
    .filter((c) => c.family === family)
    .map(formatCIDR)
    .join(', ');
}

/** Whether a peer holds the other end: true, false, or null when it depends on an unknown address. */
function peerMatches(ix: Index, peer: PlanPeer, other: FlowEnd, family: Family): boolean | null {
  if (peer.kind === 'cidr') {
    if (other.ip !== undefined) return ipInBlock(other.ip, peer.block);
    if (other.endpoint === undefined || peer.family !== family) return false;
    let c = ix.coverage.get(peer);
    if (c === undefined) ix.coverage.set(peer, (c = blockCoverage(peer.block, ix.podNetwork)));
    return c === 'all' ? true : c === 'none' ? false : null;
  }
  if (other.ip !== undefined) {
    let s = ix.peerIPs.get(peer);
    if (!s) ix.peerIPs.set(peer, (s = new Set(peer.ips)));
    return s.has(other.ip);
  }
  if (other.endpoint === undefined) return false;
  let s = ix.peerKeys.get(peer);
  if (!s) ix.peerKeys.set(peer, (s = new Set(peer.pods)));
  return s.has(other.endpoint);
}

function portMatches(ix: Index, p: PlanPort, flow: Flow): boolean {
  if (p.protocol !== flow.protocol) return false;
  if (p.port !== undefined && (flow.port < p.port || flow.port > (p.endPort ?? p.port))) return false;
  if (p.namedTargets) {
    if (flow.to.ip !== undefined) {
      let s = ix.namedIPs.get(p);
      if (!s) ix.namedIPs.set(p, (s = new Set(p.namedTargets.ips)));
      if (!s.has(flow.to.ip)) return false;
    } else {
      let s = ix.namedKeys.get(p);
      if (!s) ix.namedKeys.set(p, (s = new Set(p.namedTargets.pods)));
      if (flow.to.endpoint === undefined || !s.has(flow.to.endpoint)) return false;
    }
  }
  return true;
}

function portText(p: PlanPort): string {
  return p.name ? `${p.spec} (= ${p.port}/${p.protocol} on the destination)` : p.spec;
}

/**
 * The first peer/port combination of `rule` that admits the flow — a certain one before one that
 * depends on an address (then `uncertain` says why). `other` is the far side.
 */
export function matchFlowRule(plan: Plan, rule: PlanRule, flow: Flow, other: FlowEnd): RuleMatch | undefined {
  if (rule.invalid !== undefined) return undefined;
  const m = matchFlowPeersPorts(plan, rule, flow, other);
  return m ? { policy: `${rule.origin.namespace}/${rule.origin.policy}`, ruleId: rule.id, ruleIndex: rule.origin.ruleIndex, ...m } : undefined;
}

/** The same for a ClusterNetworkPolicy rule. */
export function matchFlowCnpRule(plan: Plan, rule: PlanCnpRule, flow: Flow, other: FlowEnd): CnpRuleMatch | undefined {
  const m = matchFlowPeersPorts(plan, rule, flow, other);
  if (!m) return undefined;
  const out: CnpRuleMatch = { origin: rule.origin, ruleId: rule.id, action: rule.action, ...m };
  if (rule.failClosed !== undefined) out.failClosed = rule.failClosed;
  return out;
}

type PeersPortsMatch = Pick<RuleMatch, 'peerIndex' | 'portIndex' | 'peerText' | 'portText' | 'uncertain'>;

/** The first peer/port combination of a rule's peers and ports (either kind of rule) that admits the flow. */
export function matchFlowPeersPorts(plan: Plan, rule: Pick<PlanRule, 'peers' | 'ports'>, flow: Flow, other: FlowEnd): PeersPortsMatch | undefined {
  const ix = indexOf(plan);
  let portIndex: number | undefined;
  let ptext = 'any port';
  if (rule.ports !== 'all') {
    const hit = rule.ports.find((p) => portMatches(ix, p, flow));
    if (!hit) return undefined;
    portIndex = hit.portIndex;
    ptext = portText(hit);
  }
  let peerIndex: number | undefined;
  let peerText = 'any peer';
  let uncertain: string | undefined;
  if (rule.peers !== 'all') {
    let maybe: PlanPeer | undefined;
    let hit: PlanPeer | undefined;
    for (const p of rule.peers) {
      const m = peerMatches(ix, p, other, flow.family);
      if (m === true) {
        hit = p;
        break;
      }
      if (m === null) maybe ??= p;
    }
    if (!hit && !maybe) return undefined;
    const chosen = (hit ?? maybe)!;
    peerIndex = chosen.peerIndex;
    peerText = chosen.describe;
    if (!hit) uncertain = partialBlockText(ix, chosen, other, flow.family);
  }
  const m: PeersPortsMatch = { peerText, portText: ptext };
  if (peerIndex !== undefined) m.peerIndex = peerIndex;
  if (portIndex !== undefined) m.portIndex = portIndex;
  if (uncertain !== undefined) m.uncertain = uncertain;
  return m;
}

function partialBlockText(ix: Index, peer: PlanPeer, other: FlowEnd, family: Family): string {
  const block = peer.kind === 'cidr' ? `${peer.block.cidr}${peer.block.except.length ? ` except ${peer.block.except.join(', ')}` : ''}` : peer.describe;
  return `ipBlock ${block} holds only part of the pod network (${podNetworkText(ix, family)}): whether it holds ${other.endpoint ?? 'the endpoint'} depends on the IP its pod gets`;
}

/** The first peer/port combination of `rule` that admits the packet; `other` is the far side's IP. */
export function matchRule(plan: Plan, rule: PlanRule, pkt: Packet, other: string): RuleMatch | undefined {
  const flow: Flow = { from: { ip: pkt.src }, to: { ip: pkt.dst }, family: familyOf(other), protocol: pkt.protocol, port: pkt.port };
  return matchFlowRule(plan, rule, flow, { ip: other });
}

/** The same for a packet between addresses. */
export function matchCnpRule(plan: Plan, rule: PlanCnpRule, pkt: Packet, other: string): CnpRuleMatch | undefined {
  const flow: Flow = { from: { ip: pkt.src }, to: { ip: pkt.dst }, family: familyOf(other), protocol: pkt.protocol, port: pkt.port };
  return matchFlowCnpRule(plan, rule, flow, { ip: other });
}

/**
 * One ClusterNetworkPolicy tier for one side: its policies in order, each rule in order; the first
 * rule that matches for certain decides (Accept, Deny) or ends the tier (Pass). Rules before it
 * that match only for some addresses of the pod network (an IP-less endpoint against a CIDR) are
 * returned as `maybe`: each of them may be the one that applies instead.
 */
export function evaluateTierFlow(plan: Plan, ids: readonly string[], direction: Direction, flow: Flow, other: FlowEnd): { match?: CnpRuleMatch; maybe: CnpRuleMatch[] } {
  const ix = indexOf(plan);
  const maybe: CnpRuleMatch[] = [];
  for (const id of ids) {
    const cp = ix.clusterPolicies.get(id);
    if (!cp) continue;
    for (const rule of cp[direction]) {
      const m = matchFlowCnpRule(plan, rule, flow, other);
      if (!m) continue;
      if (m.uncertain === undefined) return { match: m, maybe };
      maybe.push(m);
    }
  }
  return { maybe };
}

/**
 * One side of a flow through the tiers: Admin (first match: Accept / Deny decide, Pass hands on),
 * NetworkPolicy (when some policy isolates the pod for this direction, its rules decide), Baseline
 * (only when none does; first match), else allowed. A CNP rule that matches only for some addresses
 * opens a branch: when the branches disagree, the side depends on the address.
 */
function side(plan: Plan, ix: Index, direction: Direction, flow: Flow): SideVerdict {
  const self = direction === 'egress' ? flow.from : flow.to;
  const other = direction === 'egress' ? flow.to : flow.from;
  const key = self.endpoint;
  if (key === undefined) return { direction, outcome: 'not-a-pod', policies: [] };
  const pod = ix.pods.get(key);
  if (!pod) return { direction, pod: key, outcome: 'not-local', policies: [] };
  const policies = direction === 'egress' ? pod.egressPolicies : pod.ingressPolicies;
  const audited = direction === 'egress' ? pod.egressAudit : pod.ingressAudit;
  const extra = audited ? { audited } : {};
  if (!pod.tiers) return networkPolicySide(plan, ix, direction, flow, key, policies, other, extra);
  const tiers = pod.tiers;
  /** A possible result, and the uncertain CNP rule whose match leads to it (none: the certain path). */
  type Branch = { v: SideVerdict; via?: CnpRuleMatch };
  const decided = (m: CnpRuleMatch, tier: 'Admin' | 'Baseline'): SideVerdict => ({ direction, pod: key, outcome: m.action === 'Accept' ? 'allowed' : 'denied', policies, ...extra, clusterRule: m, decidedIn: tier });
  const carry = (m: CnpRuleMatch | undefined) => (m ? { clusterRule: m } : {});
  /** A tier's possible results: each uncertain match first, then the certain path (a decision, or `next`). */
  const tierStage = (tier: 'Admin' | 'Baseline', ids: readonly string[], next: (passedBy?: CnpRuleMatch) => Branch[]): Branch[] => {
    const t = evaluateTierFlow(plan, ids, direction, flow, other);
    const after = (m: CnpRuleMatch | undefined): Branch[] => (m && m.action !== 'Pass' ? [{ v: decided(m, tier) }] : next(m));
    return [...t.maybe.flatMap((m) => after(m).map((b) => ({ v: b.v, via: b.via ?? m }))), ...after(t.match)];
  };
  const branches = tierStage('Admin', tiers.admin[direction], (adminPass) => {
    // NetworkPolicy decides where it isolates the pod; Baseline only where it does not.
    if (policies.length > 0) return [{ v: { ...networkPolicySide(plan, ix, direction, flow, key, policies, other, extra), ...carry(adminPass) } }];
    return tierStage('Baseline', tiers.baseline[direction], (baselinePass) => [{ v: { direction, pod: key, outcome: 'not-isolated', policies, ...extra, ...carry(adminPass ?? baselinePass) } }]);
  });
  // The last branch is the path taken when no uncertain rule applies: report it when all agree.
  const certain = branches[branches.length - 1]!.v;
  const cls = (v: SideVerdict) => (v.outcome === 'denied' ? 'denied' : v.outcome === 'depends' ? 'depends' : 'allowed');
  if (branches.every((b) => cls(b.v) === cls(certain))) return certain;
  const v: SideVerdict = { direction, pod: key, outcome: 'depends', policies, ...extra };
  const via = branches.find((b) => b.via)?.via;
  if (via) v.clusterRule = via;
  const np = branches.find((b) => b.v.outcome === 'depends' && b.v.maybeBy);
  if (np?.v.maybeBy) v.maybeBy = np.v.maybeBy;
  return v;
}

/** The NetworkPolicy stage of one side (no ClusterNetworkPolicy involved). */
function networkPolicySide(plan: Plan, ix: Index, direction: Direction, flow: Flow, key: string, policies: string[], other: FlowEnd, extra: Pick<SideVerdict, 'audited'>): SideVerdict {
  const base: SideVerdict = { direction, pod: key, outcome: 'not-isolated', policies, ...extra };
  if (policies.length === 0) return base;
  let maybe: RuleMatch | undefined;
  for (const id of policies) {
    const pol = ix.policies.get(id)!;
    for (const rule of pol[direction]) {
      const m = matchFlowRule(plan, rule, flow, other);
      if (!m) continue;
      if (m.uncertain === undefined) return { ...base, outcome: 'allowed', allowedBy: m, decidedIn: 'NetworkPolicy' };
      maybe ??= m;
    }
  }
  if (maybe) return { ...base, outcome: 'depends', maybeBy: maybe, decidedIn: 'NetworkPolicy' };
  return { ...base, outcome: 'denied', decidedIn: 'NetworkPolicy' };
}

/**
 * One side of decideFlow on its own (the matrix decides each side once per pair of classes). The
 * caller handles what decideFlow decides across both sides: self, a shared IP, a source on the
 * destination's node; then combineSides gives the cell.
 */
export function decideSide(plan: Plan, direction: Direction, flow: Flow): SideVerdict {
  return side(plan, indexOf(plan), direction, flow);
}

/** A verdict without its summary text (what the matrix needs, millions of times). */
export type Decision = Omit<Verdict, 'summary'>;

/**
 * Decides a new connection between two flow ends. Connections are stateful: only the first packet
 * is judged, replies always pass. An endpoint reaches itself; a pod's own node reaches it (kubelet
 * probes). Two distinct endpoints with one address cannot be told apart: no verdict.
 */
export function decideFlow(plan: Plan, flow: Flow): Decision {
  const ix = indexOf(plan);
  const src = flow.from.endpoint;
  const dst = flow.to.endpoint;
  if (src !== undefined && src === dst) {
    const s: SideVerdict = { direction: 'egress', pod: src, outcome: 'self', policies: [] };
    return { allowed: true, egress: s, ingress: { ...s, direction: 'ingress' } };
  }
  if (src !== undefined && dst !== undefined && flow.from.ip !== undefined && flow.from.ip === flow.to.ip) {
    return { allowed: null, egress: { direction: 'egress', pod: src, outcome: 'same-ip', policies: [] }, ingress: { direction: 'ingress', pod: dst, outcome: 'same-ip', policies: [] } };
  }
  const egress = side(plan, ix, 'egress', flow);
  let ingress = side(plan, ix, 'ingress', flow);
  const dstPod = dst !== undefined ? ix.pods.get(dst) : undefined;
  const srcNode = flow.from.ip !== undefined ? ix.nodeOfAddress.get(flow.from.ip) : undefined;
  if (dstPod && srcNode !== undefined && srcNode === dstPod.nodeName && (ingress.outcome === 'denied' || ingress.outcome === 'depends')) {
    ingress = { ...ingress, outcome: 'node-local' };
    delete ingress.maybeBy;
    delete ingress.clusterRule;
    delete ingress.decidedIn;
  }
  return { allowed: combineSides(egress, ingress), egress, ingress };
}

/** decideFlow with the one-line summary. */
export function evaluateFlow(plan: Plan, flow: Flow): Verdict {
  const d = decideFlow(plan, flow);
  if (d.egress.outcome === 'self') return { ...d, summary: `${d.egress.pod} reaches itself: always allowed` };
  if (d.egress.outcome === 'same-ip') {
    return { ...d, summary: `UNDECIDED: ${d.egress.pod} and ${d.ingress.pod} have the same IP ${flow.from.ip}: a packet to it never leaves ${d.egress.pod}, and policy cannot tell them apart (fix the input; podwall lint reports it)` };
  }
  const v: Verdict = { ...d, summary: summarize(d.allowed, d.egress, d.ingress) };
  if (d.egress.audited || d.ingress.audited) {
    v.audit = auditVerdict(v, evaluateFlow(asEnforced(plan), flow));
    if (v.audit.change !== 'none') v.summary += `; ${auditText(v.audit)}`;
  }
  return v;
}

function auditVerdict(now: Verdict, then: Verdict): AuditVerdict {
  const sides = (['egress', 'ingress'] as const).map((d) => [now[d], then[d]] as const);
  let change: AuditVerdict['change'] = 'none';
  const policies: string[] = [];
  if (now.allowed !== false && then.allowed === false) {
    change = 'would-deny';
    // A side that now denies was not isolated before: every policy isolating it then is an audited one.
    for (const [a, b] of sides) if (a.outcome !== 'denied' && b.outcome === 'denied') policies.push(...b.policies);
  } else if (now.allowed === false && then.allowed === true) {
    change = 'would-allow';
    for (const [a, b] of sides) if (a.outcome === 'denied' && b.allowedBy) policies.push(b.allowedBy.policy);
  }
  return { allowed: then.allowed, egress: then.egress, ingress: then.ingress, change, policies: [...new Set(policies)] };
}

/** `x/new would deny it once enforced` / `x/new would allow it once enforced`. */
export function auditText(a: AuditVerdict): string {
  const who = a.policies.length > 0 ? a.policies.join(' and ') : 'the audited policies';
  if (a.change === 'would-deny') return `${who} would deny it once enforced`;
  if (a.change === 'would-allow') return `${who} would allow it once enforced`;
  return 'the audited policies would not change it';
}

/** Both sides must let it through: any denial denies; otherwise an open side leaves it open. */
export function combineSides(e: Pick<SideVerdict, 'outcome'>, i: Pick<SideVerdict, 'outcome'>): boolean | null {
  if (e.outcome === 'denied' || i.outcome === 'denied') return false;
  if (e.outcome === 'depends' || i.outcome === 'depends') return null;
  return true;
}

/** A verdict between two addresses: always decided. */
export interface PacketVerdict extends Verdict {
  allowed: boolean;
}

/**
 * Decides a new connection src → dst:port between addresses, as the kernel sees it: each address
 * stands for the pod holding it (the first by key when several claim one).
 */
export function evaluate(plan: Plan, pkt: Packet): PacketVerdict {
  const from: FlowEnd = { ip: pkt.src };
  const to: FlowEnd = { ip: pkt.dst };
  const s = plan.podByIP.get(pkt.src);
  const d = plan.podByIP.get(pkt.dst);
  if (s !== undefined) from.endpoint = s;
  if (d !== undefined) to.endpoint = d;
  // Both addresses known: every peer match is decided, so is the verdict.
  return evaluateFlow(plan, { from, to, family: familyOf(pkt.dst), protocol: pkt.protocol, port: pkt.port }) as PacketVerdict;
}

/**
 * The flow between two endpoints of the plan, in one family: two pods talk over the source's first
 * family the destination has; an IP-less endpoint takes any family of the pod network (IPv4 first).
 * undefined when they share no family.
 */
export function flowBetween(plan: Plan, from: PlanPod, to: PlanPod, protocol: Protocol, port: number): Flow | undefined {
  const fams = indexOf(plan).families;
  const fi = from.ips;
  const ti = to.ips;
  // Plain loops: the matrix asks this for every pair of endpoint classes.
  if (fi.length > 0 && ti.length > 0) {
    for (const s of fi) {
      const f = familyOf(s);
      for (const d of ti) if (familyOf(d) === f) return { from: { ip: s, endpoint: from.key }, to: { ip: d, endpoint: to.key }, family: f, protocol, port };
    }
    return undefined;
  }
  if (fi.length === 0 && ti.length === 0) return fams.length > 0 ? { from: { endpoint: from.key }, to: { endpoint: to.key }, family: fams[0]!, protocol, port } : undefined;
  if (fi.length === 0) {
    for (const f of fams) for (const d of ti) if (familyOf(d) === f) return { from: { endpoint: from.key }, to: { ip: d, endpoint: to.key }, family: f, protocol, port };
    return undefined;
  }
  for (const s of fi) {
    const f = familyOf(s);
    if (fams.includes(f)) return { from: { ip: s, endpoint: from.key }, to: { endpoint: to.key }, family: f, protocol, port };
  }
  return undefined;
}

function sideText(s: SideVerdict): string {
  const who = s.pod ?? (s.direction === 'egress' ? 'the source' : 'the destination');
  switch (s.outcome) {
    case 'not-a-pod':
      return `${s.direction}: ${who} is not a pod; no policy applies`;
    case 'not-local':
      return `${s.direction}: ${who} is not on this node; its own node enforces it`;
    case 'not-isolated':
      return s.audited
        ? `${s.direction}: ${who} is not isolated for ${s.direction} (only audited policies select it: ${s.audited.join(', ')})`
        : `${s.direction}: ${who} is not isolated for ${s.direction} (no policy selects it)`;
    case 'self':
      return `${s.direction}: a pod reaches itself`;
    case 'same-ip':
      return `${s.direction}: ${who} shares its IP with the other end`;
    case 'node-local':
      return `${s.direction}: traffic from ${who}'s own node is always allowed`;
    case 'allowed':
      if (s.decidedIn === 'Admin' || s.decidedIn === 'Baseline') return `${s.direction}: allowed by ${cnpMatchText(s.clusterRule!)}`;
      return `${s.direction}: ${passText(s)}allowed by rule ${s.allowedBy!.ruleIndex} of ${s.allowedBy!.policy} (${s.allowedBy!.peerText}, ${s.allowedBy!.portText})`;
    case 'depends':
      if (!s.maybeBy) return `${s.direction}: ${who} depends on its IP: ${describeCnpRule(s.clusterRule!.origin)} matches only some addresses (${s.clusterRule!.uncertain})`;
      return `${s.direction}: ${passText(s)}${who} is isolated by ${s.policies.join(', ')}; only rule ${s.maybeBy!.ruleIndex} of ${s.maybeBy!.policy} may allow it: ${s.maybeBy!.uncertain}`;
    case 'denied':
      if (s.decidedIn === 'Admin' || s.decidedIn === 'Baseline') return `${s.direction}: denied by ${cnpMatchText(s.clusterRule!)}`;
      return `${s.direction}: ${passText(s)}${who} is isolated by ${s.policies.join(', ')} and no rule allows it`;
  }
}

/** `rule 'x' (Deny) of ClusterNetworkPolicy g, Admin tier, priority 10 (from all pods in ..., 53/UDP)` */
export function cnpMatchText(m: CnpRuleMatch): string {
  return `${describeCnpRule(m.origin)} (${m.origin.direction === 'ingress' ? 'from' : 'to'} ${m.peerText}, ${m.portText})${m.failClosed ? ` [${m.failClosed}]` : ''}`;
}

function passText(s: SideVerdict): string {
  return s.clusterRule?.action === 'Pass' ? `passed to NetworkPolicy by ${describeCnpRule(s.clusterRule.origin)}; ` : '';
}

function summarize(allowed: boolean | null, e: SideVerdict, i: SideVerdict): string {
  return `${allowed === null ? 'DEPENDS ON IP' : allowed ? 'ALLOWED' : 'DENIED'}: ${sideText(e)}; ${sideText(i)}`;
}

/** Whether an IP is valid text for a packet endpoint. */
export function isIPText(s: string): boolean {
  return parseIP(s) !== undefined;
}
