// ClusterStore: the indexed, versioned view of the objects podwall reads. Filled by the manifest
// loader or by the informers; read by the compiler. Synchronous and pure (no I/O).
import type { ClusterObject, Namespace, NetworkPolicy, Node, Pod, Service } from './model.js';
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
  readonly policies = new Map<string, NetworkPolicy>();
  readonly nodes = new Map<string, Node>();
  readonly services = new Map<string, Service>();
  /** Bumped on every effective change. */
  version = 0;
  private readonly podsByNamespace = new Map<string, Set<string>>();
  private readonly podsByIP = new Map<string, Set<string>>();
  private readonly podsByNode = new Map<string, Set<string>>();
  private readonly policiesByNamespace = new Map<string, Set<string>>();
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
      case 'NetworkPolicy':
        return this.policies;
      case 'Node':
        return this.nodes;
      case 'Service':
        return this.services;
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
    this.version++;
    this.emit({ kind, key, before });
    return true;
  }

  private emit(c: StoreChange): void {
    for (const l of this.listeners) l(c);
  }

  private index(o: ClusterObject): void {
    if (o.kind === 'Pod') {
      const key = objectKey(o);
      addTo(this.podsByNamespace, o.namespace, key);
      for (const ip of o.ips) addTo(this.podsByIP, ip, key);
      if (o.nodeName) addTo(this.podsByNode, o.nodeName, key);
    } else if (o.kind === 'NetworkPolicy') addTo(this.policiesByNamespace, o.namespace, objectKey(o));
  }

  private unindex(o: ClusterObject): void {
    if (o.kind === 'Pod') {
      const key = objectKey(o);
      delFrom(this.podsByNamespace, o.namespace, key);
      for (const ip of o.ips) delFrom(this.podsByIP, ip, key);
      if (o.nodeName) delFrom(this.podsByNode, o.nodeName, key);
    } else if (o.kind === 'NetworkPolicy') delFrom(this.policiesByNamespace, o.namespace, objectKey(o));
  }

  podsInNamespace(ns: string): Pod[] {
    return [...(this.podsByNamespace.get(ns) ?? [])].map((k) => this.pods.get(k)!);
  }

  podsOnNode(node: string): Pod[] {
    return [...(this.podsByNode.get(node) ?? [])].map((k) => this.pods.get(k)!);
  }

  /** Actionable pod holding `ip`, if any (several pods claiming one IP: the first actionable by key). */
  podByIP(ip: string): Pod | undefined {
    const keys = [...(this.podsByIP.get(ip) ?? [])].sort();
    return keys.map((k) => this.pods.get(k)!).find(isActionablePod);
  }

  policiesInNamespace(ns: string): NetworkPolicy[] {
    return [...(this.policiesByNamespace.get(ns) ?? [])].map((k) => this.policies.get(k)!);
  }

  /** Namespace labels; a namespace only named by its pods gets just its metadata.name label. */
  namespaceLabels(ns: string): Readonly<Record<string, string>> {
    return this.namespaces.get(ns)?.labels ?? { 'kubernetes.io/metadata.name': ns };
  }

  /** Every namespace name known from Namespace objects or from pods and policies in it. */
  namespaceNames(): string[] {
    const s = new Set<string>([...this.namespaces.keys(), ...this.podsByNamespace.keys(), ...this.policiesByNamespace.keys()]);
    return [...s].sort();
  }
}

function addTo(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

function delFrom(m: Map<string, Set<string>>, k: string, v: string): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}

function sameContent(a: ClusterObject, b: ClusterObject): boolean {
  const strip = (o: ClusterObject) => JSON.stringify({ ...o, origin: undefined });
  return strip(a) === strip(b);
}
