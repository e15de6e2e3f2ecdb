// `podwall trace --live` through ClusterNetworkPolicy tier chains on a real kernel (root): node-1's
// rules and sets for the conformance cluster with an Admin Deny, an Admin Accept over a
// NetworkPolicy and a Baseline Deny are loaded with ipset restore and iptables-restore (nft backend)
// into a network namespace of ours; the live trace must show the PODWALL-ADM-/PODWALL-BSL- chain that
// decides, the same rules as the trace of the rendered rules, and the simulator's verdict. The
// namespace is deleted in test.after.always.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Command } from 'commander';
import { registerTrace } from '../../src/cli/trace.js';
import { traceRendered, type TraceReport } from '../../src/dataplane/trace.js';
import { compile } from '../../src/policy/compile.js';
import { evaluate } from '../../src/sim/evaluate.js';
import { render } from '../../src/dataplane/render.js';
import { writeIpsetRestore, writeRestore, type IpsetOp } from '../../src/iptables/write.js';
import { conformanceObjects, podIP, policy, storeOf, type Raw } from '../support/conformance.js';

const ns = `podwall-tcnp-${randomBytes(4).toString('hex')}`;
let created = false;
const inNs = (cmd: string[], input = '') => execFileSync('ip', ['netns', 'exec', ns, ...cmd], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });

const cnp = (name: string, tier: string, priority: number, subject: Raw, rules: Raw): Raw => ({ apiVersion: 'policy.networking.k8s.io/v1alpha2', kind: 'ClusterNetworkPolicy', metadata: { name }, spec: { tier, priority, subject, ...rules } });
const nsSel = (n: string) => ({ namespaces: { matchLabels: { ns: n } } });
const RENDER = { serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] as [number, number] };
const store = storeOf([
  ...conformanceObjects(),
  // x/b is isolated by a NetworkPolicy that allows only x/a on 80; z's Admin Accept opens 81 to it.
  policy('x', 'b-from-a', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'a' } } }], ports: [{ port: 80, protocol: 'TCP' }] }] }),
  cnp('deny-x-81', 'Admin', 10, nsSel('z'), { ingress: [{ name: 'deny-x-81', action: 'Deny', from: [nsSel('x')], protocols: [{ tcp: { destinationPort: { number: 81 } } }] }] }),
  cnp('monitor-x-b', 'Admin', 20, { pods: { namespaceSelector: { matchLabels: { ns: 'x' } }, podSelector: { matchLabels: { pod: 'b' } } } }, { ingress: [{ name: 'from-z', action: 'Accept', from: [nsSel('z')], protocols: [{ tcp: { destinationPort: { number: 81 } } }] }] }),
  cnp('x-a-default', 'Baseline', 10, { pods: { namespaceSelector: { matchLabels: { ns: 'x' } }, podSelector: { matchLabels: { pod: 'a' } } } }, { ingress: [{ name: 'deny-z', action: 'Deny', from: [nsSel('z')] }] }),
]);
const desired = render(compile(store, { node: 'node-1' }), { ...RENDER, family: 'ipv4', node: 'node-1' });

test.before(() => {
  if (process.getuid?.() !== 0) throw new Error('the live trace test needs root (it creates a network namespace)');
  execFileSync('ip', ['netns', 'add', ns]);
  created = true;
  // node-1: an uplink (a veth pair kept inside the namespace: nothing leaves it) and kube-bridge.
  for (const cmd of [
    ['ip', 'link', 'set', 'lo', 'up'],
    ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0-peer'],
    ['ip', 'addr', 'add', '172.18.0.2/24', 'dev', 'eth0'],
    ['ip', 'link', 'set', 'eth0-peer', 'up'],
    ['ip', 'link', 'set', 'eth0', 'up'],
    ['ip', 'route', 'add', 'default', 'via', '172.18.0.1', 'dev', 'eth0'],
    ['ip', 'link', 'add', 'kube-bridge', 'type', 'bridge'],
    ['ip', 'addr', 'add', '10.244.1.1/24', 'dev', 'kube-bridge'],
    ['ip', 'link', 'set', 'kube-bridge', 'up'],
  ])
    inNs(cmd);
  const ops: IpsetOp[] = [];
  for (const s of desired.sets) {
    ops.push({ op: 'create', name: s.name, type: s.type, family: s.family, options: s.options });
    for (const m of s.members) ops.push({ op: 'add', name: s.name, ...m });
  }
  inNs(['ipset', 'restore'], writeIpsetRestore(ops));
  inNs(['iptables-nft-restore', '--noflush'], writeRestore([{ name: 'filter', chains: desired.chains, insertRules: desired.jumps.map((j) => ({ chain: j.chain, position: 1, rule: j.rule })) }]));
});

