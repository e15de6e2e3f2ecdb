// The reachability matrix: every ordered pair of endpoints, per probe port. A cell is true (allowed),
// false (denied) or null (depends on an address the input does not give).
import type { ClusterStore } from '../cluster/store.js';
import { familyOf, isActionablePod, isIPlessEndpoint } from '../cluster/model.js';
import { compile, type CompileOptions } from '../policy/compile.js';
import type { Plan, PlanPod } from '../policy/plan.js';
import type { ProbePort } from '../policy/ports.js';
import { evaluateFlow, flowBetween, type Verdict } from './evaluate.js';
import { Reachability } from './reachability.js';
import { asEnforced, hasAudit } from '../policy/audit.js';

/**
 * The JSON shape other tools rely on (DESIGN.md): `podwall lab probe` prints the same (with booleans
 * only). `pods` are endpoint names: `ns/name` for pods, `ns/name[Kind]` for workloads. With row or
 * column filters, `pods` lists every endpoint of either axis, `allowed` the rows and, in each, the
 * columns.
 */
export interface MatrixJson {
  pods: string[];
  probes: {
    port: number;
    protocol: string;
    allowed: Record<string, Record<string, boolean | null>>;
    /**
     * Only with audited policies, only the cells they would change once enforced: `would-deny` (allowed
     * now) or `would-allow` (denied now). `allowed` is always what is enforced now.
     */
    audit?: Record<string, Record<string, 'would-deny' | 'would-allow'>>;
  }[];
  /** Audited policies that select an endpoint of the matrix (absent when none). */
  audited?: string[];
}

export interface DetailedMatrix {
  json: MatrixJson;
  /** The plan the cells were judged on (absent for a measured matrix). */
  plan?: Plan;
  /** The verdict of one cell (undefined: the two share no address family), computed on demand. */
  verdict?: (probeIndex: number, from: string, to: string) => Verdict | undefined;
}

/** Source and destination IPs of one family for a pod pair (the source's first family wins). */
export function pairAddresses(from: { ips: readonly string[] }, to: { ips: readonly string[] }): [string, string] | undefined {
  for (const s of from.ips) {
    const d = to.ips.find((ip) => familyOf(ip) === familyOf(s));
    if (d) return [s, d];
  }
  return undefined;
}

export interface MatrixOptions {
  /** Rows (sources) to include; default every endpoint. */
  from?: (p: PlanPod) => boolean;
  /** Columns (destinations) to include; default every endpoint. */
  to?: (p: PlanPod) => boolean;
}

/** The verdict between two endpoints of a plan (undefined: no common address family). */
export function verdictBetween(plan: Plan, from: PlanPod, to: PlanPod, port: ProbePort): Verdict | undefined {
  const flow = flowBetween(plan, from, to, port.protocol, port.port);
  return flow && evaluateFlow(plan, flow);
}

/** A matrix not yet written out: rows and columns (indexes into the plan's endpoints), cells on demand. */
export class MatrixView {
  readonly rows: readonly number[];
  readonly cols: readonly number[];
  /** With audited policies: the same cells once they are enforced (policy/audit.ts). */
  readonly enforced: Reachability | undefined;
  constructor(
    readonly reach: Reachability,
    opts: MatrixOptions = {},
  ) {
    const eps = reach.endpoints;
    const all = eps.map((_, i) => i);
    this.rows = opts.from ? all.filter((i) => opts.from!(eps[i]!)) : all;
    this.cols = opts.to ? all.filter((i) => opts.to!(eps[i]!)) : all;
    this.enforced = hasAudit(reach.plan) ? new Reachability(asEnforced(reach.plan), reach.ports) : undefined;
  }

  /** Audited policies selecting an endpoint of either axis, sorted (empty when none). */
  audited(): string[] {
    if (!this.enforced) return [];
    const eps = this.reach.endpoints;
    return [...new Set([...this.rows, ...this.cols].flatMap((i) => [...(eps[i]!.ingressAudit ?? []), ...(eps[i]!.egressAudit ?? [])]))].sort();
  }

