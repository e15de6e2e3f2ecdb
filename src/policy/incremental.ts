// Incremental compilation for one node: store changes mark only the policies they can affect; a
// build recompiles those and reassembles the Plan. Always equal to compile(store, {node}) — a
// property test holds it to that.
import type { ClusterStore, StoreChange } from '../cluster/store.js';
import type { Endpoint, LabelSelector, Labels, Namespace, Pod } from '../cluster/model.js';
import { isActionablePod, objectKey } from '../cluster/model.js';
import { assemblePlan, compilePolicy, planNodes, planServices, podIPIndexOf, Selection } from './compile.js';
import type { Plan, PlanClusterPolicy, PlanPolicy, PodPeer } from './plan.js';
import { cnpOrder } from './plan.js';
import { compileClusterPolicy, selectionMatches } from './cluster-policy.js';
import { selectorMatches } from './selector.js';
import { ipInBlock } from '../net/ip.js';

const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Binary search in a sorted key list (peer lists hold up to every pod of the cluster). */
function sortedHas(sorted: readonly string[], key: string): boolean {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const v = sorted[mid]!;
    if (v === key) return true;
    if (v < key) lo = mid + 1;
    else hi = mid;
  }
  return false;
}

/**
 * The cluster's pod IP → pod key index, built from the store on first read. The agent's renders
 * never read it (only the simulator, explain and trace do), so a node agent skips 50,000 entries.
 * Kept current with the store once built, like the eager index it replaces.
 */
class LazyPodIPIndex implements ReadonlyMap<string, string> {
  private m: Map<string, string> | undefined;
  constructor(private readonly store: ClusterStore) {}
  reset(): void {
    this.m = undefined;
  }
  /** A pod holding these IPs changed. */
  update(ips: Iterable<string>): void {
    if (!this.m) return;
    for (const ip of ips) {
      const owner = this.store.podByIP(ip);
      if (owner) this.m.set(ip, objectKey(owner));
      else this.m.delete(ip);
    }
  }
  private get map(): Map<string, string> {
    return (this.m ??= podIPIndexOf(this.store.pods.values()));
  }
  get size(): number {
    return this.map.size;
  }
  get(k: string): string | undefined {
    return this.map.get(k);
  }
  has(k: string): boolean {
    return this.map.has(k);
  }
  forEach(fn: (value: string, key: string, map: ReadonlyMap<string, string>) => void, thisArg?: unknown): void {
    this.map.forEach((v, k) => fn.call(thisArg, v, k, this));
  }
  entries(): MapIterator<[string, string]> {
    return this.map.entries();
  }
  keys(): MapIterator<string> {
    return this.map.keys();
  }
  values(): MapIterator<string> {
    return this.map.values();
  }
  [Symbol.iterator](): MapIterator<[string, string]> {
    return this.map[Symbol.iterator]();
  }
}

export class IncrementalCompiler {
  /** Compiled policies that select a local pod. */
  private readonly compiled = new Map<string, PlanPolicy>();
  private readonly dirty = new Set<string>();
  /** Compiled ClusterNetworkPolicies that select a local pod, and those to recompile. */
  private readonly compiledCnp = new Map<string, PlanClusterPolicy>();
  private readonly dirtyCnp = new Set<string>();
  private everything = true;
  private readonly podByIP: LazyPodIPIndex;
  private namespaceLabels: Plan['namespaceLabels'] | undefined;
  /** Rebuilt only after a Node / Service change (renders reuse their sets while these stay the same arrays). */
  private nodes: Plan['nodes'] | undefined;
  private services: Plan['services'] | undefined;
  /** Selector results kept across builds, forgotten by namespace as pods and namespaces change. */
  private sel: Selection;
  /** Policies recompiled by the last build (for logs and benchmarks). */
  lastRecompiled = 0;

  constructor(
    private readonly store: ClusterStore,
    private readonly node: string,
  ) {
    this.podByIP = new LazyPodIPIndex(store);
    this.sel = new Selection(store);
    store.onChange((c) => this.onChange(c));
  }

  /** Forget everything: the next build compiles from scratch. */
  invalidate(): void {
    this.everything = true;
    this.nodes = undefined;
    this.services = undefined;
  }

  private isLocal(p: Pod | undefined): boolean {
    return p !== undefined && p.nodeName === this.node && isActionablePod(p);
  }

