// `podwall trace --live` on a node whose pods are routed, not bridged (root): pods in their own network
// namespaces, each behind its own veth with a host route (as Calico-style CNIs do), no bridge, and no
// --bridge given. podwall's rules are applied in the node namespace; a real connection the kernel
// refuses must be traced as DENIED through the same chains, and an allowed one as ALLOWED. A --netns
// that does not exist is named as such. Namespaces and servers are removed in test.after.always.
import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Command } from 'commander';
import { registerTrace } from '../../src/cli/trace.js';
import type { TraceReport } from '../../src/dataplane/trace.js';
import type { Verdict } from '../../src/iptables/interpret.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { compile } from '../../src/policy/compile.js';
import { render } from '../../src/dataplane/render.js';
import { Dataplane } from '../../src/dataplane/apply.js';
import { podChainName } from '../../src/dataplane/names.js';
import { policy, type Raw } from '../support/conformance.js';
import { applyObjects } from '../support/expectations.js';
import { deleteNamespaces, newNamespace, sh, until } from '../support/kernel.js';

const servers: ChildProcess[] = [];
test.after.always(() => {
  for (const s of servers) if (s.pid && s.exitCode === null) process.kill(s.pid, 'SIGKILL');
  deleteNamespaces();
});

const POD = (name: string, ip: string): Raw => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'x', labels: { pod: name } },
  spec: { nodeName: 'node-1', containers: [{ name: 's', image: 'x' }] },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
});
const A = '10.244.1.10';
const B = '10.244.1.11';
const C = '10.244.1.12';

let node = '';
const pods: Record<string, string> = {};

