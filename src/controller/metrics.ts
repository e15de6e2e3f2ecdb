// Prometheus metrics on podwall's own registry: kube-router's names (drop-in dashboards) plus podwall's.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  readonly registry = new Registry();
  // kube-router's names.
  readonly syncTime: Histogram;
  readonly saveTime: Record<'ipv4' | 'ipv6', Histogram>;
  readonly restoreTime: Record<'ipv4' | 'ipv6', Histogram>;
  readonly policyChainsSyncTime: Histogram;
  readonly ipsetRestoreTime: Record<'ipv4' | 'ipv6', Histogram>;
  readonly policyChains: Gauge;
  readonly policyIpsets: Gauge;
  // podwall's own.
  readonly syncErrors: Counter<'stage'>;
  readonly syncs: Counter<'reason'>;
  readonly eventLatency: Histogram<'kind'>;
  readonly linesWritten: Counter<'target'>;
  readonly driftRepairs: Counter;
  readonly driftDetected: Counter<'source'>;
  readonly driftRepairTime: Histogram;
  readonly informerRestarts: Counter<'resource'>;
  readonly appliedGeneration: Gauge;
  readonly buildInfo: Gauge<'version' | 'node' | 'backend'>;
  readonly rejectedPolicies: Gauge;
  readonly kernelRefusals: Gauge<'kind'>;
  // Denials, from the kernel's rule counters (controller/denials.ts): namespaces and policies only.
  readonly deniedPackets: Counter<'namespace' | 'direction'>;
  readonly policyDenied: Counter<'namespace' | 'policy' | 'direction'>;
  readonly auditWouldDeny: Counter<'namespace' | 'direction'>;
  readonly policyAuditWouldDeny: Counter<'namespace' | 'policy' | 'direction'>;
  readonly unprogrammedDenied: Counter<'direction'>;
  readonly clusterPolicyDenied: Counter<'policy' | 'tier' | 'direction'>;
  readonly nflogSuppressed: Counter<'kind'>;

  /** Refreshes the denial counters before a scrape reads them (set by the agent). */
  collectDenials: (() => Promise<void>) | undefined;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const r = [this.registry];
    const h = (name: string, help: string) => new Histogram({ name, help, buckets: SECONDS, registers: r });
    this.syncTime = h('kube_router_controller_iptables_sync_time', 'Time it took for the controller to sync iptables (seconds)');
    this.saveTime = { ipv4: h('kube_router_controller_iptables_v4_save_time', 'Time to save IPv4 iptables (seconds)'), ipv6: h('kube_router_controller_iptables_v6_save_time', 'Time to save IPv6 iptables (seconds)') };
    this.restoreTime = {
      ipv4: h('kube_router_controller_iptables_v4_restore_time', 'Time to restore IPv4 iptables (seconds)'),
      ipv6: h('kube_router_controller_iptables_v6_restore_time', 'Time to restore IPv6 iptables (seconds)'),
    };
    this.policyChainsSyncTime = h('kube_router_controller_policy_chains_sync_time', 'Time for the policy and pod chains to sync (seconds)');
    this.ipsetRestoreTime = {
      ipv4: h('kube_router_controller_policy_ipset_v4_restore_time', 'Time to restore IPv4 ipsets (seconds)'),
      ipv6: h('kube_router_controller_policy_ipset_v6_restore_time', 'Time to restore IPv6 ipsets (seconds)'),
    };
    this.policyChains = new Gauge({ name: 'kube_router_controller_policy_chains', help: 'Active policy chains', registers: r });
    this.policyIpsets = new Gauge({ name: 'kube_router_controller_policy_ipsets', help: 'Active policy ipsets', registers: r });
    this.syncErrors = new Counter({ name: 'podwall_sync_errors_total', help: 'Failed reconciles, by stage (compile, render, ipset, iptables, read)', labelNames: ['stage'], registers: r });
    this.syncs = new Counter({ name: 'podwall_syncs_total', help: 'Completed reconciles, by reason (event, resync, startup, retry)', labelNames: ['reason'], registers: r });
    this.eventLatency = new Histogram({ name: 'podwall_event_to_enforcement_seconds', help: 'From a store change to the kernel having accepted it', labelNames: ['kind'], buckets: SECONDS, registers: r });
    this.linesWritten = new Counter({ name: 'podwall_restore_lines_written_total', help: 'Lines written to ipset restore / iptables-restore', labelNames: ['target'], registers: r });
    this.driftRepairs = new Counter({ name: 'podwall_drift_repairs_total', help: 'Chains, jumps or sets found changed by someone else and restored', registers: r });
    this.driftDetected = new Counter({ name: 'podwall_drift_detected_total', help: 'Changes by someone else to podwall\'s chains, jumps or sets seen by the drift watcher, by source (nft-monitor, check, full-check)', labelNames: ['source'], registers: r });
    this.driftRepairTime = h('podwall_drift_repair_seconds', 'From drift seen by the drift watcher to the kernel repaired');
    this.informerRestarts = new Counter({ name: 'podwall_informer_restarts_total', help: 'Informers restarted after an error', labelNames: ['resource'], registers: r });
    this.appliedGeneration = new Gauge({ name: 'podwall_applied_generation', help: 'Store generation last applied to the kernel', registers: r });
    this.buildInfo = new Gauge({ name: 'podwall_build_info', help: 'Build information', labelNames: ['version', 'node', 'backend'], registers: r });
    this.rejectedPolicies = new Gauge({ name: 'podwall_rejected_policy_chains', help: 'Policy chains the kernel rejected (their pods stay fail-closed)', registers: r });
    this.kernelRefusals = new Gauge({ name: 'podwall_kernel_refusals', help: 'Objects the kernel refused and podwall left out (never widening), by kind: policy-chain, pod-chain, set, member', labelNames: ['kind'], registers: r });
    // Read at scrape time: `collect` (set with onCollect) refreshes them from the kernel first.
    const collect = async () => {
      await this.collectDenials?.();
    };
    this.deniedPackets = new Counter({ name: 'podwall_denied_packets_total', help: 'Packets refused by NetworkPolicy on this node, by namespace of the refusing pod and direction (new connections; retransmissions count again)', labelNames: ['namespace', 'direction'], registers: r, collect });
    this.policyDenied = new Counter({ name: 'podwall_policy_denied_packets_total', help: 'Packets refused to or from pods this policy isolates (each isolating policy of the pod counts the refusal)', labelNames: ['namespace', 'policy', 'direction'], registers: r, collect });
    this.auditWouldDeny = new Counter({ name: 'podwall_audit_would_deny_packets_total', help: 'Packets let through that audited policies would refuse once enforced, by namespace of the pod and direction', labelNames: ['namespace', 'direction'], registers: r, collect });
    this.policyAuditWouldDeny = new Counter({ name: 'podwall_policy_audit_would_deny_packets_total', help: 'Packets let through that this audited policy (with the others selecting the pod) would refuse once enforced', labelNames: ['namespace', 'policy', 'direction'], registers: r, collect });
    this.clusterPolicyDenied = new Counter({ name: 'podwall_cluster_policy_denied_packets_total', help: 'Packets refused by a Deny rule of this ClusterNetworkPolicy (tier Admin or Baseline; "unknown" once the policy left the Plan)', labelNames: ['policy', 'tier', 'direction'], registers: r, collect });
    this.unprogrammedDenied = new Counter({ name: 'podwall_unprogrammed_denied_packets_total', help: 'Packets refused because a local pod address is not programmed yet (fail closed)', labelNames: ['direction'], registers: r, collect });
    this.nflogSuppressed = new Counter({ name: 'podwall_nflog_suppressed_packets_total', help: 'Denials (or would-be denials) the NFLOG rate limit kept out of the log, by kind', labelNames: ['kind'], registers: r, collect });
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'podwall_' });
  }
}
