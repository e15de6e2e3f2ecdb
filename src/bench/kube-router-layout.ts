// kube-router's firewall layout — a BENCHMARK-ONLY model, never used to enforce anything.
//
// It answers one question: for the same cluster, what does kube-router v2 (`--run-firewall`, iptables
// mode) write to the kernel of the local node on a full sync, and what does that cost? The layout was
// learned from kube-router's pkg/controllers/netpol (npc_iptables.go, policy.go, pod.go, utils.go and
// pkg/utils/ipset.go, iptables.go); this is our own model of it, no code is copied.
//
// Modelled (per IP family, as kube-router runs one handler per family):
// - Every sync is a FULL sync: every NetworkPolicy in the cluster gets its chain and its ipsets on
//   every node, whether or not it selects a local pod (kube-router #1751).
// - Chain names carry the sync version (kube-router hashes namespace+name+version[+family]; the
//   version is the sync's start time in ns): every sync creates all-new policy and pod chains, and the
//   whole filter table is restored with `iptables-restore -T filter` (no --noflush): the saved table
//   minus the previous version's chains, plus the new ones.
// - Per policy: `KUBE-NWPLCY-<16>`; target sets `KUBE-DST-<16>` (ingress) / `KUBE-SRC-<16>` (egress)
//   holding the selected pods' IPs; per ingress rule a `KUBE-SRC` pod set (all pod peers of the rule
//   together), a `KUBE-SRC` hash:net ipBlock set (cidrs, excepts as `nomatch`, /0 split into halves —
//   for IPv6 into 2000::/3 and fd00::/8 as kube-router does), one `KUBE-DST` set per resolved named
//   port; egress mirrors it with `KUBE-DST` sets. Each allow rule is a MARK line plus a RETURN line,
//   one pair per port entry, matching the sets with `-m set --match-set NAME src|dst`.
// - Per local pod: `KUBE-POD-FW-<16>` with, in order (written with `-I ... 1`): one jump per
//   selecting policy (`-d ip` ingress-only, `-s ip` egress-only, none for both), the DEFAULT chain
//   jumps when not isolated in a direction, the from-local-node ACCEPT and the COMMON jump; then
//   NFLOG (group 100, limited), REJECT, mark reset and the netpol-ok mark. Seven jumps per pod from
//   the top-level chains: FORWARD -d, OUTPUT -d, FORWARD physdev -d, INPUT/FORWARD/OUTPUT -s,
//   FORWARD physdev -s.
// - Fixed chains: KUBE-ROUTER-INPUT/FORWARD/OUTPUT jumped from the built-ins (comment with the rule
//   UUID), the service-VIP and node-port whitelist, KUBE-NWPLCY-COMMON (INVALID drop, established,
//   ICMP), KUBE-NWPLCY-DEFAULT (mark), KUBE-NWPLCY-TAIL (accept netpol-ok), and the tail jump and
//   explicit-accept rules at the end of each top-level chain.
// - ipsets are written as kube-router's BuildIPSetRestore does: per set, a TMP set (one per set
//   options) is flushed, filled, the real set created (-exist), swapped, the TMP flushed; TMP sets
//   destroyed at the end. Sets are created with `timeout 0`; entries carry `timeout 0`.
// - One sync runs, per family: `ipset save`, `ipset restore -exist`, `iptables-save -t filter`,
//   `iptables-restore --wait -T filter`, then `ipset save` and `ipset destroy` for stale sets.
//
// Simplified (each makes kube-router look cheaper than it is, never dearer):
// - The dozens of single `iptables` commands kube-router runs per sync to (re)check its fixed chains
//   and top-level jumps (`ensureTopLevelChains` & co.) are not run.
// - Peers are resolved with podwall's compiler (the whole-cluster Plan), so kube-router's own quirks
//   in peer resolution are not reproduced, except: a rule whose named ports resolve to nothing is
//   written without ports (as kube-router's pod branch does), and named ports of an egress rule are
//   resolved on its destination pods. Duplicate IPs within a set are written once.
// - Rules the Plan marks invalid are left out; kube-router would have interpreted them its own way.
// - Other software's rules in the filter table are not modelled (kube-router rewrites them too).
// - `--netpol-default-deny` (kube-router-local-pods set) is off, as it is by default.

import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import type { Endpoint, Family, LabelSelector, NetworkPolicy, Protocol } from '../cluster/model.js';
import { familyOf, objectKey } from '../cluster/model.js';
import type { ClusterStore } from '../cluster/store.js';
import { Selection, compile } from '../policy/compile.js';
import type { Plan, PlanRule } from '../policy/plan.js';
import { resolveNamedPort } from '../policy/ports.js';
import { base32 } from '../dataplane/names.js';
import type { GeneratedCluster } from './generator.js';
import { EVENT_KINDS, applyChanges, makeEvents, type ClusterEvent } from './generator.js';
import { round, summarize } from './stats.js';

// ---------------------------------------------------------------- names (kube-router's scheme)

