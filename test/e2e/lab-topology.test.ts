// The lab's network, servers and prober against the real kernel (root; CI runs as root — without
// root every test here fails with a message saying so). Each test builds its own lab under a unique
// name with no firewall: every declared port is reachable from every pod, same-node traffic bridged
// and cross-node traffic routed; undeclared ports are refused; SCTP is reported, not served. An
// iptables rule inside a node namespace matching `physdev --physdev-is-bridged` sees same-node pod
// traffic (bridge-nf per namespace). Teardown leaves no namespace and no process, with or without a
// state file. Every lab is torn down in test.after.always.
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerPort, Node, Pod } from '../../src/cluster/model.js';
import { alive, listNetns, run } from '../../src/lab/netns.js';
import { ProberPool, probeAll, probeAllDetailed, type ProbePair } from '../../src/lab/probe.js';
import { startServers } from '../../src/lab/servers.js';
import { readState, recordProcesses, statePath, updateState } from '../../src/lab/state.js';
import { buildTopology, labOfNamespace, listLabs, planTopology, teardownTopology, type TopologyPlan } from '../../src/lab/topology.js';

const labDir = mkdtempSync(join(tmpdir(), 'podwall-lab-test-'));
process.env.PODWALL_LAB_DIR = labDir;
const labs = new Set<string>();
const serverPids: number[] = [];
const children: ChildProcess[] = [];

const isRoot = process.getuid?.() === 0;
const NOT_ROOT = 'lab e2e tests need root (they create network namespaces): run them as root, as CI does';

function labName(tag: string): string {
  const name = `t${tag}-${randomBytes(3).toString('hex')}`;
  labs.add(name);
  return name;
}

test.after.always(async () => {
  for (const c of children) c.kill('SIGKILL');
  const problems: string[] = [];
  if (isRoot) {
    for (const name of labs) {
      try {
        const r = await teardownTopology(name);
        problems.push(...r.problems);
      } catch (e) {
        problems.push(`${name}: ${(e as Error).message}`);
      }
    }
  }
  rmSync(labDir, { recursive: true, force: true });
  if (problems.length) throw new Error(`lab cleanup: ${problems.join('; ')}`);
});

const tcpUdp = (...ports: number[]): ContainerPort[] => ports.flatMap((port) => [{ port, protocol: 'TCP' as const }, { port, protocol: 'UDP' as const }]);

function pod(namespace: string, name: string, nodeName: string | undefined, ips: string[], ports: ContainerPort[], extra: Partial<Pod> = {}): Pod {
  return { kind: 'Pod', namespace, name, labels: { app: name }, ...(nodeName !== undefined ? { nodeName } : {}), hostNetwork: false, phase: 'Running', ips, ports, ...extra };
}

function node(name: string, podCIDRs: string[], addresses: string[]): Node {
  return { kind: 'Node', name, labels: {}, podCIDRs, addresses };
}

function requireRoot(t: ExecutionContext): boolean {
  if (!isRoot) t.fail(NOT_ROOT);
  return isRoot;
}

/** Builds the lab and starts its servers. */
async function up(plan: TopologyPlan) {
  await buildTopology(plan);
  const servers = await startServers(
    plan.labName,
    plan.pods.map((p) => ({ ns: p.ns, key: p.key, idx: p.idx, ports: p.ports })),
  );
  serverPids.push(...servers.started.map((s) => s.pid));
  return servers;
}

const podByKey = (plan: TopologyPlan, key: string) => {
  const p = plan.pods.find((x) => x.key === key);
  if (!p) throw new Error(`no pod ${key} in plan`);
  return p;
};
const ipOf = (plan: TopologyPlan, key: string, family: 'ipv4' | 'ipv6' = 'ipv4') => {
  const a = podByKey(plan, key).addrs.find((x) => x.family === family);
  if (!a) throw new Error(`pod ${key} has no ${family} address`);
  return a.ip;
};

/** Processes whose command line names this lab (servers get `--lab NAME`). */
function processesOfLab(name: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      const i = argv.indexOf('--lab');
      if (i >= 0 && argv[i + 1] === name && alive(Number(d))) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function assertGone(t: ExecutionContext, name: string, pids: number[]): Promise<void> {
  const left = (await listNetns()).filter((ns) => ns.startsWith(`pwl-${name}-`));
  t.deepEqual(left, [], `no pwl-${name}- namespace is left`);
  t.deepEqual(pids.filter(alive), [], 'every server process of the lab is gone');
  t.deepEqual(processesOfLab(name), [], 'no process of the lab is left');
  t.false(existsSync(join(labDir, name)), 'the lab directory is removed');
}

const hostLinks = async () => (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0]).filter(Boolean).sort();

