// trace --live on nodes whose pods are routed (own veth, host route, no bridge): the node view learns
// local pods from host routes and from podwall's own rules and sets, and the path puts their packets on
// FORWARD/INPUT/OUTPUT through their own interfaces, as the kernel does.
import test from 'ava';
import { nodeViewFromIp, podwallFacts } from '../../src/dataplane/trace.js';
import { packetPaths } from '../../src/dataplane/path.js';
import { parseIptablesSave, parseIpsetSave } from '../../src/iptables/parse.js';

const ADDR = [
  { ifname: 'lo', addr_info: [{ local: '127.0.0.1', prefixlen: 8 }] },
  { ifname: 'eth0', linkinfo: { info_kind: 'veth' }, addr_info: [{ local: '172.18.0.2', prefixlen: 24 }] },
  { ifname: 'cali1', linkinfo: { info_kind: 'veth' }, addr_info: [{ local: '10.244.1.1', prefixlen: 32 }] },
  { ifname: 'cali2', linkinfo: { info_kind: 'veth' }, addr_info: [] },
  { ifname: 'tun0', linkinfo: { info_kind: 'tun' }, addr_info: [{ local: '10.8.0.2', prefixlen: 32 }] },
  { ifname: 'docker0', linkinfo: { info_kind: 'bridge' }, addr_info: [{ local: '172.17.0.1', prefixlen: 16 }] },
];
const ROUTE = [
  { dst: 'default', gateway: '172.18.0.1', dev: 'eth0' },
  { dst: '172.18.0.0/24', dev: 'eth0' },
  { dst: '10.244.1.10', dev: 'cali1', scope: 'link' },
  { dst: '10.244.1.11', dev: 'cali2', scope: 'link' },
  { dst: '10.8.0.1', dev: 'tun0', scope: 'link' },
  { dst: '172.17.0.0/16', dev: 'docker0' },
  { dst: '10.244.2.0/24', gateway: '172.18.0.3', dev: 'eth0' },
];

const SAVE = `*filter
:KUBE-ROUTER-FORWARD - [0:0]
-A KUBE-ROUTER-FORWARD -s 10.244.1.0/24 -m addrtype ! --src-type LOCAL -m set ! --match-set podwall-programmed src -m conntrack ! --ctstate RELATED,ESTABLISHED -j REJECT --reject-with icmp-port-unreachable
-A KUBE-ROUTER-FORWARD -d 10.244.1.0/24 -m addrtype ! --dst-type LOCAL -m set ! --match-set podwall-programmed dst -m conntrack ! --ctstate RELATED,ESTABLISHED -j REJECT --reject-with icmp-port-unreachable
-A KUBE-ROUTER-FORWARD -s 192.0.2.0/24 -m set --match-set podwall-programmed src -j ACCEPT
COMMIT
`;
const SETS = 'create podwall-programmed hash:ip family inet\nadd podwall-programmed 10.244.1.10\nadd podwall-programmed 10.244.1.12\ncreate podwall-isolated hash:ip family inet\nadd podwall-isolated 10.244.1.11\n';

test('podwallFacts: the pod CIDRs of the fail-closed rules and the pods of podwall-programmed / -isolated', (t) => {
  const f = podwallFacts(parseIptablesSave(SAVE).tables[0]!, parseIpsetSave(SETS), 'ipv4');
  t.deepEqual(f.podCIDRs, ['10.244.1.0/24'], 'only CIDRs of rules that reject what podwall-programmed does not hold');
  t.deepEqual(f.pods.sort(), ['10.244.1.10', '10.244.1.11', '10.244.1.12']);
  t.deepEqual(podwallFacts(parseIptablesSave(SAVE).tables[0]!, parseIpsetSave(SETS), 'ipv6'), { podCIDRs: [], pods: [] }, 'IPv6 has its inet6: sets');
});

test('nodeViewFromIp: host routes to veths are routed pods; a tunnel peer and docker0 are not pods; no bridge is invented', (t) => {
  const facts = podwallFacts(parseIptablesSave(SAVE).tables[0]!, parseIpsetSave(SETS), 'ipv4');
  const v = nodeViewFromIp(ADDR, ROUTE, { node: 'n1', podwall: facts });
  t.deepEqual([...v.routedPods!].sort(), [
    ['10.244.1.10', 'cali1'],
    ['10.244.1.11', 'cali2'],
  ]);
  t.false(v.localPods.has('10.8.0.1'), 'a host route through a tunnel is no pod');
  t.true(v.localPods.has('10.244.1.12'), 'programmed, no route yet: still a local pod');
  t.deepEqual(v.localPodCIDRs, ['10.244.1.0/24'], "podwall's CIDR, not docker0's");
  t.is(v.uplink, 'eth0');
  t.is(v.bridge, 'kube-bridge', 'none present: the name is only a label');
  // Without podwall's facts a veth host route still makes a routed pod.
  t.deepEqual([...nodeViewFromIp(ADDR, ROUTE, { node: 'n1' }).routedPods!.keys()].sort(), ['10.244.1.10', '10.244.1.11']);
});

test('paths of routed pods: FORWARD between their own interfaces (no physdev), INPUT from, OUTPUT to, FORWARD out the uplink', (t) => {
  const v = nodeViewFromIp(ADDR, ROUTE, { node: 'n1', podwall: podwallFacts(parseIptablesSave(SAVE).tables[0]!, parseIpsetSave(SETS), 'ipv4') });
  const one = (src: string, dst: string) => {
    const h = packetPaths(v, src, dst, 'tcp', 80);
    t.is(h.length, 1, `${src} -> ${dst}`);
    return h[0]!;
  };
  const pp = one('10.244.1.10', '10.244.1.11');
  t.is(pp.kind, 'routed');
  t.like(pp.packet, { hook: 'FORWARD', inIface: 'cali1', outIface: 'cali2' });
  t.falsy(pp.packet.bridged);
  t.is(pp.packet.physdevIn, undefined);
  t.like(one('10.244.1.10', '172.18.0.2').packet, { hook: 'INPUT', inIface: 'cali1' });
  t.like(one('172.18.0.2', '10.244.1.11').packet, { hook: 'OUTPUT', outIface: 'cali2' });
  t.like(one('10.244.1.11', '8.8.8.8').packet, { hook: 'FORWARD', inIface: 'cali2', outIface: 'eth0' });
  t.like(one('10.244.2.5', '10.244.1.10').packet, { hook: 'FORWARD', inIface: 'eth0', outIface: 'cali1' });
  t.deepEqual(packetPaths(v, '8.8.8.8', '9.9.9.9', 'tcp', 80), [], 'not this node: no hop');
});
