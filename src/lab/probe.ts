// Probing with real packets from inside pod namespaces. Each source namespace gets one probe
// session (JSON lines, probe-session.ts) for all its probes: with the pod's server when the caller
// names its control socket (nothing to start), else with a prober process started there
// (`ip netns exec NS node prober-main.js`), so hundreds of probes cost at most one process per
// source pod, never one per probe.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { checkNsName } from './netns.js';
import type { ProbeAnswer, ProbeRequest } from './probe-session.js';

export const PROBER_MAIN = fileURLToPath(new URL('./prober-main.js', import.meta.url));

export interface ProbePair {
  /** Source pod namespace. */
  fromNs: string;
  toIp: string;
  port: number;
  protocol: 'TCP' | 'UDP';
}

export interface ProbeResult {
  ok: boolean;
  /** Why it failed: `connect timeout`, `ECONNREFUSED`, `timeout`, ... */
  error?: string;
}

export interface ProbeOptions {
  /** Per step (TCP connect, TCP answer, each UDP attempt); default 1000 ms. */
  timeoutMs?: number;
  /** Extra UDP sends on silence; default 1. */
  udpRetries?: number;
  /** Probes in flight across all sources; default 256. */
  concurrency?: number;
  /**
   * The unix socket of a server in that namespace that takes probe sessions (servers.ts), if any.
   * When it cannot be connected to, a prober process is started instead.
   */
  socketFor?: (ns: string) => string | undefined;
}

interface Worker {
  input: Writable;
  pending: Map<number, (r: ProbeResult) => void>;
  dead?: string;
  stderr: string;
  /** Ends the session (answers in flight first); resolves when it is over. */
  end(): Promise<void>;
}

function connectUnix(path: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    if (!existsSync(path)) return resolve(undefined);
    const sock = connect(path);
    const fail = () => {
      sock.destroy();
      resolve(undefined);
    };
    sock.once('error', fail);
    sock.once('connect', () => {
      sock.removeListener('error', fail);
      resolve(sock);
    });
  });
}

/** A set of probe sessions, one per source namespace, opened on first use. Call close() when done. */
export class ProberPool {
  private readonly workers = new Map<string, Promise<Worker>>();
  private nextId = 1;
  private active = 0;
  private readonly queue: (() => void)[] = [];
  private closed = false;
  readonly timeoutMs: number;
  readonly udpRetries: number;
  readonly concurrency: number;
  private readonly socketFor: ((ns: string) => string | undefined) | undefined;

  constructor(opts: ProbeOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 1000;
    this.udpRetries = opts.udpRetries ?? 1;
    this.concurrency = Math.max(1, opts.concurrency ?? 256);
    this.socketFor = opts.socketFor;
  }

  private worker(ns: string): Promise<Worker> {
    let w = this.workers.get(ns);
    if (!w) {
      checkNsName(ns);
      w = this.open(ns);
      this.workers.set(ns, w);
    }
    return w;
  }

  private async open(ns: string): Promise<Worker> {
    const path = this.socketFor?.(ns);
    const sock = path !== undefined ? await connectUnix(path) : undefined;
    if (sock) {
      const worker: Worker = {
        input: sock,
        pending: new Map(),
        stderr: '',
        end: () =>
          new Promise<void>((resolve) => {
            if (sock.destroyed) return resolve();
            const t = setTimeout(() => sock.destroy(), 1000);
            sock.once('close', () => {
              clearTimeout(t);
              resolve();
            });
            sock.end();
          }),
      };
      sock.on('error', () => undefined);
      sock.on('close', () => this.fail(worker, `probe session with the server in ${ns} closed`));
      this.readAnswers(worker, sock);
      return worker;
    }
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, PROBER_MAIN], { stdio: ['pipe', 'pipe', 'pipe'] });
    const worker: Worker = {
      input: child.stdin!,
      pending: new Map(),
      stderr: '',
      end: () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const t = setTimeout(() => child.kill('SIGKILL'), 1000);
          child.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          child.stdin!.end();
        }),
    };
    child.stdin!.on('error', () => undefined);
    child.stderr!.on('data', (b: Buffer) => {
      if (worker.stderr.length < 4000) worker.stderr += b.toString();
    });
    child.on('error', (e) => this.fail(worker, `prober in ${ns} could not start: ${e.message}`));
    child.on('exit', (code, sig) => this.fail(worker, `prober in ${ns} exited (${sig ?? code})${worker.stderr.trim() ? `: ${worker.stderr.trim().split('\n').slice(-2).join(' | ')}` : ''}`));
    this.readAnswers(worker, child.stdout!);
    return worker;
  }

  private fail(worker: Worker, why: string): void {
    if (worker.dead) return;
    worker.dead = why;
    for (const resolve of worker.pending.values()) resolve({ ok: false, error: why });
    worker.pending.clear();
  }

  private readAnswers(worker: Worker, from: NodeJS.ReadableStream): void {
    const rl = createInterface({ input: from });
    rl.on('line', (line) => {
      if (line === 'ready' || line.trim() === '') return;
      let a: ProbeAnswer;
      try {
        a = JSON.parse(line) as ProbeAnswer;
      } catch {
        return;
      }
      const resolve = worker.pending.get(a.id);
      if (!resolve) return;
      worker.pending.delete(a.id);
      resolve(a.ok ? { ok: true } : { ok: false, ...(a.error !== undefined ? { error: a.error } : {}) });
    });
  }

  private async slot(): Promise<void> {
    if (this.active < this.concurrency) {
      this.active++;
      return;
    }
    await new Promise<void>((r) => this.queue.push(r));
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.active--;
  }

  /**
   * One probe. A prober that cannot start or dies (namespace gone, ...) makes the probe throw: that is
   * a broken lab, not a denied connection.
   */
  async probe(p: ProbePair): Promise<ProbeResult> {
    if (this.closed) throw new Error('prober pool is closed');
    await this.slot();
    try {
      const w = await this.worker(p.fromNs);
      if (w.dead) throw new Error(w.dead);
      const id = this.nextId++;
      const req: ProbeRequest = { id, ip: p.toIp, port: p.port, protocol: p.protocol, timeoutMs: this.timeoutMs, retries: this.udpRetries };
      const r = await new Promise<ProbeResult>((resolve) => {
        w.pending.set(id, resolve);
        w.input.write(JSON.stringify(req) + '\n');
      });
      if (w.dead && !r.ok && r.error === w.dead) throw new Error(w.dead);
      return r;
    } finally {
      this.release();
    }
  }

  /** Probes every pair (concurrently, bounded); results in input order. */
  probeMany(pairs: readonly ProbePair[]): Promise<ProbeResult[]> {
    return Promise.all(pairs.map((p) => this.probe(p)));
  }

  /** Ends every session (closes its input; kills or drops what does not end within a second). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.workers.values()];
    this.workers.clear();
    await Promise.all(all.map(async (w) => (await w).end()));
  }
}

/** Probes every pair from inside its source namespace; true = reached (see ProbeResult for why not). */
export async function probeAll(pairs: readonly ProbePair[], opts: ProbeOptions = {}): Promise<boolean[]> {
  return (await probeAllDetailed(pairs, opts)).map((r) => r.ok);
}

export async function probeAllDetailed(pairs: readonly ProbePair[], opts: ProbeOptions = {}): Promise<ProbeResult[]> {
  const pool = new ProberPool(opts);
  try {
    return await pool.probeMany(pairs);
  } finally {
    await pool.close();
  }
}
