// Interpreter tests: a small hand-written kube-router-like filter table and packets through it.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseIpsetSave, parseIptablesSave } from '../../src/iptables/parse.js';
import { interpret, InterpretError, UnsupportedRuleError, type Packet } from '../../src/iptables/interpret.js';
import type { IptTable } from '../../src/iptables/model.js';

const SAVE = `# hand-written, in the shape kube-router programs
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-ROUTER-INPUT - [0:0]
:KUBE-ROUTER-FORWARD - [0:0]
:KUBE-ROUTER-OUTPUT - [0:0]
:KUBE-POD-FW-WEB - [0:0]
:KUBE-NWPLCY-ALLOW - [0:0]
:KUBE-NWPLCY-DEFAULT - [0:0]
-A INPUT -m comment --comment "kube-router netpol" -j KUBE-ROUTER-INPUT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -j DROP
-A FORWARD -m comment --comment "kube-router netpol" -j KUBE-ROUTER-FORWARD
-A FORWARD -i cni+ -j ACCEPT
-A OUTPUT -j KUBE-ROUTER-OUTPUT
-A KUBE-ROUTER-INPUT -d 10.96.0.0/12 -m comment --comment "cluster IP range" -j RETURN
-A KUBE-ROUTER-INPUT -p tcp -m addrtype --dst-type LOCAL -m multiport --dports 30000:32767 -j ACCEPT
-A KUBE-ROUTER-INPUT -s 10.244.1.5/32 -j KUBE-POD-FW-WEB
-A KUBE-ROUTER-FORWARD -d 10.244.1.5/32 -j KUBE-POD-FW-WEB
-A KUBE-ROUTER-FORWARD -d 10.244.1.5/32 -m physdev --physdev-is-bridged -j KUBE-POD-FW-WEB
-A KUBE-ROUTER-FORWARD -m mark --mark 0x20000/0x20000 -j ACCEPT
-A KUBE-ROUTER-OUTPUT -m physdev ! --physdev-is-bridged -d 10.244.9.9/32 -j REJECT --reject-with icmp-host-prohibited
-A KUBE-ROUTER-OUTPUT -d 10.244.1.5/32 -g KUBE-POD-FW-WEB
-A KUBE-POD-FW-WEB -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-POD-FW-WEB -m conntrack --ctstate INVALID -j DROP
-A KUBE-POD-FW-WEB -d 10.244.1.5/32 -m addrtype --src-type LOCAL -j ACCEPT
-A KUBE-POD-FW-WEB -j KUBE-NWPLCY-ALLOW
-A KUBE-POD-FW-WEB -m mark ! --mark 0x10000/0x10000 -m limit --limit 10/min --limit-burst 10 -j NFLOG --nflog-group 100 --nflog-prefix "web drop"
-A KUBE-POD-FW-WEB -m mark ! --mark 0x10000/0x10000 -j REJECT --reject-with icmp-port-unreachable
-A KUBE-POD-FW-WEB -j MARK --set-xmark 0x0/0x10000
-A KUBE-POD-FW-WEB -j MARK --set-xmark 0x20000/0x20000
-A KUBE-NWPLCY-ALLOW -p tcp -m set --match-set KUBE-SRC-ALLOW src -m tcp --dport 80 -j MARK --set-xmark 0x10000/0x10000
-A KUBE-NWPLCY-ALLOW -p udp -m set --match-set KUBE-BLOCK src -m udp --dport 53:54 -j MARK --set-xmark 0x10000/0x10000
-A KUBE-NWPLCY-ALLOW -m mark --mark 0x10000/0x10000 -j RETURN
-A KUBE-NWPLCY-ALLOW -p sctp -m sctp ! --dport 1:100 -j KUBE-NWPLCY-DEFAULT
-A KUBE-NWPLCY-DEFAULT -s 10.244.3.0/24 -j MARK --or-mark 0x10000
COMMIT
`;

const SETS = `create KUBE-SRC-ALLOW hash:ip family inet hashsize 1024 maxelem 65536
add KUBE-SRC-ALLOW 10.244.2.7
add KUBE-SRC-ALLOW 10.244.2.8
create KUBE-BLOCK hash:net family inet hashsize 1024 maxelem 65536
add KUBE-BLOCK 10.0.0.0/8
add KUBE-BLOCK 10.244.0.0/16 nomatch
add KUBE-BLOCK 10.244.2.0/24
`;

