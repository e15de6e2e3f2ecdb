// Watches podwall's own chains, jumps and sets for changes made by anyone else, so drift is repaired
// within a second instead of at the next full resync (drift.ts says what counts):
//   - nft backend: an `nft monitor` child process reports every ruleset transaction with the pid that
//     made it; one by a process podwall did not start, touching a hook chain or an owned chain, is
//     drift at once. The monitor is restarted with backoff if it dies (and a full check made, since
//     events may have been missed).
//   - every tick (`--drift-check-period`): `ipset list -t` — set headers only — against what podwall
//     last wrote (ipset has no events); with the legacy backend, or while the monitor is down, also
//     `iptables-save -t filter` of the managed families (the legacy kernel hands out whole tables).
//   - every `fullEvery` ticks: everything, member by member (a member replaced by another keeps the
//     count the headers show).
// Drift is reported to `onDrift`; the caller repairs it with a resync. The watcher only reads.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Family } from '../cluster/model.js';
import { MonitorParser, relevantChanges } from './drift.js';
import type { DataplaneLogger } from './apply.js';
import { systemBinary } from './exec.js';

export type DriftSource = 'nft-monitor' | 'check' | 'full-check';

export interface DriftCheckScope {
  /** Read the managed families' filter tables too (not only the set headers). */
  tables: boolean;
  /** Compare every set member (`ipset save`), not only the headers. */
  members: boolean;
}

/** What the watcher needs from the dataplane (apply.ts implements it). */
export interface DriftTarget {
  readonly backend: 'nft' | 'legacy' | undefined;
  readonly families: readonly Family[];
  /** Whether podwall itself started the process with this pid (its own restores). */
  isOwnPid(pid: number): boolean;
  /** Compares a cheap read with what podwall last wrote; what differs (empty: nothing). */
  checkDrift(scope: DriftCheckScope): Promise<string[]>;
}

export interface DriftWatchOptions {
  target: DriftTarget;
  /** Tick period in ms; 0 turns the periodic checks off (the monitor still runs). */
  periodMs: number;
  /** A full check every this many ticks (default 20). */
  fullEvery?: number;
  /** Run `nft monitor` inside this network namespace. */
  netns?: string;
  logger: DataplaneLogger;
  onDrift(what: string[], detectedAt: number, source: DriftSource): void;
  /** Starts the monitor process (tests); default `nft monitor`, inside `netns` when given. */
  spawnMonitor?: () => ChildProcess;
}

export class DriftWatcher {
  private monitor: ChildProcess | undefined;
  private monitorUp = false;
  private monitorFailures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private ticks = 0;
  private stopped = false;
  private checking: Promise<void> | undefined;

  constructor(private readonly o: DriftWatchOptions) {}

  start(): void {
    if (this.o.target.backend === 'nft') this.startMonitor();
    // Once at start: whatever changed before the monitor listened (it runs after the first apply).
    void this.check({ tables: true, members: true }, 'full-check');
    if (this.o.periodMs > 0) this.schedule();
  }

  /** Whether nft monitor is running (iptables drift is then seen at once). */
  monitoring(): boolean {
    return this.monitorUp;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.tickTimer) clearTimeout(this.tickTimer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const m = this.monitor;
    if (m && m.exitCode === null && m.signalCode === null) {
      const gone = new Promise<void>((r) => m.once('exit', () => r()));
      m.kill('SIGTERM');
      await gone;
    }
    await this.checking;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.tickTimer = setTimeout(() => void this.tick(), this.o.periodMs);
    this.tickTimer.unref();
  }

  private async tick(): Promise<void> {
    const full = ++this.ticks % (this.o.fullEvery ?? 20) === 0;
    const scope = { tables: full || !this.monitorUp, members: full };
    await this.check(scope, full ? 'full-check' : 'check');
    this.schedule();
  }

  /** One check now (also after the monitor restarts). */
  async check(scope: DriftCheckScope, source: DriftSource): Promise<void> {
    if (this.checking) return this.checking;
    const at = performance.now();
    this.checking = (async () => {
      try {
        const what = await this.o.target.checkDrift(scope);
        if (what.length && !this.stopped) this.o.onDrift(what, at, source);
      } catch (e) {
        this.o.logger.warn({ err: (e as Error).message }, 'drift check failed; the next tick tries again');
      }
    })().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private startMonitor(): void {
    if (this.stopped) return;
    let child: ChildProcess;
    try {
      if (this.o.spawnMonitor) child = this.o.spawnMonitor();
      else {
        const nft = systemBinary('nft');
        if (!nft) {
          this.monitorDown('nft is not installed (Debian package nftables)');
          return;
        }
        child = spawn(this.o.netns !== undefined ? 'ip' : nft, this.o.netns !== undefined ? ['netns', 'exec', this.o.netns, nft, 'monitor'] : ['monitor'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
      }
    } catch (e) {
      this.monitorDown(`cannot start nft monitor: ${(e as Error).message}`);
      return;
    }
    this.monitor = child;
    const parser = new MonitorParser();
    let stderr = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      if (!this.monitorUp) {
        this.monitorUp = true;
        this.monitorFailures = 0;
      }
      for (const batch of parser.push(chunk)) {
        if (batch.pid !== undefined && this.o.target.isOwnPid(batch.pid)) continue;
        const changes = relevantChanges(batch, this.o.target.families);
        if (changes.length === 0) continue;
        const who = batch.pid !== undefined ? `${batch.process ?? '?'} (pid ${batch.pid})` : 'unknown process';
        this.o.onDrift(changes.map((c) => `${who}: ${c}`), performance.now(), 'nft-monitor');
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => (stderr = (stderr + d).slice(-500)));
    child.once('error', (e) => this.monitorDown(`nft monitor: ${e.message}`));
    child.once('spawn', () => {
      // nft prints nothing until the first event: count it as up once it runs.
      this.monitorUp = true;
    });
    child.once('exit', (code, signal) => {
      if (this.monitor === child) this.monitorDown(`nft monitor exited (${signal ?? `code ${code}`})${stderr.trim() ? `: ${stderr.trim().split('\n')[0]}` : ''}`);
    });
  }

  private monitorDown(why: string): void {
    this.monitorUp = false;
    this.monitor = undefined;
    if (this.stopped) return;
    this.monitorFailures++;
    const delay = Math.min(30_000, 500 * 2 ** Math.min(this.monitorFailures - 1, 6));
    this.o.logger.warn({ err: why, retryInMs: delay }, 'nft monitor is not running; chains are checked by reading the tables every tick until it is back');
    this.restartTimer = setTimeout(() => {
      this.startMonitor();
      // Events may have been missed while it was down.
      void this.check({ tables: true, members: false }, 'check');
    }, delay);
    this.restartTimer.unref();
  }
}
