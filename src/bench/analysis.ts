// `npm run bench -- analysis [--endpoints N] [--policies N] [--ports LIST] [--runs N] [--json]`
// (also `npm run bench -- --analysis ...`): the analysis commands at the size issue 13 sets —
// `podwall matrix -o json` over 1,000 endpoints and 500 policies on 3 ports, and `podwall diff -o json`
// of two such trees — each target ≤ 5 s. The trees are the benchmark's deterministic generator written
// as helm-template-style YAML (one multi-document file per namespace; half the endpoints as workloads
// of every kind, the rest as pods with IPs); the new tree is the old one after policy additions,
// updates and deletions, pod relabels, additions and deletions. Each command runs as the real CLI in a
// fresh process (wall time, its own CPU time, peak RSS), several rounds, medians reported; then once
// in this process, split into phases, to show where the time goes. Needs no root.
import { Command, InvalidArgumentError } from 'commander';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dump } from 'js-yaml';
import { WORKLOAD_KINDS, objectKey, type ClusterObject, type Pod, type Workload } from '../cluster/model.js';
import { loadManifests } from '../cluster/manifests.js';
import { analysisPlan } from '../cli/analysis.js';
import { parsePortList, type ProbePort } from '../policy/ports.js';
import { matrixView } from '../sim/matrix.js';
import { diffPlans } from '../sim/diff.js';
import { matrixJsonChunks } from '../report/json.js';
import { applyChanges, clusterObjects, generateCluster, makeEvents, toRawObject, type EventKind } from './generator.js';
import { ClusterStore } from '../cluster/store.js';
import { median } from './stats.js';

const CLI = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));
const CPU_REPORT = pathToFileURL(fileURLToPath(new URL('./cpu-report.js', import.meta.url))).href;
export const TARGET_MS = 5_000;

export interface AnalysisTreeOptions {
  endpoints: number;
  policies: number;
  /** Changes (events of the generator) between the old and the new tree. */
  changes: number;
  /** Share of the endpoints written as workloads (the rest are pods with IPs). */
  workloadShare: number;
  seed: number;
}

export interface AnalysisTrees {
  root: string;
  old: string;
  new: string;
  /** Objects per kind in the old tree (workloads by their kind). */
  counts: Record<string, number>;
  bytes: number;
}

const CHANGE_KINDS: readonly EventKind[] = ['policy-add', 'policy-update', 'policy-delete', 'pod-relabel', 'remote-pod-add', 'remote-pod-delete'];

/** A pod written as the workload that would run it: same labels and ports, no IP. */
function asWorkload(p: Pod, k: number): Workload {
  return { kind: 'Workload', workloadKind: WORKLOAD_KINDS[k % WORKLOAD_KINDS.length]!, namespace: p.namespace, name: p.name, labels: p.labels, hostNetwork: false, ips: [], ports: p.ports, owners: [] };
}

function writeTree(dir: string, objects: readonly ClusterObject[]): { counts: Record<string, number>; bytes: number } {
  mkdirSync(dir, { recursive: true });
  const byFile = new Map<string, Record<string, unknown>[]>();
  const counts: Record<string, number> = {};
  for (const o of objects) {
    const raw = toRawObject(o);
    const kind = raw.kind as string;
    counts[kind] = (counts[kind] ?? 0) + 1;
    const file = 'namespace' in o && typeof o.namespace === 'string' ? `${o.namespace}.yaml` : 'cluster.yaml';
    let l = byFile.get(file);
    if (!l) byFile.set(file, (l = []));
    l.push(raw);
  }
  let bytes = 0;
  for (const [file, raws] of byFile) {
    // helm template's shape: `---` then a `# Source:` comment before every document.
    const text = raws.map((r) => `---\n# Source: bench/templates/${String(r.kind).toLowerCase()}.yaml\n${dump(r, { lineWidth: -1 })}`).join('');
    writeFileSync(join(dir, file), text);
    bytes += Buffer.byteLength(text);
  }
  return { counts, bytes };
}

