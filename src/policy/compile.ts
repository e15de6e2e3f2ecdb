// compile(store, {node}) → Plan. The ONLY place NetworkPolicy semantics live. Pure, synchronous.
import type { ClusterStore } from '../cluster/store.js';
import type { Direction, Endpoint, LabelSelector, Namespace, NetworkPolicy, Pod, PolicyPeer, PolicyPort, PolicyRule } from '../cluster/model.js';
import { familyOf, isActionablePod, isIPlessEndpoint, objectKey } from '../cluster/model.js';
import { shadowedWorkloads } from '../cluster/workloads.js';
import { effectiveEnforcement } from './audit.js';
import { describeSelector, isEmptySelector, selectorMatches } from './selector.js';
import { resolveNamedPort } from './ports.js';
import { blockCoverage, ipInBlock, mustCIDR } from '../net/ip.js';
import type { CidrPeer, Plan, PlanClusterPolicy, PlanPeer, PlanPod, PlanPolicy, PlanPort, PlanRule, PodPeer, RuleOrigin } from './plan.js';
import { DEFAULT_POD_NETWORK, ruleId } from './plan.js';
import { attachTiers, compileClusterPolicies } from './cluster-policy.js';

export interface CompileOptions {
  /** Compile for one node: only its pods are targets, only policies selecting them are kept. */
  node?: string;
  /**
   * Analysis: workloads and planned pods (no status) are endpoints too, without an address. Never
   * for the dataplane (an IP-less endpoint has nothing to program); ignored with `node`.
   */
  ipless?: boolean;
  /** The pod network IP-less endpoints take their addresses from (CIDRs); default: every address. */
  podNetwork?: readonly string[];
}

const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Memoised selector evaluation for one compile run (lazy per namespace: cheap for node plans). */
export class Selection {
  private readonly nsCache = new Map<string, string[]>();
  /** Namespace → selector → its pods. */
  private readonly podCache = new Map<string, Map<string, Endpoint[]>>();
  private readonly actionable = new Map<string, Endpoint[]>();
  /** Namespace → the peerCache keys whose pods come from it (what a pod change there invalidates). */
  private readonly peersByNamespace = new Map<string, Set<string>>();
  private all: Endpoint[] | undefined;
  private names: readonly string[] | undefined;
  private shadowed: ReadonlySet<string> | undefined;
  private readonly ipless: boolean;
  constructor(
    private readonly store: ClusterStore,
    opts: { ipless?: boolean } = {},
  ) {
    this.ipless = opts.ipless === true;
  }

  /**
   * Forgets what a change of a pod in namespace `ns` can change. With this (and forgetAll on a
   * Namespace change) one Selection serves many builds: the incremental compiler keeps it, so a
   * recompiled policy re-reads only the namespaces that changed, and an unchanged peer keeps its
   * arrays (the render then reuses its set by identity).
   */
  forgetPodsIn(ns: string): void {
    this.actionable.delete(ns);
    this.podCache.delete(ns);
    this.all = undefined;
    const peers = this.peersByNamespace.get(ns);
    if (peers) {
      for (const k of peers) this.peerCache.delete(k);
      this.peersByNamespace.delete(ns);
    }
  }

  /** Forgets everything (a Namespace changed: names, labels, which selectors match it). */
  forgetAll(): void {
    this.nsCache.clear();
    this.podCache.clear();
    this.actionable.clear();
    this.peerCache.clear();
    this.peersByNamespace.clear();
    this.all = undefined;
    this.names = undefined;
    this.shadowed = undefined;
  }

  /** Whether the store's namespace names are still the ones this Selection read (else forgetAll). */
  namesCurrent(): boolean {
    return this.names === undefined || this.names === this.store.namespaceNames();
  }

  /** The store's namespace names (sorted), computed once per compile run. */
  namespaceNames(): readonly string[] {
    if (!this.names) this.names = this.store.namespaceNames();
    return this.names;
  }

  /** Whether analysis takes this object as an endpoint. */
  private isEndpoint(e: Endpoint): boolean {
    if (e.kind === 'Pod' && isActionablePod(e)) return true;
    if (!this.ipless || !isIPlessEndpoint(e)) return false;
    if (e.kind === 'Pod') return true;
    // A workload whose pods are in the input is shown as those pods.
    const shadowed = (this.shadowed ??= shadowedWorkloads(this.store));
    return !shadowed.has(objectKey(e));
  }

