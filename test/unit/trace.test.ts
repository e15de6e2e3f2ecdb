// podwall trace: packet path classification (dataplane/path.ts), the trace on rendered rules (checked
// against the simulator on the conformance model), live mode on a hand-written kube-router style table
// through a fake command runner, and the command line.
import test from 'ava';
import { Command } from 'commander';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterNodeViews, clusterPaths, combinedVerdict, nodesOnPath, packetPaths, PathError, podInterface, type NodeView } from '../../src/dataplane/path.js';
import { registerTrace } from '../../src/cli/trace.js';
import { filterTableFor, nodeViewFromIp, TraceError, traceLive, traceRendered, type TraceReport } from '../../src/dataplane/trace.js';
import { formatTrace } from '../../src/report/trace.js';
import { UserError } from '../../src/cli/common.js';
import { compile } from '../../src/policy/compile.js';
import { evaluate } from '../../src/sim/evaluate.js';
import { render } from '../../src/dataplane/render.js';
import { podChainName } from '../../src/dataplane/names.js';
import { interpret } from '../../src/iptables/interpret.js';
import type { Runner, ExecResult } from '../../src/dataplane/exec.js';
import { ALL_PODS, conformanceObjects, podIP, policy, storeOf, writeManifests, type Raw } from '../support/conformance.js';

// ---------------------------------------------------------------------------------------------
// path.ts

const view: NodeView = {
  node: 'node-1',
  localPods: new Map([
    ['10.244.1.10', 'x/a'],
    ['10.244.1.11', 'x/b'],
  ]),
  localPodCIDRs: ['10.244.1.0/24'],
  nodeAddresses: ['172.18.0.2', '10.244.1.1'],
  bridge: 'kube-bridge',
  uplink: 'eth0',
  podInterfaces: new Map([['10.244.1.10', 'vethaaaa']]),
};
const one = (src: string, dst: string) => {
  const hops = packetPaths(view, src, dst, 'tcp', 80);
  if (hops.length !== 1) throw new Error(`expected one hop, got ${hops.length}`);
  return hops[0]!;
};

test('path: local pod → local pod is bridged FORWARD with both veths', (t) => {
  const h = one('10.244.1.10', '10.244.1.11');
  t.is(h.kind, 'bridged');
  t.is(h.node, 'node-1');
  t.like(h.packet, { hook: 'FORWARD', inIface: 'kube-bridge', outIface: 'kube-bridge', bridged: true, physdevIn: 'vethaaaa', physdevOut: podInterface(view, '10.244.1.11'), src: '10.244.1.10', dst: '10.244.1.11', protocol: 'tcp', dport: 80, srcType: 'UNICAST', dstType: 'UNICAST', ctstate: 'NEW' });
  t.regex(h.packet.physdevOut!, /^veth[0-9a-f]{8}$/);
  // An address of the pod CIDR without a known pod still counts as a local pod.
  t.is(one('10.244.1.10', '10.244.1.99').kind, 'bridged');
});

test('path: local pod → remote pod or outside is routed FORWARD out the uplink', (t) => {
  for (const dst of ['10.244.2.12', '8.8.8.8', '172.18.0.3']) {
    const h = one('10.244.1.10', dst);
    t.is(h.kind, 'pod-out');
    t.like(h.packet, { hook: 'FORWARD', inIface: 'kube-bridge', outIface: 'eth0', physdevIn: 'vethaaaa', srcType: 'UNICAST', dstType: 'UNICAST' });
    t.falsy(h.packet.bridged);
  }
});

test('path: remote → local pod is routed FORWARD in the uplink out the bridge', (t) => {
  const h = one('10.244.2.12', '10.244.1.11');
  t.is(h.kind, 'pod-in');
  t.like(h.packet, { hook: 'FORWARD', inIface: 'eth0', outIface: 'kube-bridge', srcType: 'UNICAST', dstType: 'UNICAST' });
  t.falsy(h.packet.bridged);
  t.is(h.packet.physdevIn, undefined);
  t.is(one('172.18.0.3', '10.244.1.11').kind, 'pod-in', 'another node is remote');
});

test('path: node → local pod is OUTPUT with a LOCAL source', (t) => {
  for (const src of ['172.18.0.2', '10.244.1.1', '127.0.0.1']) {
    const h = one(src, '10.244.1.11');
    t.is(h.kind, 'node-to-pod');
    t.like(h.packet, { hook: 'OUTPUT', outIface: 'kube-bridge', srcType: 'LOCAL', dstType: 'UNICAST' });
    t.is(h.packet.inIface, undefined);
  }
});

