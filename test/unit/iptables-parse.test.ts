// Parser tests on real iptables-save / ip6tables-save / ipset save output captured from both backends
// (test/fixtures/iptables/capture.sh), plus malformed input.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IptablesParseError, parseIpsetSave, parseIptablesSave } from '../../src/iptables/parse.js';
import type { IptRuleset, IptTable } from '../../src/iptables/model.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/iptables/', import.meta.url));
const fixture = (name: string): string => readFileSync(FIXTURES + name, 'utf8');

const chain = (t: IptTable, name: string) => {
  const c = t.chains.find((x) => x.name === name);
  if (!c) throw new Error(`no chain ${name}`);
  return c;
};
const filterOf = (r: IptRuleset): IptTable => {
  const t = r.tables.find((x) => x.name === 'filter');
  if (!t) throw new Error('no filter table');
  return t;
};
/** Drops counters so that saves with and without -c compare equal. */
const withoutCounters = (r: IptRuleset): IptRuleset => ({
  tables: r.tables.map((t) => ({ name: t.name, chains: t.chains.map((c) => ({ name: c.name, policy: c.policy, rules: c.rules.map((x) => ({ args: x.args })) })) })),
});

const FILTER_FIXTURES = ['nft-filter.save', 'nft-filter-counters.save', 'legacy-filter.save', 'legacy-filter-counters.save'];

for (const name of FILTER_FIXTURES) {
  test(`${name}: chains, policies and rule order`, (t) => {
    const r = parseIptablesSave(fixture(name));
    t.deepEqual(r.tables.map((x) => x.name), ['filter']);
    const f = filterOf(r);
    t.deepEqual(
      f.chains.map((c) => `${c.name} ${c.policy}`),
      ['INPUT ACCEPT', 'FORWARD DROP', 'OUTPUT ACCEPT', 'KUBE-NWPLCY-DEFAULT -', 'KUBE-NWPLCY-QRSTUVWXYZ234567 -', 'KUBE-POD-FW-ABCDEFGHIJKLMNOP -', 'KUBE-ROUTER-FORWARD -', 'KUBE-ROUTER-INPUT -', 'KUBE-ROUTER-OUTPUT -'],
    );
    t.is(chain(f, 'INPUT').rules.length, 3);
    t.is(chain(f, 'KUBE-POD-FW-ABCDEFGHIJKLMNOP').rules.length, 10);
    t.deepEqual(chain(f, 'INPUT').rules[0]!.args, ['-m', 'comment', '--comment', 'kube-router netpol - 4IA2OSFRMVNDXBVV', '-j', 'KUBE-ROUTER-INPUT']);
    // negations stay tokens; iptables-save moved -s before ! -i
    t.deepEqual(chain(f, 'INPUT').rules[2]!.args, ['-s', '10.0.0.0/8', '!', '-i', 'eth+', '-p', 'udp', '-m', 'udp', '--dport', '53', '-j', 'ACCEPT']);
    t.deepEqual(chain(f, 'KUBE-NWPLCY-QRSTUVWXYZ234567').rules[1]!.args, [
      '-p', 'tcp', '-m', 'set', '!', '--match-set', 'KUBE-SRC-ABCDEFGHIJKLMNOP', 'src,dst', '-m', 'tcp', '!', '--sport', '1024:65535', '-m', 'mark', '--mark', '0x10000/0x10000', '-j', 'RETURN',
    ]);
    // --set-mark / --or-mark are saved as --set-xmark
    t.deepEqual(chain(f, 'KUBE-NWPLCY-DEFAULT').rules.map((x) => x.args.join(' ')), ['-j MARK --set-xmark 0x10000/0xffffffff', '-j MARK --set-xmark 0x4/0x4']);
  });

  test(`${name}: quoted comments and prefixes are unescaped exactly`, (t) => {
    const out = chain(filterOf(parseIptablesSave(fixture(name))), 'KUBE-ROUTER-OUTPUT').rules;
    t.deepEqual(out[0]!.args, ['-s', '10.244.1.5/32', '-m', 'comment', '--comment', `quotes "double" 'single' back\\slash #hash tab\tx`, '-j', 'LOG', '--log-prefix', 'podwall "drop": ']);
    t.deepEqual(out[1]!.args, ['-m', 'comment', '--comment', 'unicode ünïcødé ✓', '-j', 'RETURN']);
    t.deepEqual(out[2]!.args.slice(0, 6), ['-p', 'sctp', '-m', 'comment', '--comment', '']);
    t.deepEqual(out[3]!.args, ['-j', 'NFLOG', '--nflog-prefix', 'a prefix', '--nflog-group', '7']);
    const podfw = chain(filterOf(parseIptablesSave(fixture(name))), 'KUBE-POD-FW-ABCDEFGHIJKLMNOP').rules;
    t.is(podfw[2]!.args[5], "rule to permit the traffic traffic to pods when source is the pod's local node");
  });
}

