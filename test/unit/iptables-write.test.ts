// Writer tests: quoting, comment sanitising against hostile strings, restore payload layout (golden),
// ipset payloads, and agreement with the parser.
import test from 'ava';
import { parseIpsetSave, parseIptablesSave } from '../../src/iptables/parse.js';
import {
  formatRule,
  quoteArg,
  RestoreWriteError,
  sanitizeComment,
  writeIpsetRestore,
  writeIpsetSave,
  writeRestore,
  writeSave,
} from '../../src/iptables/write.js';
import type { IptRule } from '../../src/iptables/model.js';

/** Parses one `-A CHAIN ...` line back into its args (the parser reads what iptables-restore reads). */
function reparse(line: string): { chain: string; args: string[]; lines: number } {
  const r = parseIptablesSave(`*filter\n:X - [0:0]\n:KUBE-POD-FW-A - [0:0]\n${line}\nCOMMIT\n`);
  const chains = r.tables[0]!.chains.filter((c) => c.rules.length > 0);
  const total = r.tables[0]!.chains.reduce((n, c) => n + c.rules.length, 0);
  return { chain: chains[0]!.name, args: chains[0]!.rules[0]!.args, lines: total };
}

test('quoteArg: bare words stay bare, everything else is quoted as iptables-save does', (t) => {
  t.is(quoteArg('ACCEPT'), 'ACCEPT');
  t.is(quoteArg('10.0.0.0/8'), '10.0.0.0/8');
  t.is(quoteArg('0x10000/0x10000'), '0x10000/0x10000');
  t.is(quoteArg('1,2:3'), '1,2:3');
  t.is(quoteArg('!'), '!');
  t.is(quoteArg(''), '""');
  t.is(quoteArg('a b'), '"a b"');
  t.is(quoteArg('a "b" \\c'), '"a \\"b\\" \\\\c"');
  t.is(quoteArg("it's"), '"it\\\'s"');
  t.is(quoteArg('#x'), '"#x"');
  t.is(quoteArg('ü'), '"ü"');
});

test('quoteArg rejects what iptables-restore cannot carry', (t) => {
  for (const bad of ['a\nb', 'a\rb', 'a\0b', 'x'.repeat(1024), 'ü'.repeat(512)]) {
    t.throws(() => quoteArg(bad), { instanceOf: RestoreWriteError }, JSON.stringify(bad.slice(0, 10)));
  }
  t.is(quoteArg('x'.repeat(1023)), 'x'.repeat(1023));
});

const HOSTILE = [
  'x" -j ACCEPT',
  'x\\" -j ACCEPT -A X -j DROP "',
  'x\n-A INPUT -j ACCEPT',
  'x\r\n-A INPUT -j ACCEPT\r\nCOMMIT',
  'x\nCOMMIT\n*filter\n-F INPUT',
  '\\',
  '\\\\"',
  '"',
  "'",
  '#',
  '# -j DROP',
  '!',
  '-j DROP',
  '--comment',
  '[0:0] -A X',
  '\t\t',
  '\u0000nul',
  '\u2028line separator\u2029',
  'ünïcødé ✓ 😀',
  '\u001b[31mred',
  '$(reboot) `id` ${x}',
  'a'.repeat(300),
  ' ',
  '',
];

test('hostile strings: formatRule either round-trips to one rule with the same args, or throws', (t) => {
  for (const s of HOSTILE) {
    const rule: IptRule = { args: ['-m', 'comment', '--comment', s, '-j', 'ACCEPT'] };
    let line: string;
    try {
      line = formatRule('X', rule);
    } catch (e) {
      t.true(e instanceof RestoreWriteError, JSON.stringify(s));
      t.regex(s, /[\n\r\0]/, `only line breaks and NUL are refused, not ${JSON.stringify(s)}`);
      continue;
    }
    t.false(line.includes('\n'), JSON.stringify(s));
    const back = reparse(line);
    t.is(back.lines, 1, JSON.stringify(s));
    t.is(back.chain, 'X');
    t.deepEqual(back.args, rule.args, JSON.stringify(s));
  }
});