/** Writes the old and the new tree into a new temporary directory. */
export function writeAnalysisTrees(o: AnalysisTreeOptions): AnalysisTrees {
  const namespaces = Math.max(4, Math.round(o.endpoints / 20));
  const c = generateCluster({ name: `analysis-${o.endpoints}`, pods: o.endpoints, policies: o.policies, namespaces, localPods: Math.min(250, o.endpoints) }, o.seed);
  // Which pods are written as workloads: every n-th user pod, decided by the base cluster (the new tree
  // writes the same endpoint the same way).
  const every = o.workloadShare > 0 ? Math.max(1, Math.round(1 / o.workloadShare)) : 0;
  const asWl = new Map<string, number>();
  c.pods.forEach((p, i) => {
    if (every > 0 && i % every === 0 && !p.hostNetwork) asWl.set(objectKey(p), asWl.size);
  });
  const present = (objects: Iterable<ClusterObject>): ClusterObject[] => [...objects].map((x) => (x.kind === 'Pod' && asWl.has(objectKey(x)) ? asWorkload(x, asWl.get(objectKey(x))!) : x));
  // Old tree: the base cluster. New tree: the base after `changes` events (applied to a store, in order).
  const store = new ClusterStore();
  for (const x of clusterObjects(c)) store.upsert(x);
  const per = Math.max(1, Math.ceil(o.changes / CHANGE_KINDS.length));
  let applied = 0;
  for (const [i, kind] of CHANGE_KINDS.entries()) {
    for (const ev of makeEvents(c, kind, per, o.seed * 7919 + i)) {
      if (applied++ >= o.changes) break;
      applyChanges(store, ev);
    }
  }
  const after: ClusterObject[] = [...store.namespaces.values(), ...store.nodes.values(), ...store.services.values(), ...store.pods.values(), ...store.policies.values()];
  const root = mkdtempSync(join(tmpdir(), 'podwall-bench-analysis-'));
  const w = writeTree(join(root, 'old'), present(clusterObjects(c)));
  writeTree(join(root, 'new'), present(after));
  return { root, old: join(root, 'old'), new: join(root, 'new'), counts: w.counts, bytes: w.bytes };
}

export interface ProcessMeasurement {
  wallMs: number;
  cpuMs: number;
  peakRssMB: number;
  /** Bytes the command wrote on stdout. */
  outBytes: number;
  exitCode: number;
}

/** Runs `podwall ARGS` in a fresh process; stdout is counted (and kept when `keep`), not printed. */
export function runCli(args: readonly string[], keep = false): Promise<ProcessMeasurement & { stdout?: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--import', CPU_REPORT, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    let outBytes = 0;
    const out: Buffer[] = [];
    let err = '';
    let report = '';
    child.stdout!.on('data', (d: Buffer) => {
      outBytes += d.length;
      if (keep) out.push(d);
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => (report += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - t0;
      let r: { cpuMs: number; peakRssMB: number };
      try {
        r = JSON.parse(report) as typeof r;
      } catch {
        return reject(new Error(`podwall ${args.join(' ')} exited with ${code} and reported no CPU time: ${err.trim().split('\n').slice(-2).join(' | ')}`));
      }
      resolve({ wallMs, cpuMs: r.cpuMs, peakRssMB: r.peakRssMB, outBytes, exitCode: code ?? -1, stderr: err, ...(keep ? { stdout: Buffer.concat(out).toString() } : {}) });
    });
  });
}

const since = (t: number) => performance.now() - t;

/** `matrix -o json` once in this process, by phase (ms). */
export async function matrixPhases(dir: string, ports: readonly ProbePort[]): Promise<Record<string, number>> {
  let t = performance.now();
  const r = await loadManifests([dir]);
  const load = since(t);
  t = performance.now();
  const plan = analysisPlan(r.store, undefined);
  const compile = since(t);
  t = performance.now();
  const view = matrixView(plan, ports);
  let bytes = 0;
  for (const chunk of matrixJsonChunks(view)) bytes += chunk.length;
  const cells = since(t);
  return { load, compile, 'cells+json': cells, evaluated: view.reach.evaluated, bytes };
}

/** `diff -o json` once in this process, by phase (ms). */
export async function diffPhases(oldDir: string, newDir: string, ports: readonly ProbePort[]): Promise<Record<string, number>> {
  let t = performance.now();
  const a = await loadManifests([oldDir]);
  const b = await loadManifests([newDir]);
  const load = since(t);
  t = performance.now();
  const pa = analysisPlan(a.store, undefined);
  const pb = analysisPlan(b.store, undefined);
  const compile = since(t);
  t = performance.now();
  const d = diffPlans(pa, pb, ports);
  const cells = since(t);
  t = performance.now();
  const text = JSON.stringify(d, null, 2);
  const json = since(t);
  return { load, compile, 'cells+reasons': cells, json, changes: d.changes.length, bytes: Buffer.byteLength(text) };
}

