// ClusterNetworkPolicy tier chains: the Plan's Admin / Baseline tiers as iptables rules. A pod chain
// jumps, per direction, to the Admin chain of the policies selecting the pod before its NetworkPolicy
// chains, and (only when no NetworkPolicy isolates it, and nothing accepted it yet) to the Baseline
// chain after them:
//
//   PODWALL-ADM-<16> / PODWALL-BSL-<16>  (one per tier, direction and ordered list of policies)
//     per policy in evaluation order, per rule in order, per peer × port:
//       Accept  MARK 0x10000 (then `mark 0x10000 → RETURN` after the rule): the pod chain accepts
//       Deny    NFLOG group 100 (nflog.ts: kind cnp, the rule's ref, rate-limited like every NFLOG
//               rule) then REJECT: nothing later runs
//       Pass    RETURN: the pod chain goes on to the NetworkPolicy stage (Admin) or to DEFAULT (Baseline)
//     falling off the end: no decision (RETURN)
//
// The first matching rule decides, as the Plan says (PlanClusterPolicy). Sets are named by rule and
// peer identity (`cnp:<name>/<direction>/<rule>/pods|networks`), so a rule edit rewrites only its
// chain and sets, and pods selected by the same policies share one chain.
import type { Direction, Family } from '../cluster/model.js';
import type { IptChain, IptRule, Ipset } from '../iptables/model.js';
import { LRUCache } from 'lru-cache';
import type { PlanClusterPolicy, PlanCnpRule } from '../policy/plan.js';
import { cmt, rejectArgs, ruleMatchArgs, SetRegistry } from './render.js';
import { cnpRuleRef, DST_SET_PREFIX, MARK_MATCHED, NFLOG_GROUP, SRC_SET_PREFIX, tierChainName } from './names.js';
import { encodePrefix, limitArgs, type LogLimit } from './nflog.js';

/**
 * `podwall/1 cnp in|out <rule ref> cnp/<name>` (nflog.ts): the rule's stable reference (cnpRuleRef
 * of its id) joins the log entry with the Plan; the name is a hint for people, cut to fit.
 */
export function cnpDenyPrefix(rule: PlanCnpRule): string {
  return encodePrefix({ kind: 'cnp', direction: rule.origin.direction, ref: cnpRuleRef(rule.id), hint: `cnp/${rule.origin.policy}` });
}

function ruleRules(cp: PlanClusterPolicy, rule: PlanCnpRule, direction: Direction, family: Family, reg: SetRegistry, limit: LogLimit): IptRule[] {
  const setPrefix = direction === 'ingress' ? SRC_SET_PREFIX : DST_SET_PREFIX;
  const setDir = direction === 'ingress' ? 'src' : 'dst';
  // No quotes in comments (iptables-save escapes them): the rule's name, or its index.
  const what = `${cp.id} ${direction} rule ${rule.origin.ruleName ?? `#${rule.origin.ruleIndex}`} ${rule.action}`;
  const matches = ruleMatchArgs(rule, family, reg, setPrefix, setDir, { mergeCidrs: true });
  const out: IptRule[] = [];
  for (const m of matches) {
    const c = cmt(`${what}: ${m.text}`);
    switch (rule.action) {
      case 'Accept':
        out.push({ args: [...m.args, ...c, '-j', 'MARK', '--set-xmark', MARK_MATCHED] });
        break;
      case 'Deny':
        // Threshold 1 as every podwall NFLOG rule (render.ts logRule): handed over at once, not in 1 s batches.
        out.push({ args: [...m.args, ...limitArgs(limit), ...c, '-j', 'NFLOG', '--nflog-prefix', cnpDenyPrefix(rule), '--nflog-group', NFLOG_GROUP, '--nflog-threshold', '1'] });
        out.push({ args: [...m.args, ...c, ...rejectArgs(family)] });
        break;
      case 'Pass':
        out.push({ args: [...m.args, ...c, '-j', 'RETURN'] });
        break;
    }
  }
  if (rule.action === 'Accept' && matches.length > 0) out.push({ args: ['-m', 'mark', '--mark', MARK_MATCHED, ...cmt(`${what}: accepted, return`), '-j', 'RETURN'] });
  return out;
}

/** A tier chain's content depends only on its (immutable) compiled policies, the direction and the family. */
const tierCache = new LRUCache<string, { policies: readonly PlanClusterPolicy[]; chain: IptChain; sets: Ipset[] }>({ max: 1024 });

/** The tier chain for `policies` (in evaluation order) and one direction; its sets go into `reg`. */
export function renderTierChain(tier: 'admin' | 'baseline', direction: Direction, policies: readonly PlanClusterPolicy[], family: Family, reg: SetRegistry, limit: LogLimit): IptChain {
  const ids = policies.map((p) => p.id);
  const name = tierChainName(tier, direction, ids);
  const key = `${name}\u0000${family}\u0000${limit.rate ?? ''}/${limit.burst}`;
  let hit = tierCache.get(key);
  if (!hit || hit.policies.length !== policies.length || hit.policies.some((p, i) => p !== policies[i])) {
    const own = new SetRegistry();
    const rules: IptRule[] = [];
    for (const cp of policies) for (const rule of cp[direction]) rules.push(...ruleRules(cp, rule, direction, family, own, limit));
    hit = { policies: [...policies], chain: { name, policy: '-', rules }, sets: [...own.sets.values()] };
    tierCache.set(key, hit);
  }
  for (const set of hit.sets) reg.add(set);
  return hit.chain;
}