  /** Endpoints of a namespace (actionable pods; with `ipless`, also workloads and planned pods), sorted by key. */
  podsIn(ns: string): Endpoint[] {
    let l = this.actionable.get(ns);
    if (!l) {
      if (!this.ipless) l = this.store.podsInNamespace(ns).filter(isActionablePod).sort((a, b) => byKey(a.name, b.name));
      else {
        const keyed = [...this.store.podsInNamespace(ns), ...this.store.workloadsInNamespace(ns)].filter((e) => this.isEndpoint(e)).map((e) => [objectKey(e), e] as const);
        l = keyed.sort((a, b) => byKey(a[0], b[0])).map((x) => x[1]);
      }
      this.actionable.set(ns, l);
    }
    return l;
  }

  /** Every endpoint in the cluster, sorted by key (computed once, only when needed). */
  allPods(): Endpoint[] {
    if (!this.all) this.all = this.namespaceNames().flatMap((ns) => this.podsIn(ns)).sort((a, b) => byKey(objectKey(a), objectKey(b)));
    return this.all;
  }

  /** The Namespace object, when the store has one. */
  namespace(ns: string): Namespace | undefined {
    return this.store.namespaces.get(ns);
  }

  /** The endpoint with this key. */
  pod(key: string): Endpoint | undefined {
    const p = this.store.pods.get(key) ?? (this.ipless ? this.store.workloads.get(key) : undefined);
    return p && this.isEndpoint(p) ? p : undefined;
  }

  private readonly peerCache = new Map<string, { pods: Endpoint[]; keys: string[]; ips: string[] }>();

  /**
   * The pods a pod peer selects — `namespaceSelector` (else the policy's namespace) AND `podSelector`
   * — with their keys and IPs sorted. Policies repeat the same peers (DNS, monitoring, a team's
   * namespaces): each distinct peer is evaluated once per compile run, and its arrays are shared.
   */
  peerPods(namespaceSelector: LabelSelector | undefined, policyNamespace: string, podSelector: LabelSelector | undefined): { pods: Endpoint[]; keys: string[]; ips: string[] } {
    const podSelKey = podSelector && !isEmptySelector(podSelector) ? JSON.stringify(podSelector) : '';
    const k = `${namespaceSelector ? `S${JSON.stringify(namespaceSelector)}` : `N${policyNamespace}`}\u0000${podSelKey}`;
    let hit = this.peerCache.get(k);
    if (!hit) {
      const namespaces = namespaceSelector ? this.namespacesMatching(namespaceSelector) : [policyNamespace];
      const pods: Endpoint[] = [];
      for (const ns of namespaces) {
        const inNs = this.podsIn(ns);
        if (!podSelKey) pods.push(...inNs);
        else for (const p of inNs) if (selectorMatches(podSelector!, p.labels)) pods.push(p);
      }
      const ips: string[] = [];
      for (const p of pods) for (const ip of p.ips) ips.push(ip);
      // Plain sort(): the same UTF-16 order as byKey, without a call per comparison.
      hit = { pods, keys: pods.map(objectKey).sort(), ips: ips.sort() };
      this.peerCache.set(k, hit);
      for (const ns of namespaces) {
        let peers = this.peersByNamespace.get(ns);
        if (!peers) this.peersByNamespace.set(ns, (peers = new Set()));
        peers.add(k);
      }
    }
    return hit;
  }

  namespacesMatching(sel: LabelSelector): string[] {
    const k = JSON.stringify(sel);
    let hit = this.nsCache.get(k);
    if (!hit) {
      hit = this.namespaceNames().filter((ns) => selectorMatches(sel, this.store.namespaceLabels(ns)) && this.store.namespaceSelectable(ns));
      this.nsCache.set(k, hit);
    }
    return hit;
  }

