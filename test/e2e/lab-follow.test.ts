// The lab follows its directory: pods written there after `lab up` get a namespace, a server and
// enforcement; pods deleted there lose their namespace and server. Probes right after each change
// see it (the follower publishes the digest it built for, and probe waits for it). After lab down no
// namespace, server, agent or follower is left.
import test from 'ava';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { conformanceObjects, policy, writeManifests, type Raw } from '../support/conformance.js';
import { extraPod } from '../support/scenarios.js';
import { diffMatrices, LAB_PORTS } from '../support/expectations.js';
import { LabError, labDown, labProbe, labUp } from '../../src/lab/lab.js';
import { followerStatusFile, readFollowerStatus } from '../../src/lab/follow.js';
import { readState } from '../../src/lab/state.js';
import { alive, killAndWait, listNetns } from '../../src/lab/netns.js';
import { probeAll, probeAllDetailed } from '../../src/lab/probe.js';
import { probeSocketPath } from '../../src/lab/servers.js';
import { loadManifests } from '../../src/cluster/manifests.js';
import { computeMatrix } from '../../src/sim/matrix.js';

const dir = mkdtempSync(join(tmpdir(), 'podwall-follow-'));
const name = `f${randomBytes(2).toString('hex')}`;
test.after.always(async () => {
  await labDown(name).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

const labNamespaces = async () => (await listNetns()).filter((ns) => ns.startsWith(`pwl-${name}-`));

test.serial('pods added to and removed from DIR are attached, enforced and detached', async (t) => {
  const base = conformanceObjects();
  writeManifests(dir, base);
  await labUp({ dir, name });
  const before = readState(name);
  if (!before.ok) throw new Error(before.error);
  t.true(before.state.pids.some((p) => p.role === 'follower' && alive(p.pid)), 'a follower runs');
  const nsBefore = await labNamespaces();

  const check = async (step: string, objects: Raw[]) => {
    writeManifests(dir, objects);
    const kernel = (await labProbe(name, LAB_PORTS)).matrix;
    const sim = computeMatrix((await loadManifests([dir])).store, LAB_PORTS);
    t.deepEqual(diffMatrices(kernel, sim, 'kernel', 'simulator'), [], `${step}: kernel vs simulator`);
    return kernel;
  };

  // One new pod per node; x is isolated to pods labelled pod=d.
  const added = [
    ...base,
    extraPod('x', 'd', { pod: 'd' }, '10.244.1.100'),
    extraPod('z', 'e', { pod: 'e' }, '10.244.2.101', 'node-2'),
    policy('x', 'from-d', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'd' } } }] }] }),
  ];
  const k1 = await check('added', added);
  t.true(k1.pods.includes('x/d') && k1.pods.includes('z/e'), 'the new pods are probed');
  t.true(k1.probes[0]!.allowed['x/d']!['x/a'], 'x/d reaches the isolated x/a (its label is allowed)');
  t.false(k1.probes[0]!.allowed['z/e']!['x/a'], 'z/e does not');
  t.true(k1.probes[0]!.allowed['z/e']!['x/d'] === false && k1.probes[0]!.allowed['x/d']!['z/e'], 'the new pods answer and are enforced');
  const st1 = readState(name);
  if (!st1.ok) throw new Error(st1.error);
  const d = st1.state.pods.find((p) => p.key === 'x/d')!;
  t.deepEqual(d.ips, ['10.244.1.100']);
  t.true((await labNamespaces()).includes(d.ns));
  t.true(st1.state.pids.some((p) => p.role === 'server' && p.owner === 'x/d' && alive(p.pid)), 'x/d has a server');
  t.true(existsSync(probeSocketPath(name, d.ns)!), 'which takes probe sessions');
  // Existing pods kept their namespaces and addresses.
  for (const p of before.state.pods) t.like(st1.state.pods.find((q) => q.key === p.key), { ns: p.ns, ips: p.ips });

  // x/d removed: its namespace and server go; nothing reaches x/a from z/e still; indexes are not reused.
  const k2 = await check('removed', added.filter((o) => !(o.kind === 'Pod' && (o.metadata as { name: string }).name === 'd')));
  t.false(k2.pods.includes('x/d'));
  t.false((await labNamespaces()).includes(d.ns), 'x/d namespace deleted');
  const st2 = readState(name);
  if (!st2.ok) throw new Error(st2.error);
  t.false(st2.state.pids.some((p) => p.owner === 'x/d'));
  t.false(st2.state.pods.some((p) => p.key === 'x/d'));
  t.false(existsSync(probeSocketPath(name, d.ns)!), 'its probe socket is gone');

  // Back again: a new index, the same address, enforced again.
  const k3 = await check('re-added', added);
  t.true(k3.probes[0]!.allowed['x/d']!['x/a']);
  const st3 = readState(name);
  if (!st3.ok) throw new Error(st3.error);
  const d2 = st3.state.pods.find((p) => p.key === 'x/d')!;
  t.true(d2.idx > d.idx, 'indexes are never reused');

  // A burst of denials from one pod is refused at once, every one of them: the nodes do not rate-limit
  // the REJECTs' ICMP errors. With the kernel's defaults only the first 6 per client (icmp_ratelimit)
  // and then ~50 per node namespace (icmp_msgs_burst, refilled at 1000/s) would be; the rest time out.
  const from = st3.state.pods.find((p) => p.key === 'z/e')!.ns;
  const burst = await probeAllDetailed(
    (['TCP', 'UDP'] as const).flatMap((protocol) => Array.from({ length: 400 }, (_, i) => ({ fromNs: from, toIp: '10.244.1.10', port: 1000 + i, protocol }))),
    { timeoutMs: 3000, concurrency: 800, socketFor: (ns) => probeSocketPath(name, ns) },
  );
  t.deepEqual([...new Set(burst.map((r) => r.error))], ['ECONNREFUSED'], 'every denial refused');

  // Probes go through each pod's server (its probe socket); without one a prober process is started.
  // Both measure the same.
  const fromE = st3.state.pods.flatMap((to) => (['TCP', 'UDP'] as const).map((protocol) => ({ fromNs: from, toIp: to.ips[0]!, port: 80, protocol })));
  const viaServer = await probeAll(fromE, { socketFor: (ns) => probeSocketPath(name, ns) });
  const viaProber = await probeAll(fromE, { socketFor: () => join(dir, 'no-such.sock') });
  t.deepEqual(viaServer, viaProber);
  t.true(viaServer.includes(true) && viaServer.includes(false));
  // A session on z/e's server socket: requests sent and the input ended, answers still come back.
  const session = await new Promise<string>((resolve, reject) => {
    const sock = connect(probeSocketPath(name, from)!);
    let buf = '';
    sock.on('data', (b: Buffer) => (buf += b.toString()));
    sock.on('end', () => resolve(buf));
    sock.on('error', reject);
    sock.end(['{"id":7,"ip":"10.244.1.10","port":80,"protocol":"TCP"}', '{"id":8,"ip":"10.244.1.30","port":80,"protocol":"TCP"}', ''].join('\n'));
  });
  t.deepEqual(session.trim().split('\n').map((l) => JSON.parse(l) as unknown).sort((a, b) => (a as { id: number }).id - (b as { id: number }).id), [
    { id: 7, ok: false, error: 'ECONNREFUSED' },
    { id: 8, ok: true },
  ], 'z/e → x/a denied, z/e → z/a allowed');

  // A follower that failed for the current contents of DIR, or that is gone, stops a probe at once
  // with a clear error (never a matrix of the pods it had).
  writeFileSync(followerStatusFile(name), JSON.stringify({ ...readFollowerStatus(name)!, error: 'injected failure' }));
  await t.throwsAsync(labProbe(name, LAB_PORTS), { instanceOf: LabError, message: /follower could not attach or detach pods .*injected failure/ });
  const followers = st3.state.pids.filter((p) => p.role === 'follower').map((p) => p.pid);
  t.deepEqual(await killAndWait(followers), []);
  await t.throwsAsync(labProbe(name, LAB_PORTS), { instanceOf: LabError, message: /its follower \(pid \d+\) is not running/ });
  const r = await labDown(name);
  t.deepEqual(r.problems, []);
  t.deepEqual(await labNamespaces(), []);
  for (const pid of followers) t.false(alive(pid), 'the follower is gone');
  t.true(nsBefore.length > 0);
});
