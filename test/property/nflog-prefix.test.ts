// The NFLOG prefix codec: what the renderer writes, `podwall drops` reads back — for every tag, within
// the 63 bytes the kernel keeps, in characters iptables-restore and iptables-save carry unchanged.
import test from 'ava';
import fc from 'fast-check';
import { DROP_KINDS, MAX_PREFIX_BYTES, decodePrefix, encodePrefix, hintFor, parseLogBurst, parseLogRate, PrefixError, type NflogTag } from '../../src/dataplane/nflog.js';
import { sanitizeComment } from '../../src/iptables/write.js';
import { hash16 } from '../../src/dataplane/names.js';

const ref = fc.string({ minLength: 1, maxLength: 40 }).map((s) => hash16(s));
const hint = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.tuple(fc.stringMatching(/^[a-z0-9-]{1,63}$/), fc.stringMatching(/^[a-z0-9.-]{1,253}$/)).map(([ns, n]) => `${ns}/${n}`),
);
const tag: fc.Arbitrary<NflogTag> = fc.record(
  { kind: fc.constantFrom(...DROP_KINDS), direction: fc.constantFrom('ingress' as const, 'egress' as const), ref, hint },
  { requiredKeys: ['kind', 'direction'] },
);

test('decode(encode(tag)) is the tag (hint cut to fit), in at most 63 printable ASCII bytes (property)', (t) => {
  fc.assert(
    fc.property(tag, (x) => {
      const p = encodePrefix(x);
      const back = decodePrefix(p);
      const { hint: h, ...rest } = x;
      const want: NflogTag = { ...rest };
      const kept = hintFor(rest, h);
      if (kept !== undefined) want.hint = kept;
      t.deepEqual(back, want);
      t.true(Buffer.byteLength(p) <= MAX_PREFIX_BYTES, p);
      // iptables-restore and -save keep it as it is (no quotes, backslashes, control characters).
      t.is(sanitizeComment(p), p);
      // A hint that was already safe and short survives whole.
      if (h !== undefined && kept !== undefined && /^[A-Za-z0-9._/:-]*$/.test(h) && h.length <= kept.length) t.is(kept, h);
    }),
    { numRuns: 2000 },
  );
});

test('decodePrefix never throws and rejects what podwall did not write (property)', (t) => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), (s) => {
      const d = decodePrefix(s);
      if (d !== undefined) t.is(encodePrefix(d), s);
    }),
    { numRuns: 2000 },
  );
  for (const s of ['', 'podwall drop y/b', 'podwall/1', 'podwall/1 deny in', 'podwall/1 deny sideways AAAAAAAAAAAAAAAA', 'podwall/1 deny in aaaaaaaaaaaaaaaa', 'podwall/1 nope in - x', 'podwall/2 deny in - x', 'podwall/1 deny in - a b']) {
    t.is(decodePrefix(s), undefined, s);
  }
  t.deepEqual(decodePrefix('podwall/1 unprogrammed in - 10.244.1.0/24'), { kind: 'unprogrammed', direction: 'ingress', hint: '10.244.1.0/24' });
});

test('encodePrefix refuses what would not decode', (t) => {
  t.throws(() => encodePrefix({ kind: 'nope' as 'deny', direction: 'ingress' }), { instanceOf: PrefixError });
  t.throws(() => encodePrefix({ kind: 'deny', direction: 'ingress', ref: 'abc' }), { instanceOf: PrefixError });
  t.is(encodePrefix({ kind: 'deny', direction: 'egress', ref: 'ABCDEFGHIJKLMNOP', hint: 'y/b' }), 'podwall/1 deny out ABCDEFGHIJKLMNOP y/b');
});

test('log rate and burst: canonical as iptables-save prints them; bad values named', (t) => {
  const table: [string, string | undefined][] = [
    ['10/minute', '10/min'],
    ['10/min', '10/min'],
    ['10/m', '10/min'],
    ['5/second', '5/sec'],
    ['5/s', '5/sec'],
    ['100/hours', '100/hour'],
    ['1/day', '1/day'],
    ['0', undefined],
    ['none', undefined],
  ];
  for (const [i, o] of table) t.is(parseLogRate(i), o, i);
  for (const bad of ['10', '10/ms', '0/min', '10001/sec', 'fast', '-1/min', '10/fortnight', '1.5/sec']) t.throws(() => parseLogRate(bad), undefined, bad);
  t.is(parseLogBurst('10'), 10);
  for (const bad of ['0', '10001', 'x', '1.5', '']) t.throws(() => parseLogBurst(bad), undefined, bad);
});
