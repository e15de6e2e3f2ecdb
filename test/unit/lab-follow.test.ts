// The follower's planning (pure): which pods a running lab attaches and detaches when its
// directory changes, with stable indexes and addresses, and the kernel commands for each.
import test from 'ava';
import { conformanceObjects, storeOf } from '../support/conformance.js';
import { extraPod } from '../support/scenarios.js';
import { planTopology } from '../../src/lab/topology.js';
import { attachCommands, detachCommands, planPodChanges, standingWarnings } from '../../src/lab/follow.js';
import { stateFromPlan } from '../../src/lab/topology.js';
import type { Raw } from '../support/conformance.js';

const plan = (objects: Raw[]) => {
  const s = storeOf(objects);
  return planTopology({ nodes: [...s.nodes.values()], pods: [...s.pods.values()], labName: 'f1' });
};
const base = conformanceObjects();
const state = () => stateFromPlan(plan(base));
const without = (objs: Raw[], ns: string, name: string) => objs.filter((o) => !(o.kind === 'Pod' && (o.metadata as { namespace: string; name: string }).namespace === ns && (o.metadata as { name: string }).name === name));

test('nothing changes when the directory holds the same pods', (t) => {
  const ch = planPodChanges(state(), plan(base), 9);
  t.deepEqual([ch.add, ch.remove, ch.warnings], [[], [], []]);
});

test('an added pod gets the next unused index, its status IP, its node and fresh MACs; others stay', (t) => {
  const st = state();
  const ch = planPodChanges(st, plan([...base, extraPod('x', 'd', { pod: 'd' }, '10.244.2.100', 'node-2')]), 9);
  t.deepEqual(ch.remove, []);
  t.is(ch.add.length, 1);
  const p = ch.add[0]!;
  t.like(p, { key: 'x/d', idx: 9, node: 'node-2', ns: 'pwl-f1-p-9', hostVeth: 'vp9', ips: ['10.244.2.100'], allocatedIPs: [] });
  t.false(st.pods.some((q) => q.idx === 9 || q.ips.includes('10.244.2.100')));
});

test('a removed pod is detached; a pod moved or readdressed is detached and attached again', (t) => {
  const st = state();
  const moved = base.map((o) => (o.kind === 'Pod' && (o.metadata as { namespace: string }).namespace === 'y' && (o.metadata as { name: string }).name === 'b' ? extraPod('y', 'b', { pod: 'b' }, '10.244.1.77') : o));
  const ch = planPodChanges(st, plan(without(moved, 'z', 'a')), 20);
  t.deepEqual(ch.remove.map((p) => p.key).sort(), ['y/b', 'z/a']);
  t.deepEqual(ch.add.map((p) => [p.key, p.idx, p.ips]), [['y/b', 20, ['10.244.1.77']]]);
});

test('an IP another pod already holds is replaced by a free one of the node, with a warning', (t) => {
  const st = state();
  const taken = st.pods.find((p) => p.key === 'x/a')!.ips[0]!;
  const objs = [...base, extraPod('q', 'dup', { pod: 'd' }, taken)];
  const ch = planPodChanges(st, plan(objs), 30);
  // x/a keeps its address; q/dup gets another one in node-1's CIDR, never a used one or the gateway.
  t.deepEqual(ch.remove, []);
  t.is(ch.add.length, 1);
  const ip = ch.add[0]!.ips[0]!;
  t.not(ip, taken);
  t.true(ip.startsWith('10.244.1.') && ip !== '10.244.1.1');
  t.false(st.pods.some((p) => p.ips.includes(ip)));
  t.true(ch.warnings.some((w) => w.includes('q/dup') && w.includes(ip)));
});

