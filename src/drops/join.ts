// The join of one NFLOG entry with the Plan: which pod's side denied it, under which policies, and
// why — the same explanation `podwall explain` gives (sim/explain.ts on the same Plan), for the packet
// exactly as the kernel logged it. Pure: the Plan and the entry in, a DropRecord out.
//
// The prefix (dataplane/nflog.ts) says what decided: `deny` (a pod's enforced policies), `audit` (its
// audited policies would deny; the packet was let through), `unprogrammed` (fail closed), `cnp` (a
// ClusterNetworkPolicy Deny rule). Its ref is the pod chain's hash, looked up among the Plan's pods.
import type { Direction, Protocol } from '../cluster/model.js';
import { familyOf } from '../cluster/model.js';
import { cnpRuleRef, podChainName, POD_CHAIN_PREFIX } from '../dataplane/names.js';
import { decodePrefix, type DropKind, type NflogTag } from '../dataplane/nflog.js';
import { asEnforced } from '../policy/audit.js';
import { describeCnpRule, type Plan, type PlanCnpRule } from '../policy/plan.js';
import type { FlowEnd } from '../sim/evaluate.js';
import { explainFlow, type Endpoint, type SideReport } from '../sim/explain.js';
import type { NflogEntry } from './nflog-pcap.js';

export interface DropEndpoint {
  ip: string;
  /** `ns/name` when the address is a pod's in the Plan. */
  pod?: string;
  port?: number;
}

export interface DropRecord {
  /** When the kernel logged it (ms since the epoch). */
  time: number;
  /** The node that logged it (lab: the node's name; on a node: this node). */
  node?: string;
  /** What decided, from the prefix; `unknown` for an entry podwall's rules did not write. */
  kind: DropKind | 'unknown';
  /** `denied`: refused; `would-deny`: let through, audited policies would deny it once enforced. */
  verdict: 'denied' | 'would-deny';
  direction?: Direction;
  src: DropEndpoint;
  dst: DropEndpoint;
  /** TCP, UDP, SCTP, ICMP, ICMPv6 or a protocol number. */
  protocol: string;
  /** The pod whose side decided (the destination for ingress, the source for egress), when known. */
  pod?: string;
  /** The namespaces involved (the deciding pod's first), for filters and counters. */
  namespaces: string[];
  /** The policies behind the verdict: isolating the pod (deny) or audited (audit). */
  policies: string[];
  /** One line: "ingress of y/b: isolated by y/deny-all and y/allow-web; no rule allows x/a (nearest miss: ...)". */
  why: string;
  /** Why each rule of those policies did not match (as `podwall explain` lists them). */
  rules?: string[];
  /** Set when the Plan podwall reads now does not agree with the entry (the policies changed since?). */
  note?: string;
  /** The raw NFLOG prefix. */
  prefix: string;
}

/** ClusterNetworkPolicy rule ref (cnpRuleRef of its id) → the rule, per plan. */
const cnpIndexes = new WeakMap<Plan, Map<string, PlanCnpRule>>();

export function clusterRuleByRef(plan: Plan, ref: string): PlanCnpRule | undefined {
  let ix = cnpIndexes.get(plan);
  if (!ix) {
    ix = new Map();
    for (const cp of plan.clusterPolicies ?? []) for (const r of [...cp.ingress, ...cp.egress]) ix.set(cnpRuleRef(r.id), r);
    cnpIndexes.set(plan, ix);
  }
  return ix.get(ref);
}

/** Pod chain hash → pod key, per plan (a hash per pod, computed once per plan). */
const refIndexes = new WeakMap<Plan, Map<string, string>>();

export function podByChainRef(plan: Plan, ref: string): string | undefined {
  let ix = refIndexes.get(plan);
  if (!ix) {
    ix = new Map();
    for (const p of plan.pods) if (p.ips.length > 0) ix.set(podChainName(p.namespace, p.name).slice(POD_CHAIN_PREFIX.length), p.key);
    refIndexes.set(plan, ix);
  }
  return ix.get(ref);
}

const nsOf = (key: string | undefined): string | undefined => (key === undefined ? undefined : key.slice(0, key.indexOf('/')));
const label = (e: DropEndpoint): string => e.pod ?? e.ip;