const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest();
const hash16 = (s: string) => base32(sha(s)).slice(0, 16);
/** kube-router's api.IPFamily strings, part of the hashed identities. */
const K8S_FAMILY: Record<Family, string> = { ipv4: 'IPv4', ipv6: 'IPv6' };
const setName = (name: string, family: Family) => (family === 'ipv6' ? `inet6:${name}` : name);

export const KR_INPUT = 'KUBE-ROUTER-INPUT';
export const KR_FORWARD = 'KUBE-ROUTER-FORWARD';
export const KR_OUTPUT = 'KUBE-ROUTER-OUTPUT';
export const KR_COMMON = 'KUBE-NWPLCY-COMMON';
export const KR_DEFAULT = 'KUBE-NWPLCY-DEFAULT';
export const KR_TAIL = 'KUBE-NWPLCY-TAIL';
const TOP: readonly [string, string][] = [
  ['INPUT', KR_INPUT],
  ['FORWARD', KR_FORWARD],
  ['OUTPUT', KR_OUTPUT],
];

export function krPolicyChain(ns: string, name: string, version: string, family: Family): string {
  return `KUBE-NWPLCY-${hash16(ns + name + version + K8S_FAMILY[family])}`;
}
export function krPodChain(ns: string, name: string, version: string): string {
  return `KUBE-POD-FW-${hash16(ns + name + version)}`;
}
const targetSet = (prefix: 'KUBE-SRC-' | 'KUBE-DST-', ns: string, name: string, f: Family) => setName(prefix + hash16(ns + name + K8S_FAMILY[f]), f);
const ruleSet = (prefix: 'KUBE-SRC-' | 'KUBE-DST-', ns: string, name: string, dir: 'ingress' | 'egress', i: number, f: Family, what: 'pod' | 'ipblock') =>
  setName(prefix + hash16(`${ns}${name}${dir}rule${i}${K8S_FAMILY[f]}${what}`), f);
const namedPortSet = (ns: string, name: string, dir: 'ingress' | 'egress', i: number, j: number, f: Family) => setName(`KUBE-DST-${hash16(`${ns}${name}${dir}rule${i}${j}${K8S_FAMILY[f]}namedport`)}`, f);

/** The UUID kube-router appends to the comment of its positioned rules. */
function ruleUuid(chain: string, spec: string[]): string {
  return base32(sha(chain + spec.join(''))).slice(0, 16);
}

// ---------------------------------------------------------------- the policies, as kube-router sees them

interface KrPorts {
  all: boolean;
  numeric: { protocol: Protocol; port?: number; endPort?: number }[];
  named: { protocol: Protocol; port: number; ips: string[] }[];
}

interface KrRule {
  index: number;
  allPeers: boolean;
  /** At least one peer pod matched (kube-router's `len(srcPods) != 0`). */
  hasPods: boolean;
  podIPs: string[];
  blocks: { cidr: string; except: string[] }[];
  ports: KrPorts;
}

interface KrPolicy {
  namespace: string;
  name: string;
  ingress: boolean;
  egress: boolean;
  targetIPs: string[];
  ingressRules: KrRule[];
  egressRules: KrRule[];
}

function krRuleFromPlan(r: PlanRule, index: number): KrRule | undefined {
  if (r.invalid !== undefined) return undefined;
  const podIPs = new Set<string>();
  let hasPods = false;
  const blocks: KrRule['blocks'] = [];
  if (r.peers !== 'all') {
    for (const p of r.peers) {
      if (p.kind === 'pods') {
        if (p.pods.length) hasPods = true;
        for (const ip of p.ips) podIPs.add(ip);
      } else blocks.push(p.block);
    }
  }
  const ports: KrPorts = { all: r.ports === 'all', numeric: [], named: [] };
  if (r.ports !== 'all') {
    for (const p of r.ports) {
      if (p.name !== undefined) ports.named.push({ protocol: p.protocol, port: p.port!, ips: p.namedTargets?.ips ?? [] });
      else ports.numeric.push({ protocol: p.protocol, ...(p.port !== undefined ? { port: p.port } : {}), ...(p.endPort !== undefined ? { endPort: p.endPort } : {}) });
    }
  }
  return { index, allPeers: r.peers === 'all', hasPods, podIPs: [...podIPs], blocks, ports };
}

