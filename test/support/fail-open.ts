// The fail-open harness: a small cluster of network namespaces (the lab's topology and servers, two
// nodes) enforced by podwall's real agent processes (`podwall run --manifests DIR`, one per node),
// while a prober opens a connection that the policies deny and one they allow every 20 ms. Every
// fault is run inside a named window; each probe is counted in the window it started in. The
// promise checked at the end: no denied connection ever got through, and the allowed ones kept
// working except in windows that say the policies themselves deny them then.
//
// The cluster (upstream conformance model, see conformance.ts): namespaces x, y, z; pods a and b on
// node-1, c on node-2. Policies (file `policies.yaml` in DIR):
//   x/deny-ingress   every pod of x isolated for ingress
//   x/allow-from-z   ingress to x from namespaces labelled ns=z
//   y/egress-c       y/c isolated for egress, allowed to namespaces labelled ns=z
// Probed every 20 ms on 80/TCP (the pairs are in DENIED and ALLOWED):
//   denied:  y/a → x/a (ingress, node-1)   y/c → x/b (ingress, crosses nodes)   y/c → y/a (egress, node-2)
//   allowed: z/a → x/a (ingress rule)      y/c → z/a (egress rule, crosses nodes)
//
// Adding a fault (other test files use the same harness):
//   const h = await FailOpenHarness.start(t, { name: 'fo' });        // builds it all; `h.close()` in after.always
//   await h.fault('policy chain flushed', async () => {
//     h.sh('node-1', ['iptables-nft', '-F', someChain]);              // do the damage...
//     await h.applied();                                                // ...and wait for what repairs it
//   });
//   h.assertNoneOpen(t);                                                // zero denied probes got through, per window
// `fault(name, fn, { allowedDenied: true })` marks a window in which the manifests themselves deny the
// allowed pairs for a while (their allowed probes are then not judged). `{ exposure: true }` marks
// tampering with the kernel's rules, which opens what it damages until podwall repairs it: the fault
// calls `h.markTampered()` right before the damage and `h.markRepaired()` once the repair is seen;
// denied probes in flight in between may get through (reported as exposure), none other.
// `{ probes: { denied, allowed } }` adds probes to any address (a node's, say) for that window only.
// Inside a fault, use
// `h.write(file, objects | text)` / `h.writeSlowly` / `h.remove(file)` on the manifests directory,
// `h.sh(node, cmd)` in a node's namespace, `h.restartAgent(node, wrap?)`, `h.applied()` (every
// agent applied the directory's current contents), `h.waitStatus(what, pred)`, `h.status(node)` (its
// /status JSON, via the status file), `h.log(node)` (its log). Waits are on conditions, never on
// sleeps, except where a fault is about time itself (a writer pausing mid-file). A fault that throws
// names itself and prints each agent's status and last log lines. Negative control:
// PODWALL_FAILOPEN_AGENT_FLAGS adds flags to every agent (`--manifests-settle 0` lets the half-written
// file through).
import type { ExecutionContext } from 'ava';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { conformanceObjects, podIP, policy, writeManifests, type Raw } from './conformance.js';
import { until } from './kernel.js';
import { labDown, labUp } from '../../src/lab/lab.js';
import { readState, type LabState } from '../../src/lab/state.js';
import { ProberPool } from '../../src/lab/probe.js';
import { probeSocketPath } from '../../src/lab/servers.js';
import { digestDir } from '../../src/cluster/manifest-source.js';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));

export interface Pair {
  from: string;
  to: string;
}
export const DENIED: Pair[] = [
  { from: 'y/a', to: 'x/a' },
  { from: 'y/c', to: 'x/b' },
  { from: 'y/c', to: 'y/a' },
];
/** A probe a single window adds to the pairs above: from a pod (`ns/name`) to any address and port. */
export interface ExtraProbe {
  from: string;
  toIp: string;
  port: number;
  /** How it is reported, e.g. `y/c → node-2 172.18.0.3:8080`. */
  name: string;
}
export const ALLOWED: Pair[] = [
  { from: 'z/a', to: 'x/a' },
  { from: 'y/c', to: 'z/a' },
];

