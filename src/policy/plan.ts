// The Plan: the one compiled form of the cluster's NetworkPolicies. The simulator evaluates packets
// against it, the dataplane renders it into chains and ipsets; neither re-reads a NetworkPolicy.
// It is plain data (JSON-serialisable but for nothing), deterministic for a given cluster.

import type { CnpAction, CnpPodSelection, CnpTier, ContainerPort, Direction, Family, IPBlock, LabelSelector, Protocol, WorkloadKind } from '../cluster/model.js';

/** The pod network IP-less endpoints are assumed in when none is given: every address of both families. */
export const DEFAULT_POD_NETWORK: readonly string[] = ['0.0.0.0/0', '::/0'];

/** Where an allow rule comes from, for explanations, comments and set names. */
export interface RuleOrigin {
  namespace: string;
  policy: string;
  direction: Direction;
  /** Index of the rule within `spec.ingress` / `spec.egress`. */
  ruleIndex: number;
}

/** One peer (`from`/`to` entry) of a rule, resolved to addresses. */
export type PlanPeer = PodPeer | CidrPeer;

interface PeerBase {
  /** Stable identity of the peer's address set: `<ns>/<policy>/<direction>/<rule>/<peer>`. */
  setId: string;
  /** Index within `from` / `to`. */
  peerIndex: number;
  /** Human text: `pods {role: web} in namespaces {team: a}`. */
  describe: string;
}

export interface PodPeer extends PeerBase {
  kind: 'pods';
  /** The selectors as written (after normalisation) so explanations can say why a pod misses. */
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  /** The policy's namespace: where a peer without namespaceSelector looks. */
  policyNamespace: string;
  /**
   * Key of every matching endpoint in the cluster, sorted: actionable pods (`ns/name`) and, in an
   * analysis plan, IP-less endpoints (`ns/name[Kind]`, planned pods) too.
   */
  pods: string[];
  /** Their IPs (all families), sorted. IP-less endpoints have none: they match by key. */
  ips: string[];
}

export interface CidrPeer extends PeerBase {
  kind: 'cidr';
  family: Family;
  /** Normalised (network address, canonical text). `/0` stays `/0`; the dataplane splits it. */
  block: IPBlock;
}

export interface PlanPort {
  protocol: Protocol;
  /** Absent: every port of the protocol. */
  port?: number;
  /** Inclusive end of a range (only with port). */
  endPort?: number;
  /** Index of the entry within the rule's `ports`. */
  portIndex: number;
  /** The entry as written: `80/TCP`, `8000-9000/TCP`, `http/TCP`, `all/UDP`. */
  spec: string;
  /** For a named port: the name. */
  name?: string;
  /**
   * For a named port: the destination endpoints (keys) on which the name resolves to `port` for this
   * protocol, and their IPs. The entry matches only packets to one of them (by IP; an IP-less
   * endpoint by key).
   */
  namedTargets?: { pods: string[]; ips: string[] };
}

export interface PlanRule {
  /** `<ns>/<policy>/<direction>/<ruleIndex>` */
  id: string;
  origin: RuleOrigin;
  /** `all`: the rule has no (or an empty) from/to. An empty array matches nothing. */
  peers: 'all' | PlanPeer[];
  /** `all`: the rule has no (or an empty) ports list. An empty array matches nothing. */
  ports: 'all' | PlanPort[];
  /** Set when the rule could not be understood: it grants nothing and peers/ports are empty. */
  invalid?: string;
}

export interface PlanPolicy {
  /** `<ns>/<name>` */
  id: string;
  namespace: string;
  name: string;
  /** Effective policyTypes after defaulting. */
  types: Direction[];
  podSelector: LabelSelector;
  /** Selected actionable pods (`ns/name`, sorted); only local ones in a node plan. */
  targets: string[];
  ingress: PlanRule[];
  egress: PlanRule[];
  invalid?: string;
  /**
   * Audited (staged, `podwall.io/enforcement: audit` on the policy or its namespace): compiled and
   * rendered, but it isolates nobody — its pods are listed in `ingressAudit`/`egressAudit`, never in
   * `ingressPolicies`/`egressPolicies`, and its denials are only logged ("would deny").
   */
  audit?: true;
}

/**
 * An endpoint of the plan: a pod (`ns/name`), or — in an analysis plan — an IP-less endpoint: a
 * workload (`ns/name[Kind]`) or a planned pod. IP-less endpoints are matched by identity, and
 * against ipBlocks through the pod network (`Plan.podNetwork`).
 */
export interface PlanPod {
  key: string;
  namespace: string;
  name: string;
  /** Set for a workload endpoint. */
  workloadKind?: WorkloadKind;
  nodeName?: string;
  /** Empty for an IP-less endpoint. */
  ips: string[];
  labels: Readonly<Record<string, string>>;
  /** Declared container ports (shared with the store: do not mutate); absent in hand-made plans. */
  ports?: readonly ContainerPort[];
  /** Ids of the enforced policies that select this pod for ingress / egress, sorted. Empty: not isolated. */
  ingressPolicies: string[];
  egressPolicies: string[];
  /** Ids of the audited policies that select it (sorted; absent when none): what would isolate it once enforced. */
  ingressAudit?: string[];
  egressAudit?: string[];
  /**
   * ClusterNetworkPolicies selecting this pod that have rules for a direction, per tier, in
   * evaluation order (see Plan.clusterPolicies). Absent when none does.
   */
  tiers?: PodTiers;
}

export interface PodTiers {
  admin: Record<Direction, string[]>;
  baseline: Record<Direction, string[]>;
}