test('nft and legacy backends print the same ruleset; -c only adds counters', (t) => {
  const base = withoutCounters(parseIptablesSave(fixture('nft-filter.save')));
  t.deepEqual(withoutCounters(parseIptablesSave(fixture('legacy-filter.save'))), base);
  t.deepEqual(withoutCounters(parseIptablesSave(fixture('nft-filter-counters.save'))), base);
  t.deepEqual(withoutCounters(parseIptablesSave(fixture('legacy-filter-counters.save'))), base);
});

test('counters: chain [p:b] and rule [p:b] prefixes become bigints', (t) => {
  for (const name of ['nft-filter-counters.save', 'legacy-filter-counters.save', 'nft-filter6-counters.save']) {
    const f = filterOf(parseIptablesSave(fixture(name)));
    const input = chain(f, 'INPUT');
    t.deepEqual(input.counters, { packets: 0n, bytes: 0n });
    const c = input.rules[1]!.counters;
    t.truthy(c, name);
    t.true(c!.packets > 0n, name);
    t.true(c!.bytes > c!.packets, name);
    t.deepEqual(input.rules[1]!.args, ['-i', 'lo', '-j', 'ACCEPT']);
  }
  // without -c there are no rule counters, but chain lines always carry [0:0]
  const plain = filterOf(parseIptablesSave(fixture('nft-filter.save')));
  t.is(chain(plain, 'INPUT').rules[0]!.counters, undefined);
  t.deepEqual(chain(plain, 'KUBE-ROUTER-INPUT').counters, { packets: 0n, bytes: 0n });
  t.deepEqual(parseIptablesSave('*filter\n:INPUT ACCEPT\n[18446744073709551615:1] -A INPUT\nCOMMIT\n').tables[0]!.chains[0]!.rules[0]!.counters, {
    packets: 18446744073709551615n,
    bytes: 1n,
  });
});

test('IPv6: ip6tables-save from both backends', (t) => {
  for (const name of ['nft-filter6-counters.save', 'legacy-filter6.save']) {
    const f = filterOf(parseIptablesSave(fixture(name)));
    t.deepEqual(chain(f, 'INPUT').rules[2]!.args.slice(0, 5), ['-s', 'fd00::/8', '!', '-i', 'eth+'], name);
    t.is(chain(f, 'KUBE-ROUTER-FORWARD').rules[0]!.args[1], 'fd00:10:244:1::5/128');
    t.deepEqual(chain(f, 'KUBE-NWPLCY-QRSTUVWXYZ234567').rules[0]!.args.slice(8, 11), ['--match-set', 'inet6:KUBE-SRC-ABCDEFGHIJK', 'src']);
    t.deepEqual(chain(f, 'KUBE-ROUTER-OUTPUT').rules[2]!.args.slice(-4), ['-j', 'REJECT', '--reject-with', 'icmp6-adm-prohibited']);
  }
});

test('several tables, and a comment with a raw newline spanning two lines', (t) => {
  const r = parseIptablesSave(fixture('nft-nat-raw-filter.save'));
  t.deepEqual(r.tables.map((x) => x.name), ['raw', 'filter', 'nat']);
  t.deepEqual(r.tables[0]!.chains.map((c) => c.name), ['PREROUTING', 'OUTPUT', 'PODWALL-RAW']);
  t.deepEqual(r.tables[0]!.chains[2]!.rules[0]!.args, ['-j', 'CT', '--notrack']);
  const pre = r.tables[2]!.chains.find((c) => c.name === 'PREROUTING')!;
  t.deepEqual(pre.rules[0]!.args, ['-p', 'tcp', '-m', 'tcp', '--dport', '8080', '-m', 'comment', '--comment', 'line one\nline two', '-j', 'DNAT', '--to-destination', '10.0.0.1:80']);
});