const table = parseIptablesSave(SAVE).tables[0]!;
const sets = parseIpsetSave(SETS);

const fwd = (over: Partial<Packet>): Packet => ({ src: '10.244.2.7', dst: '10.244.1.5', protocol: 'tcp', sport: 40000, dport: 80, hook: 'FORWARD', inIface: 'eth0', outIface: 'kube-bridge', ...over });

const path = (steps: { chain: string; index: number; action: string }[]): string[] => steps.map((s) => `${s.chain}#${s.index} ${s.action}`);

test('allowed peer: jump, set match, mark, RETURN, mark reset and netpol-ok, ACCEPT', (t) => {
  const tr = interpret(table, sets, fwd({}));
  t.is(tr.verdict, 'ACCEPT');
  t.deepEqual(path(tr.steps), [
    'FORWARD#1 JUMP KUBE-ROUTER-FORWARD',
    'KUBE-ROUTER-FORWARD#1 JUMP KUBE-POD-FW-WEB',
    'KUBE-POD-FW-WEB#4 JUMP KUBE-NWPLCY-ALLOW',
    'KUBE-NWPLCY-ALLOW#1 MARK 0x10000',
    'KUBE-NWPLCY-ALLOW#3 RETURN',
    'KUBE-POD-FW-WEB#7 MARK 0x0',
    'KUBE-POD-FW-WEB#8 MARK 0x20000',
    'KUBE-ROUTER-FORWARD#3 ACCEPT',
  ]);
  t.is(tr.mark, 0x20000);
  t.deepEqual(tr.logged, []);
  t.is(tr.steps[0]!.line, '-A FORWARD -m comment --comment "kube-router netpol" -j KUBE-ROUTER-FORWARD');
});

test('physdev: a bridged packet passes the pod chain twice (routed and bridged jump rules)', (t) => {
  const tr = interpret(table, sets, fwd({ bridged: true, physdevIn: 'veth1', physdevOut: 'veth2' }));
  t.is(tr.verdict, 'ACCEPT');
  t.is(tr.steps.filter((s) => s.action === 'JUMP KUBE-POD-FW-WEB').length, 2);
  t.is(tr.mark, 0x20000);
});

test('denied peer: NFLOG group 100 recorded, then REJECT', (t) => {
  const tr = interpret(table, sets, fwd({ src: '10.244.2.9' }));
  t.is(tr.verdict, 'REJECT');
  t.is(tr.rejectWith, 'icmp-port-unreachable');
  t.deepEqual(tr.logged, [{ group: 100, prefix: 'web drop' }]);
  t.deepEqual(path(tr.steps).slice(-3), ['KUBE-POD-FW-WEB#4 JUMP KUBE-NWPLCY-ALLOW', 'KUBE-POD-FW-WEB#5 NFLOG 100', 'KUBE-POD-FW-WEB#6 REJECT']);
  t.is(tr.mark, 0);
});

test('wrong port: the set matches but the tcp match does not', (t) => {
  t.is(interpret(table, sets, fwd({ dport: 81 })).verdict, 'REJECT');
});

test('hash:net with nomatch: longest prefix wins', (t) => {
  const udp = (src: string) => interpret(table, sets, fwd({ src, protocol: 'udp', dport: 53 }));
  t.is(udp('10.1.2.3').verdict, 'ACCEPT', 'in 10.0.0.0/8');
  t.is(udp('10.244.5.5').verdict, 'REJECT', 'carved out by 10.244.0.0/16 nomatch');
  t.is(udp('10.244.2.200').verdict, 'ACCEPT', 'back in by the more specific 10.244.2.0/24');
  t.is(udp('11.0.0.1').verdict, 'REJECT', 'outside');
  t.is(interpret(table, sets, fwd({ src: '10.1.2.3', protocol: 'udp', dport: 54 })).verdict, 'ACCEPT', 'port range upper bound');
  t.is(interpret(table, sets, fwd({ src: '10.1.2.3', protocol: 'udp', dport: 55 })).verdict, 'REJECT');
});

