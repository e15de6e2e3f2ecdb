// lint for ClusterNetworkPolicies: what reviewers miss (errors — invalid objects — come from the
// boundary, cluster/normalize-cnp.ts). Reads the compiled Plan, so it judges what is enforced.
import type { ClusterStore } from '../cluster/store.js';
import type { ClusterNetworkPolicy, CnpPeer, CnpRule, Direction } from '../cluster/model.js';
import { isActionablePod, objectKey } from '../cluster/model.js';
import type { Finding } from '../cluster/findings.js';
import type { Plan, PlanClusterPolicy } from './plan.js';
import { cnpOrder } from './plan.js';
import { describeSelection } from './cluster-policy.js';
import { isEmptySelector } from './selector.js';
import { cidrContains, cidrContainsIP, cidrsOverlap, mustCIDR, parseIP } from '../net/ip.js';

function warn(c: ClusterNetworkPolicy, code: string, field: string, message: string): Finding {
  const f: Finding = { severity: 'warning', code, message, object: `ClusterNetworkPolicy ${c.name}`, field };
  if (c.origin?.file) f.file = c.origin.file;
  return f;
}

const peerKey = (d: Direction) => (d === 'ingress' ? 'from' : 'to');
const sameJSON = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Whether peer `p` selects nothing that an earlier, all-protocol rule's peer `q` does not. */
function peerCovers(q: CnpPeer, p: CnpPeer): boolean {
  if (q.kind === 'pods' && p.kind === 'pods') {
    if (q.form === 'namespaces' && isEmptySelector(q.namespaceSelector)) return true;
    return sameJSON(q, p) || (q.form === 'namespaces' && sameJSON(q.namespaceSelector, p.namespaceSelector));
  }
  if (q.kind === 'networks' && p.kind === 'networks') return p.networks.every((n) => q.networks.some((m) => cidrContains(mustCIDR(m), mustCIDR(n))));
  return false;
}

/** The first earlier rule that matches everything `rule` would (it then never decides anything). */
function shadowedBy(rules: readonly CnpRule[], i: number): number | undefined {
  const rule = rules[i]!;
  for (let j = 0; j < i; j++) {
    const earlier = rules[j]!;
    if (earlier.ports.length > 0) continue;
    if (earlier.peers.some((p) => p.kind === 'unsupported') && earlier.action !== 'Accept') return j; // enforced as every peer
    if (rule.peers.every((p) => p.kind !== 'unsupported' && earlier.peers.some((q) => peerCovers(q, p)))) return j;
  }
  return undefined;
}

export function lintClusterPolicies(store: ClusterStore, plan: Plan): Finding[] {
  const out: Finding[] = [];
  const compiled = new Map(plan.clusterPolicies.map((c) => [c.id, c]));
  const sorted = [...store.clusterPolicies.values()].sort((a, b) => cnpOrder({ ...a, id: a.name }, { ...b, id: b.name }));
  const podIPs = [...store.pods.values()].filter(isActionablePod).flatMap((p) => p.ips.map((ip) => ({ ip, key: objectKey(p) })));
  const podCIDRs = [...store.nodes.values()].flatMap((n) => n.podCIDRs.map((c) => ({ c, node: n.name })));

  for (const c of sorted) {
    const cp = compiled.get(c.name);
    if (!cp) out.push(warn(c, 'selects-no-pod', 'spec.subject', `selects no pod: subject ${describeSelection(c.subject)} matches no running pod`));
    if (c.ingress.length === 0 && c.egress.length === 0) out.push(warn(c, 'no-rules', 'spec', 'has no ingress or egress rules: it changes nothing'));
    for (const d of ['ingress', 'egress'] as const) {
      c[d].forEach((rule, i) => {
        const rf = `spec.${d}[${i}]`;
        const by = shadowedBy(c[d], i);
        if (by !== undefined) {
          const e = c[d][by]!;
          out.push(warn(c, 'rule-shadowed', rf, `never decides anything: rule ${by}${e.name ? ` (${JSON.stringify(e.name)})` : ''} (${e.action}) before it matches every peer it names on every port`));
        }
        if (!cp) return;
        const pr = cp[d][i]!;
        if (pr.peers !== 'all') {
          for (const peer of pr.peers) {
            const f = `${rf}.${peerKey(d)}[${peer.peerIndex}]`;
            if (peer.kind === 'pods' && peer.pods.length === 0) out.push(warn(c, 'peer-matches-nothing', f, `matches no pod: ${peer.describe}`));
          }
          rule.peers.forEach((p, j) => {
            if (p.kind !== 'networks' || rule.action === 'Pass') return;
            p.networks.forEach((n, k) => {
              const block = mustCIDR(n);
              const inside = podIPs.filter(({ ip }) => cidrContainsIP(block, parseIP(ip)!));
              const overlaps = podCIDRs.filter((x) => cidrsOverlap(block, mustCIDR(x.c)));
              if (inside.length === 0 && overlaps.length === 0) return;
              const what = inside.length > 0 ? `pod IPs (${inside.slice(0, 3).map((x) => x.key).join(', ')}${inside.length > 3 ? ', ...' : ''})` : `the pod CIDR of node ${overlaps[0]!.node}`;
              out.push(warn(c, 'networks-cover-pods', `${rf}.to[${j}].networks[${k}]`, `${n} covers ${what}: this ${rule.action} also applies to pod-to-pod traffic; put a Pass for pod peers before it if that is not meant`));
            });
          });
        }
        rule.ports.forEach((p, k) => {
          if (p.kind !== 'named') return;
          if (pr.ports !== 'all' && pr.ports.some((x) => x.portIndex === k)) return;
          const who = d === 'ingress' ? 'no selected pod' : 'no destination pod of this rule';
          out.push(warn(c, 'named-port-unresolved', `${rf}.protocols[${k}].destinationNamedPort`, `${who} declares a container port named ${JSON.stringify(p.name)}: this entry matches nothing`));
        });
      });
    }
  }
  out.push(...equalPriorityOverlaps(store, plan.clusterPolicies));
  return out;
}

/**
 * Policies of one tier with one priority whose subjects share a pod, both with rules for a
 * direction: the API leaves their order undefined (podwall's is by name, stable and documented).
 */
function equalPriorityOverlaps(store: ClusterStore, compiled: readonly PlanClusterPolicy[]): Finding[] {
  const out: Finding[] = [];
  const all = [...store.clusterPolicies.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  const byId = new Map(compiled.map((c) => [c.id, c]));
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      const a = all[i]!;
      const b = all[j]!;
      if (a.tier !== b.tier || a.priority !== b.priority) continue;
      const dirs = (['ingress', 'egress'] as const).filter((d) => a[d].length > 0 && b[d].length > 0);
      if (dirs.length === 0) continue;
      const ta = byId.get(a.name)?.targets ?? [];
      const tb = new Set(byId.get(b.name)?.targets ?? []);
      const shared = ta.filter((k) => tb.has(k));
      if (shared.length === 0 && !sameJSON(a.subject, b.subject)) continue;
      const who = shared.length > 0 ? `both select ${shared.slice(0, 3).join(', ')}${shared.length > 3 ? ` and ${shared.length - 3} more` : ''}` : 'have the same subject';
      out.push(
        warn(
          b,
          'equal-priority-overlap',
          'spec.priority',
          `${a.tier} priority ${a.priority} is also the priority of ClusterNetworkPolicy ${a.name}, and they ${who} with ${dirs.join(' and ')} rules: the API leaves their order undefined; podwall evaluates ${a.name} first (by name). Give them distinct priorities`,
        ),
      );
    }
  }
  return out;
}
