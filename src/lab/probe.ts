// Probing with real packets from inside pod namespaces. One long-lived prober process per source
// namespace (prober-main.js) takes JSON-line requests, so hundreds of probes cost one
// `ip netns exec` per source pod, not one per probe.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { checkNsName } from './netns.js';
import type { ProbeAnswer, ProbeRequest } from './prober-main.js';

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
}

interface Worker {
  child: ChildProcess;
  pending: Map<number, (r: ProbeResult) => void>;
  dead?: string;
  stderr: string;
}

/** A set of prober processes, one per source namespace, started on first use. Call close() when done. */
export class ProberPool {
  private readonly workers = new Map<string, Worker>();
  private nextId = 1;
  private active = 0;
  private readonly queue: (() => void)[] = [];
  private closed = false;
  readonly timeoutMs: number;
  readonly udpRetries: number;
  readonly concurrency: number;

  constructor(opts: ProbeOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 1000;
    this.udpRetries = opts.udpRetries ?? 1;
    this.concurrency = Math.max(1, opts.concurrency ?? 256);
  }

  private worker(ns: string): Worker {
    let w = this.workers.get(ns);
    if (w) return w;
    checkNsName(ns);
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, PROBER_MAIN], { stdio: ['pipe', 'pipe', 'pipe'] });
    const worker: Worker = { child, pending: new Map(), stderr: '' };
    w = worker;
    this.workers.set(ns, worker);
    const fail = (why: string) => {
      if (worker.dead) return;
      worker.dead = why;
      for (const resolve of worker.pending.values()) resolve({ ok: false, error: why });
      worker.pending.clear();
    };
    child.stdin!.on('error', () => undefined);
    child.stderr!.on('data', (b: Buffer) => {
      if (worker.stderr.length < 4000) worker.stderr += b.toString();
    });
    child.on('error', (e) => fail(`prober in ${ns} could not start: ${e.message}`));
    child.on('exit', (code, sig) => fail(`prober in ${ns} exited (${sig ?? code})${worker.stderr.trim() ? `: ${worker.stderr.trim().split('\n').slice(-2).join(' | ')}` : ''}`));
    const rl = createInterface({ input: child.stdout! });
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
    return worker;
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
      const w = this.worker(p.fromNs);
      if (w.dead) throw new Error(w.dead);
      const id = this.nextId++;
      const req: ProbeRequest = { id, ip: p.toIp, port: p.port, protocol: p.protocol, timeoutMs: this.timeoutMs, retries: this.udpRetries };
      const r = await new Promise<ProbeResult>((resolve) => {
        w.pending.set(id, resolve);
        w.child.stdin!.write(JSON.stringify(req) + '\n');
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

  /** Ends every prober (closes stdin; kills what does not exit within a second). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.workers.values()];
    this.workers.clear();
    await Promise.all(
      all.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.child.exitCode !== null || w.child.signalCode !== null) return resolve();
            const t = setTimeout(() => w.child.kill('SIGKILL'), 1000);
            w.child.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            w.child.stdin!.end();
          }),
      ),
    );
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
