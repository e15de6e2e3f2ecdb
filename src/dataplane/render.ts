// render(plan, opts) → Desired: the Plan of one node as kube-router compatible chains, jumps and
// ipsets of one IP family. Pure and deterministic: the same Plan always gives the same output (names
// are content-independent hashes, see names.ts), so apply can diff it against the kernel.
//
// Layout (filter table):
//   INPUT/FORWARD/OUTPUT ─(position 1)→ KUBE-ROUTER-INPUT/FORWARD/OUTPUT
//   KUBE-ROUTER-INPUT:   whitelist RETURNs (Service address,port set; LOCAL Service node ports), then
//                        RELATED/ESTABLISHED from an isolated pod (podwall-isolated src) → ACCEPT,
//                        `-j PODWALL-SRC-PODS` (pod → node is the pod's egress), fail-closed REJECTs,
//                        `mark 0x20000 → ACCEPT`
//   KUBE-ROUTER-FORWARD: RELATED/ESTABLISHED to or from an isolated pod → ACCEPT (two set lookups),
//                        `-j PODWALL-DST-PODS` (ingress), `-j PODWALL-SRC-PODS` (egress), fail-closed
//                        REJECTs, `mark 0x20000 → ACCEPT`
//   KUBE-ROUTER-OUTPUT:  the same without the fail-closed REJECTs (node ↔ pod)
//   PODWALL-DST/SRC-PODS and PODWALL-DST/SRC-<16>: dispatch trees over the isolated pods' IPs, ending
//                        in `-d|-s pod -g KUBE-POD-FW-x` (dispatch.ts)
//   KUBE-POD-FW-x:       COMMON (INVALID drop, RELATED/ESTABLISHED accept, ICMP), pod → itself ACCEPT,
//                        LOCAL source → pod ACCEPT, ingress: `-d pod → KUBE-NWPLCY-<in>` per policy
//                        (or DEFAULT when not isolated), then NFLOG and REJECT unless marked 0x10000;
//                        egress likewise with `-s pod`; then mark 0x20000 and clear 0x10000. NFLOG
//                        prefixes name kind, direction and pod chain (nflog.ts); the REJECT after each
//                        NFLOG counts every packet the rate-limited NFLOG may have skipped.
//   KUBE-NWPLCY-<16>:    one chain per (policy, direction): per rule, per peer × port a
//                        `MARK 0x10000` rule, then `mark 0x10000 → RETURN`.
//   PODWALL-ADM/BSL-<16>: ClusterNetworkPolicy tiers (render-cnp.ts): per direction the pod chain
//                        jumps to its Admin chain before the policy jumps, and — when no policy
//                        isolates it and nothing marked it yet — to its Baseline chain before DEFAULT.
// A new packet passes through every pod chain it concerns (same-node traffic: the destination's, then
// the source's); any REJECT ends it, and only when every chain it met marked it 0x20000 does the
// final ACCEPT take it. Pods no policy isolates and no ClusterNetworkPolicy selects get no chain.
import type { Direction, Family, Protocol } from '../cluster/model.js';
import type { Ipset, IpsetMember, IptChain, IptRule } from '../iptables/model.js';
import { LRUCache } from 'lru-cache';
import { sanitizeComment } from '../iptables/write.js';
import { formatCIDR, parseCIDR } from '../net/ip.js';
import { ServiceExemptionCache, type ServiceExemptions, type ServiceRanges } from '../cluster/service-exemptions.js';
import type { CidrPeer, Plan, PlanClusterPolicy, PlanPod, PlanPolicy, PlanPort, PlanRule, PodPeer } from '../policy/plan.js';
import { renderTierChain } from './render-cnp.js';
import { DEFAULT_LOG_LIMIT, encodePrefix, limitArgs, type LogLimit, type NflogTag } from './nflog.js';
import { canonicalIP, halves, hashIpSet, hashNetSet, ipBlockMembers, parseNetOf, setFamily, sortMembers } from './ipset.js';
import { dispatchChains, type DispatchEntry } from './dispatch.js';
import {
  BUILTIN_HOOKS,
  COMMON_CHAIN,
  DEFAULT_CHAIN,
  DISPATCH_ROOT,
  DST_SET_PREFIX,
  ISOLATED_SET,
  KUBE_ROUTER_FORWARD,
  KUBE_ROUTER_INPUT,
  KUBE_ROUTER_OUTPUT,
  MARK_AUDIT,
  MARK_AUDIT_CLEAR,
  MARK_AUDIT_UNMATCHED,
  MARK_MATCHED,
  MARK_NETPOL_OK,
  MARK_RESET_MATCHED,
  NFLOG_GROUP,
  POD_CHAIN_PREFIX,
  NODE_IPS_SET,
  POD_SUBNETS_SET,
  PROGRAMMED_SET,
  SERVICE_PORTS_SET,
  SRC_SET_PREFIX,
  TOP_CHAINS,
  familySetName,
  kubeRouterRuleUuid,
  peerSetName,
  podChainName,
  policyChainName,
  tierChainName,
  type BuiltinHook,
} from './names.js';

export interface RenderOptions {
  family: Family;
  /** This node's name (its pod CIDRs bound the fail-closed rules). */
  node: string;
  /**
   * --service-cluster-ip-range, --service-external-ip-range, --loadbalancer-ip-range (both families
   * may be given): only Service addresses inside the range of their kind are exempted in
   * KUBE-ROUTER-INPUT (see cluster/service-exemptions.ts).
   */
  serviceClusterIPRanges: string[];
  serviceExternalIPRanges: string[];
  loadBalancerIPRanges: string[];
  /** --service-node-port-range, inclusive: only Service node ports inside it are exempted. */
  nodePortRange: [number, number];
  /**
   * Fail closed for pods podwall has not programmed yet (kube-router's --netpol-default-deny):
   * traffic from/to an IP of this node's pod CIDRs that is not in the podwall-programmed set is
   * rejected. Default true.
   */
  defaultDeny?: boolean;
  /** Rate limit of the NFLOG rules (per rule: per pod and direction). Default 10/min, burst 10 (kube-router's). */
  logLimit?: LogLimit;
}