/** A policy that selects no pod is absent from the Plan, but kube-router still writes it: resolve its peers here. */
function krPolicyWithoutTargets(np: NetworkPolicy, sel: Selection): KrPolicy {
  const rules = (dir: 'ingress' | 'egress'): KrRule[] => {
    if (!np.policyTypes.includes(dir)) return [];
    const out: KrRule[] = [];
    np[dir].forEach((r, index) => {
      if (r.invalid !== undefined) return;
      const pods: Endpoint[] = [];
      const blocks: KrRule['blocks'] = [];
      for (const peer of r.peers) {
        if (peer.ipBlock) {
          blocks.push(peer.ipBlock);
          continue;
        }
        const nss = peer.namespaceSelector ? sel.namespacesMatching(peer.namespaceSelector) : [np.namespace];
        for (const ns of nss) pods.push(...sel.podsMatching(ns, peer.podSelector as LabelSelector | undefined));
      }
      const ports: KrPorts = { all: r.ports.length === 0, numeric: [], named: [] };
      // Ingress named ports resolve on the targets (none here); egress ones on the destination pods.
      const dests = dir === 'egress' ? (r.peers.length === 0 ? sel.podsIn(np.namespace) : pods) : [];
      for (const p of r.ports) {
        if (typeof p.port !== 'string') {
          ports.numeric.push({ protocol: p.protocol, ...(p.port !== undefined ? { port: p.port } : {}), ...(p.endPort !== undefined && p.endPort !== p.port ? { endPort: p.endPort } : {}) });
          continue;
        }
        const byNumber = new Map<number, string[]>();
        for (const d of dests) {
          const n = resolveNamedPort(d.ports, p.port, p.protocol);
          if (n === undefined) continue;
          let l = byNumber.get(n);
          if (!l) byNumber.set(n, (l = []));
          l.push(...d.ips);
        }
        for (const n of [...byNumber.keys()].sort((a, b) => a - b)) ports.named.push({ protocol: p.protocol, port: n, ips: byNumber.get(n)! });
      }
      out.push({ index, allPeers: r.peers.length === 0, hasPods: pods.length > 0, podIPs: [...new Set(pods.flatMap((p) => p.ips))], blocks, ports });
    });
    return out;
  };
  return { namespace: np.namespace, name: np.name, ingress: np.policyTypes.includes('ingress'), egress: np.policyTypes.includes('egress'), targetIPs: [], ingressRules: rules('ingress'), egressRules: rules('egress') };
}

function krPolicies(store: ClusterStore, plan: Plan): KrPolicy[] {
  const ipsByKey = new Map<string, string[]>();
  for (const p of plan.pods) ipsByKey.set(p.key, p.ips);
  const planned = new Map(plan.policies.map((p) => [p.id, p]));
  const all = [...store.policies.values()].sort((a, b) => (objectKey(a) < objectKey(b) ? -1 : objectKey(a) > objectKey(b) ? 1 : 0));
  let sel: Selection | undefined;
  const out: KrPolicy[] = [];
  for (const np of all) {
    const pp = planned.get(objectKey(np));
    if (!pp) {
      out.push(krPolicyWithoutTargets(np, (sel ??= new Selection(store))));
      continue;
    }
    const conv = (rules: PlanRule[]) => rules.map((r, i) => krRuleFromPlan(r, i)).filter((r): r is KrRule => r !== undefined);
    out.push({
      namespace: np.namespace,
      name: np.name,
      ingress: pp.types.includes('ingress'),
      egress: pp.types.includes('egress'),
      targetIPs: pp.targets.flatMap((k) => ipsByKey.get(k) ?? []),
      ingressRules: conv(pp.ingress),
      egressRules: conv(pp.egress),
    });
  }
  return out;
}

// ---------------------------------------------------------------- payloads

export interface KubeRouterOptions {
  /** The local node. */
  node: string;
  /** Sync version mixed into chain names (kube-router: the sync's start time in ns, base 10). Default `0`. */
  version?: string;
  /** Families to write. Default: the families of the local node's pod CIDRs (IPv4 when it has none). */
  families?: Family[];
  /** A whole-cluster Plan of the same store (`compile(store)`), to skip compiling again. */
  plan?: Plan;
  /** `--service-cluster-ip-range` (one per family). Default 10.96.0.0/12 (and fd00:96::/108 for IPv6). */
  serviceClusterIPRanges?: string[];
  /** `--service-external-ip-range` values. Default none. */
  serviceExternalIPRanges?: string[];
  /** `--loadbalancer-ip-range` values. Default none. */
  loadBalancerIPRanges?: string[];
  /** `--service-node-port-range`, iptables multiport syntax. Default `30000:32767`. */
  nodePortRange?: string;
}

export interface LayoutCounts {
  /** User chains declared (built-ins excluded). */
  chains: number;
  /** `-A` / `-I` lines. */
  rules: number;
  /** Jumps from the KUBE-ROUTER-* chains into pod chains (seven per pod and family). */
  podJumps: number;
  /** Real sets (TMP sets excluded). */
  sets: number;
  /** Entries added (nomatch entries included). */
  members: number;
  ipsetLines: number;
  iptablesLines: number;
  ipsetBytes: number;
  iptablesBytes: number;
}

export interface KubeRouterFamilySync {
  family: Family;
  /** Input of `ipset restore -exist`. */
  ipsetRestore: string;
  /** Input of `iptables-restore --wait -T filter` (ip6tables-restore for IPv6): the whole filter table. */
  iptablesRestore: string;
  /** Every real set this sync keeps (kube-router destroys KUBE-SRC/KUBE-DST sets not listed). */
  activeSets: string[];
  counts: LayoutCounts;
}

export interface KubeRouterSync {
  version: string;
  families: KubeRouterFamilySync[];
  /** Sums over the families. */
  counts: LayoutCounts;
  policies: number;
  localPods: number;
}