interface Args {
  endpoints: number;
  policies: number;
  ports: string;
  changes: number;
  workloads: number;
  runs: number;
  seed: number;
  json: boolean;
  keep: boolean;
}

const positive = (what: string) => (v: string) => {
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what} must be a positive integer`);
  return n;
};

interface Summary {
  wallMs: number;
  cpuMs: number;
  peakRssMB: number;
  minWallMs: number;
  maxWallMs: number;
}
const summary = (ms: ProcessMeasurement[]): Summary => ({
  wallMs: Math.round(median(ms.map((m) => m.wallMs))),
  cpuMs: Math.round(median(ms.map((m) => m.cpuMs))),
  peakRssMB: Math.round(median(ms.map((m) => m.peakRssMB))),
  minWallMs: Math.round(Math.min(...ms.map((m) => m.wallMs))),
  maxWallMs: Math.round(Math.max(...ms.map((m) => m.wallMs))),
});

async function runAnalysis(a: Args): Promise<void> {
  const progress = (s: string) => process.stderr.write(`bench analysis: ${s}\n`);
  const ports = parsePortList(a.ports);
  progress(`writing two trees: ${a.endpoints} endpoints (${Math.round(a.workloads * 100)}% workloads), ${a.policies} policies, ${a.changes} changes between them`);
  const trees = writeAnalysisTrees({ endpoints: a.endpoints, policies: a.policies, changes: a.changes, workloadShare: a.workloads, seed: a.seed });
  try {
    const portArg = ports.map((p) => `${p.port}/${p.protocol}`).join(',');
    const matrixArgs = ['matrix', '-f', trees.old, '-o', 'json', '--ports', portArg];
    const diffArgs = ['diff', '--old', trees.old, '--new', trees.new, '-o', 'json', '--no-declared-ports', '--ports', portArg];
    // Once to check the output is what it claims (and to count it), unmeasured.
    const check = await runCli(matrixArgs, true);
    if (check.exitCode !== 0) throw new Error(`podwall matrix exited with ${check.exitCode}: ${check.stderr.trim()}`);
    const m = JSON.parse(check.stdout!) as { pods: string[]; probes: { allowed: Record<string, Record<string, boolean | null>> }[] };
    const count = { true: 0, false: 0, null: 0 };
    for (const pr of m.probes) for (const row of Object.values(pr.allowed)) for (const v of Object.values(row)) count[String(v) as 'true']++;
    const checkDiff = await runCli(diffArgs, true);
    if (checkDiff.exitCode !== 0) throw new Error(`podwall diff exited with ${checkDiff.exitCode}: ${checkDiff.stderr.trim()}`);
    const d = JSON.parse(checkDiff.stdout!) as { changes: unknown[]; endpoints: { added: string[]; removed: string[] } };
    const workloads = m.pods.filter((p) => p.endsWith(']')).length;
    const load0 = loadavg()[0]!;
    const results: Record<'matrix' | 'diff', ProcessMeasurement[]> = { matrix: [], diff: [] };
    for (let i = 0; i < a.runs; i++) {
      progress(`round ${i + 1}/${a.runs}`);
      results.matrix.push(await runCli(matrixArgs));
      results.diff.push(await runCli(diffArgs));
    }
    progress('phases, in this process');
    const phases = { matrix: await matrixPhases(trees.old, ports), diff: await diffPhases(trees.old, trees.new, ports) };
    const s = { matrix: summary(results.matrix), diff: summary(results.diff) };
    const report = {
      endpoints: m.pods.length,
      workloads,
      policies: a.policies,
      ports: portArg,
      objects: trees.counts,
      megabytes: Math.round(trees.bytes / 1e5) / 10,
      cells: { total: count.true + count.false + count.null, allowed: count.true, denied: count.false, dependsOnIP: count.null },
      diff: { changes: d.changes.length, endpointsAdded: d.endpoints.added.length, endpointsRemoved: d.endpoints.removed.length },
      runs: a.runs,
      loadAverage: [Math.round(load0 * 10) / 10, Math.round(loadavg()[0]! * 10) / 10],
      machine: 'shared 2-core VM (numbers vary run to run; compare medians)',
      matrix: { ...s.matrix, phases: phases.matrix },
      diffRun: { ...s.diff, phases: phases.diff },
      targets: { matrixWallMs: TARGET_MS, diffWallMs: TARGET_MS },
    };
    if (a.keep) progress(`trees kept in ${trees.root}`);
    if (a.json) return void process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    // On this shared machine the wall time waits for the CPU: judged on the process's CPU time, the
    // wall time beside it (with the load average while it ran).
    const mark = (x: { wallMs: number; cpuMs: number }) => `CPU ${x.cpuMs <= TARGET_MS ? 'met' : 'MISSED'}, wall ${x.wallMs <= TARGET_MS ? 'met' : 'missed'}`;
    const ph = (p: Record<string, number>) => Object.entries(p).map(([k, v]) => (['evaluated', 'changes', 'bytes'].includes(k) ? `${k} ${v.toLocaleString('en-US')}` : `${k} ${Math.round(v)} ms`)).join(' · ');
    const lines = [
      `podwall bench analysis — ${report.endpoints} endpoints (${workloads} workloads, ${report.endpoints - workloads} pods), ${a.policies} policies, ports ${portArg}; ${report.megabytes} MB of YAML per tree`,
      `  matrix: ${report.cells.total.toLocaleString('en-US')} cells (${count.true.toLocaleString('en-US')} allowed, ${count.false.toLocaleString('en-US')} denied, ${count.null.toLocaleString('en-US')} depend on the IP), ${(check.outBytes / 1e6).toFixed(1)} MB of JSON`,
      `  diff: ${d.changes.length.toLocaleString('en-US')} changed cells, ${d.endpoints.added.length} endpoints added, ${d.endpoints.removed.length} removed (${a.changes} generator changes)`,
      `  median of ${a.runs} round(s), each command the real CLI in a fresh process (${report.machine}; load average ${report.loadAverage.join(' → ')}):`,
      `  podwall matrix -o json   wall ${String(s.matrix.wallMs).padStart(6)} ms (min ${s.matrix.minWallMs}, max ${s.matrix.maxWallMs}) · cpu ${String(s.matrix.cpuMs).padStart(6)} ms · peak RSS ${s.matrix.peakRssMB} MB  (target ≤ ${TARGET_MS} ms: ${mark(s.matrix)})`,
      `      in-process phases: ${ph(phases.matrix)}`,
      `  podwall diff -o json     wall ${String(s.diff.wallMs).padStart(6)} ms (min ${s.diff.minWallMs}, max ${s.diff.maxWallMs}) · cpu ${String(s.diff.cpuMs).padStart(6)} ms · peak RSS ${s.diff.peakRssMB} MB  (target ≤ ${TARGET_MS} ms: ${mark(s.diff)})`,
      `      in-process phases: ${ph(phases.diff)}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    if (!a.keep) rmSync(trees.root, { recursive: true, force: true });
  }
}

