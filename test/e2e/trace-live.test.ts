// `podwall trace --live` against a real kernel (root): in network namespaces created here, the rules and
// sets podwall renders for node-1 of the conformance cluster are loaded with iptables-restore and ipset
// restore (nft backend in one namespace, legacy in the other), a `kube-bridge` with an address of the
// pod CIDR and an uplink are added, and the command reads them back (read-only) and traces packets.
// The live trace must reach the same verdict through the same rules as the trace of the rendered rules.
// The namespaces are deleted in test.after.always.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Command } from 'commander';
import { registerTrace } from '../../src/cli/trace.js';
import { traceRendered, type TraceReport } from '../../src/dataplane/trace.js';
import { compile } from '../../src/policy/compile.js';
import { render, type Desired } from '../../src/dataplane/render.js';
import { podChainName } from '../../src/dataplane/names.js';
import type { Verdict } from '../../src/iptables/interpret.js';
import { writeIpsetRestore, writeRestore, type IpsetOp } from '../../src/iptables/write.js';
import { conformanceObjects, podIP, policy, storeOf } from '../support/conformance.js';

const id = randomBytes(4).toString('hex');
const NAMESPACES = { nft: `podwall-trace-${id}-n`, legacy: `podwall-trace-${id}-l` } as const;
const created: string[] = [];

