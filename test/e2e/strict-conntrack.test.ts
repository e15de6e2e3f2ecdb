// --netpol-strict with real packets (root): one node namespace with a bridge, a client pod and two
// server pods, the real agent (`podwall run --manifests DIR --netpol-strict`) inside the node
// namespace. Three long-lived flows run (TCP and UDP to `web`, TCP to `other`); a policy change then
// denies both flows to `web`. With strict mode they stop within a second of the change being applied
// and the flow to `other` goes on; without the conntrack tool the agent says so once (naming the
// Debian package), the established flows go on, and new connections are refused all the same.
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, mkdirSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { NodeNetns } from '../../src/bench/datapath-node.js';
import { digestDir } from '../../src/cluster/manifest-source.js';
import { until } from '../support/kernel.js';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));
const FLOWS = fileURLToPath(new URL('../support/echo-flows.js', import.meta.url));
const CLIENT = '10.244.0.2';
const WEB = '10.244.0.3';
const OTHER = '10.244.0.4';

const procs: ChildProcess[] = [];
const nodes: NodeNetns[] = [];
const dirs: string[] = [];
test.after.always(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  for (const n of nodes) await n.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const pod = (ns: string, name: string, ip: string, app: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: ns, labels: { app } },
  spec: { nodeName: 'n1', containers: [{ name: 's', image: 'x' }] },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
});
const ingress = (name: string, app: string, ports: { port: number; protocol: string }[] | null) => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, namespace: 'app' },
  spec: { podSelector: { matchLabels: { app } }, policyTypes: ['Ingress'], ingress: ports ? [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'cli' } } }], ports }] : [] },
});
const BASE = [
  { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, spec: { podCIDRs: ['10.244.0.0/22'] }, status: { addresses: [{ type: 'InternalIP', address: '172.18.0.2' }] } },
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'app' } },
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'cli' } },
  pod('cli', 'client', CLIENT, 'client'),
  pod('app', 'web', WEB, 'web'),
  pod('app', 'other', OTHER, 'other'),
  ingress('other-from-cli', 'other', [{ port: 80, protocol: 'TCP' }]),
];
const OPEN = ingress('web-from-cli', 'web', [{ port: 80, protocol: 'TCP' }, { port: 81, protocol: 'UDP' }]);
const CLOSED = ingress('web-from-cli', 'web', null); // web stays isolated, nothing allowed

function writeManifests(dir: string, objects: object[]): void {
  const tmp = join(dir, '.cluster.yaml.tmp');
  writeFileSync(tmp, objects.map((o) => stringify(o)).join('---\n'));
  renameSync(tmp, join(dir, 'cluster.yaml'));
}

function start(ns: string, args: string[], env?: NodeJS.ProcessEnv): { proc: ChildProcess; out: () => string; err: () => string } {
  const proc = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
  procs.push(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  return { proc, out: () => out, err: () => err };
}

async function scenario(t: ExecutionContext, opts: { strict: boolean; withConntrack: boolean }) {
  const node = await NodeNetns.create('10.244.0.0/22');
  nodes.push(node);
  const dir = mkdtempSync(join(tmpdir(), 'podwall-strict-'));
  dirs.push(dir);
  const manifests = join(dir, 'manifests');
  mkdirSync(manifests);
  writeManifests(manifests, [...BASE, OPEN]);
  const client = await node.addPod(CLIENT);
  const web = await node.addPod(WEB);
  const other = await node.addPod(OTHER);
  for (const [p, ports] of [[web, ['tcp:80', 'udp:81']], [other, ['tcp:80']]] as const) {
    const s = start(p.ns, [process.execPath, FLOWS, 'server', ...ports]);
    await until(`echo server in ${p.ns}`, () => s.out().includes('ready'));
  }
  // The agent, in the node namespace; without conntrack: a PATH holding every tool but that one.
  let env = process.env;
  if (!opts.withConntrack) {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin'])) {
      if (!d || !existsSync(d)) continue;
      for (const f of readdirSync(d)) if (f !== 'conntrack' && !existsSync(join(bin, f))) symlinkSync(join(d, f), join(bin, f));
    }
    env = { ...process.env, PATH: bin };
  }
  const status = join(dir, 'status.json');
  const agent = start(node.ns, [process.execPath, BIN, 'run', '--manifests', manifests, '--hostname-override', 'n1', '--status-file', status, '--health-port', '0', '--iptables-sync-period', '1h', '--iptables-backend', 'nft', ...(opts.strict ? ['--netpol-strict'] : [])], env);
  const applied = async () => {
    const want = await digestDir(manifests);
    await until('the agent applied the manifests', () => {
      try {
        return (JSON.parse(readFileSync(status, 'utf8')) as { manifestsDigest?: string }).manifestsDigest === want;
      } catch {
        return false;
      }
    }, 30_000);
  };
  await applied();
  // Three long-lived flows from the client: 0 TCP to web:80, 1 UDP to web:81, 2 TCP to other:80.
  const flows = start(client.ns, [process.execPath, FLOWS, 'client', `tcp:${WEB}:80`, `udp:${WEB}:81`, `tcp:${OTHER}:80`]);
  await until('every flow echoes', () => flows.out().includes('ready'));
  const echoes = () => {
    const n = [0, 0, 0];
    for (const m of flows.out().matchAll(/^E (\d)$/gm)) n[Number(m[1])]!++;
    return n;
  };
  // The change that denies both flows to web.
  writeManifests(manifests, [...BASE, CLOSED]);
  await applied();
  const appliedAt = Date.now();
  await new Promise((r) => setTimeout(r, 1000)); // strict mode has 1 s to cut
  const atOne = echoes();
  await new Promise((r) => setTimeout(r, 1500));
  const later = echoes();
  const grew = later.map((n, i) => n - atOne[i]!);
  t.log(`${opts.strict ? 'strict' : 'not strict'}${opts.withConntrack ? '' : ', no conntrack tool'}: echoes in the 1.5 s after the first second since the change was applied (${new Date(appliedAt).toISOString()}): TCP web ${grew[0]}, UDP web ${grew[1]}, TCP other ${grew[2]}`);
  t.true(grew[2]! > 10, 'the unaffected connection to other goes on');
  // New connections to web are refused in every mode.
  const connectFrom = async (ip: string) => {
    const c = start(client.ns, [process.execPath, FLOWS, 'connect', `${ip}:80`]);
    await new Promise((r) => c.proc.once('exit', r));
    return c.out().trim();
  };
  t.regex(await connectFrom(WEB), /^closed /, 'a new connection to web:80 is refused');
  t.is(await connectFrom(OTHER), 'open', 'a new connection to other:80 is accepted');
  flows.proc.stdin!.end();
  agent.proc.kill('SIGTERM');
  await new Promise((r) => agent.proc.once('exit', r));
  return { grew, log: agent.out() + agent.err() };
}

test('strict: established TCP and UDP flows a change denies are cut within a second; an unaffected flow survives', async (t) => {
  const { grew, log } = await scenario(t, { strict: true, withConntrack: true });
  t.is(grew[0], 0, 'the TCP flow to web is cut');
  t.is(grew[1], 0, 'the UDP flow to web is cut');
  t.regex(log, /established connections the new rules deny were removed from conntrack/);
});

test('strict without the conntrack tool: said once with the package name; flows go on, new connections are refused', async (t) => {
  const { grew, log } = await scenario(t, { strict: true, withConntrack: false });
  t.true(grew[0]! > 10 && grew[1]! > 10, 'nothing cut: the established flows go on');
  t.is(log.match(/conntrack tool is not installed \(Debian package: conntrack\)/g)?.length, 1, log);
});