export interface JumpRule {
  chain: BuiltinHook;
  rule: IptRule;
}

/** The desired podwall-owned state of one family's filter table and ipsets. */
export interface Desired {
  family: Family;
  /** Every set the chains reference, plus the node, pod-subnet and service-IP sets. */
  sets: Ipset[];
  /** podwall-owned chains of the filter table, in a stable order. */
  chains: IptChain[];
  /** Rules of INPUT/FORWARD/OUTPUT that jump into KUBE-ROUTER-*, wanted at position 1. */
  jumps: JumpRule[];
  /** What each chain renders (`pod ns/name`, `policy ns/name ingress`, ...), for reports and errors. */
  origins: Record<string, string>;
}

export class RenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RenderError';
  }
}

/** Comments are capped at 128 bytes (nftables' limit; iptables keeps 255). */
const MAX_COMMENT = 128;
export function comment(text: string): string {
  const s = sanitizeComment(text).slice(0, MAX_COMMENT).trimEnd();
  return s.length > 0 ? s : 'podwall';
}

/**
 * `NFLOG` (rate-limited) then the rule that counts every packet of that kind: `podwall drops`
 * and the denial metrics read the pair's counters (all minus logged = suppressed by the limit).
 */
function logRule(match: string[], tag: NflogTag, limit: LogLimit, text: string): IptRule {
  // Threshold 1: the kernel hands each entry over at once instead of batching up to 1 s (measured:
  // ~1.2 s → ~0.3 s from packet to reader); entries are rate-limited, so batching saves nothing.
  return { args: [...match, ...limitArgs(limit), ...cmt(text), '-j', 'NFLOG', '--nflog-prefix', encodePrefix(tag), '--nflog-group', NFLOG_GROUP, '--nflog-threshold', '1'] };
}

export const cmt = (text: string): string[] => ['-m', 'comment', '--comment', comment(text)];

function hostCidr(ip: string, family: Family): string {
  return `${ip}/${family === 'ipv6' ? 128 : 32}`;
}

export function rejectArgs(family: Family): string[] {
  return ['-j', 'REJECT', '--reject-with', family === 'ipv6' ? 'icmp6-port-unreachable' : 'icmp-port-unreachable'];
}

/** The jump from a built-in chain, exactly as kube-router writes it (comment with its rule uuid). */
export function topLevelJump(hook: BuiltinHook): IptRule {
  const target = TOP_CHAINS[hook];
  const base = ['-m', 'comment', '--comment', 'kube-router netpol', '-j', target];
  const uuid = kubeRouterRuleUuid(hook, base);
  return { args: ['-m', 'comment', '--comment', `kube-router netpol - ${uuid}`, '-j', target] };
}

/** Validated, canonical CIDRs of a range flag (both families). */
function rangesOf(list: readonly string[], flag: string): string[] {
  const out: string[] = [];
  for (const s of list) {
    const r = parseCIDR(s);
    if (!r.ok) throw new RenderError(`${flag}: ${JSON.stringify(s)} is not a CIDR (${r.reason})`);
    out.push(formatCIDR(r.cidr));
  }
  return out;
}

/**
 * Exemptions depend on the plan's Services and nodes (arrays the incremental compiler keeps while
 * nothing in them changed) and on the range flags; a node change is judged by that node alone
 * (ServiceExemptionCache), so the 10^4 Service addresses of a large cluster are not judged again.
 */
const exemptionCache = new WeakMap<readonly object[], Map<string, ServiceExemptionCache>>();

function cachedExemptions(plan: Plan, ranges: ServiceRanges): ServiceExemptions {
  let byRanges = exemptionCache.get(plan.services);
  if (!byRanges) exemptionCache.set(plan.services, (byRanges = new Map()));
  const key = JSON.stringify(ranges);
  let cache = byRanges.get(key);
  if (!cache) byRanges.set(key, (cache = new ServiceExemptionCache(plan.services, ranges)));
  return cache.forNodes(plan.nodes);
}

const serviceSetCache = new WeakMap<ServiceExemptions, Map<Family, Ipset>>();

/** podwall-service-ports: `address,proto:port` of this family (as `ipset save` prints them). */
function serviceSet(exempt: ServiceExemptions, family: Family): Ipset {
  let m = serviceSetCache.get(exempt);
  if (!m) serviceSetCache.set(exempt, (m = new Map()));
  let set = m.get(family);
  if (!set) {
    const members: IpsetMember[] = [];
    for (const e of exempt.addressPorts) {
      const ip = canonicalIP(e.ip, family);
      if (ip !== undefined) members.push({ entry: `${ip},${protoName(e.protocol)}:${e.port}` });
    }
    m.set(family, (set = { name: familySetName(SERVICE_PORTS_SET, family), type: 'hash:ip,port', family: setFamily(family), options: [], members }));
  }
  return set;
}

/** CIDRs of this family among `list`, canonical, deduplicated (a /0 as its two halves). */
function cidrsOf(list: readonly string[], family: Family): string[] {
  const out: string[] = [];
  for (const s of list) {
    const c = parseNetOf(s, family);
    if (!c) continue;
    for (const part of c.prefix === 0 ? halves(family) : [c]) {
      const t = formatCIDR(part);
      if (!out.includes(t)) out.push(t);
    }
  }
  return out;
}

