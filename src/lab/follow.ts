// The lab follows its manifests directory: pods added there get a namespace, a veth into their
// node's bridge, an address, routes, static neighbour entries and a server; pods removed there lose
// all of it. One follower process per lab (started by `lab up`, recorded in the state, killed by `lab
// down`) is the only writer of the state file after `lab up` returns. It publishes the digest of the
// directory it has built for, and `lab probe` waits for it as it waits for the agents.
//
// Nodes are fixed at `lab up`: a pod on a node the lab does not have is reported, not attached.
// Existing pods keep their index, namespace, MACs and addresses; indexes are never reused.
import { writeFileSync, renameSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerPort, Family } from '../cluster/model.js';
import { ClusterStore } from '../cluster/store.js';
import { ManifestSource } from '../cluster/manifest-source.js';
import { bitsOf, cidrContainsIP, formatCIDR, formatIP, parseCIDR, parseIP, type Cidr } from '../net/ip.js';
import { BRIDGE, labMac, MAC_KIND, NODE_LINK, planTopology, podHostVeth, podNsName, POD_LINK, type PodPlan, type TopologyPlan } from './topology.js';
import { ipBatch, killAndWait, netnsPids, run } from './netns.js';
import { labDir, readState, recordProcesses, updateState, type LabState, type NodeState, type PodState } from './state.js';
import { probeSocketPath, startServers } from './servers.js';

export interface FollowerStatus {
  /** Digest of the manifests directory the topology reflects. */
  digest: string;
  pods: number;
  added: string[];
  removed: string[];
  warnings: string[];
  error?: string;
  at: string;
}

export function followerStatusFile(name: string): string {
  return join(labDir(name), 'follower.json');
}

export function readFollowerStatus(name: string): FollowerStatus | undefined {
  const f = followerStatusFile(name);
  try {
    return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as FollowerStatus) : undefined;
  } catch {
    return undefined; // being replaced
  }
}

