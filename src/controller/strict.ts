// --netpol-strict: after a change is applied, the established connections of this node's managed
// pods that the new rules would not admit as new connections are removed from conntrack
// (dataplane/conntrack.ts does the listing and deleting; the simulator on the node's Plan judges).
import type { Family } from '../cluster/model.js';
import type { Plan } from '../policy/plan.js';
import { evaluate } from '../sim/evaluate.js';
import { judgedPacket, type ConntrackCutter, type CutReport } from '../dataplane/conntrack.js';

/** The IPs of the local pods podwall isolates (they have a pod chain): the only flows strict mode touches. */
export function managedPodIPs(plan: Plan): Set<string> {
  const out = new Set<string>();
  for (const p of plan.pods) if (p.ingressPolicies.length > 0 || p.egressPolicies.length > 0) for (const ip of p.ips) out.add(ip);
  return out;
}

/**
 * Cuts the established flows `plan` denies, judged as the filter table judged them: after DNAT (a
 * Service flow NATed to a backend is the backend's). A flow still addressed to a Service address after
 * NAT (an IPVS proxy) was let through by KUBE-ROUTER-INPUT's exemption and is left alone.
 */
export function cutDenied(cutter: ConntrackCutter, plan: Plan, families: Family[]): Promise<CutReport> {
  const serviceIPs = new Set(plan.services.flatMap((s) => s.ips));
  return cutter.cut({
    families,
    managed: managedPodIPs(plan),
    admits: (flow) => {
      const p = judgedPacket(flow);
      if (serviceIPs.has(p.dst)) return null;
      return evaluate(plan, p).allowed;
    },
  });
}
