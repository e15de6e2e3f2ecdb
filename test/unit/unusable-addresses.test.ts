// Addresses no endpoint can have (unspecified, loopback, multicast, the IPv4 broadcast) are
// validation errors naming object and field: ipset refuses some of them outright ("Null-valued
// element"), and none of them names one pod, Service or node.
import test from 'ava';
import { normalizeObject } from '../../src/cluster/normalize.js';
import { formatFinding } from '../../src/cluster/findings.js';
import { parseIP, unusableAddress } from '../../src/net/ip.js';

const UNUSABLE: [string, string][] = [
  ['0.0.0.0', 'the unspecified address'],
  ['::', 'the unspecified address'],
  ['127.0.0.1', 'a loopback address'],
  ['127.255.0.9', 'a loopback address'],
  ['::1', 'the loopback address'],
  ['224.0.0.1', 'a multicast address'],
  ['239.255.255.255', 'a multicast address'],
  ['ff02::1', 'a multicast address'],
  ['255.255.255.255', 'the broadcast address'],
];
// Close neighbours that are ordinary unicast addresses.
const USABLE = ['0.0.0.1', '1.0.0.0', '126.255.255.255', '128.0.0.0', '223.255.255.255', '240.0.0.1', '255.255.255.254', '::2', 'fe80::1', 'feff::1', '10.244.1.5', 'fd00::5'];

for (const [ip, why] of UNUSABLE) {
  test(`unusableAddress(${ip}) = ${why}`, (t) => {
    t.is(unusableAddress(parseIP(ip)!), why);
  });
}
test('ordinary unicast addresses are usable', (t) => {
  for (const ip of USABLE) t.is(unusableAddress(parseIP(ip)!), undefined, ip);
});

const pod = (ips: string[]) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', namespace: 'shop' },
  spec: { nodeName: 'node-1', containers: [{ name: 'c', image: 'x' }] },
  status: { phase: 'Running', podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) },
});
const service = (spec: object, status: object = {}) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'svc', namespace: 'shop' }, spec: { ports: [{ port: 80 }], ...spec }, status });

const CASES: { what: string; raw: (ip: string) => object; field: string }[] = [
  { what: 'pod status.podIPs', raw: (ip) => pod(['10.244.1.5', ip]), field: 'status.podIPs[1]' },
  { what: 'pod status.podIP alone', raw: (ip) => ({ ...pod([]), status: { phase: 'Running', podIP: ip } }), field: 'status.podIP[0]' },
  { what: 'service spec.clusterIPs', raw: (ip) => service({ clusterIPs: [ip] }), field: 'spec.clusterIPs[0]' },
  { what: 'service spec.externalIPs', raw: (ip) => service({ clusterIP: '10.96.0.10', externalIPs: ['192.0.2.10', ip] }), field: 'spec.externalIPs[1]' },
  { what: 'service load-balancer ingress', raw: (ip) => service({ clusterIP: '10.96.0.10' }, { loadBalancer: { ingress: [{ ip }] } }), field: 'status.loadBalancer.ingress[0]' },
];

for (const c of CASES) {
  test(`${c.what}: each unusable address rejects the object with one line naming file, object and field`, (t) => {
    for (const [ip, why] of UNUSABLE) {
      const r = normalizeObject(c.raw(ip), { file: 'cluster.yaml' });
      t.is(r.object, undefined, `${ip}: the object is rejected`);
      const errors = r.findings.filter((f) => f.severity === 'error');
      t.is(errors.length, 1, ip);
      t.like(errors[0], { code: 'unusable-ip', field: c.field, file: 'cluster.yaml' });
      const line = formatFinding(errors[0]!);
      t.true(line.includes(why) && line.includes('cluster.yaml') && !line.includes('\n'), line);
    }
    for (const ip of USABLE) t.truthy(normalizeObject(c.raw(ip), { file: 'cluster.yaml' }).object, `${ip} is accepted`);
  });
}

test('node addresses: an unusable one is an error and left out; the node and its other addresses stay', (t) => {
  const r = normalizeObject(
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'node-1' },
      spec: { podCIDR: '10.244.1.0/24' },
      status: { addresses: [{ type: 'InternalIP', address: '0.0.0.0' }, { type: 'InternalIP', address: '172.18.0.2' }, { type: 'ExternalIP', address: '224.0.0.5' }] },
    },
    { file: 'nodes.yaml' },
  );
  t.deepEqual((r.object as { addresses: string[] }).addresses, ['172.18.0.2']);
  t.deepEqual(
    r.findings.map((f) => [f.code, f.field]),
    [
      ['unusable-ip', 'status.addresses[0].address'],
      ['unusable-ip', 'status.addresses[2].address'],
    ],
  );
});
