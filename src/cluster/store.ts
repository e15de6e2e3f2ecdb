// ClusterStore: the indexed, versioned view of the objects podwall reads. Filled by the manifest
// loader or by the informers; read by the compiler. Synchronous and pure (no I/O).
import type { ClusterNetworkPolicy, ClusterObject, Namespace, NetworkPolicy, Node, Pod, Service, Workload } from './model.js';
import { isActionablePod, objectKey } from './model.js';

type Kind = ClusterObject['kind'];

export interface StoreChange {
  kind: Kind;
  key: string;
  /** The object before and after (undefined when added / removed). */
  before?: ClusterObject;
  after?: ClusterObject;
}

export class ClusterStore {
  readonly namespaces = new Map<string, Namespace>();
  readonly pods = new Map<string, Pod>();
  /** Deployments, StatefulSets, ... keyed `ns/name[Kind]` (analysis endpoints; the dataplane never reads them). */
  readonly workloads = new Map<string, Workload>();
  readonly policies = new Map<string, NetworkPolicy>();
  readonly nodes = new Map<string, Node>();
  readonly services = new Map<string, Service>();
  /** ClusterNetworkPolicies (cluster-scoped) by name. */
  readonly clusterPolicies = new Map<string, ClusterNetworkPolicy>();
  /** Bumped on every effective change. */
  version = 0;
  // Indexes hold the objects themselves: a lookup by key per pod costs more than the rest of a compile.
  private readonly podsByNamespace = new Map<string, Map<string, Pod>>();
  /** One pod per address as a rule: the pod itself, a map by key only when several claim it (100,000 maps cost ~0.3 s and ~30 MB). */
  private readonly podsByIP = new Map<string, Pod | Map<string, Pod>>();
  private readonly podsByNode = new Map<string, Map<string, Pod>>();
  private readonly policiesByNamespace = new Map<string, Set<string>>();
  private readonly workloadsByNamespace = new Map<string, Set<string>>();
  private readonly listeners: ((c: StoreChange) => void)[] = [];

  onChange(fn: (c: StoreChange) => void): void {
    this.listeners.push(fn);
  }

  private mapFor(kind: Kind): Map<string, ClusterObject> {
    switch (kind) {
      case 'Namespace':
        return this.namespaces;
      case 'Pod':
        return this.pods;
      case 'Workload':
        return this.workloads;
      case 'NetworkPolicy':
        return this.policies;
      case 'Node':
        return this.nodes;
      case 'Service':
        return this.services;
      case 'ClusterNetworkPolicy':
        return this.clusterPolicies;
    }
  }

  get(kind: Kind, key: string): ClusterObject | undefined {
    return this.mapFor(kind).get(key);
  }

  /** Adds or replaces an object. Returns false when nothing changed. */
  upsert(obj: ClusterObject): boolean {
    const key = objectKey(obj);
    const map = this.mapFor(obj.kind);
    const before = map.get(key);
    if (before && sameContent(before, obj)) return false;
    if (before) this.unindex(before);
    map.set(key, obj);
    this.index(obj);
    if (obj.kind === 'Namespace' && !before) this.names = undefined;
    this.version++;
    this.emit({ kind: obj.kind, key, ...(before ? { before } : {}), after: obj });
    return true;
  }

  remove(kind: Kind, key: string): boolean {
    const map = this.mapFor(kind);
    const before = map.get(key);
    if (!before) return false;
    map.delete(key);
    this.unindex(before);
    if (kind === 'Namespace') this.names = undefined;
    this.version++;
    this.emit({ kind, key, before });
    return true;
  }

  private emit(c: StoreChange): void {
    for (const l of this.listeners) l(c);
  }

  private index(o: ClusterObject): void {
    // A namespace known only through its pods, workloads or policies appears with the first of them.
    if (this.isFirstOrLastIn(o)) this.names = undefined;
    if (o.kind === 'Workload') addTo(this.workloadsByNamespace, o.namespace, objectKey(o));
    if (o.kind === 'Pod') {
      const key = objectKey(o);
      putIn(this.podsByNamespace, o.namespace, key, o);
      for (const ip of o.ips) this.putIP(ip, key, o);
      if (o.nodeName) putIn(this.podsByNode, o.nodeName, key, o);
    } else if (o.kind === 'NetworkPolicy') addTo(this.policiesByNamespace, o.namespace, objectKey(o));
  }

