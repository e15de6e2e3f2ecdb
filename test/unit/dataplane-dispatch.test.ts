// The dispatch trees (src/dataplane/dispatch.ts): every isolated pod IP reaches its own pod chain, in
// few rule evaluations, and a change rewrites only the chains on its path.
import test from 'ava';
import fc from 'fast-check';
import { DISPATCH_LEAF, dispatchChains, type DispatchEntry } from '../../src/dataplane/dispatch.js';
import { DISPATCH_ROOT, isOwnedChain } from '../../src/dataplane/names.js';
import { interpret } from '../../src/iptables/interpret.js';
import type { IptChain, IptTable } from '../../src/iptables/model.js';
import { formatIP } from '../../src/net/ip.js';
import { sameChain } from '../../src/dataplane/diff.js';

const podChain = (i: number) => `KUBE-POD-FW-T${String(i).padStart(15, '0')}`;
const entry = (ip: string, i: number): DispatchEntry => ({ ip, chain: podChain(i), comment: ['-m', 'comment', '--comment', `ns/p${i}`] });

/** FORWARD → the tree of one direction; every pod chain marks the packet with its own number. */
function tableOf(tree: IptChain[], entries: DispatchEntry[], direction: 'dst' | 'src'): IptTable {
  const pods = [...new Set(entries.map((e) => e.chain))].map((name) => ({ name, policy: '-', rules: [{ args: ['-j', 'MARK', '--set-xmark', `0x${(Number(name.slice(13)) + 1).toString(16)}/0x0`] }] }));
  return { name: 'filter', chains: [{ name: 'FORWARD', policy: 'ACCEPT', rules: [{ args: ['-j', DISPATCH_ROOT[direction]] }] }, ...tree, ...pods] };
}

function walk(table: IptTable, ip: string, other: string, direction: 'dst' | 'src') {
  const [src, dst] = direction === 'dst' ? [other, ip] : [ip, other];
  const tr = interpret(table, [], { src, dst, protocol: 'tcp', dport: 80, hook: 'FORWARD' }, { includeNonMatching: true });
  return { visited: tr.steps.filter((s) => s.action.startsWith('GOTO KUBE-POD-FW') || s.action.startsWith('JUMP KUBE-POD-FW')).map((s) => s.action.split(' ')[1]), evaluated: tr.steps.filter((s) => s.index > 0).length };
}

const v4 = (base: number, i: number) => formatIP('ipv4', BigInt(base + i));

test('1,000 pods of a /22: each IP reaches its own chain in at most three levels of 16', (t) => {
  const base = 0x0af40000; // 10.244.0.0
  const entries = Array.from({ length: 1000 }, (_, i) => entry(v4(base, i + 2), i));
  for (const direction of ['dst', 'src'] as const) {
    const tree = dispatchChains('ipv4', direction, entries);
    t.is(tree[0]!.name, DISPATCH_ROOT[direction]);
    t.true(tree.every((c) => c.rules.length <= DISPATCH_LEAF && c.name.length <= 28 && isOwnedChain(c.name)));
    t.true(tree.length < 100, `${tree.length} chains`);
    const table = tableOf(tree, entries, direction);
    let worst = 0;
    for (const [i, e] of entries.entries()) {
      const w = walk(table, e.ip, '192.0.2.1', direction);
      t.deepEqual(w.visited, [podChain(i)], e.ip);
      worst = Math.max(worst, w.evaluated);
    }
    // FORWARD's jump + at most 16 rules on each of three levels.
    t.true(worst <= 1 + 3 * DISPATCH_LEAF, `worst ${worst} rules evaluated`);
    t.log(`${direction}: ${tree.length} chains, worst ${worst} rules evaluated`);
    // An address the tree does not hold falls off it, back to FORWARD.
    for (const ip of ['10.244.3.234', '10.244.4.1', '10.245.0.2', '192.0.2.9']) t.deepEqual(walk(table, ip, '192.0.2.1', direction).visited, [], ip);
  }
});

