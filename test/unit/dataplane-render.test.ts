import test from 'ava';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { render, referencedSets, type Desired } from '../../src/dataplane/render.js';
import { ipBlockMembers } from '../../src/dataplane/ipset.js';
import { podChainName, policyChainName, peerSetName } from '../../src/dataplane/names.js';
import { interpret, type Packet } from '../../src/iptables/interpret.js';
import { parseIptablesSave, parseIpsetSave } from '../../src/iptables/parse.js';
import { writeIpsetSave, writeRestore } from '../../src/iptables/write.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { compile } from '../../src/policy/compile.js';
import { evaluate } from '../../src/sim/evaluate.js';
import { conformanceObjects } from '../support/conformance.js';
import { SCENARIOS } from '../support/scenarios.js';
import { applyObjects, applyStep } from '../support/expectations.js';
import { RO, cidrPeer, desiredText, plan, pod, podPeer, policy, port, rule, setMap, tableOf } from './dataplane-fixtures.js';

const GOLDEN = fileURLToPath(new URL('../../../test/fixtures/render/', import.meta.url));

// ---------------------------------------------------------------------------------------------
// Fixtures

function basicPlan() {
  return plan(
    [
      pod('shop', 'web-1', ['10.244.1.5', 'fd00:244:1::5'], { ingress: ['shop/allow-web'] }),
      pod('shop', 'db-1', ['10.244.1.6'], { ingress: ['shop/db'], egress: ['shop/db'] }),
      pod('shop', 'fe-1', ['10.244.1.7']),
    ],
    [
      policy('shop/allow-web', ['ingress'], ['shop/web-1'], [
        rule('shop/allow-web', 'ingress', 0, [podPeer('shop/allow-web/ingress/0/0', 0, ['10.244.1.7', '10.244.2.7']), cidrPeer('shop/allow-web/ingress/0/1', 1, 'ipv4', '0.0.0.0/0', ['10.0.0.0/8'])], [port('TCP', 0, 80), port('TCP', 1, 8000, 9000)]),
      ]),
      policy('shop/db', ['ingress', 'egress'], ['shop/db-1'],
        [rule('shop/db', 'ingress', 0, [podPeer('shop/db/ingress/0/0', 0, ['10.244.1.5', 'fd00:244:1::5'], 'pods {app: web} in namespace shop')], [port('TCP', 0, 5432)])],
        [rule('shop/db', 'egress', 0, [cidrPeer('shop/db/egress/0/0', 0, 'ipv4', '10.0.0.0/8', ['10.244.0.0/16'])], [port('UDP', 0, 53)])],
      ),
    ],
  );
}

function namedPortsPlan() {
  return plan(
    [pod('shop', 'api-1', ['10.244.1.8', 'fd00:244:1::8'], { ingress: ['shop/deny-in'], egress: ['shop/egress-api'] })],
    [
      policy('shop/deny-in', ['ingress'], ['shop/api-1']),
      policy('shop/egress-api', ['egress'], ['shop/api-1'], [], [
        rule('shop/egress-api', 'egress', 0, [podPeer('shop/egress-api/egress/0/0', 0, ['10.244.2.9', 'fd00:244:2::9'])], [port('TCP', 0, 8080, undefined, { name: 'http', ips: ['10.244.2.9', 'fd00:244:2::9'] })]),
        rule('shop/egress-api', 'egress', 1, [cidrPeer('shop/egress-api/egress/1/0', 0, 'ipv6', '::/0', ['fd00::/8'])], 'all'),
        rule('shop/egress-api', 'egress', 2, [cidrPeer('shop/egress-api/egress/2/0', 0, 'ipv4', '0.0.0.0/0')], 'all'),
      ]),
    ],
  );
}

