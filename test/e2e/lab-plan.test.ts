// The lab's pure parts (no root needed): planTopology's node/pod/address decisions, the kernel
// commands it leads to, lab and namespace names, the ip batch payload guard, the state file.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerPort, Node, Pod } from '../../src/cluster/model.js';
import { batchPayload, mapLimit } from '../../src/lab/netns.js';
import { serverPorts } from '../../src/lab/servers.js';
import { checkLabName, readState, statePath, updateState, writeState } from '../../src/lab/state.js';
import { labOfNamespace, planTopology, stateFromPlan, topologyCommands } from '../../src/lab/topology.js';

const ports: ContainerPort[] = [{ port: 80, protocol: 'TCP' }];
const pod = (namespace: string, name: string, nodeName: string | undefined, ips: string[], extra: Partial<Pod> = {}): Pod => ({
  kind: 'Pod',
  namespace,
  name,
  labels: {},
  ...(nodeName !== undefined ? { nodeName } : {}),
  hostNetwork: false,
  ips,
  ports,
  ...extra,
});
const node = (name: string, podCIDRs: string[], addresses: string[] = []): Node => ({ kind: 'Node', name, labels: {}, podCIDRs, addresses });

test('lab names: default, allowed alphabet and length', (t) => {
  t.is(planTopology({ nodes: [], pods: [] }).labName, 'default');
  for (const ok of ['a', 'default', 'lab-1', 'abcdefghijkl']) t.is(checkLabName(ok), ok);
  for (const bad of ['', 'A', 'a_b', '-a', 'a-', 'abcdefghijklm', 'a b', '../x']) t.throws(() => checkLabName(bad), { message: /invalid lab name/ }, bad);
  t.throws(() => planTopology({ nodes: [], pods: [], labName: 'Bad!' }), { message: /invalid lab name/ });
});

test('namespace names belong to exactly one lab', (t) => {
  t.is(labOfNamespace('pwl-default-n-0'), 'default');
  t.is(labOfNamespace('pwl-a-p-12'), 'a');
  t.is(labOfNamespace('pwl-a-fabric'), 'a');
  t.is(labOfNamespace('pwl-a-p-1-n-0'), 'a-p-1', "lab 'a' never claims lab 'a-p-1's namespaces");
  t.is(labOfNamespace('pwl-a-fabric-n-0'), 'a-fabric');
  t.is(labOfNamespace('podwall-dp-x'), undefined);
  t.is(labOfNamespace('pwl-a'), undefined);
});

test('no Node objects and no nodeName: one node `node-1` with an allocated CIDR; pods get consecutive IPs', (t) => {
  const plan = planTopology({ labName: 'x', nodes: [], pods: [pod('a', 'p1', undefined, []), pod('a', 'p2', undefined, [])] });
  t.deepEqual(plan.nodes.map((n) => [n.name, n.podCIDRs, n.gateways.map((g) => g.ip)]), [['node-1', ['10.244.0.0/24'], ['10.244.0.1']]]);
  t.deepEqual(plan.pods.map((p) => p.ips), [['10.244.0.2'], ['10.244.0.3']]);
  t.deepEqual(plan.allocations, [
    { pod: 'a/p1', ips: ['10.244.0.2'] },
    { pod: 'a/p2', ips: ['10.244.0.3'] },
  ]);
  t.deepEqual(plan.placements.map((p) => p.node), ['node-1', 'node-1']);
  t.deepEqual(plan.families, ['ipv4']);
});

test('nodes from pods nodeName; Node objects win; unknown nodeName adds a node with a warning', (t) => {
  const fromPods = planTopology({ labName: 'x', nodes: [], pods: [pod('a', 'p', 'w2', []), pod('a', 'q', 'w1', [])] });
  t.deepEqual(fromPods.nodes.map((n) => n.name), ['w1', 'w2']);
  t.deepEqual(fromPods.warnings, []);
  const withObjects = planTopology({ labName: 'x', nodes: [node('k1', ['10.9.0.0/24'], ['192.168.1.5'])], pods: [pod('a', 'p', 'k1', []), pod('a', 'q', 'ghost', [])] });
  t.deepEqual(withObjects.nodes.map((n) => [n.name, n.podCIDRs, n.nodeIPs.map((a) => a.ip), n.fromObject]), [
    ['k1', ['10.9.0.0/24'], ['192.168.1.5'], true],
    ['ghost', ['10.244.0.0/24'], [withObjects.nodes[1]!.nodeIPs[0]!.ip], false],
  ]);
  t.regex(withObjects.nodes[1]!.nodeIPs[0]!.ip, /^172\.31\.\d+\.2$/);
  t.true(withObjects.warnings.some((w) => w.includes('ghost') && w.includes('no Node object')));
});