test('conntrack: ESTABLISHED accepted at once, INVALID dropped', (t) => {
  const est = interpret(table, sets, fwd({ src: '10.244.2.9', ctstate: 'ESTABLISHED' }));
  t.is(est.verdict, 'ACCEPT');
  t.deepEqual(path(est.steps), ['FORWARD#1 JUMP KUBE-ROUTER-FORWARD', 'KUBE-ROUTER-FORWARD#1 JUMP KUBE-POD-FW-WEB', 'KUBE-POD-FW-WEB#1 ACCEPT']);
  t.is(interpret(table, sets, fwd({ ctstate: 'INVALID' })).verdict, 'DROP');
});

test('addrtype: traffic from the node itself (LOCAL source) is accepted, decided by localAddresses', (t) => {
  const p = fwd({ src: '192.168.0.10', dport: 9999 });
  t.is(interpret(table, sets, p).verdict, 'REJECT');
  t.is(interpret(table, sets, p, { localAddresses: ['192.168.0.10'] }).verdict, 'ACCEPT');
  t.is(interpret(table, sets, { ...p, srcType: 'LOCAL' }).verdict, 'ACCEPT', 'explicit type');
  // INPUT: node ports to a LOCAL destination
  const np: Packet = { src: '1.2.3.4', dst: '192.168.0.10', protocol: 'tcp', sport: 1, dport: 30080, hook: 'INPUT', inIface: 'eth0' };
  t.is(interpret(table, sets, np, { localAddresses: ['192.168.0.10'] }).verdict, 'ACCEPT');
  t.is(interpret(table, sets, np).verdict, 'DROP', 'not LOCAL: falls to the INPUT DROP rule');
});

test('RETURN from a chain called by a built-in chain continues there; policy applies at the end', (t) => {
  const svc: Packet = { src: '1.2.3.4', dst: '10.96.0.10', protocol: 'tcp', sport: 1, dport: 22, hook: 'INPUT', inIface: 'eth0' };
  const tr = interpret(table, sets, svc);
  t.deepEqual(path(tr.steps), ['INPUT#1 JUMP KUBE-ROUTER-INPUT', 'KUBE-ROUTER-INPUT#1 RETURN', 'INPUT#2 ACCEPT']);
  // FORWARD for an address no rule knows: falls off the chain into policy DROP
  const other = interpret(table, sets, fwd({ dst: '10.244.7.7', inIface: 'eth0' }));
  t.is(other.verdict, 'DROP');
  t.deepEqual(other.steps.at(-1), { chain: 'FORWARD', index: 0, line: ':FORWARD DROP', action: 'POLICY DROP', matched: true });
  // interface wildcard
  t.is(interpret(table, sets, fwd({ dst: '10.244.7.7', inIface: 'cni0' })).verdict, 'ACCEPT');
  // OUTPUT, nothing matches: policy ACCEPT
  const out = interpret(table, sets, { src: '10.0.0.1', dst: '8.8.8.8', protocol: 'udp', sport: 1, dport: 53, hook: 'OUTPUT' });
  t.is(out.verdict, 'ACCEPT');
  t.is(out.steps.at(-1)!.action, 'POLICY ACCEPT');
});

test('goto: RETURN in the goto target returns past the chain that did the goto', (t) => {
  // OUTPUT -j KUBE-ROUTER-OUTPUT -g KUBE-POD-FW-WEB; the allowed path ends in a fall-off of
  // KUBE-POD-FW-WEB, which returns to OUTPUT (not KUBE-ROUTER-OUTPUT), then OUTPUT's policy.
  const tr = interpret(table, sets, { src: '10.244.2.7', dst: '10.244.1.5', protocol: 'tcp', sport: 1, dport: 80, hook: 'OUTPUT' });
  t.is(tr.verdict, 'ACCEPT');
  t.deepEqual(path(tr.steps).slice(0, 3), ['OUTPUT#1 JUMP KUBE-ROUTER-OUTPUT', 'KUBE-ROUTER-OUTPUT#2 GOTO KUBE-POD-FW-WEB', 'KUBE-POD-FW-WEB#4 JUMP KUBE-NWPLCY-ALLOW']);
  t.is(tr.steps.at(-1)!.action, 'POLICY ACCEPT');
  t.is(tr.mark, 0x20000);
});

