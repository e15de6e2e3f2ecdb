// Never open while recovering: two agents (one per node of a lab built from network namespaces)
// driven by the fake API server through the real informers, while a background prober keeps trying
// a denied pair (y/a → x/a, x isolated) and an allowed one. Faults: watch dropped, 410 Gone, lists
// failing for a while, one iptables-restore failing, a policy chain flushed from outside, an agent
// stopped mid-sync and restarted. The denied pair must never get through; the allowed one must.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { startApiAgent, writeKubeconfig } from '../support/api-agent.js';
import { conformanceObjects, podIP, policy, writeManifests, type Raw } from '../support/conformance.js';
import { until, sh } from '../support/kernel.js';
import { Agent } from '../../src/controller/agent.js';
import type { Desired } from '../../src/dataplane/render.js';
import { labDown, labUp } from '../../src/lab/lab.js';
import { readState } from '../../src/lab/state.js';
import { ProberPool } from '../../src/lab/probe.js';

const tmp = mkdtempSync(join(tmpdir(), 'podwall-probe-'));
const lab = `p${randomBytes(2).toString('hex')}`;
let server: FakeApiServer | undefined;
const agents: Agent<Desired>[] = [];
const probing: { stop: boolean; loop?: Promise<unknown> } = { stop: false };
test.after.always(async () => {
  // The probe loop first: its probers live in the lab's namespaces.
  probing.stop = true;
  await probing.loop?.catch(() => {});
  for (const a of agents) await a.stop().catch(() => {});
  await server?.close();
  await labDown(lab).catch(() => {});
  rmSync(tmp, { recursive: true, force: true });
});

const fail = { armed: false };


const applied = (a: Agent<Desired>) => a.status().appliedVersion === a.status().storeVersion && a.status().appliedVersion > 0;

test.serial('a denied pair never gets through while the agents recover from faults', async (t) => {
  const objects = [...conformanceObjects(), policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'] })];
  const dir = join(tmp, 'lab');
  writeManifests(dir, conformanceObjects());
  await labUp({ dir, name: lab, agents: false });
  const st = readState(lab);
  if (!st.ok) throw new Error(st.error);
  server = await FakeApiServer.start();
  for (const o of objects) server.apply(o as Parameters<FakeApiServer['apply']>[0]);
  const kubeconfig = join(tmp, 'kubeconfig');
  writeKubeconfig(kubeconfig, server.url);
  const nodeNs = new Map(st.state.nodes.map((n) => [n.name, n.ns]));
  const a1 = await startApiAgent('node-1', nodeNs.get('node-1')!, kubeconfig, fail);
  agents.push(a1);
  const a2 = await startApiAgent('node-2', nodeNs.get('node-2')!, kubeconfig, fail);
  agents.push(a2);
  await until('both agents to apply', () => applied(a1) && applied(a2));

  // Background probes: y/a → x/a must always be refused; y/a → z/a always answered.
  const src = st.state.pods.find((p) => p.key === 'y/a')!.ns;
  const pool = new ProberPool({ timeoutMs: 1000 });
  const counts = { denied: 0, deniedOpen: 0, allowed: 0, allowedOk: 0 };
  const loop = (async () => {
    while (!probing.stop) {
      const [d, a] = await Promise.all([
        pool.probe({ fromNs: src, toIp: podIP('x', 'a'), port: 80, protocol: 'TCP' }),
        pool.probe({ fromNs: src, toIp: podIP('z', 'a'), port: 80, protocol: 'TCP' }),
      ]);
      counts.denied++;
      if (d.ok) counts.deniedOpen++;
      counts.allowed++;
      if (a.ok) counts.allowedOk++;
    }
  })();
  probing.loop = loop;
  const apply = (o: Raw) => server!.apply(o as Parameters<FakeApiServer['apply']>[0]);
  const settle = async (what: string) => {
    const probesBefore = counts.denied;
    await until(`${what}: agents applied`, () => applied(agents.at(-2)!) && applied(agents.at(-1)!));
    await until(`${what}: some probes ran`, () => counts.denied >= probesBefore + 3);
  };

  server.dropWatches();
  apply(policy('z', 'noop', { podSelector: { matchLabels: { pod: 'none' } }, policyTypes: ['Ingress'] }));
  await settle('watch dropped');
  server.expireHistory();
  apply(policy('y', 'noop', { podSelector: { matchLabels: { pod: 'none' } }, policyTypes: ['Ingress'] }));
  await settle('410');
  server.failLists(3);
  server.expireHistory();
  apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'y', labels: { ns: 'y', team: 'blue' } } });
  await settle('lists failing');
  fail.armed = true;
  apply(policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'zz' } } }] }] }));
  await until('the injected failure', () => !fail.armed);
  await settle('restore failing once');
  const chain = sh(nodeNs.get('node-1')!, ['iptables-nft', '-S']).split('\n').find((l) => /^-N KUBE-NWPLCY-(?!COMMON|DEFAULT)/.test(l))?.slice(3);
  if (!chain) throw new Error('node-1 has no policy chain to flush');
  sh(nodeNs.get('node-1')!, ['iptables-nft', '-F', chain]);
  await settle('policy chain flushed');
  apply(policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'] }));
  await agents[0]!.stop();
  agents.push(await startApiAgent('node-1', nodeNs.get('node-1')!, kubeconfig, fail));
  await settle('agent restarted');

  probing.stop = true;
  await loop;
  await pool.close();
  t.log(`denied pair: ${counts.denied} probes, ${counts.deniedOpen} got through; allowed pair: ${counts.allowedOk}/${counts.allowed} answered`);
  t.is(counts.deniedOpen, 0, 'the isolated pod was never open');
  t.true(counts.allowedOk > 0 && counts.allowedOk >= counts.allowed * 0.9, 'the allowed pair kept working (the probes are live)');
});