/** The policies of the harness cluster, as raw objects (file `policies.yaml`). */
export function basePolicies(): Raw[] {
  return [
    policy('x', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] }),
    policy('x', 'allow-from-z', { podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }] }),
    policy('y', 'egress-c', { podSelector: { matchLabels: { pod: 'c' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }] }),
  ];
}

export interface Window {
  name: string;
  denied: number;
  deniedOpen: string[];
  allowed: number;
  allowedOk: number;
  /** The manifests deny the allowed pairs during (part of) this window. */
  allowedDenied: boolean;
  ms: number;
  /** When (performance.now()) each denied probe that got through was started and answered. */
  deniedOpenAt: { start: number; end: number }[];
  /**
   * Tampering with the kernel's rules: the fault itself opens what it damages until podwall repairs
   * it. Denied probes in flight between `tamperedAt` and `repairedAt` (answered after the one,
   * started before the other) may get through — counted as exposure and reported; no other.
   */
  exposure?: { tamperedAt?: number; repairedAt?: number };
  /** Probes this window adds to DENIED and ALLOWED (counted with them). */
  extra: { denied: ExtraProbe[]; allowed: ExtraProbe[] };
}

interface AgentProcess {
  node: string;
  ns: string;
  child: ChildProcess;
  statusFile: string;
  logFile: string;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

export interface HarnessOptions {
  /** Lab name (≤ 12 chars; random by default). */
  name?: string;
  /** Extra flags for every agent. */
  agentFlags?: string[];
}

const yamlOf = (objects: Raw[]) => objects.map((o) => stringify(o)).join('---\n');
const toText = (content: Raw[] | string) => (typeof content === 'string' ? content : yamlOf(content));

export class FailOpenHarness {
  readonly windows: Window[] = [];
  private current: Window;
  private readonly agents = new Map<string, AgentProcess>();
  private readonly pool: ProberPool;
  private probing = true;
  private loop: Promise<void> | undefined;
  private readonly inflight = new Set<Promise<unknown>>();

  private constructor(
    readonly lab: string,
    /** The directory the agents read (`--manifests`). */
    readonly dir: string,
    /** Private working directory (status files, logs, agent state). */
    readonly work: string,
    readonly state: LabState,
    private readonly opts: HarnessOptions,
  ) {
    this.current = this.newWindow('startup');
    this.pool = new ProberPool({ timeoutMs: 1000, socketFor: (ns) => probeSocketPath(lab, ns) });
  }

  /** Builds the lab, starts an agent per node, waits for them to apply, and starts probing. */
  static async start(t: ExecutionContext, opts: HarnessOptions = {}): Promise<FailOpenHarness> {
    if (process.getuid?.() !== 0) throw new Error('the fail-open harness needs root (it builds network namespaces)');
    const lab = opts.name ?? `fo${randomBytes(3).toString('hex')}`;
    const work = mkdtempSync(join(tmpdir(), `podwall-failopen-${lab}-`));
    const labInput = join(work, 'lab-input');
    writeManifests(labInput, conformanceObjects());
    await labUp({ dir: labInput, name: lab, agents: false, follow: false });
    const st = readState(lab);
    if (!st.ok) throw new Error(st.error);
    const dir = join(work, 'manifests');
    mkdirSync(dir);
    cpSync(join(labInput, 'cluster.yaml'), join(dir, 'cluster.yaml'));
    writeFileSync(join(dir, 'policies.yaml'), yamlOf(basePolicies()));
    const h = new FailOpenHarness(lab, dir, work, st.state, { ...opts, agentFlags: [...(opts.agentFlags ?? []), ...(process.env.PODWALL_FAILOPEN_AGENT_FLAGS ?? '').split(' ').filter(Boolean)] });
    for (const n of st.state.nodes) h.startAgent(n.name);
    await h.applied();
    t.log(`fail-open harness: lab ${lab}, ${st.state.nodes.length} agents, manifests in ${dir}`);
    h.loop = h.probeLoop();
    await h.probesRan(5);
    return h;
  }

  private newWindow(name: string, allowedDenied = false, exposure = false, extra: Window['extra'] = { denied: [], allowed: [] }): Window {
    return { name, denied: 0, deniedOpen: [], deniedOpenAt: [], allowed: 0, allowedOk: 0, allowedDenied, ms: 0, ...(exposure ? { exposure: {} } : {}), extra };
  }

