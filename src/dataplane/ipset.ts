// Building ipsets for the render: canonical member text (as `ipset save` prints it, so a read-back
// compares equal), ipBlocks as hash:net with `nomatch` excepts and `/0` split in two halves. Pure.
import type { Family, IPBlock } from '../cluster/model.js';
import type { Ipset, IpsetMember } from '../iptables/model.js';
import { LRUCache } from 'lru-cache';
import { bitsOf, cidrContains, formatIP, parseCIDR, parseIP, type Cidr } from '../net/ip.js';

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function setFamily(family: Family): 'inet' | 'inet6' {
  return family === 'ipv6' ? 'inet6' : 'inet';
}

/** Canonical text of every IP seen (renders and diffs see the same IPs over and over). */
// Bounded by count (maxSize with a size of 1 each) rather than `max`: lru-cache preallocates `max`
// slots (~25 MB for this and the other large caches at start), while this grows with use.
const canonical = new LRUCache<string, string>({ maxSize: 500_000, sizeCalculation: () => 1 });
const NOT_AN_IP = '';

/** Dotted-quad text that is already canonical (no leading zeros, each part ≤ 255): the common case. */
const CANONICAL_V4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Canonical IP text of the given family, or undefined (other family / not an IP). */
export function canonicalIP(s: string, family: Family): string | undefined {
  if (CANONICAL_V4.test(s)) return family === 'ipv4' ? s : undefined;
  let c = canonical.get(s);
  if (c === undefined) {
    const ip = parseIP(s);
    c = ip ? formatIP(ip.family, ip.value) : NOT_AN_IP;
    canonical.set(s, c);
  }
  if (c === NOT_AN_IP || c.includes(':') !== (family === 'ipv6')) return undefined;
  return c;
}

/** A CIDR as `ipset save` prints it in a hash:net set: the network address, no prefix for a host. */
export function netEntry(c: Cidr): string {
  const addr = formatIP(c.family, c.addr);
  return c.prefix === bitsOf(c.family) ? addr : `${addr}/${c.prefix}`;
}

/** Parses a CIDR (or a bare IP as a host network) of the given family. */
export function parseNetOf(s: string, family: Family): Cidr | undefined {
  if (!s.includes('/')) {
    const ip = parseIP(s);
    return ip && ip.family === family ? { family, addr: ip.value, prefix: bitsOf(family) } : undefined;
  }
  const r = parseCIDR(s);
  return r.ok && r.cidr.family === family ? r.cidr : undefined;
}

/** The two halves of a family (a hash:net set cannot hold a /0). */
export function halves(family: Family): Cidr[] {
  const top = 1n << BigInt(bitsOf(family) - 1);
  return [
    { family, addr: 0n, prefix: 1 },
    { family, addr: top, prefix: 1 },
  ];
}

/**
 * Members of a hash:net set for an ipBlock of this family: the block (split in two halves when it
 * is a /0) and every except inside it as `nomatch`. An except that covers a whole entry removes the
 * entry (hash:net cannot hold the same network twice). A block of the other family (or invalid
 * text) gives no members: it matches nothing here.
 */
export function ipBlockMembers(block: IPBlock, family: Family): IpsetMember[] {
  const cidr = parseNetOf(block.cidr, family);
  if (!cidr) return [];
  let entries: Cidr[] = cidr.prefix === 0 ? halves(family) : [cidr];
  const excepts: Cidr[] = [];
  for (const e of block.except ?? []) {
    const ex = parseNetOf(e, family);
    if (!ex || !cidrContains(cidr, ex)) continue; // outside the block: nothing to carve out
    excepts.push(ex);
  }
  // An except covering an entry removes it.
  entries = entries.filter((en) => !excepts.some((ex) => cidrContains(ex, en)));
  const out = new Map<string, IpsetMember>();
  for (const en of entries) out.set(netEntry(en), { entry: netEntry(en) });
  for (const ex of excepts) {
    // Only excepts strictly inside a remaining entry matter.
    if (!entries.some((en) => cidrContains(en, ex) && en.prefix < ex.prefix)) continue;
    const k = netEntry(ex);
    if (!out.has(k)) out.set(k, { entry: k, nomatch: true });
  }
  return sortMembers([...out.values()]);
}

