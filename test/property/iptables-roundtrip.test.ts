// Properties of the iptables / ipset parsers and writers (fast-check): round trips with hostile
// strings, one-rule-per-line for any argument, and fuzzed input that only ever fails with
// IptablesParseError.
import test from 'ava';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IptablesParseError, parseIpsetSave, parseIptablesSave } from '../../src/iptables/parse.js';
import { formatRule, quoteArg, RestoreWriteError, sanitizeComment, writeIpsetSave, writeSave } from '../../src/iptables/write.js';
import type { Ipset, IptChain, IptRule, IptRuleset } from '../../src/iptables/model.js';

const HOSTILE = ['x" -j ACCEPT', 'a\\"b', '\\', '"', "'", '#', '# c', '!', '-j DROP', '[1:2]', 'COMMIT', '*filter', ':X - [0:0]', '\t', ' ', '', 'ü ✓ 😀', '\u2028', '\r', '\n-A INPUT -j ACCEPT', 'a\nCOMMIT\n*nat', 'x\r\n'];

/** Any text iptables-save could print inside an argument (it cannot hold NUL). */
const anyArg = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('-A', '-j', 'ACCEPT', '!', '-m', 'comment', '--comment', '10.0.0.0/8', '0x10000/0x10000', '1,2:3', 'eth+') },
  { weight: 2, arbitrary: fc.constantFrom(...HOSTILE) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }).filter((s) => !s.includes('\0')) },
  { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom('a', ' ', '"', '\\', "'", '\n', '\t', '#', '!', '-', '\r'), maxLength: 12 }) },
);
/** What iptables-restore can carry on one line. */
const lineArg = anyArg.filter((s) => !/[\n\r]/.test(s));

const counters = fc.record({ packets: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), bytes: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }, { noNullPrototype: true });
const rule: fc.Arbitrary<IptRule> = fc.record({ args: fc.array(anyArg, { maxLength: 8 }), counters }, { requiredKeys: ['args'], noNullPrototype: true });
const chainName = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.:+@%=,-]{0,27}$/);
const chainsArb = fc.uniqueArray(chainName, { maxLength: 5 }).chain((names) =>
  fc.tuple(...names.map((name) =>
    fc.record({ name: fc.constant(name), policy: fc.constantFrom('-', 'ACCEPT', 'DROP'), counters, rules: fc.array(rule, { maxLength: 4 }) }, { requiredKeys: ['name', 'policy', 'rules'], noNullPrototype: true }),
  )) as fc.Arbitrary<IptChain[]>,
);
const rulesetArb: fc.Arbitrary<IptRuleset> = fc
  .uniqueArray(fc.oneof(fc.constantFrom('filter', 'nat', 'mangle', 'raw', 'security'), fc.stringMatching(/^[a-z_][a-z0-9_]{0,7}$/)), { maxLength: 3 })
  .chain((names) => fc.tuple(...names.map((name) => fc.record({ name: fc.constant(name), chains: chainsArb }, { noNullPrototype: true }))))
  .map((tables) => ({ tables }));

test('parseIptablesSave(writeSave(x)) equals x, hostile strings included', (t) => {
  fc.assert(
    fc.property(rulesetArb, (x) => {
      assert.deepStrictEqual(parseIptablesSave(writeSave(x)), x);
    }),
    { numRuns: 400 },
  );
  t.pass();
});

test('formatRule: any argument either round-trips on exactly one line or is refused', (t) => {
  fc.assert(
    fc.property(chainName, fc.array(anyArg, { maxLength: 6 }), (chain, args) => {
      let line: string;
      try {
        line = formatRule(chain, { args });
      } catch (e) {
        if (!(e instanceof RestoreWriteError)) throw e;
        assert.ok(args.some((a) => /[\n\r\0]/.test(a) || Buffer.byteLength(a) >= 1024));
        return;
      }
      assert.ok(!/[\n\r]/.test(line));
      const back = parseIptablesSave(`*filter\n:${chain} - [0:0]\n${line}\nCOMMIT\n`);
      assert.deepStrictEqual(back.tables[0]!.chains[0]!.rules, [{ args }]);
    }),
    { numRuns: 400 },
  );
  t.pass();
});

test('quoteArg never yields a line break, and sanitizeComment output is always accepted and stable', (t) => {
  fc.assert(
    fc.property(fc.oneof(lineArg, fc.string({ unit: 'binary', maxLength: 400 })), (s) => {
      const c = sanitizeComment(s);
      assert.match(c, /^[\x20-\x7e]{0,255}$/);
      assert.ok(!/["\\]|^ | $| {2}/.test(c));
      assert.strictEqual(sanitizeComment(c), c);
      assert.strictEqual(quoteArg(c).includes('\n'), false);
      const back = parseIptablesSave(`*filter\n:X - [0:0]\n${formatRule('X', { args: ['-m', 'comment', '--comment', c] })}\nCOMMIT\n`);
      assert.strictEqual(back.tables[0]!.chains[0]!.rules[0]!.args[3], c);
    }),
    { numRuns: 400 },
  );
  t.pass();
});

const setName = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,30}$/);
const word = fc.stringMatching(/^[a-z0-9][a-z0-9.:\/,-]{0,10}$/).filter((w) => w !== 'family' && w !== 'nomatch' && w !== 'comment');
const ipsetComment = fc.string({ unit: fc.constantFrom('a', ' ', '\\', "'", '#', 'ü', '\t', ',', '-'), maxLength: 20 });
const extra = fc
  .array(fc.oneof(fc.tuple(fc.constantFrom('timeout', 'packets', 'bytes', 'skbmark'), fc.stringMatching(/^[0-9]{1,6}$/)), fc.tuple(fc.constant('comment'), ipsetComment)), { maxLength: 3 })
  .map((pairs) => pairs.flat());