test('sanitizeComment: printable ASCII minus quote and backslash, whitespace collapsed, 255 max', (t) => {
  t.is(sanitizeComment('rule for pod web-1 namespace: shop'), 'rule for pod web-1 namespace: shop');
  t.is(sanitizeComment('  a\t\tb\n\nc\r\nd  '), 'a b c d');
  t.is(sanitizeComment('x" -j ACCEPT'), 'x -j ACCEPT');
  t.is(sanitizeComment('back\\slash'), 'backslash');
  t.is(sanitizeComment('ünïcødé'), 'ncd');
  t.is(sanitizeComment('a\u0000b\u001bc'), 'abc');
  t.is(sanitizeComment('a \u2028 b'), 'a b');
  t.is(sanitizeComment('a'.repeat(300)), 'a'.repeat(255));
  t.is(sanitizeComment(`${'a'.repeat(254)} b`), 'a'.repeat(254), 'no trailing space after the cap');
  t.is(sanitizeComment(''), '');
  t.is(sanitizeComment(' \n '), '');
});

test('hostile strings through sanitizeComment: always one rule, always unchanged by a round trip', (t) => {
  for (const s of HOSTILE) {
    const c = sanitizeComment(s);
    t.regex(c, /^[\x20-\x7e]*$/);
    t.false(/["\\]/.test(c));
    t.true(c.length <= 255);
    t.is(sanitizeComment(c), c, 'idempotent');
    const rule: IptRule = { args: ['-m', 'comment', '--comment', c, '-j', 'KUBE-POD-FW-A'] };
    const back = reparse(formatRule('X', rule));
    t.is(back.lines, 1);
    t.deepEqual(back.args, rule.args);
  }
});

test('formatRule rejects bad chain names', (t) => {
  for (const name of ['', '-X', '!X', 'a b', 'a"b', 'x'.repeat(29), '#x', 'ü']) {
    t.throws(() => formatRule(name, { args: ['-j', 'ACCEPT'] }), { instanceOf: RestoreWriteError }, name);
  }
  t.is(formatRule('x'.repeat(28), { args: [] }), `-A ${'x'.repeat(28)}`);
});

test('writeRestore: golden --noflush payload', (t) => {
  const payload = writeRestore([
    {
      name: 'filter',
      chains: [
        { name: 'KUBE-ROUTER-FORWARD', policy: '-', rules: [{ args: ['-m', 'comment', '--comment', 'jump to pod "web"', '-d', '10.244.1.5', '-j', 'KUBE-POD-FW-A'] }] },
        { name: 'KUBE-POD-FW-A', policy: '-', rules: [{ args: ['-m', 'mark', '!', '--mark', '0x10000/0x10000', '-j', 'REJECT'] }, { args: ['-j', 'MARK', '--set-xmark', '0x20000/0x20000'] }] },
        { name: 'KUBE-EMPTY', policy: '-', rules: [] },
      ],
      flushChains: ['KUBE-FLUSHED'],
      deleteChains: ['KUBE-POD-FW-OLD', 'KUBE-FLUSHED-AND-GONE'],
      deleteRules: [{ chain: 'FORWARD', rule: { args: ['-j', 'KUBE-OLD'] } }],
      insertRules: [{ chain: 'FORWARD', position: 1, rule: { args: ['-m', 'comment', '--comment', 'kube-router netpol', '-j', 'KUBE-ROUTER-FORWARD'] } }],
    },
  ]);
  t.is(
    payload,
    [
      '*filter',
      ':KUBE-ROUTER-FORWARD - [0:0]',
      ':KUBE-POD-FW-A - [0:0]',
      ':KUBE-EMPTY - [0:0]',
      '-F KUBE-FLUSHED',
      '-F KUBE-POD-FW-OLD',
      '-F KUBE-FLUSHED-AND-GONE',
      '-D FORWARD -j KUBE-OLD',
      '-A KUBE-ROUTER-FORWARD -m comment --comment "jump to pod \\"web\\"" -d 10.244.1.5 -j KUBE-POD-FW-A',
      '-A KUBE-POD-FW-A -m mark ! --mark 0x10000/0x10000 -j REJECT',
      '-A KUBE-POD-FW-A -j MARK --set-xmark 0x20000/0x20000',
      '-I FORWARD 1 -m comment --comment "kube-router netpol" -j KUBE-ROUTER-FORWARD',
      '-X KUBE-POD-FW-OLD',
      '-X KUBE-FLUSHED-AND-GONE',
      'COMMIT',
      '',
    ].join('\n'),
  );
  t.is(writeRestore([]), '');
  t.is(writeRestore([{ name: 'filter', chains: [] }]), '*filter\nCOMMIT\n');
});

test('writeRestore refuses payloads that would not do what they say', (t) => {
  const cases: [string, Parameters<typeof writeRestore>[0], RegExp][] = [
    ['built-in chain rewritten', [{ name: 'filter', chains: [{ name: 'INPUT', policy: 'ACCEPT', rules: [] }] }], /built-in chain INPUT/],
    ['chain twice', [{ name: 'filter', chains: [{ name: 'A', policy: '-', rules: [] }, { name: 'A', policy: '-', rules: [] }] }], /listed twice/],
    ['written and deleted', [{ name: 'filter', chains: [{ name: 'A', policy: '-', rules: [] }], deleteChains: ['A'] }], /both written and deleted/],
    ['built-in deleted', [{ name: 'filter', chains: [], deleteChains: ['FORWARD'] }], /cannot be deleted/],
    ['bad position', [{ name: 'filter', chains: [], insertRules: [{ chain: 'INPUT', position: 0, rule: { args: [] } }] }], /position/],
    ['bad table', [{ name: 'Filter!', chains: [] }], /table name/],
    ['newline arg', [{ name: 'filter', chains: [{ name: 'A', policy: '-', rules: [{ args: ['--comment', 'a\n-A INPUT -j ACCEPT'] }] }] }], /line break/],
  ];
  for (const [title, input, re] of cases) {
    const e = t.throws(() => writeRestore(input), { instanceOf: RestoreWriteError }, title);
    t.regex(e!.message, re, title);
  }
});

test('writeSave prints what parseIptablesSave reads, counters included', (t) => {
  const ruleset = {
    tables: [
      {
        name: 'filter',
        chains: [
          { name: 'INPUT', policy: 'ACCEPT', counters: { packets: 1n, bytes: 2n }, rules: [{ args: ['-j', 'X'], counters: { packets: 3n, bytes: 4n } }] },
          { name: 'X', policy: '-', rules: [{ args: ['-m', 'comment', '--comment', 'multi\nline "q"', '-j', 'RETURN'] }] },
        ],
      },
    ],
  };
  const text = writeSave(ruleset);
  t.is(text, '*filter\n:INPUT ACCEPT [1:2]\n:X -\n[3:4] -A INPUT -j X\n-A X -m comment --comment "multi\nline \\"q\\"" -j RETURN\nCOMMIT\n');
  t.deepEqual(parseIptablesSave(text), ruleset);
});

test('writeIpsetRestore: golden payload', (t) => {
  const text = writeIpsetRestore([
    { op: 'create', name: 'KUBE-DST-A', type: 'hash:net', family: 'inet', options: ['hashsize', '1024', 'maxelem', '65536'] },
    { op: 'create', name: 'TMP-KUBE-DST-A', type: 'hash:net', family: 'inet6' },
    { op: 'flush', name: 'TMP-KUBE-DST-A' },
    { op: 'add', name: 'TMP-KUBE-DST-A', entry: 'fd00::/8' },
    { op: 'add', name: 'TMP-KUBE-DST-A', entry: 'fd00:1::/64', nomatch: true, exist: true },
    { op: 'add', name: 'KUBE-DST-A', entry: '10.0.0.1', extra: ['timeout', '0', 'comment', 'pod web-1, shop'] },
    { op: 'del', name: 'KUBE-DST-A', entry: '10.0.0.2', exist: true },
    { op: 'swap', name: 'TMP-KUBE-DST-A', other: 'KUBE-DST-A' },
    { op: 'destroy', name: 'TMP-KUBE-DST-A' },
    { op: 'create', name: 'L', type: 'list:set', family: 'inet', options: ['size', '8'] },
  ]);
  t.is(
    text,
    [
      'create KUBE-DST-A hash:net family inet hashsize 1024 maxelem 65536 -exist',
      'create TMP-KUBE-DST-A hash:net family inet6 -exist',
      'flush TMP-KUBE-DST-A',
      'add TMP-KUBE-DST-A fd00::/8',
      'add TMP-KUBE-DST-A fd00:1::/64 nomatch -exist',
      'add KUBE-DST-A 10.0.0.1 timeout 0 comment "pod web-1, shop"',
      'del KUBE-DST-A 10.0.0.2 -exist',
      'swap TMP-KUBE-DST-A KUBE-DST-A',
      'destroy TMP-KUBE-DST-A',
      'create L list:set size 8 -exist',
      '',
    ].join('\n'),
  );
});

test('ipset writers refuse names, entries and comments that would break the payload', (t) => {
  const bad: Parameters<typeof writeIpsetRestore>[0][] = [
    [{ op: 'create', name: 'x'.repeat(32), type: 'hash:ip', family: 'inet' }],
    [{ op: 'create', name: 'a b', type: 'hash:ip', family: 'inet' }],
    [{ op: 'create', name: 'A', type: 'hash:ip\nflush B', family: 'inet' }],
    [{ op: 'create', name: 'A', type: 'hash:ip', family: 'inet4' as 'inet' }],
    [{ op: 'add', name: 'A', entry: '1.1.1.1\nflush B' }],
    [{ op: 'add', name: 'A', entry: '1.1.1.1 nomatch' }],
    [{ op: 'add', name: 'A', entry: '1.1.1.1', extra: ['comment', 'a"b'] }],
    [{ op: 'add', name: 'A', entry: '1.1.1.1', extra: ['comment', 'a\nflush B'] }],
    [{ op: 'add', name: 'A', entry: '1.1.1.1', extra: ['nomatch'] }],
    [{ op: 'del', name: 'A', entry: '' }],
    [{ op: 'swap', name: 'A', other: '-B' }],
    [{ op: 'bogus' } as unknown as Parameters<typeof writeIpsetRestore>[0][number]],
  ];
  for (const ops of bad) t.throws(() => writeIpsetRestore(ops), { instanceOf: RestoreWriteError }, JSON.stringify(ops));
});

test('writeIpsetSave: family omitted for types without one; reads back equal', (t) => {
  const sets = [
    { name: 'A', type: 'hash:net', family: 'inet6' as const, options: ['hashsize', '64', 'comment'], members: [{ entry: 'fd00::/8', extra: ['comment', 'a b'] }, { entry: 'fd00:1::/64', nomatch: true }] },
    { name: 'L', type: 'list:set', family: 'inet' as const, options: ['size', '8'], members: [{ entry: 'A' }] },
    { name: 'E', type: 'hash:ip', family: 'inet' as const, options: [], members: [] },
  ];
  const text = writeIpsetSave(sets);
  t.is(text, 'create A hash:net family inet6 hashsize 64 comment\nadd A fd00::/8 comment "a b"\nadd A fd00:1::/64 nomatch\ncreate L list:set size 8\nadd L A\ncreate E hash:ip family inet\n');
  t.deepEqual(parseIpsetSave(text), sets);
});