test('tokenizer: iptables-restore quoting rules', (t) => {
  const args = (line: string): string[] => parseIptablesSave(`*filter\n:X - [0:0]\n-A X ${line}\nCOMMIT\n`).tables[0]!.chains[0]!.rules[0]!.args;
  t.deepEqual(args('-m comment --comment "a \\"b\\" \\\\c"'), ['-m', 'comment', '--comment', 'a "b" \\c']);
  t.deepEqual(args('--comment a\\b'), ['--comment', 'a\\b'], 'a backslash outside quotes is literal');
  t.deepEqual(args('--comment ""  -j   ACCEPT\t'), ['--comment', '', '-j', 'ACCEPT']);
  t.deepEqual(args('--comment "it\\\'s"'), ['--comment', "it's"]);
  t.deepEqual(args('--comment "#not a comment"'), ['--comment', '#not a comment']);
  t.deepEqual(args('--comment x#y'), ['--comment', 'x#y']);
  t.deepEqual(args('! -s 1.2.3.4'), ['!', '-s', '1.2.3.4']);
  t.deepEqual(parseIptablesSave('*filter\r\n:X - [0:0]\r\n-A X -j ACCEPT\r\nCOMMIT\r\n').tables[0]!.chains[0]!.rules[0]!.args, ['-j', 'ACCEPT'], 'CRLF');
  t.deepEqual(parseIptablesSave(''), { tables: [] });
  t.deepEqual(parseIptablesSave('# only a comment\n\n'), { tables: [] });
});

const BAD: [string, string, number, RegExp][] = [
  ['rule outside a table', '-A INPUT -j ACCEPT\n', 1, /outside a table/],
  ['no COMMIT', '*filter\n:INPUT ACCEPT [0:0]\n', 2, /no COMMIT/],
  ['table inside a table', '*filter\n*nat\nCOMMIT\n', 2, /before COMMIT/],
  ['undeclared chain', '*filter\n:INPUT ACCEPT [0:0]\n-A NOPE -j ACCEPT\nCOMMIT\n', 3, /undeclared chain NOPE/],
  ['duplicate chain', '*filter\n:X - [0:0]\n:X - [0:0]\nCOMMIT\n', 3, /declared twice/],
  ['bad counters', '*filter\n:X - [0:0]\n[1:x] -A X\nCOMMIT\n', 3, /counters/],
  ['bad chain counters', '*filter\n:X - [a:0]\nCOMMIT\n', 2, /counters/],
  ['unterminated quote', '*filter\n:X - [0:0]\n-A X --comment "abc\nCOMMIT\n', 3, /unterminated quote/],
  ['text after quote', '*filter\n:X - [0:0]\n-A X --comment "a"b\nCOMMIT\n', 3, /after a closing quote/],
  ['quote inside word', '*filter\n:X - [0:0]\n-A X --comment a"b c"\nCOMMIT\n', 3, /quote inside/],
  ['unknown command', '*filter\n:X - [0:0]\n-I X 1 -j ACCEPT\nCOMMIT\n', 3, /expected -A/],
  ['duplicate table', '*filter\nCOMMIT\n*filter\nCOMMIT\n', 3, /twice/],
  ['bad policy', '*filter\n:X accept\nCOMMIT\n', 2, /policy/],
  ['COMMIT alone', 'COMMIT\n', 1, /COMMIT outside/],
];
for (const [title, text, line, re] of BAD) {
  test(`parse error: ${title}`, (t) => {
    const e = t.throws(() => parseIptablesSave(text), { instanceOf: IptablesParseError });
    t.is(e!.lineNumber, line);
    t.regex(e!.message, re);
    t.regex(e!.message, new RegExp(`^line ${line}: `));
    // the offending line itself (an unterminated quote swallows the rest of the text)
    const expected = title === 'unterminated quote' ? '-A X --comment "abc\nCOMMIT' : title === 'no COMMIT' ? ':INPUT ACCEPT [0:0]' : text.split('\n')[line - 1]!;
    t.is(e!.line, expected);
  });
}