function writeFollowerStatus(name: string, s: FollowerStatus): void {
  const f = followerStatusFile(name);
  const tmp = `${f}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(s, null, 2) + '\n');
  renameSync(tmp, f);
}

// ---------------------------------------------------------------------------------------------
// Planning (pure).

export interface PodChanges {
  /** Pods to attach, with their final index, addresses and MACs. */
  add: PodPlan[];
  /** Pods to detach (removed from DIR, or moved / readdressed / given other ports: removed, then added). */
  remove: PodState[];
  warnings: string[];
}

const famOf = (ip: string): Family => (ip.includes(':') ? 'ipv6' : 'ipv4');
const sameList = (a: readonly string[], b: readonly string[]) => {
  if (a.length !== b.length) return false;
  const sb = [...b].sort();
  return [...a].sort().every((x, i) => x === sb[i]);
};
const canon = (ip: string) => {
  const x = parseIP(ip);
  return x ? formatIP(x.family, x.value) : ip;
};
const portsKey = (ps: readonly ContainerPort[] | undefined) => JSON.stringify([...(ps ?? [])].map((p) => `${p.port}/${p.protocol}/${p.name ?? ''}`).sort());

function nodeCidrs(n: NodeState): Cidr[] {
  return n.podCIDRs.flatMap((t) => {
    const r = parseCIDR(t);
    return r.ok ? [r.cidr] : [];
  });
}

/** Whether an address of a pod is inside its node's pod CIDR (bridged) or attached with a host route. */
export function isOffLink(node: NodeState, ip: string): boolean {
  const p = parseIP(ip);
  return !p || !nodeCidrs(node).some((c) => cidrContainsIP(c, p));
}

/**
 * What must change in a running lab for it to hold the pods of `desired` (a plan of the directory's
 * current contents). Existing pods that did not change stay as they are. Addresses follow lab up's
 * rules: a pod's own status IPs (the first of each of the lab's families) unless another pod holds
 * one or it is a gateway, node, network or broadcast address; else, and for pods without, a free one
 * of its node. A pod on a substitute address is attached again with its own once that is free.
 */
export function planPodChanges(state: LabState, desired: TopologyPlan, nextIdx: number): PodChanges {
  const warnings: string[] = [];
  const nodes = new Map(state.nodes.map((n) => [n.name, n]));
  // The lab's families are fixed at lab up (the nodes' pod CIDRs), whatever DIR holds now.
  const families = (['ipv4', 'ipv6'] as Family[]).filter((f) => state.nodes.some((n) => nodeCidrs(n).some((c) => c.family === f)));
  // A pod without a nodeName goes where lab up put such pods: the lab's first node.
  const placed = new Set(desired.placements.map((x) => x.pod));
  const want = new Map<string, PodPlan>();
  for (const d of desired.pods) {
    const p = placed.has(d.key) && state.nodes.length > 0 ? { ...d, node: state.nodes[0]!.name } : d;
    if (!nodes.has(p.node)) {
      warnings.push(`pod ${p.key}: node ${JSON.stringify(p.node)} is not in the lab (nodes are fixed at lab up): not attached; rebuild the lab to add nodes`);
      continue;
    }
    want.set(p.key, p);
  }
  // What a pod asks for (its manifest), and what an attached pod was attached for.
  const asksFor = (p: PodPlan) => p.requestedIPs.filter((ip) => families.includes(famOf(ip)));
  const attachedFor = (p: PodState) => p.requestedIPs?.filter((ip) => families.includes(famOf(ip))) ?? p.ips.filter((ip) => !p.allocatedIPs.includes(ip));

  // As at lab up: gateways, node addresses, and each IPv4 pod CIDR's network and broadcast address.
  const reserved = new Set<string>();
  for (const n of state.nodes) {
    for (const g of n.gateways) reserved.add(canon(g));
    for (const a of n.nodeIPs) reserved.add(canon(a));
    for (const c of nodeCidrs(n)) {
      reserved.add(formatIP(c.family, c.addr));
      if (c.family === 'ipv4') reserved.add(formatIP('ipv4', c.addr + (1n << BigInt(32 - c.prefix)) - 1n));
    }
  }

  const remove: PodState[] = [];
  const kept: PodState[] = [];
  for (const cur of state.pods) {
    const w = want.get(cur.key);
    if (!w || w.node !== cur.node || !sameList(asksFor(w), attachedFor(cur)) || (cur.ports !== undefined && portsKey(w.ports) !== portsKey(cur.ports))) remove.push(cur);
    else kept.push(cur);
  }
  // A kept pod on a substitute address gets its own back once no other pod holds it.
  const holders = new Map<string, string>();
  for (const p of kept) for (const ip of p.ips) holders.set(ip, p.key);
  for (const cur of [...kept]) {
    const asked = asksFor(want.get(cur.key)!);
    const missing = asked.filter((ip) => !cur.ips.includes(ip));
    if (missing.length > 0 && missing.every((ip) => !reserved.has(ip) && (holders.get(ip) ?? cur.key) === cur.key)) {
      remove.push(cur);
      kept.splice(kept.indexOf(cur), 1);
      for (const ip of cur.ips) holders.delete(ip);
    }
  }
  const used = new Set(holders.keys());
  // Addresses other pods ask for by status IP: not handed out to an IP-less pod.
  const asked = new Set<string>();
  for (const p of want.values()) for (const ip of asksFor(p)) asked.add(ip);

  const allocate = (node: NodeState, family: Family): string | undefined => {
    const c = nodeCidrs(node).find((x) => x.family === family);
    if (!c) return undefined;
    const size = 1n << BigInt(bitsOf(family) - c.prefix);
    const last = family === 'ipv4' && c.prefix < 31 ? c.addr + size - 2n : c.addr + size - 1n;
    for (let v = c.addr + 2n; v <= last; v++) {
      const ip = formatIP(family, v);
      if (!used.has(ip) && !reserved.has(ip) && !asked.has(ip)) return ip;
    }
    return undefined;
  };

  const inputWarnings = new Map<string, string[]>();
  for (const w of desired.podInputWarnings) inputWarnings.set(w.pod, [...(inputWarnings.get(w.pod) ?? []), w.text]);
  const keptKeys = new Set(kept.map((p) => p.key));
  const add: PodPlan[] = [];
  let idx = nextIdx;
  for (const p of [...want.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    if (keptKeys.has(p.key)) continue;
    const node = nodes.get(p.node)!;
    warnings.push(...(inputWarnings.get(p.key) ?? []));
    for (const ip of p.requestedIPs) if (!families.includes(famOf(ip))) warnings.push(`pod ${p.key}: IP ${ip} is ${famOf(ip) === 'ipv6' ? 'IPv6' : 'IPv4'}, which the lab does not have (its families are fixed at lab up), ignored`);
    const addrs: PodPlan['addrs'] = [];
    const allocated: string[] = [];
    const own = asksFor(p);
    const wanted = own.length > 0 ? own.map((ip) => ({ family: famOf(ip), ip, own: true })) : families.map((family) => ({ family, ip: '', own: false }));
    for (const a of wanted) {
      let ip = a.ip;
      const own = a.own;
      if (!own || used.has(ip) || reserved.has(ip)) {
        const fresh = allocate(node, a.family);
        if (!fresh) {
          warnings.push(`pod ${p.key}: node ${node.name} has no free ${a.family} address left; ${own ? `IP ${ip} is taken, ` : ''}address dropped`);
          continue;
        }
        warnings.push(
          own
            ? `pod ${p.key}: IP ${ip} ${used.has(ip) ? 'is already used in the lab' : 'is a gateway, node or network address in the lab'}; the lab gives it ${fresh}`
            : `pod ${p.key}: no status.podIP; the lab gives it ${fresh}, but the agents (which read the manifests) do not know that address: give pods an IP in the manifests for a faithful lab`,
        );
        ip = fresh;
        allocated.push(fresh);
      }
      used.add(ip);
      const offLink = isOffLink(node, ip);
      const cidr = nodeCidrs(node).find((c) => c.family === a.family);
      if (offLink) warnings.push(`pod ${p.key}: IP ${ip} is outside node ${node.name}'s pod CIDR${cidr ? ` ${formatCIDR(cidr)}` : 's'}; attached with a host route (traffic to it is routed, not bridged)`);
      addrs.push({ family: a.family, ip, prefix: offLink || !cidr ? bitsOf(a.family) : cidr.prefix, offLink });
    }
    if (addrs.length === 0) {
      warnings.push(`pod ${p.key}: no address: not attached`);
      continue;
    }
    const i = idx++;
    add.push({
      ...p,
      idx: i,
      nodeIdx: node.idx,
      ns: podNsName(state.name, i),
      hostVeth: podHostVeth(i),
      mac: labMac(state.name, MAC_KIND.podEth, i),
      hostMac: labMac(state.name, MAC_KIND.podHostVeth, i),
      addrs,
      ips: addrs.map((a) => a.ip),
      allocatedIPs: allocated,
      requestedIPs: own,
    });
  }
  return { add, remove, warnings };
}

