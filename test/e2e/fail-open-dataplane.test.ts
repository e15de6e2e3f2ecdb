// The dataplane under faults, judged by real packets (the fail-open harness, test/support/fail-open.ts):
// Services listing a node's own address (inside range flags that cover the node network), addresses
// the kernel refuses, each kind of tampering with node-1's rules, the agent SIGKILLed in the middle of
// an apply and restarted — while denied and allowed pairs are probed every 20 ms.
// Tampering opens what it damages until podwall repairs it (there is no rule that can stop a foreign
// ACCEPT inserted before podwall's jump): those windows report how many denied probes got through
// between the damage and the repair, and assert that none did outside it. Everything else: zero.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FailOpenHarness, basePolicies } from '../support/fail-open.js';
import { podIP, policy, type Raw } from '../support/conformance.js';
import { liveDiff, until } from '../support/kernel.js';
import { loadManifests } from '../../src/cluster/manifests.js';
import { compile } from '../../src/policy/compile.js';
import { render, type Desired } from '../../src/dataplane/render.js';
import { buildConfig, renderOptionsOf } from '../../src/controller/flags.js';
import { systemBinary } from '../../src/dataplane/exec.js';
import { SERVICE_PORTS_SET } from '../../src/dataplane/names.js';
import { cidrContainsIP, mustCIDR, parseIP } from '../../src/net/ip.js';

// Range flags as an operator might set them, wide enough to hold the node network: a Service whose
// external or load-balancer IP is a node's own address must still open nothing (issue 9, item 1).
const NODE_NETWORK = '172.16.0.0/12';
const AGENT_FLAGS = ['--service-external-ip-range', NODE_NETWORK, '--loadbalancer-ip-range', NODE_NETWORK];

let h: FailOpenHarness | undefined;
let listener: ChildProcess | undefined;
test.after.always(async () => {
  if (listener?.pid && listener.exitCode === null) process.kill(listener.pid, 'SIGKILL');
  await h?.close();
});

/** What node-1's agent renders for the harness directory (its flags' defaults). */
async function desiredOf(harness: FailOpenHarness, node: string): Promise<Desired[]> {
  const cfg = buildConfig(['--manifests', harness.dir, '--hostname-override', node, ...AGENT_FLAGS]);
  const { store } = await loadManifests([harness.dir]);
  return [
    render(compile(store, { node }), renderOptionsOf(cfg, 'ipv4')),
  ];
}

const pod = (ns: string, name: string, ips: string[], node: string): Raw => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: ns, labels: { pod: name } },
  spec: { nodeName: node, containers: [{ name: 's', image: 'agnhost' }] },
  status: { phase: 'Running', podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) },
});

