// Service addresses in KUBE-ROUTER-INPUT: only addresses inside the range flag of their kind, never a
// node's address or a pod CIDR, only with the Service's ports and protocols; node ports only those
// Services have inside --service-node-port-range. The rule (cluster/service-exemptions.ts), the
// rendered rules walked by the interpreter, and lint's warnings.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { stringify } from 'yaml';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serviceExemptions, type ServiceAddresses, type ServiceRanges } from '../../src/cluster/service-exemptions.js';
import { render, type Desired } from '../../src/dataplane/render.js';
import { interpret, type Packet } from '../../src/iptables/interpret.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { normalizeObject } from '../../src/cluster/normalize.js';
import { lintServices } from '../../src/cluster/service-lint.js';
import { formatFinding } from '../../src/cluster/findings.js';
import { plan, pod, policy, RO, setMap, tableOf } from './dataplane-fixtures.js';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));

const NODES = [
  { name: 'n1', addresses: ['172.18.0.2', 'fc00::2'], podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'] },
  { name: 'n2', addresses: ['172.18.0.3'], podCIDRs: ['10.244.2.0/24'] },
];
const RANGES: ServiceRanges = { clusterIP: ['10.96.0.0/12', 'fd00:96::/108'], externalIP: ['192.0.2.0/24', '10.244.0.0/16', '172.18.0.0/24'], loadBalancerIP: ['203.0.113.0/24'], nodePort: [30000, 32767] };
const svc = (key: string, o: Partial<ServiceAddresses>): ServiceAddresses => ({ key, clusterIPs: [], externalIPs: [], loadBalancerIPs: [], ports: [{ port: 80, protocol: 'TCP' }], nodePorts: [], ...o });

const CASES: { what: string; service: ServiceAddresses; exempt: string[]; refused?: [string, string][] }[] = [
  { what: 'a cluster IP in the cluster range, with its ports', service: svc('a/web', { clusterIPs: ['10.96.0.10', 'fd00:96::10'], ports: [{ port: 80, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }] }), exempt: ['10.96.0.10,UDP:53', '10.96.0.10,TCP:80', 'fd00:96::10,UDP:53', 'fd00:96::10,TCP:80'] },
  { what: 'a cluster IP outside the cluster range', service: svc('a/odd', { clusterIPs: ['10.43.0.10'] }), exempt: [], refused: [['10.43.0.10', 'outside-range']] },
  { what: 'an external IP in the external range', service: svc('a/ext', { externalIPs: ['192.0.2.10'] }), exempt: ['192.0.2.10,TCP:80'] },
  { what: 'an external IP only in the cluster range (each kind has its own range)', service: svc('a/x', { externalIPs: ['10.96.0.10'] }), exempt: [], refused: [['10.96.0.10', 'outside-range']] },
  { what: "a node's address, even inside the external range", service: svc('a/node', { externalIPs: ['172.18.0.2'] }), exempt: [], refused: [['172.18.0.2', 'node-address']] },
  { what: "another node's address", service: svc('a/node2', { externalIPs: ['172.18.0.3'] }), exempt: [], refused: [['172.18.0.3', 'node-address']] },
  { what: 'an address in a pod CIDR, even inside the external range', service: svc('a/pod', { externalIPs: ['10.244.2.7'] }), exempt: [], refused: [['10.244.2.7', 'pod-cidr']] },
  { what: 'a load-balancer IP in the load-balancer range', service: svc('a/lb', { loadBalancerIPs: ['203.0.113.5'] }), exempt: ['203.0.113.5,TCP:80'] },
  { what: 'a load-balancer IP outside it', service: svc('a/lb2', { loadBalancerIPs: ['198.51.100.5'] }), exempt: [], refused: [['198.51.100.5', 'outside-range']] },
  { what: 'a Service without ports exempts nothing', service: svc('a/none', { clusterIPs: ['10.96.0.12'], ports: [] }), exempt: [] },
];

for (const c of CASES) {
  test(`exemptions: ${c.what}`, (t) => {
    const e = serviceExemptions([c.service], NODES, RANGES);
    t.deepEqual(e.addressPorts.map((x) => `${x.ip},${x.protocol}:${x.port}`).sort(), [...c.exempt].sort());
    t.deepEqual(e.refused.map((r) => [r.ip, r.reason]), c.refused ?? []);
  });
}

test('exemptions: no range given exempts nothing; node ports only inside the node port range', (t) => {
  const s = svc('a/np', { clusterIPs: ['10.96.0.10'], externalIPs: ['192.0.2.10'], nodePorts: [{ port: 30080, protocol: 'TCP' }, { port: 30080, protocol: 'UDP' }, { port: 8080, protocol: 'TCP' }] });
  const none = serviceExemptions([s], NODES, { clusterIP: [], externalIP: [], loadBalancerIP: [], nodePort: [30000, 32767] });
  t.deepEqual(none.addressPorts, []);
  t.is(none.refused.length, 2);
  t.deepEqual(none.nodePorts, { TCP: [30080], UDP: [30080], SCTP: [] });
  t.deepEqual(none.refusedNodePorts.map((r) => r.port), [8080]);
});

// ---------------------------------------------------------------------------------------------
// The rendered rules, walked by the interpreter: an egress-locked pod (n1's db-1, egress only to
// 10.0.0.0/8 except 10.244.0.0/16 on 53/UDP, as in the fixtures) on a node where IPVS makes every
// Service address local.

function egressLocked(services: ServiceAddresses[]): Desired {
  const p = plan([pod('shop', 'db-1', ['10.244.1.6'], { egress: ['shop/deny'] })], [policy('shop/deny', ['egress'], ['shop/db-1'])], {
    services: services.map((s) => ({ ...s, ips: [...s.clusterIPs, ...s.externalIPs, ...s.loadBalancerIPs], clusterIPs: [...s.clusterIPs], externalIPs: [...s.externalIPs], loadBalancerIPs: [...s.loadBalancerIPs], ports: [...s.ports], nodePorts: [...s.nodePorts] })),
  });
  return render(p, { ...RO, serviceExternalIPRanges: RANGES.externalIP as string[], loadBalancerIPRanges: RANGES.loadBalancerIP as string[], family: 'ipv4' });
}

function input(d: Desired, dst: string, dport: number, protocol: Packet['protocol'] = 'tcp', local: string[] = []): string {
  return interpret(tableOf(d), setMap(d), { src: '10.244.1.6', dst, protocol, dport, hook: 'INPUT' }, { localAddresses: ['172.18.0.2', '10.244.1.1', ...local] }).verdict;
}

test('render: a Service listing the node address as externalIP opens nothing (the issue: anyone creating a Service opened the node)', (t) => {
  const hostile = svc('attacker/open-node', { clusterIPs: ['10.96.0.99'], externalIPs: ['172.18.0.2', '10.244.1.1'], ports: [{ port: 22, protocol: 'TCP' }, { port: 10250, protocol: 'TCP' }] });
  const d = egressLocked([hostile]);
  for (const port of [22, 10250, 80]) {
    t.is(input(d, '172.18.0.2', port), 'REJECT', `node address :${port}`);
    t.is(input(d, '10.244.1.1', port), 'REJECT', `the bridge address (pod CIDR) :${port}`);
  }
  t.is(input(d, '10.96.0.99', 22, 'tcp', ['10.96.0.99']), 'ACCEPT', 'its own cluster IP on its own port is judged on the backend');
  t.is(input(d, '10.96.0.99', 23, 'tcp', ['10.96.0.99']), 'REJECT', 'not on another port');
  t.is(input(d, '10.96.0.99', 22, 'udp', ['10.96.0.99']), 'REJECT', 'not with another protocol');
});

test('render: external and load-balancer IPs only inside their ranges, only their ports', (t) => {
  const d = egressLocked([
    svc('a/ext', { externalIPs: ['192.0.2.10', '198.51.100.7'], loadBalancerIPs: ['203.0.113.5', '198.51.100.8'], ports: [{ port: 443, protocol: 'TCP' }] }),
  ]);
  const local = ['192.0.2.10', '198.51.100.7', '203.0.113.5', '198.51.100.8'];
  t.is(input(d, '192.0.2.10', 443, 'tcp', local), 'ACCEPT');
  t.is(input(d, '203.0.113.5', 443, 'tcp', local), 'ACCEPT');
  t.is(input(d, '192.0.2.10', 22, 'tcp', local), 'REJECT');
  t.is(input(d, '198.51.100.7', 443, 'tcp', local), 'REJECT', 'external IP outside --service-external-ip-range');
  t.is(input(d, '198.51.100.8', 443, 'tcp', local), 'REJECT', 'load-balancer IP outside --loadbalancer-ip-range');
  const set = d.sets.find((s) => s.name === 'podwall-service-ports')!;
  t.is(set.type, 'hash:ip,port');
  t.deepEqual(set.members.map((m) => m.entry), ['192.0.2.10,tcp:443', '203.0.113.5,tcp:443']);
});

test('render: node ports — only those Services have, with their protocol, inside the range; over 15 split in rules', (t) => {
  const many = Array.from({ length: 17 }, (_, i) => ({ port: 30100 + i, protocol: 'TCP' as const }));
  const d = egressLocked([svc('a/np', { nodePorts: [...many, { port: 31000, protocol: 'SCTP' }, { port: 8080, protocol: 'TCP' }] })]);
  t.is(input(d, '172.18.0.2', 30116), 'ACCEPT');
  t.is(input(d, '172.18.0.2', 30117), 'REJECT');
  t.is(input(d, '172.18.0.2', 31000, 'sctp'), 'ACCEPT');
  t.is(input(d, '172.18.0.2', 31000, 'tcp'), 'REJECT');
  t.is(input(d, '172.18.0.2', 8080), 'REJECT', 'outside --service-node-port-range');
  const kri = d.chains.find((c) => c.name === 'KUBE-ROUTER-INPUT')!;
  t.deepEqual(
    kri.rules.filter((r) => r.args.includes('multiport')).map((r) => r.args[r.args.indexOf('--dports') + 1]),
    [many.slice(0, 15).map((p) => p.port).join(','), '30115,30116', '31000'],
  );
});

test('render: IPv6 members are canonical `address,proto:port`', (t) => {
  const p = plan([], [], { services: [{ key: 'a/v6', ips: ['fd00:96:0::10'], clusterIPs: ['fd00:96::10'], externalIPs: [], loadBalancerIPs: [], ports: [{ port: 53, protocol: 'UDP' }], nodePorts: [] }] });
  const d = render(p, { ...RO, family: 'ipv6' });
  t.deepEqual(d.sets.find((s) => s.name === 'inet6:podwall-service-ports')!.members, [{ entry: 'fd00:96::10,udp:53' }]);
});

// ---------------------------------------------------------------------------------------------
// lint

function storeOf(raws: object[]): ClusterStore {
  const store = new ClusterStore();
  for (const raw of raws) {
    const r = normalizeObject(raw, { file: 'svc.yaml' });
    if (!r.object) throw new Error(r.findings.map(formatFinding).join('; '));
    store.upsert(r.object);
  }
  return store;
}
const node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, spec: { podCIDR: '10.244.1.0/24' }, status: { addresses: [{ type: 'InternalIP', address: '172.18.0.2' }] } };
const service = (name: string, spec: object, status: object = {}) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' }, spec: { ports: [{ port: 80, nodePort: 30080 }], ...spec }, status });