test('the lab tests run as root', (t) => {
  t.true(isRoot, NOT_ROOT);
});

test('2 nodes, 4 pods: every declared port reachable (bridged and routed), undeclared refused, SCTP skipped, nothing in the host namespace, clean teardown', async (t) => {
  if (!requireRoot(t)) return;
  const name = labName('main');
  const hostBefore = await hostLinks();
  const hostile = 'b $(touch /tmp/pwned) ; ip netns del x';
  const plan = planTopology({
    labName: name,
    nodes: [node('node-a', ['10.251.0.0/24'], ['192.168.77.10']), node('node-b', ['10.251.1.0/24'], ['192.168.77.11'])],
    pods: [
      pod('x', 'a', 'node-a', ['10.251.0.10'], tcpUdp(80, 81)),
      pod('x', hostile, 'node-a', [], tcpUdp(80, 81)),
      pod('y', 'c', 'node-b', ['10.251.1.10'], tcpUdp(80, 81)),
      pod('y', 'd', 'node-b', [], [...tcpUdp(80), { port: 5000, protocol: 'SCTP' }]),
    ],
  });
  t.deepEqual(plan.warnings, []);
  t.deepEqual(plan.nodes.map((n) => [n.name, n.podCIDRs, n.nodeIPs.map((a) => a.ip)]), [
    ['node-a', ['10.251.0.0/24'], ['192.168.77.10']],
    ['node-b', ['10.251.1.0/24'], ['192.168.77.11']],
  ]);
  const allocB = plan.allocations.find((a) => a.pod === `x/${hostile}`);
  t.truthy(allocB, 'the pod without an IP gets one allocated');
  t.regex(allocB!.ips[0]!, /^10\.251\.0\.\d+$/);
  t.notDeepEqual(allocB!.ips, ['10.251.0.1']);
  t.notDeepEqual(allocB!.ips, ['10.251.0.10']);

  const servers = await up(plan);
  t.deepEqual(servers.skipped.map((s) => [s.key, s.port, s.protocol]), [['y/d', 5000, 'SCTP']], 'the SCTP port is reported as skipped');
  t.is(servers.started.length, 4);
  t.false(existsSync('/tmp/pwned'), 'pod names never reach a shell');

  // Kernel facts: nothing in the host namespace; node namespaces have the bridge, gateway, sysctls and routes.
  t.deepEqual(await hostLinks(), hostBefore, 'no link was added to the host namespace');
  const [na, nb] = plan.nodes;
  for (const n of [na!, nb!]) {
    for (const k of ['net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables', 'net.ipv4.ip_forward']) {
      t.is((await run('sysctl', ['-n', k], { ns: n.ns })).stdout.trim(), '1', `${k} in ${n.ns}`);
    }
    const br = (await run('ip', ['-o', '-4', 'addr', 'show', 'dev', 'kube-bridge'], { ns: n.ns })).stdout;
    t.regex(br, new RegExp(`inet ${n.gateways[0]!.ip.replace(/\./g, '\\.')}/24`));
    const ports = (await run('ip', ['-o', 'link', 'show', 'master', 'kube-bridge'], { ns: n.ns })).stdout.trim().split('\n');
    t.is(ports.length, 2, `two pod veths on ${n.ns}'s kube-bridge`);
  }
  const routes = (await run('ip', ['-4', 'route', 'show'], { ns: na!.ns })).stdout;
  t.regex(routes, /10\.251\.1\.0\/24 via 192\.168\.77\.11 dev eth0/);
  const st = readState(name);
  t.true(st.ok);
  if (st.ok) {
    t.deepEqual(st.state.pods.map((p) => p.key).sort(), ['x/a', `x/${hostile}`, 'y/c', 'y/d'].sort());
    t.is(st.state.pids.length, 4);
    for (const ns of st.state.namespaces) t.is(labOfNamespace(ns), name);
  }
  const listed = (await listLabs()).find((l) => l.name === name);
  t.is(listed?.namespaces.length, 7);
  t.truthy(listed?.state);

  // Every ordered pair of distinct pods, 80 and 81 on TCP and UDP.
  const keys = plan.pods.map((p) => p.key);
  const pairs: (ProbePair & { from: string; to: string })[] = [];
  for (const from of keys) for (const to of keys) {
    if (from === to) continue;
    for (const port of [80, 81]) for (const protocol of ['TCP', 'UDP'] as const) pairs.push({ from, to, fromNs: podByKey(plan, from).ns, toIp: ipOf(plan, to), port, protocol });
  }
  const got = await probeAllDetailed(pairs, { timeoutMs: 1000, concurrency: 64 });
  const wrong = pairs
    .map((p, i) => ({ p, r: got[i]! }))
    .filter(({ p, r }) => r.ok !== (p.port === 80 || p.to !== 'y/d'))
    .map(({ p, r }) => `${p.from} -> ${p.to} ${p.port}/${p.protocol}: ${r.ok ? 'reached' : r.error}`);
  t.deepEqual(wrong, [], 'reachability with no firewall: declared ports open, y/d refuses 81');
  const refused = pairs.map((p, i) => ({ p, r: got[i]! })).filter(({ p }) => p.to === 'y/d' && p.port === 81);
  t.true(refused.length > 0 && refused.every(({ r }) => r.error === 'ECONNREFUSED'), 'an undeclared port is refused, not timed out');

  // Recorded processes are killed at teardown only when their start time still matches (no reused pid).
  const recorded = spawn('sleep', ['300'], { stdio: 'ignore' });
  const stranger = spawn('sleep', ['300'], { stdio: 'ignore' });
  children.push(recorded, stranger);
  recordProcesses(name, [{ pid: recorded.pid!, ns: na!.ns, role: 'agent', owner: 'node-a' }]);
  updateState(name, (s) => s.pids.push({ pid: stranger.pid!, ns: na!.ns, role: 'agent', owner: 'node-b', startTime: '1' }));
  const st2 = readState(name);
  t.true(st2.ok && st2.state.pids.every((p) => p.startTime !== undefined), 'pids are recorded with their start time');

  const down = await teardownTopology(name);
  t.deepEqual(down.problems, []);
  t.is(down.namespaces.length, 7);
  t.true(down.killed.includes(recorded.pid!), 'a recorded process is killed');
  t.false(down.killed.includes(stranger.pid!), 'a pid whose start time differs is left alone');
  t.true(alive(stranger.pid!));
  await assertGone(t, name, servers.started.map((s) => s.pid));
  t.deepEqual((await teardownTopology(name)).namespaces, [], 'teardown is idempotent');
});

