// The merge walk that diffs two hash:ip member lists built by hashIpSet gives the same additions and
// deletions as comparing their canonical keys as sets, and applying them turns one list into the other.
import test from 'ava';
import fc from 'fast-check';
import { hashIpSet, isSortedCanonical } from '../../src/dataplane/ipset.js';
import { memberChanges, memberKeys } from '../../src/dataplane/diff.js';
import type { Ipset } from '../../src/iptables/model.js';

// Small pools so lists overlap; IPv6 text in non-canonical forms and the other family mixed in.
const v4 = fc.tuple(fc.constantFrom(10, 192), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 40 })).map(([a, b, c]) => `${a}.0.${b}.${c}`);
const v6 = fc.constantFrom('fd00::1', 'fd00:0::1', 'fd00::a', 'FD00::B', 'fd00::0:2', '2001:db8::5');
const ips = fc.array(fc.oneof(v4, v4, v6), { maxLength: 60 });

const bySets = (a: Ipset, b: Ipset) => {
  const have = memberKeys(a);
  const want = memberKeys(b);
  return { toAdd: [...want].filter((k) => !have.has(k)).sort(), toDel: [...have].filter((k) => !want.has(k)).sort() };
};

test('member diff: merge walk == set comparison, and it turns one list into the other', (t) => {
  let merged = 0;
  fc.assert(
    fc.property(fc.constantFrom('ipv4' as const, 'ipv6' as const), ips, ips, (family, x, y) => {
      // Sorted input takes hashIpSet's fast path, unsorted its slow one: both give mergeable lists.
      const a = hashIpSet('s', family, x);
      const b = hashIpSet('s', family, [...y].sort());
      if (!isSortedCanonical(a.members) || !isSortedCanonical(b.members)) return false;
      merged++;
      const got = memberChanges(a, b);
      const want = bySets(a, b);
      if (!t.deepEqual({ toAdd: [...got.toAdd].sort(), toDel: [...got.toDel].sort() }, want)) return false;
      const after = new Set(memberKeys(a));
      for (const k of got.toDel) after.delete(k);
      for (const k of got.toAdd) after.add(k);
      return t.deepEqual([...after].sort(), [...memberKeys(b)].sort());
    }),
    { numRuns: 500 },
  );
  t.is(merged, 500);
});

test('member diff: a list not built by hashIpSet (read back from the kernel) is compared by keys', (t) => {
  const built = hashIpSet('s', 'ipv4', ['10.0.0.1', '10.0.0.2']);
  const readBack: Ipset = { name: 's', type: 'hash:ip', family: 'inet', options: [], members: [{ entry: '10.0.0.2' }, { entry: '10.0.0.3' }] };
  t.false(isSortedCanonical(readBack.members));
  const got = memberChanges(readBack, built);
  t.deepEqual(got, { toAdd: ['10.0.0.1'], toDel: ['10.0.0.3'] });
});