test.serial('no denied connection gets through while the kernel refuses addresses, the rules are tampered with, or the agent dies mid-apply', async (t) => {
  h = await FailOpenHarness.start(t, { name: `fd${process.pid % 10000}`, agentFlags: AGENT_FLAGS });
  const harness = h;
  const ns1 = harness.nodeNs('node-1');
  const want = await desiredOf(harness, 'node-1');
  const inSync = () => liveDiff(ns1, 'nft', want, ['ipv4']).length === 0;
  t.true(inSync(), 'node-1 holds the render before the faults');

  // Services in any namespace listing node-2's own address as external IP and load-balancer IP, on a
  // port something listens on in node-2's namespace. y/c (node-2, egress only to ns=z) must not reach
  // it; z/c (node-2, not isolated) reaches it, so the listener answers (`pwl ...`, as the lab's servers
  // do, which the prober waits for) and the probe can fail.
  const node2 = harness.state.nodes.find((n) => n.name === 'node-2')!;
  const node2IP = node2.nodeIPs.find((ip) => parseIP(ip)?.family === 'ipv4')!;
  t.true(cidrContainsIP(mustCIDR(NODE_NETWORK), parseIP(node2IP)!), `node-2's address ${node2IP} lies inside the range flags`);
  listener = spawn('ip', ['netns', 'exec', node2.ns, process.execPath, '-e', "require('net').createServer((s) => s.end('pwl node-2\\n')).listen(8080, '0.0.0.0')"], { stdio: 'ignore' });
  await until('a listener on node-2:8080', () => /:8080\b/.test(harness.sh('node-2', ['ss', '-Hltn', 'sport = :8080'])));
  const toNode2 = (from: string) => ({ from, toIp: node2IP, port: 8080, name: `${from} → node-2 ${node2IP}:8080` });
  const service = (name: string, spec: Record<string, unknown>, status?: Record<string, unknown>): Raw => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'z' },
    spec: { ports: [{ name: 'web', port: 8080, protocol: 'TCP', targetPort: 8080 }], selector: { pod: 'a' }, ...spec },
    ...(status ? { status } : {}),
  });
  await harness.fault(
    'Services listing node-2\'s own address (externalIPs, load-balancer ingress)',
    async () => {
      harness.write('services.yaml', [
        service('ext', { type: 'ClusterIP', clusterIP: '10.96.0.80', clusterIPs: ['10.96.0.80'], externalIPs: [node2IP, '172.20.0.9'] }),
        service('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.81', clusterIPs: ['10.96.0.81'], allocateLoadBalancerNodePorts: false }, { loadBalancer: { ingress: [{ ip: node2IP }] } }),
      ]);
      await harness.applied();
      // Not vacuous: both Services are accepted, and with these flags an in-range address that is no
      // node's is exempted (with its port only); node-2's own address is not.
      const { store } = await loadManifests([harness.dir]);
      t.truthy(store.services.get('z/ext') && store.services.get('z/lb'), 'the Services are accepted');
      t.deepEqual(harness.status('node-2').source?.rejected ?? [], [], 'nothing rejected');
      const exempt = (await desiredOf(harness, 'node-2'))[0]!.sets.find((x) => x.name === SERVICE_PORTS_SET)?.members.map((m) => m.entry) ?? [];
      t.true(exempt.includes('172.20.0.9,tcp:8080'), `the in-range external IP is exempted: ${exempt.join(' ')}`);
      t.false(exempt.some((e) => e.startsWith(`${node2IP},`)), `node-2's address is not: ${exempt.join(' ')}`);
      await harness.probesRan(10);
      harness.remove('services.yaml');
      await harness.applied();
    },
    { probes: { denied: [toNode2('y/c')], allowed: [toNode2('z/c')] } },
  );

  // Addresses no pod can have (the kernel refuses 0.0.0.0 and :: in a set): a peer of x/allow-from-z
  // and a pod of node-1. Validation refuses both; nothing else changes.
  await harness.fault('kernel-refused addresses (pods at 0.0.0.0 and ::)', async () => {
    harness.write('unusable.yaml', [pod('z', 'zero', ['0.0.0.0'], 'node-2'), pod('x', 'zero', ['0.0.0.0'], 'node-1'), pod('z', 'zero6', ['::'], 'node-1')]);
    await harness.applied();
    await until('the agents to log the refused pods', () => /unusable-ip/.test(harness.log('node-1')));
    t.true(inSync(), 'node-1 unchanged');
    harness.remove('unusable.yaml');
    await harness.applied();
  });

  /** One tampering with node-1's rules; waits until the kernel holds the render again. */
  const tamper = (name: string, damage: () => void, undo?: () => void) =>
    harness.fault(
      name,
      async () => {
        harness.markTampered();
        damage();
        await until(`${name}: repaired`, inSync, 20_000);
        harness.markRepaired();
        undo?.();
      },
      { exposure: true },
    );

  await tamper('tampering: KUBE-ROUTER-FORWARD flushed', () => harness.sh('node-1', ['iptables-nft', '-F', 'KUBE-ROUTER-FORWARD']));
  await tamper('tampering: podwall\'s jump deleted (FORWARD 1)', () => harness.sh('node-1', ['iptables-nft', '-D', 'FORWARD', '1']));
  await tamper(
    'tampering: a foreign ACCEPT inserted at FORWARD 1',
    () => harness.sh('node-1', ['iptables-nft', '-I', 'FORWARD', '1', '-j', 'ACCEPT']),
    () => harness.sh('node-1', ['iptables-nft', '-D', 'FORWARD', '-j', 'ACCEPT']),
  );
  // y/a smuggled into the peer set of x/allow-from-z (the set holding z/a's address).
  const peerSet = want[0]!.sets.find((s) => s.name.startsWith('KUBE-SRC-') && s.members.some((m) => m.entry === podIP('z', 'a')))!;
  t.truthy(peerSet, 'the peer set of x/allow-from-z');
  await tamper('tampering: y/a smuggled into the peer set of x/allow-from-z', () => harness.sh('node-1', ['ipset', 'add', peerSet.name, podIP('y', 'a')]));

  // SIGKILL in the middle of an apply: iptables-nft-restore is wrapped so that it waits (the agent has
  // written its sets, not its chains yet); the agent and the waiting restore are killed, the agent
  // restarted without the wrapper.
  const wrapDir = join(harness.work, 'wrap');
  mkdirSync(wrapDir, { recursive: true });
  const hold = join(wrapDir, 'hold');
  const held = join(wrapDir, 'held');
  const real = systemBinary('iptables-nft-restore')!;
  writeFileSync(join(wrapDir, 'iptables-nft-restore'), `#!/bin/sh\nif [ -e ${hold} ]; then echo $$ > ${held}; while [ -e ${hold} ]; do sleep 0.01; done; exit 1; fi\nexec ${real} "$@"\n`);
  chmodSync(join(wrapDir, 'iptables-nft-restore'), 0o755);
  await harness.restartAgent('node-1', ['env', `PATH=${wrapDir}:${process.env.PATH}`]);
  await harness.applied();
  await harness.fault('agent SIGKILLed mid-apply, then restarted', async () => {
    writeFileSync(hold, '');
    harness.write('policies.yaml', [...basePolicies(), policy('y', 'b-closed', { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Ingress'] })]);
    await until('the agent inside iptables-restore', () => existsSync(held), 20_000);
    const pid = Number(readFileSync(held, 'utf8'));
    await harness.killAgent('node-1');
    process.kill(pid, 'SIGKILL'); // the restore our agent started, by its pid
    rmSync(hold);
    await harness.restartAgent('node-1');
    await harness.applied();
    const after = await desiredOf(harness, 'node-1');
    await until('node-1 holds the new render', () => liveDiff(ns1, 'nft', after, ['ipv4']).length === 0, 20_000);
  });

  harness.assertNoneOpen(t);
});