/**
 * What stays true of attached pods on addresses the lab chose (said again after every change, as
 * `lab probe` prints the follower's warnings): the agents, reading the manifests, do not know them.
 */
export function standingWarnings(pods: readonly PodState[]): string[] {
  const out: string[] = [];
  for (const p of pods) {
    if (p.allocatedIPs.length === 0) continue;
    const asked = p.requestedIPs ?? p.ips.filter((ip) => !p.allocatedIPs.includes(ip));
    const gave = p.allocatedIPs.join(', ');
    out.push(
      asked.length === 0
        ? `pod ${p.key}: no status.podIP; the lab gave it ${gave}, but the agents (which read the manifests) do not know that address: give pods an IP in the manifests for a faithful lab`
        : `pod ${p.key}: its IP ${asked.filter((ip) => !p.ips.includes(ip)).join(', ')} cannot be used in the lab (another pod holds it, or it is a gateway, node or network address), so it runs on ${gave}, which the agents (which read the manifests) do not know`,
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Kernel commands (pure).

const hostPrefix = (ip: string) => `${ip}/${ip.includes(':') ? 128 : 32}`;

export interface Commands {
  /** `ip` argv lists per namespace (`ip -batch` in each). */
  perNs: Map<string, string[][]>;
}

function push(m: Map<string, string[][]>, ns: string, c: string[]): void {
  let l = m.get(ns);
  if (!l) m.set(ns, (l = []));
  l.push(c);
}

/** What attaching `pod` changes: its node (veth, neighbour, host route), other nodes (routes to off-link IPs), its namespace, its same-node neighbours. */
export function attachCommands(state: LabState, pod: PodPlan): Commands {
  const perNs = new Map<string, string[][]>();
  const node = state.nodes.find((n) => n.idx === pod.nodeIdx)!;
  const bridgeMac = labMac(state.name, MAC_KIND.kubeBridge, node.idx);
  push(perNs, node.ns, ['link', 'add', pod.hostVeth, 'address', pod.hostMac, 'type', 'veth', 'peer', 'name', POD_LINK, 'address', pod.mac, 'netns', pod.ns]);
  push(perNs, node.ns, ['link', 'set', pod.hostVeth, 'master', BRIDGE]);
  push(perNs, node.ns, ['link', 'set', pod.hostVeth, 'up']);
  for (const a of pod.addrs) {
    if (a.offLink) push(perNs, node.ns, ['route', 'replace', hostPrefix(a.ip), 'dev', BRIDGE]);
    push(perNs, node.ns, ['neigh', 'replace', a.ip, 'lladdr', pod.mac, 'dev', BRIDGE, 'nud', 'permanent']);
  }
  for (const other of state.nodes) {
    if (other.idx === node.idx) continue;
    for (const a of pod.addrs) {
      if (!a.offLink) continue;
      const via = node.nodeIPs.find((x) => famOf(x) === a.family);
      if (via) push(perNs, other.ns, ['route', 'replace', hostPrefix(a.ip), 'via', via, 'dev', NODE_LINK]);
    }
  }
  push(perNs, pod.ns, ['link', 'set', 'lo', 'up']);
  for (const a of pod.addrs) push(perNs, pod.ns, ['addr', 'add', `${a.ip}/${a.prefix}`, 'dev', POD_LINK, ...(a.family === 'ipv6' ? ['nodad'] : [])]);
  push(perNs, pod.ns, ['link', 'set', POD_LINK, 'up']);
  for (const a of pod.addrs) {
    const gw = node.gateways.find((g) => famOf(g) === a.family);
    if (!gw) continue;
    push(perNs, pod.ns, ['neigh', 'replace', gw, 'lladdr', bridgeMac, 'dev', POD_LINK, 'nud', 'permanent']);
    push(perNs, pod.ns, ['route', 'add', a.family === 'ipv4' ? '0.0.0.0/0' : '::/0', 'via', gw, 'dev', POD_LINK, ...(a.offLink ? ['onlink'] : [])]);
    if (a.offLink) continue;
    for (const q of state.pods) {
      if (q.node !== node.name || q.key === pod.key) continue;
      const qMac = labMac(state.name, MAC_KIND.podEth, q.idx);
      for (const qip of q.ips) {
        if (famOf(qip) !== a.family || isOffLink(node, qip)) continue;
        push(perNs, pod.ns, ['neigh', 'replace', qip, 'lladdr', qMac, 'dev', POD_LINK, 'nud', 'permanent']);
        push(perNs, q.ns, ['neigh', 'replace', a.ip, 'lladdr', pod.mac, 'dev', POD_LINK, 'nud', 'permanent']);
      }
    }
  }
  return { perNs };
}

/** What detaching `pod` leaves to clean outside its own namespace (which is deleted whole). */
export function detachCommands(state: LabState, pod: PodState): Commands {
  const perNs = new Map<string, string[][]>();
  const node = state.nodes.find((n) => n.name === pod.node);
  if (!node) return { perNs };
  for (const ip of pod.ips) {
    push(perNs, node.ns, ['neigh', 'del', ip, 'dev', BRIDGE]);
    if (isOffLink(node, ip)) {
      push(perNs, node.ns, ['route', 'del', hostPrefix(ip), 'dev', BRIDGE]);
      for (const other of state.nodes) if (other.idx !== node.idx) push(perNs, other.ns, ['route', 'del', hostPrefix(ip)]);
    } else {
      for (const q of state.pods) if (q.node === node.name && q.key !== pod.key) push(perNs, q.ns, ['neigh', 'del', ip, 'dev', POD_LINK]);
    }
  }
  return { perNs };
}

// ---------------------------------------------------------------------------------------------
// Applying (root).

export interface SyncResult {
  added: string[];
  removed: string[];
  warnings: string[];
}

/** Brings a running lab's pods in line with the objects in `store`. */
export async function syncPods(name: string, store: ClusterStore): Promise<SyncResult> {
  const st = readState(name);
  if (!st.ok) throw new Error(st.error);
  const state = st.state;
  const desired = planTopology({ nodes: [...store.nodes.values()], pods: [...store.pods.values()], labName: name });
  // Indexes (namespace names, MACs) are never reused within a lab.
  const nextIdx = Math.max(0, ...state.pods.map((p) => p.idx + 1), Number(state.extra?.podIndexesUsed ?? 0) || 0);
  const ch = planPodChanges(state, desired, nextIdx);
  const changing = new Set([...ch.add, ...ch.remove].map((p) => p.key));
  const res: SyncResult = { added: [], removed: [], warnings: [...standingWarnings(state.pods.filter((p) => !changing.has(p.key))), ...ch.warnings] };
  if (ch.add.length === 0 && ch.remove.length === 0) return res;

  // Detach first (a readdressed pod is removed, then added).
  for (const pod of ch.remove) {
    const cmds = detachCommands(state, pod);
    const pids = await netnsPids(pod.ns).catch(() => []);
    await killAndWait(pids);
    await ipBatch([['netns', 'del', pod.ns]], { force: true });
    const sock = probeSocketPath(name, pod.ns);
    if (sock !== undefined) rmSync(sock, { force: true });
    for (const [ns, list] of cmds.perNs) await ipBatch(list, { ns, force: true });
    state.pods = state.pods.filter((p) => p.key !== pod.key);
    state.namespaces = state.namespaces.filter((n) => n !== pod.ns);
    state.pids = state.pids.filter((p) => p.ns !== pod.ns);
    res.removed.push(pod.key);
  }
  const maxIdx = Math.max(nextIdx, ...ch.add.map((p) => p.idx + 1));
  updateState(name, (s) => {
    s.pods = state.pods;
    s.pids = s.pids.filter((p) => p.role !== 'server' || state.pods.some((q) => q.ns === p.ns));
    // Recorded before they exist, so an interrupted attach is still torn down.
    s.namespaces = [...state.namespaces, ...ch.add.map((p) => p.ns)];
    s.extra = { ...(s.extra ?? {}), podIndexesUsed: maxIdx };
  });

  if (ch.add.length > 0) {
    await ipBatch(ch.add.map((p) => ['netns', 'add', p.ns]));
    for (const pod of ch.add) {
      const view: LabState = { ...state, pods: state.pods };
      const cmds = attachCommands(view, pod);
      // Node side first (the veth is created there), then the pod, then its neighbours.
      const order = [state.nodes.find((n) => n.idx === pod.nodeIdx)!.ns, pod.ns];
      try {
        for (const ns of order) if (cmds.perNs.has(ns)) await ipBatch(cmds.perNs.get(ns)!, { ns });
        for (const [ns, list] of cmds.perNs) if (!order.includes(ns)) await ipBatch(list, { ns });
      } catch (e) {
        // A half-attached pod is not left behind (its veth goes with its namespace); the next
        // attempt gives it a fresh index.
        await ipBatch([['netns', 'del', pod.ns]], { force: true }).catch(() => undefined);
        throw new Error(`attaching pod ${pod.key}: ${(e as Error).message}`);
      }
      const ps: PodState = { idx: pod.idx, key: pod.key, namespace: pod.namespace, name: pod.name, node: pod.node, ns: pod.ns, ips: pod.ips, allocatedIPs: pod.allocatedIPs, requestedIPs: pod.requestedIPs, hostVeth: pod.hostVeth, ports: pod.ports };
      state.pods.push(ps);
      updateState(name, (s) => {
        s.pods = [...state.pods].sort((a, b) => a.idx - b.idx);
      });
      res.added.push(pod.key);
    }
    const servers = await startServers(name, ch.add.map((p) => ({ ns: p.ns, key: p.key, idx: p.idx, ports: p.ports })));
    for (const s of servers.skipped) res.warnings.push(`pod ${s.key}: ${s.port}/${s.protocol} not served (${s.reason})`);
  }
  return res;
}

/**
 * The follower's main loop: watch the lab's directory, sync pods on every change, publish the digest
 * built for. Exits when the lab's state disappears (lab down) or on SIGTERM/SIGINT.
 */
export async function runFollower(name: string, out: (line: string) => void = (l) => process.stdout.write(l + '\n')): Promise<void> {
  const st = readState(name);
  if (!st.ok) throw new Error(st.error);
  const dir = st.state.inputDir;
  if (!dir) throw new Error(`lab ${name} was not built from a directory: nothing to follow`);
  recordProcesses(name, [{ pid: process.pid, ns: '', role: 'follower' }]);
  const store = new ClusterStore();
  let chain: Promise<void> = Promise.resolve();
  let stopping = false;
  // A failed sync is published (probe reports it) and tried again, 1 s, 2 s, ... 30 s later; any
  // change of DIR tries at once.
  let retry: NodeJS.Timeout | undefined;
  let backoffMs = 1000;
  const sync = (digest: string) => {
    if (retry) clearTimeout(retry);
    retry = undefined;
    chain = chain.then(async () => {
      if (stopping) return;
      const status: FollowerStatus = { digest, pods: 0, added: [], removed: [], warnings: [], at: new Date().toISOString() };
      try {
        const r = await syncPods(name, store);
        Object.assign(status, { added: r.added, removed: r.removed, warnings: r.warnings });
      } catch (e) {
        status.error = (e as Error).message;
      }
      const now = readState(name);
      if (!now.ok) return stop();
      status.pods = now.state.pods.length;
      writeFollowerStatus(name, status);
      if (status.error === undefined) backoffMs = 1000;
      else if (!stopping && source.digest === digest) {
        process.stderr.write(`${status.at} sync failed (again in ${backoffMs / 1000}s): ${status.error}\n`);
        retry = setTimeout(() => void sync(source.digest), backoffMs);
        backoffMs = Math.min(backoffMs * 2, 30_000);
      }
    });
    return chain;
  };
  const source = new ManifestSource(dir, store, (r) => void sync(r.digest), { pollMs: 500 });
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => (resolveDone = r));
  const watchdog = setInterval(() => {
    if (!readState(name).ok) stop();
  }, 1000);
  function stop(): void {
    if (stopping) return;
    stopping = true;
    clearInterval(watchdog);
    if (retry) clearTimeout(retry);
    source.stop();
    resolveDone();
  }
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await source.start();
  await chain;
  out('ready');
  await done;
}

