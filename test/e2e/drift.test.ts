// Drift repaired in well under a second (root): the real agent (`podwall run --manifests DIR`) in a
// network namespace made here, one per backend, with the periodic resync far away (1 h) so only the
// drift watcher can repair. Each kind of tampering is done by hand with iptables/ipset, and the test
// waits until the live chains, jumps and sets equal the render again; the time from the tampering to
// the repair is measured (polling the kernel, so it includes up to one poll) and logged — no timed
// assertion (the machine is shared). nft: `nft monitor` sees iptables changes at once; legacy: the
// periodic check reads the tables. Sets have no events on either backend: the check reads their headers.
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { loadManifests } from '../../src/cluster/manifests.js';
import { digestDir } from '../../src/cluster/manifest-source.js';
import { compile } from '../../src/policy/compile.js';
import { render, type Desired } from '../../src/dataplane/render.js';
import { policyChainName } from '../../src/dataplane/names.js';
import { conformanceObjects, podIP, policy } from '../support/conformance.js';
import { bins, deleteNamespaces, liveDiff, newNamespace, sh, until } from '../support/kernel.js';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'podwall-drift-'));
const agents: ChildProcess[] = [];
test.after.always(() => {
  for (const a of agents) if (a.exitCode === null) a.kill('SIGKILL');
  deleteNamespaces();
  rmSync(work, { recursive: true, force: true });
});

const POLICIES = [
  policy('x', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] }),
  policy('x', 'allow-from-z', { podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }] }),
];

interface Agent {
  ns: string;
  backend: 'nft' | 'legacy';
  dir: string;
  statusFile: string;
  child: ChildProcess;
  log: () => string;
}

function startAgent(backend: 'nft' | 'legacy', logLevel = 'info'): Agent {
  const ns = newNamespace('podwall-drift', backend);
  const dir = mkdtempSync(join(work, `${backend}-`));
  sh(ns, ['ip', 'link', 'set', 'lo', 'up']);
  writeFileSync(join(dir, 'cluster.yaml'), conformanceObjects().map((o) => stringify(o)).join('---\n'));
  writeFileSync(join(dir, 'policies.yaml'), POLICIES.map((o) => stringify(o)).join('---\n'));
  const statusFile = join(dir, '..', `status-${dir.split('/').pop()}.json`);
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, 'run', '--manifests', dir, '--hostname-override', 'node-1', '--status-file', statusFile, '--health-port', '0', '--iptables-sync-period', '1h', '--iptables-backend', backend, '--log-level', logLevel], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  agents.push(child);
  return { ns, backend, dir, statusFile, child, log: () => log };
}

async function desired(a: Agent): Promise<Desired[]> {
  const { store } = await loadManifests([a.dir]);
  return [render(compile(store, { node: 'node-1' }), { family: 'ipv4', node: 'node-1', serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767], defaultDeny: true })];
}

async function applied(a: Agent): Promise<void> {
  const digest = await digestDir(a.dir);
  await until(`the ${a.backend} agent to apply`, () => {
    if (a.child.exitCode !== null) throw new Error(`agent exited: ${a.log()}`);
    try {
      return JSON.parse(readFileSync(a.statusFile, 'utf8')).manifestsDigest === digest;
    } catch {
      return false;
    }
  }, 60_000);
}

/** Tampers, then waits for the live state to equal the render again; returns the measured milliseconds. */
async function repairTime(t: ExecutionContext, a: Agent, want: Desired[], what: string, tamper: () => void): Promise<number> {
  t.deepEqual(liveDiff(a.ns, a.backend, want, ['ipv4']), [], `${what}: in sync before`);
  const t0 = performance.now();
  tamper();
  await until(`${a.backend}: ${what} repaired`, () => liveDiff(a.ns, a.backend, want, ['ipv4']).length === 0, 20_000);
  const ms = performance.now() - t0;
  t.log(`${a.backend}: ${what} repaired in ${Math.round(ms)} ms (measured by polling the kernel)`);
  return ms;
}