test('a pod without an IP gets one (with a warning that the agents do not know it); a pod on an unknown node is reported', (t) => {
  const noIp = extraPod('x', 'n', { pod: 'n' }, '10.244.1.90');
  delete (noIp.status as Record<string, unknown>).podIP;
  delete (noIp.status as Record<string, unknown>).podIPs;
  const ch = planPodChanges(state(), plan([...base, noIp, extraPod('x', 'far', { pod: 'f' }, '10.9.9.9', 'node-9')]), 40);
  t.deepEqual(ch.add.map((p) => p.key), ['x/n']);
  t.is(ch.add[0]!.allocatedIPs.length, 1);
  t.true(ch.warnings.some((w) => w.includes('x/n') && /agents .* do not know/.test(w)));
  t.true(ch.warnings.some((w) => w.includes('x/far') && w.includes('node-9') && w.includes('not attached')));
});

test('attach wires the node, the pod and its same-node neighbours with permanent entries; detach undoes it', (t) => {
  const st = state();
  const ch = planPodChanges(st, plan([...base, extraPod('x', 'd', { pod: 'd' }, '10.244.1.100')]), 9);
  const pod = ch.add[0]!;
  const cmds = attachCommands(st, pod);
  const node = st.nodes.find((n) => n.name === 'node-1')!;
  const nodeCmds = cmds.perNs.get(node.ns)!.map((c) => c.join(' '));
  t.true(nodeCmds.some((c) => c.startsWith(`link add vp9 address ${pod.hostMac} type veth peer name eth0 address ${pod.mac} netns pwl-f1-p-9`)));
  t.true(nodeCmds.includes(`neigh replace 10.244.1.100 lladdr ${pod.mac} dev kube-bridge nud permanent`));
  const podCmds = cmds.perNs.get(pod.ns)!.map((c) => c.join(' '));
  t.true(podCmds.includes('route add 0.0.0.0/0 via 10.244.1.1 dev eth0'));
  const neighbour = st.pods.find((p) => p.key === 'x/a')!;
  t.true(podCmds.some((c) => c.startsWith(`neigh replace ${neighbour.ips[0]} lladdr `)));
  t.deepEqual(cmds.perNs.get(neighbour.ns)!.map((c) => c.join(' ')), [`neigh replace 10.244.1.100 lladdr ${pod.mac} dev eth0 nud permanent`]);
  // Pods on the other node are routed to: no entry for them.
  const remote = st.pods.find((p) => p.node === 'node-2')!;
  t.false(cmds.perNs.has(remote.ns));

  const after = { ...st, pods: [...st.pods, { idx: pod.idx, key: pod.key, namespace: pod.namespace, name: pod.name, node: pod.node, ns: pod.ns, ips: pod.ips, allocatedIPs: [], hostVeth: pod.hostVeth }] };
  const det = detachCommands(after, after.pods.at(-1)!);
  t.deepEqual(det.perNs.get(node.ns)!.map((c) => c.join(' ')), ['neigh del 10.244.1.100 dev kube-bridge']);
  t.deepEqual(det.perNs.get(neighbour.ns)!.map((c) => c.join(' ')), ['neigh del 10.244.1.100 dev eth0']);
});

// The state syncPods records for the pods it attached.
const attached = (st: ReturnType<typeof state>, add: ReturnType<typeof planPodChanges>['add']) => ({
  ...st,
  pods: [...st.pods, ...add.map((p) => ({ idx: p.idx, key: p.key, namespace: p.namespace, name: p.name, node: p.node, ns: p.ns, ips: p.ips, allocatedIPs: p.allocatedIPs, requestedIPs: p.requestedIPs, hostVeth: p.hostVeth, ports: p.ports }))],
});

test('a pod given another address than its manifest asks for stays put on the next change, and gets its own once free', (t) => {
  const st = state();
  const taken = st.pods.find((p) => p.key === 'x/a')!.ips[0]!;
  const objs = [...base, extraPod('q', 'dup', { pod: 'd' }, taken)];
  const ch = planPodChanges(st, plan(objs), 30);
  const st2 = attached(st, ch.add);
  const again = planPodChanges(st2, plan(objs), 31);
  t.deepEqual([again.add, again.remove], [[], []], 'no churn');
  // x/a goes: q/dup is attached again with the address it asks for.
  const freed = without(objs, 'x', 'a');
  const ch3 = planPodChanges(st2, plan(freed), 31);
  t.deepEqual(ch3.remove.map((p) => p.key).sort(), ['q/dup', 'x/a']);
  t.deepEqual(ch3.add.map((p) => [p.key, p.ips]), [['q/dup', [taken]]]);
});

