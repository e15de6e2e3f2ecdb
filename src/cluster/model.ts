// podwall's own small model of the Kubernetes objects it reads. Every source (manifest files,
// informers' list results, informers' watch events) is normalised into these shapes at the
// boundary (see normalize.ts); nothing past the boundary ever sees a raw Kubernetes object.

export type Labels = Readonly<Record<string, string>>;
export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];
import type { Family } from '../net/ip.js';
export type { Family };
export type Direction = 'ingress' | 'egress';

/** Where an object came from, so every finding can name file and object. */
export interface Origin {
  /** File path (manifests) or `api` (informers). */
  file?: string;
  /** Index of the document (or List item) within the file, 0-based. */
  doc?: number;
}

/** The `podwall.io/enforcement` annotation on a NetworkPolicy or a Namespace. */
export const ENFORCEMENT_ANNOTATION = 'podwall.io/enforcement';
/**
 * `audit`: compiled and rendered, but its denials are only logged ("would deny") — the policy is
 * applied as if it did not exist. `enforce`: the default; on a policy it overrides an audited namespace.
 */
export type Enforcement = 'enforce' | 'audit';

export interface Namespace {
  kind: 'Namespace';
  name: string;
  /** Includes `kubernetes.io/metadata.name` (added when missing). */
  labels: Labels;
  /** The enforcement annotation, when present and valid (a malformed value is an error and ignored). */
  enforcement?: Enforcement;
  /**
   * The namespace exists (its pods do) but its labels could not be read (an invalid label, never an
   * accepted version): no namespaceSelector matches it, In or NotIn alike — for allow rules that is
   * the reading that never widens. A tier with Deny rules (ClusterNetworkPolicy) must instead treat
   * it as matched by every Deny. `labels` then holds only `kubernetes.io/metadata.name`.
   */
  labelsUnreadable?: true;
  origin?: Origin;
}

export interface ContainerPort {
  name?: string;
  port: number;
  protocol: Protocol;
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

/** metadata.ownerReferences[]: the controller a pod (or ReplicaSet, Job) belongs to. */
export interface OwnerReference {
  kind: string;
  name: string;
  uid?: string;
  controller?: boolean;
}

export interface Pod {
  kind: 'Pod';
  namespace: string;
  name: string;
  uid?: string;
  labels: Labels;
  nodeName?: string;
  hostNetwork: boolean;
  phase?: PodPhase;
  /** status.podIPs (or status.podIP), normalised (IPv6 compressed, lowercase). */
  ips: string[];
  /** Every declared container port (init/sidecar containers included). */
  ports: ContainerPort[];
  /**
   * A pod written in git rather than taken from a cluster: the manifest has no `status` at all. It has
   * no IP yet; analysis treats it as an IP-less endpoint like a workload (the dataplane ignores it).
   */
  planned?: boolean;
  /** metadata.ownerReferences (empty when none). */
  owners?: OwnerReference[];
  origin?: Origin;
}

/** The controllers whose pod template podwall reads as one endpoint (np-guard's `ns/name[Kind]`). */
export const WORKLOAD_KINDS = ['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob', 'ReplicationController'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

/**
 * A workload (Deployment, StatefulSet, ...): one endpoint standing for all its pods, with its pod
 * template's labels and container ports. Replicas do not change reachability, so they are not read.
 */
export interface Workload {
  kind: 'Workload';
  workloadKind: WorkloadKind;
  namespace: string;
  name: string;
  uid?: string;
  /** The pod template's labels: what policy selectors see. */
  labels: Labels;
  hostNetwork: boolean;
  /** Always empty: a workload's pods get their addresses when they start. */
  ips: readonly string[];
  /** Every container port the template declares (init/sidecar containers included). */
  ports: ContainerPort[];
  /** metadata.ownerReferences of the workload itself (a ReplicaSet's Deployment, a Job's CronJob). */
  owners: OwnerReference[];
  origin?: Origin;
}

/** What analysis treats as one endpoint: a pod, or a workload standing for its pods. */
export type Endpoint = Pod | Workload;

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values: string[];
}

export interface LabelSelector {
  matchLabels: Labels;
  matchExpressions: LabelSelectorRequirement[];
}

export interface IPBlock {
  cidr: string;
  except: string[];
}

/** One entry of `from` / `to`. At least one field is set (validated). */
export interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IPBlock;
}

export interface PolicyPort {
  /** Defaulted to TCP. */
  protocol: Protocol;
  /** Absent: every port of the protocol. A string is a named container port. */
  port?: number | string;
  endPort?: number;
}

export interface PolicyRule {
  /**
   * `from` (ingress) or `to` (egress). Kubernetes: "If this field is empty or missing, this rule
   * matches all" — both normalise to `[]`, meaning every peer.
   */
  peers: PolicyPeer[];
  /** Empty or missing: every port. */
  ports: PolicyPort[];
  /** Set when the rule could not be understood: it then grants nothing (fail closed). */
  invalid?: string;
}

