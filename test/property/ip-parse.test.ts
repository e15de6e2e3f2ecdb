// parseIP's dotted-quad fast path (src/net/ip.ts) against the reference reading: node's isIP decides
// what is an IPv4 address, the value is the four parts' — on random and near-miss texts (leading
// zeros, parts past 255, missing or extra parts and dots, signs, spaces, IPv6 and zones).
import test from 'ava';
import fc from 'fast-check';
import { isIP } from 'node:net';
import { formatIP, normalizeIP, parseIP } from '../../src/net/ip.js';

function reference(s: string): bigint | undefined {
  if (isIP(s) !== 4) return undefined;
  return s.split('.').reduce((acc, p) => (acc << 8n) | BigInt(Number(p)), 0n);
}

const part = fc.oneof(fc.integer({ min: 0, max: 255 }).map(String), fc.constantFrom('', '0', '00', '01', '007', '256', '999', '1000', '-1', '+1', ' 1', '1 ', 'a', '1e1', '0x1', '٣'));
const text = fc.oneof(
  { weight: 4, arbitrary: fc.array(part, { minLength: 1, maxLength: 6 }).map((ps) => ps.join('.')) },
  { weight: 1, arbitrary: fc.tuple(fc.array(part, { minLength: 4, maxLength: 4 }), fc.constantFrom('', '.', '..', '/24', '%eth0', '\n')).map(([ps, tail]) => ps.join('.') + tail) },
  { weight: 1, arbitrary: fc.string({ maxLength: 16 }) },
  { weight: 1, arbitrary: fc.constantFrom('::1', '::ffff:1.2.3.4', 'fd00::1', 'fe80::1%eth0', '1.2.3.4.', '.1.2.3.4', '1..2.3', '255.255.255.255', '0.0.0.0') },
);

test('parseIP reads exactly the IPv4 addresses isIP takes, with their values; formatIP writes them back', (t) => {
  fc.assert(
    fc.property(text, (s) => {
      const want = reference(s);
      const got = parseIP(s);
      if (want === undefined) return got === undefined || got.family === 'ipv6';
      return got !== undefined && got.family === 'ipv4' && got.value === want && formatIP('ipv4', got.value) === s && normalizeIP(s) === s;
    }),
    { numRuns: 5000, seed: 1105 },
  );
  t.pass();
});
