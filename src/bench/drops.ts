// `npm run bench -- drops [--profile S|M|L|XL] [--entries N] [--probes N] [--no-kernel] [--json]`:
// what `podwall drops` costs and how fast it is.
//   join:   the whole-cluster Plan of a generated profile compiled once, then NFLOG entries of refused
//           connections to the local node's isolated pods joined with it (drops/join.ts) — the first
//           join builds the pod-chain index, later ones are what each entry costs.
//   kernel: a lab of 2 nodes and 9 pods, every pod isolated for ingress; refused connections are
//           sent one every 200 ms and `podwall drops` (drops/stream.ts, tcpdump) reads both nodes:
//           the time from the kernel's log entry to the joined record, and from the connection
//           attempt to the record. (Inside network namespaces the lab creates; root.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { stringify } from 'yaml';
import { PROFILES, generateCluster, loadIntoStore, type ProfileName } from './generator.js';
import { percentile } from './stats.js';
import { compile } from '../policy/compile.js';
import { podChainName, POD_CHAIN_PREFIX } from '../dataplane/names.js';
import { encodePrefix } from '../dataplane/nflog.js';
import { joinEntry, type DropRecord } from '../drops/join.js';
import type { NflogEntry } from '../drops/nflog-pcap.js';
import { streamDrops } from '../drops/stream.js';
import { StorePlanSource } from '../drops/plan-source.js';
import { ClusterStore } from '../cluster/store.js';
import { ManifestSource } from '../cluster/manifest-source.js';
import { labDown, labUp, waitForAgents } from '../lab/lab.js';
import { readState } from '../lab/state.js';
import { probeAllDetailed } from '../lab/probe.js';
import { probeSocketPath } from '../lab/servers.js';

interface Args {
  profile: ProfileName;
  entries: number;
  probes: number;
  kernel: boolean;
  json: boolean;
}

const whole = (flag: string, min: number) => (v: string): number => {
  if (!/^\d+$/.test(v) || Number(v) < min) throw new InvalidArgumentError(`${flag} must be a whole number ≥ ${min}`);
  return Number(v);
};

const now = () => performance.now();
const r1 = (x: number) => Math.round(x * 10) / 10;
const stats = (xs: number[]) => ({ n: xs.length, p50: r1(percentile(xs, 50)), p90: r1(percentile(xs, 90)), max: r1(Math.max(...xs)) });

function joinBench(args: Args, progress: (s: string) => void) {
  const cluster = generateCluster(args.profile, 1);
  const store = loadIntoStore(cluster);
  progress(`join: profile ${args.profile}, ${cluster.pods.length} pods, ${cluster.policies.length} policies; compiling the whole cluster`);
  let t = now();
  const plan = compile(store);
  const compileMs = now() - t;
  const targets = plan.pods.filter((p) => p.nodeName === cluster.localNode && p.ingressPolicies.length > 0 && p.ips.length > 0);
  const others = plan.pods.filter((p) => p.ips.length > 0);
  if (targets.length === 0) throw new Error(`profile ${args.profile}: no isolated pod on the local node`);
  const entries: NflogEntry[] = Array.from({ length: args.entries }, (_, i) => {
    const dst = targets[i % targets.length]!;
    const src = others[(i * 7919) % others.length]!;
    return {
      time: Date.now(),
      group: 100,
      prefix: encodePrefix({ kind: 'deny', direction: 'ingress', ref: podChainName(dst.namespace, dst.name).slice(POD_CHAIN_PREFIX.length), hint: dst.key }),
      packet: { family: 'ipv4', src: src.ips[0]!, dst: dst.ips[0]!, protocol: 'TCP', sport: 40000 + i, dport: 8080, tcpFlags: 'S' },
    };
  });
  t = now();
  const first = joinEntry(plan, entries[0]!);
  const firstMs = now() - t;
  const per: number[] = [];
  let named = 0;
  for (const e of entries.slice(1)) {
    t = now();
    const r = joinEntry(plan, e);
    per.push(now() - t);
    if (r?.pod === r?.dst.pod && r?.policies.length) named++;
  }
  return { profile: args.profile, pods: cluster.pods.length, policies: cluster.policies.length, compileMs: r1(compileMs), firstJoinMs: r1(firstMs), joinMs: stats(per), named: named + (first?.policies.length ? 1 : 0), entries: entries.length };
}

function labManifests(dir: string): void {
  const objs: Record<string, unknown>[] = [];
  [1, 2].forEach((i) => objs.push({ apiVersion: 'v1', kind: 'Node', metadata: { name: `node-${i}` }, spec: { podCIDR: `10.244.${i}.0/24`, podCIDRs: [`10.244.${i}.0/24`] }, status: { addresses: [{ type: 'InternalIP', address: `172.18.0.${i + 1}` }] } }));
  ['x', 'y', 'z'].forEach((ns, n) => {
    objs.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    objs.push({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'deny-all', namespace: ns }, spec: { podSelector: {}, policyTypes: ['Ingress'] } });
    ['a', 'b', 'c'].forEach((pod, p) => {
      const node = pod === 'c' ? 2 : 1;
      const ip = `10.244.${node}.${10 + n * 10 + p}`;
      objs.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: pod, namespace: ns, labels: { pod } }, spec: { nodeName: `node-${node}`, containers: [{ name: 'server', image: 'agnhost', ports: [{ containerPort: 80 }] }] }, status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } });
    });
  });
  writeFileSync(join(dir, 'cluster.yaml'), objs.map((o) => stringify(o)).join('---\n'));
}

