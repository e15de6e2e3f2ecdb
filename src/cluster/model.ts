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

export interface Namespace {
  kind: 'Namespace';
  name: string;
  /** Includes `kubernetes.io/metadata.name` (added when missing). */
  labels: Labels;
  origin?: Origin;
}

export interface ContainerPort {
  name?: string;
  port: number;
  protocol: Protocol;
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

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
  origin?: Origin;
}

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

export type ClusterObject = Namespace | Pod | NetworkPolicy | Node | Service;

export function objectKey(o: { namespace?: string; name: string }): string {
  return o.namespace ? `${o.namespace}/${o.name}` : o.name;
}

/** A pod takes part in policy (as target or peer) only when it is a real pod-network pod. */
export function isActionablePod(p: Pod): boolean {
  return !p.hostNetwork && p.ips.length > 0 && p.phase !== 'Succeeded' && p.phase !== 'Failed';
}

export function familyOf(ip: string): Family {
  return ip.includes(':') ? 'ipv6' : 'ipv4';
}
