// Kernel cross-check (root): payloads from writeRestore / writeIpsetRestore are loaded with the real
// iptables-restore --noflush and ipset restore into a network namespace created for this test, read
// back with iptables-save / ipset save, parsed, and compared with what was written. This proves that
// the writers, the parsers and the real tools agree. The namespace is deleted in test.after.always.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseIpsetSave, parseIptablesSave } from '../../src/iptables/parse.js';
import { sanitizeComment, writeIpsetRestore, writeRestore } from '../../src/iptables/write.js';
import type { IptChain, IptRule } from '../../src/iptables/model.js';

const NS = `podwall-ipt-${randomBytes(4).toString('hex')}`;
let created = false;

function inNs(cmd: string[], input?: string): string {
  try {
    return execFileSync('ip', ['netns', 'exec', NS, ...cmd], { input: input ?? '', encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd.join(' ')} failed: ${err.stderr || err.message}\n--- input ---\n${input ?? ''}`);
  }
}

test.before(() => {
  if (process.getuid?.() !== 0) throw new Error('the kernel cross-check needs root (it creates a network namespace)');
  execFileSync('ip', ['netns', 'add', NS]);
  created = true;
});

test.after.always(() => {
  if (created) execFileSync('ip', ['netns', 'del', NS]);
});

const HOSTILE_RAW = ['a "b" \\c', "it's #1 ü ✓", '', '!', '-j DROP', '--comment', 'x'.repeat(255), 'tab\there', '[0:0] -A INPUT -j ACCEPT'];
const HOSTILE_FOR_SANITIZE = ['x" -j ACCEPT\n-A INPUT -j ACCEPT', 'name\r\nCOMMIT\n*filter', '\\"\\', 'ünï\u0000cødé', 'y'.repeat(400)];

const r = (...args: string[]): IptRule => ({ args });

/** Rules written in the canonical form iptables-save prints, so that read-back equals written. */
function chains4(): IptChain[] {
  const comments = [...HOSTILE_RAW, ...HOSTILE_FOR_SANITIZE.map(sanitizeComment)];
  return [
    {
      name: 'KUBE-ROUTER-FORWARD',
      policy: '-',
      rules: [
        ...comments.map((c) => r('-d', '10.244.1.5/32', '-m', 'comment', '--comment', c, '-j', 'KUBE-POD-FW-TEST')),
        r('-m', 'mark', '--mark', '0x20000/0x20000', '-j', 'ACCEPT'),
      ],
    },
    {
      name: 'KUBE-POD-FW-TEST',
      policy: '-',
      rules: [
        r('-m', 'physdev', '--physdev-is-bridged', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'),
        r('-s', '10.0.0.0/8', '!', '-i', 'eth+', '-p', 'udp', '-m', 'udp', '--dport', '53', '-j', 'ACCEPT'),
        r('-m', 'addrtype', '--src-type', 'LOCAL', '-j', 'RETURN'),
        r('-p', 'tcp', '-m', 'set', '--match-set', 'KUBE-SRC-TEST', 'src', '-m', 'set', '!', '--match-set', 'KUBE-DST-TEST', 'dst', '-m', 'tcp', '--dport', '80', '-j', 'MARK', '--set-xmark', '0x10000/0x10000'),
        r('-p', 'tcp', '-m', 'multiport', '--dports', '1,2:3', '-j', 'KUBE-OLD'),
        r('-m', 'mark', '!', '--mark', '0x10000/0x10000', '-m', 'limit', '--limit', '10/min', '--limit-burst', '10', '-j', 'NFLOG', '--nflog-prefix', 'drop "web"', '--nflog-group', '100'),
        r('-m', 'mark', '!', '--mark', '0x10000/0x10000', '-j', 'REJECT', '--reject-with', 'icmp-port-unreachable'),
        r('-j', 'MARK', '--set-xmark', '0x20000/0x20000'),
      ],
    },
    { name: 'KUBE-OLD', policy: '-', rules: [r('-j', 'RETURN')] },
    { name: 'KUBE-EMPTY', policy: '-', rules: [] },
  ];
}

function readFilter(save: string): Map<string, IptChain> {
  const filter = parseIptablesSave(save).tables.find((t) => t.name === 'filter');
  if (!filter) throw new Error('no filter table in iptables-save output');
  return new Map(filter.chains.map((c) => [c.name, c]));
}

const JUMP_FORWARD = r('-m', 'comment', '--comment', 'podwall: jump to KUBE-ROUTER-FORWARD', '-j', 'KUBE-ROUTER-FORWARD');

test('writeRestore / writeIpsetRestore payloads load with the real tools and read back equal', (t) => {
  // ipsets first: the rules reference them.
  const ipsetOps: Parameters<typeof writeIpsetRestore>[0] = [
    { op: 'create', name: 'KUBE-SRC-TEST', type: 'hash:ip', family: 'inet', options: ['hashsize', '1024', 'maxelem', '65536'] },
    { op: 'add', name: 'KUBE-SRC-TEST', entry: '10.244.2.7' },
    { op: 'add', name: 'KUBE-SRC-TEST', entry: '10.244.2.8' },
    { op: 'create', name: 'KUBE-DST-TEST', type: 'hash:net', family: 'inet', options: ['hashsize', '1024', 'maxelem', '65536', 'comment'] },
    { op: 'add', name: 'KUBE-DST-TEST', entry: '10.0.0.0/8', extra: ['comment', sanitizeComment('ipBlock "cidr" of shop/allow\n')] },
    { op: 'add', name: 'KUBE-DST-TEST', entry: '10.244.0.0/16', nomatch: true },
    { op: 'add', name: 'KUBE-DST-TEST', entry: '10.244.1.0/24', exist: true },
    { op: 'create', name: 'inet6:KUBE-DST-TEST', type: 'hash:net', family: 'inet6' },
    { op: 'add', name: 'inet6:KUBE-DST-TEST', entry: 'fd00::/8' },
    { op: 'add', name: 'inet6:KUBE-DST-TEST', entry: 'fd00:10:244:1::/64', nomatch: true },
    // the swap-in pattern a renderer uses to replace a set's members at once
    { op: 'create', name: 'TMP-SWAP', type: 'hash:ip', family: 'inet' },
    { op: 'add', name: 'TMP-SWAP', entry: '10.9.9.9' },
    { op: 'create', name: 'KUBE-SWAPPED', type: 'hash:ip', family: 'inet' },
    { op: 'add', name: 'KUBE-SWAPPED', entry: '10.1.1.1' },
    { op: 'swap', name: 'TMP-SWAP', other: 'KUBE-SWAPPED' },
    { op: 'destroy', name: 'TMP-SWAP' },
    { op: 'create', name: 'KUBE-GONE', type: 'hash:ip', family: 'inet' },
    { op: 'del', name: 'KUBE-SRC-TEST', entry: '10.244.9.9', exist: true },
  ];
  inNs(['ipset', 'restore'], writeIpsetRestore(ipsetOps));
  inNs(['ipset', 'restore'], writeIpsetRestore([{ op: 'destroy', name: 'KUBE-GONE' }, { op: 'create', name: 'KUBE-SRC-TEST', type: 'hash:ip', family: 'inet', options: ['hashsize', '1024', 'maxelem', '65536'] }]));
  const sets = new Map(parseIpsetSave(inNs(['ipset', 'save'])).map((s) => [s.name, s]));
  t.deepEqual([...sets.keys()].sort(), ['KUBE-DST-TEST', 'KUBE-SRC-TEST', 'KUBE-SWAPPED', 'inet6:KUBE-DST-TEST']);
  const members = (name: string) => sets.get(name)!.members.map((m) => ({ ...m })).sort((a, b) => (a.entry < b.entry ? -1 : a.entry > b.entry ? 1 : 0));
  t.deepEqual(members('KUBE-SRC-TEST'), [{ entry: '10.244.2.7' }, { entry: '10.244.2.8' }], 'create -exist kept the members');
  t.deepEqual(members('KUBE-DST-TEST'), [
    { entry: '10.0.0.0/8', extra: ['comment', 'ipBlock cidr of shop/allow'] },
    { entry: '10.244.0.0/16', nomatch: true },
    { entry: '10.244.1.0/24' },
  ]);
  t.deepEqual(members('inet6:KUBE-DST-TEST'), [{ entry: 'fd00:10:244:1::/64', nomatch: true }, { entry: 'fd00::/8' }]);
  t.is(sets.get('inet6:KUBE-DST-TEST')!.family, 'inet6');
  t.deepEqual(members('KUBE-SWAPPED'), [{ entry: '10.9.9.9' }]);
  t.deepEqual(sets.get('KUBE-DST-TEST')!.options.slice(0, 5), ['hashsize', '1024', 'maxelem', '65536', 'comment']);

  for (const bin of ['iptables', 'iptables-legacy']) {
    // 1. create the chains and insert the jump at position 1 of FORWARD
    const written = chains4();
    inNs([`${bin}-restore`, '--noflush'], writeRestore([{ name: 'filter', chains: written, insertRules: [{ chain: 'FORWARD', position: 1, rule: JUMP_FORWARD }] }]));
    let live = readFilter(inNs([`${bin}-save`, '-t', 'filter']));
    for (const c of written) t.deepEqual(live.get(c.name)?.rules, c.rules, `${bin}: chain ${c.name} reads back as written`);
    t.deepEqual(live.get('FORWARD')!.rules, [JUMP_FORWARD], `${bin}: jump inserted`);

    // 2. rewrite one chain (create-or-flush), delete another, leave the rest untouched
    const rewritten: IptChain = { name: 'KUBE-POD-FW-TEST', policy: '-', rules: [r('-m', 'comment', '--comment', 'rewritten', '-j', 'DROP')] };
    inNs([`${bin}-restore`, '--noflush'], writeRestore([{ name: 'filter', chains: [rewritten], deleteChains: ['KUBE-OLD'], flushChains: ['KUBE-EMPTY'] }]));
    live = readFilter(inNs([`${bin}-save`, '-t', 'filter']));
    t.deepEqual(live.get('KUBE-POD-FW-TEST')!.rules, rewritten.rules, `${bin}: chain replaced, not appended to`);
    t.false(live.has('KUBE-OLD'), `${bin}: chain deleted`);
    t.deepEqual(live.get('KUBE-ROUTER-FORWARD')!.rules, written[0]!.rules, `${bin}: untouched chain kept`);
    t.deepEqual(live.get('FORWARD')!.rules, [JUMP_FORWARD], `${bin}: built-in chain not flushed`);

    // 3. remove everything again: jump by specification, then the chains
    inNs([`${bin}-restore`, '--noflush'], writeRestore([{ name: 'filter', chains: [], deleteRules: [{ chain: 'FORWARD', rule: JUMP_FORWARD }], deleteChains: ['KUBE-ROUTER-FORWARD', 'KUBE-POD-FW-TEST', 'KUBE-EMPTY'] }]));
    live = readFilter(inNs([`${bin}-save`, '-t', 'filter']));
    t.deepEqual([...live.keys()], ['INPUT', 'FORWARD', 'OUTPUT'], `${bin}: only built-in chains left`);
    t.deepEqual(live.get('FORWARD')!.rules, []);
  }

  // IPv6 through ip6tables (nf_tables backend)
  const v6: IptChain[] = [
    {
      name: 'KUBE-POD-FW-TEST6',
      policy: '-',
      rules: [
        r('-d', 'fd00:10:244:1::5/128', '-m', 'comment', '--comment', HOSTILE_RAW[0]!, '-m', 'set', '--match-set', 'inet6:KUBE-DST-TEST', 'src', '-j', 'ACCEPT'),
        r('!', '-s', 'fd00::/8', '-p', 'tcp', '-m', 'tcp', '--sport', '1024:65535', '-j', 'REJECT', '--reject-with', 'icmp6-port-unreachable'),
      ],
    },
  ];
  inNs(['ip6tables-restore', '--noflush'], writeRestore([{ name: 'filter', chains: v6 }]));
  const live6 = readFilter(inNs(['ip6tables-save', '-t', 'filter']));
  t.deepEqual(live6.get('KUBE-POD-FW-TEST6')!.rules, v6[0]!.rules);

  // and with -c: counters parse as bigints, rules unchanged
  const withCounters = readFilter(inNs(['ip6tables-save', '-c', '-t', 'filter']));
  t.deepEqual(withCounters.get('KUBE-POD-FW-TEST6')!.rules.map((x) => x.args), v6[0]!.rules.map((x) => x.args));
  t.deepEqual(withCounters.get('KUBE-POD-FW-TEST6')!.rules[0]!.counters, { packets: 0n, bytes: 0n });
});
