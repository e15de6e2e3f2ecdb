// ClusterNetworkPolicy through the agent: two agents (one per lab node) on the fake API server, real
// packets. The cluster starts without the CRD (normal: the agents sync and enforce NetworkPolicy);
// the CRD appears with an Admin Deny and enforcement starts; the policy changes to Pass; an invalid
// update keeps the previous version; the CRD is removed and its policies with it.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FakeApiServer, type Obj } from '../support/fake-apiserver.js';
import { startApiAgent, writeKubeconfig } from '../support/api-agent.js';
import { conformanceObjects, podIP, policy, writeManifests } from '../support/conformance.js';
import { until } from '../support/kernel.js';
import type { Agent } from '../../src/controller/agent.js';
import type { Desired } from '../../src/dataplane/render.js';
import { labDown, labUp } from '../../src/lab/lab.js';
import { readState } from '../../src/lab/state.js';
import { ProberPool } from '../../src/lab/probe.js';

const tmp = mkdtempSync(join(tmpdir(), 'podwall-cnp-'));
const lab = `c${randomBytes(2).toString('hex')}`;
let server: FakeApiServer | undefined;
let pool: ProberPool | undefined;
const agents: Agent<Desired>[] = [];
test.after.always(async () => {
  await pool?.close().catch(() => {});
  for (const a of agents) await a.stop().catch(() => {});
  await server?.close();
  await labDown(lab).catch(() => {});
  rmSync(tmp, { recursive: true, force: true });
});

const guard = (action: string, priority: number | string = 10): Obj => ({
  kind: 'ClusterNetworkPolicy',
  metadata: { name: 'guard' },
  spec: { tier: 'Admin', priority, subject: { namespaces: { matchLabels: { ns: 'x' } } }, ingress: [{ name: 'from-y', action, from: [{ namespaces: { matchLabels: { ns: 'y' } } }] }] },
});

test.serial('the CRD absent, then present, changed, invalid and removed: the kernel follows', async (t) => {
  const dir = join(tmp, 'lab');
  writeManifests(dir, conformanceObjects());
  await labUp({ dir, name: lab, agents: false });
  const st = readState(lab);
  if (!st.ok) throw new Error(st.error);
  server = await FakeApiServer.start();
  for (const o of conformanceObjects()) server.apply(o as Obj);
  const kubeconfig = join(tmp, 'kubeconfig');
  writeKubeconfig(kubeconfig, server.url);
  const nodeNs = new Map(st.state.nodes.map((n) => [n.name, n.ns]));
  for (const node of ['node-1', 'node-2']) agents.push(await startApiAgent(node, nodeNs.get(node)!, kubeconfig, { armed: false }, { crdRecheckMs: 200 }));
  const applied = () => agents.every((a) => a.status().appliedVersion === a.status().storeVersion && a.status().appliedVersion > 0);
  await until('both agents synced and applied without the CRD', applied);
  t.deepEqual(agents[0]!.status().unavailable?.map((u) => [u.kind, u.reason]), [['ClusterNetworkPolicy', 'not-installed']]);
  t.true(agents[0]!.health().ok, 'a cluster without the CRD is healthy');

  pool = new ProberPool({ timeoutMs: 1000 });
  const from = (key: string) => st.state.pods.find((p) => p.key === key)!.ns;
  const reach = async (src: string, dst: [string, string]) => (await pool!.probe({ fromNs: from(src), toIp: podIP(...dst), port: 80, protocol: 'TCP' })).ok;
  const expect = async (what: string, want: { ya: boolean; za: boolean }) => {
    // y/a → x/a (node-1 → node-1, bridged) and y/c → x/a (node-2 → node-1), z/a → x/a as a control.
    const got = { ya: await reach('y/a', ['x', 'a']), yc: await reach('y/c', ['x', 'a']), za: await reach('z/a', ['x', 'a']) };
    t.deepEqual(got, { ya: want.ya, yc: want.ya, za: want.za }, what);
  };
  await expect('no CRD: everything open', { ya: true, za: true });

  server.installCRD('ClusterNetworkPolicy');
  server.apply(guard('Deny'));
  await until('the ClusterNetworkPolicy reaches both agents', () => agents.every((a) => a.store.clusterPolicies.has('guard')));
  await until('applied', applied);
  t.is(agents[0]!.status().unavailable, undefined);
  await expect('Admin Deny from y', { ya: false, za: true });

  server.apply(policy('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress'] }) as Obj);
  server.apply(guard('Accept'));
  // Two watches: wait for both objects, not just the last one applied.
  await until('deny-all and Accept applied', () => agents.every((a) => a.store.policies.has('x/deny-all') && a.store.clusterPolicies.get('guard')?.ingress[0]?.action === 'Accept') && applied());
  await expect('Admin Accept from y over a NetworkPolicy deny-all', { ya: true, za: false });

  server.apply(guard('Pass'));
  await until('Pass applied', () => agents.every((a) => a.store.clusterPolicies.get('guard')?.ingress[0]?.action === 'Pass') && applied());
  await expect('Pass: the NetworkPolicy decides', { ya: false, za: false });

  server.apply(guard('Accept', 'ten'));
  // A valid object after it on the same watch: once the agents have it, they have seen the invalid one.
  server.apply({ ...guard('Deny'), metadata: { name: 'sentinel' }, spec: { ...guard('Deny').spec, subject: { namespaces: { matchLabels: { ns: 'none' } } } } });
  await until('the invalid update and the next one seen', () => agents.every((a) => a.store.clusterPolicies.has('sentinel')));
  t.true(agents.every((a) => a.store.clusterPolicies.get('guard')?.ingress[0]?.action === 'Pass'), 'the invalid update was not taken');
  await until('applied', applied);
  await expect('an invalid update: the previous version (Pass) stays', { ya: false, za: false });

  server.apply(guard('Deny'));
  await until('Deny applied', () => agents.every((a) => a.store.clusterPolicies.get('guard')?.ingress[0]?.action === 'Deny') && applied());
  server.remove('NetworkPolicy', 'x', 'deny-all');
  // applied() alone may still hold from before the removal reached the agents.
  await until('the NetworkPolicy removal applied', () => agents.every((a) => !a.store.policies.has('x/deny-all')) && applied());
  await expect('Deny again, no NetworkPolicy', { ya: false, za: true });

  server.uninstallCRD('ClusterNetworkPolicy');
  await until('the CRD removed: its policies gone', () => agents.every((a) => a.store.clusterPolicies.size === 0));
  await until('applied', applied);
  await expect('CRD removed: open again', { ya: true, za: true });
  t.deepEqual(agents[1]!.status().unavailable?.map((u) => u.reason), ['not-installed']);
});