const member = fc.record({ entry: word, nomatch: fc.constant(true), extra: extra.filter((e) => e.length > 0) }, { requiredKeys: ['entry'], noNullPrototype: true });
const ipsetsArb: fc.Arbitrary<Ipset[]> = fc.uniqueArray(setName, { maxLength: 4 }).chain((names) =>
  fc.tuple(...names.map((name) =>
    fc.constantFrom('hash:ip', 'hash:net', 'hash:ip,port', 'hash:net,port', 'list:set', 'bitmap:port', 'hash:mac').chain((type) =>
      fc.record({
        name: fc.constant(name),
        type: fc.constant(type),
        family: type.startsWith('hash:') && type !== 'hash:mac' ? fc.constantFrom('inet' as const, 'inet6' as const) : fc.constant('inet' as const),
        options: fc.array(word, { maxLength: 6 }),
        members: fc.array(member, { maxLength: 5 }),
      }, { noNullPrototype: true }),
    ),
  )),
);

test('parseIpsetSave(writeIpsetSave(s)) equals s', (t) => {
  fc.assert(
    fc.property(ipsetsArb, (sets) => {
      assert.deepStrictEqual(parseIpsetSave(writeIpsetSave(sets)), sets);
    }),
    { numRuns: 400 },
  );
  t.pass();
});

// ---------------------------------------------------------------------------------------------
// Fuzzing: random and mutated text never makes the parsers throw anything but IptablesParseError.

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/iptables/', import.meta.url));
const SAMPLES = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.save'))
  .map((f) => readFileSync(FIXTURES + f, 'utf8'));

const PIECES = ['"', '\\', '\n', '\r', ' ', '\t', '#', '*', ':', '[', ']', '[0:0]', '-A', '!', 'COMMIT', '*filter', ':X -', '\0', 'create', 'add', 'nomatch', 'family', 'ü'];
const edit = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...PIECES), fc.string({ unit: 'binary', maxLength: 4 })) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('dupline' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('swaplines' as const), at: fc.nat(), other: fc.nat() }),
);
type Edit = { kind: 'insert'; at: number; text: string } | { kind: 'delete'; at: number; len: number } | { kind: 'dupline'; at: number } | { kind: 'swaplines'; at: number; other: number };

function mutate(text: string, edits: Edit[]): string {
  let s = text;
  for (const e of edits) {
    if (e.kind === 'insert') {
      const at = e.at % (s.length + 1);
      s = s.slice(0, at) + e.text + s.slice(at);
    } else if (e.kind === 'delete') {
      const at = e.at % (s.length + 1);
      s = s.slice(0, at) + s.slice(at + e.len);
    } else {
      const lines = s.split('\n');
      const a = e.at % lines.length;
      if (e.kind === 'dupline') lines.splice(a, 0, lines[a]!);
      else {
        const b = e.other % lines.length;
        [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      }
      s = lines.join('\n');
    }
  }
  return s;
}

function onlyParseErrors(text: string): void {
  for (const parse of [parseIptablesSave, parseIpsetSave] as ((s: string) => unknown)[]) {
    try {
      parse(text);
    } catch (e) {
      if (!(e instanceof IptablesParseError)) throw e;
      if (!(e.lineNumber >= 1 && Number.isInteger(e.lineNumber))) throw new Error(`bad line number ${e.lineNumber}`);
      if (!e.message.startsWith(`line ${e.lineNumber}: `)) throw new Error(`bad message ${e.message}`);
    }
  }
}

test('fuzz: mutated iptables-save / ipset save text fails only with IptablesParseError', (t) => {
  fc.assert(
    fc.property(fc.constantFrom(...SAMPLES, readFileSync(`${FIXTURES}ipset.save`, 'utf8')), fc.array(edit, { minLength: 1, maxLength: 6 }), (sample, edits) => {
      onlyParseErrors(mutate(sample, edits as Edit[]));
    }),
    { numRuns: 1500 },
  );
  t.pass();
});

test('fuzz: random text fails only with IptablesParseError', (t) => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.array(fc.constantFrom(...PIECES, 'x', 'INPUT', ' -j ', 'ACCEPT'), { maxLength: 40 }).map((p) => p.join('')),
      ),
      (text) => onlyParseErrors(text),
    ),
    { numRuns: 1500 },
  );
  t.pass();
});