function edgePlan() {
  return plan(
    [pod('edge', 'p', ['10.244.1.9'], { ingress: ['edge/odd'] })],
    [
      policy('edge/odd', ['ingress'], ['edge/p'], [
        rule('edge/odd', 'ingress', 0, [], 'all'), // empty peers: matches nothing
        rule('edge/odd', 'ingress', 1, 'all', []), // empty ports: matches nothing
        rule('edge/odd', 'ingress', 2, [], [], 'ports[0].port: 0 is not a valid port'), // invalid: grants nothing
        rule('edge/odd', 'ingress', 3, 'all', [port('SCTP', 0)]), // every SCTP port from anywhere
        rule('edge/odd', 'ingress', 4, [podPeer('edge/odd/ingress/4/0', 0, [])], 'all'), // no pod matches: an empty set
      ]),
    ],
  );
}

const GOLDENS: [string, () => Desired][] = [
  ['basic-ipv4.rules', () => render(basicPlan(), { ...RO, family: 'ipv4' })],
  ['named-ports-ipv6.rules', () => render(namedPortsPlan(), { ...RO, family: 'ipv6' })],
  ['edge-cases-no-default-deny-ipv4.rules', () => render(edgePlan(), { ...RO, family: 'ipv4', defaultDeny: false })],
];

for (const [file, make] of GOLDENS) {
  test(`golden render: ${file}`, (t) => {
    const text = desiredText(make());
    const path = GOLDEN + file;
    if (process.env.UPDATE_GOLDEN === '1' || !existsSync(path)) {
      mkdirSync(GOLDEN, { recursive: true });
      writeFileSync(path, text);
      t.log(`wrote ${path}`);
    }
    t.is(text, readFileSync(path, 'utf8'));
  });
}

test('render is deterministic and pure', (t) => {
  const p = basicPlan();
  const before = JSON.stringify(p);
  t.deepEqual(render(p, { ...RO, family: 'ipv4' }), render(basicPlan(), { ...RO, family: 'ipv4' }));
  t.is(JSON.stringify(p), before);
});

// ---------------------------------------------------------------------------------------------
// ipBlocks

test('ipBlock /0 is split in two halves and excepts stay nomatch', (t) => {
  t.deepEqual(ipBlockMembers({ cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '192.168.1.1/32'] }, 'ipv4'), [
    { entry: '0.0.0.0/1' },
    { entry: '10.0.0.0/8', nomatch: true },
    { entry: '128.0.0.0/1' },
    { entry: '192.168.1.1', nomatch: true },
  ]);
  t.deepEqual(ipBlockMembers({ cidr: '::/0', except: ['fd00::/8'] }, 'ipv6'), [{ entry: '8000::/1' }, { entry: '::/1' }, { entry: 'fd00::/8', nomatch: true }].sort((a, b) => (a.entry < b.entry ? -1 : 1)));
  // an except covering a half removes the half; one outside the block is irrelevant
  t.deepEqual(ipBlockMembers({ cidr: '0.0.0.0/0', except: ['0.0.0.0/1', '10.0.0.0/8'] }, 'ipv4'), [{ entry: '128.0.0.0/1' }]);
  t.deepEqual(ipBlockMembers({ cidr: '10.0.0.0/8', except: ['192.168.0.0/16', '10.0.0.0/8'] }, 'ipv4'), []);
  t.deepEqual(ipBlockMembers({ cidr: '10.0.0.0/8', except: [] }, 'ipv6'), [], 'a block of the other family matches nothing here');
  t.deepEqual(ipBlockMembers({ cidr: '10.1.2.3/32', except: [] }, 'ipv4'), [{ entry: '10.1.2.3' }]);
});

