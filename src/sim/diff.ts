// Reachability change between two states of the input (a pull request's before and after): access
// added and removed per endpoint pair and port, each with the reason on both sides, and the
// endpoints that appear or disappear. Pure: two plans in, a ReachabilityDiff out.
import type { Plan, PlanPod } from '../policy/plan.js';
import type { ProbePort } from '../policy/ports.js';
import { CELL_ALLOWED, CELL_DENIED, Reachability } from './reachability.js';
import { explainFlow, type Endpoint } from './explain.js';
import { evaluateFlow, flowBetween } from './evaluate.js';
import type { MatrixOptions } from './matrix.js';

export type Cell = boolean | null;

/** One changed cell. The JSON contract of `podwall diff -o json` (docs/cli.md). */
export interface AccessChange {
  from: string;
  to: string;
  port: number;
  protocol: string;
  before: Cell;
  after: Cell;
  why: { before: string; after: string };
}

export interface ReachabilityDiff {
  changes: AccessChange[];
  endpoints: { added: string[]; removed: string[] };
}

/**
 * Whether a change gives access (`added`) or takes it (`removed`), ordering false < null < true: a
 * pair that may now be allowed (depends on the pod's IP) has gained access, one that may now be
 * denied has lost it.
 */
export function changeKind(c: { before: Cell; after: Cell }): 'added' | 'removed' {
  const rank = (v: Cell) => (v === false ? 0 : v === null ? 1 : 2);
  return rank(c.after) > rank(c.before) ? 'added' : 'removed';
}

export type DiffOptions = MatrixOptions;

/** The cells that differ between two plans over the same ports, for endpoints present in both. */
export function diffPlans(before: Plan, after: Plan, ports: readonly ProbePort[], opts: DiffOptions = {}): ReachabilityDiff {
  const a = new Reachability(before, ports);
  const b = new Reachability(after, ports);
  const keysA = new Set(before.pods.map((p) => p.key));
  const keysB = new Set(after.pods.map((p) => p.key));
  const added = after.pods.filter((p) => !keysA.has(p.key)).map((p) => p.key);
  const removed = before.pods.filter((p) => !keysB.has(p.key)).map((p) => p.key);
  // Endpoints on both sides, by index into each plan.
  const indexB = new Map(after.pods.map((p, i) => [p.key, i]));
  const common: [number, number, PlanPod][] = [];
  before.pods.forEach((p, i) => {
    const j = indexB.get(p.key);
    if (j !== undefined) common.push([i, j, p]);
  });
  const rows = opts.from ? common.filter(([, j]) => opts.from!(after.pods[j]!)) : common;
  const cols = opts.to ? common.filter(([, j]) => opts.to!(after.pods[j]!)) : common;
  const changes: AccessChange[] = [];
  const colsA = cols.map(([ta]) => ta);
  const colsB = cols.map(([, tb]) => tb);
  const x = new Uint8Array(cols.length);
  const y = new Uint8Array(cols.length);
  for (const [pi, port] of ports.entries()) {
    for (const [fa, fb, fp] of rows) {
      a.rowAt(fa, colsA, pi, x);
      b.rowAt(fb, colsB, pi, y);
      for (let k = 0; k < cols.length; k++) {
        if (x[k] === y[k]) continue;
        const [ta, tb, tp] = cols[k]!;
        const why = { before: reason(a, fa, ta, pi), after: reason(b, fb, tb, pi) };
        changes.push({ from: fp.key, to: tp.key, port: port.port, protocol: port.protocol, before: cellOf(x[k]!), after: cellOf(y[k]!), why });
      }
    }
  }
  changes.sort((p, q) => cmp(p.from, q.from) || cmp(p.to, q.to) || p.port - q.port || cmp(p.protocol, q.protocol));
  return { changes, endpoints: { added: added.sort(), removed: removed.sort() } };
}

/** An endpoint of the plan as explain names it (what resolveEndpoint gives for its key). */
const endpointOf = (p: PlanPod): Endpoint => (p.ips[0] !== undefined ? { pod: p.key, label: p.key, ip: p.ips[0] } : { pod: p.key, label: p.key });

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const cellOf = (code: number): Cell => (code === CELL_ALLOWED ? true : code === CELL_DENIED ? false : null);

/** The verdict's summary; for a denial, with the nearest miss of each denying side (why it is denied). */
function reason(r: Reachability, i: number, j: number, pi: number): string {
  const from = r.endpoints[i]!;
  const to = r.endpoints[j]!;
  const port = r.ports[pi]!;
  const flow = flowBetween(r.plan, from, to, port.protocol, port.port);
  if (!flow) return 'DENIED: the two share no address family';
  const v = evaluateFlow(r.plan, flow);
  if (v.allowed !== false) return v.summary;
  // The same flow explain would choose for the two endpoints by name.
  const x = explainFlow(r.plan, flow, endpointOf(from), endpointOf(to));
  const misses = [x.egress, x.ingress].filter((s) => s.verdict.outcome === 'denied' && s.nearest).map((s) => `nearest miss (${s.verdict.direction}): ${s.nearest!.text}`);
  return misses.length > 0 ? `${v.summary}; ${misses.join('; ')}` : v.summary;
}

/** Namespace pair of a change: `from-ns → to-ns`, how changes are grouped for reading. */
export function namespacePair(c: AccessChange): string {
  return `${c.from.slice(0, c.from.indexOf('/'))} → ${c.to.slice(0, c.to.indexOf('/'))}`;
}

export function groupByNamespacePair(changes: readonly AccessChange[]): Map<string, AccessChange[]> {
  const out = new Map<string, AccessChange[]>();
  for (const c of changes) {
    const k = namespacePair(c);
    let l = out.get(k);
    if (!l) out.set(k, (l = []));
    l.push(c);
  }
  return new Map([...out].sort((x, y) => cmp(x[0], y[0])));
}

/** Whether `--fail-on` is met. */
export function failsOn(d: ReachabilityDiff, on: 'added' | 'removed' | 'any'): boolean {
  if (on === 'any') return d.changes.length > 0 || d.endpoints.added.length > 0 || d.endpoints.removed.length > 0;
  return d.changes.some((c) => changeKind(c) === on);
}
