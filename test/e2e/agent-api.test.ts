// The agent against the fake API server (real client-node informers), enforcing inside a network
// namespace made here: after each kind of change through the API the live state converges to the
// render of the API's current contents; and again after each injected fault — watch dropped, 410,
// lists failing for a while, one iptables-restore failing, a chain flushed from outside, the agent
// stopped mid-sync and a new one started. Waits on the applied generation, never on sleeps.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { renderOptions, startApiAgent, writeKubeconfig } from '../support/api-agent.js';
import { conformanceObjects, policy, type Raw } from '../support/conformance.js';
import { extraPod } from '../support/scenarios.js';
import { deleteNamespaces, liveDiff, newNamespace, sh, until } from '../support/kernel.js';
import { Agent } from '../../src/controller/agent.js';
import { render, type Desired } from '../../src/dataplane/render.js';
import { compile } from '../../src/policy/compile.js';

const tmp = mkdtempSync(join(tmpdir(), 'podwall-api-'));
let server: FakeApiServer | undefined;
const agents: Agent<Desired>[] = [];
test.after.always(async () => {
  for (const a of agents) await a.stop().catch(() => {});
  await server?.close();
  deleteNamespaces();
  rmSync(tmp, { recursive: true, force: true });
});

const RENDER = renderOptions('node-1');


/** Waits until the agent applied what the API holds now, then compares the kernel with its render. */
async function converged(agent: Agent<Desired>, ns: string, what: string): Promise<string[]> {
  await until(`${what}: the store to catch up with the API and be applied`, () => {
    const st = agent.status();
    const storeKeys = () => [...agent.store.pods.keys()].length === server!.list('Pod').length && [...agent.store.policies.keys()].length === server!.list('NetworkPolicy').length;
    return st.appliedVersion === st.storeVersion && storeKeys();
  });
  return liveDiff(ns, 'nft', [render(compile(agent.store, { node: 'node-1' }), { ...RENDER, family: 'ipv4' })], ['ipv4']);
}

test.serial('agent + informers + dataplane converge through API changes and faults', async (t) => {
  server = await FakeApiServer.start();
  for (const o of conformanceObjects()) server.apply(o as Raw as Parameters<FakeApiServer['apply']>[0]);
  server.apply(policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'] }) as Parameters<FakeApiServer['apply']>[0]);
  const kubeconfig = join(tmp, 'kubeconfig');
  writeKubeconfig(kubeconfig, server.url);
  const ns = newNamespace('podwall-api', 'a');
  const fail = { armed: false };
  let agent = await startApiAgent('node-1', ns, kubeconfig, fail);
  agents.push(agent);
  t.deepEqual(await converged(agent, ns, 'initial'), [], 'initial sync');

  const apply = (o: Raw) => server!.apply(o as Parameters<FakeApiServer['apply']>[0]);
  const steps: [string, () => void][] = [
    ['pod add', () => apply(extraPod('x', 'd', { pod: 'd' }, '10.244.1.100'))],
    ['pod relabel', () => apply(extraPod('x', 'd', { pod: 'a' }, '10.244.1.100'))],
    ['namespace relabel', () => apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'y', labels: { ns: 'y', team: 'blue' } } })],
    ['policy add', () => apply(policy('x', 'from-blue', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'blue' } } }] }] }))],
    ['policy update', () => apply(policy('x', 'from-blue', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'blue' } } }], ports: [{ port: 80 }] }] }))],
    ['node add', () => apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-3' }, spec: { podCIDRs: ['10.244.3.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: '172.18.0.9' }] } })],
    ['service add', () => apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'x' }, spec: { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'] } })],
    ['policy delete', () => server!.remove('NetworkPolicy', 'x', 'from-blue')],
    ['pod delete', () => server!.remove('Pod', 'x', 'd')],
  ];
  for (const [what, change] of steps) {
    change();
    t.deepEqual(await converged(agent, ns, what), [], `after ${what}`);
  }

  // Faults.
  server.dropWatches();
  apply(extraPod('y', 'e', { pod: 'a' }, '10.244.1.101'));
  t.deepEqual(await converged(agent, ns, 'watch dropped'), [], 'after a dropped watch');

  server.expireHistory();
  apply(extraPod('z', 'f', { pod: 'a' }, '10.244.1.102'));
  server.remove('Pod', 'y', 'e');
  t.deepEqual(await converged(agent, ns, '410'), [], 'after 410 Gone');

  server.failLists(3);
  server.expireHistory();
  apply(policy('z', 'deny', { podSelector: {}, policyTypes: ['Ingress'] }));
  t.deepEqual(await converged(agent, ns, 'lists failing'), [], 'after lists failed for a while');

  fail.armed = true;
  apply(policy('y', 'deny', { podSelector: {}, policyTypes: ['Ingress'] }));
  await until('the injected restore failure to be consumed', () => !fail.armed);
  t.deepEqual(await converged(agent, ns, 'restore failing once'), [], 'after one iptables-restore failed (retried with backoff)');

  const chain = sh(ns, ['iptables-nft', '-S']).split('\n').find((l) => l.startsWith('-N KUBE-POD-FW-'))!.slice(3);
  sh(ns, ['iptables-nft', '-F', chain]);
  await until('the flushed chain to be repaired at resync', () => liveDiff(ns, 'nft', [render(compile(agent.store, { node: 'node-1' }), { ...RENDER, family: 'ipv4' })], ['ipv4']).length === 0);
  t.pass('flushed chain repaired');

  // Stopped mid-sync: a change lands and the agent is stopped at once; a new agent converges.
  apply(extraPod('x', 'g', { pod: 'b' }, '10.244.1.103'));
  await agent.stop();
  agent = await startApiAgent('node-1', ns, kubeconfig, fail);
  agents.push(agent);
  t.deepEqual(await converged(agent, ns, 'restart'), [], 'after a restart');
});
