// The Plan: the one compiled form of the cluster's NetworkPolicies. The simulator evaluates packets
// against it, the dataplane renders it into chains and ipsets; neither re-reads a NetworkPolicy.
// It is plain data (JSON-serialisable but for nothing), deterministic for a given cluster.

import type { ContainerPort, Direction, Family, IPBlock, LabelSelector, Protocol, WorkloadKind } from '../cluster/model.js';

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