test('a /0 ipBlock covers the whole family in the kernel model (interpreter)', (t) => {
  const p = plan([pod('a', 'p', ['10.244.1.5', 'fd00:244:1::5'], { ingress: ['a/all'] })], [
    policy('a/all', ['ingress'], ['a/p'], [rule('a/all', 'ingress', 0, [cidrPeer('a/all/ingress/0/0', 0, 'ipv4', '0.0.0.0/0', ['10.0.0.0/8']), cidrPeer('a/all/ingress/0/1', 1, 'ipv6', '::/0')], 'all')]),
  ]);
  for (const family of ['ipv4', 'ipv6'] as const) {
    const d = render(p, { ...RO, family });
    const dst = family === 'ipv4' ? '10.244.1.5' : 'fd00:244:1::5';
    const srcs = family === 'ipv4' ? ['1.1.1.1', '200.1.2.3', '127.0.0.2', '255.255.255.254', '0.0.0.1'] : ['2001:db8::1', '8000::1', '::2', 'ffff::1'];
    for (const src of srcs) t.is(trace(d, { src, dst, protocol: 'tcp', dport: 80, hook: 'FORWARD' }), 'ACCEPT', `${src} -> ${dst}`);
  }
  t.is(trace(render(p, { ...RO, family: 'ipv4' }), { src: '10.9.9.9', dst: '10.244.1.5', protocol: 'tcp', dport: 80, hook: 'FORWARD' }), 'REJECT', 'except');
});

// ---------------------------------------------------------------------------------------------
// Never widen

test('empty peer or port lists, invalid rules and empty pod sets emit nothing that matches', (t) => {
  const d = render(edgePlan(), { ...RO, family: 'ipv4' });
  const chain = d.chains.find((c) => c.name === policyChainName('edge/odd', 'ingress'))!;
  const marks = chain.rules.filter((r) => r.args.includes('MARK'));
  t.is(marks.length, 2, 'rule 3 (SCTP from anywhere) and rule 4 (an empty pod set)');
  t.true(marks[0]!.args.includes('sctp'));
  t.deepEqual(referencedSets(chain), [peerSetName('KUBE-SRC-', 'edge/odd/ingress/4/pods', 'ipv4')]);
  t.deepEqual(d.sets.find((s) => s.name === referencedSets(chain)[0])!.members, []);
  for (const proto of ['tcp', 'udp'] as const) {
    t.is(trace(d, { src: '10.244.2.9', dst: '10.244.1.9', protocol: proto, dport: 80, hook: 'FORWARD' }), 'REJECT');
  }
  t.is(trace(d, { src: '10.244.2.9', dst: '10.244.1.9', protocol: 'sctp', dport: 80, hook: 'FORWARD' }), 'ACCEPT');
});

test('a pod isolated by a policy the plan does not carry stays closed', (t) => {
  const p = plan([pod('a', 'p', ['10.244.1.5'], { ingress: ['a/missing'] })], []);
  const d = render(p, { ...RO, family: 'ipv4' });
  t.truthy(d.chains.find((c) => c.name === podChainName('a', 'p')));
  t.is(trace(d, { src: '10.244.2.9', dst: '10.244.1.5', protocol: 'tcp', dport: 80, hook: 'FORWARD' }), 'REJECT');
});

// ---------------------------------------------------------------------------------------------
// Scope: only what this node needs

test('only isolated local pods get chains; only referenced peer sets are rendered', (t) => {
  const p = basicPlan();
  p.node = undefined; // a whole-cluster plan: the render keeps this node's pods only
  p.pods.push(pod('shop', 'far-1', ['10.244.2.50'], { node: 'n2', ingress: ['shop/allow-web'] }));
  const d = render(p, { ...RO, family: 'ipv4' });
  const podChains = d.chains.filter((c) => c.name.startsWith('KUBE-POD-FW-')).map((c) => c.name).sort();
  t.deepEqual(podChains, [podChainName('shop', 'web-1'), podChainName('shop', 'db-1')].sort(), 'fe-1 is not isolated, far-1 is not local');
  const referenced = new Set(d.chains.flatMap(referencedSets));
  for (const s of d.sets) {
    if (s.name.startsWith('KUBE-')) t.true(referenced.has(s.name), `${s.name} is referenced`);
  }
  for (const name of referenced) t.truthy(d.sets.find((s) => s.name === name), `${name} is rendered`);
  t.deepEqual(d.sets.filter((s) => !s.name.startsWith('KUBE-')).map((s) => s.name), ['kube-router-pod-subnets', 'kube-router-node-ips', 'podwall-service-ports', 'podwall-programmed', 'podwall-isolated']);
  const programmed = d.sets.find((s) => s.name === 'podwall-programmed')!;
  t.deepEqual(programmed.members.map((m) => m.entry), ['10.244.1.5', '10.244.1.6', '10.244.1.7']);
  const isolated = d.sets.find((s) => s.name === 'podwall-isolated')!;
  t.deepEqual(isolated.members.map((m) => m.entry), ['10.244.1.5', '10.244.1.6'], 'only the pods with a chain');
  // IPv6: the same names with inet6:, only IPv6 members; db-1 has no IPv6 address
  const d6 = render(basicPlan(), { ...RO, family: 'ipv6' });
  t.true(d6.sets.every((s) => s.name.startsWith('inet6:') && s.family === 'inet6'));
  t.deepEqual(d6.chains.filter((c) => c.name.startsWith('KUBE-POD-FW-')).map((c) => c.name), [podChainName('shop', 'web-1')]);
});