  private onChange(c: StoreChange): void {
    if (c.kind === 'Pod') {
      const before = c.before as Pod | undefined;
      const after = c.after as Pod | undefined;
      if (before) this.sel.forgetPodsIn(before.namespace);
      if (after && after.namespace !== before?.namespace) this.sel.forgetPodsIn(after.namespace);
    } else if (c.kind === 'Namespace') this.sel.forgetAll();
    if (c.kind === 'Node') this.nodes = undefined;
    if (c.kind === 'Service') this.services = undefined;
    // Namespaces known only through their pods or policies come and go with them.
    if (this.namespaceLabels && (c.kind === 'Pod' || c.kind === 'NetworkPolicy' || c.kind === 'Workload')) {
      const ns = ((c.after ?? c.before) as { namespace: string }).namespace;
      const gone =
        !c.after && !this.store.namespaces.has(ns) && this.store.podsInNamespace(ns).length === 0 && this.store.policiesInNamespace(ns).length === 0 && this.store.workloadsInNamespace(ns).length === 0;
      if (!(ns in this.namespaceLabels) || gone) this.namespaceLabels = undefined;
    }
    if (this.everything) {
      if (c.kind === 'Pod') this.reindexIPs(c.before as Pod | undefined, c.after as Pod | undefined);
      if (c.kind === 'Namespace') this.namespaceLabels = undefined;
      return;
    }
    switch (c.kind) {
      case 'NetworkPolicy':
        this.dirty.add(c.key);
        break;
      case 'ClusterNetworkPolicy':
        this.dirtyCnp.add(c.key);
        break;
      case 'Pod': {
        const before = c.before as Pod | undefined;
        const after = c.after as Pod | undefined;
        this.reindexIPs(before, after);
        const ns = (after ?? before)!.namespace;
        // A local pod can change which policies of its namespace select it (and named-port targets).
        if (this.isLocal(before) || this.isLocal(after)) for (const p of this.store.policiesInNamespace(ns)) this.dirty.add(objectKey(p));
        for (const [id, pol] of this.compiled) if (!this.dirty.has(id) && this.podAffects(pol, before, after)) this.dirty.add(id);
        this.markClusterPoliciesForPod(before, after);
        break;
      }
      case 'Namespace': {
        this.namespaceLabels = undefined;
        // Audit ↔ enforce of a whole namespace: its own policies change (an ordinary incremental change).
        if ((c.before as Namespace | undefined)?.enforcement !== (c.after as Namespace | undefined)?.enforcement) {
          for (const p of this.store.policiesInNamespace(c.key)) this.dirty.add(objectKey(p));
        }
        const before = (c.before as { labels: Labels } | undefined)?.labels ?? { 'kubernetes.io/metadata.name': c.key };
        const after = (c.after as { labels: Labels } | undefined)?.labels ?? { 'kubernetes.io/metadata.name': c.key };
        for (const [id, pol] of this.compiled) {
          if (this.dirty.has(id)) continue;
          const hit = [...pol.ingress, ...pol.egress].some(
            (r) => r.peers !== 'all' && r.peers.some((p) => p.kind === 'pods' && p.namespaceSelector && (selectorMatches(p.namespaceSelector, before) || selectorMatches(p.namespaceSelector, after))),
          );
          if (hit) this.dirty.add(id);
        }
        this.markClusterPoliciesForNamespace(before, after);
        break;
      }
      default:
        // Nodes and Services: their plan arrays are rebuilt at the next build (see above).
        break;
    }
  }

  private reindexIPs(before: Pod | undefined, after: Pod | undefined): void {
    this.podByIP.update(new Set([...(before?.ips ?? []), ...(after?.ips ?? [])]));
  }

  private peerMatches(peer: PodPeer, pod: Pod): boolean {
    if (!isActionablePod(pod)) return false;
    const nsOk = peer.namespaceSelector ? this.store.namespaceSelectable(pod.namespace) && selectorMatches(peer.namespaceSelector, this.store.namespaceLabels(pod.namespace)) : pod.namespace === peer.policyNamespace;
    return nsOk && (!peer.podSelector || selectorMatches(peer.podSelector, pod.labels));
  }

  /** Whether a pod change (before → after) can change this compiled policy. */
  private podAffects(pol: PlanPolicy, before: Pod | undefined, after: Pod | undefined): boolean {
    const key = objectKey((after ?? before)!);
    const np = this.store.policies.get(pol.id);
    const inBlock = (p: Pod | undefined, block: { cidr: string; except: string[] }) => p !== undefined && isActionablePod(p) && p.ips.some((ip) => ipInBlock(ip, block));
    for (const rule of [...pol.ingress, ...pol.egress]) {
      // Egress named ports resolve on the destination pods: any pod the rule reaches matters.
      const egressNamed = rule.origin.direction === 'egress' && (np?.egress[rule.origin.ruleIndex]?.ports.some((p) => typeof p.port === 'string') ?? true);
      if (rule.peers === 'all') {
        if (egressNamed) return true;
        continue;
      }
      for (const peer of rule.peers) {
        if (peer.kind === 'pods') {
          if (sortedHas(peer.pods, key)) return true;
          if ((before && this.peerMatches(peer, before)) || (after && this.peerMatches(peer, after))) return true;
        } else if (egressNamed && (inBlock(before, peer.block) || inBlock(after, peer.block))) return true;
      }
    }
    return false;
  }

