// `npm run bench -- [--profile S|M|L|XL] [--json] [--events N] [--seed N] [--kube-router-events N]`
// (`npm run bench -- load --help`: loading large manifests, see load.ts; `npm run bench -- drops`:
// podwall drops, see drops.ts)
// Inside network namespaces it creates (never the host's tables): podwall's cold start (compile,
// render, diff, kernel apply), its per-event convergence for every event kind, the kernel floor of
// its own payloads, and the same cluster in kube-router's full-sync layout, side by side.
// `npm run bench -- --datapath [--pods 10,250,1000] [--seconds N] [--repeat N]`:
// the per-packet cost instead, with real packets (datapath.ts).
// `npm run bench -- --drift [--profile S|M|L]`: the drift watcher's check cost and repair time (drift.ts).
// `npm run bench -- analysis` (or `--analysis`): podwall matrix and diff at 1,000 endpoints and 500
// policies on 3 ports, as the CLI in fresh processes (analysis.ts).
import { execFileSync } from 'node:child_process';
import { PerformanceObserver } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { cleanupSync as cleanupDatapath, datapathTable, runDatapath } from './datapath.js';
import { driftTable, runDrift } from './drift.js';
import { EVENT_KINDS, PROFILES, applyChanges, generateCluster, loadIntoStore, makeEvents, type EventKind, type ProfileName } from './generator.js';
import { IncrementalCompiler } from '../policy/incremental.js';
import { render, type Desired, type RenderOptions } from '../dataplane/render.js';
import { emptyFamilyState, planIptables, planIpset } from '../dataplane/diff.js';
import { Dataplane, type ApplyReport } from '../dataplane/apply.js';
import { makeRunner } from '../dataplane/exec.js';
import { floorPayloads, runFloor, snapshotOf } from './floor.js';
import type { Family } from '../cluster/model.js';
import { percentile } from './stats.js';
import { measure as measureKubeRouter } from './kube-router-layout.js';
import { HEAP_GROWING_PERCENT, tuneHeapForAgent } from '../controller/heap.js';

interface Args {
  profile: ProfileName;
  json: boolean;
  events: number;
  seed: number;
  kubeRouterEvents: number;
  dualStack: boolean;
  kubeRouter: boolean;
  datapath: boolean;
  drift: boolean;
  pods: number[];
  seconds: number;
  repeat: number;
}

const wholeNumber = (flag: string, min = 0) => (v: string): number => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min) throw new InvalidArgumentError(`${flag} must be a whole number${min > 0 ? ` ≥ ${min}` : ''}`);
  return n;
};

function parseArgs(argv: string[]): Args {
  const program = new Command('bench')
    .description('podwall benchmark, inside network namespaces it creates (root)')
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: (s) => process.stdout.write(s) })
    .option('--profile <S|M|L|XL>', 'cluster size', (v: string) => {
      const p = v.toUpperCase();
      if (!(p in PROFILES)) throw new InvalidArgumentError('expected S, M, L or XL');
      return p;
    }, 'S')
    .option('--json', 'print JSON', false)
    .option('--events <n>', 'events per kind', wholeNumber('--events'), 200)
    .option('--seed <n>', 'generator seed', wholeNumber('--seed'), 1)
    .option('--kube-router-events <n>', "events run in kube-router's layout", wholeNumber('--kube-router-events'), 5)
    .option('--dual-stack', 'IPv4 and IPv6', false)
    .option('--no-kube-router', "skip kube-router's layout")
    .option('--datapath', 'measure per-packet cost with real packets instead (new TCP connections/s, established UDP datagrams/s)', false)
    .option('--drift', "measure the drift watcher instead: one check's cost per backend, and repair times after tampering", false)
    .option('--pods <list>', 'with --datapath: local pod counts, comma separated', (v: string) => v.split(',').map((x) => wholeNumber('--pods', 2)(x.trim())), [10, 250, 1000])
    .option('--seconds <n>', 'with --datapath: seconds per load run', wholeNumber('--seconds', 1), 2)
    .option('--repeat <n>', 'with --datapath: rounds of every layout', wholeNumber('--repeat', 1), 3);
  program.parse(argv, { from: 'user' });
  const o = program.opts<Omit<Args, 'profile'> & { profile: string }>();
  return { ...o, profile: o.profile as ProfileName };
}