test('named ports match only the destination pods on which the name resolves', (t) => {
  const d = render(namedPortsPlan(), { ...RO, family: 'ipv4' });
  const base = { src: '10.244.1.8', protocol: 'tcp' as const, hook: 'FORWARD' as const };
  t.is(trace(d, { ...base, dst: '10.244.2.9', dport: 8080 }), 'ACCEPT');
  // rule 2 (ipBlock 0.0.0.0/0, all ports) opens all of IPv4 anyway
  t.is(trace(d, { ...base, dst: '8.8.8.8', dport: 443 }), 'ACCEPT');
  const d6 = render(namedPortsPlan(), { ...RO, family: 'ipv6' });
  const b6 = { src: 'fd00:244:1::8', protocol: 'tcp' as const, hook: 'FORWARD' as const };
  t.is(trace(d6, { ...b6, dst: 'fd00:244:2::9', dport: 8080 }), 'ACCEPT');
  t.is(trace(d6, { ...b6, dst: 'fd00:244:2::9', dport: 8081 }), 'REJECT', 'only the named port');
  t.is(trace(d6, { ...b6, dst: 'fd00:244:2::9', dport: 8080, protocol: 'udp' }), 'REJECT', 'only its protocol');
  t.is(trace(d6, { ...b6, dst: 'fd00:244:2::10', dport: 8080 }), 'REJECT', 'not a named-port target, and fd00::/8 is excepted');
  t.is(trace(d6, { ...b6, dst: '2001:db8::1', dport: 1 }), 'ACCEPT', '::/0 except fd00::/8');
});

// ---------------------------------------------------------------------------------------------
// How a packet walks the chains

function trace(d: Desired, p: Packet, local = ['172.18.0.2', 'fc00::2', '10.244.1.1']): string {
  return interpret(tableOf(d), setMap(d), p, { localAddresses: local }).verdict;
}