test('negated physdev: a packet without bridge information passes "! --physdev-is-bridged"', (t) => {
  const p: Packet = { src: '10.0.0.1', dst: '10.244.9.9', protocol: 'tcp', sport: 1, dport: 1, hook: 'OUTPUT' };
  const tr = interpret(table, sets, p);
  t.is(tr.verdict, 'REJECT');
  t.is(tr.rejectWith, 'icmp-host-prohibited');
  t.is(interpret(table, sets, { ...p, bridged: true }).verdict, 'ACCEPT');
});

test('sctp negated port range, --or-mark, and includeNonMatching', (t) => {
  const p = fwd({ src: '10.244.3.3', protocol: 'sctp', dport: 200 });
  const tr = interpret(table, sets, p, { includeNonMatching: true });
  t.is(tr.verdict, 'ACCEPT');
  t.true(tr.steps.some((s) => s.chain === 'KUBE-NWPLCY-DEFAULT' && s.action === 'MARK 0x10000'));
  const misses = tr.steps.filter((s) => !s.matched);
  t.true(misses.length > 0);
  t.true(misses.every((s) => s.action === 'NO MATCH'));
  t.is(interpret(table, sets, { ...p, dport: 50 }).verdict, 'REJECT');
  t.false(interpret(table, sets, p).steps.some((s) => !s.matched), 'non-matching steps only when asked');
});

test('the incoming mark is honoured and MARK arithmetic is xmark', (t) => {
  const tr = interpret(table, sets, fwd({ mark: 0xff010001 }));
  t.is(tr.verdict, 'ACCEPT');
  t.is(tr.mark, 0xff020001, '(mark & ~0x10000) ^ 0, then (.. & ~0x20000) ^ 0x20000, high bits kept');
});

const one = (rules: string, extraChains = ''): IptTable =>
  parseIptablesSave(`*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${extraChains}${rules}COMMIT\n`).tables[0]!;
const inPkt: Packet = { src: '10.0.0.1', dst: '10.0.0.2', protocol: 'tcp', sport: 1000, dport: 80, hook: 'INPUT', inIface: 'eth0' };

test('unknown matches, options and targets throw UnsupportedRuleError naming chain, rule and token', (t) => {
  const cases: [string, string][] = [
    ['-A INPUT -j ACCEPT\n-A INPUT -m recent --name x -j DROP\n', 'recent'],
    ['-A INPUT -p tcp -m tcp --syn -j DROP\n', '--syn'],
    ['-A INPUT -j DNAT --to-destination 1.2.3.4\n', 'DNAT'],
    ['-A INPUT -j MARK --set-xmark 0x1/0x1 --bogus\n', '--bogus'],
    ['-A INPUT -m conntrack --ctstatus SEEN_REPLY -j DROP\n', '--ctstatus'],
    ['-A INPUT -m comment ! --comment x -j DROP\n', '--comment'],
    ['-A INPUT -f -j DROP\n', '-f'],
    ['-A INPUT -m conntrack --ctstate NEWISH -j DROP\n', 'NEWISH'],
    ['-A INPUT -m addrtype --dst-type LOCALISH -j DROP\n', 'LOCALISH'],
    ['-A INPUT -s 10.0.0.300 -j DROP\n', '10.0.0.300'],
    ['-A INPUT -m set --match-set S src,src,dst,dst,src,dst,src -j DROP\n', 'src,src,dst,dst,src,dst,src'],
  ];
  for (const [rules, token] of cases) {
    const tbl = one(rules.replace('-A INPUT -j ACCEPT\n', ''));
    const e = t.throws(() => interpret(tbl, [], inPkt), { instanceOf: UnsupportedRuleError }, rules);
    t.is(e!.chain, 'INPUT', rules);
    t.is(e!.index, 1, rules);
    t.is(e!.token, token, rules);
    t.regex(e!.message, /^chain INPUT rule 1: /);
  }
  // the error names the rule number of the rule reached, not the first rule of the chain
  const e = t.throws(() => interpret(one('-A INPUT -p udp -j DROP\n-A INPUT -m quota --quota 5 -j ACCEPT\n'), [], inPkt), { instanceOf: UnsupportedRuleError });
  t.is(e!.index, 2);
});

