// `npm run bench -- load [--pods N] [--layout files|list-yaml|list-json] [--runs N] [--json]`:
// loading a large cluster from manifests, as `podwall lint` does and as the agent's manifests
// source does, each measured in a fresh process (wall time, CPU time, peak RSS). The cluster is the
// benchmark's deterministic generator at N pods (N/10 policies, N/20 namespaces), written as YAML
// files of 5,000 objects, one kubectl-style List, or one JSON List. Needs no root.
import { Command, InvalidArgumentError } from 'commander';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dump } from 'js-yaml';
import { clusterObjects, generateCluster, toRawObject } from './generator.js';
import { median } from './stats.js';

export type Layout = 'files' | 'list-yaml' | 'list-json';
const LAYOUTS: readonly Layout[] = ['files', 'list-yaml', 'list-json'];
const CHILD = fileURLToPath(new URL('./load-child.js', import.meta.url));

export interface LoadMeasurement {
  mode: 'lint' | 'source';
  wallMs: number;
  cpuMs: number;
  peakRssMB: number;
  /** Split of the work inside the process. */
  phases: Record<string, number>;
  objects: number;
  errors: number;
}

/** Writes the generated cluster of `pods` pods into a new directory in the given layout. */
export function writeCluster(pods: number, layout: Layout, seed = 1): { dir: string; counts: Record<string, number>; bytes: number } {
  const c = generateCluster({ name: `load-${pods}`, pods, policies: Math.max(1, Math.round(pods / 10)), namespaces: Math.max(4, Math.round(pods / 20)), localPods: Math.min(250, pods) }, seed);
  const dir = mkdtempSync(join(tmpdir(), 'podwall-bench-load-'));
  const raws = [...clusterObjects(c)].map(toRawObject);
  const counts: Record<string, number> = {};
  for (const r of raws) counts[r.kind as string] = (counts[r.kind as string] ?? 0) + 1;
  let bytes = 0;
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    bytes += Buffer.byteLength(text);
  };
  if (layout === 'files') {
    for (let i = 0; i < raws.length; i += 5000) write(`objects-${String(i / 5000).padStart(3, '0')}.yaml`, raws.slice(i, i + 5000).map((o) => dump(o, { lineWidth: -1 })).join('---\n'));
  } else if (layout === 'list-yaml') write('cluster.yaml', dump({ apiVersion: 'v1', kind: 'List', items: raws, metadata: { resourceVersion: '' } }, { lineWidth: -1 }));
  else write('cluster.json', JSON.stringify({ apiVersion: 'v1', kind: 'List', items: raws, metadata: { resourceVersion: '' } }, null, 4));
  return { dir, counts, bytes };
}

function measure(mode: 'lint' | 'source', dir: string): Promise<LoadMeasurement> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, mode, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`the ${mode} measurement exited with ${code}`));
      try {
        resolve(JSON.parse(out) as LoadMeasurement);
      } catch (e) {
        reject(new Error(`the ${mode} measurement printed ${JSON.stringify(out.slice(0, 200))}: ${(e as Error).message}`));
      }
    });
  });
}

interface LoadArgs {
  pods: number;
  layout: Layout;
  runs: number;
  seed: number;
  json: boolean;
}

async function runLoad(a: LoadArgs): Promise<void> {
  const progress = (s: string) => process.stderr.write(`bench load: ${s}\n`);
  progress(`writing ${a.pods} pods as ${a.layout}`);
  const w = writeCluster(a.pods, a.layout, a.seed);
  try {
    const results: Record<'lint' | 'source', LoadMeasurement[]> = { lint: [], source: [] };
    for (let i = 0; i < a.runs; i++) {
      for (const mode of ['lint', 'source'] as const) {
        progress(`run ${i + 1}/${a.runs}: ${mode}`);
        results[mode].push(await measure(mode, w.dir));
      }
    }
    const summary = Object.fromEntries(
      (['lint', 'source'] as const).map((mode) => {
        const r = results[mode];
        const phases = Object.fromEntries(Object.keys(r[0]!.phases).map((k) => [k, Math.round(median(r.map((x) => x.phases[k]!)))]));
        return [mode, { wallMs: Math.round(median(r.map((x) => x.wallMs))), cpuMs: Math.round(median(r.map((x) => x.cpuMs))), peakRssMB: Math.round(median(r.map((x) => x.peakRssMB))), phases, objects: r[0]!.objects, errors: r[0]!.errors }];
      }),
    ) as Record<'lint' | 'source', Omit<LoadMeasurement, 'mode'>>;
    const report = { pods: a.pods, layout: a.layout, objects: w.counts, megabytes: Math.round(w.bytes / 1e5) / 10, runs: a.runs, machine: 'shared 2-core VM (numbers vary run to run; compare medians)', ...summary, targets: { wallMs: 10_000, peakRssMB: 1024 } };
    if (a.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      const lines = [`podwall bench load — ${a.pods} pods (${Object.entries(w.counts).map(([k, n]) => `${n} ${k}`).join(', ')}), ${report.megabytes} MB as ${a.layout}; median of ${a.runs} run(s), each in a fresh process (${report.machine})`];
      for (const mode of ['lint', 'source'] as const) {
        const s = summary[mode];
        const name = mode === 'lint' ? 'podwall lint (load, compile, lint)' : "agent's manifests source (first load)";
        const ok = s.wallMs <= 10_000 && s.peakRssMB <= 1024;
        lines.push(`  ${name.padEnd(40)} wall ${String(s.wallMs).padStart(6)} ms · cpu ${String(s.cpuMs).padStart(6)} ms · peak RSS ${String(s.peakRssMB).padStart(5)} MB  (target ≤ 10,000 ms and ≤ 1,024 MB: ${ok ? 'met' : 'MISSED'})`);
        lines.push(`  ${''.padEnd(40)} ${Object.entries(s.phases).map(([k, v]) => `${k} ${v} ms`).join(' · ')}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    }
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
}

const positive = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what} must be a positive integer`);
  return n;
};

/** `bench load ...`: returns the exit code. */
export async function loadCommand(argv: readonly string[]): Promise<number> {
  const cmd = new Command('bench load')
    .description('time and memory of loading a large cluster from manifests (podwall lint, and the agent\'s manifests source)')
    .option('--pods <n>', 'pods in the generated cluster', positive('--pods'), 100_000)
    .option('--layout <layout>', `how the manifests are written: ${LAYOUTS.join(', ')}`, (v) => {
      if (!(LAYOUTS as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected ${LAYOUTS.join(', ')}`);
      return v as Layout;
    }, 'files' as Layout)
    .option('--runs <n>', 'runs of each measurement (the median is reported)', positive('--runs'), 1)
    .option('--seed <n>', 'generator seed', positive('--seed'), 1)
    .option('--json', 'print JSON', false)
    .exitOverride();
  try {
    cmd.parse([...argv], { from: 'user' });
  } catch (e) {
    return (e as { exitCode?: number }).exitCode ?? 2;
  }
  await runLoad(cmd.opts<LoadArgs>());
  return 0;
}