test('same-node, self, node and service traffic', (t) => {
  const d = render(basicPlan(), { ...RO, family: 'ipv4' });
  const f = (src: string, dst: string, dport: number, extra: Partial<Packet> = {}) => trace(d, { src, dst, protocol: 'tcp', dport, hook: 'FORWARD', bridged: true, ...extra });
  t.is(f('10.244.1.7', '10.244.1.5', 80), 'ACCEPT', 'fe-1 -> web-1: allowed by shop/allow-web');
  t.is(f('10.244.1.7', '10.244.1.5', 81), 'REJECT', 'fe-1 -> web-1:81: no rule');
  t.is(f('10.244.1.5', '10.244.1.6', 5432), 'ACCEPT', 'web-1 -> db-1: db ingress allows web; web egress not isolated');
  t.is(f('10.244.1.6', '10.244.1.5', 80), 'REJECT', 'db-1 -> web-1: db egress isolated (only UDP 53 to 10/8 minus 10.244/16)');
  t.is(f('10.244.1.6', '10.1.2.3', 53, { protocol: 'udp' }), 'ACCEPT', 'db-1 -> 10.1.2.3:53/UDP');
  t.is(f('10.244.1.6', '10.244.2.3', 53, { protocol: 'udp' }), 'REJECT', 'the except');
  t.is(f('10.244.1.5', '10.244.1.5', 81), 'ACCEPT', 'a pod reaches itself');
  t.is(f('10.244.1.6', '10.244.1.6', 1), 'ACCEPT', 'a pod reaches itself even when isolated both ways');
  t.is(f('10.244.1.6', '10.244.1.6', 1, { ctstate: 'ESTABLISHED' }), 'ACCEPT');
  t.is(f('10.244.1.7', '10.244.1.5', 81, { ctstate: 'ESTABLISHED' }), 'ACCEPT', 'replies and established flows pass');
  t.is(f('10.244.1.7', '10.244.1.5', 81, { ctstate: 'INVALID' }), 'DROP');
  t.is(trace(d, { src: '172.18.0.2', dst: '10.244.1.6', protocol: 'tcp', dport: 9999, hook: 'OUTPUT' }), 'ACCEPT', 'node -> pod (kubelet probes)');
  t.is(trace(d, { src: '10.244.1.6', dst: '172.18.0.2', protocol: 'tcp', dport: 10250, hook: 'INPUT' }), 'REJECT', 'pod -> node is the pod egress');
  t.is(trace(d, { src: '10.244.1.6', dst: '172.18.0.2', protocol: 'tcp', dport: 30080, hook: 'INPUT' }), 'ACCEPT', 'a Service node port on a LOCAL address is let through');
  t.is(trace(d, { src: '10.244.1.6', dst: '172.18.0.2', protocol: 'tcp', dport: 30081, hook: 'INPUT' }), 'REJECT', 'a port of the node port range no Service has is the pod egress');
  t.is(trace(d, { src: '10.244.1.6', dst: '172.18.0.2', protocol: 'udp', dport: 30080, hook: 'INPUT' }), 'REJECT', 'the node port only with its protocol');
  t.is(trace(d, { src: '10.244.1.6', dst: '10.96.0.10', protocol: 'tcp', dport: 443, hook: 'INPUT' }), 'ACCEPT', 'a Service address and port (IPVS: local) is judged on the backend');
  t.is(trace(d, { src: '10.244.1.6', dst: '10.96.0.10', protocol: 'tcp', dport: 22, hook: 'INPUT' }), 'REJECT', 'another port of a Service address is the pod egress (it reaches the node)');
  t.is(trace(d, { src: '10.244.1.7', dst: '10.244.2.80', protocol: 'tcp', dport: 80, hook: 'FORWARD' }), 'ACCEPT', 'a pod no policy isolates is left to the rest of the table');
});

test('dispatch: established packets of isolated pods end at the top of KUBE-ROUTER-*, new ones walk the destination chain, then the source chain', (t) => {
  const d = render(basicPlan(), { ...RO, family: 'ipv4' });
  const walk = (p: Packet) => interpret(tableOf(d), setMap(d), p, { localAddresses: ['172.18.0.2', '10.244.1.1'] });
  const bridged = { protocol: 'tcp' as const, dport: 80, hook: 'FORWARD' as const, bridged: true };
  // an established reply from web-1 (isolated) to fe-1 (not): one set lookup, no pod chain
  const est = walk({ ...bridged, src: '10.244.1.5', dst: '10.244.1.7', ctstate: 'ESTABLISHED' });
  t.is(est.verdict, 'ACCEPT');
  t.deepEqual(est.steps.map((s) => `${s.chain}#${s.index} ${s.action}`), ['FORWARD#1 JUMP KUBE-ROUTER-FORWARD', 'KUBE-ROUTER-FORWARD#2 ACCEPT']);
  // established traffic of pods no policy isolates is left to the rest of the table, as before
  const other = walk({ ...bridged, src: '10.244.1.7', dst: '10.244.2.80', bridged: false, ctstate: 'ESTABLISHED' });
  t.false(other.steps.some((s) => s.chain.startsWith('KUBE-POD-FW') || s.action === 'ACCEPT'));
  t.is(other.steps.at(-1)!.action, 'POLICY ACCEPT');
  // INVALID still reaches the pod chain's COMMON drop
  t.is(walk({ ...bridged, src: '10.244.1.7', dst: '10.244.1.5', ctstate: 'INVALID' }).verdict, 'DROP');
  // web-1 -> db-1, new: db-1's chain (ingress) first, then web-1's (egress: not isolated, DEFAULT)
  const fresh = walk({ ...bridged, src: '10.244.1.5', dst: '10.244.1.6', dport: 5432 });
  t.is(fresh.verdict, 'ACCEPT');
  const pods = fresh.steps.filter((s) => s.action.startsWith('GOTO KUBE-POD-FW')).map((s) => `${s.chain} ${s.action}`);
  t.deepEqual(pods, [`PODWALL-DST-PODS GOTO ${podChainName('shop', 'db-1')}`, `PODWALL-SRC-PODS GOTO ${podChainName('shop', 'web-1')}`]);
  // denied by the destination: its NFLOG prefix, its REJECT
  const denied = walk({ ...bridged, src: '10.244.1.6', dst: '10.244.1.5', dport: 81 });
  t.is(denied.verdict, 'REJECT');
  t.is(denied.logged.length, 1);
  t.true(denied.logged[0]!.prefix.endsWith(' shop/web-1'), denied.logged[0]!.prefix);
});