  podsMatching(ns: string, sel: LabelSelector | undefined): Endpoint[] {
    const pods = this.podsIn(ns);
    if (!sel || isEmptySelector(sel)) return pods;
    const k = JSON.stringify(sel);
    let inNs = this.podCache.get(ns);
    if (!inNs) this.podCache.set(ns, (inNs = new Map()));
    let hit = inNs.get(k);
    if (!hit) {
      hit = pods.filter((p) => selectorMatches(sel, p.labels));
      inNs.set(k, hit);
    }
    return hit;
  }
}

export function describePeer(peer: PolicyPeer, policyNamespace: string): string {
  if (peer.ipBlock) return `ipBlock ${peer.ipBlock.cidr}${peer.ipBlock.except.length ? ` except ${peer.ipBlock.except.join(', ')}` : ''}`;
  const pods = peer.podSelector ? (isEmptySelector(peer.podSelector) ? 'all pods' : `pods ${describeSelector(peer.podSelector)}`) : 'all pods';
  const nss = peer.namespaceSelector
    ? isEmptySelector(peer.namespaceSelector)
      ? 'in all namespaces'
      : `in namespaces ${describeSelector(peer.namespaceSelector)}`
    : `in namespace ${policyNamespace}`;
  return `${pods} ${nss}`;
}

export function describePort(p: PolicyPort): string {
  if (p.port === undefined) return `all/${p.protocol}`;
  if (p.endPort !== undefined) return `${p.port}-${p.endPort}/${p.protocol}`;
  return `${p.port}/${p.protocol}`;
}

export function compile(store: ClusterStore, opts: CompileOptions = {}): Plan {
  const ipless = opts.ipless === true && opts.node === undefined;
  const sel = new Selection(store, { ipless });
  const inScope = (p: Endpoint) => opts.node === undefined || (p.kind === 'Pod' && p.nodeName === opts.node);
  const podNetwork = ipless ? [...(opts.podNetwork ?? DEFAULT_POD_NETWORK)] : undefined;
  const policies: PlanPolicy[] = [];
  const sortedPolicies = [...store.policies.values()].sort((a, b) => byKey(objectKey(a), objectKey(b)));
  for (const np of sortedPolicies) {
    const compiled = compilePolicy(np, sel, inScope, podNetwork);
    if (compiled) policies.push(compiled);
  }
  const clusterPolicies = compileClusterPolicies(store.clusterPolicies.values(), sel, inScope, podNetwork);
  const scopePods = opts.node === undefined ? sel.allPods() : store.podsOnNode(opts.node).filter(isActionablePod).sort((a, b) => byKey(objectKey(a), objectKey(b)));
  const plan = assemblePlan(store, scopePods, policies, podIPIndex(sel.allPods()), namespaceLabelIndex(store), undefined, clusterPolicies);
  if (opts.node !== undefined) plan.node = opts.node;
  if (podNetwork) plan.podNetwork = podNetwork;
  return plan;
}

/** The endpoints an analysis plan of this store holds, sorted by key (cheap: no policy is compiled). */
export function analysisEndpoints(store: ClusterStore): Endpoint[] {
  return new Selection(store, { ipless: true }).allPods();
}

export function podIPIndex(pods: readonly Endpoint[]): Map<string, string> {
  const podByIP = new Map<string, string>();
  for (const p of pods) for (const ip of p.ips) if (!podByIP.has(ip)) podByIP.set(ip, objectKey(p));
  return podByIP;
}

/**
 * The same index as podIPIndex(sorted actionable pods), from unsorted pods: an IP claimed by several
 * actionable pods belongs to the one first by key. (Sorting 50,000 keys costs more than this.)
 */
export function podIPIndexOf(pods: Iterable<Pod>, into: Map<string, string> = new Map()): Map<string, string> {
  for (const p of pods) {
    if (!isActionablePod(p)) continue;
    let key: string | undefined;
    for (const ip of p.ips) {
      key ??= objectKey(p);
      const cur = into.get(ip);
      if (cur === undefined || key < cur) into.set(ip, key);
    }
  }
  return into;
}

export function namespaceLabelIndex(store: ClusterStore): Plan['namespaceLabels'] {
  const out: Plan['namespaceLabels'] = {};
  for (const ns of store.namespaceNames()) out[ns] = store.namespaceLabels(ns);
  return out;
}

