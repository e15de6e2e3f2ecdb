// Explanations: the verdict of one connection and why, with the nearest miss when it is denied, and
// the reason when it depends on an address the input does not give.
import type { Family, Protocol } from '../cluster/model.js';
import { familyOf } from '../cluster/model.js';
import { blockCoverage, cidrContainsIP, formatCIDR, mustCIDR, parseIP } from '../net/ip.js';
import type { Plan, PlanCnpRule, PlanPeer, PlanPod, PlanRule } from '../policy/plan.js';
import { cnpRuleLabel, describeCnpRule } from '../policy/plan.js';
import { whySelectorMisses, describeSelector } from '../policy/selector.js';
import { auditText, cnpMatchText, evaluateFlow, flowBetween, matchFlowCnpRule, matchFlowPeersPorts, matchFlowRule, podNetworkFamilies, podNetworkOf, type AuditVerdict, type Flow, type FlowEnd, type SideVerdict, type Verdict } from './evaluate.js';
import { asEnforced } from '../policy/audit.js';

export interface Endpoint {
  /** Absent for an IP-less endpoint (a workload, a planned pod). */
  ip?: string;
  /** The plan key (`ns/name`, `ns/name[Kind]`) when the endpoint is one of the plan's. */
  pod?: string;
  label: string;
}

export class EndpointError extends Error {}

/** Lookups by key and id (a Plan is immutable once compiled; diff explains thousands of cells). */
const lookups = new WeakMap<Plan, { pods: Map<string, PlanPod>; policies: Map<string, Plan['policies'][number]>; clusterPolicies: Map<string, NonNullable<Plan['clusterPolicies']>[number]> }>();
function lookup(plan: Plan) {
  let l = lookups.get(plan);
  if (!l) lookups.set(plan, (l = { pods: new Map(plan.pods.map((p) => [p.key, p])), policies: new Map(plan.policies.map((p) => [p.id, p])), clusterPolicies: new Map((plan.clusterPolicies ?? []).map((c) => [c.id, c])) }));
  return l;
}

const ENDPOINT_NAME = /^[^/\s[\]]+\/[^/\s[\]]+(\[[A-Za-z]+\])?$/;

/**
 * Resolves `ns/name`, `ns/name[Kind]`, a bare `name` (in `defaultNamespace`) or an IP against the
 * plan.
 */
export function resolveEndpoint(plan: Plan, text: string, role: 'from' | 'to', defaultNamespace?: string): Endpoint {
  if (parseIP(text)) {
    const pod = plan.podByIP.get(text);
    return pod ? { ip: text, pod, label: `${pod} (${text})` } : { ip: text, label: text };
  }
  const key = defaultNamespace !== undefined && !text.includes('/') ? `${defaultNamespace}/${text}` : text;
  if (!ENDPOINT_NAME.test(key)) throw new EndpointError(`--${role} ${JSON.stringify(text)}: expected namespace/name, namespace/name[Kind] or an IP address`);
  const pod = lookup(plan).pods.get(key);
  if (!pod) {
    const similar = plan.pods.filter((p) => p.key.startsWith(`${key}[`) || `${p.namespace}/${p.name}` === key).map((p) => p.key);
    const hint = similar.length > 0 ? `; did you mean ${similar.join(' or ')}?` : ' (hostNetwork pods, finished pods and Pending pods without an IP take no part in policy)';
    throw new EndpointError(`--${role} ${JSON.stringify(text)}: no such pod or workload${hint}`);
  }
  const ep: Endpoint = { pod: pod.key, label: pod.key };
  if (pod.ips[0] !== undefined) ep.ip = pod.ips[0];
  return ep;
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
  /**
   * The ClusterNetworkPolicy rules evaluated for this side, in order, up to the one that decided or
   * passed (Admin tier; Baseline tier when no NetworkPolicy isolates the pod). Empty without CNPs.
   */
  tiers: TierRuleReport[];
}

export interface TierRuleReport {
  tier: 'Admin' | 'Baseline';
  policy: string;
  priority: number;
  ruleIndex: number;
  ruleName?: string;
  action: PlanCnpRule['action'];
  /** true: matches; false: does not; null: matches only for some addresses of the pod network. */
  matched: boolean | null;
  text: string;
}

