// lint: warnings for what reviewers miss. (Errors — invalid objects — come from normalisation.)
import type { ClusterStore } from '../cluster/store.js';
import { ENFORCEMENT_ANNOTATION, type NetworkPolicy } from '../cluster/model.js';
import { isActionablePod, objectKey } from '../cluster/model.js';
import type { Finding } from '../cluster/findings.js';
import { compile } from './compile.js';
import type { Plan, PlanPod, PlanRule } from './plan.js';
import { effectiveEnforcement } from './audit.js';
import { describeSelector } from './selector.js';
import { bitsOf, cidrsOverlap, mustCIDR, parseIP, cidrContainsIP, type Cidr, type Family } from '../net/ip.js';
import { lintClusterPolicies } from './lint-cnp.js';

function warn(np: NetworkPolicy, code: string, field: string, message: string): Finding {
  const f: Finding = { severity: 'warning', code, message, object: `NetworkPolicy ${np.namespace}/${np.name}`, field };
  if (np.origin?.file) f.file = np.origin.file;
  return f;
}

/** Whether a compiled egress rule lets DNS (53/UDP) out to somewhere. */
function allowsDNS(rule: Pick<PlanRule, 'peers' | 'ports' | 'invalid'>): boolean {
  if (rule.invalid !== undefined) return false;
  if (rule.peers !== 'all' && rule.peers.every((p) => p.kind === 'pods' && p.pods.length === 0)) return false;
  if (rule.ports === 'all') return true;
  return rule.ports.some((p) => p.protocol === 'UDP' && (p.port === undefined || (p.port <= 53 && 53 <= (p.endPort ?? p.port))));
}

/**
 * Two endpoints with one IP: the network cannot deliver to both, and every rule naming the address
 * matches both. One error per pod after the first holding the IP, naming both.
 */
export function duplicateIPs(store: ClusterStore): Finding[] {
  const out: Finding[] = [];
  const first = new Map<string, string>();
  // Keys computed once, not twice per comparison (100,000 pods: ~3.4 million strings).
  const pods = [...store.pods.values()]
    .filter(isActionablePod)
    .map((p) => ({ p, key: objectKey(p) }))
    .sort((a, b) => (a.key < b.key ? -1 : 1));
  for (const { p, key } of pods) {
    p.ips.forEach((ip, i) => {
      const other = first.get(ip);
      if (other === undefined) {
        first.set(ip, key);
        return;
      }
      const f: Finding = {
        severity: 'error',
        code: 'duplicate-ip',
        object: `Pod ${key}`,
        field: `status.podIPs[${i}]`,
        message: `${ip} is also the IP of pod ${other}: two pods cannot share an address (the network delivers to one, and policy cannot tell them apart)`,
      };
      if (p.origin?.file) f.file = p.origin.file;
      out.push(f);
    });
  }
  return out;
}

