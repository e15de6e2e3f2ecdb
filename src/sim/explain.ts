// Explanations: the verdict of one connection and why, with the nearest miss when it is denied.
import type { Protocol } from '../cluster/model.js';
import { cidrContainsIP, mustCIDR, parseIP } from '../net/ip.js';
import type { Plan, PlanPeer, PlanPod, PlanRule } from '../policy/plan.js';
import { whySelectorMisses, describeSelector } from '../policy/selector.js';
import { evaluate, matchRule, type Packet, type SideVerdict, type Verdict } from './evaluate.js';
import { pairAddresses } from './matrix.js';

export interface Endpoint {
  ip: string;
  /** `ns/name` when the endpoint is a pod. */
  pod?: string;
  label: string;
}

export class EndpointError extends Error {}

/** Resolves `ns/pod` or an IP against the plan. */
export function resolveEndpoint(plan: Plan, text: string, role: 'from' | 'to'): Endpoint {
  if (parseIP(text)) {
    const pod = plan.podByIP.get(text);
    return pod ? { ip: text, pod, label: `${pod} (${text})` } : { ip: text, label: text };
  }
  if (!/^[^/\s]+\/[^/\s]+$/.test(text)) throw new EndpointError(`--${role} ${JSON.stringify(text)}: expected namespace/pod or an IP address`);
  const pod = plan.pods.find((p) => p.key === text);
  if (!pod) throw new EndpointError(`--${role} ${JSON.stringify(text)}: no such pod with an IP (hostNetwork, finished and IP-less pods take no part in policy)`);
  return { ip: pod.ips[0]!, pod: pod.key, label: text };
}

export interface RuleReport {
  policy: string;
  ruleIndex: number;
  matched: boolean;
  /** How many of (peer, port) failed: 0 = matched, 1 = near miss, 2 = far. */
  misses: number;
  text: string;
}

export interface SideReport {
  verdict: SideVerdict;
  text: string;
  rules: RuleReport[];
  nearest?: RuleReport;
}

export interface Explanation {
  from: Endpoint;
  to: Endpoint;
  protocol: Protocol;
  port: number;
  verdict: Verdict;
  egress: SideReport;
  ingress: SideReport;
}

export function explain(plan: Plan, from: Endpoint, to: Endpoint, protocol: Protocol, port: number): Explanation {
  let src = from.ip;
  let dst = to.ip;
  // Two pods: talk over a common family.
  const fp = from.pod ? plan.pods.find((p) => p.key === from.pod) : undefined;
  const tp = to.pod ? plan.pods.find((p) => p.key === to.pod) : undefined;
  if (fp && tp) {
    const pair = pairAddresses(fp, tp);
    if (pair) [src, dst] = pair;
  }
  const pkt: Packet = { src, dst, protocol, port };
  const verdict = evaluate(plan, pkt);
  return {
    from,
    to,
    protocol,
    port,
    verdict,
    egress: sideReport(plan, verdict.egress, pkt, from, to),
    ingress: sideReport(plan, verdict.ingress, pkt, from, to),
  };
}

function sideReport(plan: Plan, v: SideVerdict, pkt: Packet, from: Endpoint, to: Endpoint): SideReport {
  const self = v.direction === 'egress' ? from : to;
  const other = v.direction === 'egress' ? to : from;
  const otherIP = v.direction === 'egress' ? pkt.dst : pkt.src;
  const head = `${v.direction} of ${self.label}`;
  switch (v.outcome) {
    case 'not-a-pod':
      return { verdict: v, rules: [], text: `${head}: not a pod, no policy applies` };
    case 'not-local':
      return { verdict: v, rules: [], text: `${head}: enforced on its own node` };
    case 'not-isolated':
      return { verdict: v, rules: [], text: `${head}: not isolated (no policy selects it for ${v.direction}) → allowed` };
    case 'self':
      return { verdict: v, rules: [], text: `${head}: a pod always reaches itself` };
    case 'node-local':
      return { verdict: v, rules: [], text: `${head}: traffic from the pod's own node is always allowed` };
    default:
      break;
  }
  const rules: RuleReport[] = [];
  for (const id of v.policies) {
    const pol = plan.policies.find((p) => p.id === id)!;
    const list = pol[v.direction];
    if (list.length === 0) {
      rules.push({ policy: id, ruleIndex: -1, matched: false, misses: 3, text: `${id} has no ${v.direction} rules: it only isolates` });
      continue;
    }
    for (const rule of list) rules.push(ruleReport(plan, rule, pkt, otherIP, other));
  }
  if (v.outcome === 'allowed') {
    const m = v.allowedBy!;
    return {
      verdict: v,
      rules,
      text: `${head}: isolated by ${v.policies.join(', ')}; allowed by rule ${m.ruleIndex} of ${m.policy} (${v.direction === 'egress' ? 'to' : 'from'} ${m.peerText}${m.peerIndex !== undefined ? ` [peer ${m.peerIndex}]` : ''}, ${m.portText}${m.portIndex !== undefined ? ` [port ${m.portIndex}]` : ''})`,
    };
  }
  const nearest = [...rules].sort((a, b) => a.misses - b.misses)[0];
  const r: SideReport = { verdict: v, rules, text: `${head}: isolated by ${v.policies.join(', ')} and no rule allows it → denied` };
  if (nearest && nearest.misses < 3) r.nearest = nearest;
  return r;
}

