// Denial counters for Prometheus, from the kernel's per-rule packet counters (dataplane/counters.ts
// says why not NFLOG): read when Prometheus scrapes (at most once per `minIntervalMs`), the growth
// of each pod chain's REJECT (and audit counting rule) since the last reading attributed through the
// Plan to the pod's namespace and to the policies isolating it (a ClusterNetworkPolicy Deny rule's to
// its policy and tier). Labels are namespaces and policies only — never pods or IPs — so the number
// of series is bounded by the policies, not by traffic.
import type { LogCounter } from '../dataplane/counters.js';
import type { Plan, PlanPod } from '../policy/plan.js';
import { clusterRuleByRef, podByChainRef } from '../drops/join.js';
import type { Metrics } from './metrics.js';

export class DenialCounters {
  private last = new Map<string, { total: bigint; logged: bigint }>();
  private first = true;
  private lastRead = 0;
  private reading: Promise<void> | undefined;
  /** The last reading's error, for logs (a scrape never fails because of it). */
  lastError: string | undefined;

  constructor(
    private readonly metrics: Metrics,
    private readonly read: () => Promise<LogCounter[]>,
    private readonly plan: () => Plan | undefined,
    private readonly minIntervalMs = 5000,
  ) {}

  /** Reads the counters unless read within `minIntervalMs`; concurrent callers share one reading. */
  refresh(now = Date.now()): Promise<void> {
    if (this.reading) return this.reading;
    if (!this.first && now - this.lastRead < this.minIntervalMs) return Promise.resolve();
    this.reading = this.readOnce()
      .catch((e) => {
        this.lastError = (e as Error).message;
      })
      .finally(() => {
        this.lastRead = Date.now();
        this.reading = undefined;
      });
    return this.reading;
  }

  private async readOnce(): Promise<void> {
    const counters = await this.read();
    const plan = this.plan();
    const pods = new Map<string, PlanPod>(plan ? plan.pods.map((p) => [p.key, p]) : []);
    const next = new Map<string, { total: bigint; logged: bigint }>();
    for (const c of counters) {
      next.set(c.key, { total: c.total, logged: c.logged });
      const prev = this.last.get(c.key);
      // A chain rewritten (its pod's policies changed) starts again from 0: count from there. A
      // counter seen for the first time counts whole — except at the agent's first reading, where
      // the kernel's history before this process is not ours to report again.
      const reset = prev !== undefined && (c.total < prev.total || c.logged < prev.logged);
      if (this.first && prev === undefined) continue;
      const total = Number(prev && !reset ? c.total - prev.total : c.total);
      const logged = Number(prev && !reset ? c.logged - prev.logged : c.logged);
      if (total > logged) this.metrics.nflogSuppressed.inc({ kind: c.tag.kind }, total - logged);
      if (total <= 0) continue;
      const direction = c.tag.direction;
      if (c.tag.kind === 'unprogrammed') {
        this.metrics.unprogrammedDenied.inc({ direction }, total);
        continue;
      }
      if (c.tag.kind === 'cnp') {
        // The ref names the Deny rule (its tier chain is shared by the pods the policy selects).
        const rule = plan && c.tag.ref !== undefined ? clusterRuleByRef(plan, c.tag.ref) : undefined;
        const policy = rule?.origin.policy ?? c.tag.hint?.replace(/^cnp\//, '') ?? '';
        this.metrics.clusterPolicyDenied.inc({ policy, tier: rule?.origin.tier ?? 'unknown', direction }, total);
        continue;
      }
      if (c.tag.kind !== 'deny' && c.tag.kind !== 'audit') continue;
      const key = plan && c.tag.ref !== undefined ? podByChainRef(plan, c.tag.ref) : undefined;
      const pod = key !== undefined ? pods.get(key) : undefined;
      // A pod gone from the Plan since its last denials: its namespace is still in the hint.
      const namespace = pod?.namespace ?? c.tag.hint?.split('/')[0] ?? '';
      if (c.tag.kind === 'deny') {
        this.metrics.deniedPackets.inc({ namespace, direction }, total);
        for (const id of pod ? (direction === 'ingress' ? pod.ingressPolicies : pod.egressPolicies) : []) {
          this.metrics.policyDenied.inc({ namespace: id.slice(0, id.indexOf('/')), policy: id.slice(id.indexOf('/') + 1), direction }, total);
        }
      } else {
        this.metrics.auditWouldDeny.inc({ namespace, direction }, total);
        for (const id of pod ? ((direction === 'ingress' ? pod.ingressAudit : pod.egressAudit) ?? []) : []) {
          this.metrics.policyAuditWouldDeny.inc({ namespace: id.slice(0, id.indexOf('/')), policy: id.slice(id.indexOf('/') + 1), direction }, total);
        }
      }
    }
    this.last = next;
    this.first = false;
  }
}