async function kernelBench(args: Args, progress: (s: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'podwall-bench-drops-'));
  const name = `bd${randomBytes(2).toString('hex')}`;
  const store = new ClusterStore();
  const src = new ManifestSource(dir, store);
  try {
    labManifests(dir);
    progress(`kernel: lab ${name} (2 nodes, 9 pods, every pod isolated for ingress)`);
    await labUp({ dir, name, follow: false });
    await waitForAgents(name);
    const st = readState(name);
    if (!st.ok) throw new Error(st.error);
    await src.start();
    const sent = new Map<string, number>();
    const logToRecord: number[] = [];
    const attemptToRecord: number[] = [];
    let resolveAll: () => void = () => {};
    const all = new Promise<void>((r) => (resolveAll = r));
    const stream = await streamDrops({
      sources: st.state.nodes.map((n) => ({ node: n.name, netns: n.ns })),
      plan: new StorePlanSource(store),
      filter: { audit: false },
      counterIntervalMs: 0,
      onRecord: (r: DropRecord) => {
        const at = Date.now();
        const key = `${r.src.pod}>${r.dst.pod}`;
        const t0 = sent.get(key);
        if (t0 === undefined) return;
        sent.delete(key);
        logToRecord.push(at - r.time);
        attemptToRecord.push(at - t0);
        if (attemptToRecord.length >= args.probes) resolveAll();
      },
      onSuppressed: () => {},
      onNotice: (t) => progress(t),
    });
    // Distinct pairs (no repeats, under every pod's burst of 10), one every 200 ms.
    const pods = [...st.state.pods];
    const pairs = pods.flatMap((f) => pods.filter((t) => t.key !== f.key).map((t) => [f, t] as const)).slice(0, args.probes);
    const attempts: Promise<unknown>[] = [];
    for (const [f, t] of pairs) {
      sent.set(`${f.key}>${t.key}`, Date.now());
      attempts.push(probeAllDetailed([{ fromNs: f.ns, toIp: t.ips[0]!, port: 80, protocol: 'TCP' }], { timeoutMs: 3000, socketFor: (ns) => probeSocketPath(name, ns) }));
      await new Promise((r) => setTimeout(r, 200));
    }
    await Promise.all(attempts);
    await Promise.race([all, new Promise((r) => setTimeout(r, 5000))]);
    await stream.stop();
    return { probes: pairs.length, joined: attemptToRecord.length, logToRecordMs: stats(logToRecord), attemptToRecordMs: stats(attemptToRecord) };
  } finally {
    src.stop();
    await labDown(name).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function dropsCommand(argv: string[]): Promise<number> {
  let args: Args;
  try {
    const program = new Command('bench drops')
      .description('what podwall drops costs: the join with a large Plan, and a denial from the kernel to a joined record (root, lab)')
      .exitOverride()
      .configureOutput({ writeErr: () => undefined, writeOut: (s) => process.stdout.write(s) })
      .option('--profile <S|M|L|XL>', 'cluster size for the join', (v: string) => {
        if (!(v in PROFILES)) throw new InvalidArgumentError(`--profile must be one of ${Object.keys(PROFILES).join(', ')}`);
        return v;
      }, 'L')
      .option('--entries <n>', 'entries joined', whole('--entries', 2), 2000)
      .option('--probes <n>', 'refused connections sent in the lab', whole('--probes', 1), 40)
      .option('--no-kernel', 'only the join (no root, no lab)')
      .option('--json', 'print JSON', false);
    program.parse(argv, { from: 'user' });
    args = program.opts<Args>();
  } catch (e) {
    if (e instanceof CommanderError && (e.code === 'commander.helpDisplayed' || e.code === 'commander.version')) return 0;
    process.stderr.write(`bench drops: ${(e as Error).message.replace(/^error: /, '')}\n`);
    return 2;
  }
  const progress = (s: string) => process.stderr.write(`bench drops: ${s}\n`);
  if (args.kernel && process.getuid?.() !== 0) {
    process.stderr.write('bench drops: the kernel part needs root (it builds a lab); --no-kernel measures the join only\n');
    return 1;
  }
  const out: Record<string, unknown> = { join: joinBench(args, progress) };
  if (args.kernel) out.kernel = await kernelBench(args, progress);
  if (args.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  else {
    const j = out.join as ReturnType<typeof joinBench>;
    const lines = [
      `join (profile ${j.profile}: ${j.pods} pods, ${j.policies} policies)`,
      `  whole-cluster Plan compiled once: ${j.compileMs} ms; first join (pod-chain index): ${j.firstJoinMs} ms`,
      `  per entry: p50 ${j.joinMs.p50} ms, p90 ${j.joinMs.p90} ms, max ${j.joinMs.max} ms (${j.joinMs.n} entries; ${j.named} named their pod's policies)`,
    ];
    const k = out.kernel as Awaited<ReturnType<typeof kernelBench>> | undefined;
    if (k) {
      lines.push(`kernel (lab, 2 nodes; ${k.probes} refused connections, ${k.joined} joined records)`);
      lines.push(`  kernel log entry → joined record: p50 ${k.logToRecordMs.p50} ms, p90 ${k.logToRecordMs.p90} ms, max ${k.logToRecordMs.max} ms`);
      lines.push(`  connection attempt → joined record: p50 ${k.attemptToRecordMs.p50} ms, p90 ${k.attemptToRecordMs.p90} ms, max ${k.attemptToRecordMs.max} ms (target: within 1 s)`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return 0;
}