function ruleReport(plan: Plan, rule: PlanRule, pkt: Packet, otherIP: string, other: Endpoint): RuleReport {
  const policy = `${rule.origin.namespace}/${rule.origin.policy}`;
  const name = `rule ${rule.origin.ruleIndex} of ${policy}`;
  if (rule.invalid !== undefined) return { policy, ruleIndex: rule.origin.ruleIndex, matched: false, misses: 3, text: `${name} is invalid and grants nothing (${rule.invalid})` };
  const m = matchRule(plan, rule, pkt, otherIP);
  if (m) return { policy, ruleIndex: rule.origin.ruleIndex, matched: true, misses: 0, text: `${name} matches` };
  const peerOk = rule.peers === 'all' || rule.peers.some((p) => matchRule(plan, { ...rule, peers: [p], ports: 'all' }, pkt, otherIP));
  const portOk = rule.ports === 'all' || matchRule(plan, { ...rule, peers: 'all' }, pkt, otherIP) !== undefined;
  const portsText = rule.ports === 'all' ? 'all ports' : [...new Set(rule.ports.map((p) => p.spec))].join(', ');
  const reasons: string[] = [];
  if (!peerOk && rule.peers !== 'all') {
    reasons.push(rule.peers.length === 0 ? 'it has no peers that exist' : rule.peers.map((p) => peerMiss(plan, p, otherIP, other)).join('; and '));
  }
  if (!portOk) reasons.push(portMiss(rule, pkt, other));
  const misses = (peerOk ? 0 : 1) + (portOk ? 0 : 1);
  const allowsText = rule.peers === 'all' ? `allows ${portsText} from anywhere` : `allows ${portsText}`;
  return { policy, ruleIndex: rule.origin.ruleIndex, matched: false, misses, text: `${name} ${allowsText} but ${reasons.join(', and ')}` };
}

function peerMiss(plan: Plan, peer: PlanPeer, otherIP: string, other: Endpoint): string {
  if (peer.kind === 'cidr') {
    const ip = parseIP(otherIP);
    if (!ip || ip.family !== peer.family) return `${otherIP} is not ${peer.family === 'ipv4' ? 'IPv4' : 'IPv6'} (${peer.describe})`;
    if (!cidrContainsIP(mustCIDR(peer.block.cidr), ip)) return `${otherIP} is not in ${peer.block.cidr}`;
    const ex = peer.block.except.find((e) => cidrContainsIP(mustCIDR(e), ip));
    return `${otherIP} is in the except ${ex} of ${peer.block.cidr}`;
  }
  if (!other.pod) return `${other.label} is not a pod, and ${peer.describe} matches pods only`;
  const pod: PlanPod | undefined = plan.pods.find((p) => p.key === other.pod);
  const [ns] = other.pod.split('/') as [string];
  if (peer.namespaceSelector) {
    const why = whySelectorMisses(peer.namespaceSelector, plan.namespaceLabels[ns] ?? {});
    if (why) return `${other.pod}'s namespace ${ns} does not match namespaceSelector ${describeSelector(peer.namespaceSelector)}: it ${why}`;
  } else if (ns !== peer.policyNamespace) {
    return `${other.pod} is in namespace ${ns}, and a peer without namespaceSelector only matches pods in ${peer.policyNamespace}`;
  }
  if (peer.podSelector && pod) {
    const why = whySelectorMisses(peer.podSelector, pod.labels);
    if (why) return `${other.pod} does not match podSelector ${describeSelector(peer.podSelector)}: it ${why}`;
  }
  return `${other.pod} is not among the pods of ${peer.describe}`;
}

function portMiss(rule: PlanRule, pkt: Packet, other: Endpoint): string {
  if (rule.ports === 'all') return '';
  const named = rule.ports.filter((p) => p.name);
  const same = rule.ports.filter((p) => p.protocol === pkt.protocol);
  if (same.length === 0) return `the connection is ${pkt.port}/${pkt.protocol} and the rule has no ${pkt.protocol} ports`;
  const dst = other.pod ?? pkt.dst;
  if (named.length > 0 && named.some((p) => p.protocol === pkt.protocol && (p.port === undefined || (pkt.port >= p.port && pkt.port <= (p.endPort ?? p.port))))) {
    return `the named port ${named[0]!.name}/${pkt.protocol} does not resolve to ${pkt.port} on the destination ${dst}`;
  }
  return `${pkt.port}/${pkt.protocol} is not among them`;
}

export function formatExplanation(x: Explanation): string {
  const lines: string[] = [];
  lines.push(`${x.verdict.allowed ? 'ALLOWED' : 'DENIED'}  ${x.from.label} → ${x.to.label}  ${x.port}/${x.protocol}`);
  for (const s of [x.egress, x.ingress]) {
    lines.push(`  ${s.text}`);
    if (s.verdict.outcome === 'denied') {
      for (const r of s.rules) lines.push(`    - ${r.text}`);
      if (s.nearest && s.rules.length > 1) lines.push(`    nearest miss: ${s.nearest.text}`);
    }
  }
  return lines.join('\n');
}