function ipsOf(pod: PlanPod, family: Family): string[] {
  const out: string[] = [];
  for (const ip of pod.ips) {
    const c = canonicalIP(ip, family);
    if (c !== undefined && !out.includes(c)) out.push(c);
  }
  return out;
}

function portArgs(p: PlanPort): { pre: string[]; post: string[] } | undefined {
  const proto = protoName(p.protocol);
  if (!proto) return undefined;
  const post: string[] = [];
  if (p.port !== undefined) {
    const end = p.endPort !== undefined && p.endPort !== p.port ? `:${p.endPort}` : '';
    post.push('-m', proto, '--dport', `${p.port}${end}`);
  }
  return { pre: ['-p', proto], post };
}

function protoName(p: Protocol): 'tcp' | 'udp' | 'sctp' | undefined {
  return p === 'TCP' ? 'tcp' : p === 'UDP' ? 'udp' : p === 'SCTP' ? 'sctp' : undefined;
}

export class SetRegistry {
  readonly sets = new Map<string, Ipset>();
  add(s: Ipset): string {
    if (!this.sets.has(s.name)) this.sets.set(s.name, s);
    return s.name;
  }
}

/**
 * Sets that depend only on one plan array (nodes, services): the incremental compiler keeps those
 * arrays while nothing in them changed, so the set (and its member list, which the diff compares by
 * identity first) is reused.
 */
const arrayCache = new WeakMap<readonly object[], Map<string, Ipset>>();

function cachedBy(source: readonly object[], key: string, make: () => Ipset): Ipset {
  let m = arrayCache.get(source);
  if (!m) arrayCache.set(source, (m = new Map()));
  let hit = m.get(key);
  if (!hit) m.set(key, (hit = make()));
  return hit;
}

/** Members of a hash:ip set per peer IP list (shared by every rule naming the same peer). */
const peerMembersCache = new WeakMap<readonly string[], Map<Family, IpsetMember[]>>();

/**
 * The IP list and members a set name was last rendered with: a recompiled policy whose peer still
 * selects the same pods gets a new (equal) IP list, and keeps the member list the kernel already has
 * (the diff then skips the set by identity).
 */
const lastPeerMembers = new LRUCache<string, { ips: readonly string[]; members: IpsetMember[] }>({ max: 16384 });

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hashIpSetOf(name: string, family: Family, ips: readonly string[]): Ipset {
  let m = peerMembersCache.get(ips);
  if (!m) peerMembersCache.set(ips, (m = new Map()));
  let members = m.get(family);
  if (!members) {
    const last = lastPeerMembers.get(name);
    members = last && sameStrings(last.ips, ips) ? last.members : hashIpSet(name, family, ips).members;
    m.set(family, members);
  }
  lastPeerMembers.set(name, { ips, members });
  return { name, type: 'hash:ip', family: setFamily(family), options: [], members };
}

/**
 * A policy's chain and sets depend only on the (immutable) compiled policy, the direction and the
 * family. The incremental compiler hands back the same PlanPolicy object while a policy is unchanged,
 * so an event re-renders only the policies it touched.
 */
const policyChainCache = new WeakMap<PlanPolicy, Map<string, { chain: IptChain; sets: Ipset[] }>>();

function cachedPolicyChain(policy: PlanPolicy, direction: Direction, family: Family, reg: SetRegistry): IptChain {
  let byKey = policyChainCache.get(policy);
  if (!byKey) policyChainCache.set(policy, (byKey = new Map()));
  const key = `${direction}/${family}`;
  let hit = byKey.get(key);
  if (!hit) {
    const own = new SetRegistry();
    hit = { chain: renderPolicyChain(policy, direction, family, own), sets: [...own.sets.values()] };
    byKey.set(key, hit);
  }
  for (const set of hit.sets) reg.add(set);
  return hit.chain;
}

/** Renders one policy direction into its chain; the sets it references go into `reg`. */
function renderPolicyChain(policy: PlanPolicy, direction: Direction, family: Family, reg: SetRegistry): IptChain {
  const name = policyChainName(policy.id, direction);
  const rules: IptRule[] = [];
  const setPrefix = direction === 'ingress' ? SRC_SET_PREFIX : DST_SET_PREFIX;
  const setDir = direction === 'ingress' ? 'src' : 'dst';
  for (const rule of policy[direction]) {
    const emitted = renderRule(policy, rule, direction, family, reg, setPrefix, setDir);
    if (emitted.length === 0) continue;
    rules.push(...emitted);
    rules.push({ args: ['-m', 'mark', '--mark', MARK_MATCHED, ...cmt(`${policy.id} ${direction} rule ${rule.origin.ruleIndex}: matched, return`), '-j', 'RETURN'] });
  }
  return { name, policy: '-', rules };
}

interface PeerMatch {
  args: string[];
  text: string;
}

/** One peer × port combination of a rule, as iptables match arguments (no target). */
export interface RuleMatchArgs {
  args: string[];
  /** `peer 0 pods {...} port 80/TCP`, for the rule's comment. */
  text: string;
}

/**
 * The match arguments of every peer × port combination of a rule (NetworkPolicy or
 * ClusterNetworkPolicy), registering the sets they name. Pod peers share one hash:ip set; each CIDR
 * peer gets a hash:net set (`mergeCidrs`: one set for all CIDR peers of the rule, which have no
 * excepts). Empty peer or port lists give no combination: they match nothing, never everything.
 */