test('bridge-nf works per namespace: a physdev-is-bridged DROP in the node namespace stops same-node traffic, a not-bridged DROP stops routed traffic', async (t) => {
  if (!requireRoot(t)) return;
  const name = labName('nf');
  const plan = planTopology({
    labName: name,
    nodes: [],
    pods: [pod('p', 'one', 'node-1', [], tcpUdp(80)), pod('p', 'two', 'node-1', [], tcpUdp(80)), pod('p', 'three', 'node-2', [], tcpUdp(80))],
  });
  t.deepEqual(plan.nodes.map((n) => n.name), ['node-1', 'node-2']);
  t.deepEqual(plan.nodes.map((n) => n.podCIDRs), [['10.244.0.0/24'], ['10.244.1.0/24']], 'pod CIDRs allocated');
  await up(plan);
  const [one, two, three] = [ipOf(plan, 'p/one'), ipOf(plan, 'p/two'), ipOf(plan, 'p/three')];
  const n1 = plan.nodes[0]!.ns;
  const ipt = (args: string[]) => run('iptables', ['-w', ...args], { ns: n1 });
  await ipt(['-I', 'FORWARD', '-m', 'physdev', '--physdev-is-bridged', '-s', one, '-d', two, '-p', 'tcp', '--dport', '80', '-j', 'DROP']);
  await ipt(['-I', 'FORWARD', '-m', 'physdev', '!', '--physdev-is-bridged', '-s', one, '-d', three, '-p', 'udp', '--dport', '80', '-j', 'DROP']);
  const nsOf = (k: string) => podByKey(plan, k).ns;
  const pairs: ProbePair[] = [
    { fromNs: nsOf('p/one'), toIp: two, port: 80, protocol: 'TCP' },
    { fromNs: nsOf('p/one'), toIp: two, port: 80, protocol: 'UDP' },
    { fromNs: nsOf('p/two'), toIp: one, port: 80, protocol: 'TCP' },
    { fromNs: nsOf('p/one'), toIp: three, port: 80, protocol: 'TCP' },
    { fromNs: nsOf('p/one'), toIp: three, port: 80, protocol: 'UDP' },
    { fromNs: nsOf('p/three'), toIp: one, port: 80, protocol: 'UDP' },
  ];
  t.deepEqual(await probeAll(pairs, { timeoutMs: 500, concurrency: 16 }), [false, true, true, true, false, true]);
  const counters = (await ipt(['-L', 'FORWARD', '-v', '-x', '-n'])).stdout
    .split('\n')
    .filter((l) => /DROP/.test(l))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
  t.is(counters.length, 2);
  t.true(counters.every((c) => c > 0), 'both DROP rules counted packets');
  const r = await teardownTopology(name);
  t.deepEqual(r.problems, []);
  await assertGone(t, name, []);
});