  /** What enforcing the audited policies would change in a cell (undefined: nothing). */
  auditChange(i: number, j: number, portIndex: number): 'would-deny' | 'would-allow' | undefined {
    if (!this.enforced) return undefined;
    const now = this.cell(i, j, portIndex);
    const then = this.enforced.allowedAt(i, j, portIndex);
    if (now !== false && then === false) return 'would-deny';
    if (now === false && then === true) return 'would-allow';
    return undefined;
  }

  get ports(): readonly ProbePort[] {
    return this.reach.ports;
  }

  /** Every endpoint on either axis, sorted. */
  names(): string[] {
    return [...new Set([...this.rows, ...this.cols].map((i) => this.reach.endpoints[i]!.key))].sort();
  }

  key(i: number): string {
    return this.reach.endpoints[i]!.key;
  }

  /** Rows × columns × ports: what writing it out costs. */
  get cells(): number {
    return this.rows.length * this.cols.length * this.ports.length;
  }

  cell(i: number, j: number, portIndex: number): boolean | null {
    return this.reach.allowedAt(i, j, portIndex);
  }

  json(): MatrixJson {
    const out: MatrixJson = { pods: this.names(), probes: [] };
    for (const [pi, port] of this.ports.entries()) {
      const allowed: Record<string, Record<string, boolean | null>> = {};
      const audit: Record<string, Record<string, 'would-deny' | 'would-allow'>> = {};
      for (const i of this.rows) {
        const row: Record<string, boolean | null> = {};
        for (const j of this.cols) {
          row[this.key(j)] = this.cell(i, j, pi);
          const change = this.auditChange(i, j, pi);
          if (change) (audit[this.key(i)] ??= {})[this.key(j)] = change;
        }
        allowed[this.key(i)] = row;
      }
      out.probes.push({ port: port.port, protocol: port.protocol, allowed, ...(Object.keys(audit).length > 0 ? { audit } : {}) });
    }
    const audited = this.audited();
    if (audited.length > 0) out.audited = audited;
    return out;
  }

  detailed(): DetailedMatrix {
    const r = this.reach;
    return {
      json: this.json(),
      plan: r.plan,
      verdict: (pi, from, to) => {
        const f = r.endpoint(from);
        const t = r.endpoint(to);
        return f && t && r.ports[pi] ? r.verdict(f, t, pi) : undefined;
      },
    };
  }
}

export function matrixView(plan: Plan, ports: readonly ProbePort[], opts: MatrixOptions = {}): MatrixView {
  return new MatrixView(new Reachability(plan, ports), opts);
}

export function matrixFromPlan(plan: Plan, ports: readonly ProbePort[], opts: MatrixOptions = {}): DetailedMatrix {
  return matrixView(plan, ports, opts).detailed();
}

/** The matrix of a store's analysis plan: workloads and planned pods included. */
export function computeMatrix(store: ClusterStore, ports: readonly ProbePort[], opts: Omit<CompileOptions, 'node' | 'ipless'> = {}): MatrixJson {
  return matrixFromPlan(compile(store, { ...opts, ipless: true }), ports).json;
}

/** Every distinct container port/protocol declared by the endpoints (pods and workloads), sorted. */
export function declaredPorts(store: ClusterStore): ProbePort[] {
  const seen = new Map<string, ProbePort>();
  for (const p of [...store.pods.values(), ...store.workloads.values()]) {
    if (!(p.kind === 'Pod' && isActionablePod(p)) && !isIPlessEndpoint(p)) continue;
    for (const cp of p.ports) seen.set(`${cp.port}/${cp.protocol}`, { port: cp.port, protocol: cp.protocol });
  }
  const order = { TCP: 0, UDP: 1, SCTP: 2 };
  return [...seen.values()].sort((a, b) => a.port - b.port || order[a.protocol] - order[b.protocol]);
}