export function planNodes(store: ClusterStore): Plan['nodes'] {
  return [...store.nodes.values()].sort((a, b) => byKey(a.name, b.name)).map((n) => ({ name: n.name, addresses: [...n.addresses], podCIDRs: [...n.podCIDRs] }));
}

export function planServices(store: ClusterStore): Plan['services'] {
  return [...store.services.values()]
    .map((s) => ({
      key: objectKey(s),
      ips: [...new Set([...s.clusterIPs, ...s.externalIPs, ...s.loadBalancerIPs])],
      clusterIPs: [...s.clusterIPs],
      externalIPs: [...s.externalIPs],
      loadBalancerIPs: [...s.loadBalancerIPs],
      ports: s.ports.map((p) => ({ ...p })),
      nodePorts: s.nodePorts.map((p) => ({ ...p })),
    }))
    .sort((a, b) => byKey(a.key, b.key));
}

/** Builds the Plan from compiled policies (sorted by id) and the pods in scope (sorted by key). */
export function assemblePlan(
  store: ClusterStore,
  scopePods: readonly Endpoint[],
  policies: PlanPolicy[],
  podByIP: Plan['podByIP'],
  namespaceLabels: Plan['namespaceLabels'],
  /** Nodes and services already built from this store (kept by the incremental compiler while unchanged). */
  fixed?: { nodes: Plan['nodes']; services: Plan['services'] },
  /** Compiled ClusterNetworkPolicies in evaluation order. */
  clusterPolicies: PlanClusterPolicy[] = [],
): Plan {
  const pods: PlanPod[] = scopePods.map((p) => ({
    key: objectKey(p),
    namespace: p.namespace,
    name: p.name,
    ...(p.kind === 'Workload' ? { workloadKind: p.workloadKind } : {}),
    ...(p.kind === 'Pod' && p.nodeName !== undefined ? { nodeName: p.nodeName } : {}),
    ips: [...p.ips],
    labels: p.labels,
    ports: p.ports,
    ingressPolicies: [],
    egressPolicies: [],
  }));
  const podIndex = new Map(pods.map((p) => [p.key, p]));
  for (const pol of policies) {
    for (const t of pol.targets) {
      const pp = podIndex.get(t);
      if (!pp) continue;
      // An audited policy isolates nobody: it is kept apart, so nothing that enforces can pick it up.
      if (pol.audit) {
        if (pol.types.includes('ingress')) (pp.ingressAudit ??= []).push(pol.id);
        if (pol.types.includes('egress')) (pp.egressAudit ??= []).push(pol.id);
        continue;
      }
      if (pol.types.includes('ingress')) pp.ingressPolicies.push(pol.id);
      if (pol.types.includes('egress')) pp.egressPolicies.push(pol.id);
    }
  }
  attachTiers(podIndex, clusterPolicies);
  return {
    pods,
    policies,
    clusterPolicies,
    nodes: fixed?.nodes ?? planNodes(store),
    services: fixed?.services ?? planServices(store),
    podByIP,
    namespaceLabels,
  };
}

/** Compiles one policy; undefined when it selects no pod in scope. */
export function compilePolicy(np: NetworkPolicy, sel: Selection, inScope: (p: Endpoint) => boolean, podNetwork?: readonly string[]): PlanPolicy | undefined {
  const targets = sel.podsMatching(np.namespace, np.podSelector).filter(inScope);
  if (targets.length === 0) return undefined;
  const id = `${np.namespace}/${np.name}`;
  const out: PlanPolicy = {
    id,
    namespace: np.namespace,
    name: np.name,
    types: [...np.policyTypes],
    podSelector: np.podSelector,
    targets: targets.map(objectKey),
    ingress: [],
    egress: [],
  };
  if (np.invalid) out.invalid = np.invalid;
  if (effectiveEnforcement(np, sel.namespace(np.namespace)) === 'audit') out.audit = true;
  for (const direction of ['ingress', 'egress'] as const) {
    // Rules for a direction the policy does not affect are ignored (as the API does).
    if (!np.policyTypes.includes(direction)) continue;
    out[direction] = np[direction].map((rule, ruleIndex) => compileRule(rule, { namespace: np.namespace, policy: np.name, direction, ruleIndex }, targets, sel, podNetwork));
  }
  return out;
}