export interface Explanation {
  from: Endpoint;
  to: Endpoint;
  protocol: Protocol;
  port: number;
  verdict: Verdict;
  egress: SideReport;
  ingress: SideReport;
  /** When audited policies apply: the same connection once they are enforced, and what that changes. */
  audit?: { verdict: AuditVerdict; text: string; egress: SideReport; ingress: SideReport };
}

/** The flow between two resolved endpoints, in one address family. */
function flowOf(plan: Plan, from: Endpoint, to: Endpoint, protocol: Protocol, port: number): Flow {
  const fp = from.pod ? lookup(plan).pods.get(from.pod) : undefined;
  const tp = to.pod ? lookup(plan).pods.get(to.pod) : undefined;
  // An endpoint given by name may use any of its addresses; one given as an IP is taken as given.
  const named = (e: Endpoint, p: PlanPod | undefined) => p !== undefined && e.label === p.key;
  if (named(from, fp) && named(to, tp)) {
    const f = flowBetween(plan, fp!, tp!, protocol, port);
    if (!f) throw new EndpointError(`${from.label} and ${to.label} share no address family`);
    return f;
  }
  const end = (e: Endpoint, p: PlanPod | undefined, family: Family | undefined): FlowEnd | undefined => {
    if (!named(e, p)) return { ip: e.ip!, ...(e.pod !== undefined ? { endpoint: e.pod } : {}) };
    if (p!.ips.length === 0) return family === undefined || podNetworkFamilies(plan).includes(family) ? { endpoint: p!.key } : undefined;
    const ip = family === undefined ? p!.ips[0] : p!.ips.find((x) => familyOf(x) === family);
    return ip === undefined ? undefined : { ip, endpoint: p!.key };
  };
  const given = !named(from, fp) ? from.ip! : to.ip!;
  const family = familyOf(given);
  const f = end(from, fp, family);
  const t = end(to, tp, family);
  if (!f || !t) throw new EndpointError(`--from ${from.label} and --to ${to.label} are different IP families`);
  return { from: f, to: t, family, protocol, port };
}

export function explain(plan: Plan, from: Endpoint, to: Endpoint, protocol: Protocol, port: number): Explanation {
  return explainFlow(plan, flowOf(plan, from, to, protocol, port), from, to);
}

/** The explanation of one flow exactly as given (addresses not re-chosen), e.g. a packet the kernel logged. */
export function explainFlow(plan: Plan, flow: Flow, from: Endpoint, to: Endpoint): Explanation {
  const verdict = evaluateFlow(plan, flow);
  const x: Explanation = {
    from,
    to,
    protocol: flow.protocol,
    port: flow.port,
    verdict,
    egress: sideReport(plan, verdict.egress, flow, from, to),
    ingress: sideReport(plan, verdict.ingress, flow, from, to),
  };
  if (verdict.audit) {
    const then = asEnforced(plan);
    x.audit = {
      verdict: verdict.audit,
      text: auditText(verdict.audit),
      egress: sideReport(then, verdict.audit.egress, flow, from, to),
      ingress: sideReport(then, verdict.audit.ingress, flow, from, to),
    };
  }
  return x;
}

/** The CNP rules of one tier evaluated for a side, up to and including the first that matched for certain. */
function tierReports(plan: Plan, tier: 'Admin' | 'Baseline', ids: readonly string[], v: SideVerdict, flow: Flow, otherEnd: FlowEnd, other: Endpoint): TierRuleReport[] {
  const out: TierRuleReport[] = [];
  const word = v.direction === 'ingress' ? 'from' : 'to';
  for (const id of ids) {
    const cp = lookup(plan).clusterPolicies.get(id);
    if (!cp) continue;
    for (const rule of cp[v.direction]) {
      const o = rule.origin;
      const base = { tier, policy: o.policy, priority: o.priority, ruleIndex: o.ruleIndex, ...(o.ruleName !== undefined ? { ruleName: o.ruleName } : {}), action: rule.action };
      const m = matchFlowCnpRule(plan, rule, flow, otherEnd);
      const fc = rule.failClosed ? ` [${rule.failClosed}]` : '';
      if (m && m.uncertain === undefined) {
        out.push({ ...base, matched: true, text: `${describeCnpRule(o)} matches (${word} ${m.peerText}, ${m.portText})${fc}` });
        return out;
      }
      if (m) {
        out.push({ ...base, matched: null, text: `${tier} rule ${cnpRuleLabel(o)} (${o.action}) of ${o.policy} may match: ${m.uncertain}` });
        continue;
      }
      const ports = rule.ports === 'all' ? 'any port' : [...new Set(rule.ports.map((p) => p.spec))].join(', ') || 'no port that exists';
      out.push({ ...base, matched: false, text: `${tier} rule ${cnpRuleLabel(o)} (${o.action}, ${ports}) of ${o.policy}: no match — ${missReasons(plan, rule, flow, otherEnd, other).reasons.join(', and ')}` });
    }
  }
  return out;
}

