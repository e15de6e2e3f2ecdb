// The reachability matrix: every ordered pair of endpoints, per probe port. A cell is true (allowed),
// false (denied) or null (depends on an address the input does not give).
import type { ClusterStore } from '../cluster/store.js';
import { familyOf, isActionablePod, isIPlessEndpoint } from '../cluster/model.js';
import { compile, type CompileOptions } from '../policy/compile.js';
import type { Plan, PlanPod } from '../policy/plan.js';
import type { ProbePort } from '../policy/ports.js';
import { evaluateFlow, flowBetween, type Verdict } from './evaluate.js';

/**
 * The JSON shape other tools rely on (DESIGN.md): `podwall lab probe` prints the same (with booleans
 * only). `pods` are endpoint names: `ns/name` for pods, `ns/name[Kind]` for workloads.
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

export function matrixFromPlan(plan: Plan, ports: readonly ProbePort[], opts: MatrixOptions = {}): DetailedMatrix {
  const rows = opts.from ? plan.pods.filter(opts.from) : plan.pods;
  const cols = opts.to ? plan.pods.filter(opts.to) : plan.pods;
  const names = [...new Set([...rows, ...cols].map((p) => p.key))].sort();
  const json: MatrixJson = { pods: names, probes: [] };
  for (const port of ports) {
    const allowed: Record<string, Record<string, boolean | null>> = {};
    const audit: Record<string, Record<string, 'would-deny' | 'would-allow'>> = {};
    for (const from of rows) {
      const row: Record<string, boolean | null> = {};
      for (const to of cols) {
        const v = verdictBetween(plan, from, to, port);
        // No common address family: they cannot talk.
        row[to.key] = v === undefined ? false : v.allowed;
        if (v?.audit && v.audit.change !== 'none') (audit[from.key] ??= {})[to.key] = v.audit.change;
      }
      allowed[from.key] = row;
    }
    json.probes.push({ port: port.port, protocol: port.protocol, allowed, ...(Object.keys(audit).length > 0 ? { audit } : {}) });
  }
  const audited = [...new Set([...rows, ...cols].flatMap((p) => [...(p.ingressAudit ?? []), ...(p.egressAudit ?? [])]))].sort();
  if (audited.length > 0) json.audited = audited;
  const byKey = new Map(plan.pods.map((p) => [p.key, p]));
  return {
    json,
    plan,
    verdict: (pi, from, to) => {
      const f = byKey.get(from);
      const t = byKey.get(to);
      const port = ports[pi];
      return f && t && port ? verdictBetween(plan, f, t, port) : undefined;
    },
  };
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
