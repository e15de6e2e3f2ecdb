// The lab: a cluster made of network namespaces (topology.ts), a server in every pod (servers.ts),
// podwall's real agent in every node namespace reading the manifests directory, and probes with real
// packets (probe.ts). `probe` waits until every agent reports that it applied the directory's current
// contents (its status file's digest), never on a sleep.
import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync, closeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadManifests } from '../cluster/manifests.js';
import { digestDir } from '../cluster/manifest-source.js';
import { formatFinding, hasErrors } from '../cluster/findings.js';
import type { ProbePort } from '../policy/ports.js';
import type { MatrixJson } from '../sim/matrix.js';
import { buildTopology, listLabs, planTopology, requireRoot, teardownTopology, type TeardownResult } from './topology.js';
import { probeSocketPath, startServers, type SkippedPort } from './servers.js';
import { probeAll, probeAllDetailed, type ProbePair } from './probe.js';
import { checkLabName, DEFAULT_LAB_NAME, labDir, readState, recordProcesses, type LabState } from './state.js';
import { familyOf } from '../cluster/model.js';
import { alive, procStartTime, run, spawnUntilReady } from './netns.js';
import { readFollowerStatus } from './follow.js';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));

export class LabError extends Error {}

/** Each node's agent serves Prometheus metrics on 127.0.0.1 of its own network namespace, this port. */
export const LAB_METRICS_PORT = 20245;

export interface UpResult {
  state: LabState;
  skippedPorts: SkippedPort[];
  warnings: string[];
}

function agentStatusFile(name: string, idx: number): string {
  return join(labDir(name), `agent-${idx}.json`);
}

/** Builds the lab from the Nodes and Pods in `dir` and starts an agent per node that follows `dir`. */
export async function labUp(o: {
  dir: string;
  name?: string;
  progress?: (s: string) => void;
  /** Start an agent per node (default true; tests may bring their own). */
  agents?: boolean;
  /** Start the follower that attaches and detaches pods as DIR changes (default true). */
  follow?: boolean;
}): Promise<UpResult> {
  requireRoot();
  const name = checkLabName(o.name ?? DEFAULT_LAB_NAME);
  const progress = o.progress ?? (() => {});
  const dir = resolve(o.dir);
  if (readState(name).ok || (await listLabs()).some((l) => l.name === name)) throw new LabError(`lab ${JSON.stringify(name)} already exists: \`podwall lab down --name ${name}\` first, or pick another --name`);
  const r = await loadManifests([dir]);
  if (hasErrors(r.findings)) throw new LabError(`the manifests in ${dir} have errors: ${r.findings.filter((f) => f.severity === 'error').map(formatFinding).join('; ')}`);
  const plan = planTopology({ nodes: [...r.store.nodes.values()], pods: [...r.store.pods.values()], labName: name, inputDir: dir });
  const warnings = [...plan.warnings];
  if (plan.allocations.length > 0) warnings.push(`${plan.allocations.length} pod(s) have no status.podIP; the lab gave them addresses, but podwall's agents (which read the manifests) treat IP-less pods as not taking part — give pods an IP in the manifests for a faithful lab`);
  progress(`building lab ${name}: ${plan.nodes.length} node(s), ${plan.pods.length} pod(s)`);
  const state = await buildTopology(plan, (p) => progress(`  ${p.phase} ${p.done}/${p.total}`));
  progress('starting a server in every pod');
  const servers = await startServers(name, plan.pods.map((p) => ({ ns: p.ns, key: p.key, idx: p.idx, ports: p.ports })));
  const records = [];
  if (o.agents !== false) progress(`starting podwall's agent in every node (${plan.nodes.length})`);
  for (const node of o.agents === false ? [] : plan.nodes) {
    const log = openSync(join(labDir(name), `agent-${node.idx}.log`), 'a');
    const child = spawn(
      'ip',
      ['netns', 'exec', node.ns, process.execPath, '--enable-source-maps', BIN, 'run', '--manifests', dir, '--hostname-override', node.name, '--status-file', agentStatusFile(name, node.idx), '--health-port', '0', '--metrics-port', String(LAB_METRICS_PORT), '--metrics-addr', '127.0.0.1', '--iptables-sync-period', '1m', '--iptables-backend', 'nft', '--log-level', 'info'],
      { detached: true, stdio: ['ignore', log, log] },
    );
    closeSync(log);
    child.unref();
    if (child.pid === undefined) throw new LabError(`could not start the agent for node ${node.name}`);
    records.push({ pid: child.pid, ns: node.ns, role: 'agent', owner: node.name });
  }
  let final = recordProcesses(name, records);
  if (o.follow !== false) {
    progress('starting the follower (pods added to or removed from DIR get attached or detached)');
    await startFollower(name);
    const st = readState(name);
    if (st.ok) final = st.state;
  }
  return { state: final, skippedPorts: servers.skipped, warnings };
}

