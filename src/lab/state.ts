// The lab's state on disk: `<labs dir>/<name>/state.json`, labs dir `/run/podwall/labs` unless
// PODWALL_LAB_DIR says otherwise. Written atomically (temp file + rename), so a crash leaves either the
// old or the new state. Teardown never depends on it: namespaces are found by their `pwl-<name>-` names.
import type { ContainerPort } from '../cluster/model.js';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { procStartTime } from './netns.js';

export const STATE_VERSION = 1;

/** Lab names: [a-z0-9-], 1..12 characters, starting and ending with a letter or digit. */
export const LAB_NAME = /^[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?$/;
export const DEFAULT_LAB_NAME = 'default';

export function checkLabName(name: string): string {
  if (typeof name !== 'string' || !LAB_NAME.test(name)) {
    throw new Error(`invalid lab name ${JSON.stringify(name)}: use 1-12 characters a-z, 0-9 and '-' (not at either end)`);
  }
  return name;
}

export interface NodeState {
  idx: number;
  /** The Kubernetes node name (any text; never used in kernel names). */
  name: string;
  ns: string;
  podCIDRs: string[];
  /** Addresses of the bridge `kube-bridge` (first host of each pod CIDR). */
  gateways: string[];
  /** The node's addresses on the node network (its `eth0`). */
  nodeIPs: string[];
}

export interface PodState {
  idx: number;
  /** `namespace/name`. */
  key: string;
  namespace: string;
  name: string;
  /** Name of the node it is attached to. */
  node: string;
  ns: string;
  ips: string[];
  /** IPs the lab chose because the pod had none (or a conflicting one). */
  allocatedIPs: string[];
  /** The status IPs its manifest gave when it was attached (absent in older states: `ips` minus `allocatedIPs`). */
  requestedIPs?: string[];
  /** Host-side veth name in the node namespace. */
  hostVeth: string;
  /** The container ports its server serves (to notice a change). */
  ports?: ContainerPort[];
}

export interface ProcessState {
  pid: number;
  ns: string;
  /** `server`, `agent`, ... */
  role: string;
  /** The pod or node key it belongs to. */
  owner?: string;
  /** /proc/PID/stat start time, so teardown never kills a reused pid. */
  startTime?: string;
}

export interface LabState {
  version: number;
  name: string;
  createdAt: string;
  /** The manifests directory the lab was built from, when any. */
  inputDir?: string;
  fabricNs: string;
  /** Every namespace the lab made or is about to make (recorded before creation). */
  namespaces: string[];
  nodes: NodeState[];
  pods: PodState[];
  pids: ProcessState[];
  warnings: string[];
  /** Free-form additions by other layers (agent status files, generations, ...). */
  extra?: Record<string, unknown>;
}

export function labsDir(): string {
  return process.env.PODWALL_LAB_DIR && process.env.PODWALL_LAB_DIR !== '' ? process.env.PODWALL_LAB_DIR : '/run/podwall/labs';
}

export function labDir(name: string): string {
  return join(labsDir(), checkLabName(name));
}

export function statePath(name: string): string {
  return join(labDir(name), 'state.json');
}

/** Writes the state atomically (same-directory temp file, fsync, rename). */
export function writeState(state: LabState): void {
  const dir = labDir(state.name);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const final = join(dir, 'state.json');
  const tmp = join(dir, `.state.json.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, JSON.stringify(state, null, 2) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, final);
}

export type ReadStateResult = { ok: true; state: LabState } | { ok: false; missing: boolean; error: string };

/** Reads and shape-checks a lab's state; never throws. */
export function readState(name: string): ReadStateResult {
  let text: string;
  const path = statePath(name);
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    return { ok: false, missing, error: missing ? `lab ${name}: no state file at ${path}` : `lab ${name}: cannot read ${path}: ${(e as Error).message}` };
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { ok: false, missing: false, error: `lab ${name}: ${path} is not valid JSON: ${(e as Error).message}` };
  }
  const s = v as Partial<LabState>;
  if (
    typeof v !== 'object' || v === null || s.version !== STATE_VERSION || s.name !== name || !Array.isArray(s.namespaces) || !Array.isArray(s.nodes) || !Array.isArray(s.pods) || !Array.isArray(s.pids) ||
    typeof s.fabricNs !== 'string'
  ) {
    return { ok: false, missing: false, error: `lab ${name}: ${path} is not a podwall lab state (version ${STATE_VERSION})` };
  }
  if (!Array.isArray(s.warnings)) s.warnings = [];
  return { ok: true, state: s as LabState };
}

/** Read-modify-write (synchronous, so atomic within this process). Throws when there is no valid state. */
export function updateState(name: string, fn: (s: LabState) => void): LabState {
  const r = readState(name);
  if (!r.ok) throw new Error(r.error);
  fn(r.state);
  writeState(r.state);
  return r.state;
}

/** Removes the lab's directory (state, logs). */
export function removeLabDir(name: string): void {
  rmSync(labDir(name), { recursive: true, force: true });
}

/** Lab names that have a directory under the labs dir. */
export function labDirNames(): string[] {
  try {
    return readdirSync(labsDir(), { withFileTypes: true })
      .filter((d) => d.isDirectory() && LAB_NAME.test(d.name))
      .map((d) => d.name);
  } catch {
    return [];
  }
}

/**
 * Records processes the lab must kill at teardown (agents, servers, ...), with their start time so a
 * later teardown never kills an unrelated process that reused the pid.
 */
export function recordProcesses(name: string, procs: Omit<ProcessState, 'startTime'>[]): LabState {
  return updateState(name, (s) => {
    for (const p of procs) {
      const startTime = procStartTime(p.pid);
      s.pids.push({ ...p, ...(startTime !== undefined ? { startTime } : {}) });
    }
  });
}