test('ipsets: unknown types and missing sets fail loudly; hash:ip,port works', (t) => {
  const tbl = one('-A INPUT -m set --match-set P dst,dst -j DROP\n');
  const ports = parseIpsetSave('create P hash:ip,port family inet\nadd P 10.0.0.2,tcp:80\nadd P 10.0.0.2,udp:53\n');
  t.is(interpret(tbl, ports, inPkt).verdict, 'DROP');
  t.is(interpret(tbl, ports, { ...inPkt, dport: 81 }).verdict, 'ACCEPT');
  t.is(interpret(tbl, ports, { ...inPkt, protocol: 'udp', dport: 53 }).verdict, 'DROP');
  const bitmap = parseIpsetSave('create P bitmap:port range 0-1024\nadd P 80\n');
  const e = t.throws(() => interpret(tbl, bitmap, inPkt), { instanceOf: UnsupportedRuleError });
  t.is(e!.token, 'bitmap:port');
  t.throws(() => interpret(tbl, [], inPkt), { instanceOf: InterpretError, message: /ipset P was not given/ });
  const v6 = parseIpsetSave('create P hash:ip family inet6\nadd P ::1\n');
  t.throws(() => interpret(tbl, new Map([['P', v6[0]!]]), inPkt), { instanceOf: InterpretError, message: /inet6 but the packet is inet/ });
});

test('jump loops are caught by the depth limit, goto loops by the step limit', (t) => {
  const loop = one('-A INPUT -j A\n-A A -j B\n-A B -j A\n', ':A - [0:0]\n:B - [0:0]\n');
  t.throws(() => interpret(loop, [], inPkt), { instanceOf: InterpretError, message: /nesting deeper than 64/ });
  const gloop = one('-A INPUT -j A\n-A A -g B\n-A B -g A\n', ':A - [0:0]\n:B - [0:0]\n');
  t.throws(() => interpret(gloop, [], inPkt, { maxSteps: 1000 }), { instanceOf: InterpretError, message: /more than 1000 rules/ });
});

test('IPv6 through the captured ip6tables fixture; bad packets are refused', (t) => {
  const fx = fileURLToPath(new URL('../../../test/fixtures/iptables/', import.meta.url));
  const tbl6 = parseIptablesSave(readFileSync(`${fx}legacy-filter6.save`, 'utf8')).tables[0]!;
  const sets6 = parseIpsetSave(readFileSync(`${fx}ipset.save`, 'utf8'));
  const p: Packet = { src: 'fd00:10:244:2::7', dst: 'fd00:10:244:1::5', protocol: 'tcp', sport: 40000, dport: 80, hook: 'FORWARD', inIface: 'eth0', outIface: 'eth1' };
  // inet6:KUBE-SRC has fd00::/8 with fd00:10:244:1::/64 nomatch; EMPTY (the dst set) is empty, so the
  // policy chain marks nothing, KUBE-NWPLCY-DEFAULT marks 0x10000|0x4 and the pod chain lets it through.
  const tr = interpret(tbl6, sets6, p);
  t.is(tr.verdict, 'ACCEPT');
  t.true(path(tr.steps).includes('KUBE-NWPLCY-DEFAULT#1 MARK 0x10000'));
  t.is(tr.mark, 0x20004);
  t.deepEqual(tr.logged, []);
  // `-m state ! --state NEW -j RETURN` sends an UNTRACKED packet back, to FORWARD's policy DROP
  const untracked = interpret(tbl6, sets6, { ...p, ctstate: 'UNTRACKED' });
  t.is(untracked.verdict, 'DROP');
  t.true(path(untracked.steps).includes('KUBE-POD-FW-ABCDEFGHIJKLMNOP#4 RETURN'));
  // OUTPUT: LOG (a step, not an entry in logged), then the RETURN of the next rule ends the user chain
  const out = interpret(tbl6, sets6, { src: 'fd00:10:244:1::5', dst: 'fd00::9', protocol: 'sctp', sport: 1, dport: 9, hook: 'OUTPUT' });
  t.deepEqual(path(out.steps), ['OUTPUT#1 JUMP KUBE-ROUTER-OUTPUT', 'KUBE-ROUTER-OUTPUT#1 LOG', 'KUBE-ROUTER-OUTPUT#2 RETURN', 'OUTPUT#0 POLICY ACCEPT']);
  // an IPv4 rule against an IPv6 packet is a caller error, not a silent miss
  t.throws(() => interpret(one('-A INPUT -s 10.0.0.0/8 -j DROP\n'), [], { ...p, hook: 'INPUT' }), { instanceOf: InterpretError, message: /different families/ });
  t.throws(() => interpret(tbl6, sets6, { ...p, src: 'nope' }), { instanceOf: InterpretError, message: /not an IP address/ });
  t.throws(() => interpret(tbl6, sets6, { ...p, src: '10.0.0.1' }), { instanceOf: InterpretError, message: /different families/ });
  t.throws(() => interpret(one('-A INPUT -p tcp -m tcp --dport 80 -j DROP\n'), [], { ...inPkt, dport: undefined }), { instanceOf: InterpretError, message: /no valid dport/ });
});