function sideReport(plan: Plan, v: SideVerdict, flow: Flow, from: Endpoint, to: Endpoint): SideReport {
  const self = v.direction === 'egress' ? from : to;
  const other = v.direction === 'egress' ? to : from;
  const otherEnd = v.direction === 'egress' ? flow.to : flow.from;
  const head = `${v.direction} of ${self.label}`;
  const pod = v.pod !== undefined ? lookup(plan).pods.get(v.pod) : undefined;
  const tiers: TierRuleReport[] = [];
  if (pod?.tiers && !['self', 'not-local', 'not-a-pod', 'same-ip'].includes(v.outcome)) {
    tiers.push(...tierReports(plan, 'Admin', pod.tiers.admin[v.direction], v, flow, otherEnd, other));
    if (v.decidedIn !== 'Admin' && v.policies.length === 0) tiers.push(...tierReports(plan, 'Baseline', pod.tiers.baseline[v.direction], v, flow, otherEnd, other));
  }
  const pass = v.clusterRule?.action === 'Pass' ? `passed on by ${describeCnpRule(v.clusterRule.origin)}; ` : '';
  switch (v.outcome) {
    case 'not-a-pod':
      return { verdict: v, rules: [], tiers, text: `${head}: not a pod, no policy applies` };
    case 'not-local':
      return { verdict: v, rules: [], tiers, text: `${head}: enforced on its own node` };
    case 'not-isolated':
      return {
        verdict: v,
        rules: [],
        tiers,
        text: v.audited
          ? `${head}: ${pass}not isolated (only audited policies select it for ${v.direction}: ${v.audited.join(', ')}${tiers.length ? '; no ClusterNetworkPolicy rule decides' : ''}) → allowed`
          : `${head}: ${pass}not isolated (no policy selects it for ${v.direction}${tiers.length ? ', no ClusterNetworkPolicy rule decides' : ''}) → allowed`,
      };
    case 'self':
      return { verdict: v, rules: [], tiers, text: `${head}: a pod always reaches itself` };
    case 'same-ip':
      return {
        verdict: v,
        rules: [],
        tiers,
        text: `${head}: ${from.label} and ${to.label} have the same IP ${flow.from.ip}: a packet to it never leaves the source, and policy cannot tell the two apart → no verdict (podwall lint reports it as an error)`,
      };
    case 'node-local':
      return { verdict: v, rules: [], tiers: [], text: `${head}: traffic from the pod's own node is always allowed` };
    default:
      break;
  }
  if (v.decidedIn === 'Admin' || v.decidedIn === 'Baseline') {
    const m = v.clusterRule!;
    const note = v.decidedIn === 'Admin' ? (m.action === 'Accept' ? ' (NetworkPolicy cannot deny it)' : ' (NetworkPolicy cannot allow it)') : ' (no NetworkPolicy isolates the pod; one would replace the Baseline)';
    return { verdict: v, rules: [], tiers, text: `${head}: ${m.action === 'Accept' ? 'allowed' : 'denied'} by ${cnpMatchText(m)}${note}` };
  }
  if (v.outcome === 'depends' && !v.maybeBy && v.clusterRule) {
    return { verdict: v, rules: [], tiers, text: `${head}: ${describeCnpRule(v.clusterRule.origin)} may match: ${v.clusterRule.uncertain} → depends on the IP` };
  }
  const rules: RuleReport[] = [];
  for (const id of v.policies) {
    const pol = lookup(plan).policies.get(id)!;
    const list = pol[v.direction];
    if (list.length === 0) {
      rules.push({ policy: id, ruleIndex: -1, matched: false, misses: 3, text: `${id} has no ${v.direction} rules: it only isolates` });
      continue;
    }
    for (const rule of list) rules.push(ruleReport(plan, rule, flow, otherEnd, other));
  }
  const peerWord = v.direction === 'egress' ? 'to' : 'from';
  if (v.outcome === 'allowed') {
    const m = v.allowedBy!;
    return {
      verdict: v,
      rules,
      tiers,
      text: `${head}: ${pass}isolated by ${v.policies.join(', ')}; allowed by rule ${m.ruleIndex} of ${m.policy} (${peerWord} ${m.peerText}${m.peerIndex !== undefined ? ` [peer ${m.peerIndex}]` : ''}, ${m.portText}${m.portIndex !== undefined ? ` [port ${m.portIndex}]` : ''})`,
    };
  }
  if (v.outcome === 'depends') {
    const m = v.maybeBy!;
    return {
      verdict: v,
      rules,
      tiers,
      text: `${head}: ${pass}isolated by ${v.policies.join(', ')}; no rule allows it for certain, and rule ${m.ruleIndex} of ${m.policy} (${peerWord} ${m.peerText}, ${m.portText}) may: ${m.uncertain} → depends on the IP`,
    };
  }
  const nearest = [...rules].sort((a, b) => a.misses - b.misses)[0];
  const r: SideReport = { verdict: v, rules, tiers, text: `${head}: ${pass}isolated by ${v.policies.join(', ')} and no rule allows it → denied` };
  if (nearest && nearest.misses < 3) r.nearest = nearest;
  return r;
}