  /** In an `exposure` window: the damage is done now (call right before the tampering command). */
  markTampered(): void {
    if (!this.current.exposure) throw new Error(`window ${JSON.stringify(this.current.name)} is not an exposure window`);
    this.current.exposure.tamperedAt = performance.now();
  }

  /** In an `exposure` window: the kernel is repaired now (call once the repair is observed). */
  markRepaired(): void {
    if (!this.current.exposure) throw new Error(`window ${JSON.stringify(this.current.name)} is not an exposure window`);
    this.current.exposure.repairedAt = performance.now();
  }

  nodeNs(node: string): string {
    const n = this.state.nodes.find((x) => x.name === node);
    if (!n) throw new Error(`no node ${node} in the harness`);
    return n.ns;
  }

  private podNs(key: string): string {
    const p = this.state.pods.find((x) => x.key === key);
    if (!p) throw new Error(`no pod ${key} in the harness`);
    return p.ns;
  }

  // ---------------------------------------------------------------- agents

  /** Starts (or restarts) the agent of `node`; `wrap` prefixes the command (e.g. setpriv ...). */
  startAgent(node: string, wrap: string[] = []): void {
    const ns = this.nodeNs(node);
    const statusFile = join(this.work, `status-${node}.json`);
    const logFile = join(this.work, `agent-${node}.log`);
    const log = openSync(logFile, 'a');
    writeSync(log, `--- start ${new Date().toISOString()}\n`);
    const args = [
      'netns', 'exec', ns, ...wrap, process.execPath, '--enable-source-maps', BIN, 'run',
      '--manifests', this.dir, '--manifests-state-file', join(this.work, `accepted-${node}.json`), '--hostname-override', node, '--status-file', statusFile,
      '--health-port', '0', '--iptables-sync-period', '1m', '--iptables-backend', 'nft', '--log-level', 'info',
      ...(this.opts.agentFlags ?? []),
    ];
    const child = spawn('ip', args, { stdio: ['ignore', log, log] });
    closeSync(log);
    const a: AgentProcess = { node, ns, child, statusFile, logFile };
    child.once('exit', (code, signal) => (a.exit = { code, signal }));
    this.agents.set(node, a);
  }

  /** SIGKILLs the agent of `node` (by its pid) and waits for it to be gone. */
  async killAgent(node: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const a = this.agent(node);
    if (!a.exit) {
      const gone = new Promise<void>((r) => a.child.once('exit', () => r()));
      a.child.kill(signal);
      await gone;
    }
    return a.exit!;
  }

  /** Kills the agent of `node` and starts a new one (whose status file starts empty, so `applied()` waits for it). */
  async restartAgent(node: string, wrap: string[] = []): Promise<void> {
    await this.killAgent(node);
    rmSync(this.agent(node).statusFile, { force: true });
    this.startAgent(node, wrap);
  }

  private agent(node: string): AgentProcess {
    const a = this.agents.get(node);
    if (!a) throw new Error(`no agent for ${node}`);
    return a;
  }

  /** Whether the agent process of `node` is still running (and how it ended if not). */
  agentExit(node: string): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.agent(node).exit;
  }

  /** The agent's /status (as written to its status file), or undefined while it has none. */
  status(node: string): Record<string, unknown> & { appliedVersion?: number; manifestsDigest?: string; lastError?: string; source?: { available: boolean; reason?: string; errors: number; rejected: string[]; firstErrors: string[] } } {
    try {
      return JSON.parse(readFileSync(this.agent(node).statusFile, 'utf8'));
    } catch {
      return {};
    }
  }

