// Never open while recovering: two agents (one per node of a lab built from network namespaces)
// driven by the fake API server through the real informers, while a background prober keeps trying
// a denied pair (y/a → x/a, x isolated) and an allowed one. Faults: watch dropped, 410 Gone, lists
// failing for a while, one iptables-restore failing, a policy chain flushed from outside, an agent
// stopped mid-sync and restarted. The denied pair must never get through; the allowed one must.
import test from 'ava';
import pino from 'pino';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { conformanceObjects, podIP, policy, writeManifests, type Raw } from '../support/conformance.js';
import { until, sh } from '../support/kernel.js';
import { Agent } from '../../src/controller/agent.js';
import { buildConfig } from '../../src/controller/flags.js';
import { informerSource } from '../../src/controller/informer-source.js';
import { Dataplane } from '../../src/dataplane/apply.js';
import { makeRunner, type Runner } from '../../src/dataplane/exec.js';
import { render, type Desired } from '../../src/dataplane/render.js';
import { labDown, labUp } from '../../src/lab/lab.js';
import { readState } from '../../src/lab/state.js';
import { ProberPool } from '../../src/lab/probe.js';

const tmp = mkdtempSync(join(tmpdir(), 'podwall-probe-'));
const lab = `p${randomBytes(2).toString('hex')}`;
let server: FakeApiServer | undefined;
const agents: Agent<Desired>[] = [];
test.after.always(async () => {
  for (const a of agents) await a.stop().catch(() => {});
  await server?.close();
  await labDown(lab).catch(() => {});
  rmSync(tmp, { recursive: true, force: true });
});

const logger = pino({ level: 'silent' });
const fail = { armed: false };

function startAgent(node: string, ns: string, kubeconfig: string): Promise<Agent<Desired>> {
  const cfg = buildConfig(['--kubeconfig', kubeconfig, '--hostname-override', node, '--health-port', '0', '--iptables-sync-period', '2s', '--cache-sync-timeout', '10s'], {});
  const base = makeRunner(ns);
  const runner: Runner = async (cmd, args, input) => {
    if (fail.armed && cmd.includes('iptables') && cmd.includes('restore')) {
      fail.armed = false;
      return { code: 1, stdout: '', stderr: 'iptables-restore: line 2 failed (injected)' };
    }
    return base(cmd, args, input);
  };
  const RO = { node, serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] as [number, number], defaultDeny: true };
  const agent = new Agent<Desired>(
    cfg,
    {
      createDataplane: async (families) => {
        const dp = new Dataplane({ families, backend: 'nft', runner, logger });
        await dp.init();
        return dp;
      },
      render: (plan, family) => render(plan, { ...RO, family }),
      createInformerSource: (store, metrics) => informerSource(store, { kubeconfig, logger, metrics, backoff: { initialMs: 50, maxMs: 500 } }),
    },
    logger,
  );
  agents.push(agent);
  return agent.start().then(() => agent);
}

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
  writeFileSync(kubeconfig, JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'f', cluster: { server: server.url, 'insecure-skip-tls-verify': true } }], users: [{ name: 'u', user: { token: 'x' } }], contexts: [{ name: 'c', context: { cluster: 'f', user: 'u' } }], 'current-context': 'c' }));
  const nodeNs = new Map(st.state.nodes.map((n) => [n.name, n.ns]));
  const a1 = await startAgent('node-1', nodeNs.get('node-1')!, kubeconfig);
  const a2 = await startAgent('node-2', nodeNs.get('node-2')!, kubeconfig);
  await until('both agents to apply', () => applied(a1) && applied(a2));

  // Background probes: y/a → x/a must always be refused; y/a → z/a always answered.
  const src = st.state.pods.find((p) => p.key === 'y/a')!.ns;
  const pool = new ProberPool({ timeoutMs: 1000 });
  let stop = false;
  const counts = { denied: 0, deniedOpen: 0, allowed: 0, allowedOk: 0 };
  const loop = (async () => {
    while (!stop) {
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
  const chain = sh(nodeNs.get('node-1')!, ['iptables-nft', '-S']).split('\n').find((l) => /^-N KUBE-NWPLCY-(?!COMMON|DEFAULT)/.test(l))!.slice(3);
  sh(nodeNs.get('node-1')!, ['iptables-nft', '-F', chain]);
  await settle('policy chain flushed');
  apply(policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'] }));
  await agents[0]!.stop();
  agents.push(await startAgent('node-1', nodeNs.get('node-1')!, kubeconfig));
  await settle('agent restarted');

  stop = true;
  await loop;
  await pool.close();
  t.log(`denied pair: ${counts.denied} probes, ${counts.deniedOpen} got through; allowed pair: ${counts.allowedOk}/${counts.allowed} answered`);
  t.is(counts.deniedOpen, 0, 'the isolated pod was never open');
  t.true(counts.allowedOk > 0 && counts.allowedOk >= counts.allowed * 0.9, 'the allowed pair kept working (the probes are live)');
});