function ruleReport(plan: Plan, rule: PlanRule, flow: Flow, otherEnd: FlowEnd, other: Endpoint): RuleReport {
  const policy = `${rule.origin.namespace}/${rule.origin.policy}`;
  const name = `rule ${rule.origin.ruleIndex} of ${policy}`;
  if (rule.invalid !== undefined) return { policy, ruleIndex: rule.origin.ruleIndex, matched: false, misses: 3, text: `${name} is invalid and grants nothing (${rule.invalid})` };
  const m = matchFlowRule(plan, rule, flow, otherEnd);
  if (m && m.uncertain === undefined) return { policy, ruleIndex: rule.origin.ruleIndex, matched: true, misses: 0, text: `${name} matches` };
  if (m) return { policy, ruleIndex: rule.origin.ruleIndex, matched: false, misses: 0, text: `${name} may match: ${m.uncertain}` };
  const portsText = rule.ports === 'all' ? 'all ports' : [...new Set(rule.ports.map((p) => p.spec))].join(', ');
  const { reasons, misses } = missReasons(plan, rule, flow, otherEnd, other);
  const allowsText = rule.peers === 'all' ? `allows ${portsText} from anywhere` : `allows ${portsText}`;
  return { policy, ruleIndex: rule.origin.ruleIndex, matched: false, misses, text: `${name} ${allowsText} but ${reasons.join(', and ')}` };
}

/** Why a rule's peers and ports (either kind of rule) miss a flow, and how many of the two miss. */
function missReasons(plan: Plan, rule: Pick<PlanRule, 'peers' | 'ports'>, flow: Flow, otherEnd: FlowEnd, other: Endpoint): { reasons: string[]; misses: number } {
  const probe = (peers: PlanRule['peers'], ports: PlanRule['ports']) => matchFlowPeersPorts(plan, { peers, ports }, flow, otherEnd) !== undefined;
  const peerOk = rule.peers === 'all' || rule.peers.some((p) => probe([p], 'all'));
  const portOk = rule.ports === 'all' || probe('all', rule.ports);
  const reasons: string[] = [];
  if (!peerOk && rule.peers !== 'all') {
    reasons.push(rule.peers.length === 0 ? 'it has no peers that exist' : rule.peers.map((p) => peerMiss(plan, p, flow, otherEnd, other)).join('; and '));
  }
  if (!portOk) reasons.push(portMiss(rule, flow, other));
  return { reasons, misses: (peerOk ? 0 : 1) + (portOk ? 0 : 1) };
}

