// Exec helpers for the lab: run a program with an argument array (never a shell string), optionally
// inside a network namespace (`ip netns exec NS ...`), with a timeout; `ip -batch` to make many links
// in one process. Everything the lab does to the kernel goes through here.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export interface RunOptions {
  /** Run inside this network namespace (`ip netns exec NS cmd ...`). */
  ns?: string;
  /** Written to stdin (stdin is closed either way). */
  input?: string;
  /** Kill the process (SIGKILL) after this long; default 30 s. */
  timeoutMs?: number;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFail?: boolean;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit code; -1 when killed by a signal or on timeout. */
  code: number;
  timedOut: boolean;
}

export class LabExecError extends Error {
  readonly command: string;
  readonly code: number;
  readonly stderr: string;
  constructor(command: string, code: number, stderr: string, timedOut = false) {
    const detail = stderr.trim().split('\n').filter((l) => l.trim() !== '').slice(0, 6).join(' | ') || '(no output)';
    super(timedOut ? `${command} timed out: ${detail}` : `${command} exited with ${code}: ${detail}`);
    this.name = 'LabExecError';
    this.command = command;
    this.code = code;
    this.stderr = stderr;
  }
}

/** Network namespace names the lab accepts (what `ip netns` accepts, minus anything odd). */
export const NETNS_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export function checkNsName(ns: string): void {
  if (!NETNS_NAME.test(ns)) throw new Error(`invalid network namespace name ${JSON.stringify(ns)}`);
}

/** The argv that runs `cmd args` (inside `ns` when given). */
export function commandLine(cmd: string, args: readonly string[], ns?: string): string[] {
  if (ns === undefined) return [cmd, ...args];
  checkNsName(ns);
  return ['ip', 'netns', 'exec', ns, cmd, ...args];
}

const shown = (argv: readonly string[]): string => argv.map((a) => (/^[A-Za-z0-9_.,:/=@+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');

/** Runs a program; throws LabExecError on a non-zero exit or timeout unless `allowFail`. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const argv = commandLine(cmd, args, opts.ns);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new LabExecError(shown(argv), -1, (e as Error).message));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const r: RunResult = { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code: code ?? -1, timedOut };
      if ((r.code !== 0 || timedOut) && !opts.allowFail) reject(new LabExecError(shown(argv), r.code, r.stderr || r.stdout, timedOut));
      else resolve(r);
    });
    child.stdin.on('error', () => {
      /* the process may exit before reading all input; its exit code tells */
    });
    child.stdin.end(opts.input ?? '');
  });
}

// `ip -batch` splits lines on blanks and treats quotes and `#` specially; the lab only ever passes
// names and addresses it made itself, so anything outside this alphabet is a bug, refused loudly.
const BATCH_WORD = /^[A-Za-z0-9_.:/=+-]+$/;

/** The `ip -batch` payload for these commands (each an argv without the leading `ip`). */
export function batchPayload(commands: readonly (readonly string[])[]): string {
  return commands
    .map((c) => {
      if (c.length === 0) throw new Error('empty ip batch command');
      for (const w of c) if (!BATCH_WORD.test(w)) throw new Error(`refusing ip batch word ${JSON.stringify(w)} in: ${c.join(' ')}`);
      return c.join(' ');
    })
    .join('\n')
    .concat('\n');
}

/**
 * Runs many `ip` commands in one process: `ip -batch -` (or `ip -n NS -batch -`). Stops at the first
 * failing line (the error names it) unless `force`.
 */
export async function ipBatch(commands: readonly (readonly string[])[], opts: { ns?: string; force?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
  if (commands.length === 0) return { stdout: '', stderr: '', code: 0, timedOut: false };
  const args: string[] = [];
  if (opts.ns !== undefined) {
    checkNsName(opts.ns);
    args.push('-n', opts.ns);
  }
  if (opts.force) args.push('-force');
  args.push('-batch', '-');
  const payload = batchPayload(commands);
  try {
    return await run('ip', args, { input: payload, timeoutMs: opts.timeoutMs, allowFail: !!opts.force });
  } catch (e) {
    if (e instanceof LabExecError) {
      const m = /Command failed -:(\d+)/.exec(e.stderr);
      const line = m ? payload.split('\n')[Number(m[1]) - 1] : undefined;
      throw new LabExecError(`ip ${args.join(' ')}${line ? ` (line "${line}")` : ''}`, e.code, e.stderr);
    }
    throw e;
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. Rejects with the first error after all settle. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let firstError: unknown;
  let failed = false;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (e) {
        if (!failed) {
          failed = true;
          firstError = e;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed) throw firstError;
  return results;
}

/** Names from `ip netns list` (the first word of each line). */
export async function listNetns(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

/** Pids of processes inside a namespace (`ip netns pids NS`); [] when it is gone. */
export async function netnsPids(ns: string): Promise<number[]> {
  checkNsName(ns);
  const r = await run('ip', ['netns', 'pids', ns], { allowFail: true });
  if (r.code !== 0) return [];
  return r.stdout
    .split(/\s+/)
    .filter((w) => /^\d+$/.test(w))
    .map(Number);
}

/** Whether a process exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/s.test(stat);
  } catch {
    return false;
  }
}

/** SIGKILLs the pids and waits (bounded) until they are gone; returns the ones still alive after `waitMs`. */
export async function killAndWait(pids: readonly number[], waitMs = 5_000): Promise<number[]> {
  for (const pid of pids) {
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  const end = Date.now() + waitMs;
  let left = pids.filter((p) => p > 1 && p !== process.pid && alive(p));
  while (left.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 10));
    left = left.filter(alive);
  }
  return left;
}

/** Start time of a process (clock ticks since boot, /proc/PID/stat field 22); undefined when gone. */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Messages for a detached process that never became ready (`logTail`: the end of its log). */
export interface ReadyMessages {
  timeout: (logTail: string) => Error;
  cannotStart: (message: string) => Error;
  exited: (why: string, logTail: string) => Error;
}

/**
 * Starts a detached process (stdout piped, stderr appended to `logPath`) and resolves with its pid
 * once it printed a line `ready`; on a timeout, a spawn error or an early exit it is killed and the
 * matching message rejects. The process outlives its parent.
 */
export function spawnUntilReady(cmd: string, args: readonly string[], logPath: string, timeoutMs: number, msg: ReadyMessages): Promise<number> {
  const logFd = openSync(logPath, 'a');
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  const logTail = () => {
    try {
      return readFileSync(logPath, 'utf8').trim().split('\n').slice(-3).join(' | ');
    } catch {
      return '';
    }
  };
  return new Promise((resolve, reject) => {
    let out = '';
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout!.removeAllListeners('data');
      child.stdout!.destroy();
      child.removeAllListeners('exit');
      child.unref();
      if (err) {
        try {
          if (child.pid) process.kill(child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        reject(err);
      } else resolve(child.pid!);
    };
    const timer = setTimeout(() => finish(msg.timeout(logTail())), timeoutMs);
    child.on('error', (e) => finish(msg.cannotStart(e.message)));
    child.on('exit', (code, sig) => finish(msg.exited(String(sig ?? code), logTail())));
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (/^ready$/m.test(out)) finish();
    });
  });
}