/** Where a ClusterNetworkPolicy rule comes from: for explanations, comments, log prefixes and set names. */
export interface CnpRuleOrigin {
  /** The ClusterNetworkPolicy's name. */
  policy: string;
  tier: CnpTier;
  priority: number;
  direction: Direction;
  /** Index within `spec.ingress` / `spec.egress`. */
  ruleIndex: number;
  /** The rule's `name`, when it has one. */
  ruleName?: string;
  /** The action as written. */
  action: CnpAction;
}

export interface PlanCnpRule {
  /** `cnp:<name>/<direction>/<ruleIndex>` (`:` never occurs in a namespace, so never a NetworkPolicy rule id). */
  id: string;
  origin: CnpRuleOrigin;
  /** The action enforced: as written, except a Pass read fail closed is a Deny. */
  action: CnpAction;
  /**
   * Pod peers (namespaces / pods, resolved to pod IPs) and CIDR peers (each network of a `networks`
   * peer, same peerIndex). `all` only for a rule read fail closed as matching every peer.
   */
  peers: 'all' | PlanPeer[];
  /** `protocols`; `all`: every protocol and port. Named ports resolved per destination pod. */
  ports: 'all' | PlanPort[];
  /** Set when podwall enforces the rule fail closed (an unsupported peer): what it does instead. */
  failClosed?: string;
}

/**
 * One ClusterNetworkPolicy that selects a pod in scope. For each direction of a connection the
 * subject pod's Admin policies are evaluated in order, each rule in order: the first rule matching
 * decides — Accept allows, Deny denies, Pass ends the Admin tier. Then NetworkPolicy as ever (when
 * some policy isolates the pod for that direction, its rules decide). Only when none isolates it do
 * its Baseline policies get the same first-match evaluation (Pass ends the tier); else it is allowed.
 */
export interface PlanClusterPolicy {
  /** The name (cluster-scoped, unique). */
  id: string;
  tier: CnpTier;
  priority: number;
  subject: CnpPodSelection;
  /** `namespaces {team: a}`, `pods {app: web} in namespaces {}`. */
  describeSubject: string;
  /** Selected actionable pods (`ns/name`, sorted); only local ones in a node plan. */
  targets: string[];
  ingress: PlanCnpRule[];
  egress: PlanCnpRule[];
}

export interface PlanNode {
  name: string;
  addresses: string[];
  podCIDRs: string[];
}

export interface PlanService {
  key: string;
  /** Every address of the Service (cluster, external and load-balancer IPs). */
  ips: string[];
  clusterIPs: string[];
  externalIPs: string[];
  loadBalancerIPs: string[];
  /** The ports clients connect to on those addresses, and the node ports. */
  ports: { port: number; protocol: Protocol }[];
  nodePorts: { port: number; protocol: Protocol; index?: number }[];
}

export interface Plan {
  /** Node the plan was compiled for; absent for a whole-cluster plan. */
  node?: string;
  /** Target pods: every actionable pod (whole cluster) or the node's own actionable pods, sorted by key. */
  pods: PlanPod[];
  /** Policies that select at least one pod in `pods`, sorted by id. */
  policies: PlanPolicy[];
  /**
   * ClusterNetworkPolicies that select at least one pod in `pods`, in evaluation order: the Admin
   * tier, then the Baseline tier; within a tier by priority, then by name (the API leaves equal
   * priorities unordered; podwall's order is this one, and lint warns where it matters).
   */
  clusterPolicies: PlanClusterPolicy[];
  nodes: PlanNode[];
  services: PlanService[];
  /** Every actionable pod IP in the cluster → `ns/name` (peers are cluster-wide). */
  podByIP: ReadonlyMap<string, string>;
  /** Labels of every namespace, for explanations. */
  namespaceLabels: Record<string, Readonly<Record<string, string>>>;
  /**
   * Analysis plans only: the CIDRs the pod network takes addresses from. An ipBlock that holds all
   * of it matches an IP-less endpoint, one that holds none does not, one that holds part leaves the
   * verdict open ("depends on the pod's IP").
   */
  podNetwork?: string[];
}

/** PlanPod is an endpoint; the name says so where it matters. */
export type PlanEndpoint = PlanPod;

export function ruleId(o: RuleOrigin): string {
  return `${o.namespace}/${o.policy}/${o.direction}/${o.ruleIndex}`;
}

export function cnpRuleId(o: Pick<CnpRuleOrigin, 'policy' | 'direction' | 'ruleIndex'>): string {
  return `cnp:${o.policy}/${o.direction}/${o.ruleIndex}`;
}

/** A rule's name for people: `'deny-kube-system'`, or `#2` when it has none (control characters escaped). */
export function cnpRuleLabel(o: Pick<CnpRuleOrigin, 'ruleName' | 'ruleIndex'>): string {
  if (o.ruleName === undefined) return `#${o.ruleIndex}`;
  return /^[\x20-\x7e]*$/.test(o.ruleName) && !o.ruleName.includes("'") ? `'${o.ruleName}'` : JSON.stringify(o.ruleName);
}

/** `rule 'deny-kube-system' (Deny) of ClusterNetworkPolicy admin-guard, Admin tier, priority 10` */
export function describeCnpRule(o: CnpRuleOrigin): string {
  return `rule ${cnpRuleLabel(o)} (${o.action}) of ClusterNetworkPolicy ${o.policy}, ${o.tier} tier, priority ${o.priority}`;
}

/** Evaluation order of ClusterNetworkPolicies: Admin before Baseline, then priority, then name. */
export function cnpOrder(a: { tier: CnpTier; priority: number; id: string }, b: { tier: CnpTier; priority: number; id: string }): number {
  if (a.tier !== b.tier) return a.tier === 'Admin' ? -1 : 1;
  if (a.priority !== b.priority) return a.priority - b.priority;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
