// The upstream conformance model: namespaces x, y, z labelled `ns: <name>`; pods a, b, c labelled
// `pod: <name>`, each serving 80 and 81 on TCP, UDP and SCTP with ports named `serve-80-tcp` etc.
// Pods are spread over two nodes. Produces raw Kubernetes objects (as a manifest would hold them).
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ClusterStore } from '../../src/cluster/store.js';
import { normalizeObject } from '../../src/cluster/normalize.js';

export const NAMESPACES = ['x', 'y', 'z'] as const;
export const PODS = ['a', 'b', 'c'] as const;
export const NODES = ['node-1', 'node-2'] as const;

export type Raw = Record<string, unknown>;

export function podIP(ns: string, pod: string): string {
  const n = NAMESPACES.indexOf(ns as (typeof NAMESPACES)[number]);
  const p = PODS.indexOf(pod as (typeof PODS)[number]);
  // node-1 holds a and b (10.244.1.0/24), node-2 holds c (10.244.2.0/24)
  const node = pod === 'c' ? 2 : 1;
  return `10.244.${node}.${10 + n * 10 + p}`;
}

export function conformanceObjects(): Raw[] {
  const out: Raw[] = [];
  NODES.forEach((n, i) =>
    out.push({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: n },
      spec: { podCIDR: `10.244.${i + 1}.0/24`, podCIDRs: [`10.244.${i + 1}.0/24`] },
      status: { addresses: [{ type: 'InternalIP', address: `172.18.0.${i + 2}` }] },
    }),
  );
  for (const ns of NAMESPACES) {
    out.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { ns } } });
    for (const pod of PODS) {
      const ports = [];
      for (const port of [80, 81]) for (const proto of ['TCP', 'UDP', 'SCTP']) ports.push({ name: `serve-${port}-${proto.toLowerCase()}`, containerPort: port, protocol: proto });
      out.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: pod, namespace: ns, labels: { pod } },
        spec: { nodeName: pod === 'c' ? 'node-2' : 'node-1', containers: [{ name: 'server', image: 'agnhost', ports }] },
        status: { phase: 'Running', podIP: podIP(ns, pod), podIPs: [{ ip: podIP(ns, pod) }] },
      });
    }
  }
  return out;
}

export function storeOf(objects: Raw[]): ClusterStore {
  const store = new ClusterStore();
  for (const o of objects) {
    const r = normalizeObject(o, { file: 'test' });
    const errors = r.findings.filter((f) => f.severity === 'error');
    if (errors.length > 0 && !r.object) throw new Error(`fixture object rejected: ${JSON.stringify(errors)}`);
    if (r.object) store.upsert(r.object);
  }
  return store;
}

export function policy(ns: string, name: string, spec: Raw): Raw {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec };
}

export function writeManifests(dir: string, objects: Raw[], file = 'cluster.yaml'): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, file);
  writeFileSync(path, objects.map((o) => stringify(o)).join('---\n'));
  return path;
}

export const ALL_PODS = NAMESPACES.flatMap((ns) => PODS.map((p) => `${ns}/${p}`));