test('random IPv4 and IPv6 pod sets: every IP reaches exactly its chains, others none', (t) => {
  const v4set = fc.uniqueArray(fc.oneof(fc.integer({ min: 0, max: 1023 }).map((n) => 0x0af40000 + n), fc.nat({ max: 0xffffffff })), { minLength: 0, maxLength: 300 });
  fc.assert(
    fc.property(v4set, fc.array(fc.nat(), { maxLength: 3 }), fc.constantFrom('dst' as const, 'src' as const), (values, dups, direction) => {
      const entries = values.map((v, i) => entry(formatIP('ipv4', BigInt(v)), i));
      // a few IPs shared by two pods (a transient state): both chains are visited
      for (const d of dups) if (entries.length) entries.push({ ...entries[d % entries.length]!, chain: podChain(10_000 + d) });
      const tree = dispatchChains('ipv4', direction, [...entries].reverse());
      const table = tableOf(tree, entries, direction);
      for (const e of entries) {
        const want = [...new Set(entries.filter((x) => x.ip === e.ip).map((x) => x.chain))].sort();
        const got = walk(table, e.ip, '192.0.2.1', direction).visited;
        if (JSON.stringify([...got].sort()) !== JSON.stringify(want)) return false;
      }
      return walk(table, '0.0.0.1', '192.0.2.1', direction).visited.length === (entries.some((e) => e.ip === '0.0.0.1') ? 1 : 0);
    }),
    { numRuns: 150, seed: 11 },
  );
  const v6 = Array.from({ length: 400 }, (_, i) => entry(formatIP('ipv6', (0xfd000244000100000000000000000000n) + BigInt(i * 7 + 1)), i));
  const tree = dispatchChains('ipv6', 'dst', v6);
  const table = tableOf(tree, v6, 'dst');
  for (const [i, e] of v6.entries()) t.deepEqual(walk(table, e.ip, 'fd00::1', 'dst').visited, [podChain(i)]);
  t.throws(() => dispatchChains('ipv6', 'dst', [entry('10.0.0.1', 0)]), { message: /not an ipv6 address/ });
});

test('the tree depends only on the entries, and a change rewrites only the chains on its path', (t) => {
  const base = 0x0af40000;
  const entries = Array.from({ length: 1000 }, (_, i) => entry(v4(base, i + 2), i));
  const shuffled = [...entries].sort((a, b) => (a.chain < b.chain ? 1 : -1));
  t.deepEqual(dispatchChains('ipv4', 'dst', entries), dispatchChains('ipv4', 'dst', shuffled));
  const before = new Map(dispatchChains('ipv4', 'dst', entries).map((c) => [c.name, c]));
  const changed = (after: IptChain[]) => {
    const names = new Set(after.map((c) => c.name));
    return {
      rewritten: after.filter((c) => !sameChain(before.get(c.name), c)).map((c) => c.name),
      removed: [...before.keys()].filter((n) => !names.has(n)),
    };
  };
  // a pod added at the end, one in the middle, one removed
  const added = changed(dispatchChains('ipv4', 'dst', [...entries, entry(v4(base, 1002), 5000)]));
  t.true(added.rewritten.length <= 3 && added.removed.length === 0, JSON.stringify(added));
  const removed = changed(dispatchChains('ipv4', 'dst', entries.filter((_, i) => i !== 500)));
  t.true(removed.rewritten.length <= 2 && removed.removed.length === 0, JSON.stringify(removed));
  // and the unchanged chains are the very same objects (the diff compares them by identity first)
  const again = dispatchChains('ipv4', 'dst', entries);
  t.true(again.every((c) => c === before.get(c.name)));
});

test('no isolated pod: an empty root chain per direction', (t) => {
  t.deepEqual(dispatchChains('ipv4', 'dst', []), [{ name: 'PODWALL-DST-PODS', policy: '-', rules: [] }]);
  t.deepEqual(dispatchChains('ipv6', 'src', []), [{ name: 'PODWALL-SRC-PODS', policy: '-', rules: [] }]);
});
