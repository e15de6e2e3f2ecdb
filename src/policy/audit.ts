// Audited (staged) policies — `podwall.io/enforcement: audit` on a NetworkPolicy or its Namespace.
// An audited policy is compiled and rendered like any other, but it isolates nobody: the connection
// is judged as if the policy did not exist, and what it would deny is only logged ("would deny").
// Enforced policies keep enforcing while others are audited: an audited policy never changes what an
// enforced one decides (the Plan keeps the two apart, see PlanPod.ingressAudit).
//
// "Once enforced" means every audited policy enforced together with the enforced ones: the world after
// the annotations are removed. Policies are additive, so enforcing an audited policy can deny (a pod no
// enforced policy isolated becomes isolated) or allow (its rules open what the enforced policies of an
// isolated pod did not).
import type { Namespace, NetworkPolicy, Enforcement } from '../cluster/model.js';
import type { Plan, PlanPod } from './plan.js';

/** The policy's own annotation wins (a malformed one already read as enforce); else its namespace's. */
export function effectiveEnforcement(np: NetworkPolicy, ns: Namespace | undefined): Enforcement {
  return np.enforcement ?? ns?.enforcement ?? 'enforce';
}

/** Whether any pod of the plan has audited policies. */
export function hasAudit(plan: Plan): boolean {
  return plan.pods.some((p) => p.ingressAudit !== undefined || p.egressAudit !== undefined);
}

const enforcedPlans = new WeakMap<Plan, Plan>();

function merged(a: readonly string[], b: readonly string[] | undefined): string[] {
  return b === undefined ? [...a] : [...new Set([...a, ...b])].sort();
}

/** The plan as it will be once every audited policy is enforced (shared per plan; do not mutate). */
export function asEnforced(plan: Plan): Plan {
  let hit = enforcedPlans.get(plan);
  if (!hit) {
    const pods: PlanPod[] = plan.pods.map((p) => {
      if (p.ingressAudit === undefined && p.egressAudit === undefined) return p;
      const { ingressAudit, egressAudit, ...rest } = p;
      return { ...rest, ingressPolicies: merged(p.ingressPolicies, ingressAudit), egressPolicies: merged(p.egressPolicies, egressAudit) };
    });
    hit = { ...plan, pods };
    enforcedPlans.set(plan, hit);
  }
  return hit;
}