export function ruleMatchArgs(
  rule: Pick<PlanRule, 'id' | 'peers' | 'ports'>,
  family: Family,
  reg: SetRegistry,
  setPrefix: typeof SRC_SET_PREFIX | typeof DST_SET_PREFIX,
  setDir: 'src' | 'dst',
  opts: { mergeCidrs?: boolean } = {},
): RuleMatchArgs[] {
  const peers: PeerMatch[] = [];
  if (rule.peers === 'all') peers.push({ args: [], text: 'any peer' });
  else {
    const podPeers = rule.peers.filter((p): p is PodPeer => p.kind === 'pods');
    if (podPeers.length > 0) {
      // All pod peers of a rule share one hash:ip set (as kube-router does).
      const name = peerSetName(setPrefix, `${rule.id}/pods`, family);
      const set = podPeers.length === 1 ? hashIpSetOf(name, family, podPeers[0]!.ips) : hashIpSet(name, family, podPeers.flatMap((p) => p.ips));
      reg.add(set);
      peers.push({ args: ['-m', 'set', '--match-set', set.name, setDir], text: `peer ${podPeers.map((p) => `${p.peerIndex} ${p.describe}`).join('; ')}` });
    }
    // A block of the other family matches nothing here.
    const cidrPeers = rule.peers.filter((p): p is CidrPeer => p.kind === 'cidr' && p.family === family);
    if (opts.mergeCidrs) {
      const members = sortMembers(dedupeMembers(cidrPeers.flatMap((cp) => ipBlockMembers(cp.block, family))));
      if (members.length > 0) {
        const set: Ipset = { name: peerSetName(setPrefix, `${rule.id}/networks`, family), type: 'hash:net', family: setFamily(family), options: [], members };
        reg.add(set);
        peers.push({ args: ['-m', 'set', '--match-set', set.name, setDir], text: `peer ${[...new Set(cidrPeers.map((p) => p.peerIndex))].join(',')} networks` });
      }
    } else {
      for (const cp of cidrPeers) {
        const members = ipBlockMembers(cp.block, family);
        if (members.length === 0) continue; // every address excepted
        const set: Ipset = { name: peerSetName(setPrefix, cp.setId, family), type: 'hash:net', family: setFamily(family), options: [], members };
        reg.add(set);
        peers.push({ args: ['-m', 'set', '--match-set', set.name, setDir], text: `peer ${cp.peerIndex} ${cp.describe}` });
      }
    }
  }
  const ports: { pre: string[]; post: string[]; text: string }[] = [];
  if (rule.ports === 'all') ports.push({ pre: [], post: [], text: 'any port' });
  else {
    for (const p of rule.ports) {
      const pa = portArgs(p);
      if (!pa) continue;
      let post = pa.post;
      let text = `port ${p.spec}`;
      if (p.namedTargets) {
        const set = hashIpSetOf(peerSetName(DST_SET_PREFIX, `${rule.id}/port/${p.portIndex}/${p.protocol}/${p.port ?? 'all'}`, family), family, p.namedTargets.ips);
        reg.add(set);
        post = ['-m', 'set', '--match-set', set.name, 'dst', ...post];
        text = `port ${p.spec}=${p.port ?? ''}`;
      }
      ports.push({ pre: pa.pre, post, text });
    }
  }
  const out: RuleMatchArgs[] = [];
  for (const peer of peers) for (const port of ports) out.push({ args: [...port.pre, ...peer.args, ...port.post], text: `${peer.text} ${port.text}` });
  return out;
}