/** A pod namespace behind its own veth: pod eth0 ip/32, node side 10.244.1.1/32 and a host route. */
function addPod(name: string, ip: string): void {
  const ns = newNamespace('podwall-routed', name);
  pods[ip] = ns;
  const host = `v${name}`;
  sh(node, ['ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  sh(node, ['ip', 'addr', 'add', '10.244.1.1/32', 'dev', host]);
  sh(node, ['ip', 'link', 'set', host, 'up']);
  sh(node, ['ip', 'route', 'add', `${ip}/32`, 'dev', host]);
  sh(ns, ['ip', 'link', 'set', 'lo', 'up']);
  sh(ns, ['ip', 'addr', 'add', `${ip}/32`, 'dev', 'eth0']);
  sh(ns, ['ip', 'link', 'set', 'eth0', 'up']);
  sh(ns, ['ip', 'route', 'add', '10.244.1.1', 'dev', 'eth0']);
  sh(ns, ['ip', 'route', 'add', 'default', 'via', '10.244.1.1']);
  const s = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', "require('net').createServer((s) => s.end()).listen(80, '0.0.0.0', () => console.log('ready'))"], { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.push(s);
  (s as ChildProcess & { ready: Promise<void> }).ready = new Promise((resolve) => s.stdout!.on('data', (d) => String(d).includes('ready') && resolve()));
}

/** A real TCP connection from one pod to another: connected, refused or timeout. */
function connect(from: string, to: string, port: number): string {
  const js = `const s = require('net').connect({ host: '${to}', port: ${port}, timeout: 2000 }); s.on('connect', () => { console.log('connected'); process.exit(0); }); s.on('error', (e) => { console.log(e.code); process.exit(0); }); s.on('timeout', () => { console.log('timeout'); process.exit(0); });`;
  return spawnSync('ip', ['netns', 'exec', pods[from]!, process.execPath, '-e', js], { encoding: 'utf8' }).stdout.trim();
}

test.before(async () => {
  node = newNamespace('podwall-routed', 'node');
  sh(node, ['ip', 'link', 'set', 'lo', 'up']);
  sh(node, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0-peer']);
  sh(node, ['ip', 'addr', 'add', '172.18.0.2/24', 'dev', 'eth0']);
  sh(node, ['ip', 'link', 'set', 'eth0', 'up']);
  sh(node, ['ip', 'link', 'set', 'eth0-peer', 'up']);
  sh(node, ['ip', 'route', 'add', 'default', 'via', '172.18.0.1', 'dev', 'eth0']);
  sh(node, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  addPod('a', A);
  addPod('b', B);
  addPod('c', C);
  await Promise.all(servers.map((s) => (s as ChildProcess & { ready: Promise<void> }).ready));
  const store = new ClusterStore();
  applyObjects(store, [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x', labels: { ns: 'x' } } },
    { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1' }, spec: { podCIDR: '10.244.1.0/24' }, status: { addresses: [{ type: 'InternalIP', address: '172.18.0.2' }] } },
    POD('a', A),
    POD('b', B),
    POD('c', C),
    // x/b takes nothing in; x/c takes 80 from x/a only.
    policy('x', 'b-closed', { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Ingress'] }),
    policy('x', 'c-from-a', { podSelector: { matchLabels: { pod: 'c' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'a' } } }], ports: [{ port: 80 }] }] }),
  ]);
  const dp = new Dataplane({ netns: node, backend: 'nft', families: ['ipv4'] });
  await dp.init();
  await dp.apply([render(compile(store, { node: 'node-1' }), { family: 'ipv4', node: 'node-1', serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] })]);
});

async function cli(args: string[]): Promise<string> {
  const program = new Command('podwall').exitOverride();
  registerTrace(program);
  for (const c of program.commands) c.exitOverride();
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(args, { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  return out;
}

const CASES: { from: string; to: string; kernel: string; verdict: Verdict; chain?: string }[] = [
  { from: A, to: B, kernel: 'ECONNREFUSED', verdict: 'REJECT', chain: podChainName('x', 'b') },
  { from: C, to: B, kernel: 'ECONNREFUSED', verdict: 'REJECT', chain: podChainName('x', 'b') },
  { from: B, to: C, kernel: 'ECONNREFUSED', verdict: 'REJECT', chain: podChainName('x', 'c') },
  { from: A, to: C, kernel: 'connected', verdict: 'ACCEPT' },
  { from: B, to: A, kernel: 'connected', verdict: 'ACCEPT' },
];

test.serial('routed pods, no bridge, no --bridge: trace --live says DENIED exactly where the kernel refuses', async (t) => {
  for (const c of CASES) {
    t.is(connect(c.from, c.to, 80), c.kernel, `the kernel: ${c.from} -> ${c.to}:80`);
    const r: TraceReport = JSON.parse(await cli(['trace', '--live', '--netns', node, '--node', 'node-1', '--from', c.from, '--to', c.to, '--port', '80/TCP', '-o', 'json']));
    t.is(r.verdict, c.verdict, `trace --live: ${c.from} -> ${c.to}:80`);
    t.is(r.hops.length, 1);
    t.like(r.hops[0]!.packet, { hook: 'FORWARD', inIface: `v${c.from === A ? 'a' : c.from === B ? 'b' : 'c'}`, outIface: `v${c.to === A ? 'a' : c.to === B ? 'b' : 'c'}` });
    t.falsy(r.hops[0]!.packet.bridged, 'routed, not bridged');
    if (c.chain) t.is(r.decidedBy?.chain, c.chain);
  }
  const text = await cli(['trace', '--live', '--netns', node, '--from', A, '--to', B, '--port', '80/TCP']);
  t.regex(text, /verdict: DENIED/);
  t.notRegex(text, /ALLOWED/);
});

test.serial('routed pod to the node itself and to the outside: INPUT and FORWARD out the uplink', async (t) => {
  const toNode: TraceReport = JSON.parse(await cli(['trace', '--live', '--netns', node, '--from', B, '--to', '172.18.0.2', '--port', '22/TCP', '-o', 'json']));
  t.like(toNode.hops[0]!.packet, { hook: 'INPUT', inIface: 'vb' });
  const out: TraceReport = JSON.parse(await cli(['trace', '--live', '--netns', node, '--from', B, '--to', '192.0.2.1', '--port', '443/TCP', '-o', 'json']));
  t.like(out.hops[0]!.packet, { hook: 'FORWARD', inIface: 'vb', outIface: 'eth0' });
  t.is(out.verdict, 'ACCEPT', 'x/b is isolated for ingress only');
});

test.serial('a --netns that does not exist is named as such', async (t) => {
  const missing = `podwall-no-such-ns-${process.pid}`;
  const e = await t.throwsAsync(cli(['trace', '--live', '--netns', missing, '--from', A, '--to', B, '--port', '80/TCP']));
  t.regex(e!.message, new RegExp(`network namespace ${missing}.*does not exist`));
  t.notRegex(e!.message, /installed/);
});

test.serial('two addresses this node does not route between are NOT SEEN, never ALLOWED', async (t) => {
  const text = await cli(['trace', '--live', '--netns', node, '--from', '192.0.2.1', '--to', '198.51.100.1', '--port', '80/TCP']);
  t.regex(text, /verdict: NOT SEEN/);
  t.notRegex(text, /ALLOWED/);
  await until('servers alive', () => servers.every((s) => s.exitCode === null));
});
