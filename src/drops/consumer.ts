// The NFLOG consumer: Debian's tcpdump reading the `nflog:GROUP` interface and writing a pcap stream
// to stdout (`tcpdump -i nflog:100 -U -w -`), parsed by nflog-pcap.ts. No netlink code of our own.
// One reader per group per network namespace is the kernel's rule: a second one is refused, and that
// is said in one line (ulogd2? another `podwall drops`?).
import { spawn, type ChildProcess } from 'node:child_process';
import { onPath } from '../dataplane/exec.js';
import { NflogPcapReader, PcapError, type NflogEntry } from './nflog-pcap.js';

export class CaptureError extends Error {}

export interface CaptureOptions {
  group?: number;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** How long tcpdump may take to bind the group (default 10 s). */
  startTimeoutMs?: number;
  /** The tcpdump binary (tests); default `tcpdump` from PATH. */
  tcpdump?: string;
  exists?: (name: string) => boolean;
}

export interface Capture {
  /** Stops tcpdump (SIGTERM to its pid) and resolves once it exited. */
  stop(): Promise<void>;
  /** Resolves when tcpdump exits: by stop(), or on its own with an error. */
  readonly done: Promise<{ error?: string; droppedByKernel?: number }>;
  readonly pid: number;
}

const NETNS_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** One line for what tcpdump printed when it could not read the group. */
export function describeTcpdumpError(stderr: string, group: number, netns?: string): string {
  const where = netns ? ` in network namespace ${netns}` : '';
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/^listening on /.test(l) && !/^tcpdump: listening on /.test(l));
  const text = lines.join(' | ');
  if (/Can't listen on group/i.test(text)) {
    return `NFLOG group ${group} is already read by another process${where} (the kernel allows one reader per group: ulogd2, a tcpdump -i nflog:${group}, or another podwall drops?)`;
  }
  if (/Operation not permitted|permission denied|You don't have permission/i.test(text)) return `reading NFLOG group ${group}${where} needs root (CAP_NET_ADMIN): ${text}`;
  if (/No such device|not supported|doesn't support|unknown interface|nflog/i.test(text) && /nflog/i.test(text)) return `tcpdump cannot open nflog:${group}${where}: ${text} (is this tcpdump built with libpcap's netfilter support, as Debian's is?)`;
  return `tcpdump could not read nflog:${group}${where}: ${text || 'it exited without a message'}`;
}

/** Throws the one line naming the Debian package when tcpdump (or ip, for a namespace) is missing. */
export function requireConsumer(opts: { netns?: string; exists?: (name: string) => boolean; tcpdump?: string } = {}): void {
  const exists = opts.exists ?? onPath;
  if (opts.tcpdump === undefined && !exists('tcpdump')) {
    throw new CaptureError('podwall drops reads NFLOG with tcpdump, which is not installed: install the Debian package tcpdump (apt-get install tcpdump)');
  }
  if (opts.netns !== undefined && !exists('ip')) throw new CaptureError('ip (iproute2) is not installed; reading a network namespace needs it');
}

/**
 * Starts tcpdump on the group and calls `onEntry` for each NFLOG message. Resolves once tcpdump has
 * bound the group (so nothing logged afterwards is missed); rejects with one line otherwise.
 */
export async function startCapture(onEntry: (e: NflogEntry) => void, opts: CaptureOptions = {}): Promise<Capture> {
  const group = opts.group ?? 100;
  const exists = opts.exists ?? onPath;
  const bin = opts.tcpdump ?? 'tcpdump';
  if (!Number.isInteger(group) || group < 0 || group > 65535) throw new CaptureError(`NFLOG group ${group} is not 0-65535`);
  if (opts.netns !== undefined && !NETNS_NAME.test(opts.netns)) throw new CaptureError(`invalid network namespace name ${JSON.stringify(opts.netns)}`);
  requireConsumer({ ...opts, exists });
  // -U: a packet is written as soon as it arrives (no buffering): entries appear within a second.
  // No small -s: libpcap sizes its receive buffer by the snapshot length, and the kernel batches NFLOG
  // messages into one datagram (up to 1 s or 100 messages): a short buffer silently loses all but
  // the first of a batch (measured: -s 256 kept 4 of 20, the default all 20).
  const args = ['-i', `nflog:${group}`, '-U', '-w', '-', '--immediate-mode'];
  const argv = opts.netns !== undefined ? ['netns', 'exec', opts.netns, bin, ...args] : args;
  let child: ChildProcess;
  try {
    child = spawn(opts.netns !== undefined ? 'ip' : bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new CaptureError(`cannot start tcpdump: ${(e as Error).message}`);
  }
  const reader = new NflogPcapReader();
  let stderr = '';
  let streamError: string | undefined;
  let settled = false;
  let exited = false;
  let stopping = false;
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill('SIGTERM');
      reject(new CaptureError(`tcpdump did not start reading nflog:${group} within ${(opts.startTimeoutMs ?? 10_000) / 1000}s${stderr ? `: ${stderr.trim()}` : ''}`));
    }, opts.startTimeoutMs ?? 10_000);
    child.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (!settled && /listening on nflog/i.test(stderr)) {
        settled = true;
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new CaptureError((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'tcpdump is not installed: install the Debian package tcpdump (apt-get install tcpdump)' : `cannot start tcpdump: ${e.message}`));
    });
    child.on('exit', () => {
      exited = true;
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new CaptureError(describeTcpdumpError(stderr, group, opts.netns)));
    });
  });
  child.stdout!.on('data', (b: Buffer) => {
    if (streamError) return;
    try {
      for (const e of reader.push(b)) onEntry(e);
    } catch (e) {
      streamError = e instanceof PcapError ? `tcpdump's output: ${e.message}` : (e as Error).message;
      child.kill('SIGTERM');
    }
  });
  const done = new Promise<{ error?: string; droppedByKernel?: number }>((resolve) => {
    child.on('close', (code, signal) => {
      const dropped = /(\d+) packets? dropped by kernel/.exec(stderr);
      const out: { error?: string; droppedByKernel?: number } = {};
      if (dropped) out.droppedByKernel = Number(dropped[1]);
      if (streamError) out.error = streamError;
      else if (!stopping && (code !== 0 || signal)) out.error = describeTcpdumpError(stderr, group, opts.netns);
      resolve(out);
    });
  });
  await ready;
  return {
    pid: child.pid!,
    done,
    stop: async () => {
      stopping = true;
      if (!exited) child.kill('SIGTERM');
      await done;
    },
  };
}