/** Starts `podwall lab follow` detached; resolves once it recorded itself and synced DIR once. */
async function startFollower(name: string, timeoutMs = 30_000): Promise<void> {
  const logPath = join(labDir(name), 'follower.log');
  await spawnUntilReady(process.execPath, ['--enable-source-maps', BIN, 'lab', 'follow', '--name', name], logPath, timeoutMs, {
    timeout: () => new LabError(`the lab's follower did not start within ${timeoutMs / 1000}s (log: ${logPath})`),
    cannotStart: (m) => new LabError(`cannot start the lab's follower: ${m}`),
    exited: (why) => new LabError(`the lab's follower exited (${why}) before it was ready (log: ${logPath})`),
  });
}

interface AgentStatus {
  appliedVersion: number;
  manifestsDigest?: string;
  lastError?: string;
}

/** Waits until every node's agent has applied the current contents of the lab's directory. */
export async function waitForAgents(name: string, timeoutMs = 60_000): Promise<void> {
  const st = readState(name);
  if (!st.ok) throw new LabError(`lab ${JSON.stringify(name)}: ${st.error}`);
  const dir = st.state.inputDir;
  if (!dir) throw new LabError(`lab ${JSON.stringify(name)} was not built from a directory`);
  const deadline = Date.now() + timeoutMs;
  const follower = st.state.pids.find((p) => p.role === 'follower');
  const following = follower !== undefined;
  const followerLog = join(labDir(name), 'follower.log');
  for (;;) {
    // Without its follower the lab would silently keep the pods it had: say so at once.
    if (follower && !(alive(follower.pid) && (follower.startTime === undefined || procStartTime(follower.pid) === follower.startTime))) {
      throw new LabError(`lab ${JSON.stringify(name)}: its follower (pid ${follower.pid}) is not running, so pods added to or removed from ${dir} are not followed (log: ${followerLog}); rebuild the lab (lab down, lab up)`);
    }
    const want = await digestDir(dir);
    const statuses = st.state.nodes.map((n) => {
      const f = agentStatusFile(name, n.idx);
      try {
        return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as AgentStatus) : undefined;
      } catch {
        return undefined; // being replaced
      }
    });
    // The follower (when the lab has one) must have attached and detached pods for these contents too.
    const fol = following ? readFollowerStatus(name) : undefined;
    const followerOk = !following || fol?.digest === want;
    if (followerOk && fol?.error !== undefined) {
      throw new LabError(`lab ${JSON.stringify(name)}: the follower could not attach or detach pods for the current contents of ${dir}: ${fol.error} (it tries again; log: ${followerLog})`);
    }
    if (statuses.every((s) => s?.manifestsDigest === want) && followerOk) return;
    if (Date.now() > deadline) {
      const behind = st.state.nodes.flatMap((n, i) => (statuses[i]?.manifestsDigest !== want ? [`the agent of ${n.name}${statuses[i]?.lastError ? ` (${statuses[i]!.lastError})` : ''}`] : []));
      if (!followerOk) behind.push('the follower');
      throw new LabError(`lab ${JSON.stringify(name)}: the current contents of ${dir} were not applied within ${timeoutMs / 1000}s by ${behind.join(', ')} (logs in ${labDir(name)})`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Probes every ordered pair of the lab's pods on the given ports; the matrix JSON shape. */
export async function labProbe(name: string, ports: readonly ProbePort[], opts: { timeoutMs?: number } = {}): Promise<{ matrix: MatrixJson; skipped: string[]; warnings: string[] }> {
  requireRoot();
  await waitForAgents(name);
  const st = readState(name);
  if (!st.ok) throw new LabError(`lab ${JSON.stringify(name)}: ${st.error}`);
  const pods = [...st.state.pods].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const skipped = ports.filter((p) => p.protocol === 'SCTP').map((p) => `${p.port}/SCTP (this kernel has no SCTP sockets; see the simulator)`);
  const probePorts = ports.filter((p) => p.protocol !== 'SCTP');
  const pairs: ProbePair[] = [];
  const index: [number, string, string][] = [];
  for (const [pi, port] of probePorts.entries()) {
    for (const from of pods) {
      for (const to of pods) {
        const src = from.ips[0];
        const dst = src ? to.ips.find((ip) => familyOf(ip) === familyOf(src)) : undefined;
        if (!dst) continue;
        pairs.push({ fromNs: from.ns, toIp: dst, port: port.port, protocol: port.protocol as 'TCP' | 'UDP' });
        index.push([pi, from.key, to.key]);
      }
    }
  }
  await forgetConnections(st.state.nodes.map((n) => n.ns));
  const timeoutMs = opts.timeoutMs ?? 1000;
  // Through each pod's server (no process to start per round); pods without one get a prober.
  const socketFor = (ns: string) => probeSocketPath(name, ns);
  const detailed = await probeAllDetailed(pairs, { timeoutMs, socketFor });
  const results = detailed.map((r) => r.ok);
  // podwall REJECTs, and the nodes do not rate-limit the ICMP errors (topology.ts), so a denied TCP
  // connection is refused at once; a TCP *timeout* means a busy machine missed the short deadline.
  // Those get a second, slower chance (a timeout can only make an allowed pair look denied, never
  // the reverse).
  const retry = detailed.flatMap((r, i) => (!r.ok && pairs[i]!.protocol === 'TCP' && /timeout/.test(r.error ?? '') ? [i] : []));
  if (retry.length > 0) {
    const again = await probeAll(retry.map((i) => pairs[i]!), { timeoutMs: timeoutMs * 3, socketFor });
    retry.forEach((i, j) => (results[i] = again[j]!));
  }
  const matrix: MatrixJson = { pods: pods.map((p) => p.key), probes: probePorts.map((p) => ({ port: p.port, protocol: p.protocol, allowed: Object.fromEntries(pods.map((f) => [f.key, Object.fromEntries(pods.map((t) => [t.key, false]))])) })) };
  results.forEach((ok, i) => {
    const [pi, from, to] = index[i]!;
    matrix.probes[pi]!.allowed[from]![to] = ok;
  });
  return { matrix, skipped, warnings: readFollowerStatus(name)?.warnings ?? [] };
}

/**
 * A matrix is about new connections. A UDP probe answered in an earlier round leaves a conntrack
 * entry in its node for 30 s or more; a new probe that happens to get the same ephemeral source port
 * would be matched as ESTABLISHED and pass whatever the policies now say (as connections opened
 * before a policy change do in any cluster). So each round starts with the nodes' tables empty.
 */
async function forgetConnections(nodeNamespaces: readonly string[]): Promise<void> {
  await Promise.all(
    nodeNamespaces.flatMap((ns) =>
      (['ipv4', 'ipv6'] as const).map(async (f) => {
        const r = await run('conntrack', ['-F', '-f', f], { ns, allowFail: true }).catch((e: Error) => ({ code: -1, stderr: e.message }));
        if (r.code !== 0) throw new LabError(`could not empty the connection tracking table of ${ns} (${f}): ${r.stderr.trim() || `exit ${r.code}`} — is conntrack (conntrack-tools) installed?`);
      }),
    ),
  );
}

export async function labDown(name: string): Promise<TeardownResult> {
  return teardownTopology(checkLabName(name));
}

export { listLabs };
