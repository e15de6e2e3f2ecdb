// Workloads next to their pods: which workloads a live-cluster dump already shows as pods (joined
// through ownerReferences), and what the input holds that analysis leaves out, said in words.
// Pure; reads the store only.
import type { ClusterStore } from './store.js';
import type { Endpoint, OwnerReference, Pod, Workload, WorkloadKind } from './model.js';
import { isActionablePod, isIPlessEndpoint, objectKey, WORKLOAD_KINDS } from './model.js';
import { METADATA_NAME_LABEL } from './normalize.js';

const isWorkloadKind = (k: string): k is WorkloadKind => (WORKLOAD_KINDS as readonly string[]).includes(k);

/** The controller reference if one is marked, else every owner (hand-written dumps omit `controller`). */
function controllers(owners: readonly OwnerReference[] | undefined): readonly OwnerReference[] {
  if (!owners || owners.length === 0) return [];
  const c = owners.filter((o) => o.controller);
  return c.length > 0 ? c : owners;
}

/**
 * The workload one level above `owner` when that object is absent from the input, by the names
 * Kubernetes gives: a Deployment's ReplicaSet is `<deployment>-<pod-template-hash>`, a CronJob's
 * Job `<cronjob>-<scheduled minute>`.
 */
function impliedParent(ns: string, owner: OwnerReference, pod: Pod | undefined): string | undefined {
  if (owner.kind === 'ReplicaSet') {
    const hash = pod?.labels['pod-template-hash'];
    if (hash && owner.name.endsWith(`-${hash}`)) return objectKey({ namespace: ns, name: owner.name.slice(0, -hash.length - 1), workloadKind: 'Deployment' });
  }
  if (owner.kind === 'Job') {
    const m = /^(.+)-\d+$/.exec(owner.name);
    if (m) return objectKey({ namespace: ns, name: m[1]!, workloadKind: 'CronJob' });
  }
  return undefined;
}

/**
 * Keys of the workloads the input already shows otherwise: those with pods in the input (following
 * ownerReferences up through ReplicaSet → Deployment and Job → CronJob, also when the middle object
 * is missing), and those owned by another workload of the input (a Deployment's ReplicaSets).
 */
export function shadowedWorkloads(store: ClusterStore): Set<string> {
  const out = new Set<string>();
  // Up the chain from an owner reference; every workload passed is shown by what is below it.
  const climb = (ns: string, owners: readonly OwnerReference[] | undefined, pod: Pod | undefined) => {
    for (const o of controllers(owners)) {
      if (!isWorkloadKind(o.kind)) continue;
      const key = objectKey({ namespace: ns, name: o.name, workloadKind: o.kind });
      if (out.has(key)) continue;
      out.add(key);
      const w = store.workloads.get(key);
      if (w) climb(ns, w.owners, pod);
      else {
        const parent = impliedParent(ns, o, pod);
        if (parent) out.add(parent);
      }
    }
  };
  if (store.workloads.size === 0) return out;
  for (const p of store.pods.values()) climb(p.namespace, p.owners, p);
  for (const w of store.workloads.values()) {
    // A workload its owner controls (a Deployment's ReplicaSets, old ones included) is the owner's.
    const owned = controllers(w.owners).some((o) => isWorkloadKind(o.kind) && store.workloads.has(objectKey({ namespace: w.namespace, name: o.name, workloadKind: o.kind })));
    if (owned) out.add(objectKey(w));
    climb(w.namespace, w.owners, undefined);
  }
  return out;
}

export interface LeftOut {
  /** `ns/name` or `ns/name[Kind]`. */
  key: string;
  reason: string;
}

/** Why analysis does not take this pod or workload as an endpoint (undefined: it does). */
export function leftOutReason(e: Endpoint): string | undefined {
  if (e.hostNetwork) return 'hostNetwork: it uses its node\'s addresses, which NetworkPolicy does not govern';
  if (e.kind === 'Workload') return undefined;
  if (e.phase === 'Succeeded' || e.phase === 'Failed') return `finished (${e.phase})`;
  if (isActionablePod(e) || isIPlessEndpoint(e)) return undefined;
  if (e.phase === 'Pending') return 'Pending without an IP';
  return `no IP in its status${e.phase ? ` (${e.phase})` : ''}`;
}

/** What analysis leaves out of the input, and the workloads shown as their pods, for notes. */
export interface InputNotes {
  leftOut: LeftOut[];
  /** Workload key → shown as its pods. */
  shownAsPods: string[];
  /** Namespaces with objects but no Namespace object: they exist implicitly. */
  implicitNamespaces: string[];
}

export function inputNotes(store: ClusterStore): InputNotes {
  const leftOut: LeftOut[] = [];
  for (const e of [...store.pods.values(), ...store.workloads.values()]) {
    const reason = leftOutReason(e);
    if (reason) leftOut.push({ key: objectKey(e), reason });
  }
  leftOut.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const shadowed = shadowedWorkloads(store);
  const shownAsPods = [...store.workloads.values()].filter((w: Workload) => !w.hostNetwork && shadowed.has(objectKey(w))).map(objectKey).sort();
  const implicitNamespaces = store.namespaceNames().filter((ns) => !store.namespaces.has(ns));
  return { leftOut, shownAsPods, implicitNamespaces };
}

/** The notes as lines (grouped by reason, a few names each), for stderr. */
export function formatInputNotes(n: InputNotes, max = 5): string[] {
  const lines: string[] = [];
  const byReason = new Map<string, string[]>();
  for (const l of n.leftOut) {
    let list = byReason.get(l.reason);
    if (!list) byReason.set(l.reason, (list = []));
    list.push(l.key);
  }
  const names = (l: readonly string[]) => `${l.slice(0, max).join(', ')}${l.length > max ? `, and ${l.length - max} more` : ''}`;
  for (const [reason, keys] of byReason) lines.push(`note: left out ${keys.length} ${keys.length === 1 ? 'object' : 'objects'}, ${reason}: ${names(keys)}`);
  if (n.shownAsPods.length > 0) lines.push(`note: ${n.shownAsPods.length} workload(s) shown as their pods: ${names(n.shownAsPods)}`);
  if (n.implicitNamespaces.length > 0) {
    lines.push(`note: namespace(s) ${names(n.implicitNamespaces)} not defined in the input: taken as existing, labelled only ${METADATA_NAME_LABEL}=<name>`);
  }
  return lines;
}