function dedupeMembers(ms: IpsetMember[]): IpsetMember[] {
  const seen = new Set<string>();
  return ms.filter((m) => {
    const k = `${m.entry}${m.nomatch ? ' nomatch' : ''}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function renderRule(policy: PlanPolicy, rule: PlanRule, direction: Direction, family: Family, reg: SetRegistry, setPrefix: typeof SRC_SET_PREFIX | typeof DST_SET_PREFIX, setDir: 'src' | 'dst'): IptRule[] {
  // An invalid rule grants nothing: never widen.
  if (rule.invalid !== undefined) return [];
  return ruleMatchArgs(rule, family, reg, setPrefix, setDir).map((m) => ({
    args: [...m.args, ...cmt(`${policy.id} ${direction} rule ${rule.origin.ruleIndex} ${m.text}`), '-j', 'MARK', '--set-xmark', MARK_MATCHED],
  }));
}

function commonChain(family: Family): IptChain {
  const icmp =
    family === 'ipv6'
      ? { proto: 'ipv6-icmp', mod: 'icmp6', opt: '--icmpv6-type' }
      : { proto: 'icmp', mod: 'icmp', opt: '--icmp-type' };
  const types: [string, string][] =
    family === 'ipv6'
      ? [
          ['128', 'allow icmp echo requests'],
          ['1', 'allow icmp destination unreachable messages'],
          ['3', 'allow icmp time exceeded messages'],
          ['135', 'allow icmp neighbor solicitation messages'],
          ['136', 'allow icmp neighbor advertisement messages'],
          ['129', 'allow icmp echo reply messages'],
        ]
      : [
          ['8', 'allow icmp echo requests'],
          ['3', 'allow icmp destination unreachable messages'],
          ['11', 'allow icmp time exceeded messages'],
        ];
  return {
    name: COMMON_CHAIN,
    policy: '-',
    rules: [
      { args: [...cmt('rule to drop invalid state for pod'), '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP'] },
      { args: [...cmt('rule for stateful firewall for pod'), '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'] },
      ...types.map(([t, text]) => ({ args: ['-p', icmp.proto, ...cmt(text), '-m', icmp.mod, icmp.opt, t, '-j', 'ACCEPT'] })),
    ],
  };
}

function defaultChain(): IptChain {
  return { name: DEFAULT_CHAIN, policy: '-', rules: [{ args: [...cmt('rule to mark traffic matching a network policy'), '-j', 'MARK', '--set-xmark', MARK_MATCHED] }] };
}

const acceptRule = (): IptRule => ({
  args: ['-m', 'comment', '--comment', 'rule to explicitly ACCEPT traffic that comply to network policies', '-m', 'mark', '--mark', MARK_NETPOL_OK, '-j', 'ACCEPT'],
});

interface PodRender {
  chain: IptChain;
  /** [policy chain, policy id, direction] the pod chain jumps to. */
  policyChains: [string, string, Direction][];
  /** [tier chain, tier, direction, ClusterNetworkPolicy ids in evaluation order] the pod chain jumps to. */
  tierChains: [string, 'admin' | 'baseline', Direction, string[]][];
  /** The pod's IPs of this family with its chain: its leaves in both dispatch trees. */
  dispatch: DispatchEntry[];
}

/**
 * A pod's chain and jumps depend only on its key, IPs, the policies selecting it and which of those
 * carry the direction. Rendered once per distinct input and reused (rules are never mutated), so an
 * event re-renders only the pods it touched and the diff finds the rest unchanged by identity.
 */
const podRenderCache = new LRUCache<string, { r: PodRender | null }>({ max: 8192 });

function cachedPodRender(pod: PlanPod, family: Family, policies: ReadonlyMap<string, PlanPolicy>, limit: LogLimit): PodRender | undefined {
  const dirKey = (ids: readonly string[], direction: Direction) => ids.map((id) => (policies.get(id)?.types.includes(direction) ? id : `!${id}`)).join(',');
  const t = pod.tiers;
  const tierKey = t ? `${t.admin.ingress.join(',')}|${t.admin.egress.join(',')}|${t.baseline.ingress.join(',')}|${t.baseline.egress.join(',')}` : '';
  const key = `${family}\u0000${pod.key}\u0000${pod.ips.join(',')}\u0000${dirKey(pod.ingressPolicies, 'ingress')}\u0000${dirKey(pod.egressPolicies, 'egress')}\u0000${dirKey(pod.ingressAudit ?? [], 'ingress')}\u0000${dirKey(pod.egressAudit ?? [], 'egress')}\u0000${limit.rate ?? ''}/${limit.burst}\u0000${tierKey}`;
  let hit = podRenderCache.get(key);
  if (!hit) podRenderCache.set(key, (hit = { r: renderPod(pod, family, policies, limit) ?? null }));
  return hit.r ?? undefined;
}

function renderPod(pod: PlanPod, family: Family, policies: ReadonlyMap<string, PlanPolicy>, limit: LogLimit): PodRender | undefined {
  const ips = ipsOf(pod, family);
  if (ips.length === 0) return undefined;
  const policyChains: PodRender['policyChains'] = [];
  const tierChains: PodRender['tierChains'] = [];
  const isolatedIn = pod.ingressPolicies.length > 0;
  const isolatedOut = pod.egressPolicies.length > 0;
  const t = pod.tiers;
  const tiered = t !== undefined && [t.admin.ingress, t.admin.egress, t.baseline.ingress, t.baseline.egress].some((l) => l.length > 0);
  // A pod gets a chain when a NetworkPolicy isolates it or a ClusterNetworkPolicy selects it; one
  // only audited policies select is not isolated, but gets a chain to log what they would deny.
  if (!isolatedIn && !isolatedOut && !tiered && pod.ingressAudit === undefined && pod.egressAudit === undefined) return undefined;
  const chain = podChainName(pod.namespace, pod.name);
  const rules: IptRule[] = [{ args: [...cmt(`${pod.key}: common netpol rules`), '-j', COMMON_CHAIN] }];
  for (const ip of ips) {
    const h = hostCidr(ip, family);
    rules.push({ args: ['-s', h, '-d', h, ...cmt(`${pod.key}: a pod reaches itself`), '-j', 'ACCEPT'] });
    rules.push({ args: ['-d', h, '-m', 'addrtype', '--src-type', 'LOCAL', ...cmt(`${pod.key}: from local node`), '-j', 'ACCEPT'] });
  }
  // The NFLOG prefix names the pod by its chain's hash (see nflog.ts): the join with the Plan is a lookup.
  const ref = chain.slice(POD_CHAIN_PREFIX.length);
  for (const direction of ['ingress', 'egress'] as const) {
    const ids = direction === 'ingress' ? pod.ingressPolicies : pod.egressPolicies;
    const sel = direction === 'ingress' ? '-d' : '-s';
    const audited = (direction === 'ingress' ? pod.ingressAudit : pod.egressAudit) ?? [];
    const adminIds = t?.admin[direction] ?? [];
    const baselineIds = t?.baseline[direction] ?? [];
    const adminChain = adminIds.length > 0 ? tierChainName('admin', direction, adminIds) : undefined;
    const baselineChain = baselineIds.length > 0 && ids.length === 0 ? tierChainName('baseline', direction, baselineIds) : undefined;
    if (adminChain) tierChains.push([adminChain, 'admin', direction, adminIds]);
    if (baselineChain) tierChains.push([baselineChain, 'baseline', direction, baselineIds]);
    for (const ip of ips) {
      const h = hostCidr(ip, family);
      // Admin tier first: Deny rejects there, Accept marks 0x10000, Pass returns to what follows.
      if (adminChain) rules.push({ args: [sel, h, ...cmt(`${pod.key}: ${direction} admin tier ${adminIds.join(',')}`), '-j', adminChain] });
      if (ids.length === 0) {
        // Audited policies only matter where no enforced policy isolates (where one does, enforcing
        // an audited one could only allow more: nothing to log). They are judged as they will be once
        // enforced: after the Admin tier (an Admin Accept or Deny still decides then), and instead of
        // the Baseline tier (which no longer applies to an isolated pod) — but only where Baseline
        // does not deny now (that is a denial, not a would-be one). Inside a block fenced by the
        // MARK_AUDIT bit their chains mark what they would allow; the rest is logged as "would deny"
        // and counted; the block leaves the marks cleared, and DEFAULT lets the packet through
        // exactly as without them.
        const auditChains: [string, string][] = [];
        for (const id of audited) {
          const pol = policies.get(id);
          if (!pol || !pol.types.includes(direction)) continue;
          const pc = policyChainName(pol.id, direction);
          policyChains.push([pc, pol.id, direction]);
          auditChains.push([pc, pol.id]);
        }
        const baselineJump = (match: string[]): IptRule => ({ args: [sel, h, '-m', 'mark', ...match, ...cmt(`${pod.key}: ${direction} baseline tier ${baselineIds.join(',')}`), '-j', baselineChain!] });
        if (auditChains.length === 0) {
          // Baseline tier only where no NetworkPolicy isolates, and only if the Admin tier accepted nothing.
          if (baselineChain) rules.push(baselineJump(['!', '--mark', MARK_MATCHED]));
        } else {
          const inBlock = [sel, h, '-m', 'mark', '--mark', MARK_AUDIT];
          rules.push({ args: [sel, h, '-m', 'mark', '!', '--mark', MARK_MATCHED, ...cmt(`${pod.key}: ${direction} audited policies: begin`), '-j', 'MARK', '--set-xmark', MARK_AUDIT] });
          if (baselineChain) {
            rules.push(baselineJump(['--mark', MARK_AUDIT]));
            // What Baseline accepted is judged again by the audited policies (DEFAULT accepts it below).
            rules.push({ args: [...inBlock, ...cmt(`${pod.key}: ${direction} audited policies: judge what baseline accepted`), '-j', 'MARK', '--set-xmark', MARK_RESET_MATCHED] });
          }
          for (const [pc, id] of auditChains) rules.push({ args: [...inBlock, ...cmt(`${pod.key}: ${direction} audited policy ${id}`), '-j', pc] });
          const unmatched = [sel, h, '-m', 'mark', '--mark', MARK_AUDIT_UNMATCHED];
          rules.push(logRule(unmatched, { kind: 'audit', direction, ref, hint: pod.key }, limit, `${pod.key}: log ${direction} audited policies would deny`));
          rules.push({ args: [...unmatched, ...cmt(`${pod.key}: count ${direction} audited policies would deny`)] });
          rules.push({ args: [...inBlock, ...cmt(`${pod.key}: ${direction} audited policies: end`), '-j', 'MARK', '--set-xmark', MARK_AUDIT_CLEAR] });
        }
        rules.push({ args: [sel, h, ...cmt(`${pod.key}: default ${direction}`), '-j', DEFAULT_CHAIN] });
        continue;
      }
      for (const id of ids) {
        const pol = policies.get(id);
        // A policy the plan does not carry grants nothing: the pod stays isolated (fail closed).
        if (!pol || !pol.types.includes(direction)) continue;
        const pc = policyChainName(pol.id, direction);
        policyChains.push([pc, pol.id, direction]);
        rules.push({ args: [sel, h, ...cmt(`${pod.key}: ${direction} policy ${pol.id}`), '-j', pc] });
      }
      // Per direction, so the log entry and the counters say which side denied.
      const unmatched = [sel, h, '-m', 'mark', '!', '--mark', MARK_MATCHED];
      rules.push(logRule(unmatched, { kind: 'deny', direction, ref, hint: pod.key }, limit, `${pod.key}: log ${direction} denied`));
      rules.push({ args: [...unmatched, ...cmt(`${pod.key}: reject ${direction} no policy allows`), ...rejectArgs(family)] });
    }
  }
  rules.push({ args: [...cmt('set netpol-ok mark'), '-j', 'MARK', '--set-xmark', MARK_NETPOL_OK] });
  rules.push({ args: [...cmt('clear matched mark'), '-j', 'MARK', '--set-xmark', MARK_RESET_MATCHED] });

  const comment = cmt(pod.key);
  const dispatch = ips.map((ip) => ({ ip, chain, comment }));
  return { chain: { name: chain, policy: '-', rules }, policyChains, tierChains, dispatch };
}

/**
 * The dispatch trees of the last render per family and direction: most events leave the isolated
 * pods (the pod renders' dispatch entries, reused by identity while a pod is unchanged) as they were,
 * and then the trees are too.
 */
const lastDispatch = new Map<string, { entries: readonly DispatchEntry[]; chains: IptChain[] }>();
function cachedDispatchChains(family: Family, direction: 'dst' | 'src', entries: readonly DispatchEntry[]): IptChain[] {
  const k = `${family}/${direction}`;
  const hit = lastDispatch.get(k);
  if (hit && hit.entries.length === entries.length && hit.entries.every((e, i) => e === entries[i])) return hit.chains;
  const chains = dispatchChains(family, direction, entries);
  lastDispatch.set(k, { entries: [...entries], chains });
  return chains;
}

/** The isolated-pod set, reused (with its member list) while the isolated pods stay the same. */
const lastIsolated = new Map<string, { key: string; set: Ipset }>();
function cachedIsolatedSet(name: string, family: Family, entries: readonly DispatchEntry[]): Ipset {
  const key = entries.map((e) => e.ip).join(',');
  let hit = lastIsolated.get(name);
  if (hit?.key !== key) lastIsolated.set(name, (hit = { key, set: hashIpSet(name, family, entries.map((e) => e.ip)) }));
  return hit.set;
}

export function render(plan: Plan, opts: RenderOptions): Desired {
  const { family } = opts;
  if (family !== 'ipv4' && family !== 'ipv6') throw new RenderError(`family must be ipv4 or ipv6, got ${JSON.stringify(family)}`);
  if (typeof opts.node !== 'string' || opts.node === '') throw new RenderError('node name is required');
  const [npLo, npHi] = opts.nodePortRange ?? [];
  if (!Number.isInteger(npLo) || !Number.isInteger(npHi) || npLo! < 1 || npHi! > 65535 || npLo! > npHi!) {
    throw new RenderError(`node port range ${JSON.stringify(opts.nodePortRange)} is not a range within 1-65535`);
  }
  const failClosed = opts.defaultDeny !== false;
  const limit = opts.logLimit ?? DEFAULT_LOG_LIMIT;
  const reg = new SetRegistry();
  const origins: Record<string, string> = {};

  // Fixed sets first, so their order is stable.
  const node = plan.nodes.find((n) => n.name === opts.node);
  const podSubnets = cachedBy(plan.nodes, `subnets/${family}`, () => hashNetSet(familySetName(POD_SUBNETS_SET, family), family, plan.nodes.flatMap((n) => n.podCIDRs)));
  const nodeIPs = cachedBy(plan.nodes, `nodes/${family}`, () => hashIpSet(familySetName(NODE_IPS_SET, family), family, plan.nodes.flatMap((n) => n.addresses)));
  const ranges = {
    clusterIP: rangesOf(opts.serviceClusterIPRanges, '--service-cluster-ip-range'),
    externalIP: rangesOf(opts.serviceExternalIPRanges ?? [], '--service-external-ip-range'),
    loadBalancerIP: rangesOf(opts.loadBalancerIPRanges ?? [], '--loadbalancer-ip-range'),
    nodePort: [npLo!, npHi!] as const,
  };
  const exempt = cachedExemptions(plan, ranges);
  const servicePorts = serviceSet(exempt, family);
  reg.add(podSubnets);
  reg.add(nodeIPs);
  reg.add(servicePorts);

  const localPods = plan.pods.filter((p) => plan.node !== undefined || p.nodeName === opts.node);
  const policies = new Map(plan.policies.map((p) => [p.id, p]));
  const localCIDRs = failClosed && node ? cidrsOf(node.podCIDRs, family) : [];
  const programmedName = familySetName(PROGRAMMED_SET, family);
  if (localCIDRs.length > 0) reg.add(hashIpSet(programmedName, family, localPods.flatMap((p) => ipsOf(p, family))));

  // Pod chains and the jumps into them.
  const dispatch: DispatchEntry[] = [];
  const podChains: IptChain[] = [];
  /** Policy id → direction → its chain name, for the policies a pod chain jumps to. */
  const wantedPolicyChains = new Map<string, Partial<Record<Direction, string>>>();
  const wantedTierChains = new Map<string, { tier: 'admin' | 'baseline'; direction: Direction; ids: string[] }>();
  for (const pod of localPods) {
    const r = cachedPodRender(pod, family, policies, limit);
    if (!r) continue;
    origins[r.chain.name] = `pod ${pod.key}`;
    podChains.push(r.chain);
    for (const [pc, id, direction] of r.policyChains) {
      let w = wantedPolicyChains.get(id);
      if (!w) wantedPolicyChains.set(id, (w = {}));
      w[direction] = pc;
    }
    for (const [tc, tier, direction, ids] of r.tierChains) wantedTierChains.set(tc, { tier, direction, ids });
    dispatch.push(...r.dispatch);
  }
  // Isolated pods: the dispatch trees, and the set that accepts their established traffic at once.
  const isolated = cachedIsolatedSet(familySetName(ISOLATED_SET, family), family, dispatch);
  reg.add(isolated);
  const dispatchTrees: IptChain[] = [];
  for (const direction of ['dst', 'src'] as const) {
    const what = direction === 'dst' ? 'destination (ingress)' : 'source (egress)';
    for (const c of cachedDispatchChains(family, direction, dispatch)) {
      dispatchTrees.push(c);
      origins[c.name] = `dispatch by ${what} pod IP`;
    }
  }

  // Policy chains (only those a local pod chain jumps to), in policy id order.
  const policyChains: IptChain[] = [];
  for (const pol of plan.policies) {
    const w = wantedPolicyChains.get(pol.id);
    if (!w) continue;
    for (const direction of ['ingress', 'egress'] as const) {
      const pc = w[direction];
      if (pc === undefined) continue;
      origins[pc] = `policy ${pol.id} ${direction}${pol.audit ? ' (audited)' : ''}`;
      policyChains.push(cachedPolicyChain(pol, direction, family, reg));
    }
  }

  // ClusterNetworkPolicy tier chains (only those a local pod chain jumps to), in name order.
  const tierChains: IptChain[] = [];
  const clusterPolicies = new Map(plan.clusterPolicies.map((c) => [c.id, c]));
  for (const [name, w] of [...wantedTierChains].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    // A policy the plan does not carry contributes no rules (the tiers come from the same plan).
    const pols = w.ids.map((id) => clusterPolicies.get(id)).filter((c): c is PlanClusterPolicy => c !== undefined);
    origins[name] = `${w.tier} tier ${w.direction}: ClusterNetworkPolicy ${w.ids.join(', ')}`;
    tierChains.push(renderTierChain(w.tier, w.direction, pols, family, reg, limit));
  }

  // KUBE-ROUTER-INPUT whitelist (service-exemptions.ts): with an IPVS service proxy a Service address
  // is local to every node, and the connection is judged on the backend it is handed to. Only
  // address,proto:port pairs of Services inside the range flags (never a node address or a pod
  // CIDR), and LOCAL node ports that Services have, are let through.
  const inputHead: IptRule[] = [];
  inputHead.push({ args: ['-m', 'set', '--match-set', servicePorts.name, 'dst,dst', ...cmt('allow traffic to Service addresses and ports inside the service ranges'), '-j', 'RETURN'] });
  for (const proto of ['TCP', 'UDP', 'SCTP'] as const) {
    const list = exempt.nodePorts[proto];
    // multiport takes at most 15 ports per rule.
    for (let i = 0; i < list.length; i += 15) {
      inputHead.push({
        args: ['-p', protoName(proto)!, '-m', 'addrtype', '--dst-type', 'LOCAL', '-m', 'multiport', '--dports', list.slice(i, i + 15).join(','), ...cmt(`allow LOCAL ${proto} traffic to Service node ports`), '-j', 'RETURN'],
      });
    }
  }

  // Fail closed: an IP of this node's pod CIDRs that podwall has not programmed is rejected (new
  // connections only; the node's own addresses, e.g. the gateway, stay reachable). The matches are
  // ordered cheapest and most selective first — the address and the conntrack state (native), the
  // set (one hash lookup: every programmed pod stops there), and only then addrtype, which costs a
  // route lookup.
  const failRules = (withSrc: boolean, withDst: boolean): IptRule[] => {
    const out: IptRule[] = [];
    for (const cidr of localCIDRs) {
      const text = 'podwall: reject unprogrammed local pod';
      if (withSrc) {
        const m = ['-s', cidr, '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED', '-m', 'set', '!', '--match-set', programmedName, 'src', '-m', 'addrtype', '!', '--src-type', 'LOCAL'];
        out.push(logRule(m, { kind: 'unprogrammed', direction: 'egress', hint: cidr }, limit, 'podwall: log unprogrammed local pod'));
        out.push({ args: [...m, ...cmt(text), ...rejectArgs(family)] });
      }
      if (withDst) {
        const m = ['-d', cidr, '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED', '-m', 'set', '!', '--match-set', programmedName, 'dst', '-m', 'addrtype', '!', '--dst-type', 'LOCAL'];
        out.push(logRule(m, { kind: 'unprogrammed', direction: 'ingress', hint: cidr }, limit, 'podwall: log unprogrammed local pod'));
        out.push({ args: [...m, ...cmt(text), ...rejectArgs(family)] });
      }
    }
    return out;
  };

  // Established and related packets of isolated pods: accepted here in O(1), as their pod chain's
  // COMMON jump would (conntrack first: a NEW packet fails it without the set lookup).
  const established = (dir: 'src' | 'dst'): IptRule => ({
    args: ['-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-m', 'set', '--match-set', isolated.name, dir, ...cmt(`established traffic ${dir === 'dst' ? 'to' : 'from'} an isolated pod`), '-j', 'ACCEPT'],
  });
  // Any other established or related packet is of no isolated pod: nothing below can decide it (the
  // trees hold only isolated pods, the fail-closed rules judge new connections), so it leaves at once
  // instead of walking both trees.
  const establishedOther: IptRule = {
    args: ['-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', ...cmt('established traffic of pods no policy isolates: not judged here'), '-j', 'RETURN'],
  };
  // (The trees are not gated by podwall-isolated: that set is filled only after the iptables commit,
  // so a gate would postpone enforcing a newly isolated pod from the commit to the set's update.)
  const toDispatch = (direction: 'dst' | 'src'): IptRule => ({
    args: [...cmt(direction === 'dst' ? 'to an isolated pod: its chain (ingress)' : 'from an isolated pod: its chain (egress)'), '-j', DISPATCH_ROOT[direction]],
  });
  const top: IptChain[] = [
    { name: KUBE_ROUTER_INPUT, policy: '-', rules: [...inputHead, established('src'), establishedOther, toDispatch('src'), ...failRules(true, false), acceptRule()] },
    { name: KUBE_ROUTER_FORWARD, policy: '-', rules: [established('dst'), established('src'), establishedOther, toDispatch('dst'), toDispatch('src'), ...failRules(true, true), acceptRule()] },
    { name: KUBE_ROUTER_OUTPUT, policy: '-', rules: [established('dst'), established('src'), establishedOther, toDispatch('dst'), toDispatch('src'), acceptRule()] },
  ];
  for (const c of top) origins[c.name] = 'top-level chain';
  origins[COMMON_CHAIN] = 'common rules';
  origins[DEFAULT_CHAIN] = 'default (not isolated) direction';

  return {
    family,
    sets: [...reg.sets.values()],
    chains: [...top, commonChain(family), defaultChain(), ...dispatchTrees, ...podChains, ...policyChains, ...tierChains],
    jumps: BUILTIN_HOOKS.map((hook) => ({ chain: hook, rule: topLevelJump(hook) })),
    origins,
  };
}

/** Sets referenced by a chain's rules (`--match-set NAME`). */
export function referencedSets(chain: IptChain): string[] {
  const out: string[] = [];
  for (const r of chain.rules) {
    for (let i = 0; i < r.args.length - 1; i++) if (r.args[i] === '--match-set') out.push(r.args[i + 1]!);
  }
  return out;
}

/** Chains a chain's rules jump or go to. */
export function referencedChains(chain: IptChain): string[] {
  const out: string[] = [];
  for (const r of chain.rules) {
    for (let i = 0; i < r.args.length - 1; i++) if (r.args[i] === '-j' || r.args[i] === '-g') out.push(r.args[i + 1]!);
  }
  return out;
}