  /** A pod changed: ClusterNetworkPolicies whose subject (local pods), peers or named ports it can change. */
  private markClusterPoliciesForPod(before: Pod | undefined, after: Pod | undefined): void {
    if (this.store.clusterPolicies.size === 0) return;
    const local = this.isLocal(before) || this.isLocal(after);
    if (local) {
      for (const [name, c] of this.store.clusterPolicies) {
        if (this.dirtyCnp.has(name)) continue;
        const hit = [before, after].some((p) => p !== undefined && isActionablePod(p) && selectionMatches(c.subject, this.store.namespaceLabels(p.namespace), p));
        if (hit || this.compiledCnp.get(name)?.targets.includes(objectKey((after ?? before)!))) this.dirtyCnp.add(name);
      }
    }
    const key = objectKey((after ?? before)!);
    const inBlock = (p: Pod | undefined, block: { cidr: string; except: string[] }) => p !== undefined && isActionablePod(p) && p.ips.some((ip) => ipInBlock(ip, block));
    for (const [name, cp] of this.compiledCnp) {
      if (this.dirtyCnp.has(name)) continue;
      const hit = [...cp.ingress, ...cp.egress].some((rule) => {
        // Egress named ports resolve on the destination pods: any pod the rule reaches matters.
        const egressNamed = rule.origin.direction === 'egress' && this.hasNamedPort(name, rule.origin.ruleIndex);
        if (rule.peers === 'all') return egressNamed;
        return rule.peers.some((peer) =>
          peer.kind === 'pods'
            ? sortedHas(peer.pods, key) || (before !== undefined && this.peerMatches(peer, before)) || (after !== undefined && this.peerMatches(peer, after))
            : egressNamed && (inBlock(before, peer.block) || inBlock(after, peer.block)),
        );
      });
      if (hit) this.dirtyCnp.add(name);
    }
  }

  /** Whether rule `ruleIndex` of a ClusterNetworkPolicy's egress names a port (the store's version). */
  private hasNamedPort(name: string, ruleIndex: number): boolean {
    const c = this.store.clusterPolicies.get(name);
    return c?.egress[ruleIndex]?.ports.some((p) => p.kind === 'named') ?? true;
  }

  /** A namespace's labels changed: ClusterNetworkPolicies whose subject or peers may select differently. */
  private markClusterPoliciesForNamespace(before: Labels, after: Labels): void {
    for (const [name, c] of this.store.clusterPolicies) {
      if (this.dirtyCnp.has(name)) continue;
      const sel = (s: { namespaceSelector: LabelSelector }) => selectorMatches(s.namespaceSelector, before) || selectorMatches(s.namespaceSelector, after);
      const peers = [...c.ingress, ...c.egress].some((r) => r.peers.some((p) => p.kind === 'pods' && sel(p)));
      if (sel(c.subject) || peers) this.dirtyCnp.add(name);
    }
  }

  build(): Plan {
    // A namespace known only through its pods or policies came or went: names and selectors change.
    if (this.everything || !this.sel.namesCurrent()) this.sel = new Selection(this.store);
    const sel = this.sel;
    const inScope = (p: Endpoint) => p.kind === 'Pod' && p.nodeName === this.node;
    let ids: Iterable<string>;
    if (this.everything) {
      this.compiled.clear();
      // Only a policy in a namespace with a local pod can select one.
      const localNamespaces = new Set(this.store.podsOnNode(this.node).filter(isActionablePod).map((p) => p.namespace));
      ids = [...localNamespaces].flatMap((ns) => this.store.policiesInNamespace(ns).map(objectKey));
      this.podByIP.reset();
      this.everything = false;
      this.compiledCnp.clear();
      for (const name of this.store.clusterPolicies.keys()) this.dirtyCnp.add(name);
    } else ids = [...this.dirty];
    let n = 0;
    for (const id of ids) {
      n++;
      const np = this.store.policies.get(id);
      const pol = np ? compilePolicy(np, sel, inScope) : undefined;
      if (pol) this.compiled.set(id, pol);
      else this.compiled.delete(id);
    }
    this.dirty.clear();
    for (const name of this.dirtyCnp) {
      n++;
      const c = this.store.clusterPolicies.get(name);
      const cp = c ? compileClusterPolicy(c, sel, inScope) : undefined;
      if (cp) this.compiledCnp.set(name, cp);
      else this.compiledCnp.delete(name);
    }
    this.dirtyCnp.clear();
    this.lastRecompiled = n;
    if (!this.namespaceLabels) {
      this.namespaceLabels = {};
      for (const ns of this.store.namespaceNames()) this.namespaceLabels[ns] = this.store.namespaceLabels(ns);
    }
    const policies = [...this.compiled.keys()].sort().map((k) => this.compiled.get(k)!);
    const local = this.store
      .podsOnNode(this.node)
      .filter(isActionablePod)
      .sort((a, b) => byKey(objectKey(a), objectKey(b)));
    // The IP index is shared with the compiler (copying 50k entries per build costs more than the
    // rest of an event): a plan from build() reflects the store as of that build until the next one.
    this.nodes ??= planNodes(this.store);
    this.services ??= planServices(this.store);
    const clusterPolicies = [...this.compiledCnp.values()].sort(cnpOrder);
    const plan = assemblePlan(this.store, local, policies, this.podByIP, this.namespaceLabels, { nodes: this.nodes, services: this.services }, clusterPolicies);
    plan.node = this.node;
    return plan;
  }
}
