// `npm run bench -- --datapath`: the per-packet cost of the filter table, measured with real packets.
//
// One node made of network namespaces (datapath-node.ts: a bridge, a client pod and a server pod;
// nothing outside the namespaces it creates). For each N in --pods, a cluster of N isolated local
// pods (the client, the server and N-2 pods that exist only as IPs in the rules) is programmed three
// ways in the node namespace, each on an emptied filter table:
//   none         no rules at all (the reference of the targets)
//   conntrack    one rule that turns connection tracking on and matches nothing here — kube-proxy's
//                `--ctstate INVALID -j DROP` — as on any node that runs kube-proxy: what part of the
//                distance to no rules is conntrack's own, which every stateful layout pays
//   podwall      podwall's render, applied by its dataplane (dispatch trees, podwall-isolated)
//   kube-router  kube-router's layout of the same cluster (kube-router-layout.ts: seven jumps per pod)
// The measured pair has the highest pod IPs and sorts last by name, so it sits where the scan is
// longest in both layouts (the last rule of each tree level; the last pod jumps of kube-router's
// list). Per layout it measures new TCP connections/s (connect + reset loops) and the datagrams/s of
// one established UDP flow, with the small load generators of datapath-load.ts, each run bounded in
// time. Every round measures every cell — no rules once, then podwall and kube-router at each N — in
// an order that rotates every round, --repeat rounds. Each figure is compared with the no-rules run
// of its own round (a paired ratio), and the median of those ratios is reported with their range:
// the rates of a shared machine drift by tens of percent between rounds, and a ratio of two runs a
// few seconds apart cancels most of that drift where a ratio of two medians does not. Flatness is
// likewise paired: podwall at the largest N ÷ podwall at the smallest N, in the same round. After
// each TCP run the packet counter of the server's pod chain shows that the connections did go
// through it.
import { execFileSync, spawn } from 'node:child_process';
import pino from 'pino';
import { ClusterStore } from '../cluster/store.js';
import type { LabelSelector, NetworkPolicy, Pod } from '../cluster/model.js';
import { compile } from '../policy/compile.js';
import { render } from '../dataplane/render.js';
import { Dataplane } from '../dataplane/apply.js';
import { podChainName } from '../dataplane/names.js';
import { formatIP } from '../net/ip.js';
import { parseIptablesSave } from '../iptables/parse.js';
import { run } from '../lab/netns.js';
import { NodeNetns, NodeNetnsError } from './datapath-node.js';
import { applyKubeRouterSync, krPodChain, kubeRouterFullSync, syncVersion } from './kube-router-layout.js';
import { median } from './stats.js';
import { loadArgv } from './datapath-load.js';


export type Layout = 'none' | 'conntrack' | 'podwall' | 'kube-router';
export const LAYOUTS: readonly Layout[] = ['none', 'conntrack', 'podwall', 'kube-router'];
/** Cells that do not depend on N: measured once per round. */
const REFERENCES: readonly Layout[] = ['none', 'conntrack'];

export interface DatapathOptions {
  /** Local pod counts to measure (each ≥ 2, ≤ 1,000). */
  pods: number[];
  /** Seconds per load run. */
  seconds: number;
  /** Rounds of all layouts per pod count. */
  repeat: number;
  progress?: (line: string) => void;
}

export interface LayoutFigures {
  layout: Layout;
  /** New TCP connections per second, one value per round. */
  tcp: number[];
  /** Established UDP datagrams received per second, one value per round. */
  udp: number[];
  tcpMedian: number;
  udpMedian: number;
  /** Median over the rounds of (this round's rate ÷ the same round's rate without rules). */
  tcpRatio: number;
  udpRatio: number;
  /** The smallest and largest of those per-round ratios. */
  tcpRatioRange: [number, number];
  udpRatioRange: [number, number];
  /** Rules in KUBE-ROUTER-FORWARD and chains in the filter table. */
  forwardRules: number;
  chains: number;
  /** Share of the TCP connections whose first packet went through the server's pod chain (counter check). */
  throughPodChain?: number;
  /** Whether the node's conntrack table held entries after the runs (connection tracking was on). */
  tracked: boolean;
}