test('lint: external IPs outside the ranges, node addresses and pod CIDR addresses are warnings naming the field', (t) => {
  const store = storeOf([
    node,
    service('ok', { clusterIP: '10.96.0.10', externalIPs: ['192.0.2.10'] }),
    service('outside', { clusterIP: '10.96.0.11', externalIPs: ['198.51.100.1'] }),
    service('node', { clusterIP: '10.96.0.12', externalIPs: ['192.0.2.11', '172.18.0.2'] }),
    service('pod', { clusterIP: '10.96.0.13', externalIPs: ['10.244.1.9'] }, { loadBalancer: { ingress: [{ ip: '203.0.113.9' }] } }),
  ]);
  const f = lintServices(store, { clusterIP: ['10.96.0.0/12'], externalIP: ['192.0.2.0/24'], loadBalancerIP: [], nodePort: [30000, 32767] }, { clusterIPRangeGiven: true, nodePortRangeGiven: true });
  t.deepEqual(
    f.map((x) => [x.object, x.field, x.code]),
    [
      ['Service shop/node', 'spec.externalIPs[1]', 'service-ip-is-node-address'],
      ['Service shop/outside', 'spec.externalIPs[0]', 'service-ip-outside-range'],
      ['Service shop/pod', 'spec.externalIPs[0]', 'service-ip-in-pod-cidr'],
      ['Service shop/pod', 'status.loadBalancer.ingress[0].ip', 'service-ip-outside-range'],
    ],
  );
  t.true(f.every((x) => x.severity === 'warning' && x.file === 'svc.yaml'));
  const line = formatFinding(f[1]!);
  t.true(line.includes('198.51.100.1') && line.includes('--service-external-ip-range') && !line.includes('\n'), line);
  t.true(formatFinding(f[0]!).includes('node n1'), formatFinding(f[0]!));
});

