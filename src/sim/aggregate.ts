// The matrix by namespace: for every pair of namespaces and port, how many endpoint pairs are
// allowed, denied or depend on an IP. Endpoints of one namespace and one class share their cells,
// so a group of them is counted at once: the work grows with the groups, not with endpoints².
import type { MatrixView } from './matrix.js';

export interface PairCounts {
  allowed: number;
  denied: number;
  unknown: number;
}

export interface AggregateJson {
  namespaces: string[];
  probes: { port: number; protocol: string; pairs: Record<string, Record<string, PairCounts>> }[];
}

interface Group {
  ns: string;
  /** A member (endpoint index) and how many members are on this axis. */
  members: number[];
}

/** Groups of one axis: endpoints of one namespace and one class (shared-IP endpoints alone). */
function groupsOf(view: MatrixView, axis: readonly number[]): Map<string, Group> {
  const out = new Map<string, Group>();
  for (const i of axis) {
    const e = view.reach.endpoints[i]!;
    const c = view.reach.classOfIndex(i);
    const key = c < 0 ? `#${i}` : `${e.namespace}\u0000${c}`;
    let g = out.get(key);
    if (!g) out.set(key, (g = { ns: e.namespace, members: [] }));
    g.members.push(i);
  }
  return out;
}

/** Group pairs the aggregation will decide (what it costs), before deciding any. */
export function aggregateWork(view: MatrixView): number {
  return groupsOf(view, view.rows).size * groupsOf(view, view.cols).size * view.ports.length;
}

export function aggregateByNamespace(view: MatrixView): AggregateJson {
  const rows = groupsOf(view, view.rows);
  const cols = groupsOf(view, view.cols);
  const namespaces = [...new Set([...rows.values(), ...cols.values()].map((g) => g.ns))].sort();
  const out: AggregateJson = { namespaces, probes: [] };
  for (const [pi, port] of view.ports.entries()) {
    const pairs: Record<string, Record<string, PairCounts>> = {};
    const at = (a: string, b: string) => ((pairs[a] ??= {})[b] ??= { allowed: 0, denied: 0, unknown: 0 });
    for (const [rk, rg] of rows) {
      for (const [ck, cg] of cols) {
        const counts = at(rg.ns, cg.ns);
        let self = 0;
        if (rk === ck) {
          // Same group on both axes: its members' pairs with themselves are always allowed.
          const inCols = new Set(cg.members);
          self = rg.members.filter((m) => inCols.has(m)).length;
        }
        const total = rg.members.length * cg.members.length - self;
        counts.allowed += self;
        if (total === 0) continue;
        // Any two distinct members decide the group pair (they are interchangeable).
        const a = rg.members[0]!;
        const b = cg.members.find((m) => m !== a) ?? cg.members[0]!;
        const v = view.cell(a, b, pi);
        if (v === true) counts.allowed += total;
        else if (v === false) counts.denied += total;
        else counts.unknown += total;
      }
    }
    out.probes.push({ port: port.port, protocol: port.protocol, pairs });
  }
  return out;
}