function peerMiss(plan: Plan, peer: PlanPeer, flow: Flow, otherEnd: FlowEnd, other: Endpoint): string {
  if (peer.kind === 'cidr') {
    const famText = (f: Family) => (f === 'ipv4' ? 'IPv4' : 'IPv6');
    if (otherEnd.ip === undefined) {
      const who = other.pod ?? other.label;
      if (peer.family !== flow.family) return `${who} is reached over ${famText(flow.family)} here (${peer.describe})`;
      const net = podNetworkOf(plan).filter((c) => c.family === flow.family);
      const rel = blockCoverage(peer.block, net);
      return `${who} has no IP yet, and ${peer.describe} holds ${rel === 'none' ? 'none' : 'only part'} of the pod network (${net.map(formatCIDR).join(', ')})`;
    }
    const ip = parseIP(otherEnd.ip);
    if (!ip || ip.family !== peer.family) return `${otherEnd.ip} is not ${famText(peer.family)} (${peer.describe})`;
    if (!cidrContainsIP(mustCIDR(peer.block.cidr), ip)) return `${otherEnd.ip} is not in ${peer.block.cidr}`;
    const ex = peer.block.except.find((e) => cidrContainsIP(mustCIDR(e), ip));
    return `${otherEnd.ip} is in the except ${ex} of ${peer.block.cidr}`;
  }
  if (!other.pod) return `${other.label} is not a pod, and ${peer.describe} matches pods only`;
  const pod: PlanPod | undefined = other.pod !== undefined ? lookup(plan).pods.get(other.pod) : undefined;
  const ns = pod?.namespace ?? other.pod.split('/')[0]!;
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

function portMiss(rule: Pick<PlanRule, 'ports'>, flow: Flow, other: Endpoint): string {
  if (rule.ports === 'all') return '';
  const named = rule.ports.filter((p) => p.name);
  const same = rule.ports.filter((p) => p.protocol === flow.protocol);
  if (same.length === 0) return `the connection is ${flow.port}/${flow.protocol} and the rule has no ${flow.protocol} ports`;
  const dst = other.pod ?? flow.to.ip ?? other.label;
  if (named.length > 0 && named.some((p) => p.protocol === flow.protocol && (p.port === undefined || (flow.port >= p.port && flow.port <= (p.endPort ?? p.port))))) {
    return `the named port ${named[0]!.name}/${flow.protocol} does not resolve to ${flow.port} on the destination ${dst}`;
  }
  return `${flow.port}/${flow.protocol} is not among them`;
}

export function verdictWord(allowed: boolean | null): string {
  return allowed === null ? 'DEPENDS ON IP' : allowed ? 'ALLOWED' : 'DENIED';
}

function sideLines(s: SideReport, indent: string): string[] {
  const lines = [`${indent}${s.text}`];
  // The tier rules that were passed over (the deciding one is in the line above).
  for (const r of s.tiers) if (r.matched !== true) lines.push(`${indent}  · ${r.text}`);
  if (s.verdict.outcome === 'denied' || s.verdict.outcome === 'depends') {
    for (const r of s.rules) lines.push(`${indent}  - ${r.text}`);
    if (s.nearest && s.rules.length > 1) lines.push(`${indent}  nearest miss: ${s.nearest.text}`);
  }
  return lines;
}

export function formatExplanation(x: Explanation): string {
  const lines: string[] = [];
  lines.push(`${verdictWord(x.verdict.allowed)}${x.audit && x.audit.verdict.change !== 'none' ? `; ${x.audit.text}` : ''}  ${x.from.label} → ${x.to.label}  ${x.port}/${x.protocol}`);
  for (const s of [x.egress, x.ingress]) lines.push(...sideLines(s, '  '));
  if (x.audit) {
    lines.push(`  audited policies, once enforced: ${verdictWord(x.audit.verdict.allowed)} (${x.audit.text})`);
    // Only the sides the audited policies touch.
    const audited = [...(x.egress.verdict.audited ?? []), ...(x.ingress.verdict.audited ?? [])];
    for (const s of [x.audit.egress, x.audit.ingress]) if (s.verdict.policies.some((p) => audited.includes(p))) lines.push(...sideLines(s, '    '));
  }
  if (x.egress.verdict.outcome === 'same-ip') lines.splice(1, 2, `  ${x.egress.text}`);
  return lines.join('\n');
}