test('lint: cluster IPs and node ports are checked only against ranges given on the command line', (t) => {
  const store = storeOf([service('k3s', { clusterIP: '10.43.0.10', ports: [{ port: 80, nodePort: 8080 }] })]);
  const ranges: ServiceRanges = { clusterIP: ['10.96.0.0/12'], externalIP: [], loadBalancerIP: [], nodePort: [30000, 32767] };
  t.deepEqual(lintServices(store, ranges, { clusterIPRangeGiven: false, nodePortRangeGiven: false }), []);
  t.deepEqual(
    lintServices(store, ranges, { clusterIPRangeGiven: true, nodePortRangeGiven: true }).map((x) => [x.field, x.code]),
    [
      ['spec.clusterIPs[0]', 'service-ip-outside-range'],
      ['spec.ports[0].nodePort', 'service-node-port-outside-range'],
    ],
  );
});

test('lint command: the range flags decide the Service warnings; a bad range is a one-line usage error', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podwall-svc-lint-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'svc.yaml');
  writeFileSync(file, [node, service('ext', { clusterIP: '10.96.0.10', externalIPs: ['192.0.2.10', '172.18.0.2'] })].map((o) => stringify(o)).join('---\n'));
  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, 'lint', '-f', file, ...args], { encoding: 'utf8' });
  const none = run('-o', 'json');
  t.is(none.status, 0, none.stderr);
  t.deepEqual(JSON.parse(none.stdout).findings.map((f: { field: string; code: string }) => `${f.field} ${f.code}`), ['spec.externalIPs[0] service-ip-outside-range', 'spec.externalIPs[1] service-ip-is-node-address']);
  const given = run('-o', 'json', '--service-external-ip-range', '192.0.2.0/24,172.18.0.0/16');
  t.deepEqual(JSON.parse(given.stdout).findings.map((f: { field: string; code: string }) => `${f.field} ${f.code}`), ['spec.externalIPs[1] service-ip-is-node-address']);
  const bad = run('--service-external-ip-range', '192.0.2.0/33');
  t.is(bad.status, 2);
  t.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  t.regex(bad.stderr, /--service-external-ip-range/);
});