test('fail closed: an IP of the node pod CIDR that podwall has not programmed is rejected', (t) => {
  const d = render(basicPlan(), { ...RO, family: 'ipv4' });
  const newPod = { src: '10.244.1.99', dst: '10.244.2.80', protocol: 'tcp' as const, dport: 80, hook: 'FORWARD' as const };
  t.is(trace(d, newPod), 'REJECT', 'new local pod -> remote');
  t.is(trace(d, { ...newPod, src: '10.244.2.80', dst: '10.244.1.99' }), 'REJECT', 'remote -> new local pod');
  t.is(trace(d, { ...newPod, src: '10.244.1.7', dst: '10.244.1.99', bridged: true }), 'REJECT', 'programmed local pod -> new local pod');
  t.is(trace(d, { ...newPod, src: '10.244.1.99', dst: '172.18.0.2', hook: 'INPUT' }), 'REJECT', 'new pod -> node');
  t.is(trace(d, { ...newPod, ctstate: 'ESTABLISHED' }), 'ACCEPT', 'established flows are not cut');
  t.is(trace(d, { ...newPod, src: '10.244.1.1', dst: '172.18.0.2', hook: 'INPUT' }), 'ACCEPT', 'the gateway address (LOCAL) stays reachable');
  t.is(trace(d, { src: '172.18.0.2', dst: '10.244.1.99', protocol: 'tcp', dport: 80, hook: 'OUTPUT' }), 'ACCEPT', 'the node reaches every local pod');
  t.is(trace(d, { ...newPod, src: '10.244.1.7' }), 'ACCEPT', 'programmed, not isolated');
  t.is(trace(d, { ...newPod, src: '10.244.3.4', dst: '10.244.2.80' }), 'ACCEPT', 'not this node');
  const open = render(basicPlan(), { ...RO, family: 'ipv4', defaultDeny: false });
  t.is(trace(open, newPod), 'ACCEPT', 'without default deny');
  t.falsy(open.sets.find((s) => s.name === 'podwall-programmed'));
});

// ---------------------------------------------------------------------------------------------
// Hostile text

const HOSTILE = [
  'x" -j ACCEPT\n-A INPUT -j ACCEPT',
  'name\r\nCOMMIT\n*filter\n:INPUT ACCEPT',
  '\\"\\\'`$(reboot)',
  'ünï\u0000cødé✓',
  '-j DROP',
  'y'.repeat(1000),
  '',
];