test('bad and clashing input becomes warnings, never a crash', (t) => {
  const plan = planTopology({
    labName: 'x',
    nodes: [node('n1', ['not-a-cidr', '10.9.0.0/24']), node('n2', ['10.9.0.0/25']), node('n1', [])],
    pods: [
      pod('a', 'p', 'n1', ['10.9.0.5']),
      pod('a', 'dup', 'n1', ['10.9.0.5']),
      pod('a', 'gw', 'n1', ['10.9.0.1']),
      pod('a', 'bad', 'n1', ['999.1.1.1']),
      pod('a', 'p', 'n1', []),
    ],
  });
  const w = plan.warnings.join('\n');
  t.regex(w, /node n1: spec.podCIDRs entry "not-a-cidr" is invalid/);
  t.regex(w, /node n2: pod CIDR 10.9.0.0\/25 overlaps/);
  t.regex(w, /node n1: listed twice/);
  t.regex(w, /pod a\/p: IP 10.9.0.5 is used by another pod; the lab gives it 10.9.0.\d+/);
  t.regex(w, /pod a\/gw: IP 10.9.0.1 is a gateway/);
  t.regex(w, /pod a\/bad: status IP "999.1.1.1" is not an IP address/);
  t.regex(w, /pod a\/p: listed twice/);
  t.deepEqual(plan.nodes.map((n) => n.podCIDRs), [['10.9.0.0/24'], ['10.244.0.0/24']]);
  const ips = plan.pods.flatMap((p) => p.ips);
  t.is(new Set(ips).size, ips.length, 'pod IPs are unique');
  t.false(ips.includes('10.9.0.1'));
});

test('kernel commands use indexes only: hostile names and labels never reach a namespace, link or batch line', (t) => {
  const hostile = 'x"; rm -rf / #\n$(reboot) `id`';
  const plan = planTopology({
    labName: 'h',
    nodes: [node(hostile, ['10.9.0.0/24']), node('n2', ['10.9.1.0/24'])],
    pods: [pod(hostile, hostile, hostile, [], { labels: { [hostile]: hostile } }), pod('b', 'c', 'n2', ['10.9.1.9']), pod('b', 'off', 'n2', ['10.7.0.7'])],
  });
  const cmds = topologyCommands(plan);
  const all = [cmds.fabric, ...cmds.nodes.map((n) => n.commands), ...cmds.pods.map((p) => p.commands)];
  for (const c of all) t.notThrows(() => batchPayload(c));
  t.deepEqual(cmds.namespaces, ['pwl-h-fabric', 'pwl-h-n-0', 'pwl-h-n-1', 'pwl-h-p-0', 'pwl-h-p-1', 'pwl-h-p-2']);
  const text = JSON.stringify(cmds);
  t.false(text.includes('rm -rf'));
  // The off-link pod: /32 on eth0, onlink default route, host route on its node and via its node elsewhere.
  const off = plan.pods.find((p) => p.key === 'b/off')!;
  t.deepEqual(off.addrs, [{ family: 'ipv4', ip: '10.7.0.7', prefix: 32, offLink: true }]);
  const offCmds = cmds.pods[off.idx]!.commands.map((c) => c.join(' '));
  t.true(offCmds.includes('route add 0.0.0.0/0 via 10.9.1.1 dev eth0 onlink'));
  const other = plan.nodes.find((n) => n.idx !== off.nodeIdx)!;
  t.true(cmds.nodes[off.nodeIdx]!.commands.map((c) => c.join(' ')).includes('route add 10.7.0.7/32 dev kube-bridge'));
  t.true(cmds.nodes[other.idx]!.commands.some((c) => c.join(' ') === `route add 10.7.0.7/32 via ${plan.nodes[off.nodeIdx]!.nodeIPs[0]!.ip} dev eth0`));
  // Every neighbour is static (the kernel's ARP table is shared by all namespaces).
  t.true(cmds.pods.every((p) => p.commands.some((c) => c[0] === 'neigh' && c.includes('permanent'))));
  const macs = [...plan.nodes.flatMap((n) => [n.mac, n.bridgeMac, n.fabricMac]), ...plan.pods.flatMap((p) => [p.mac, p.hostMac])];
  t.is(new Set(macs).size, macs.length, 'MACs are unique in a lab');
  // The state keeps the names.
  t.true(stateFromPlan(plan).pods.some((p) => p.name === hostile && p.namespace === hostile));
});

