// Servers for the lab's pods: one small process per pod namespace (server-main.js) listening on every
// TCP and UDP containerPort the pod declares. SCTP ports are skipped and reported. The process is
// detached (it outlives `podwall lab up`), its pid and start time recorded in the lab state so
// `lab down` kills it; the lab waits for its `ready` line, never sleeps. Each server also takes probe
// sessions on a unix socket in the lab's directory (`probeSocketPath`), which `lab probe` uses instead
// of starting a prober process per pod and round.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ContainerPort } from '../cluster/model.js';
import { checkNsName, mapLimit, spawnUntilReady } from './netns.js';
import { labDir, recordProcesses, type ProcessState } from './state.js';

export const SERVER_MAIN = fileURLToPath(new URL('./server-main.js', import.meta.url));

/**
 * The unix socket on which the server of the pod in namespace `ns` takes probe sessions; undefined
 * when the path would be too long for a unix socket (then probes start a prober process).
 */
export function probeSocketPath(lab: string, ns: string): string | undefined {
  checkNsName(ns);
  const p = join(labDir(lab), 'probe', `${ns}.sock`);
  return Buffer.byteLength(p) <= 100 ? p : undefined;
}

export interface ServerSpec {
  /** Pod namespace. */
  ns: string;
  /** Pod key (`namespace/name`), for messages and the state file. */
  key: string;
  /** Pod index (written in each TCP answer line). */
  idx?: number;
  ports: ContainerPort[];
}

export interface StartedServer {
  key: string;
  ns: string;
  pid: number;
  tcp: number[];
  udp: number[];
}

export interface SkippedPort {
  key: string;
  port: number;
  protocol: string;
  reason: string;
}

export interface ServersResult {
  started: StartedServer[];
  /** Ports not served (SCTP: this kernel has none; invalid ports). */
  skipped: SkippedPort[];
}

/** Which ports a pod's server listens on (pure). */
export function serverPorts(spec: ServerSpec): { tcp: number[]; udp: number[]; skipped: SkippedPort[] } {
  const tcp = new Set<number>();
  const udp = new Set<number>();
  const skipped: SkippedPort[] = [];
  for (const p of spec.ports) {
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
      skipped.push({ key: spec.key, port: p.port, protocol: p.protocol, reason: 'invalid port number' });
      continue;
    }
    if (p.protocol === 'TCP') tcp.add(p.port);
    else if (p.protocol === 'UDP') udp.add(p.port);
    else skipped.push({ key: spec.key, port: p.port, protocol: p.protocol, reason: p.protocol === 'SCTP' ? 'SCTP is not served in the lab' : `unknown protocol ${p.protocol}` });
  }
  return { tcp: [...tcp].sort((a, b) => a - b), udp: [...udp].sort((a, b) => a - b), skipped };
}

/** Starts one server process in a namespace; resolves with its pid once it printed `ready`. */
export function startServer(lab: string, spec: ServerSpec, tcp: number[], udp: number[], timeoutMs = 15_000): Promise<number> {
  checkNsName(spec.ns);
  const dir = join(labDir(lab), 'logs');
  mkdirSync(dir, { recursive: true });
  const logPath = join(dir, `server-${spec.ns}.log`);
  const args = ['netns', 'exec', spec.ns, process.execPath, SERVER_MAIN, '--lab', lab, '--id', String(spec.idx ?? '-')];
  const control = probeSocketPath(lab, spec.ns);
  if (control !== undefined) {
    mkdirSync(dirname(control), { recursive: true, mode: 0o700 });
    args.push('--control', control);
  }
  if (tcp.length) args.push('--tcp', tcp.join(','));
  if (udp.length) args.push('--udp', udp.join(','));
  return spawnUntilReady('ip', args, logPath, timeoutMs, {
    timeout: (tail) => new Error(`server for pod ${spec.key} in ${spec.ns} did not become ready within ${timeoutMs} ms ${tail}`.trim()),
    cannotStart: (m) => new Error(`server for pod ${spec.key}: cannot start: ${m}`),
    exited: (why, tail) => new Error(`server for pod ${spec.key} in ${spec.ns} exited (${why}) before ready: ${tail || '(no output)'}`),
  });
}

/**
 * Starts the servers of these pods (those with at least one TCP/UDP port), `concurrency` at a time,
 * recording each pid in the lab's state file as role `server`. On a failure the servers already
 * started stay recorded (lab down removes them) and the first error is thrown.
 */
export async function startServers(lab: string, specs: ServerSpec[], opts: { concurrency?: number; timeoutMs?: number } = {}): Promise<ServersResult> {
  const started: StartedServer[] = [];
  const skipped: SkippedPort[] = [];
  const work: { spec: ServerSpec; tcp: number[]; udp: number[] }[] = [];
  for (const spec of specs) {
    const p = serverPorts(spec);
    skipped.push(...p.skipped);
    if (p.tcp.length + p.udp.length > 0) work.push({ spec, tcp: p.tcp, udp: p.udp });
  }
  const records: Omit<ProcessState, 'startTime'>[] = [];
  try {
    await mapLimit(work, opts.concurrency ?? 16, async ({ spec, tcp, udp }) => {
      const pid = await startServer(lab, spec, tcp, udp, opts.timeoutMs);
      records.push({ pid, ns: spec.ns, role: 'server', owner: spec.key });
      started.push({ key: spec.key, ns: spec.ns, pid, tcp, udp });
    });
  } finally {
    if (records.length > 0) recordProcesses(lab, records);
  }
  started.sort((a, b) => a.key.localeCompare(b.key));
  return { started, skipped };
}
