// Running iptables/ipset binaries: payloads go to stdin, never through a shell. With a network
// namespace every command is prefixed with `ip netns exec NS` (tests and the lab always use one).
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export class ExecError extends Error {
  readonly command: string;
  readonly code: number;
  readonly stderr: string;
  constructor(command: string, code: number, stderr: string) {
    super(`${command} exited with ${code}: ${stderr.trim().split('\n').filter((l) => l.trim() !== '').slice(0, 6).join(' | ') || '(no output)'}`);
    this.name = 'ExecError';
    this.command = command;
    this.code = code;
    this.stderr = stderr;
  }
}

/** Runs a command with optional stdin; resolves with its output whatever the exit code. */
export type Runner = (cmd: string, args: string[], input?: string) => Promise<ExecResult>;

const NETNS_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * `onSpawn` learns the pid of every command started (with `ip netns exec` the command keeps that pid):
 * the drift watcher tells podwall's own ruleset changes from others' by the pid `nft monitor` names.
 */
export function makeRunner(netns?: string, hooks: { onSpawn?: (pid: number, cmd: string) => void } = {}): Runner {
  if (netns !== undefined && !NETNS_NAME.test(netns)) throw new Error(`invalid network namespace name ${JSON.stringify(netns)}`);
  return (cmd, args, input) =>
    new Promise((resolve, reject) => {
      const argv = netns !== undefined ? ['netns', 'exec', netns, cmd, ...args] : args;
      const bin = netns !== undefined ? 'ip' : cmd;
      const child = spawn(bin, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
      if (child.pid !== undefined) hooks.onSpawn?.(child.pid, cmd);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e) => reject(new ExecError(`${cmd} ${args.join(' ')}`, -1, (e as Error).message)));
      child.on('close', (code) => resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code: code ?? -1 }));
      child.stdin.on('error', () => {
        /* the process may exit before reading all input; its exit code tells */
      });
      child.stdin.end(input ?? '');
    });
}

/** Runs and throws ExecError on a non-zero exit. */
export async function runChecked(run: Runner, cmd: string, args: string[], input?: string): Promise<string> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) throw new ExecError(`${cmd} ${args.join(' ')}`.trim(), r.code, r.stderr || r.stdout);
  return r.stdout;
}

/** Whether an executable of this name is on PATH (binaries are the same inside a namespace). */
export function onPath(name: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter).concat(['/usr/sbin', '/sbin'])) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

/** The 1-based payload line an iptables-restore / ipset restore error names, if any. */
export function failingLine(stderr: string): number | undefined {
  const m = /Error occurred at line:\s*(\d+)/i.exec(stderr) ?? /line\s+(\d+)\s+failed/i.exec(stderr) ?? /Error in line\s+(\d+)/i.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

/**
 * The system's binary of this name: the standard sbin/bin directories first, then PATH without
 * node_modules (an npm package installs its own `nft` there: @vercel/nft, a file tracer).
 */
export function systemBinary(name: string): string | undefined {
  const dirs = ['/usr/sbin', '/sbin', '/usr/bin', '/bin', ...(process.env.PATH ?? '').split(delimiter).filter((d) => d && !d.includes('node_modules'))];
  for (const dir of dirs) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      /* next */
    }
  }
  return undefined;
}