function andList(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

/**
 * One line for a denying side: `ingress of y/b: isolated by y/deny-all and y/allow-web; no rule allows
 * x/a (nearest miss: rule 0 of y/allow-web ...)`. `audited`: the policies are audited ones.
 */
function deniedText(s: SideReport, direction: Direction, self: string, other: string, audited: boolean): string {
  const near = s.nearest ? ` (nearest miss: ${s.nearest.text})` : '';
  const by = audited ? `would be isolated by ${andList(s.verdict.policies)} (audited)` : `isolated by ${andList(s.verdict.policies)}`;
  return `${direction} of ${self}: ${by}; no rule allows ${other}${near}`;
}

/** Joins one log entry with the Plan. Undefined when the entry carries no readable IP packet. */
export function joinEntry(plan: Plan, entry: NflogEntry, opts: { node?: string } = {}): DropRecord | undefined {
  const pkt = entry.packet;
  if (!pkt) return undefined;
  const tag = decodePrefix(entry.prefix);
  const src: DropEndpoint = { ip: pkt.src };
  const dst: DropEndpoint = { ip: pkt.dst };
  const srcPod = plan.podByIP.get(pkt.src);
  const dstPod = plan.podByIP.get(pkt.dst);
  if (srcPod !== undefined) src.pod = srcPod;
  if (dstPod !== undefined) dst.pod = dstPod;
  if (pkt.sport !== undefined) src.port = pkt.sport;
  if (pkt.dport !== undefined) dst.port = pkt.dport;
  const rec: DropRecord = {
    time: entry.time,
    ...(opts.node !== undefined ? { node: opts.node } : {}),
    kind: tag?.kind ?? 'unknown',
    verdict: tag?.kind === 'audit' ? 'would-deny' : 'denied',
    src,
    dst,
    protocol: String(pkt.protocol),
    namespaces: [],
    policies: [],
    why: '',
    prefix: entry.prefix,
  };
  if (tag) rec.direction = tag.direction;
  switch (tag?.kind) {
    case 'deny':
    case 'audit':
      joinPodSide(plan, rec, tag);
      break;
    case 'unprogrammed':
      joinUnprogrammed(rec, tag);
      break;
    case 'cnp':
      joinClusterRule(plan, rec, tag);
      break;
    default:
      joinByAddress(plan, rec);
  }
  const first = nsOf(rec.pod);
  rec.namespaces = [...new Set([first, nsOf(src.pod), nsOf(dst.pod)].filter((x): x is string => x !== undefined))];
  return rec;
}

/** The explanation of the logged packet, on the plan as it is (or as it will be once audited policies are enforced). */
function explainLogged(plan: Plan, rec: DropRecord) {
  const family = familyOf(rec.src.ip);
  const end = (e: DropEndpoint): FlowEnd => ({ ip: e.ip, ...(e.pod !== undefined ? { endpoint: e.pod } : {}) });
  const ep = (e: DropEndpoint): Endpoint => ({ ip: e.ip, ...(e.pod !== undefined ? { pod: e.pod } : {}), label: e.pod ? `${e.pod} (${e.ip})` : e.ip });
  // A protocol without ports (ICMP, ...) only matches rules without ports: port 0 of that protocol.
  const protocol = rec.protocol as Protocol;
  return explainFlow(plan, { from: end(rec.src), to: end(rec.dst), family, protocol, port: rec.dst.port ?? 0 }, ep(rec.src), ep(rec.dst));
}

function joinPodSide(plan: Plan, rec: DropRecord, tag: NflogTag): void {
  const direction = tag.direction;
  const self = direction === 'ingress' ? rec.dst : rec.src;
  const other = direction === 'ingress' ? rec.src : rec.dst;
  const byRef = tag.ref !== undefined ? podByChainRef(plan, tag.ref) : undefined;
  const pod = byRef ?? self.pod;
  if (pod !== undefined) rec.pod = pod;
  const audited = tag.kind === 'audit';
  if (pod === undefined) {
    rec.why = `${direction} of ${self.ip}${tag.hint ? ` (${tag.hint})` : ''}: ${audited ? 'audited policies would deny it' : 'denied by its policies'}`;
    rec.note = `no pod in the Plan has this chain (KUBE-POD-FW-${tag.ref ?? '?'}): deleted since, or this node enforces other input`;
    return;
  }
  if (self.pod !== pod) rec.note = `the Plan gives ${self.ip} to ${self.pod ?? 'no pod'}, but ${pod}'s chain logged it (the pod's IP changed since?)`;
  const x = explainLogged(audited ? asEnforced(plan) : plan, rec);
  const s = x[direction];
  rec.policies = [...s.verdict.policies];
  if (audited) {
    // Only the audited ones: the side had no enforced policy (else nothing is audited there).
    const pp = plan.pods.find((p) => p.key === pod);
    const aud = (direction === 'ingress' ? pp?.ingressAudit : pp?.egressAudit) ?? [];
    rec.policies = rec.policies.filter((p) => aud.includes(p));
  }
  if (s.verdict.outcome === 'denied') {
    rec.why = deniedText(s, direction, pod, label(other), audited);
    if (audited) rec.why += `; let through — ${andList(rec.policies)} would deny it once enforced`;
    rec.rules = s.rules.map((r) => r.text);
    return;
  }
  rec.why = s.text;
  rec.note = `the Plan podwall reads now ${audited ? 'would not deny' : 'does not deny'} this side (${s.text}): the policies changed after it was logged, or this node enforces other input`;
}

/**
 * A ClusterNetworkPolicy Deny rule: the rule its ref names, and the explanation of the side it denied
 * (the tier, priority, peer and port that matched, and the rules of the tier passed over).
 */
function joinClusterRule(plan: Plan, rec: DropRecord, tag: NflogTag): void {
  const direction = tag.direction;
  const self = direction === 'ingress' ? rec.dst : rec.src;
  if (self.pod !== undefined) rec.pod = self.pod;
  const rule = tag.ref !== undefined ? clusterRuleByRef(plan, tag.ref) : undefined;
  const name = rule?.origin.policy ?? tag.hint?.replace(/^cnp\//, '');
  if (name !== undefined) rec.policies = [`cnp:${name}`];
  if (!rule) {
    rec.why = `${direction} of ${label(self)}: denied by a rule of ClusterNetworkPolicy ${name ?? '?'}`;
    rec.note = `no ClusterNetworkPolicy rule in the Plan has this reference (${tag.ref ?? '-'}): changed or deleted since, or this node enforces other input`;
    return;
  }
  const s = explainLogged(plan, rec)[direction];
  if (s.verdict.outcome === 'denied' && s.verdict.clusterRule && cnpRuleRef(s.verdict.clusterRule.ruleId) === tag.ref) {
    rec.why = s.text;
    rec.rules = s.tiers.filter((r) => r.matched !== true).map((r) => r.text);
    return;
  }
  rec.why = `${direction} of ${label(self)}: denied by ${describeCnpRule(rule.origin)}`;
  rec.note = `the Plan podwall reads now decides this side otherwise (${s.text}): the policies changed after it was logged, or this node enforces other input`;
}

function joinUnprogrammed(rec: DropRecord, tag: NflogTag): void {
  const self = tag.direction === 'ingress' ? rec.dst : rec.src;
  const toFrom = tag.direction === 'ingress' ? 'to' : 'from';
  if (self.pod !== undefined) {
    rec.pod = self.pod;
    rec.why = `fail closed: ${self.pod} (${self.ip}) is not programmed on this node yet — new connections ${toFrom} it are refused until its rules are in place (if this lasts, see the agent's /healthz)`;
  } else {
    rec.why = `fail closed: ${self.ip} is in this node's pod CIDR${tag.hint ? ` ${tag.hint}` : ''} but is no pod podwall knows — new connections ${toFrom} it are refused (a pod the agent has not seen yet, or an address no pod holds)`;
  }
}

function joinByAddress(plan: Plan, rec: DropRecord): void {
  rec.note = rec.prefix === '' ? 'no prefix: not logged by podwall\'s rules (kube-router\'s?); joined by address' : `prefix ${JSON.stringify(rec.prefix)} is not podwall's; joined by address`;
  const x = explainLogged(plan, rec);
  const denied = (['ingress', 'egress'] as const).filter((d) => x[d].verdict.outcome === 'denied');
  const d = denied[0];
  if (d === undefined) {
    rec.why = `the Plan allows it: ${x.verdict.summary}`;
    return;
  }
  const s = x[d];
  rec.direction = d;
  const self = d === 'ingress' ? rec.dst : rec.src;
  const other = d === 'ingress' ? rec.src : rec.dst;
  if (s.verdict.pod !== undefined) rec.pod = s.verdict.pod;
  rec.policies = [...s.verdict.policies];
  rec.why = deniedText(s, d, s.verdict.pod ?? self.ip, label(other), false);
  rec.rules = s.rules.map((r) => r.text);
}