export function sortMembers(ms: IpsetMember[]): IpsetMember[] {
  return ms.sort((a, b) => cmp(a.entry, b.entry) || (a.nomatch ? 1 : 0) - (b.nomatch ? 1 : 0));
}

/**
 * Member lists built here for hash:ip sets: canonical entries, no `nomatch`, no duplicates, sorted by
 * entry. Two such lists are diffed by one merge walk (diff.ts) instead of as sets of keys.
 */
const sortedCanonical = new WeakSet<readonly IpsetMember[]>();

/** Whether this member list is canonical, deduplicated and sorted (built by hashIpSet). */
export function isSortedCanonical(members: readonly IpsetMember[]): boolean {
  return sortedCanonical.has(members);
}

/** A hash:ip set with the addresses of this family among `ips` (canonical, deduplicated, sorted). */
export function hashIpSet(name: string, family: Family, ips: Iterable<string>): Ipset {
  const members = hashIpMembers(family, ips);
  sortedCanonical.add(members);
  return { name, type: 'hash:ip', family: setFamily(family), options: [], members };
}

function hashIpMembers(family: Family, ips: Iterable<string>): IpsetMember[] {
  if (Array.isArray(ips)) {
    const fast = sortedCanonicalMembers(ips as readonly string[], family);
    if (fast) return fast;
  }
  const seen = new Set<string>();
  for (const ip of ips) {
    const c = canonicalIP(ip, family);
    if (c !== undefined) seen.add(c);
  }
  return [...seen].sort().map((entry) => ({ entry }));
}

/**
 * The common case without a Set and a sort: IPs already sorted (compiled peers are) and each already
 * canonical or of the other family. Undefined when that does not hold: the caller takes the slow path.
 */
function sortedCanonicalMembers(ips: readonly string[], family: Family): IpsetMember[] | undefined {
  const out: IpsetMember[] = [];
  let last: string | undefined;
  for (const ip of ips) {
    if (last !== undefined && ip < last) return undefined;
    if (CANONICAL_V4.test(ip)) {
      if (family === 'ipv4' && ip !== last) out.push({ entry: ip });
    } else if (family === 'ipv6' || !ip.includes(':')) return undefined; // IPv6 text needs canonicalising; neither family: let the slow path judge
    last = ip;
  }
  return out;
}

/** A hash:net set with the networks of this family among `cidrs` (a /0 is split in halves). */
export function hashNetSet(name: string, family: Family, cidrs: Iterable<string>): Ipset {
  const seen = new Set<string>();
  for (const s of cidrs) {
    const c = parseNetOf(s, family);
    if (!c) continue;
    for (const part of c.prefix === 0 ? halves(family) : [c]) seen.add(netEntry(part));
  }
  return { name, type: 'hash:net', family: setFamily(family), options: [], members: [...seen].sort().map((entry) => ({ entry })) };
}

/** Canonical text of a member read back from the kernel (for comparison with a render). */
export function canonicalMember(m: IpsetMember, type: string, family: 'inet' | 'inet6'): string {
  const fam: Family = family === 'inet6' ? 'ipv6' : 'ipv4';
  let entry = m.entry;
  if (type === 'hash:net') {
    const c = parseNetOf(entry, fam);
    if (c) entry = netEntry(c);
  } else if (type === 'hash:ip') {
    entry = canonicalIP(entry, fam) ?? entry;
  } else if (type === 'hash:ip,port') {
    // `address,proto:port`; ipset save prints the address canonical and the port as a number.
    const comma = entry.lastIndexOf(',');
    if (comma > 0) entry = `${canonicalIP(entry.slice(0, comma), fam) ?? entry.slice(0, comma)}${entry.slice(comma)}`;
  }
  return `${entry}${m.nomatch ? ' nomatch' : ''}`;
}

/** maxelem for a set of n members: the kernel default (65536) unless more room is needed. */
export function maxelemFor(n: number): number {
  let m = 65536;
  while (m < n * 2) m *= 2;
  return m;
}

/** Options for a new set of n members ([] for the defaults). */
export function setOptions(n: number): string[] {
  const m = maxelemFor(n);
  return m === 65536 ? [] : ['maxelem', String(m)];
}
