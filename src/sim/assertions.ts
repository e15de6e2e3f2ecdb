// `podwall test`: checks assertions (sim/expectations.ts) against a plan. Each assertion covers
// every pair of the endpoints it names and every port of its ranges — a range is checked once per
// stretch of ports no rule of the plan tells apart, so 1-65535 costs what a few ports cost. A pair
// whose verdict depends on the pod's IP passes neither `allow: true` nor `allow: false`.
import type { Plan, PlanPod } from '../policy/plan.js';
import type { ProbePort } from '../policy/ports.js';
import type { Protocol } from '../cluster/model.js';
import { explain, formatExplanation, resolveEndpoint } from './explain.js';
import { matchesAny } from './endpoint-pattern.js';
import { Reachability } from './reachability.js';
import type { Assertion, EndpointSet, PortRange } from './expectations.js';
import { formatPortRange } from './expectations.js';

export interface AssertionFailure {
  from: string;
  to: string;
  /** The port, or the stretch of ports with the same verdict: `80/TCP`, `8000-8079/TCP`. */
  port: string;
  expected: boolean;
  got: boolean | null;
  /** The explanation of the first port of the stretch (as `podwall explain` prints it). */
  why: string;
}

export interface AssertionResult {
  assertion: Assertion;
  passed: boolean;
  /** Endpoint pairs × port stretches checked. */
  checked: number;
  /** Every failing cell counted; `failures` holds the first few, explained. */
  failed: number;
  failures: AssertionFailure[];
  /** Why the assertion could not be checked (a side matches no endpoint); it fails. */
  problem?: string;
}

export interface TestReport {
  results: AssertionResult[];
  passed: number;
  failed: number;
}

/** Stretches of [lo, hi] on which every port entry of the plan (numbers, ranges, named ports) agrees. */
export function portStretches(plan: Plan, r: PortRange): PortRange[] {
  const cuts = new Set<number>([r.lo]);
  const cut = (n: number) => n > r.lo && n <= r.hi && cuts.add(n);
  for (const pol of plan.policies) {
    for (const rule of [...pol.ingress, ...pol.egress]) {
      if (rule.ports === 'all') continue;
      for (const p of rule.ports) {
        if (p.protocol !== r.protocol || p.port === undefined) continue;
        cut(p.port);
        cut((p.endPort ?? p.port) + 1);
      }
    }
  }
  const sorted = [...cuts].sort((a, b) => a - b);
  return sorted.map((lo, i) => ({ protocol: r.protocol, lo, hi: (sorted[i + 1] ?? r.hi + 1) - 1 }));
}

function members(plan: Plan, set: EndpointSet): number[] {
  const nsLabels = (ns: string) => plan.namespaceLabels[ns] ?? { 'kubernetes.io/metadata.name': ns };
  const out: number[] = [];
  plan.pods.forEach((p: PlanPod, i) => matchesAny(set.patterns, p, nsLabels) && out.push(i));
  return out;
}

const MAX_EXPLAINED = 5;

export function checkAssertions(plan: Plan, assertions: readonly Assertion[]): TestReport {
  // One probe port per stretch start, shared by every assertion.
  const probeIndex = new Map<string, number>();
  const probes: ProbePort[] = [];
  const stretches = assertions.map((a) =>
    a.ports.flatMap((r) =>
      portStretches(plan, r).map((s) => {
        const k = `${s.lo}/${s.protocol}`;
        if (!probeIndex.has(k)) {
          probeIndex.set(k, probes.length);
          probes.push({ port: s.lo, protocol: s.protocol });
        }
        return { s, pi: probeIndex.get(k)! };
      }),
    ),
  );
  const reach = new Reachability(plan, probes);
  const results = assertions.map((a, ai): AssertionResult => {
    const from = members(plan, a.from);
    const to = members(plan, a.to);
    const base = { assertion: a, checked: 0, failed: 0, failures: [] as AssertionFailure[] };
    if (from.length === 0) return { ...base, passed: false, problem: `from ${a.from.text} matches no endpoint` };
    if (to.length === 0) return { ...base, passed: false, problem: `to ${a.to.text} matches no endpoint` };
    const self = a.from.exact && a.to.exact;
    let checked = 0;
    let failed = 0;
    const failures: AssertionFailure[] = [];
    for (const { s, pi } of stretches[ai]!) {
      for (const i of from) {
        for (const j of to) {
          if (i === j && !self) continue;
          checked++;
          const got = reach.allowedAt(i, j, pi);
          if (got === a.allow) continue;
          failed++;
          if (failures.length >= MAX_EXPLAINED) continue;
          const f = plan.pods[i]!.key;
          const t = plan.pods[j]!.key;
          failures.push({ from: f, to: t, port: formatPortRange(s), expected: a.allow, got, why: explainText(plan, f, t, s.protocol, s.lo) });
        }
      }
    }
    if (checked === 0) return { ...base, passed: false, problem: 'no pair to check: from and to name only the same endpoint (a pair of an endpoint with itself is checked only when both sides name it exactly)' };
    return { ...base, passed: failed === 0, checked, failed, failures };
  });
  const passed = results.filter((r) => r.passed).length;
  return { results, passed, failed: results.length - passed };
}

function explainText(plan: Plan, from: string, to: string, protocol: Protocol, port: number): string {
  try {
    return formatExplanation(explain(plan, resolveEndpoint(plan, from, 'from'), resolveEndpoint(plan, to, 'to'), protocol, port));
  } catch (e) {
    return (e as Error).message;
  }
}

const word = (v: boolean | null) => (v === null ? 'DEPENDS ON IP' : v ? 'ALLOWED' : 'DENIED');

/** The human report: PASS/FAIL per assertion, each failure explained. */
export function formatTestReport(r: TestReport): string {
  const out: string[] = [];
  for (const x of r.results) {
    const a = x.assertion;
    out.push(`${x.passed ? 'PASS' : 'FAIL'}  ${a.name}  (${a.file}: assertions[${a.index}])`);
    if (x.problem) out.push(`      ${x.problem}`);
    for (const f of x.failures) {
      out.push(`      ${f.from} → ${f.to} ${f.port}: expected ${f.expected ? 'ALLOWED' : 'DENIED'}, got ${word(f.got)}`);
      for (const line of f.why.split('\n')) out.push(`        ${line}`);
    }
    if (x.failed > x.failures.length) out.push(`      … and ${x.failed - x.failures.length} more failing pair(s) and port(s) of ${x.checked}`);
  }
  out.push(`${r.results.length} assertion(s): ${r.passed} passed, ${r.failed} failed`);
  return out.join('\n');
}