function compileRule(rule: PolicyRule, origin: RuleOrigin, targets: Endpoint[], sel: Selection, podNetwork: readonly string[] | undefined): PlanRule {
  const id = ruleId(origin);
  if (rule.invalid !== undefined) return { id, origin, peers: [], ports: [], invalid: rule.invalid };
  const peers: PlanRule['peers'] = rule.peers.length === 0 ? 'all' : rule.peers.map((p, i) => compilePeer(p, i, origin, sel));

  let ports: PlanRule['ports'];
  if (rule.ports.length === 0) ports = 'all';
  else {
    ports = [];
    for (const [portIndex, p] of rule.ports.entries()) {
      const spec = describePort(p);
      if (typeof p.port !== 'string') {
        const pp: PlanPort = { protocol: p.protocol, portIndex, spec };
        if (p.port !== undefined) pp.port = p.port;
        if (p.endPort !== undefined && p.endPort !== p.port) pp.endPort = p.endPort;
        ports.push(pp);
        continue;
      }
      // Named port: resolved on each destination pod (ingress: the policy's targets; egress: the peers).
      const dests = origin.direction === 'ingress' ? targets : destinationPods(peers, sel, podNetwork);
      const byNumber = new Map<number, Endpoint[]>();
      for (const d of dests) {
        const n = resolveNamedPort(d.ports, p.port, p.protocol);
        if (n === undefined) continue;
        let l = byNumber.get(n);
        if (!l) byNumber.set(n, (l = []));
        l.push(d);
      }
      for (const n of [...byNumber.keys()].sort((a, b) => a - b)) {
        const pods = byNumber.get(n)!;
        ports.push({
          protocol: p.protocol,
          port: n,
          portIndex,
          spec,
          name: p.port,
          namedTargets: { pods: pods.map(objectKey), ips: pods.flatMap((x) => x.ips).sort() },
        });
      }
      // A name no destination declares resolves to nothing: that entry matches no packet.
    }
  }
  return { id, origin, peers, ports };
}

function compilePeer(peer: PolicyPeer, peerIndex: number, origin: RuleOrigin, sel: Selection): PlanPeer {
  const setId = `${ruleId(origin)}/${peerIndex}`;
  const describe = describePeer(peer, origin.namespace);
  if (peer.ipBlock) {
    const c: CidrPeer = { kind: 'cidr', setId, peerIndex, describe, family: familyOf(peer.ipBlock.cidr), block: { cidr: peer.ipBlock.cidr, except: [...peer.ipBlock.except] } };
    return c;
  }
  const { keys, ips } = sel.peerPods(peer.namespaceSelector, origin.namespace, peer.podSelector);
  const out: PodPeer = {
    kind: 'pods',
    setId,
    peerIndex,
    describe,
    policyNamespace: origin.namespace,
    pods: keys,
    ips,
  };
  if (peer.podSelector) out.podSelector = peer.podSelector;
  if (peer.namespaceSelector) out.namespaceSelector = peer.namespaceSelector;
  return out;
}

/**
 * Endpoints an egress rule's peers can reach (for named-port resolution). An IP-less endpoint counts
 * when the block covers at least part of the pod network: whether it is reached is decided (or left
 * open) by the peer, the port resolves either way.
 */
export function destinationPods(peers: PlanRule['peers'], sel: Selection, podNetwork: readonly string[] | undefined): Endpoint[] {
  if (peers === 'all') return sel.allPods();
  const keys = new Set<string>();
  const out: Endpoint[] = [];
  for (const peer of peers) {
    if (peer.kind === 'pods') {
      for (const k of peer.pods) if (!keys.has(k)) keys.add(k), out.push(sel.pod(k)!);
    } else {
      const iplessHit = podNetwork !== undefined && blockCoverage(peer.block, podNetwork.map(mustCIDR).filter((c) => c.family === peer.family)) !== 'none';
      for (const p of sel.allPods()) {
        const k = objectKey(p);
        if (keys.has(k)) continue;
        if (p.ips.length === 0 ? iplessHit : p.ips.some((ip) => ipInBlock(ip, peer.block))) keys.add(k), out.push(p);
      }
    }
  }
  return out;
}

export type { Direction };