  log(node: string): string {
    try {
      return readFileSync(this.agent(node).logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Waits until the /status of every agent (or of `nodes`) satisfies `pred`. */
  async waitStatus(what: string, pred: (status: ReturnType<FailOpenHarness['status']>) => boolean, nodes = [...this.agents.keys()], ms = 30_000): Promise<void> {
    await until(
      what,
      () => {
        for (const n of nodes) {
          const a = this.agent(n);
          if (a.exit) throw new Error(`the agent of ${n} exited (${JSON.stringify(a.exit)}): ${this.log(n).slice(-2000)}`);
        }
        return nodes.every((n) => pred(this.status(n)));
      },
      ms,
    );
  }

  /** Waits until every agent applied the directory's current contents (its /status digest). */
  async applied(ms = 30_000): Promise<void> {
    const want = await digestDir(this.dir);
    await until(
      `every agent to apply digest ${want.slice(0, 8)}`,
      () => {
        for (const a of this.agents.values()) {
          if (a.exit) throw new Error(`the agent of ${a.node} exited (${JSON.stringify(a.exit)}): ${this.log(a.node).slice(-2000)}`);
        }
        return [...this.agents.values()].every((a) => this.status(a.node).manifestsDigest === want);
      },
      ms,
    );
  }

  // ---------------------------------------------------------------- the manifests directory

  /** Writes a file of DIR at once (objects as multi-document YAML, or text as is). */
  write(file: string, content: Raw[] | string): void {
    const path = join(this.dir, file);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, toText(content));
  }

  /** Writes a file of DIR in two parts with a pause between them, as a slow writer does. */
  async writeSlowly(file: string, content: Raw[] | string, cutAt: number | string, pauseMs: number): Promise<void> {
    const text = toText(content);
    const at = typeof cutAt === 'number' ? cutAt : text.indexOf(cutAt) + cutAt.length;
    if (at < 0 || at >= text.length || (typeof cutAt === 'string' && !text.includes(cutAt))) throw new Error(`writeSlowly: cut ${JSON.stringify(cutAt)} not inside the text`);
    const fd = openSync(join(this.dir, file), 'w');
    try {
      writeSync(fd, text.slice(0, at));
      await new Promise((r) => setTimeout(r, pauseMs));
      writeSync(fd, text.slice(at));
    } finally {
      closeSync(fd);
    }
  }

  remove(file: string): void {
    unlinkSync(join(this.dir, file));
  }

  read(file: string): string {
    return readFileSync(join(this.dir, file), 'utf8');
  }

  /** Runs a command in the namespace of `node`. */
  sh(node: string, cmd: string[], input?: string): string {
    return execFileSync('ip', ['netns', 'exec', this.nodeNs(node), ...cmd], { input: input ?? '', encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  }

  // ---------------------------------------------------------------- probing

  private async probeLoop(): Promise<void> {
    const port = 80;
    let next = performance.now();
    while (this.probing) {
      const w = this.current;
      const pairTo = (p: Pair): ExtraProbe => ({ from: p.from, toIp: podIP(p.to.split('/')[0]!, p.to.split('/')[1]!), port, name: `${p.from} → ${p.to}` });
      for (const p of [...DENIED.map(pairTo), ...w.extra.denied]) {
        const startedAt = performance.now();
        const run = this.pool.probe({ fromNs: this.podNs(p.from), toIp: p.toIp, port: p.port, protocol: 'TCP' }).then((r) => {
          w.denied++;
          if (r.ok) {
            w.deniedOpen.push(`${p.name} at ${new Date().toISOString()}`);
            w.deniedOpenAt.push({ start: startedAt, end: performance.now() });
          }
        });
        this.track(run);
      }
      for (const p of [...ALLOWED.map(pairTo), ...w.extra.allowed]) {
        const run = this.pool.probe({ fromNs: this.podNs(p.from), toIp: p.toIp, port: p.port, protocol: 'TCP' }).then((r) => {
          w.allowed++;
          if (r.ok) w.allowedOk++;
        });
        this.track(run);
      }
      next += 20;
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else next = performance.now(); // a slow machine: no burst to catch up
    }
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch(() => {});
    this.inflight.add(q);
    void q.finally(() => this.inflight.delete(q));
  }

  /** Waits until at least `n` more rounds of denied probes completed in the current window. */
  async probesRan(n: number): Promise<void> {
    const w = this.current;
    const start = w.denied;
    await until(`${n} probe rounds in window ${JSON.stringify(w.name)}`, () => w.denied >= start + n * (DENIED.length + w.extra.denied.length), 30_000);
  }

  /**
   * Runs one fault in its own counting window: `fn` does the damage and waits for whatever should
   * follow (repair, rejection, reload); then the window keeps probing for a few more rounds.
   */
  async fault(name: string, fn: () => Promise<void>, o: { allowedDenied?: boolean; exposure?: boolean; probes?: Partial<Window['extra']> } = {}): Promise<Window> {
    const w = this.newWindow(name, o.allowedDenied ?? false, o.exposure ?? false, { denied: o.probes?.denied ?? [], allowed: o.probes?.allowed ?? [] });
    const started = performance.now();
    this.current = w;
    this.windows.push(w);
    await this.probesRan(2);
    try {
      await fn();
    } catch (e) {
      // Say which fault, and what the agents said, so a failure can be read from the test output.
      const agents = [...this.agents.values()].map((a) => `${a.node}: status ${JSON.stringify(this.status(a.node))}\n${this.log(a.node).split('\n').slice(-15).join('\n')}`);
      throw new Error(`fault ${JSON.stringify(name)}: ${(e as Error).message}\n${agents.join('\n')}`);
    }
    await this.probesRan(5);
    w.ms = Math.round(performance.now() - started);
    this.current = this.newWindow(`after ${name}`);
    return w;
  }

  /** Asserts, per window: no denied probe got through; the allowed ones worked unless the window says otherwise. */
  assertNoneOpen(t: ExecutionContext): void {
    for (const w of this.windows) {
      if (w.exposure) {
        const { tamperedAt, repairedAt } = w.exposure;
        t.truthy(tamperedAt !== undefined && repairedAt !== undefined, `${w.name}: the fault marks when it tampered and when the repair was seen`);
        // In flight while the rules were damaged: answered after the damage, started before the repair was seen.
        const inside = (at: { start: number; end: number }) => at.end >= (tamperedAt ?? Infinity) && at.start <= (repairedAt ?? -Infinity);
        const exposed = w.deniedOpen.filter((_, i) => inside(w.deniedOpenAt[i]!));
        const outside = w.deniedOpen.map((p, i) => ({ p, at: w.deniedOpenAt[i]! })).filter((x) => !inside(x.at)).map((x) => `${x.p} (in flight ${Math.round(x.at.start - (tamperedAt ?? 0))}..${Math.round(x.at.end - (tamperedAt ?? 0))} ms after the tampering; the repair was seen at ${Math.round((repairedAt ?? 0) - (tamperedAt ?? 0))} ms)`);
        t.log(`${w.name}: ${w.denied} denied probes; ${exposed.length} got through while the rules were tampered with (${Math.round((repairedAt ?? 0) - (tamperedAt ?? 0))} ms until the repair was seen), ${outside.length} outside; allowed ${w.allowedOk}/${w.allowed} (${w.ms} ms)`);
        t.deepEqual(outside, [], `${w.name}: denied connections got through outside the tampering`);
        t.true(w.denied > 0, `${w.name}: probes ran`);
        if (!w.allowedDenied) t.true(w.allowedOk >= w.allowed * 0.9 && w.allowedOk > 0, `${w.name}: the allowed pairs kept working (${w.allowedOk}/${w.allowed})`);
        continue;
      }
      t.log(`${w.name}: ${w.denied} denied probes, ${w.deniedOpen.length} got through; allowed ${w.allowedOk}/${w.allowed} (${w.ms} ms)`);
      t.deepEqual(w.deniedOpen, [], `${w.name}: denied connections got through`);
      t.true(w.denied > 0, `${w.name}: probes ran`);
      if (!w.allowedDenied) t.true(w.allowedOk >= w.allowed * 0.9 && w.allowedOk > 0, `${w.name}: the allowed pairs kept working (${w.allowedOk}/${w.allowed})`);
    }
  }

  async close(): Promise<void> {
    this.probing = false;
    await this.loop?.catch(() => {});
    await Promise.all([...this.inflight]);
    await this.pool.close().catch(() => {});
    for (const a of this.agents.values()) if (!a.exit) a.child.kill('SIGKILL');
    await labDown(this.lab).catch(() => {});
    if (existsSync(this.work)) rmSync(this.work, { recursive: true, force: true });
  }
}
