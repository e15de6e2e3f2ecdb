// Applies scenario steps to a store and turns expectations into matrices.
import { ClusterStore } from '../../src/cluster/store.js';
import { normalizeObject } from '../../src/cluster/normalize.js';
import type { MatrixJson } from '../../src/sim/matrix.js';
import type { Step } from './scenarios.js';
import type { Raw } from './conformance.js';

export const LAB_PORTS = [
  { port: 80, protocol: 'TCP' as const },
  { port: 81, protocol: 'TCP' as const },
  { port: 80, protocol: 'UDP' as const },
  { port: 81, protocol: 'UDP' as const },
];

export function applyObjects(store: ClusterStore, objects: Raw[]): void {
  for (const o of objects) {
    const r = normalizeObject(o, { file: 'scenario' });
    if (!r.object) throw new Error(`scenario object rejected: ${JSON.stringify(r.findings)}`);
    store.upsert(r.object);
  }
}

export function applyStep(store: ClusterStore, step: Step): void {
  applyObjects(store, step.apply ?? []);
  for (const r of step.remove ?? []) store.remove(r.kind as 'Pod', r.namespace ? `${r.namespace}/${r.name}` : r.name);
}

/** Pairs where `m` differs from the step's expectation. */
export function mismatches(m: MatrixJson, step: Step): string[] {
  const out: string[] = [];
  for (const probe of m.probes) {
    for (const from of m.pods) {
      for (const to of m.pods) {
        const [fns, fpod] = from.split('/') as [string, string];
        const [tns, tpod] = to.split('/') as [string, string];
        const want = from === to || step.expect({ ns: fns, pod: fpod }, { ns: tns, pod: tpod }, probe);
        const got = probe.allowed[from]?.[to];
        if (got !== want) out.push(`${from} -> ${to} ${probe.port}/${probe.protocol}: got ${got}, want ${want}`);
      }
    }
  }
  return out;
}

/** Pairs where two matrices differ (same pods and probes expected). */
export function diffMatrices(a: MatrixJson, b: MatrixJson, la = 'a', lb = 'b'): string[] {
  const out: string[] = [];
  if (JSON.stringify(a.pods) !== JSON.stringify(b.pods)) out.push(`pods differ: ${la}=${a.pods.join(',')} ${lb}=${b.pods.join(',')}`);
  for (const [i, pa] of a.probes.entries()) {
    const pb = b.probes[i];
    if (!pb) {
      out.push(`probe ${pa.port}/${pa.protocol} missing in ${lb}`);
      continue;
    }
    for (const from of a.pods) for (const to of a.pods) if (pa.allowed[from]?.[to] !== pb.allowed[from]?.[to]) out.push(`${from} -> ${to} ${pa.port}/${pa.protocol}: ${la}=${pa.allowed[from]?.[to]} ${lb}=${pb.allowed[from]?.[to]}`);
  }
  return out;
}