for (const backend of ['nft', 'legacy'] as const) {
  test.serial(`${backend}: the agent repairs tampering without waiting for the resync`, async (t) => {
    const a = startAgent(backend);
    await applied(a);
    const want = await desired(a);
    const ipt = `iptables-${backend}`;
    const peerSet = want[0]!.sets.find((s) => s.name.startsWith('KUBE-SRC-') && s.members.length > 0)!;
    const chain = policyChainName('x/allow-from-z', 'ingress');
    const times: Record<string, number> = {};
    times['flushed KUBE-ROUTER-FORWARD'] = await repairTime(t, a, want, 'flushed KUBE-ROUTER-FORWARD', () => sh(a.ns, [ipt, '-F', 'KUBE-ROUTER-FORWARD']));
    times['deleted jump'] = await repairTime(t, a, want, 'deleted jump (FORWARD 1)', () => sh(a.ns, [ipt, '-D', 'FORWARD', '1']));
    times['foreign ACCEPT at FORWARD 1'] = await repairTime(t, a, want, 'foreign ACCEPT inserted at FORWARD 1', () => sh(a.ns, [ipt, '-I', 'FORWARD', '1', '-j', 'ACCEPT']));
    times['smuggled member'] = await repairTime(t, a, want, 'member smuggled into a peer set', () => sh(a.ns, ['ipset', 'add', peerSet.name, podIP('y', 'a')]));
    times['flushed policy chain'] = await repairTime(t, a, want, 'flushed policy chain', () => sh(a.ns, [ipt, '-F', chain]));
    times['rule appended to a policy chain'] = await repairTime(t, a, want, 'rule appended to a policy chain', () => sh(a.ns, [ipt, '-A', chain, '-j', 'MARK', '--set-xmark', '0x10000/0x10000']));
    times['member removed'] = await repairTime(t, a, want, 'member removed from a peer set', () => sh(a.ns, ['ipset', 'del', peerSet.name, peerSet.members[0]!.entry]));
    // The foreign ACCEPT stays (podwall never touches others' rules), below podwall's jump.
    const fwd = sh(a.ns, [bins(backend).save.ipv4, '-t', 'filter']).split('\n').filter((l) => l.startsWith('-A FORWARD '));
    t.regex(fwd[0]!, /-j KUBE-ROUTER-FORWARD/);
    t.true(fwd.includes('-A FORWARD -j ACCEPT'));
    // The agent logged the repairs with the time it measured, and says what it saw.
    await until('the repair log lines', () => (a.log().match(/repaired drift/g) ?? []).length >= 7);
    const logged = a.log().split('\n').filter((l) => l.includes('repaired drift')).map((l) => JSON.parse(l) as { repairedInMs: number; seenBy: string });
    t.log(`${backend}: the agent's own figures (detection to repaired): ${logged.map((l) => `${l.repairedInMs} ms (${l.seenBy})`).join(', ')}`);
    if (backend === 'nft') t.true(logged.some((l) => l.seenBy === 'nft-monitor'), `nft monitor saw the iptables changes: ${a.log().split('\n').filter((l) => /monitor/.test(l)).join('\n')}`);
    t.true(logged.every((l) => l.seenBy !== undefined));
    const sorted = Object.values(times).sort((x, y) => x - y);
    t.log(`${backend}: median ${Math.round(sorted[Math.floor(sorted.length / 2)]!)} ms, max ${Math.round(sorted[sorted.length - 1]!)} ms over ${sorted.length} kinds`);
    a.child.kill('SIGTERM');
    await new Promise((r) => a.child.once('exit', r));
  });
}

test.serial('nft: podwall\'s own applies are not drift (its restores are told apart by pid)', async (t) => {
  const a = startAgent('nft', 'debug');
  await applied(a);
  await until('nft monitor running', () => a.log().includes('"msg":"applied"'));
  for (let i = 0; i < 5; i++) {
    writeFileSync(join(a.dir, 'policies.yaml'), [...POLICIES, policy('y', `p${i}`, { podSelector: {}, policyTypes: ['Ingress'] })].map((o) => stringify(o)).join('---\n'));
    await applied(a);
  }
  t.deepEqual(liveDiff(a.ns, 'nft', await desired(a), ['ipv4']), []);
  const lines = (re: RegExp) => a.log().split('\n').filter((l) => re.test(l)).join('\n');
  t.is(lines(/repaired drift/), '', 'nothing to repair');
  t.is(lines(/reported drift needed no repair/), '', 'no own change was reported as drift');
  t.is(lines(/nft monitor is not running/), '', 'the monitor ran');
  a.child.kill('SIGTERM');
  await new Promise((r) => a.child.once('exit', r));
});