const zeroCounts = (): LayoutCounts => ({ chains: 0, rules: 0, podJumps: 0, sets: 0, members: 0, ipsetLines: 0, iptablesLines: 0, ipsetBytes: 0, iptablesBytes: 0 });

/** ipset writer in kube-router's BuildIPSetRestore shape. */
class IpsetWriter {
  /** `ips`: plain addresses (written with ` timeout 0`); `specs`: full entry specs (ipBlock entries). */
  private readonly sets = new Map<string, { options: string; ips: readonly string[]; specs: readonly string[] }>();
  /** RefreshSet: the first call fixes the type (as in kube-router), later calls replace the entries. */
  refresh(name: string, type: 'hash:ip' | 'hash:net', family: Family, ips: readonly string[], specs: readonly string[] = []): void {
    const existing = this.sets.get(name);
    const options = existing?.options ?? `${type} timeout 0${family === 'ipv6' ? ' family inet6' : ''}`;
    this.sets.set(name, { options, ips, specs });
  }
  names(): string[] {
    return [...this.sets.keys()].sort();
  }
  write(counts: LayoutCounts): string {
    // One string per set (entries joined in one go): a million small strings would cost more in GC
    // than the rest of the layout.
    const chunks: string[] = [];
    const tmp = new Map<string, string>();
    let lines = 0;
    for (const name of this.names()) {
      const s = this.sets.get(name)!;
      let t = tmp.get(s.options);
      if (!t) {
        t = `TMP-${base32(createHash('sha1').update(`tmp:${s.options}`).digest().subarray(0, 10))}`;
        tmp.set(s.options, t);
        chunks.push(`create ${t} ${s.options}\nflush ${t}\n`);
        lines += 2;
      }
      if (s.ips.length) chunks.push(`add ${t} ${s.ips.join(` timeout 0\nadd ${t} `)} timeout 0\n`);
      for (const e of s.specs) chunks.push(`add ${t} ${e}\n`);
      const n = s.ips.length + s.specs.length;
      counts.members += n;
      chunks.push(`create ${name} ${s.options}\nswap ${t} ${name}\nflush ${t}\n`);
      lines += n + 3;
    }
    for (const t of [...tmp.values()].sort()) {
      chunks.push(`destroy ${t}\n`);
      lines++;
    }
    counts.sets += this.sets.size;
    counts.ipsetLines += lines;
    const text = chunks.join('');
    counts.ipsetBytes += Buffer.byteLength(text);
    return text;
  }
}

const q = (comment: string) => `"${comment.replace(/[\u0000-\u001f"\\]/g, '').slice(0, 120)}"`;
const inFamily = (f: Family) => (ip: string) => familyOf(ip) === f;

/** kube-router's /0 handling: IPv4 halves; IPv6 only 2000::/3 and fd00::/8. */
function blockEntries(blocks: KrRule['blocks'], f: Family): string[] {
  const out: string[] = [];
  const expand = (c: string) => (c.endsWith('/0') ? (f === 'ipv4' ? ['0.0.0.0/1', '128.0.0.0/1'] : ['2000::/3', 'fd00::/8']) : [c]);
  for (const b of blocks) {
    if (familyOf(b.cidr) !== f) continue;
    for (const c of expand(b.cidr)) out.push(`${c} timeout 0`);
    for (const e of b.except) for (const c of expand(e)) out.push(`${c} timeout 0 nomatch`);
  }
  return out;
}