test('dual stack, a pod outside its node CIDR, a pod without nodeName; hostNetwork and finished pods get no namespace', async (t) => {
  if (!requireRoot(t)) return;
  const name = labName('ds');
  const plan = planTopology({
    labName: name,
    nodes: [node('n1', ['10.252.0.0/24', 'fd00:252::/64'], []), node('n2', [], [])],
    pods: [
      pod('e', 'a', 'n1', ['10.252.0.5', 'fd00:252::5'], tcpUdp(80)),
      pod('e', 'b', 'n2', [], tcpUdp(80)),
      pod('e', 'off', 'n1', ['10.99.0.7'], tcpUdp(80)),
      pod('e', 'nonode', undefined, [], tcpUdp(80)),
      pod('e', 'host', 'n1', ['192.168.77.10'], tcpUdp(80), { hostNetwork: true }),
      pod('e', 'done', 'n2', [], tcpUdp(80), { phase: 'Succeeded' }),
    ],
  });
  t.deepEqual(plan.families, ['ipv4', 'ipv6']);
  t.deepEqual(plan.nodes[1]!.allocatedCIDRs, ['10.244.0.0/24', 'fd00:10:244::/64']);
  t.deepEqual(plan.skipped, [{ key: 'e/done', reason: 'phase Succeeded' }, { key: 'e/host', reason: 'hostNetwork' }]);
  t.deepEqual(plan.placements, [{ pod: 'e/nonode', node: 'n1' }]);
  t.true(plan.warnings.some((w) => w.includes('e/off') && w.includes('outside')));
  t.is(podByKey(plan, 'e/b').ips.length, 2, 'a pod without IPs gets one per family');
  await up(plan);
  const keys = ['e/a', 'e/b', 'e/off', 'e/nonode'];
  const pairs: (ProbePair & { label: string })[] = [];
  for (const from of keys) for (const to of keys) {
    if (from === to) continue;
    for (const protocol of ['TCP', 'UDP'] as const) {
      pairs.push({ label: `${from}->${to} v4 ${protocol}`, fromNs: podByKey(plan, from).ns, toIp: ipOf(plan, to), port: 80, protocol });
      const f6 = podByKey(plan, from).addrs.some((a) => a.family === 'ipv6');
      const t6 = podByKey(plan, to).addrs.find((a) => a.family === 'ipv6');
      if (f6 && t6) pairs.push({ label: `${from}->${to} v6 ${protocol}`, fromNs: podByKey(plan, from).ns, toIp: t6.ip, port: 80, protocol });
    }
  }
  t.true(pairs.some((p) => p.label.includes(' v6 ')));
  const pool = new ProberPool({ timeoutMs: 1000, concurrency: 64 });
  try {
    const got = await pool.probeMany(pairs);
    t.deepEqual(pairs.map((p, i) => (got[i]!.ok ? '' : `${p.label}: ${got[i]!.error}`)).filter((x) => x !== ''), [], 'every pair reachable');
  } finally {
    await pool.close();
  }
  t.deepEqual((await teardownTopology(name)).problems, []);
  await assertGone(t, name, []);
});

for (const damage of ['deleted', 'corrupt'] as const) {
  test(`teardown with the state file ${damage} still removes every namespace and process`, async (t) => {
    if (!requireRoot(t)) return;
    const name = labName(damage === 'deleted' ? 'del' : 'bad');
    const plan = planTopology({ labName: name, nodes: [], pods: [pod('q', 'a', 'n1', [], tcpUdp(80)), pod('q', 'b', 'n2', [], tcpUdp(80))] });
    const servers = await up(plan);
    const pids = servers.started.map((s) => s.pid);
    t.is(pids.length, 2);
    t.true(pids.every(alive));
    if (damage === 'deleted') rmSync(statePath(name));
    else writeFileSync(statePath(name), '{"version": 1, "name": ');
    const listed = (await listLabs()).find((l) => l.name === name);
    t.is(listed?.namespaces.length, 5);
    t.truthy(listed?.stateError, 'listLabs says why the state is unusable');
    const r = await teardownTopology(name);
    t.deepEqual(r.problems, []);
    t.deepEqual([...r.killed].sort(), [...pids].sort(), 'the servers were found through ip netns pids');
    await assertGone(t, name, pids);
  });
}