export interface DatapathPoint {
  pods: number;
  layouts: LayoutFigures[];
}

export interface DatapathResult {
  machine: string;
  seconds: number;
  repeat: number;
  points: DatapathPoint[];
  targets: {
    atPods: number;
    tcpRatio: number | null;
    tcpRatioTarget: number;
    udpRatio: number | null;
    udpRatioTarget: number;
    /**
     * podwall's rate at the largest N ÷ its rate at the smallest N in the same round, median over the
     * rounds (1 = flat; the same as the quotient of the two ratios to no rules of that round).
     */
    tcpFlatness: number | null;
    udpFlatness: number | null;
    tcpFlatnessRange: [number, number] | null;
    udpFlatnessRange: [number, number] | null;
    flatnessTarget: number;
    /**
     * Not targets: podwall at the largest N ÷ conntrack only, same round (podwall's own rules, without
     * the cost of connection tracking), median over the rounds.
     */
    tcpOverConntrack: number | null;
    udpOverConntrack: number | null;
  };
}

const NODE = 'bench-node';
const NS = 'bench';
const POD_CIDR = '10.244.0.0/22';
const TCP_PORT = 8080;
const UDP_PORT = 9090;
/** The pair: the two highest addresses of the /22 that pods use (the gateway is 10.244.0.1). */
const CLIENT_IP = '10.244.3.250';
const SERVER_IP = '10.244.3.251';
export const MAX_PODS = 1000;

/** Children still running (killed on SIGINT by cleanupSync). */
const children = new Set<number>();
let liveNode: NodeNetns | undefined;

/** Kills the load generators and deletes the namespaces; safe to call from a signal handler. */
export function cleanupSync(): void {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (liveNode) {
    for (const ns of liveNode.namespaces()) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* gone */
      }
    }
  }
}

/** The benchmark's cluster: N isolated pods in one namespace, the pair allowed to talk on two ports. */
export function datapathCluster(n: number): ClusterStore {
  if (!Number.isInteger(n) || n < 2 || n > MAX_PODS) throw new Error(`pod count ${n}: expected 2 to ${MAX_PODS}`);
  const store = new ClusterStore();
  store.upsert({ kind: 'Node', name: NODE, labels: {}, podCIDRs: [POD_CIDR], addresses: ['172.18.0.2'] });
  store.upsert({ kind: 'Namespace', name: NS, labels: { 'kubernetes.io/metadata.name': NS } });
  const pod = (name: string, ip: string, app: string): Pod => ({ kind: 'Pod', namespace: NS, name, labels: { app }, hostNetwork: false, phase: 'Running', nodeName: NODE, ips: [ip], ports: [] });
  for (let i = 0; i < n - 2; i++) store.upsert(pod(`p${String(i).padStart(4, '0')}`, formatIP('ipv4', 0x0af40002n + BigInt(i)), `app${i % 10}`));
  // "zz-" sorts last: the pair's jumps end kube-router's list.
  store.upsert(pod('zz-client', CLIENT_IP, 'client'));
  store.upsert(pod('zz-server', SERVER_IP, 'server'));
  const sel = (app?: string): LabelSelector => ({ matchLabels: app ? { app } : {}, matchExpressions: [] });
  const ports = [
    { protocol: 'TCP' as const, port: TCP_PORT },
    { protocol: 'UDP' as const, port: UDP_PORT },
  ];
  const policy = (name: string, app: string | undefined, ingress: NetworkPolicy['ingress'] | undefined, egress: NetworkPolicy['egress'] | undefined): NetworkPolicy => ({
    kind: 'NetworkPolicy',
    namespace: NS,
    name,
    podSelector: sel(app),
    policyTypes: [...(ingress ? (['ingress'] as const) : []), ...(egress ? (['egress'] as const) : [])],
    ingress: ingress ?? [],
    egress: egress ?? [],
  });
  const policies: NetworkPolicy[] = [
    policy('deny-all', undefined, [], []),
    policy('server-from-client', 'server', [{ peers: [{ podSelector: sel('client') }], ports }], undefined),
    policy('client-to-server', 'client', undefined, [{ peers: [{ podSelector: sel('server') }], ports }]),
  ];
  for (const p of policies) store.upsert(p);
  return store;
}