test('path: local pod → node address is INPUT with a LOCAL destination', (t) => {
  for (const dst of ['172.18.0.2', '10.244.1.1']) {
    const h = one('10.244.1.10', dst);
    t.is(h.kind, 'pod-to-node');
    t.like(h.packet, { hook: 'INPUT', inIface: 'kube-bridge', dstType: 'LOCAL', srcType: 'UNICAST', physdevIn: 'vethaaaa' });
    t.is(h.packet.outIface, undefined);
  }
});

test('path: node ↔ elsewhere is OUTPUT / INPUT on the uplink', (t) => {
  t.like(one('172.18.0.2', '10.244.2.12'), { kind: 'node-out', packet: { hook: 'OUTPUT', outIface: 'eth0', srcType: 'LOCAL' } });
  t.like(one('10.244.2.12', '172.18.0.2'), { kind: 'node-in', packet: { hook: 'INPUT', inIface: 'eth0', dstType: 'LOCAL' } });
});

test('path: packets that do not involve the node, a pod to itself, the node to itself: no hop', (t) => {
  t.deepEqual(packetPaths(view, '10.244.2.12', '10.244.2.13', 'tcp', 80), []);
  t.deepEqual(packetPaths(view, '8.8.8.8', '10.244.2.13', 'udp', 53), []);
  t.deepEqual(packetPaths(view, '10.244.1.10', '10.244.1.10', 'tcp', 80), []);
  t.deepEqual(packetPaths(view, '172.18.0.2', '10.244.1.1', 'tcp', 80), []);
});

test('path: IPv6, routes pick the interface, bad input is a PathError', (t) => {
  const v6: NodeView = {
    node: 'n6',
    localPods: new Map(),
    localPodCIDRs: ['fd00:10:244:1::/64'],
    nodeAddresses: ['fd00::2'],
    bridge: 'kube-bridge',
    uplink: 'eth0',
    routes: [
      { dst: 'default', dev: 'eth0' },
      { dst: 'fd00:10:244:2::/64', dev: 'tun0' },
    ],
  };
  t.like(packetPaths(v6, 'fd00:10:244:1::5', 'fd00:10:244:1::6', 'tcp', 80)[0], { kind: 'bridged' });
  t.like(packetPaths(v6, 'fd00:10:244:1::5', 'fd00:10:244:2::6', 'tcp', 80)[0], { kind: 'pod-out', packet: { outIface: 'tun0' } });
  t.like(packetPaths(v6, 'fd00:10:244:2::6', 'fd00:10:244:1::5', 'sctp', 80)[0], { kind: 'pod-in', packet: { inIface: 'tun0', protocol: 'sctp' } });
  t.like(packetPaths(v6, 'fd00:10:244:1::5', '2001:db8::1', 'tcp', 80)[0], { packet: { outIface: 'eth0' } });
  t.like(packetPaths(v6, '::1', 'fd00:10:244:1::5', 'tcp', 80)[0], { kind: 'node-to-pod' });
  t.throws(() => packetPaths(v6, 'fd00:10:244:1::5', '10.0.0.1', 'tcp', 80), { instanceOf: PathError, message: /different IP families/ });
  t.throws(() => packetPaths(v6, 'nope', '10.0.0.1', 'tcp', 80), { instanceOf: PathError, message: /source "nope"/ });
  t.throws(() => packetPaths({ ...v6, localPodCIDRs: ['fd00::/999'] }, 'fd00::5', 'fd00::6', 'tcp', 80), { instanceOf: PathError, message: /node n6: pod CIDR/ });
});

const cluster = (policies: Raw[] = []) => storeOf([...conformanceObjects(), ...policies]);

test('path: cluster views and the nodes a packet touches, in path order', (t) => {
  const views = clusterNodeViews(compile(cluster()));
  t.deepEqual(views.map((v) => v.node), ['node-1', 'node-2']);
  t.deepEqual([...views[0]!.localPods.values()].sort(), ['x/a', 'x/b', 'y/a', 'y/b', 'z/a', 'z/b']);
  t.deepEqual(views[1]!.nodeAddresses, ['172.18.0.3']);
  const xa = podIP('x', 'a');
  const xc = podIP('x', 'c');
  t.deepEqual(nodesOnPath(views, xa, xc, 'tcp', 80), ['node-1', 'node-2']);
  t.deepEqual(nodesOnPath(views, xc, xa, 'tcp', 80), ['node-2', 'node-1'], 'the sending node first');
  t.deepEqual(nodesOnPath(views, xa, podIP('y', 'b'), 'tcp', 80), ['node-1']);
  t.deepEqual(nodesOnPath(views, '8.8.8.8', '1.1.1.1', 'tcp', 80), []);
  t.deepEqual(clusterPaths(views, xc, xa, 'tcp', 80).map((h) => h.kind), ['pod-out', 'pod-in']);
  t.is(combinedVerdict(['ACCEPT', 'ACCEPT']), 'ACCEPT');
  t.is(combinedVerdict(['ACCEPT', 'REJECT', 'DROP']), 'REJECT');
  t.is(combinedVerdict([]), 'ACCEPT');
});