/** `bench analysis ...`: returns the exit code. */
export async function analysisCommand(argv: readonly string[]): Promise<number> {
  const cmd = new Command('bench analysis')
    .description('podwall matrix -o json and podwall diff -o json at 1,000 endpoints and 500 policies on 3 ports (target ≤ 5 s each)')
    .option('--endpoints <n>', 'endpoints (pods and workloads) in each tree', positive('--endpoints'), 1_000)
    .option('--policies <n>', 'NetworkPolicies in each tree', positive('--policies'), 500)
    .option('--ports <list>', 'the probe ports', '8080/TCP,50051/TCP,53/UDP')
    .option('--changes <n>', 'generator changes between the old and the new tree (policies added, updated, deleted; pods relabelled, added, deleted)', positive('--changes'), 60)
    .option('--workloads <share>', 'share of the endpoints written as workloads (0-1)', (v: string) => {
      const n = Number(v);
      if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('--workloads must be between 0 and 1');
      return n;
    }, 0.5)
    .option('--runs <n>', 'rounds of each command (the median is reported)', positive('--runs'), 5)
    .option('--seed <n>', 'generator seed', positive('--seed'), 1)
    .option('--keep', 'keep the generated trees (their path is printed)', false)
    .option('--json', 'print JSON', false)
    .exitOverride();
  try {
    cmd.parse([...argv], { from: 'user' });
  } catch (e) {
    return (e as { exitCode?: number }).exitCode ?? 2;
  }
  const a = cmd.opts<Args>();
  try {
    parsePortList(a.ports);
  } catch (e) {
    process.stderr.write(`bench analysis: --ports: ${(e as Error).message}\n`);
    return 2;
  }
  await runAnalysis(a);
  return 0;
}