/** Pod IPs sorted by address per family, for "which pods does this CIDR cover" by binary search. */
class PodAddressIndex {
  private readonly byFamily = new Map<Family, { value: bigint; key: string }[]>();
  constructor(store: ClusterStore) {
    for (const p of store.pods.values()) {
      if (!isActionablePod(p)) continue;
      const key = objectKey(p);
      for (const ip of p.ips) {
        const a = parseIP(ip);
        if (!a) continue;
        let list = this.byFamily.get(a.family);
        if (!list) this.byFamily.set(a.family, (list = []));
        list.push({ value: a.value, key });
      }
    }
    for (const list of this.byFamily.values()) list.sort((x, y) => (x.value < y.value ? -1 : x.value > y.value ? 1 : x.key < y.key ? -1 : 1));
  }
  /** Up to `limit` pods with an address in the block (minus its excepts), and whether there are more. */
  covered(block: Cidr, except: readonly Cidr[], limit: number): { keys: string[]; more: boolean } {
    const list = this.byFamily.get(block.family) ?? [];
    const lastOf = (c: Cidr) => c.addr | ((1n << BigInt(bitsOf(c.family) - c.prefix)) - 1n);
    /** First index whose address is ≥ v. */
    const seek = (v: bigint, from: number) => {
      let lo = from;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (list[mid]!.value < v) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    const last = lastOf(block);
    const keys: string[] = [];
    for (let i = seek(block.addr, 0); i < list.length && list[i]!.value <= last; ) {
      const a = list[i]!;
      const ex = except.find((e) => cidrContainsIP(e, { family: block.family, value: a.value }));
      // Jump over the whole except rather than walking every pod inside it.
      if (ex) {
        i = seek(lastOf(ex) + 1n, i + 1);
        continue;
      }
      if (keys.length === limit) return { keys, more: true };
      keys.push(a.key);
      i++;
    }
    return { keys, more: false };
  }
}

export function lint(store: ClusterStore, plan: Plan = compile(store, { ipless: true })): Finding[] {
  const out: Finding[] = [...duplicateIPs(store)];
  const planPolicies = new Map(plan.policies.map((p) => [p.id, p]));
  const planPods = new Map(plan.pods.map((p) => [p.key, p]));
  const cnpById = new Map(plan.clusterPolicies.map((c) => [c.id, c]));
  let podAddresses: PodAddressIndex | undefined;
  const podCIDRs = [...store.nodes.values()].flatMap((n) => n.podCIDRs.map((c) => ({ c, node: n.name })));
  const sorted = [...store.policies.values()].map((np) => ({ np, id: objectKey(np) })).sort((a, b) => (a.id < b.id ? -1 : 1));

  for (const { np, id } of sorted) {
    const pp = planPolicies.get(id);
    if (!pp) {
      out.push(warn(np, 'selects-no-pod', 'spec.podSelector', `selects no pod: podSelector ${describeSelector(np.podSelector)} matches no running pod or workload in namespace ${np.namespace}`));
    }
    for (const dir of ['ingress', 'egress'] as const) {
      if (np[dir].length > 0 && !np.policyTypes.includes(dir)) {
        out.push(warn(np, 'rules-ignored', `spec.${dir}`, `has ${dir} rules but policyTypes is [${np.policyTypes.map((t) => (t === 'ingress' ? 'Ingress' : 'Egress')).join(', ')}]: they are ignored`));
      }
    }
    if (effectiveEnforcement(np, store.namespaces.get(np.namespace)) === 'audit') {
      const own = np.enforcement === 'audit';
      const f = warn(
        np,
        'audited-policy',
        own ? `metadata.annotations[${JSON.stringify(ENFORCEMENT_ANNOTATION)}]` : 'metadata.namespace',
        `is audited (${ENFORCEMENT_ANNOTATION}: audit on ${own ? 'the policy' : `namespace ${np.namespace}`}): it isolates nobody; what it would deny is only logged ("would deny", see podwall drops --audit) until it is enforced`,
      );
      out.push(f);
    }
    if (!pp) continue;
    for (const dir of ['ingress', 'egress'] as const) {
      for (const rule of pp[dir]) {
        const rf = `spec.${dir}[${rule.origin.ruleIndex}]`;
        const peerKey = dir === 'ingress' ? 'from' : 'to';
        if (rule.peers !== 'all') {
          for (const peer of rule.peers) {
            const f = `${rf}.${peerKey}[${peer.peerIndex}]`;
            if (peer.kind === 'pods' && peer.pods.length === 0) {
              out.push(warn(np, 'peer-matches-nothing', f, `matches no pod: ${peer.describe}`));
            }
            if (peer.kind === 'cidr') {
              const block = mustCIDR(peer.block.cidr);
              podAddresses ??= new PodAddressIndex(store);
              const inside = podAddresses.covered(block, peer.block.except.map(mustCIDR), 3);
              const overlapsCIDR = podCIDRs.filter(({ c }) => cidrsOverlap(block, mustCIDR(c)));
              if (block.prefix > 0 && (inside.keys.length > 0 || overlapsCIDR.length > 0)) {
                const what = inside.keys.length > 0 ? `pod IPs (${inside.keys.join(', ')}${inside.more ? ', ...' : ''})` : `the pod CIDR of node ${overlapsCIDR[0]!.node}`;
                out.push(warn(np, 'ipblock-overlaps-pods', `${f}.ipBlock.cidr`, `${peer.block.cidr} covers ${what}: pod IPs change when pods restart; select pods with podSelector/namespaceSelector instead`));
              }
            }
          }
        }
        if (rule.ports !== 'all') {
          const spec = np[dir][rule.origin.ruleIndex]!;
          spec.ports.forEach((p, i) => {
            if (typeof p.port !== 'string') return;
            const resolved = (rule.ports as Exclude<PlanRule['ports'], 'all'>).some((x) => x.portIndex === i);
            if (!resolved) {
              const who = dir === 'ingress' ? 'no selected pod' : 'no destination pod of this rule';
              out.push(warn(np, 'named-port-unresolved', `${rf}.ports[${i}].port`, `${who} declares a ${p.protocol} container port named ${JSON.stringify(p.port)}: this entry matches nothing`));
            }
          });
        }
      }
    }
    if (pp.types.includes('egress')) {
      // An audited policy is judged as it will be once enforced (with the other audited policies).
      const egressOf = (pod: PlanPod) => (pp.audit ? [...pod.egressPolicies, ...(pod.egressAudit ?? [])] : pod.egressPolicies);
      const blocked = pp.targets.filter((t) => {
        const pod = planPods.get(t)!;
        // An Admin-tier Accept of DNS decides before NetworkPolicy.
        const adminDNS = (pod.tiers?.admin.egress ?? []).some((id) => cnpById.get(id)?.egress.some((r) => r.action === 'Accept' && allowsDNS(r)));
        return !adminDNS && !egressOf(pod).some((pid) => planPolicies.get(pid)!.egress.some(allowsDNS));
      });
      if (blocked.length > 0) {
        out.push(
          warn(np, 'egress-blocks-dns', 'spec.policyTypes', `${pp.audit ? 'once enforced, ' : ''}isolates egress of ${blocked.length} pod(s) (${blocked.slice(0, 3).join(', ')}${blocked.length > 3 ? ', ...' : ''}) and no policy lets them reach DNS (53/UDP): name lookups will fail`),
        );
      }
    }
  }
  out.push(...lintClusterPolicies(store, plan));
  return out;
}