  private unindex(o: ClusterObject): void {
    if (o.kind === 'Pod') {
      const key = objectKey(o);
      delFrom(this.podsByNamespace, o.namespace, key);
      for (const ip of o.ips) this.delIP(ip, key);
      if (o.nodeName) delFrom(this.podsByNode, o.nodeName, key);
    } else if (o.kind === 'NetworkPolicy') delFrom(this.policiesByNamespace, o.namespace, objectKey(o));
    else if (o.kind === 'Workload') delFrom(this.workloadsByNamespace, o.namespace, objectKey(o));
    // ... and disappears with the last.
    if (this.isFirstOrLastIn(o)) this.names = undefined;
  }

  /** Whether `o`'s namespace has no other object of its kind (namespace names change with it). */
  private isFirstOrLastIn(o: ClusterObject): boolean {
    if (o.kind === 'Pod') return !this.podsByNamespace.has(o.namespace);
    if (o.kind === 'NetworkPolicy') return !this.policiesByNamespace.has(o.namespace);
    if (o.kind === 'Workload') return !this.workloadsByNamespace.has(o.namespace);
    return false;
  }

  workloadsInNamespace(ns: string): Workload[] {
    return [...(this.workloadsByNamespace.get(ns) ?? [])].map((k) => this.workloads.get(k)!);
  }

  podsInNamespace(ns: string): Pod[] {
    const m = this.podsByNamespace.get(ns);
    return m ? [...m.values()] : [];
  }

  podsOnNode(node: string): Pod[] {
    const m = this.podsByNode.get(node);
    return m ? [...m.values()] : [];
  }

  private putIP(ip: string, key: string, pod: Pod): void {
    const held = this.podsByIP.get(ip);
    if (held === undefined || (!(held instanceof Map) && objectKey(held) === key)) this.podsByIP.set(ip, pod);
    else if (held instanceof Map) held.set(key, pod);
    else this.podsByIP.set(ip, new Map([[objectKey(held), held], [key, pod]]));
  }

  private delIP(ip: string, key: string): void {
    const held = this.podsByIP.get(ip);
    if (held === undefined) return;
    if (!(held instanceof Map)) {
      if (objectKey(held) === key) this.podsByIP.delete(ip);
      return;
    }
    held.delete(key);
    if (held.size === 1) this.podsByIP.set(ip, held.values().next().value!);
  }

  /** Actionable pod holding `ip`, if any (several pods claiming one IP: the first actionable by key). */
  podByIP(ip: string): Pod | undefined {
    const m = this.podsByIP.get(ip);
    if (!m) return undefined;
    if (!(m instanceof Map)) return isActionablePod(m) ? m : undefined;
    let best: [string, Pod] | undefined;
    for (const e of m) if (isActionablePod(e[1]) && (!best || e[0] < best[0])) best = e;
    return best?.[1];
  }

  policiesInNamespace(ns: string): NetworkPolicy[] {
    return [...(this.policiesByNamespace.get(ns) ?? [])].map((k) => this.policies.get(k)!);
  }

  /** Namespace labels; a namespace only named by its pods gets just its metadata.name label. */
  namespaceLabels(ns: string): Readonly<Record<string, string>> {
    return this.namespaces.get(ns)?.labels ?? { 'kubernetes.io/metadata.name': ns };
  }

  /** False for a namespace whose labels could not be read (model.ts `labelsUnreadable`): no namespace selector matches it. */
  namespaceSelectable(ns: string): boolean {
    return this.namespaces.get(ns)?.labelsUnreadable !== true;
  }

  private names: readonly string[] | undefined;

  /** Every namespace name known from Namespace objects or from pods, workloads and policies in it, sorted. Shared: do not mutate. */
  namespaceNames(): readonly string[] {
    if (!this.names) this.names = [...new Set<string>([...this.namespaces.keys(), ...this.podsByNamespace.keys(), ...this.policiesByNamespace.keys(), ...this.workloadsByNamespace.keys()])].sort();
    return this.names;
  }
}

function addTo(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

function putIn(m: Map<string, Map<string, Pod>>, k: string, key: string, pod: Pod): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Map()));
  s.set(key, pod);
}

function delFrom(m: Map<string, Set<string> | Map<string, Pod>>, k: string, v: string): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}

function sameContent(a: ClusterObject, b: ClusterObject): boolean {
  const strip = (o: ClusterObject) => JSON.stringify({ ...o, origin: undefined });
  return strip(a) === strip(b);
}