const created: string[] = [];
function newNamespace(tag: string): string {
  const ns = `podwall-bench-${tag}-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  created.push(ns);
  return ns;
}
function cleanup(): void {
  for (const ns of created.splice(0)) {
    try {
      execFileSync('ip', ['netns', 'del', ns]);
    } catch {
      /* gone */
    }
  }
}

const now = () => performance.now();

const ms = (x: number) => Math.round(x * 10) / 10;
const kernelMs = (r: ApplyReport) => (r.timings.ipset ?? 0) + (r.timings.iptablesV4 ?? 0) + (r.timings.iptablesV6 ?? 0);

export interface EventStats {
  kind: EventKind;
  n: number;
  p50: number;
  p90: number;
  p99: number;
  kernelP50: number;
  /** The same change as the smallest transaction the tools allow, on the same table (floor.ts). */
  floorP50: number;
  /** kernelP50 ÷ floorP50. */
  kernelToFloor: number | null;
  /** Processes podwall spawned for the change (p50). */
  processesP50: number;
  linesP50: number;
  linesMax: number;
  /** Latency minus kernel time (compile, render, diff, payloads, spawning), p50 and p99. */
  ownP50: number;
  ownP99: number;
  /** Garbage-collection pauses inside the event's window, p99 and max (ms). */
  gcP99: number;
  gcMax: number;
}

async function run(args: Args): Promise<Record<string, unknown>> {
  const progress = (s: string) => process.stderr.write(`bench: ${s}\n`);
  const families: Family[] = args.dualStack ? ['ipv4', 'ipv6'] : ['ipv4'];
  progress(`generating profile ${args.profile} (seed ${args.seed})`);
  let t = now();
  const cluster = generateCluster(args.profile, args.seed, { dualStack: args.dualStack });
  const genMs = now() - t;
  const store = loadIntoStore(cluster);
  const node = cluster.localNode;
  const ropts: Omit<RenderOptions, 'family'> = { node, serviceClusterIPRanges: args.dualStack ? ['10.96.0.0/12', 'fd00:96::/108'] : ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] };
  const renderAll = (plan: ReturnType<IncrementalCompiler['build']>): Desired[] => families.map((family) => render(plan, { ...ropts, family }));

  // ---- cold start
  progress(`cold start: ${cluster.pods.length} pods, ${cluster.policies.length} policies, ${cluster.namespaces.length} namespaces, ${cluster.nodes.length} nodes; local node ${node}`);
  // GC pauses, attributed to events afterwards by their start time (entries arrive asynchronously).
  const gcPauses: { start: number; ms: number }[] = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcPauses.push({ start: e.startTime, ms: e.duration });
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const gcIn = (from: number, to: number) => gcPauses.reduce((n, g) => (g.start >= from && g.start < to ? n + g.ms : n), 0);
  const cpu0 = process.cpuUsage();
  const inc = new IncrementalCompiler(store, node);
  t = now();
  const plan = inc.build();
  const compileMs = now() - t;
  t = now();
  const desired = renderAll(plan);
  const renderMs = now() - t;
  t = now();
  planIpset(desired.flatMap((d) => d.sets), new Map());
  for (const d of desired) planIptables(d, emptyFamilyState());
  const diffMs = now() - t;
  const cpu = process.cpuUsage(cpu0);
  const ns = newNamespace('pw');
  // Counts the processes the dataplane spawns (per event: ipset restore, iptables-restore, ...).
  let spawned = 0;
  const baseRunner = makeRunner(ns);
  const dp = new Dataplane({ netns: ns, families, backend: 'nft', logger: pino({ level: 'silent' }), runner: (cmd, a, input) => (spawned++, baseRunner(cmd, a, input)) });
  const floorRunner = makeRunner(ns);
  const floorTools = { restore: { ipv4: 'iptables-nft-restore', ipv6: 'ip6tables-nft-restore' } as Record<Family, string>, ipset: 'ipset' };
  await dp.init();
  progress('cold start: applying to the kernel');
  t = now();
  const cold = await dp.apply(desired);
  const applyMs = now() - t;
  const counts = {
    chains: desired.reduce((n, d) => n + d.chains.length, 0),
    rules: desired.reduce((n, d) => n + d.chains.reduce((m, c) => m + c.rules.length, 0) + d.jumps.length, 0),
    sets: desired.reduce((n, d) => n + d.sets.length, 0),
    members: desired.reduce((n, d) => n + d.sets.reduce((m, s) => m + s.members.length, 0), 0),
    ipsetLines: cold.ipsetLines,
    iptablesLines: cold.iptablesLines,
    localPods: plan.pods.length,
    policiesWithChains: plan.policies.length,
  };
  const coldKernel = kernelMs(cold);
  // Own wall time (compile + render + diff) and own CPU time (the process's, over the same span): on a
  // busy machine the wall time waits for the CPU, so the target is judged on CPU time.
  const ownWall = compileMs + renderMs + diffMs;
  const ownCpu = (cpu.user + cpu.system) / 1000;

  // ---- events
  const events: EventStats[] = [];
  for (const [i, kind] of EVENT_KINDS.entries()) {
    const evs = makeEvents(cluster, kind, args.events, args.seed * 1000 + i);
    progress(`events: ${kind} ×${evs.length}`);
    const lat: number[] = [];
    const kern: number[] = [];
    const lines: number[] = [];
    const floor: number[] = [];
    const procs: number[] = [];
    const windows: [number, number][] = [];
    for (const ev of evs) {
      const before = snapshotOf(dp.snapshot());
      const spawned0 = spawned;
      const t0 = now();
      applyChanges(store, ev);
      const r = await dp.apply(renderAll(inc.build()));
      lat.push(now() - t0);
      windows.push([t0, now()]);
      kern.push(kernelMs(r));
      procs.push(spawned - spawned0);
      lines.push(r.ipsetLines + r.iptablesLines);
      const after = snapshotOf(dp.snapshot());
      applyChanges(store, ev.undo);
      await dp.apply(renderAll(inc.build()));
      // The floor: the same change S0 → S1 as one minimal transaction, then back (unmeasured).
      floor.push(await runFloor(floorRunner, floorPayloads(before, after), floorTools));
      await runFloor(floorRunner, floorPayloads(after, before), floorTools);
    }
    const kernelP50 = percentile(kern, 50);
    const floorP50 = percentile(floor, 50);
    await new Promise((r) => setImmediate(r)); // let the last GC entries arrive
    const own = lat.map((l, j) => l - kern[j]!);
    const gc = windows.map(([a, b]) => gcIn(a, b));
    events.push({
      kind,
      n: lat.length,
      p50: ms(percentile(lat, 50)),
      p90: ms(percentile(lat, 90)),
      p99: ms(percentile(lat, 99)),
      kernelP50: ms(kernelP50),
      floorP50: ms(floorP50),
      kernelToFloor: floorP50 > 0 ? Math.round((kernelP50 / floorP50) * 100) / 100 : null,
      processesP50: percentile(procs, 50),
      linesP50: percentile(lines, 50),
      linesMax: Math.max(0, ...lines),
      ownP50: ms(percentile(own, 50)),
      ownP99: ms(percentile(own, 99)),
      gcP99: ms(percentile(gc, 99)),
      gcMax: ms(Math.max(0, ...gc)),
    });
  }
  // The floor transactions must have left exactly what podwall believes is in the kernel.
  const floorDrift = (await dp.resync()).drift;
  gcObserver.disconnect();
  const peakRssMB = Math.round(process.resourceUsage().maxRSS / 1024);

  // ---- kube-router's layout, same cluster, same kernel
  let kubeRouter: Record<string, unknown> | undefined = { error: 'skipped (--no-kube-router)' };
  if (args.kubeRouter) try {
    kubeRouter = (await measureKubeRouter({ cluster, store, node, newNamespace, events: args.kubeRouterEvents, seed: args.seed, progress })) as unknown as Record<string, unknown>;
  } catch (e) {
    kubeRouter = { error: (e as Error).message };
  }

  const kr = kubeRouter as Partial<import('./kube-router-layout.js').KubeRouterMeasurement> & { error?: string };
  const measured = events.filter((e) => e.n > 0);
  const podwallEventKernelP50 = measured.length ? percentile(measured.map((e) => e.kernelP50), 50) : Number.NaN;
  const finite = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x : null);
  const krMeasured = kr && !kr.error && kr.cold && kr.events;
  const targets = {
    eventP99WorstMs: measured.length ? Math.max(...measured.map((e) => e.p99)) : null,
    eventP99TargetMs: 50,
    kernelToFloorWorst: measured.some((e) => e.kernelToFloor !== null) ? Math.max(...measured.map((e) => e.kernelToFloor ?? 0)) : null,
    kernelToFloorTarget: 2,
    floorDrift,
    ownCpuToKernel: coldKernel > 0 ? Math.round((ownCpu / coldKernel) * 1000) / 1000 : null,
    ownWallToKernel: coldKernel > 0 ? Math.round((ownWall / coldKernel) * 1000) / 1000 : null,
    ownCpuToKernelTarget: 0.2,
    coldKernelRatioVsKubeRouter: krMeasured && coldKernel > 0 ? Math.round((kr.cold!.kernelMs / coldKernel) * 10) / 10 : null,
    coldKernelRatioTarget: 5,
    eventKernelRatioVsKubeRouter: krMeasured ? finite(Math.round((kr.events!.kernelP50 / podwallEventKernelP50) * 10) / 10) : null,
    eventKernelRatioTarget: 50,
    peakRssMB,
    peakRssTargetMB: 250,
  };
  return {
    profile: cluster.profile,
    seed: args.seed,
    machine: 'shared 2-core VM (numbers vary run to run; compare medians and ratios)',
    heapGrowingPercent: HEAP_GROWING_PERCENT,
    cluster: { pods: cluster.pods.length, policies: cluster.policies.length, namespaces: cluster.namespaces.length, nodes: cluster.nodes.length, localPods: counts.localPods },
    coldStart: {
      generateMs: ms(genMs),
      compileMs: ms(compileMs),
      renderMs: ms(renderMs),
      diffMs: ms(diffMs),
      podwallCpuMs: ms((cpu.user + cpu.system) / 1000),
      applyMs: ms(applyMs),
      kernelMs: ms(coldKernel),
      kernelIpsetMs: ms(cold.timings.ipset ?? 0),
      kernelIptablesMs: ms((cold.timings.iptablesV4 ?? 0) + (cold.timings.iptablesV6 ?? 0)),
      ownToKernelRatio: coldKernel > 0 ? Math.round((ownWall / coldKernel) * 1000) / 1000 : null,
      ownCpuToKernelRatio: coldKernel > 0 ? Math.round((ownCpu / coldKernel) * 1000) / 1000 : null,
      ...counts,
    },
    events,
    peakRssMB,
    kubeRouter,
    targets,
  };
}

function table(r: Record<string, unknown>): string {
  const c = r.coldStart as Record<string, number>;
  const cl = r.cluster as Record<string, number>;
  const ev = r.events as EventStats[];
  const kr = r.kubeRouter as Record<string, unknown> | undefined;
  const lines: string[] = [];
  lines.push(`podwall bench — profile ${(r.profile as { name: string }).name}: ${cl.pods} pods, ${cl.policies} policies, ${cl.namespaces} namespaces, ${cl.nodes} nodes, ${cl.localPods} local pods (${r.machine})`);
  lines.push('');
  lines.push('cold start');
  lines.push(`  compile ${c.compileMs} ms · render ${c.renderMs} ms · diff ${c.diffMs} ms  →  podwall CPU ${ms(c.compileMs! + c.renderMs! + c.diffMs!)} ms`);
  lines.push(`  kernel apply ${c.applyMs} ms (kernel: restore calls ${c.kernelMs} ms = ipset ${c.kernelIpsetMs} + iptables ${c.kernelIptablesMs})  ·  own wall/kernel = ${c.ownToKernelRatio}, own CPU ${c.podwallCpuMs} ms/kernel = ${c.ownCpuToKernelRatio}`);
  lines.push(`  wrote ${c.chains} chains, ${c.rules} rules, ${c.sets} sets, ${c.members} members (${c.ipsetLines} ipset + ${c.iptablesLines} iptables lines)`);
  lines.push(`  peak RSS ${r.peakRssMB} MB`);
  lines.push('');
  lines.push('events: store update → kernel accepted (ms)');
  lines.push(`  ${'kind'.padEnd(20)} ${'n'.padStart(5)} ${'p50'.padStart(8)} ${'p90'.padStart(8)} ${'p99'.padStart(8)} ${'kernel p50'.padStart(11)} ${'floor p50'.padStart(10)} ${'÷ floor'.padStart(8)} ${'procs'.padStart(6)} ${'lines p50'.padStart(10)} ${'max'.padStart(6)} ${'own p50/p99'.padStart(12)} ${'gc p99/max'.padStart(11)}`);
  for (const e of ev) lines.push(`  ${e.kind.padEnd(20)} ${String(e.n).padStart(5)} ${String(e.p50).padStart(8)} ${String(e.p90).padStart(8)} ${String(e.p99).padStart(8)} ${String(e.kernelP50).padStart(11)} ${String(e.floorP50).padStart(10)} ${String(e.kernelToFloor ?? '-').padStart(8)} ${String(e.processesP50).padStart(6)} ${String(e.linesP50).padStart(10)} ${String(e.linesMax).padStart(6)} ${`${e.ownP50}/${e.ownP99}`.padStart(12)} ${`${e.gcP99}/${e.gcMax}`.padStart(11)}`);
  lines.push('  (own: latency minus kernel time — compile, render, diff, payloads, spawning; gc: garbage-collection pauses inside the event)');
  lines.push('  (floor: the same change as the smallest transaction the tools allow — one ipset restore, one iptables-restore --noflush with rule-level edits — on the same table, in the same run)');
  lines.push('');
  const k = kr as Partial<import('./kube-router-layout.js').KubeRouterMeasurement> & { error?: string };
  if (k && !k.error && k.cold && k.events && k.counts) {
    lines.push("kube-router's layout (every policy on every node, full restore per event), same cluster and kernel");
    lines.push(`  cold sync: kernel ${ms(k.cold.kernelMs)} ms (ipset restore ${ms(k.cold.ipsetRestoreMs)} ms, iptables-restore ${ms(k.cold.iptablesRestoreMs)} ms); ${JSON.stringify(k.counts)}`);
    lines.push(`  per event (full sync, n=${k.events.n}): kernel p50 ${ms(k.events.kernelP50)} ms, p90 ${ms(k.events.kernelP90)} ms, max ${ms(k.events.kernelMax)} ms`);
  } else lines.push(`kube-router's layout: not measured (${String(k?.error)})`);
  const tg = r.targets as Record<string, number | null> | undefined;
  if (tg) {
    const notNull = (x: number | null | undefined) => x !== null && x !== undefined;
    const mark = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? 'met' : 'MISSED');
    const num = (x: number | null | undefined) => (x === null || x === undefined ? undefined : x);
    lines.push('');
    lines.push('targets (reported, never asserted)');
    lines.push(`  event → enforced p99, worst kind: ${tg.eventP99WorstMs} ms (target ≤ ${tg.eventP99TargetMs} ms at L): ${mark(num(tg.eventP99WorstMs) === undefined ? undefined : tg.eventP99WorstMs! <= tg.eventP99TargetMs!)}`);
    lines.push(`  kernel p50 ÷ floor, worst kind: ${tg.kernelToFloorWorst} (target ≤ ${tg.kernelToFloorTarget} for every kind): ${mark(notNull(tg.kernelToFloorWorst) ? tg.kernelToFloorWorst! <= tg.kernelToFloorTarget! : undefined)}${tg.floorDrift ? ` — the floor transactions left ${tg.floorDrift} objects different!` : ''}`);
    lines.push(`  cold start own CPU / kernel: ${tg.ownCpuToKernel} (own wall time / kernel: ${tg.ownWallToKernel}) (target ≤ 0.2): ${mark((tg.ownCpuToKernel ?? 9) <= 0.2)}`);
    lines.push(`  kernel work vs kube-router, cold: ${tg.coldKernelRatioVsKubeRouter ?? '-'}× smaller (target ≥ 5×): ${mark(notNull(tg.coldKernelRatioVsKubeRouter) ? tg.coldKernelRatioVsKubeRouter! >= 5 : undefined)}`);
    lines.push(`  kernel work vs kube-router, per event (p50): ${tg.eventKernelRatioVsKubeRouter ?? '-'}× smaller (target ≥ 50×): ${mark(num(tg.eventKernelRatioVsKubeRouter) === undefined ? undefined : tg.eventKernelRatioVsKubeRouter! >= 50)}`);
    lines.push(`  peak RSS: ${tg.peakRssMB} MB (target ≤ 250 MB): ${mark(tg.peakRssMB! <= 250)}`);
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  // `bench load ...`: loading large manifests (lint, the agent's manifests source); no kernel, no root.
  if (process.argv[2] === 'load') {
    const { loadCommand } = await import('./load.js');
    return loadCommand(process.argv.slice(3));
  }
  // `bench analysis ...` (or `bench --analysis ...`): matrix and diff at 1,000 endpoints; no root.
  if (process.argv[2] === 'analysis' || process.argv.slice(2).includes('--analysis')) {
    const { analysisCommand } = await import('./analysis.js');
    return analysisCommand(process.argv.slice(2).filter((a, i) => !(i === 0 && a === 'analysis') && a !== '--analysis'));
  }
  // `bench drops ...`: podwall drops — the join with a large Plan, and kernel-to-record latency in a lab.
  if (process.argv[2] === 'drops') {
    const { dropsCommand } = await import('./drops.js');
    return dropsCommand(process.argv.slice(3));
  }
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof CommanderError && (e.code === 'commander.helpDisplayed' || e.code === 'commander.version')) return 0;
    process.stderr.write(`bench: ${(e as Error).message.replace(/^error: /, '')}\n`);
    return 2;
  }
  // The benchmark stands in for the agent: the same heap setting as `podwall run`.
  tuneHeapForAgent();
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: needs root: it measures the kernel inside network namespaces it creates (never the host\'s tables)\n');
    return 1;
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.on(sig, () => {
      cleanup();
      cleanupDatapath();
      process.exit(130);
    });
  if (args.datapath) {
    const r = await runDatapath({ pods: args.pods, seconds: args.seconds, repeat: args.repeat, progress: (s) => process.stderr.write(`bench: ${s}\n`) });
    process.stdout.write(args.json ? `${JSON.stringify(r, null, 2)}\n` : `${datapathTable(r)}\n`);
    return 0;
  }
  if (args.drift) {
    try {
      const r = await runDrift({ profile: args.profile, seed: args.seed, newNamespace, progress: (s) => process.stderr.write(`bench: ${s}\n`) });
      process.stdout.write(args.json ? `${JSON.stringify(r, null, 2)}\n` : `${driftTable(r)}\n`);
      return 0;
    } finally {
      cleanup();
    }
  }
  try {
    const r = await run(args);
    process.stdout.write(args.json ? `${JSON.stringify(r, null, 2)}\n` : `${table(r)}\n`);
    return 0;
  } finally {
    cleanup();
  }
}

main().then(
  (code) => (process.exitCode = code),
  (e) => {
    cleanup();
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