test('ip batch payload refuses anything that is not a plain word', (t) => {
  t.is(batchPayload([['link', 'set', 'lo', 'up']]), 'link set lo up\n');
  for (const w of ['a b', 'a"b', "a'b", '#x', 'a\nb', '', 'a;b', '$(x)']) t.throws(() => batchPayload([['link', 'set', w, 'up']]), { message: /refusing ip batch word/ }, JSON.stringify(w));
});

test('server ports: TCP and UDP deduplicated, SCTP and bad ports skipped', (t) => {
  const r = serverPorts({
    ns: 'pwl-x-p-0',
    key: 'a/b',
    ports: [
      { port: 81, protocol: 'TCP' },
      { port: 80, protocol: 'TCP' },
      { port: 80, protocol: 'TCP' },
      { port: 80, protocol: 'UDP' },
      { port: 36412, protocol: 'SCTP' },
      { port: 70000, protocol: 'TCP' },
    ],
  });
  t.deepEqual(r.tcp, [80, 81]);
  t.deepEqual(r.udp, [80]);
  t.deepEqual(r.skipped.map((s) => [s.port, s.protocol]), [
    [36412, 'SCTP'],
    [70000, 'TCP'],
  ]);
});

test('mapLimit keeps order and bounds concurrency', async (t) => {
  let inFlight = 0;
  let max = 0;
  const out = await mapLimit([5, 4, 3, 2, 1, 0], 2, async (x) => {
    inFlight++;
    max = Math.max(max, inFlight);
    await new Promise((r) => setImmediate(r));
    inFlight--;
    return x * 2;
  });
  t.deepEqual(out, [10, 8, 6, 4, 2, 0]);
  t.is(max, 2);
  await t.throwsAsync(mapLimit([1, 2, 3], 2, async (x) => (x === 2 ? Promise.reject(new Error('two')) : x)), { message: 'two' });
});

test('state file: atomic write, read back, update; missing and corrupt files are reported, not thrown', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podwall-lab-state-'));
  const before = process.env.PODWALL_LAB_DIR;
  process.env.PODWALL_LAB_DIR = dir;
  try {
    const plan = planTopology({ labName: 'st', nodes: [], pods: [pod('a', 'p', undefined, [])] });
    t.deepEqual(readState('st'), { ok: false, missing: true, error: `lab st: no state file at ${statePath('st')}` });
    writeState(stateFromPlan(plan));
    const r = readState('st');
    t.true(r.ok);
    if (r.ok) t.deepEqual(r.state.namespaces, ['pwl-st-fabric', 'pwl-st-n-0', 'pwl-st-p-0']);
    updateState('st', (s) => s.pids.push({ pid: 1234, ns: 'pwl-st-p-0', role: 'server' }));
    const r2 = readState('st');
    t.true(r2.ok && r2.state.pids.length === 1);
    writeFileSync(statePath('st'), '{oops');
    const r3 = readState('st');
    t.false(r3.ok);
    if (!r3.ok) t.regex(r3.error, /not valid JSON/);
    writeFileSync(statePath('st'), '{"version": 99}');
    const r4 = readState('st');
    if (!r4.ok) t.regex(r4.error, /not a podwall lab state/);
    else t.fail('version 99 accepted');
  } finally {
    if (before === undefined) delete process.env.PODWALL_LAB_DIR;
    else process.env.PODWALL_LAB_DIR = before;
    rmSync(dir, { recursive: true, force: true });
  }
});
