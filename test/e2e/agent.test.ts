// The node agent (`podwall run --manifests DIR`) as a real process inside a network namespace made
// here: after every kind of change in DIR the live chains and sets converge to the render of DIR;
// drift made from outside is repaired (the drift watcher, logged); a SIGKILL mid-sync and a restart
// converge again; SIGTERM exits 0 and leaves the rules in place. Waits on the agent's status file (its
// applied generation) and its log, never on sleeps.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { loadManifests } from '../../src/cluster/manifests.js';
import { digestDir } from '../../src/cluster/manifest-source.js';
import { compile } from '../../src/policy/compile.js';
import { render } from '../../src/dataplane/render.js';
import { conformanceObjects, policy, type Raw } from '../support/conformance.js';
import { extraPod } from '../support/scenarios.js';
import { deleteNamespaces, liveDiff, newNamespace, sh, until } from '../support/kernel.js';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'podwall-agent-'));
const statusFile = join(dir, '..', `${dir.split('/').pop()}-status.json`);
const agents: ChildProcess[] = [];
test.after.always(() => {
  for (const a of agents) a.kill('SIGKILL');
  deleteNamespaces();
  rmSync(dir, { recursive: true, force: true });
  rmSync(statusFile, { force: true });
});

const write = (file: string, objects: Raw[]) => writeFileSync(join(dir, file), objects.map((o) => stringify(o)).join('---\n'));

function startAgent(ns: string): ChildProcess {
  const a = spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, 'run', '--manifests', dir, '--hostname-override', 'node-1', '--status-file', statusFile, '--health-port', '0', '--iptables-sync-period', '2s', '--iptables-backend', 'nft', '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  a.stdout!.on('data', (d) => (log += d));
  a.stderr!.on('data', (d) => (log += d));
  (a as ChildProcess & { log: () => string }).log = () => log;
  agents.push(a);
  return a;
}

function status(): { appliedVersion: number; manifestsDigest?: string; syncs: number; lastError?: string } | undefined {
  try {
    return JSON.parse(readFileSync(statusFile, 'utf8'));
  } catch {
    return undefined;
  }
}

async function desired() {
  const { store } = await loadManifests([dir]);
  const plan = compile(store, { node: 'node-1' });
  return [render(plan, { family: 'ipv4', node: 'node-1', serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767], defaultDeny: true })];
}

/** Waits until the agent reports having applied the current contents of DIR, then compares. */
async function converged(ns: string): Promise<string[]> {
  const digest = await digestDir(dir);
  await until(`the agent to apply digest ${digest.slice(0, 8)}`, () => status()?.manifestsDigest === digest);
  return liveDiff(ns, 'nft', await desired(), ['ipv4']);
}

test.serial('the agent converges after every kind of change, repairs drift, survives SIGKILL, stops cleanly', async (t) => {
  const ns = newNamespace('podwall-agent', 'a');
  write('cluster.yaml', conformanceObjects());
  write('policies.yaml', [policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'] })]);
  let agent = startAgent(ns);
  t.deepEqual(await converged(ns), [], 'initial sync');

  const changes: [string, () => void][] = [
    ['local pod add', () => write('pod-d.yaml', [extraPod('x', 'd', { pod: 'd' }, '10.244.1.100')])],
    ['remote pod add', () => write('pod-e.yaml', [extraPod('y', 'e', { pod: 'a' }, '10.244.2.101', 'node-2')])],
    ['pod relabel', () => write('pod-e.yaml', [extraPod('y', 'e', { pod: 'zz' }, '10.244.2.101', 'node-2')])],
    ['policy add', () => write('policy-2.yaml', [policy('y', 'from-x', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } }, podSelector: { matchLabels: { pod: 'a' } } }], ports: [{ port: 'serve-80-tcp' }] }] })])],
    ['namespace relabel', () => write('ns-x.yaml', [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x', labels: { ns: 'x', team: 'blue' } } }])],
    ['policy update', () => write('policy-2.yaml', [policy('y', 'from-x', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'blue' } } }], ports: [{ port: 81 }] }] })])],
    ['node add', () => write('node-3.yaml', [{ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-3' }, spec: { podCIDRs: ['10.244.3.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: '172.18.0.9' }] } }])],
    ['service add', () => write('svc.yaml', [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'x' }, spec: { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], externalIPs: ['192.0.2.50'] } }])],
    ['policy delete', () => unlinkSync(join(dir, 'policy-2.yaml'))],
    ['local pod delete', () => unlinkSync(join(dir, 'pod-d.yaml'))],
  ];
  for (const [kind, change] of changes) {
    change();
    t.deepEqual(await converged(ns), [], `after ${kind}`);
  }

  // Drift: someone flushes a pod chain; the drift watcher sees it (nft monitor) and the agent restores
  // it — often before a read here could see the damage (drift.test.ts measures the repairs).
  const chain = sh(ns, ['iptables-nft', '-S']).split('\n').find((l) => l.startsWith('-N KUBE-POD-FW-'))!.slice(3);
  const repairsBefore = ((agent as ChildProcess & { log: () => string }).log().match(/repaired drift/g) ?? []).length;
  sh(ns, ['iptables-nft', '-F', chain]);
  await until('the drift to be repaired', async () => liveDiff(ns, 'nft', await desired(), ['ipv4']).length === 0);
  await until('the agent to log the repair', () => ((agent as ChildProcess & { log: () => string }).log().match(/repaired drift/g) ?? []).length > repairsBefore);
  t.pass('drift repaired');

  // SIGKILL right after a change, then a restart: converges.
  write('pod-f.yaml', [extraPod('z', 'f', { pod: 'a' }, '10.244.1.102')]);
  agent.kill('SIGKILL');
  await new Promise((r) => agent.once('exit', r));
  agent = startAgent(ns);
  t.deepEqual(await converged(ns), [], 'after SIGKILL and restart');

  // SIGTERM: exits 0 and leaves the rules in place.
  const before = Date.now();
  agent.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => agent.once('exit', (c) => r(c)));
  t.log(`SIGTERM → exit ${code} after ${Date.now() - before} ms`);
  t.is(code, 0, (agent as ChildProcess & { log: () => string }).log());
  t.deepEqual(liveDiff(ns, 'nft', await desired(), ['ipv4']), [], 'rules stay after SIGTERM');

  // --cleanup-config removes every podwall chain, jump and set, and nothing else.
  sh(ns, ['iptables-nft', '-N', 'SOMEONE-ELSE']);
  sh(ns, ['iptables-nft', '-A', 'FORWARD', '-j', 'SOMEONE-ELSE']);
  sh(ns, ['ipset', 'create', 'someone-else', 'hash:ip']);
  const { execFileSync } = await import('node:child_process');
  execFileSync('ip', ['netns', 'exec', ns, process.execPath, BIN, '--run-firewall=true', '--cleanup-config', '--iptables-backend', 'nft', '--log-level', 'warn']);
  const rules = sh(ns, ['iptables-nft', '-S']);
  t.false(/KUBE-(ROUTER|POD-FW|NWPLCY)/.test(rules), rules);
  t.true(rules.includes('-A FORWARD -j SOMEONE-ELSE'));
  t.deepEqual(sh(ns, ['ipset', 'list', '-n']).trim().split('\n'), ['someone-else']);
});
