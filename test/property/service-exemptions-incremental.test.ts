// Service exemptions kept across node changes (ServiceExemptionCache) always equal a full judgement
// of every Service address, over random sequences of nodes joining, leaving and changing.
import test from 'ava';
import fc from 'fast-check';
import { ServiceExemptionCache, serviceExemptions, type NodeAddresses, type ServiceAddresses, type ServiceRanges } from '../../src/cluster/service-exemptions.js';

const RANGES: ServiceRanges = { clusterIP: ['10.96.0.0/12', 'fd00:96::/108'], externalIP: ['192.0.2.0/24', '10.244.0.0/16'], loadBalancerIP: ['203.0.113.0/24'], nodePort: [30000, 32767] };
// Service addresses: mostly in the ranges, some inside pod CIDRs or equal to node addresses below.
const ADDR = ['10.96.0.1', '10.96.0.10', '10.96.3.7', 'fd00:96::a', '192.0.2.7', '10.244.1.9', '10.244.2.200', '10.244.9.1', '172.18.0.2', '203.0.113.5', '198.51.100.1', 'fd00:244:1::5'];
const NODE_ADDR = ['172.18.0.2', '172.18.0.3', '172.18.0.4', '10.96.0.10', 'fc00::2', '192.0.2.7'];
const POD_CIDR = ['10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24', '10.244.0.0/16', '10.244.2.128/25', 'fd00:244:1::/64', '10.96.0.0/24', '10.250.0.0/24'];

const serviceArb = fc.record({
  key: fc.constantFrom('a/web', 'a/db', 'b/api', 'c/x'),
  clusterIPs: fc.subarray(ADDR, { maxLength: 2 }),
  externalIPs: fc.subarray(ADDR, { maxLength: 2 }),
  loadBalancerIPs: fc.subarray(ADDR, { maxLength: 1 }),
  ports: fc.subarray([{ port: 80, protocol: 'TCP' as const }, { port: 53, protocol: 'UDP' as const }], { minLength: 1 }),
  nodePorts: fc.subarray([{ port: 30080, protocol: 'TCP' as const }, { port: 8080, protocol: 'TCP' as const }]),
}) as fc.Arbitrary<ServiceAddresses>;
const nodeArb = fc.record({
  name: fc.constantFrom('n1', 'n2', 'n3', 'n4', 'n5'),
  addresses: fc.subarray(NODE_ADDR, { maxLength: 2 }),
  podCIDRs: fc.subarray(POD_CIDR, { maxLength: 2 }),
});
// One step: a node joins or changes (upsert by name), or leaves; nodes stay sorted by name as in a Plan.
const stepArb = fc.oneof(nodeArb.map((n) => ({ op: 'upsert' as const, node: n })), fc.constantFrom('n1', 'n2', 'n3', 'n4', 'n5').map((name) => ({ op: 'remove' as const, name })));

let incremental = 0;
let full = 0;
test('service exemptions: incremental over node changes == full judgement', (t) => {
  fc.assert(
    fc.property(fc.array(serviceArb, { maxLength: 4 }), fc.array(nodeArb, { maxLength: 3 }), fc.array(stepArb, { minLength: 1, maxLength: 12 }), (services, initial, steps) => {
      let nodes: NodeAddresses[] = [...new Map(initial.map((n) => [n.name, n])).values()].sort((a, b) => (a.name < b.name ? -1 : 1));
      const cache = new ServiceExemptionCache(services, RANGES);
      t.deepEqual(cache.forNodes(nodes), serviceExemptions(services, nodes, RANGES));
      for (const s of steps) {
        nodes = s.op === 'upsert' ? [...nodes.filter((n) => n.name !== s.node.name), s.node].sort((a, b) => (a.name < b.name ? -1 : 1)) : nodes.filter((n) => n.name !== s.name);
        const got = cache.forNodes(nodes);
        if (cache.lastPath === 'incremental') incremental++;
        if (cache.lastPath === 'full') full++;
        if (!t.deepEqual(got, serviceExemptions(services, nodes, RANGES))) return false;
      }
      return true;
    }),
    { numRuns: 400 },
  );
  // Both paths were exercised (a property that never takes the incremental path proves nothing).
  t.true(incremental > 100, `incremental path taken ${incremental} times`);
  t.true(full > 100, `full path taken ${full} times`);
});

test('service exemptions: a node whose pod CIDR holds a Service address is judged again', (t) => {
  const services: ServiceAddresses[] = [{ key: 'a/web', clusterIPs: ['10.96.0.10'], externalIPs: ['10.244.5.7'], loadBalancerIPs: [], ports: [{ port: 80, protocol: 'TCP' }], nodePorts: [] }];
  const n1 = { name: 'n1', addresses: ['172.18.0.2'], podCIDRs: ['10.244.1.0/24'] };
  const cache = new ServiceExemptionCache(services, RANGES);
  const first = cache.forNodes([n1]);
  t.deepEqual(first.addressPorts.map((a) => a.ip), ['10.244.5.7', '10.96.0.10']);
  // A node whose CIDR holds none: the same result, not judged again.
  t.is(cache.forNodes([n1, { name: 'n2', addresses: ['172.18.0.3'], podCIDRs: ['10.244.2.0/24'] }]), first);
  t.is(cache.lastPath, 'incremental');
  // One whose CIDR holds the external IP: it is refused from now on.
  const third = cache.forNodes([n1, { name: 'n2', addresses: ['172.18.0.3'], podCIDRs: ['10.244.2.0/24'] }, { name: 'n5', addresses: [], podCIDRs: ['10.244.5.0/24'] }]);
  t.is(cache.lastPath, 'full');
  t.deepEqual(third.addressPorts.map((a) => a.ip), ['10.96.0.10']);
  t.deepEqual(third.refused.map((r) => [r.ip, r.reason, r.node]), [['10.244.5.7', 'pod-cidr', 'n5']]);
});