test('ipset save: both families, nomatch, timeouts, counters, comments, other types', (t) => {
  const sets = parseIpsetSave(fixture('ipset.save'));
  t.deepEqual(sets.map((s) => `${s.name} ${s.type} ${s.family}`), [
    'KUBE-SRC-ABCDEFGHIJKLMNOP hash:ip inet',
    'KUBE-DST-ABCDEFGHIJKLMNOP hash:net inet',
    'inet6:KUBE-SRC-ABCDEFGHIJK hash:net inet6',
    'kube-router-node-ips hash:ip inet6',
    'PORTS hash:ip,port inet',
    'EMPTY hash:net inet6',
    'LIST list:set inet',
  ]);
  const [src, dst, src6, nodes, ports, empty, list] = sets;
  t.deepEqual(src!.options.slice(0, 6), ['hashsize', '1024', 'maxelem', '65536', 'timeout', '0']);
  t.deepEqual(src!.options.slice(6, 8), ['bucketsize', '12']);
  t.deepEqual(src!.members.map((m) => m.entry).sort(), ['10.244.1.7', '10.244.2.9']);
  t.deepEqual(src!.members[0]!.extra, ['timeout', '0']);
  t.deepEqual(
    dst!.members.map((m) => `${m.entry}${m.nomatch ? ' nomatch' : ''}`).sort(),
    ['0.0.0.0/1', '10.0.0.0/8', '10.244.0.0/16 nomatch', '10.244.1.0/24'],
  );
  t.true(src6!.options.includes('comment'));
  t.deepEqual(src6!.members.find((m) => m.entry === 'fd00::/8'), { entry: 'fd00::/8', extra: ['comment', 'pod subnets, all nodes'] });
  t.deepEqual(src6!.members.find((m) => m.entry === 'fd00:10:244:1::/64'), { entry: 'fd00:10:244:1::/64', nomatch: true });
  t.deepEqual(nodes!.members, [{ entry: 'fd00::1', extra: ['packets', '3', 'bytes', '180'] }]);
  t.deepEqual(ports!.members.map((m) => m.entry).sort(), ['10.0.0.1,tcp:80', '10.0.0.1,udp:53']);
  t.deepEqual(empty!.members, []);
  t.deepEqual(list!.options, ['size', '8']);
  t.deepEqual(list!.members, [{ entry: 'PORTS' }]);
});

test('ipset save: a comment whose text is "nomatch" is a comment, not the flag', (t) => {
  const [s] = parseIpsetSave('create A hash:net family inet comment\nadd A 10.0.0.0/8 comment "nomatch"\nadd A 10.1.0.0/16 timeout 0 nomatch\n');
  t.deepEqual(s!.members, [{ entry: '10.0.0.0/8', extra: ['comment', 'nomatch'] }, { entry: '10.1.0.0/16', nomatch: true, extra: ['timeout', '0'] }]);
});

const BAD_IPSET: [string, string, number, RegExp][] = [
  ['add before create', 'add A 1.2.3.4\n', 1, /not created/],
  ['bad family', 'create A hash:ip family inet5\n', 1, /family/],
  ['unknown command', 'create A hash:ip\nflush A\n', 2, /unexpected command/],
  ['duplicate', 'create A hash:ip\ncreate A hash:ip\n', 2, /twice/],
  ['missing entry', 'create A hash:ip\nadd A\n', 2, /without an entry/],
  ['long name', `create ${'x'.repeat(32)} hash:ip\n`, 1, /set name/],
  ['bad type', 'create A hash\n', 1, /set type/],
  ['quote across lines', 'create A hash:ip comment\nadd A 1.1.1.1 comment "a\nb"\n', 2, /spans lines/],
];
for (const [title, text, line, re] of BAD_IPSET) {
  test(`ipset parse error: ${title}`, (t) => {
    const e = t.throws(() => parseIpsetSave(text), { instanceOf: IptablesParseError });
    t.is(e!.lineNumber, line);
    t.regex(e!.message, re);
  });
}