test('addresses lab up would not give are not given later: network and broadcast, a family the lab lacks, a second IP of a family', (t) => {
  const st = state();
  const objs = [
    ...base,
    extraPod('q', 'bcast', { pod: 'q' }, '10.244.1.255'),
    extraPod('q', 'net', { pod: 'q' }, '10.244.2.0', 'node-2'),
    extraPod('q', 'v6', { pod: 'q' }, 'fd00::5'),
    { ...extraPod('q', 'two', { pod: 'q' }, '10.244.1.120'), status: { phase: 'Running', podIP: '10.244.1.120', podIPs: [{ ip: '10.244.1.120' }, { ip: '10.244.1.121' }] } },
  ];
  const ch = planPodChanges(st, plan(objs), 40);
  const by = new Map(ch.add.map((p) => [p.key, p]));
  for (const k of ['q/bcast', 'q/net']) {
    t.is(by.get(k)!.ips.length, 1);
    t.false(['10.244.1.255', '10.244.2.0'].includes(by.get(k)!.ips[0]!), k);
    t.true(ch.warnings.some((w) => w.includes(k) && w.includes('network address')), k);
  }
  t.is(by.get('q/v6')!.ips.length, 1);
  t.true(by.get('q/v6')!.ips[0]!.startsWith('10.244.1.'), 'an IPv4 address from the lab instead');
  t.true(ch.warnings.some((w) => w.includes('q/v6') && w.includes('IPv6')));
  t.deepEqual(by.get('q/two')!.ips, ['10.244.1.120']);
  t.true(ch.warnings.some((w) => w.includes('q/two') && w.includes('10.244.1.121')));
  // And none of them is attached again on the next change.
  const again = planPodChanges(attached(st, ch.add), plan(objs), 50);
  t.deepEqual([again.add, again.remove], [[], []]);
});

test('a pod without a nodeName goes to the node lab up put such pods on, whatever nodes DIR lists now', (t) => {
  const st = state();
  const loose = extraPod('q', 'loose', { pod: 'q' }, '10.244.1.130');
  delete (loose.spec as Record<string, unknown>).nodeName;
  const objs = [{ apiVersion: 'v1', kind: 'Node', metadata: { name: 'a-new-node' }, spec: { podCIDRs: ['10.244.7.0/24'] } }, ...base, loose];
  const ch = planPodChanges(st, plan(objs), 60);
  t.deepEqual(ch.add.map((p) => [p.key, p.node]), [['q/loose', st.nodes[0]!.name]]);
});

test('pods on addresses the lab chose are named again after every change, not only when attached', (t) => {
  const noIp = extraPod('x', 'n', { pod: 'n' }, '10.244.1.90');
  delete (noIp.status as Record<string, unknown>).podIP;
  delete (noIp.status as Record<string, unknown>).podIPs;
  const st = state();
  const taken = st.pods.find((p) => p.key === 'x/a')!.ips[0]!;
  const objs = [...base, noIp, extraPod('q', 'dup', { pod: 'd' }, taken)];
  const after = attached(st, planPodChanges(st, plan(objs), 9).add);
  const w = standingWarnings(after.pods);
  t.is(w.length, 2);
  t.true(w.some((x) => x.startsWith('pod x/n: no status.podIP')));
  t.true(w.some((x) => x.startsWith(`pod q/dup: its IP ${taken} cannot be used`)));
  t.deepEqual(standingWarnings(st.pods), [], 'pods on their own addresses: nothing to say');
});
