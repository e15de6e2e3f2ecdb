// The reachability matrix: every ordered pair of actionable pods, per probe port.
import type { ClusterStore } from '../cluster/store.js';
import { familyOf, isActionablePod } from '../cluster/model.js';
import { compile } from '../policy/compile.js';
import type { Plan, PlanPod } from '../policy/plan.js';
import type { ProbePort } from '../policy/ports.js';
import { evaluate, type Verdict } from './evaluate.js';

/** The JSON shape other tools rely on (DESIGN.md): `podwall lab probe` prints the same. */
export interface MatrixJson {
  pods: string[];
  probes: { port: number; protocol: string; allowed: Record<string, Record<string, boolean>> }[];
}

export interface DetailedMatrix {
  json: MatrixJson;
  /** verdicts[probeIndex][from][to] */
  verdicts: Record<string, Record<string, Verdict | undefined>>[];
}

/** Source and destination IPs of one family for a pod pair (the source's first family wins). */
export function pairAddresses(from: PlanPod, to: PlanPod): [string, string] | undefined {
  for (const s of from.ips) {
    const d = to.ips.find((ip) => familyOf(ip) === familyOf(s));
    if (d) return [s, d];
  }
  return undefined;
}

export function matrixFromPlan(plan: Plan, ports: readonly ProbePort[]): DetailedMatrix {
  const pods = plan.pods;
  const json: MatrixJson = { pods: pods.map((p) => p.key), probes: [] };
  const verdicts: DetailedMatrix['verdicts'] = [];
  for (const port of ports) {
    const allowed: Record<string, Record<string, boolean>> = {};
    const detail: Record<string, Record<string, Verdict | undefined>> = {};
    for (const from of pods) {
      const row: Record<string, boolean> = {};
      const drow: Record<string, Verdict | undefined> = {};
      for (const to of pods) {
        const addrs = pairAddresses(from, to);
        if (!addrs) {
          row[to.key] = false;
          drow[to.key] = undefined;
          continue;
        }
        const v = evaluate(plan, { src: addrs[0], dst: addrs[1], protocol: port.protocol, port: port.port });
        row[to.key] = v.allowed;
        drow[to.key] = v;
      }
      allowed[from.key] = row;
      detail[from.key] = drow;
    }
    json.probes.push({ port: port.port, protocol: port.protocol, allowed });
    verdicts.push(detail);
  }
  return { json, verdicts };
}

export function computeMatrix(store: ClusterStore, ports: readonly ProbePort[]): MatrixJson {
  return matrixFromPlan(compile(store), ports).json;
}

/** Every distinct container port/protocol declared by actionable pods, sorted. */
export function declaredPorts(store: ClusterStore): ProbePort[] {
  const seen = new Map<string, ProbePort>();
  for (const p of store.pods.values()) {
    if (!isActionablePod(p)) continue;
    for (const cp of p.ports) seen.set(`${cp.port}/${cp.protocol}`, { port: cp.port, protocol: cp.protocol });
  }
  const order = { TCP: 0, UDP: 1, SCTP: 2 };
  return [...seen.values()].sort((a, b) => a.port - b.port || order[a.protocol] - order[b.protocol]);
}