test('addresses: IPv4, IPv6 (compressed, embedded IPv4), CIDR and dotted masks', async (t) => {
  const { parseIp, parseNet, netContains } = await import('../../src/iptables/addr.js');
  t.deepEqual(parseIp('10.0.0.1'), { family: 4, value: 0x0a000001n });
  t.deepEqual(parseIp('::ffff:1.2.3.4'), { family: 6, value: 0xffff01020304n });
  t.deepEqual(parseIp('fd00::1'), { family: 6, value: (0xfd00n << 112n) | 1n });
  t.deepEqual(parseIp('::'), { family: 6, value: 0n });
  for (const bad of ['10.0.0', '10.0.0.256', '1::2::3', '1:2:3:4:5:6:7:8:9', 'g::1', '', '01.2.3.4.5', '::1%eth0']) t.is(parseIp(bad), null, bad);
  const n = parseNet('10.244.0.0/16')!;
  t.true(netContains(n, parseIp('10.244.255.1')!));
  t.false(netContains(n, parseIp('10.245.0.1')!));
  t.false(netContains(n, parseIp('::a0f4:1')!), 'other family never contained');
  t.true(netContains(parseNet('0.0.0.0/0')!, parseIp('1.2.3.4')!));
  t.true(netContains(parseNet('10.0.0.0/255.0.0.0')!, parseIp('10.9.9.9')!));
  t.true(netContains(parseNet('fd00::/8')!, parseIp('fdff::1')!));
  t.is(parseNet('10.0.0.0/33'), null);
  t.is(parseNet('fd00::/129'), null);
});

test('icmp and icmp6 type matches (kube-router COMMON chain style)', (t) => {
  const table = {
    name: 'filter',
    chains: [
      {
        name: 'INPUT',
        policy: 'DROP',
        rules: [
          { args: ['-p', 'icmp', '-m', 'icmp', '--icmp-type', '8', '-j', 'ACCEPT'] },
          { args: ['-p', 'icmp', '-m', 'icmp', '--icmp-type', 'time-exceeded', '-j', 'ACCEPT'] },
        ],
      },
    ],
  };
  const pkt = (icmpType: number, protocol: 'icmp' | 'tcp' = 'icmp') => ({ src: '10.0.0.1', dst: '10.0.0.2', protocol, hook: 'INPUT' as const, icmpType, ...(protocol === 'tcp' ? { dport: 80 } : {}) });
  t.is(interpret(table, [], pkt(8)).verdict, 'ACCEPT');
  t.is(interpret(table, [], pkt(11)).verdict, 'ACCEPT');
  t.is(interpret(table, [], pkt(0)).verdict, 'DROP');
  t.is(interpret(table, [], pkt(8, 'tcp')).verdict, 'DROP');
  const v6 = { name: 'filter', chains: [{ name: 'INPUT', policy: 'DROP', rules: [{ args: ['-p', 'ipv6-icmp', '-m', 'icmp6', '--icmpv6-type', '128', '-j', 'ACCEPT'] }] }] };
  t.is(interpret(v6, [], { src: 'fd00::1', dst: 'fd00::2', protocol: 'icmp', hook: 'INPUT', icmpType: 128 }).verdict, 'ACCEPT');
});