export interface NetworkPolicy {
  kind: 'NetworkPolicy';
  namespace: string;
  name: string;
  uid?: string;
  /** Set when the podSelector could not be understood: the policy then selects every pod of its namespace. */
  podSelector: LabelSelector;
  /** After API-server defaulting: Ingress, plus Egress when egress rules are present. */
  policyTypes: Direction[];
  ingress: PolicyRule[];
  egress: PolicyRule[];
  /** Policy-level problem that made podwall fall back to the fail-closed reading. */
  invalid?: string;
  /**
   * The enforcement annotation: absent follows the namespace's; a malformed value is an error and
   * reads as `enforce` (never silently audited).
   */
  enforcement?: Enforcement;
  origin?: Origin;
}

export interface Node {
  kind: 'Node';
  name: string;
  labels: Labels;
  /** spec.podCIDRs / spec.podCIDR, else the `kube-router.io/pod-cidrs` annotation. */
  podCIDRs: string[];
  /** status.addresses of type InternalIP / ExternalIP (normalised IPs). */
  addresses: string[];
  origin?: Origin;
}

export interface Service {
  kind: 'Service';
  namespace: string;
  name: string;
  type: string;
  /** spec.clusterIPs (None / empty excluded). */
  clusterIPs: string[];
  externalIPs: string[];
  /** status.loadBalancer.ingress[].ip */
  loadBalancerIPs: string[];
  /** spec.ports[].port / protocol: what clients connect to on the Service's addresses. */
  ports: { port: number; protocol: Protocol }[];
  /** spec.ports[].nodePort / protocol (`index`: of the entry in spec.ports). */
  nodePorts: { port: number; protocol: Protocol; index?: number }[];
  origin?: Origin;
}

// ---------------------------------------------------------------- ClusterNetworkPolicy
// policy.networking.k8s.io/v1alpha2 (network-policy-api v0.2.0): cluster-scoped, in the Admin tier
// (before NetworkPolicy) or the Baseline tier (after it, only where no NetworkPolicy isolates).

export const CNP_API_VERSION = 'policy.networking.k8s.io/v1alpha2';
export type CnpTier = 'Admin' | 'Baseline';
export type CnpAction = 'Accept' | 'Deny' | 'Pass';
export const CNP_TIERS: readonly CnpTier[] = ['Admin', 'Baseline'];
export const CNP_ACTIONS: readonly CnpAction[] = ['Accept', 'Deny', 'Pass'];

/**
 * Pods chosen by namespace and pod labels: a subject, or a `namespaces` / `pods` peer. `namespaces`
 * is every pod of the matching namespaces; `pods` is podSelector AND namespaceSelector (an absent
 * namespaceSelector is the empty one: every namespace).
 */
export interface CnpPodSelection {
  form: 'namespaces' | 'pods';
  namespaceSelector: LabelSelector;
  /** Only with form `pods`. */
  podSelector?: LabelSelector;
}

export type CnpPeer =
  | ({ kind: 'pods' } & CnpPodSelection)
  /** Egress `networks`: canonical CIDRs (network address). */
  | { kind: 'networks'; networks: string[] }
  /**
   * An experimental-channel peer (`nodes`, `domainNames`) podwall does not enforce. Read fail
   * closed, as the API asks for peers an implementation cannot understand: in an Accept rule it
   * matches nothing; in a Deny or Pass rule the rule denies every destination.
   */
  | { kind: 'unsupported'; field: 'nodes' | 'domainNames' };

export type CnpPort =
  /** `tcp|udp|sctp: {destinationPort: {number} | {range: {start, end}}}`; port absent: every port. */
  | { kind: 'port'; protocol: Protocol; port?: number; endPort?: number }
  /** `destinationNamedPort`: the container port of that name on the destination pod, any protocol. */
  | { kind: 'named'; name: string };

export interface CnpRule {
  /** `name` as written (optional in the API). */
  name?: string;
  action: CnpAction;
  /** `from` / `to`: at least one (validated). */
  peers: CnpPeer[];
  /** `protocols`; empty: every protocol and port. */
  ports: CnpPort[];
}

export interface ClusterNetworkPolicy {
  kind: 'ClusterNetworkPolicy';
  name: string;
  uid?: string;
  tier: CnpTier;
  /** 0-1000; lower is evaluated first within the tier. */
  priority: number;
  subject: CnpPodSelection;
  ingress: CnpRule[];
  egress: CnpRule[];
  origin?: Origin;
}

export type ClusterObject = Namespace | Pod | Workload | NetworkPolicy | Node | Service | ClusterNetworkPolicy;

/** `ns/name`, `name` for cluster-scoped objects, and `ns/name[Kind]` for workloads (np-guard's notation). */
export function objectKey(o: { namespace?: string; name: string; workloadKind?: string }): string {
  const base = o.namespace ? `${o.namespace}/${o.name}` : o.name;
  return o.workloadKind === undefined ? base : `${base}[${o.workloadKind}]`;
}

/** A pod takes part in policy (as target or peer) only when it is a real pod-network pod. */
export function isActionablePod(p: Pod): boolean {
  return !p.hostNetwork && p.ips.length > 0 && p.phase !== 'Succeeded' && p.phase !== 'Failed';
}

/**
 * An endpoint without an address that analysis still judges: a workload, or a planned pod (no
 * status). hostNetwork ones are left out as hostNetwork pods are.
 */
export function isIPlessEndpoint(e: Endpoint): boolean {
  if (e.hostNetwork) return false;
  return e.kind === 'Workload' || (e.planned === true && e.ips.length === 0);
}

export function familyOf(ip: string): Family {
  return ip.includes(':') ? 'ipv6' : 'ipv4';
}
