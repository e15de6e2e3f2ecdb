// Strict mode's conntrack side (src/dataplane/conntrack.ts, src/controller/strict.ts) with a fake
// runner: what is listed, judged and deleted, and what never is.
import test from 'ava';
import { ConntrackCutter, deleteArgs, judgedPacket, parseConntrackList } from '../../src/dataplane/conntrack.js';
import { cutDenied, managedPodIPs } from '../../src/controller/strict.js';
import type { Runner } from '../../src/dataplane/exec.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { compile } from '../../src/policy/compile.js';
import { applyObjects } from '../support/expectations.js';

const LIST = [
  'tcp      6 431999 ESTABLISHED src=10.244.0.2 dst=10.244.0.3 sport=39818 dport=80 src=10.244.0.3 dst=10.244.0.2 sport=80 dport=39818 [ASSURED] mark=0 use=1',
  'udp      17 29 src=10.244.0.2 dst=10.244.0.3 sport=53727 dport=81 [UNREPLIED] src=10.244.0.3 dst=10.244.0.2 sport=81 dport=53727 mark=0 use=1',
  // to a Service address, DNATed to web:80 (kube-proxy's iptables mode): web's rules judged it
  'tcp      6 431999 ESTABLISHED src=10.244.0.2 dst=10.96.0.10 sport=40000 dport=8080 src=10.244.0.3 dst=10.244.0.2 sport=80 dport=40000 [ASSURED] mark=0 use=1',
  // to a Service address without NAT in conntrack (IPVS): KUBE-ROUTER-INPUT exempted it
  'tcp      6 431999 ESTABLISHED src=10.244.0.3 dst=10.96.0.10 sport=40001 dport=8080 src=10.96.0.10 dst=10.244.0.3 sport=8080 dport=40001 [ASSURED] mark=0 use=1',
  // between pods podwall does not manage
  'tcp      6 431999 ESTABLISHED src=10.244.0.2 dst=10.244.0.9 sport=41000 dport=80 src=10.244.0.9 dst=10.244.0.2 sport=80 dport=41000 [ASSURED] mark=0 use=1',
  'icmp     1 29 src=10.244.0.2 dst=10.244.0.3 type=8 code=0 id=7 src=10.244.0.3 dst=10.244.0.2 type=0 code=0 id=7 mark=0 use=1',
  'garbage line',
  'ipv4     2 tcp      6 431999 ESTABLISHED src=10.244.0.2 dst=10.244.0.4 sport=42000 dport=80 src=10.244.0.4 dst=10.244.0.2 sport=80 dport=42000 [ASSURED] mark=0 use=1',
].join('\n');

test('parse: tcp, udp (with its flags), -o extended; icmp and unreadable lines skipped', (t) => {
  const flows = parseConntrackList(LIST, 'ipv4');
  t.is(flows.length, 6);
  t.deepEqual(flows[0], { family: 'ipv4', protocol: 'TCP', state: 'ESTABLISHED', orig: { src: '10.244.0.2', dst: '10.244.0.3', sport: 39818, dport: 80 }, reply: { src: '10.244.0.3', dst: '10.244.0.2', sport: 80, dport: 39818 } });
  t.is(flows[1]!.protocol, 'UDP');
  t.is(flows[1]!.state, undefined);
  t.deepEqual(judgedPacket(flows[2]!), { src: '10.244.0.2', dst: '10.244.0.3', protocol: 'TCP', port: 80 }, 'after DNAT: the backend and its port');
  t.is(flows[5]!.orig.dst, '10.244.0.4');
});

test('a deletion names both addresses, the protocol and the ports of the tuple: never a flush', (t) => {
  for (const f of parseConntrackList(LIST, 'ipv4')) {
    const a = deleteArgs(f);
    t.is(a[0], '-D');
    for (const opt of ['-f', '-p', '-s', '-d', '--dport', '--reply-src', '--reply-port-src']) t.true(a.includes(opt), `${opt} in ${a.join(' ')}`);
    t.false(a.includes('-F'));
  }
});

function fakeRunner(list: string, calls: string[][]): Runner {
  return async (cmd, args) => {
    calls.push([cmd, ...args]);
    if (args[0] === '-L') return { code: 0, stdout: args[2] === 'ipv4' ? list : '', stderr: 'conntrack v1.4.7 (conntrack-tools): 5 flow entries have been shown.\n' };
    return { code: 0, stdout: '', stderr: '1 flow entries have been deleted.\n' };
  };
}