test('hostile names and descriptions cannot inject rules or break the payload', (t) => {
  for (const h of HOSTILE) {
    const pid = `${h}/${h}`;
    const p = plan(
      [pod(h, h, ['10.244.1.5'], { ingress: [pid], egress: [pid] })],
      [
        policy(pid, ['ingress', 'egress'], [`${h}/${h}`],
          [rule(pid, 'ingress', 0, [{ ...podPeer(`${h}/${h}/ingress/0/0`, 0, ['10.244.2.5']), describe: h }], [{ ...port('TCP', 0, 80), spec: h }])],
          [rule(pid, 'egress', 0, [{ ...cidrPeer(`${h}/${h}/egress/0/0`, 0, 'ipv4', '10.0.0.0/8'), describe: h }], [port('TCP', 0, 8080, undefined, { name: h, ips: ['10.1.1.1'] })])],
        ),
      ],
    );
    const d = render(p, { ...RO, family: 'ipv4' });
    const payload = writeRestore([{ name: 'filter', chains: d.chains }]);
    // Every line is one rule or one chain declaration, and reads back to exactly the render.
    const lines = payload.trimEnd().split('\n');
    t.is(lines.length, 2 + d.chains.length + d.chains.reduce((n, c) => n + c.rules.length, 0), JSON.stringify(h));
    const back = parseIptablesSave(payload).tables[0]!;
    t.deepEqual(back.chains.map((c) => c.rules.map((r) => r.args)), d.chains.map((c) => c.rules.map((r) => r.args)));
    t.false(back.chains.some((c) => ['INPUT', 'FORWARD', 'OUTPUT'].includes(c.name)), 'no built-in chain touched');
    for (const c of d.chains) {
      for (const r of c.rules) {
        const ci = r.args.indexOf('--comment');
        if (ci >= 0) t.true(/^[\x20-\x7e]{1,128}$/.test(r.args[ci + 1]!) && !/["\\]/.test(r.args[ci + 1]!), r.args[ci + 1]);
        const ni = r.args.indexOf('--nflog-prefix');
        if (ni >= 0) t.true(r.args[ni + 1]!.length <= 63);
      }
    }
    const sets = writeIpsetSave(d.sets);
    t.deepEqual(parseIpsetSave(sets).map((s) => s.name), d.sets.map((s) => s.name));
  }
});

// ---------------------------------------------------------------------------------------------
// The kernel model agrees with the simulator (conformance scenarios, node-1's view)

test('interpreter on the rendered rules agrees with the simulator on every conformance scenario', (t) => {
  let checked = 0;
  const nodeAddr = '172.18.0.2';
  for (const scenario of SCENARIOS) {
    const store = new ClusterStore();
    applyObjects(store, conformanceObjects());
    scenario.steps.forEach((step, si) => {
      applyStep(store, step);
      const p = compile(store, { node: 'node-1' });
      const d = render(p, { ...RO, node: 'node-1', family: 'ipv4' });
      const table = tableOf(d);
      const sets = setMap(d);
      const ips = [...p.podByIP.keys()];
      const local = new Set(p.pods.flatMap((x) => x.ips));
      const endpoints = [...ips, nodeAddr];
      for (const src of endpoints) {
        for (const dst of endpoints) {
          if (src === dst && src === nodeAddr) continue;
          if (!local.has(src) && !local.has(dst) && src !== nodeAddr && dst !== nodeAddr) continue; // not this node's business
          if ((src === nodeAddr && !local.has(dst)) || (dst === nodeAddr && !local.has(src))) continue;
          const hook = src === nodeAddr ? 'OUTPUT' : dst === nodeAddr ? 'INPUT' : 'FORWARD';
          for (const [protocol, port] of [['TCP', 80], ['UDP', 81], ['TCP', 81]] as const) {
            const sim = evaluate(p, { src, dst, protocol, port }).allowed;
            const tr = interpret(table, sets, { src, dst, protocol: protocol === 'TCP' ? 'tcp' : 'udp', dport: port, hook, bridged: local.has(src) && local.has(dst) }, { localAddresses: [nodeAddr, '10.244.1.1'] });
            if ((tr.verdict === 'ACCEPT') !== sim) {
              t.fail(`${scenario.name} step ${si}: ${src} -> ${dst} ${port}/${protocol}: simulator ${sim}, kernel model ${tr.verdict}\n${tr.steps.map((s) => s.line).join('\n')}`);
              return;
            }
            checked++;
          }
        }
      }
    });
  }
  t.log(`${checked} packets checked`);
  t.true(checked > 1000);
});