async function emptyTables(ns: string): Promise<void> {
  await run('iptables-nft-restore', [], { ns, input: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n' });
  await run('ipset', ['destroy'], { ns, allowFail: true });
  await run('conntrack', ['-F'], { ns, allowFail: true });
}

/** Programs one layout on an emptied filter table; returns the server's pod chain name (none: undefined). */
async function program(node: NodeNetns, store: ClusterStore, layout: Layout): Promise<string | undefined> {
  await emptyTables(node.ns);
  if (layout === 'none') return undefined;
  if (layout === 'conntrack') {
    await run('iptables-nft-restore', [], { ns: node.ns, input: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n' });
    return undefined;
  }
  if (layout === 'podwall') {
    const dp = new Dataplane({ netns: node.ns, backend: 'nft', families: ['ipv4'], logger: pino({ level: 'silent' }) });
    await dp.init();
    const plan = compile(store, { node: NODE });
    await dp.apply([render(plan, { family: 'ipv4', node: NODE, serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] })]);
    return podChainName(NS, 'zz-server');
  }
  const version = syncVersion();
  applyKubeRouterSync(node.ns, kubeRouterFullSync(store, { node: NODE, version, families: ['ipv4'] }));
  return krPodChain(NS, 'zz-server', version);
}

function tableShape(ns: string): { forwardRules: number; chains: number; counter: (chain: string) => number } {
  const text = execFileSync('ip', ['netns', 'exec', ns, 'iptables-nft-save', '-c', '-t', 'filter'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const filter = parseIptablesSave(text).tables.find((t) => t.name === 'filter');
  const chains = filter?.chains ?? [];
  return {
    forwardRules: chains.find((c) => c.name === 'KUBE-ROUTER-FORWARD')?.rules.length ?? 0,
    chains: chains.filter((c) => c.policy === '-').length,
    // The first rule of a pod chain (the COMMON jump) sees every packet that enters it.
    counter: (chain) => Number(/^\[(\d+):/.exec(text.split('\n').find((l) => l.startsWith(`[`) && l.includes(`-A ${chain} `)) ?? '')?.[1] ?? 0),
  };
}

/** Entries in the node namespace's conntrack table (the UDP flow's stays for 30 s). */
function trackedEntries(ns: string): number {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'conntrack', '-C'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return Number(out.trim()) || 0;
}

interface Proc {
  /** Resolves once the process printed `ready` (servers). */
  ready: Promise<void>;
  /** Its stdout lines once it exited 0. */
  lines: Promise<string[]>;
  /** Closes its stdin (a server then prints its count and exits). */
  close(): void;
}

/** The Python interpreter's real path (a pyenv shim or the like would start a shell per run). */
function findPython(): string {
  try {
    return execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    throw new NodeNetnsError('python3 is needed for the load generators and was not found (Debian: apt-get install python3)');
  }
}

function startLoad(ns: string, argv: string[], what: string): Proc {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  const pid = child.pid!;
  children.add(pid);
  let out = '';
  let err = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    if (/^ready$/m.test(out)) onReady();
  });
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  child.stdin.on('error', () => undefined);
  const lines = new Promise<string[]>((resolve, reject) =>
    child.on('close', (code) => {
      children.delete(pid);
      if (code === 0) resolve(out.trim().split('\n'));
      else reject(new Error(`load generator ${what} in ${ns} exited ${code}: ${(err || out).trim().split('\n')[0] ?? ''}`));
    }),
  );
  lines.catch(() => undefined);
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} in ${ns} was not ready within 10 s`)), 10_000).unref());
  const readyOrFail = Promise.race([ready, lines.then(() => Promise.reject(new Error(`${what} in ${ns} exited before it was ready`))), timeout]);
  readyOrFail.catch(() => undefined); // clients are never waited on for `ready`
  return { ready: readyOrFail, lines, close: () => child.stdin.end() };
}

/** One bounded load run: a server in the server pod, a client in the client pod; the rate. */
async function trial(python: string, client: string, server: string, kind: 'tcp' | 'udp', o: DatapathOptions): Promise<number> {
  const port = kind === 'tcp' ? TCP_PORT : UDP_PORT;
  const srv = startLoad(server, loadArgv(python, `${kind}-server`, SERVER_IP, port, o.seconds), `${kind}-server`);
  let clientOut: Record<string, number>;
  try {
    await srv.ready;
    const cli = startLoad(client, loadArgv(python, `${kind}-client`, SERVER_IP, port, o.seconds), `${kind}-client`);
    clientOut = JSON.parse((await cli.lines).at(-1)!) as Record<string, number>;
  } finally {
    srv.close();
  }
  const serverOut = JSON.parse((await srv.lines).at(-1)!) as Record<string, number>;
  if (kind === 'tcp') return clientOut.connections! / clientOut.seconds!;
  return serverOut.received! / clientOut.seconds!;
}

/** One measured cell of a round: no rules (once per round), or a layout at N pods. */
interface Cell {
  layout: Layout;
  pods: number;
}

interface Samples {
  tcp: number[];
  udp: number[];
  through: number[];
  forwardRules: number;
  chains: number;
  tracked: boolean;
}

export async function runDatapath(o: DatapathOptions): Promise<DatapathResult> {
  const progress = o.progress ?? (() => {});
  for (const n of o.pods) if (!Number.isInteger(n) || n < 2 || n > MAX_PODS) throw new Error(`--pods ${n}: expected whole numbers from 2 to ${MAX_PODS}`);
  const pods = [...new Set(o.pods)];
  const python = findPython();
  let node: NodeNetns;
  try {
    node = await NodeNetns.create(POD_CIDR);
  } catch (e) {
    throw new NodeNetnsError(`cannot build the benchmark's namespaces: ${(e as Error).message}`);
  }
  liveNode = node;
  try {
    const client = (await node.addPod(CLIENT_IP)).ns;
    const server = (await node.addPod(SERVER_IP)).ns;
    const stores = new Map(pods.map((n) => [n, datapathCluster(n)]));
    // The references do not depend on N: measured once per round; no rules is the reference of every ratio.
    const cells: Cell[] = [...REFERENCES.map((layout) => ({ layout, pods: 0 })), ...pods.flatMap((n) => LAYOUTS.filter((l) => !REFERENCES.includes(l)).map((layout) => ({ layout, pods: n })))];
    const key = (c: Cell) => `${c.layout}@${c.pods}`;
    const acc = new Map<string, Samples>(cells.map((c) => [key(c), { tcp: [], udp: [], through: [], forwardRules: 0, chains: 0, tracked: false }]));
    for (let r = 0; r < o.repeat; r++) {
      // The order rotates every round, so a trend in the machine's load does not favour one cell.
      for (const cell of cells.map((_, i) => cells[(i + r) % cells.length]!)) {
        progress(`round ${r + 1}/${o.repeat}: ${cell.layout === 'none' ? 'no rules' : REFERENCES.includes(cell.layout) ? cell.layout : `${cell.layout}, ${cell.pods} pods`}`);
        const podChain = await program(node, stores.get(cell.pods) ?? stores.get(pods[0]!)!, cell.layout);
        const a = acc.get(key(cell))!;
        const tcp = await trial(python, client, server, 'tcp', o);
        const shape = tableShape(node.ns);
        a.forwardRules = shape.forwardRules;
        a.chains = shape.chains;
        if (podChain) a.through.push(shape.counter(podChain) / (tcp * o.seconds));
        a.tcp.push(tcp);
        a.udp.push(await trial(python, client, server, 'udp', o));
        a.tracked = trackedEntries(node.ns) > 0;
      }
    }
    await emptyTables(node.ns);
    const none = acc.get(key({ layout: 'none', pods: 0 }))!;
    const paired = (xs: number[], ys: number[]): number[] => xs.map((x, i) => x / ys[i]!);
    const points: DatapathPoint[] = pods.map((n) => ({
      pods: n,
      layouts: LAYOUTS.map((layout) => {
        const a = acc.get(key({ layout, pods: REFERENCES.includes(layout) ? 0 : n }))!;
        const tcpRatios = paired(a.tcp, none.tcp);
        const udpRatios = paired(a.udp, none.udp);
        return {
          layout,
          tcp: a.tcp.map(Math.round),
          udp: a.udp.map(Math.round),
          tcpMedian: Math.round(median(a.tcp)),
          udpMedian: Math.round(median(a.udp)),
          tcpRatio: round3(median(tcpRatios)),
          udpRatio: round3(median(udpRatios)),
          tcpRatioRange: range(tcpRatios),
          udpRatioRange: range(udpRatios),
          forwardRules: a.forwardRules,
          chains: a.chains,
          ...(a.through.length ? { throughPodChain: round3(Math.min(...a.through)) } : {}),
          tracked: a.tracked,
        };
      }),
    }));
    const largest = Math.max(...pods);
    const smallest = Math.min(...pods);
    const pw = points.find((p) => p.pods === largest)?.layouts.find((l) => l.layout === 'podwall');
    const hi = acc.get(key({ layout: 'podwall', pods: largest }))!;
    const lo = acc.get(key({ layout: 'podwall', pods: smallest }))!;
    const flat = largest !== smallest ? { tcp: paired(hi.tcp, lo.tcp), udp: paired(hi.udp, lo.udp) } : undefined;
    const ct = acc.get(key({ layout: 'conntrack', pods: 0 }))!;
    return {
      machine: 'shared 2-core VM (packet rates vary run to run; compare the ratios of one run)',
      seconds: o.seconds,
      repeat: o.repeat,
      points,
      targets: {
        atPods: largest,
        tcpRatio: pw ? pw.tcpRatio : null,
        tcpRatioTarget: 0.8,
        udpRatio: pw ? pw.udpRatio : null,
        udpRatioTarget: 0.9,
        tcpFlatness: flat ? round3(median(flat.tcp)) : null,
        udpFlatness: flat ? round3(median(flat.udp)) : null,
        tcpFlatnessRange: flat ? range(flat.tcp) : null,
        udpFlatnessRange: flat ? range(flat.udp) : null,
        flatnessTarget: 0.9,
        tcpOverConntrack: round3(median(paired(hi.tcp, ct.tcp))),
        udpOverConntrack: round3(median(paired(hi.udp, ct.udp))),
      },
    };
  } finally {
    liveNode = undefined;
    await node.destroy();
  }
}

const range = (xs: number[]): [number, number] => [round3(Math.min(...xs)), round3(Math.max(...xs))];
const round3 = (x: number) => Math.round(x * 1000) / 1000;

export function datapathTable(r: DatapathResult): string {
  const lines: string[] = [];
  const span = (x: [number, number]) => `${x[0].toFixed(2)}–${x[1].toFixed(2)}`;
  lines.push(`podwall bench --datapath — ${r.machine}`);
  lines.push(`one node namespace, a bridge, a client and a server pod; ${r.seconds} s per run, ${r.repeat} rounds, each measuring every cell once (order rotating), Python load generators (one blocking loop each)`);
  lines.push(`÷ none: the median over the rounds of (the cell's rate ÷ the no-rules rate of the same round), with the range of those ratios`);
  lines.push('');
  lines.push(`  ${'pods'.padStart(5)} ${'layout'.padEnd(12)} ${'FORWARD rules'.padStart(13)} ${'chains'.padStart(7)} ${'TCP conn/s'.padStart(11)} ${'÷ none'.padStart(7)} ${'(range)'.padEnd(10)} ${'UDP dgram/s'.padStart(12)} ${'÷ none'.padStart(7)} ${'(range)'.padEnd(10)}   runs (conn/s | dgram/s)`);
  for (const p of r.points) {
    for (const l of p.layouts) {
      lines.push(
        `  ${String(p.pods).padStart(5)} ${l.layout.padEnd(12)} ${String(l.forwardRules).padStart(13)} ${String(l.chains).padStart(7)} ${String(l.tcpMedian).padStart(11)} ${l.tcpRatio.toFixed(2).padStart(7)} ${span(l.tcpRatioRange).padEnd(10)} ${String(l.udpMedian).padStart(12)} ${l.udpRatio.toFixed(2).padStart(7)} ${span(l.udpRatioRange).padEnd(10)}   ${l.tcp.join(' ')} | ${l.udp.join(' ')}${l.throughPodChain !== undefined && l.throughPodChain < 0.9 ? `  (only ${Math.round(l.throughPodChain * 100)} % of connections counted in the server's pod chain!)` : ''}`,
      );
    }
  }
  const t = r.targets;
  const mark = (x: number | null, target: number) => (x === null ? 'not measured' : x >= target ? 'met' : 'MISSED');
  const pw = r.points.find((p) => p.pods === t.atPods)?.layouts.find((l) => l.layout === 'podwall');
  lines.push('');
  lines.push('targets (reported, never asserted)');
  lines.push(`  new TCP connections at ${t.atPods} pods, podwall ÷ no rules: ${t.tcpRatio ?? '-'}${pw ? ` (rounds ${span(pw.tcpRatioRange)})` : ''} (target ≥ ${t.tcpRatioTarget}): ${mark(t.tcpRatio, t.tcpRatioTarget)}`);
  lines.push(`  established UDP datagrams at ${t.atPods} pods, podwall ÷ no rules: ${t.udpRatio ?? '-'}${pw ? ` (rounds ${span(pw.udpRatioRange)})` : ''} (target ≥ ${t.udpRatioTarget}): ${mark(t.udpRatio, t.udpRatioTarget)}`);
  lines.push(
    `  flat in pods, podwall at ${t.atPods} ÷ podwall at the fewest, same round: TCP ${t.tcpFlatness ?? '-'}${t.tcpFlatnessRange ? ` (rounds ${span(t.tcpFlatnessRange)})` : ''}, UDP ${t.udpFlatness ?? '-'}${t.udpFlatnessRange ? ` (rounds ${span(t.udpFlatnessRange)})` : ''} (target ≥ ${t.flatnessTarget}): ${t.tcpFlatness === null || t.udpFlatness === null ? 'not measured' : Math.min(t.tcpFlatness, t.udpFlatness) >= t.flatnessTarget ? 'met' : 'MISSED'}`,
  );
  const ct = r.points[0]?.layouts.find((l) => l.layout === 'conntrack');
  if (ct) {
    lines.push(
      `  (not targets) conntrack only ÷ no rules: TCP ${ct.tcpRatio}, UDP ${ct.udpRatio}; podwall at ${t.atPods} pods ÷ conntrack only, same round: TCP ${t.tcpOverConntrack ?? '-'}, UDP ${t.udpOverConntrack ?? '-'}`,
    );
  }
  return lines.join('\n');
}