test.after.always(() => {
  if (created) execFileSync('ip', ['netns', 'del', ns]);
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

const path = (r: TraceReport) => r.hops.flatMap((h) => h.steps.map((s) => `${s.chain}#${s.index} ${s.action}`));

// [from, to, port, verdict, the chain that decides (prefix; for an ACCEPT, the chain whose rule marked it), why]
const CASES: [string, string, number, 'ACCEPT' | 'REJECT', string, string][] = [
  [podIP('x', 'a'), podIP('z', 'a'), 81, 'REJECT', 'PODWALL-ADM-', 'Admin Deny x → z on 81'],
  [podIP('x', 'a'), podIP('z', 'a'), 80, 'ACCEPT', 'KUBE-ROUTER-FORWARD', 'no Admin rule matches 80, nothing isolates z/a'],
  [podIP('z', 'b'), podIP('x', 'b'), 81, 'ACCEPT', 'PODWALL-ADM-', "Admin Accept from z over x/b's NetworkPolicy"],
  [podIP('x', 'a'), podIP('x', 'b'), 80, 'ACCEPT', 'KUBE-NWPLCY-', "x/b's NetworkPolicy"],
  [podIP('z', 'b'), podIP('x', 'b'), 80, 'REJECT', 'KUBE-POD-FW-', "x/b's NetworkPolicy (the Admin Accept is for 81 only)"],
  [podIP('z', 'b'), podIP('x', 'a'), 80, 'REJECT', 'PODWALL-BSL-', 'Baseline Deny from z: nothing isolates x/a'],
  [podIP('y', 'a'), podIP('x', 'a'), 80, 'ACCEPT', 'KUBE-ROUTER-FORWARD', 'the Baseline names z only'],
];

test.serial('trace --live: the tier chains decide as rendered and as the simulator says', async (t) => {
  const plan = compile(store);
  for (const [from, to, port, verdict, chain, why] of CASES) {
    const live = JSON.parse(await cli(['trace', '--live', '--netns', ns, '--node', 'node-1', '--from', from, '--to', to, '--port', `${port}/TCP`, '-o', 'json'])) as TraceReport;
    const what = `${from} -> ${to}:${port} (${why})`;
    t.is(live.verdict, verdict, what);
    // An accepted packet is first marked 0x10000 in the chain whose rule accepts it, and accepted at
    // the end of KUBE-ROUTER-FORWARD.
    const marked = live.hops.flatMap((h) => h.steps).find((s) => s.action === 'MARK 0x10000')?.chain;
    const decided = verdict === 'REJECT' || chain === 'KUBE-ROUTER-FORWARD' ? live.decidedBy!.chain : marked ?? 'nothing marked';
    t.true(decided.startsWith(chain), `${what}: decided in ${decided}; path ${path(live).join(', ')}`);
    const rendered = traceRendered(store, { from, to, protocol: 'TCP', port }, { node: 'node-1', render: RENDER });
    t.deepEqual(path(live), path(rendered), `${what}: the kernel's rules as rendered`);
    t.is(evaluate(plan, { src: from, dst: to, protocol: 'TCP', port }).allowed, verdict === 'ACCEPT', `${what}: simulator`);
  }
  const text = await cli(['trace', '--live', '--netns', ns, '--node', 'node-1', '--from', podIP('x', 'a'), '--to', podIP('z', 'a'), '--port', '81/TCP']);
  t.regex(text, /KUBE-POD-FW-\S+ #\d+ +JUMP PODWALL-ADM-[A-Z2-7]{16}/, 'the jump from the pod chain to the Admin chain');
  t.regex(text, /PODWALL-ADM-[A-Z2-7]{16} #\d+ +NFLOG 100 .*cnp\/deny-x-81/, 'the NFLOG of the Deny names the policy');
  t.regex(text, /verdict: DENIED \(REJECT on node node-1 at PODWALL-ADM-[A-Z2-7]{16} #\d+\)/);
});