/** Builds the payloads of one full sync on `opts.node`. Pure (reads the store, compiles when no plan is given). */
export function kubeRouterFullSync(store: ClusterStore, opts: KubeRouterOptions): KubeRouterSync {
  const version = opts.version ?? '0';
  const plan = opts.plan ?? compile(store);
  if (plan.node !== undefined) throw new Error(`kube-router layout: needs a whole-cluster plan (compile(store)), got one for node ${plan.node}`);
  const node = store.nodes.get(opts.node);
  const families: Family[] = opts.families ?? (node && node.podCIDRs.length ? [...new Set(node.podCIDRs.map(familyOf))].sort() : ['ipv4']);
  const policies = krPolicies(store, plan);
  const policyById = new Map(policies.map((p) => [`${p.namespace}/${p.name}`, p]));
  const local = plan.pods.filter((p) => p.nodeName === opts.node);
  const out: KubeRouterSync = { version, families: [], counts: zeroCounts(), policies: policies.length, localPods: local.length };

  for (const f of families) {
    const counts = zeroCounts();
    const sets = new IpsetWriter();
    const chains: string[] = [];
    const rules: string[] = [];
    const fam = inFamily(f);
    // Addresses of this family; the array itself when it holds no other family (the common case).
    const only = (ips: readonly string[]): readonly string[] => (ips.every(fam) ? ips : ips.filter(fam));

    // Fixed part: what the ensure* steps leave in the saved table before the sync adds its chains.
    chains.push(KR_INPUT, KR_FORWARD, KR_OUTPUT, KR_COMMON, KR_DEFAULT, KR_TAIL);
    for (const [builtin, custom] of TOP) {
      const spec = ['-m', 'comment', '--comment', 'kube-router netpol', '-j', custom];
      rules.push(`-A ${builtin} -m comment --comment ${q(`kube-router netpol - ${ruleUuid(builtin, spec)}`)} -j ${custom}`);
    }
    const whitelist = (comment: string, match: string, tail: string) => {
      const c = `${comment} - ${ruleUuid(KR_INPUT, [match, comment, tail])}`;
      rules.push(`-A ${KR_INPUT} ${match} -m comment --comment ${q(c)} ${tail}`);
    };
    const clusterRanges = (opts.serviceClusterIPRanges ?? (f === 'ipv6' ? ['fd00:96::/108'] : ['10.96.0.0/12'])).filter((c) => familyOf(c) === f);
    for (const r of clusterRanges) whitelist('allow traffic to primary/secondary cluster IP range', `-d ${r}`, '-j RETURN');
    const npr = opts.nodePortRange ?? '30000:32767';
    for (const proto of ['tcp', 'udp', 'sctp']) whitelist(`allow LOCAL ${proto.toUpperCase()} traffic to node ports`, `-p ${proto}`, `-m addrtype --dst-type LOCAL -m multiport --dports ${npr} -j RETURN`);
    for (const r of (opts.serviceExternalIPRanges ?? []).filter((c) => familyOf(c) === f)) whitelist(`allow traffic to external IP range: ${r}`, `-d ${r}`, '-j RETURN');
    for (const r of (opts.loadBalancerIPRanges ?? []).filter((c) => familyOf(c) === f)) whitelist(`allow traffic to load balancer IP range: ${r}`, `-d ${r}`, '-j RETURN');
    rules.push(`-A ${KR_COMMON} -m comment --comment ${q('rule to drop invalid state for pod')} -m conntrack --ctstate INVALID -j DROP`);
    rules.push(`-A ${KR_COMMON} -m comment --comment ${q('rule for stateful firewall for pod')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
    const icmp =
      f === 'ipv4'
        ? [['echo-request', 'allow icmp echo requests'], ['destination-unreachable', 'allow icmp destination unreachable messages'], ['time-exceeded', 'allow icmp time exceeded messages']]
        : [
            ['echo-request', 'allow icmp echo requests'],
            ['destination-unreachable', 'allow icmp destination unreachable messages'],
            ['time-exceeded', 'allow icmp time exceeded messages'],
            ['neighbor-solicitation', 'allow icmp neighbor solicitation messages'],
            ['neighbor-advertisement', 'allow icmp neighbor advertisement messages'],
            ['echo-reply', 'allow icmp echo reply messages'],
          ];
    for (const [type, comment] of icmp) rules.push(`-A ${KR_COMMON} -m comment --comment ${q(comment!)} ${f === 'ipv4' ? `-p icmp --icmp-type ${type}` : `-p ipv6-icmp --icmpv6-type ${type}`} -j ACCEPT`);
    rules.push(`-A ${KR_DEFAULT} -m comment --comment ${q('rule to mark traffic matching a network policy')} -j MARK --set-xmark 0x10000/0x10000`);
    rules.push(`-A ${KR_TAIL} -m comment --comment ${q('accept netpol-ok')} -m mark --mark 0x20000/0x20000 -j ACCEPT`);

    // Policy chains and their sets.
    for (const p of policies) {
      const chain = krPolicyChain(p.namespace, p.name, version, f);
      chains.push(chain);
      const targets = only(p.targetIPs);
      const allow = (kind: string, src: string, dst: string, proto: string, port: string, endPort: string) => {
        let a = `-A ${chain} -m comment --comment ${q(`${p.namespace}/${p.name} ${kind}`)}`;
        if (src) a += ` -m set --match-set ${src} src`;
        if (dst) a += ` -m set --match-set ${dst} dst`;
        if (proto) a += ` -p ${proto}`;
        if (port) a += ` --dport ${endPort ? `${port}:${endPort}` : port}`;
        rules.push(`${a} -j MARK --set-xmark 0x10000/0x10000`, `${a} -m mark --mark 0x10000/0x10000 -j RETURN`);
      };
      const portArgs = (x: { protocol: Protocol; port?: number; endPort?: number }): [string, string, string] => [x.protocol, x.port !== undefined ? String(x.port) : '', x.endPort !== undefined ? String(x.endPort) : ''];

      if (p.ingress) {
        const dst = targetSet('KUBE-DST-', p.namespace, p.name, f);
        sets.refresh(dst, 'hash:ip', f, targets);
        for (const r of p.ingressRules) {
          const named = (j: number, ips: string[], type: 'hash:ip' | 'hash:net') => {
            const n = namedPortSet(p.namespace, p.name, 'ingress', r.index, j, f);
            sets.refresh(n, type, f, only(ips));
            return n;
          };
          if (r.hasPods) {
            const src = ruleSet('KUBE-SRC-', p.namespace, p.name, 'ingress', r.index, f, 'pod');
            sets.refresh(src, 'hash:ip', f, only(r.podIPs));
            for (const x of r.ports.numeric) allow('ingress pods', src, dst, ...portArgs(x));
            r.ports.named.forEach((x, j) => allow('ingress pods np', src, named(j, x.ips, 'hash:ip'), x.protocol, String(x.port), ''));
            if (r.ports.numeric.length === 0 && r.ports.named.length === 0) allow('ingress pods', src, dst, '', '', '');
          }
          if (r.allPeers && !r.ports.all) {
            for (const x of r.ports.numeric) allow('ingress any', '', dst, ...portArgs(x));
            r.ports.named.forEach((x, j) => allow('ingress any np', '', named(j, x.ips, 'hash:ip'), x.protocol, String(x.port), ''));
          }
          if (r.allPeers && r.ports.all) allow('ingress any', '', dst, '', '', '');
          const blocks = blockEntries(r.blocks, f);
          if (blocks.length) {
            const b = ruleSet('KUBE-SRC-', p.namespace, p.name, 'ingress', r.index, f, 'ipblock');
            sets.refresh(b, 'hash:net', f, [], blocks);
            if (!r.ports.all) {
              for (const x of r.ports.numeric) allow('ingress cidr', b, dst, ...portArgs(x));
              r.ports.named.forEach((x, j) => allow('ingress cidr np', b, named(j, x.ips, 'hash:net'), x.protocol, String(x.port), ''));
            } else allow('ingress cidr', b, dst, '', '', '');
          }
        }
      }
      if (p.egress) {
        const src = targetSet('KUBE-SRC-', p.namespace, p.name, f);
        sets.refresh(src, 'hash:ip', f, targets);
        for (const r of p.egressRules) {
          if (r.hasPods) {
            const dst = ruleSet('KUBE-DST-', p.namespace, p.name, 'egress', r.index, f, 'pod');
            sets.refresh(dst, 'hash:ip', f, only(r.podIPs));
            for (const x of r.ports.numeric) allow('egress pods', src, dst, ...portArgs(x));
            r.ports.named.forEach((x, j) => {
              const n = namedPortSet(p.namespace, p.name, 'egress', r.index, j, f);
              sets.refresh(n, 'hash:ip', f, only(x.ips));
              allow('egress pods np', src, n, x.protocol, String(x.port), '');
            });
            if (r.ports.numeric.length === 0 && r.ports.named.length === 0) allow('egress pods', src, dst, '', '', '');
          }
          if (r.allPeers && !r.ports.all) {
            for (const x of r.ports.numeric) allow('egress any', src, '', ...portArgs(x));
            for (const x of r.ports.named) allow('egress any np', src, '', x.protocol, String(x.port), '');
          }
          if (r.allPeers && r.ports.all) allow('egress any', src, '', '', '', '');
          const blocks = blockEntries(r.blocks, f);
          if (blocks.length) {
            const b = ruleSet('KUBE-DST-', p.namespace, p.name, 'egress', r.index, f, 'ipblock');
            sets.refresh(b, 'hash:net', f, [], blocks);
            if (!r.ports.all) for (const x of r.ports.numeric) allow('egress cidr', src, b, ...portArgs(x));
            else allow('egress cidr', src, b, '', '', '');
          }
        }
      }
    }

    // Pod chains and the seven jumps per pod.
    for (const pod of local) {
      const ip = pod.ips.find(fam);
      if (ip === undefined) continue;
      const chain = krPodChain(pod.namespace, pod.name, version);
      chains.push(chain);
      const selecting = new Set([...pod.ingressPolicies, ...pod.egressPolicies]);
      let hasIngress = false;
      let hasEgress = false;
      for (const p of policies) {
        const id = `${p.namespace}/${p.name}`;
        if (!selecting.has(id)) continue;
        const kp = policyById.get(id)!;
        const pc = krPolicyChain(kp.namespace, kp.name, version, f);
        const c = q(`${kp.namespace}/${kp.name} policy`);
        if (kp.ingress && kp.egress) {
          hasIngress = hasEgress = true;
          rules.push(`-I ${chain} 1 -m comment --comment ${c} -j ${pc}`);
        } else if (kp.ingress) {
          hasIngress = true;
          rules.push(`-I ${chain} 1 -d ${ip} -m comment --comment ${c} -j ${pc}`);
        } else if (kp.egress) {
          hasEgress = true;
          rules.push(`-I ${chain} 1 -s ${ip} -m comment --comment ${c} -j ${pc}`);
        }
      }
      if (!hasIngress) rules.push(`-I ${chain} 1 -d ${ip} -m comment --comment ${q('default ingress')} -j ${KR_DEFAULT}`);
      if (!hasEgress) rules.push(`-I ${chain} 1 -s ${ip} -m comment --comment ${q('default egress')} -j ${KR_DEFAULT}`);
      rules.push(`-I ${chain} 1 -m comment --comment ${q('from local node')} -m addrtype --src-type LOCAL -d ${ip} -j ACCEPT`);
      rules.push(`-I ${chain} 1 -m comment --comment ${q('common netpol rules')} -j ${KR_COMMON}`);
      const cin = q(`${pod.namespace}/${pod.name} in`);
      const cout = q(`${pod.namespace}/${pod.name} out`);
      rules.push(`-A ${KR_FORWARD} -m comment --comment ${cin} -d ${ip} -j ${chain}`);
      rules.push(`-A ${KR_OUTPUT} -m comment --comment ${cin} -d ${ip} -j ${chain}`);
      rules.push(`-A ${KR_FORWARD} -m physdev --physdev-is-bridged -m comment --comment ${cin} -d ${ip} -j ${chain}`);
      for (const [, top] of TOP) rules.push(`-A ${top} -m comment --comment ${cout} -s ${ip} -j ${chain}`);
      rules.push(`-A ${KR_FORWARD} -m physdev --physdev-is-bridged -m comment --comment ${cout} -s ${ip} -j ${chain}`);
      counts.podJumps += 7;
      rules.push(`-A ${chain} -m comment --comment ${q(`${pod.namespace}/${pod.name} log-drop`)} -m mark ! --mark 0x10000/0x10000 -j NFLOG --nflog-group 100 -m limit --limit 10/minute --limit-burst 10`);
      rules.push(`-A ${chain} -m comment --comment ${q(`${pod.namespace}/${pod.name} reject`)} -m mark ! --mark 0x10000/0x10000 -j REJECT`);
      rules.push(`-A ${chain} -j MARK --set-mark 0/0x10000`);
      rules.push(`-A ${chain} -m comment --comment ${q('set netpol-ok mark')} -j MARK --set-mark 0x20000/0x20000`);
    }

    // Tail of each top-level chain.
    for (const [, top] of TOP) rules.push(`-A ${top} -m comment --comment ${q('rule to explicitly handle traffic for network policies ACCEPT/REJECT decision')} -j ${KR_TAIL}`);
    for (const [, top] of TOP) rules.push(`-A ${top} -m comment --comment ${q('rule to explicitly ACCEPT traffic that comply to network policies')} -m mark --mark 0x20000/0x20000 -j ACCEPT`);

    const lines = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...chains.map((c) => `:${c} - [0:0]`), ...rules, 'COMMIT'];
    const iptablesRestore = `${lines.join('\n')}\n`;
    counts.chains = chains.length;
    counts.rules = rules.length;
    counts.iptablesLines = lines.length;
    counts.iptablesBytes = Buffer.byteLength(iptablesRestore);
    const ipsetRestore = sets.write(counts);
    out.families.push({ family: f, ipsetRestore, iptablesRestore, activeSets: sets.names(), counts });
    for (const k of Object.keys(counts) as (keyof LayoutCounts)[]) out.counts[k] += counts[k];
  }
  return out;
}

// ---------------------------------------------------------------- measuring it in a network namespace

export interface MeasureOptions {
  cluster: GeneratedCluster;
  /** The cluster loaded in a store (left as it was found). */
  store: ClusterStore;
  node: string;
  /** Creates a network namespace for this measurement and returns its name (the caller deletes it). */
  newNamespace: (tag: string) => string;
  /** Events to run (kinds round-robin); 0: cold sync only. */
  events: number;
  seed: number;
  progress?: (line: string) => void;
  /** `nft` (default) or `legacy` iptables. */
  backend?: 'nft' | 'legacy';
}

export interface SyncTiming {
  /** Our model building the payloads (compile + layout): not kube-router's own CPU. */
  modelMs: number;
  ipsetSaveMs: number;
  ipsetRestoreMs: number;
  iptablesSaveMs: number;
  iptablesRestoreMs: number;
  staleSetsMs: number;
  /** Sum of the kernel-facing commands. */
  kernelMs: number;
}

export interface KubeRouterMeasurement {
  layout: 'kube-router v2 full sync (benchmark model)';
  counts: LayoutCounts;
  policies: number;
  localPods: number;
  cold: SyncTiming;
  events: { n: number; kernelP50: number; kernelP90: number; kernelP99: number; kernelMax: number; modelP50: number; perKind: { kind: string; n: number; kernelP50: number }[] };
}

function run(ns: string, cmd: string[], input?: string): { ms: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync('ip', ['netns', 'exec', ns, ...cmd], { input: input ?? '', encoding: 'utf8', maxBuffer: 1 << 30 });
  const ms = performance.now() - t0;
  if (r.error) throw new Error(`${cmd.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} exited ${r.status}: ${(r.stderr || '').trim().split('\n').slice(0, 3).join(' | ')}`);
  return { ms, stdout: r.stdout };
}

/** Runs one full sync's kernel commands, as kube-router does, for every family of `sync`. */
export function applyKubeRouterSync(ns: string, sync: KubeRouterSync, backend: 'nft' | 'legacy' = 'nft'): Omit<SyncTiming, 'modelMs'> {
  const t: Omit<SyncTiming, 'modelMs'> = { ipsetSaveMs: 0, ipsetRestoreMs: 0, iptablesSaveMs: 0, iptablesRestoreMs: 0, staleSetsMs: 0, kernelMs: 0 };
  for (const fs of sync.families) {
    const v6 = fs.family === 'ipv6' ? '6' : '';
    t.ipsetSaveMs += run(ns, ['ipset', 'save']).ms;
    t.ipsetRestoreMs += run(ns, ['ipset', 'restore', '-exist'], fs.ipsetRestore).ms;
    t.iptablesSaveMs += run(ns, [`ip${v6}tables-${backend}-save`, '-t', 'filter']).ms;
    t.iptablesRestoreMs += run(ns, [`ip${v6}tables-${backend}-restore`, '--wait', '-T', 'filter'], fs.iptablesRestore).ms;
    // Stale KUBE-SRC/KUBE-DST sets of this family.
    const t0 = performance.now();
    const active = new Set(fs.activeSets);
    const prefix = fs.family === 'ipv6' ? 'inet6:KUBE-' : 'KUBE-';
    const saved = run(ns, ['ipset', 'save']).stdout;
    for (const line of saved.split('\n')) {
      if (!line.startsWith('create ')) continue;
      const name = line.split(' ')[1]!;
      if ((name.startsWith(`${prefix}SRC-`) || name.startsWith(`${prefix}DST-`)) && !active.has(name)) run(ns, ['ipset', 'destroy', name]);
    }
    t.staleSetsMs += performance.now() - t0;
  }
  t.kernelMs = t.ipsetSaveMs + t.ipsetRestoreMs + t.iptablesSaveMs + t.iptablesRestoreMs + t.staleSetsMs;
  return t;
}

let versionCounter = 0n;
/** A sync version like kube-router's (ns since the epoch, base 10), strictly increasing within this process. */
export function syncVersion(): string {
  let v = BigInt(Date.now()) * 1_000_000n;
  if (v <= versionCounter) v = versionCounter + 1n;
  versionCounter = v;
  return v.toString();
}

/**
 * Measures kube-router's layout for the cluster in a network namespace: a cold full sync, then
 * `events` events (kinds round-robin), each followed by the full sync kube-router would run. The store
 * is restored after each event; the kernel is not (the next full sync rewrites everything anyway).
 */
export async function measure(o: MeasureOptions): Promise<KubeRouterMeasurement> {
  const progress = o.progress ?? (() => {});
  const backend = o.backend ?? 'nft';
  const ns = o.newNamespace('kr');
  const build = () => {
    const t0 = performance.now();
    const sync = kubeRouterFullSync(o.store, { node: o.node, version: syncVersion(), families: o.cluster.dualStack ? ['ipv4', 'ipv6'] : ['ipv4'] });
    return { sync, modelMs: performance.now() - t0 };
  };
  progress("kube-router layout: building the cold full sync");
  const { counts, policies, localPods, coldT, coldModelMs } = (() => {
    const cold = build();
    const c = cold.sync.counts;
    progress(`kube-router layout: cold sync — ${c.chains} chains, ${c.rules} rules, ${c.sets} sets, ${c.members} members`);
    const t = applyKubeRouterSync(ns, cold.sync, backend);
    return { counts: c, policies: cold.sync.policies, localPods: cold.sync.localPods, coldT: t, coldModelMs: cold.modelMs };
  })();

  const perKindN = Math.ceil(o.events / EVENT_KINDS.length);
  const byKind = new Map<string, ClusterEvent[]>();
  const kernel: number[] = [];
  const model: number[] = [];
  const perKind = new Map<string, number[]>();
  for (let i = 0; i < o.events; i++) {
    const kind = EVENT_KINDS[i % EVENT_KINDS.length]!;
    let evs = byKind.get(kind);
    if (!evs) byKind.set(kind, (evs = makeEvents(o.cluster, kind, perKindN, o.seed * 7919 + EVENT_KINDS.indexOf(kind))));
    const ev = evs[Math.floor(i / EVENT_KINDS.length)]!;
    progress(`kube-router layout: event ${i + 1}/${o.events} (${kind}) → full sync`);
    applyChanges(o.store, ev);
    try {
      const b = build();
      const t = applyKubeRouterSync(ns, b.sync, backend);
      kernel.push(t.kernelMs);
      model.push(b.modelMs);
      let l = perKind.get(kind);
      if (!l) perKind.set(kind, (l = []));
      l.push(t.kernelMs);
    } finally {
      applyChanges(o.store, ev.undo);
    }
  }
  const k = summarize(kernel);
  return {
    layout: 'kube-router v2 full sync (benchmark model)',
    counts,
    policies,
    localPods,
    cold: { modelMs: round(coldModelMs), ...(Object.fromEntries(Object.entries(coldT).map(([a, b]) => [a, round(b)])) as Omit<SyncTiming, 'modelMs'>) },
    events: {
      n: k.n,
      kernelP50: round(k.p50),
      kernelP90: round(k.p90),
      kernelP99: round(k.p99),
      kernelMax: round(k.max),
      modelP50: round(summarize(model).p50),
      perKind: [...perKind].map(([kind, xs]) => ({ kind, n: xs.length, kernelP50: round(summarize(xs).p50) })),
    },
  };
}