const store = () => {
  const s = new ClusterStore();
  applyObjects(s, [
    { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, spec: { podCIDRs: ['10.244.0.0/22'] }, status: { addresses: [{ type: 'InternalIP', address: '172.18.0.2' }] } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'app' } },
    ...[['client', '10.244.0.2'], ['web', '10.244.0.3'], ['other', '10.244.0.4'], ['open', '10.244.0.9']].map(([name, ip]) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'app', labels: { app: name } },
      spec: { nodeName: 'n1', containers: [{ name: 's', image: 'x' }] },
      status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
    })),
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'app' }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 8080, protocol: 'TCP' }] } },
    // web: nothing allowed any more; other: TCP 80 from the client
    { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'web-closed', namespace: 'app' }, spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'] } },
    { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'other-80', namespace: 'app' }, spec: { podSelector: { matchLabels: { app: 'other' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: [{ port: 80 }] }] } },
  ]);
  return s;
};

test('strict: only the flows the new rules deny, of managed pods, judged after DNAT, never one still addressed to a Service, are deleted', async (t) => {
  const plan = compile(store(), { node: 'n1' });
  t.deepEqual([...managedPodIPs(plan)].sort(), ['10.244.0.3', '10.244.0.4'], 'web and other are isolated; client and open are not');
  const calls: string[][] = [];
  const logs: string[] = [];
  const cutter = new ConntrackCutter({ info: (_o, m) => logs.push(m ?? ''), warn: (_o, m) => logs.push(m ?? '') }, { runner: fakeRunner(LIST, calls), exists: () => true });
  const rep = await cutDenied(cutter, plan, ['ipv4', 'ipv6']);
  const deletes = calls.filter((c) => c[1] === '-D').map((c) => c.slice(1).join(' '));
  t.deepEqual(deletes, [
    '-D -f ipv4 -p tcp -s 10.244.0.2 -d 10.244.0.3 --dport 80 --reply-src 10.244.0.3 --reply-port-src 80',
    '-D -f ipv4 -p udp -s 10.244.0.2 -d 10.244.0.3 --dport 81 --reply-src 10.244.0.3 --reply-port-src 81',
    '-D -f ipv4 -p tcp -s 10.244.0.2 -d 10.96.0.10 --dport 8080 --reply-src 10.244.0.3 --reply-port-src 80',
  ]);
  t.deepEqual(calls.filter((c) => c[1] === '-L').map((c) => c.slice(1).join(' ')), ['-L -f ipv4', '-L -f ipv6']);
  t.like(rep, { listed: 6, denied: 3, deletions: 3 });
  t.is(rep.checked, 5, 'the flow between unmanaged pods is not even judged');
  t.true(logs.some((l) => /removed from conntrack/.test(l)));
});

test('strict: a missing conntrack tool is reported once, with the Debian package; nothing is run', async (t) => {
  const warnings: { obj: object; msg: string }[] = [];
  const calls: string[][] = [];
  const cutter = new ConntrackCutter({ info: () => undefined, warn: (obj, msg) => warnings.push({ obj, msg: msg ?? '' }) }, { runner: fakeRunner(LIST, calls), exists: (n) => n !== 'conntrack' });
  const plan = compile(store(), { node: 'n1' });
  for (let i = 0; i < 3; i++) t.is((await cutDenied(cutter, plan, ['ipv4'])).skipped, 'conntrack tool not installed');
  t.is(warnings.length, 1);
  t.regex(warnings[0]!.msg, /Debian package: conntrack/);
  t.deepEqual(calls, []);
  // Found on a fallback path but not where the runner looks (spawn ENOENT, or `ip netns exec` saying so): the same, once.
  for (const fail of [new Error('conntrack -L -f ipv4 exited with -1: spawn conntrack ENOENT'), { code: 255, stdout: '', stderr: 'exec of "conntrack" failed: No such file or directory\n' }]) {
    const seen: string[] = [];
    const runner: Runner = async () => {
      if (fail instanceof Error) throw fail;
      return fail;
    };
    const c2 = new ConntrackCutter({ info: () => undefined, warn: (_o, m) => seen.push(m ?? '') }, { runner, exists: () => true });
    for (let i = 0; i < 2; i++) t.is((await cutDenied(c2, plan, ['ipv4'])).skipped, 'conntrack tool not installed');
    t.is(seen.length, 1);
    t.regex(seen[0]!, /Debian package: conntrack/);
  }
});

test('strict: a failing conntrack is logged once until it changes, and never throws', async (t) => {
  const warnings: string[] = [];
  const runner: Runner = async () => ({ code: 1, stdout: '', stderr: 'conntrack v1.4.7 (conntrack-tools): Operation failed: Protocol not supported\n' });
  const cutter = new ConntrackCutter({ info: () => undefined, warn: (_o, m) => warnings.push(m ?? '') }, { runner, exists: () => true });
  const plan = compile(store(), { node: 'n1' });
  for (let i = 0; i < 3; i++) t.truthy((await cutDenied(cutter, plan, ['ipv4'])).skipped);
  t.is(warnings.length, 1);
});