// ---------------------------------------------------------------------------------------------
// Rendered mode

const RENDER = { serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] as [number, number] };

const POLICIES = [
  // x/b: ingress only from pods a (any namespace labelled ns=x) on 80/TCP.
  policy('x', 'b-from-a', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'a' } } }], ports: [{ port: 80, protocol: 'TCP' }] }] }),
  // y/*: egress only to namespace z on the named port serve-81-tcp, and DNS-less.
  policy('y', 'egress-to-z', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }], ports: [{ port: 'serve-81-tcp', protocol: 'TCP' }] }] }),
  // z/c (node-2): deny all ingress.
  policy('z', 'deny-c', { podSelector: { matchLabels: { pod: 'c' } }, policyTypes: ['Ingress'] }),
  // z/a: ingress from an ipBlock covering node-2's pods except z/c's address.
  policy('z', 'a-from-cidr', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.244.2.0/24', except: [`${podIP('z', 'c')}/32`] } }] }] }),
];

test('rendered: a denied pair shows the NFLOG and then the REJECT of the destination pod chain', (t) => {
  const store = cluster(POLICIES);
  const r = traceRendered(store, { from: 'x/c', to: 'x/b', protocol: 'TCP', port: 80 }, { render: RENDER });
  t.is(r.verdict, 'REJECT');
  t.deepEqual(r.hops.map((h) => [h.node, h.kind, h.verdict]), [
    ['node-2', 'pod-out', 'ACCEPT'],
    ['node-1', 'pod-in', 'REJECT'],
  ]);
  const h = r.hops[1]!;
  const chain = render(compile(store, { node: 'node-1' }), { ...RENDER, family: 'ipv4', node: 'node-1' }).chains.find((c) => c.name === h.decidedBy.chain)!;
  t.regex(h.decidedBy.chain, /^KUBE-POD-FW-/);
  t.is(h.decidedBy.action, 'REJECT');
  t.regex(h.decidedBy.line, /-j REJECT/);
  t.true(chain.rules[h.decidedBy.index - 1]!.args.includes('x/b: reject ingress no policy allows'), 'the REJECT of x/b\'s own chain');
  const nflog = h.steps[h.steps.length - 2]!;
  t.is(nflog.chain, h.decidedBy.chain);
  t.is(nflog.action, 'NFLOG 100');
  t.is(nflog.index, h.decidedBy.index - 1);
  const xb = podChainName('x', 'b').slice('KUBE-POD-FW-'.length);
  t.deepEqual(h.logged, [{ group: 100, prefix: `podwall/1 deny in ${xb} x/b` }]);
  t.is(h.rejectWith, 'icmp-port-unreachable');
  t.like(r.decidedBy, { node: 'node-1', chain: h.decidedBy.chain, index: h.decidedBy.index });
  t.true(r.agree);
  const text = formatTrace(r);
  t.regex(text, /verdict: DENIED \(REJECT on node node-1 at KUBE-POD-FW-\w+ #\d+\)/);
  t.true(text.includes(`--nflog-prefix "podwall/1 deny in ${xb} x/b"`));
  t.regex(text, /simulator and rendered rules agree/);
});

test('rendered: an allowed pair shows the policy chain rule that set the mark', (t) => {
  const store = cluster(POLICIES);
  const r = traceRendered(store, { from: 'y/a', to: 'z/b', protocol: 'TCP', port: 81 }, { render: RENDER });
  t.is(r.verdict, 'ACCEPT');
  t.true(r.agree);
  const steps = r.hops.flatMap((h) => h.steps);
  const mark = steps.find((s) => s.chain.startsWith('KUBE-NWPLCY-') && s.chain !== 'KUBE-NWPLCY-COMMON' && s.chain !== 'KUBE-NWPLCY-DEFAULT' && s.action.startsWith('MARK'));
  t.truthy(mark, 'a policy chain marked the packet');
  t.regex(mark!.line, /y\/egress-to-z egress rule 0/);
  t.regex(mark!.line, /--set-xmark 0x10000\/0x10000/);
  t.like(r.decidedBy, { chain: 'KUBE-ROUTER-FORWARD', action: 'ACCEPT' });
  // The same source on port 80 is refused by its own (egress) chain.
  const d = traceRendered(store, { from: 'y/a', to: 'z/b', protocol: 'TCP', port: 80 }, { render: RENDER });
  t.is(d.verdict, 'REJECT');
  t.deepEqual(d.hops[0]!.logged, [{ group: 100, prefix: `podwall/1 deny out ${podChainName('y', 'a').slice('KUBE-POD-FW-'.length)} y/a` }]);
});

test('rendered: --node traces only that node and compares with the node plan', (t) => {
  const store = cluster(POLICIES);
  const onSender = traceRendered(store, { from: 'x/c', to: 'x/b', protocol: 'TCP', port: 80 }, { node: 'node-2', render: RENDER });
  t.is(onSender.verdict, 'ACCEPT', 'node-2 lets x/c out: the receiving node refuses it');
  t.deepEqual(onSender.nodes, ['node-2']);
  t.deepEqual(onSender.simulator!.map((s) => [s.scope, s.allowed]), [
    ['node', true],
    ['cluster', false],
  ]);
  t.true(onSender.agree);
  const elsewhere = traceRendered(store, { from: 'x/a', to: 'x/b', protocol: 'TCP', port: 80 }, { node: 'node-2', render: RENDER });
  t.deepEqual(elsewhere.hops, []);
  t.regex(elsewhere.notes.join('\n'), /node node-2 does not see this packet/);
  t.throws(() => traceRendered(store, { from: 'x/a', to: 'x/b', protocol: 'TCP', port: 80 }, { node: 'node-9', render: RENDER }), { instanceOf: TraceError, message: /--node "node-9": no such node/ });
  t.throws(() => traceRendered(store, { from: 'x/nope', to: 'x/b', protocol: 'TCP', port: 80 }, { render: RENDER }), { instanceOf: TraceError, message: /--from "x\/nope"/ });
  t.throws(() => traceRendered(store, { from: '10.0.0.1', to: 'fd00::1', protocol: 'TCP', port: 80 }, { render: RENDER }), { instanceOf: TraceError, message: /different IP families/ });
});

test('rendered: node → pod, pod → node address, outside → pod agree with the simulator', (t) => {
  const store = cluster(POLICIES);
  const cases: [string, string, boolean][] = [
    ['172.18.0.2', 'x/b', true], // own node: always
    ['172.18.0.3', 'x/b', false], // another node is judged by ingress
    ['172.18.0.2', 'z/c', false],
    ['x/b', '172.18.0.2', true],
    ['y/a', '172.18.0.2', false], // y egress only to z
    ['8.8.8.8', 'x/a', true],
    [podIP('x', 'c'), 'z/a', true], // in the ipBlock
    ['z/c', 'z/a', false], // excepted
  ];
  for (const [from, to, allowed] of cases) {
    const r = traceRendered(store, { from, to, protocol: 'TCP', port: 80 }, { render: RENDER });
    t.is(r.verdict === 'ACCEPT', allowed, `${from} -> ${to}: ${formatTrace(r)}`);
    t.true(r.agree, `${from} -> ${to} disagrees: ${r.disagreement}`);
  }
});

test('rendered: the trace agrees with the simulator on every pair of the conformance model', (t) => {
  const store = cluster(POLICIES);
  const plan = compile(store);
  let n = 0;
  for (const from of ALL_PODS)
    for (const to of ALL_PODS)
      for (const [protocol, port] of [['TCP', 80], ['TCP', 81], ['UDP', 80], ['SCTP', 81]] as const) {
        const r = traceRendered(store, { from, to, protocol, port }, { render: RENDER });
        const sim = evaluate(plan, { src: r.src, dst: r.dst, protocol, port });
        t.is(r.verdict === 'ACCEPT', sim.allowed, `${from} -> ${to} ${port}/${protocol}: ${formatTrace(r)}`);
        t.true(r.agree);
        n++;
      }
  t.is(n, 81 * 4);
});

test('rendered: a disagreement is flagged loudly', (t) => {
  const store = cluster(POLICIES);
  // An address of node-1's pod CIDR that is no pod: the dataplane fails closed, the simulator has nothing to judge.
  const r = traceRendered(store, { from: '10.244.1.99', to: 'x/a', protocol: 'TCP', port: 80 }, { render: RENDER });
  t.is(r.verdict, 'REJECT');
  t.false(r.agree);
  t.regex(r.disagreement!, /^expected: /);
  t.regex(formatTrace(r), /difference from the simulator: expected/);
  const fake: TraceReport = { ...r, disagreement: 'BUG: the rendered rules and the simulator disagree' };
  t.regex(formatTrace(fake), /!!! DISAGREEMENT/);
});

test('filterTableFor puts the jumps in the built-in chains with policy ACCEPT', (t) => {
  const d = render(compile(cluster(POLICIES), { node: 'node-1' }), { ...RENDER, family: 'ipv4', node: 'node-1' });
  const table = filterTableFor(d);
  t.deepEqual(table.chains.slice(0, 3).map((c) => [c.name, c.policy, c.rules.length]), [
    ['INPUT', 'ACCEPT', 1],
    ['FORWARD', 'ACCEPT', 1],
    ['OUTPUT', 'ACCEPT', 1],
  ]);
  t.deepEqual(table.chains[1]!.rules[0]!.args.slice(-2), ['-j', 'KUBE-ROUTER-FORWARD']);
});

// ---------------------------------------------------------------------------------------------
// Live mode through a fake runner: a hand-written kube-router style node

const LIVE_FILTER = `# Generated by iptables-save v1.8.9
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-POD-FW-WEB0000000000000 - [0:0]
:KUBE-NWPLCY-ALLOWAPI00000000 - [0:0]
:KUBE-ROUTER-FORWARD - [0:0]
:KUBE-ROUTER-INPUT - [0:0]
:KUBE-ROUTER-OUTPUT - [0:0]
-A INPUT -m comment --comment "kube-router netpol" -j KUBE-ROUTER-INPUT
-A FORWARD -m comment --comment "kube-router netpol" -j KUBE-ROUTER-FORWARD
-A FORWARD -i kube-bridge -j ACCEPT
-A FORWARD -o kube-bridge -j ACCEPT
-A OUTPUT -m comment --comment "kube-router netpol" -j KUBE-ROUTER-OUTPUT
-A KUBE-NWPLCY-ALLOWAPI00000000 -p tcp -m set --match-set KUBE-SRC-API0000000000000 src -m tcp --dport 8080 -m comment --comment "allow api" -j MARK --set-xmark 0x10000/0x10000
-A KUBE-NWPLCY-ALLOWAPI00000000 -m mark --mark 0x10000/0x10000 -j RETURN
-A KUBE-POD-FW-WEB0000000000000 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-POD-FW-WEB0000000000000 -d 10.244.1.5/32 -m addrtype --src-type LOCAL -j ACCEPT
-A KUBE-POD-FW-WEB0000000000000 -d 10.244.1.5/32 -j KUBE-NWPLCY-ALLOWAPI00000000
-A KUBE-POD-FW-WEB0000000000000 -m mark ! --mark 0x10000/0x10000 -m limit --limit 10/min --limit-burst 10 -j NFLOG --nflog-prefix "DROP web" --nflog-group 100
-A KUBE-POD-FW-WEB0000000000000 -m mark ! --mark 0x10000/0x10000 -j REJECT --reject-with icmp-port-unreachable
-A KUBE-POD-FW-WEB0000000000000 -j MARK --set-xmark 0x20000/0x20000
-A KUBE-POD-FW-WEB0000000000000 -j MARK --set-xmark 0x0/0x10000
-A KUBE-ROUTER-FORWARD -d 10.244.1.5/32 -j KUBE-POD-FW-WEB0000000000000
-A KUBE-ROUTER-FORWARD -d 10.244.1.5/32 -m physdev --physdev-is-bridged -j KUBE-POD-FW-WEB0000000000000
-A KUBE-ROUTER-FORWARD -m mark --mark 0x20000/0x20000 -j ACCEPT
-A KUBE-ROUTER-OUTPUT -d 10.244.1.5/32 -j KUBE-POD-FW-WEB0000000000000
-A KUBE-ROUTER-OUTPUT -m mark --mark 0x20000/0x20000 -j ACCEPT
COMMIT
`;
const LIVE_IPSET = `create KUBE-SRC-API0000000000000 hash:ip family inet hashsize 1024 maxelem 65536
add KUBE-SRC-API0000000000000 10.244.1.7
add KUBE-SRC-API0000000000000 10.244.2.9
`;
const LIVE_ADDR = JSON.stringify([
  { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
  { ifname: 'eth0', addr_info: [{ family: 'inet', local: '192.168.0.10', prefixlen: 24 }] },
  { ifname: 'kube-bridge', addr_info: [{ family: 'inet', local: '10.244.1.1', prefixlen: 24 }] },
]);
const LIVE_ROUTE = JSON.stringify([
  { dst: 'default', gateway: '192.168.0.1', dev: 'eth0' },
  { dst: '10.244.1.0/24', dev: 'kube-bridge', prefsrc: '10.244.1.1' },
  { dst: '10.244.2.0/24', gateway: '192.168.0.11', dev: 'eth0' },
]);

function fakeRunner(overrides: Record<string, ExecResult> = {}): { run: Runner; calls: string[] } {
  const calls: string[] = [];
  const ok = (stdout: string): ExecResult => ({ stdout, stderr: '', code: 0 });
  const table: Record<string, ExecResult> = {
    'iptables-nft-save -t filter': ok(LIVE_FILTER),
    'iptables-legacy-save -t filter': ok('*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n'),
    'ipset save': ok(LIVE_IPSET),
    'ip -d -j addr show': ok(LIVE_ADDR),
    'ip -4 -j route show': ok(LIVE_ROUTE),
    ...overrides,
  };
  return {
    calls,
    run: async (cmd, args) => {
      const key = [cmd, ...args].join(' ');
      calls.push(key);
      const r = table[key];
      if (!r) return { stdout: '', stderr: `${cmd}: unexpected call`, code: 127 };
      return r;
    },
  };
}
const allTools = () => true;

test('nodeViewFromIp: node addresses, the bridge subnet as local pods, the default route as uplink', (t) => {
  const v = nodeViewFromIp(JSON.parse(LIVE_ADDR), JSON.parse(LIVE_ROUTE), { node: 'n1', bridge: 'kube-bridge' });
  t.deepEqual(v.nodeAddresses, ['127.0.0.1', '192.168.0.10', '10.244.1.1']);
  t.deepEqual(v.localPodCIDRs, ['10.244.1.0/24']);
  t.is(v.uplink, 'eth0');
  t.deepEqual(nodeViewFromIp([{ ifname: 'kube-bridge', addr_info: [{ local: 'fd00:1:2:3::1', prefixlen: 64 }] }], [], { node: 'n', bridge: 'kube-bridge' }).localPodCIDRs, ['fd00:1:2:3:0:0:0:0/64']);
  t.throws(() => nodeViewFromIp({}, [], { node: 'n', bridge: 'b' }), { instanceOf: TraceError, message: /ip -j addr: expected a JSON array/ });
});

test('live: a denied packet stops at the pod chain REJECT, read-only commands only', async (t) => {
  const { run, calls } = fakeRunner();
  const r = await traceLive({ from: '10.244.2.8', to: '10.244.1.5', protocol: 'TCP', port: 8080 }, { runner: run, exists: allTools, node: 'n1' });
  t.is(r.verdict, 'REJECT');
  t.like(r.decidedBy, { node: 'n1', chain: 'KUBE-POD-FW-WEB0000000000000', index: 5, action: 'REJECT' });
  t.deepEqual(r.hops[0]!.logged, [{ group: 100, prefix: 'DROP web' }]);
  t.like(r.hops[0]!.packet, { hook: 'FORWARD', inIface: 'eth0', outIface: 'kube-bridge' });
  t.regex(r.backend, /^nft \(iptables-nft-save\)/);
  for (const c of calls) t.regex(c, /^(iptables-(nft|legacy)-save -t filter|ipset save|ip -d -j addr show|ip -4 -j route show)$/, 'only reads');
});

test('live: an allowed packet is marked by the policy chain and accepted by KUBE-ROUTER-FORWARD', async (t) => {
  const { run } = fakeRunner();
  const r = await traceLive({ from: '10.244.2.9', to: '10.244.1.5', protocol: 'TCP', port: 8080 }, { runner: run, exists: allTools, node: 'n1' });
  t.is(r.verdict, 'ACCEPT');
  t.like(r.decidedBy, { chain: 'KUBE-ROUTER-FORWARD', index: 3 });
  t.true(r.hops[0]!.steps.some((s) => s.chain === 'KUBE-NWPLCY-ALLOWAPI00000000' && s.index === 1 && s.action === 'MARK 0x10000'));
  // Same-node, bridged: the same pod chain decides.
  const b = await traceLive({ from: '10.244.1.7', to: '10.244.1.5', protocol: 'TCP', port: 8080 }, { runner: run, exists: allTools, node: 'n1' });
  t.is(b.verdict, 'ACCEPT');
  t.is(b.hops[0]!.kind, 'bridged');
  // The node itself reaches its pod through OUTPUT.
  const n = await traceLive({ from: '10.244.1.1', to: '10.244.1.5', protocol: 'TCP', port: 22 }, { runner: run, exists: allTools, node: 'n1' });
  t.like(n.decidedBy, { chain: 'KUBE-POD-FW-WEB0000000000000', index: 2, action: 'ACCEPT' });
  // Not this node's business.
  const far = await traceLive({ from: '10.244.2.9', to: '10.244.3.5', protocol: 'TCP', port: 80 }, { runner: run, exists: allTools, node: 'n1' });
  t.deepEqual(far.hops, []);
  t.regex(far.notes.join('\n'), /this node does not see the packet/);
});

test('live: backend choice follows the KUBE-ROUTER chains; errors are one clear line', async (t) => {
  const legacyHolds = fakeRunner({
    'iptables-nft-save -t filter': { stdout: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n', stderr: '', code: 0 },
    'iptables-legacy-save -t filter': { stdout: LIVE_FILTER, stderr: '', code: 0 },
  });
  const r = await traceLive({ from: '10.244.2.8', to: '10.244.1.5', protocol: 'TCP', port: 8080 }, { runner: legacyHolds.run, exists: allTools });
  t.regex(r.backend, /^legacy/);
  t.is(r.verdict, 'REJECT');

  const notRoot = fakeRunner({
    'iptables-nft-save -t filter': { stdout: '', stderr: 'iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n', code: 1 },
    'iptables-legacy-save -t filter': { stdout: '', stderr: 'Permission denied (you must be root)', code: 1 },
    'iptables-nft-save -t mangle': { stdout: '', stderr: 'Permission denied (you must be root)', code: 1 },
  });
  const e = await t.throwsAsync(traceLive({ from: '10.244.2.8', to: '10.244.1.5', protocol: 'TCP', port: 8080 }, { runner: notRoot.run, exists: allTools }), { instanceOf: TraceError });
  t.regex(e!.message, /needs root/);
  t.false(e!.message.includes('\n'));

  const noIpset = fakeRunner({ 'ipset save': { stdout: '', stderr: 'spawn ipset ENOENT', code: 127 } });
  await t.throwsAsync(traceLive({ from: '10.244.2.8', to: '10.244.1.5', protocol: 'TCP', port: 8080 }, { runner: noIpset.run, exists: allTools }), { instanceOf: TraceError, message: /ipset is not installed/ });

  await t.throwsAsync(traceLive({ from: 'x/a', to: '10.244.1.5', protocol: 'TCP', port: 80 }, { runner: fakeRunner().run, exists: allTools }), { instanceOf: TraceError, message: /--live takes IP addresses/ });
  await t.throwsAsync(traceLive({ from: '10.0.0.1', to: '10.244.1.5', protocol: 'TCP', port: 80 }, { netns: 'bad name; rm -rf /' }), { instanceOf: TraceError, message: /--netns: invalid network namespace name/ });
});

test('live: a rule the interpreter does not model is reported with its chain and number', async (t) => {
  const odd = LIVE_FILTER.replace('-A FORWARD -i kube-bridge -j ACCEPT', '-A FORWARD -m nfacct --nfacct-name x -j ACCEPT');
  const { run } = fakeRunner({ 'iptables-nft-save -t filter': { stdout: odd, stderr: '', code: 0 } });
  // Not isolated: the packet leaves KUBE-ROUTER-FORWARD and reaches the rule.
  await t.throwsAsync(traceLive({ from: '10.244.1.7', to: '8.8.8.8', protocol: 'UDP', port: 53 }, { runner: run, exists: allTools }), { instanceOf: TraceError, message: /chain FORWARD rule 2: unsupported match module: "nfacct"/ });
});

// ---------------------------------------------------------------------------------------------
// Command line (in process, through commander)

async function cli(args: string[]): Promise<{ out: string; code: number | undefined }> {
  const program = new Command('podwall').exitOverride();
  registerTrace(program);
  for (const c of program.commands) c.exitOverride();
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  const before = process.exitCode;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(args, { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  const code = process.exitCode as number | undefined;
  process.exitCode = before;
  return { out, code };
}

test.serial('cli: podwall trace -f ... prints the rules and the verdict; -o json has the hops', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podwall-trace-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeManifests(dir, [...conformanceObjects(), ...POLICIES]);
  const text = await cli(['trace', '-f', dir, '--from', 'x/c', '--to', 'x/b', '--port', '80/TCP']);
  t.regex(text.out, /^trace x\/c -> x\/b 80\/TCP \(rendered rules\)/);
  t.regex(text.out, /node node-1: FORWARD, routed in eth0/);
  t.regex(text.out, /verdict: DENIED/);
  t.not(text.code, 3);
  const json = JSON.parse((await cli(['trace', '-f', dir, '--from', 'x/a', '--to', 'x/b', '--port', '80', '-o', 'json'])).out);
  t.is(json.verdict, 'ACCEPT');
  t.is(json.agree, true);
  t.deepEqual(json.nodes, ['node-1']);
  t.deepEqual(Object.keys(json.hops[0].steps[0]).sort(), ['action', 'chain', 'index', 'line']);
  await t.throwsAsync(cli(['trace', '-f', dir, '--from', 'x/a', '--to', 'x/b', '--port', '80/TCP,81/TCP']), { instanceOf: UserError, message: /one port/ });
  await t.throwsAsync(cli(['trace', '-f', dir, '--from', 'x/a', '--to', 'x/b', '--port', '80', '--netns', 'n']), { instanceOf: UserError, message: /--netns goes with --live/ });
  await t.throwsAsync(cli(['trace', '--live', '-f', dir, '--from', '10.0.0.1', '--to', '10.0.0.2', '--port', '80']), { instanceOf: UserError, message: /takes no -f/ });
  await t.throwsAsync(cli(['trace', '-f', dir, '--from', 'x/a', '--to', 'x/b', '--port', '80', '--service-node-port-range', '5-1']), { instanceOf: UserError, message: /--service-node-port-range "5-1"/ });
});

test('interpret on a rendered table directly: the path packet for a local → local pair', (t) => {
  // The same building blocks the command uses, without it: proves the path packet reaches the pod chain.
  const store = cluster(POLICIES);
  const d = render(compile(store, { node: 'node-1' }), { ...RENDER, family: 'ipv4', node: 'node-1' });
  const v = clusterNodeViews(compile(store)).find((x) => x.node === 'node-1')!;
  const hop = packetPaths(v, podIP('y', 'a'), podIP('x', 'b'), 'tcp', 80)[0]!;
  const tr = interpret(filterTableFor(d), d.sets, hop.packet);
  t.is(tr.verdict, 'REJECT');
});

test('rendered: dual stack — a pod pair uses a common family, an IP given is traced as given (IPv6 rules)', (t) => {
  const store = storeOf([
    { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, spec: { podCIDRs: ['10.244.1.0/24', 'fd00:1::/64'] }, status: { addresses: [{ type: 'InternalIP', address: '172.18.0.2' }, { type: 'InternalIP', address: 'fc00::2' }] } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a', labels: { ns: 'a' } } },
    ...['p', 'q'].map((n, i) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: n, namespace: 'a', labels: { app: n } },
      spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'i' }] },
      status: { phase: 'Running', podIP: `10.244.1.${i + 5}`, podIPs: [{ ip: `10.244.1.${i + 5}` }, { ip: `fd00:1::${i + 5}` }] },
    })),
    // a/q admits IPv6 from anywhere and nothing over IPv4.
    policy('a', 'q', { podSelector: { matchLabels: { app: 'q' } }, ingress: [{ from: [{ ipBlock: { cidr: '::/0' } }] }] }),
  ]);
  const render6 = { ...RENDER, serviceClusterIPRanges: ['10.96.0.0/12', 'fd00:96::/108'] };
  const byName = traceRendered(store, { from: 'a/p', to: 'a/q', protocol: 'TCP', port: 80 }, { render: render6 });
  t.deepEqual([byName.src, byName.dst, byName.family, byName.verdict], ['10.244.1.5', '10.244.1.6', 'ipv4', 'REJECT']);
  const v6 = traceRendered(store, { from: 'fd00:1::5', to: 'a/q', protocol: 'TCP', port: 80 }, { render: render6 });
  t.deepEqual([v6.src, v6.dst, v6.family, v6.verdict], ['fd00:1::5', 'fd00:1::6', 'ipv6', 'ACCEPT']);
  t.true(v6.hops[0]!.steps.some((s) => s.action.startsWith('MARK') && /a\/q ingress rule 0/.test(s.line)));
  t.true(byName.agree && v6.agree);
});