function inNs(ns: string, cmd: string[], input?: string): string {
  try {
    return execFileSync('ip', ['netns', 'exec', ns, ...cmd], { input: input ?? '', encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd.join(' ')} in ${ns} failed: ${err.stderr || err.message}`);
  }
}

const RENDER = { serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] as [number, number] };
const store = storeOf([
  ...conformanceObjects(),
  policy('x', 'b-from-a', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'a' } } }], ports: [{ port: 80, protocol: 'TCP' }] }] }),
  policy('y', 'egress-to-z', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }] }),
]);
const desired: Desired = render(compile(store, { node: 'node-1' }), { ...RENDER, family: 'ipv4', node: 'node-1' });

function load(ns: string, backend: 'nft' | 'legacy'): void {
  // node-1: uplink 172.18.0.2/24 (one end of a veth pair whose other end stays in the namespace:
  // nothing leaves it), kube-bridge 10.244.1.1/24.
  inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
  inNs(ns, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0-peer']);
  inNs(ns, ['ip', 'addr', 'add', '172.18.0.2/24', 'dev', 'eth0']);
  inNs(ns, ['ip', 'link', 'set', 'eth0-peer', 'up']);
  inNs(ns, ['ip', 'link', 'set', 'eth0', 'up']);
  inNs(ns, ['ip', 'route', 'add', 'default', 'via', '172.18.0.1', 'dev', 'eth0']);
  inNs(ns, ['ip', 'link', 'add', 'kube-bridge', 'type', 'bridge']);
  inNs(ns, ['ip', 'addr', 'add', '10.244.1.1/24', 'dev', 'kube-bridge']);
  inNs(ns, ['ip', 'link', 'set', 'kube-bridge', 'up']);
  const ops: IpsetOp[] = [];
  for (const s of desired.sets) {
    ops.push({ op: 'create', name: s.name, type: s.type, family: s.family, options: s.options });
    for (const m of s.members) ops.push({ op: 'add', name: s.name, ...m });
  }
  inNs(ns, ['ipset', 'restore'], writeIpsetRestore(ops));
  const payload = writeRestore([{ name: 'filter', chains: desired.chains, insertRules: desired.jumps.map((j) => ({ chain: j.chain, position: 1, rule: j.rule })) }]);
  inNs(ns, [`iptables-${backend}-restore`, '--noflush'], payload);
}

test.before(() => {
  if (process.getuid?.() !== 0) throw new Error('the live trace test needs root (it creates network namespaces)');
  for (const [backend, ns] of Object.entries(NAMESPACES) as ['nft' | 'legacy', string][]) {
    execFileSync('ip', ['netns', 'add', ns]);
    created.push(ns);
    load(ns, backend);
  }
});

test.after.always(() => {
  for (const ns of created) {
    try {
      execFileSync('ip', ['netns', 'del', ns]);
    } catch {
      /* keep deleting the others */
    }
  }
});

async function cliJson(args: string[]): Promise<TraceReport & { backend: string }> {
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
  return JSON.parse(out);
}

/** The rules a hop went through, without the text (the kernel may print a rule's options in its own order). */
const path = (r: TraceReport) => r.hops.flatMap((h) => h.steps.map((s) => `${s.chain}#${s.index} ${s.action}`));

const CASES: { from: string; to: string; port: number; verdict: Verdict }[] = [
  { from: podIP('x', 'c'), to: podIP('x', 'b'), port: 80, verdict: 'REJECT' }, // node-2 pod → local isolated pod: not allowed
  { from: podIP('x', 'a'), to: podIP('x', 'b'), port: 80, verdict: 'ACCEPT' }, // bridged, allowed by x/b-from-a
  { from: podIP('x', 'a'), to: podIP('x', 'b'), port: 81, verdict: 'REJECT' }, // wrong port
  { from: podIP('y', 'a'), to: podIP('z', 'c'), port: 80, verdict: 'ACCEPT' }, // egress to z, routed out
  { from: podIP('y', 'a'), to: '172.18.0.2', port: 22, verdict: 'REJECT' }, // egress to the node itself: INPUT
  { from: '172.18.0.2', to: podIP('x', 'b'), port: 80, verdict: 'ACCEPT' }, // the node reaches its pods
];

for (const backend of ['nft', 'legacy'] as const) {
  test.serial(`live (${backend}): verdicts and deciding rules equal the trace of the rendered rules`, async (t) => {
    const ns = NAMESPACES[backend];
    for (const c of CASES) {
      const live = await cliJson(['trace', '--live', '--netns', ns, '--node', 'node-1', '--from', c.from, '--to', c.to, '--port', `${c.port}/TCP`, '-o', 'json']);
      t.regex(live.backend, new RegExp(`^${backend} `), 'reads the backend holding the KUBE-ROUTER chains');
      t.is(live.verdict, c.verdict, `${c.from} -> ${c.to}:${c.port}`);
      const rendered = traceRendered(store, { from: c.from, to: c.to, protocol: 'TCP', port: c.port }, { node: 'node-1', render: RENDER });
      t.deepEqual(path(live), path(rendered), `${c.from} -> ${c.to}:${c.port}: same rules in the kernel as rendered`);
      t.is(live.decidedBy?.chain, rendered.decidedBy?.chain);
      t.is(live.decidedBy?.index, rendered.decidedBy?.index);
    }
    const denied = await cliJson(['trace', '--live', '--netns', ns, '--from', podIP('x', 'c'), '--to', podIP('x', 'b'), '--port', '80/TCP', '-o', 'json']);
    t.is(denied.decidedBy!.chain, podChainName('x', 'b'));
    t.is(denied.decidedBy!.action, 'REJECT');
    t.deepEqual(denied.hops[0]!.logged, [{ group: 100, prefix: `podwall/1 deny in ${podChainName('x', 'b').slice('KUBE-POD-FW-'.length)} x/b` }]);
    t.like(denied.hops[0]!.packet, { hook: 'FORWARD', inIface: 'eth0', outIface: 'kube-bridge' });
  });
}

test.serial('live: trace only reads — the tables and sets are unchanged afterwards', async (t) => {
  const ns = NAMESPACES.nft;
  const before = [inNs(ns, ['iptables-nft-save', '-t', 'filter']), inNs(ns, ['ipset', 'save'])].map((s) => s.replace(/^#.*$/gm, ''));
  await cliJson(['trace', '--live', '--netns', ns, '--from', podIP('x', 'a'), '--to', podIP('x', 'b'), '--port', '80/TCP', '-o', 'json']);
  const after = [inNs(ns, ['iptables-nft-save', '-t', 'filter']), inNs(ns, ['ipset', 'save'])].map((s) => s.replace(/^#.*$/gm, ''));
  t.deepEqual(after, before);
  t.true(before[0]!.includes(':KUBE-ROUTER-FORWARD'), 'the rules were really loaded');
});
