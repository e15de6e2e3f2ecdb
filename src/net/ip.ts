// IP and CIDR arithmetic for both families, on bigints. Pure. The ground floor: it imports nothing
// of podwall's, and cluster/, policy/, iptables/, dataplane/ and lab/ all build on it.
import { isIP } from 'node:net';

export type Family = 'ipv4' | 'ipv6';

export interface Cidr {
  family: Family;
  /** Network address (host bits cleared). */
  addr: bigint;
  prefix: number;
}

const BITS: Record<Family, number> = { ipv4: 32, ipv6: 128 };

export function bitsOf(family: Family): number {
  return BITS[family];
}

function parseV4(s: string): bigint {
  return s.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function parseV6(s: string): bigint {
  let text = s;
  // Embedded IPv4 tail (::ffff:1.2.3.4).
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4tail) {
    const v = parseV4(v4tail[1]!);
    text = `${text.slice(0, -v4tail[1]!.length)}${(v >> 16n).toString(16)}:${(v & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/**
 * A dotted quad as node's isIP takes it (four decimal parts 0-255, no leading zeros), as a number;
 * -1 when the text is not one. Most addresses are IPv4: this spares them isIP, split and eight bigints.
 */
function dottedQuad(s: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && part === 0) return -1; // a leading zero
      part = part * 10 + (c - 0x30);
      if (++digits > 3) return -1;
    } else if (c === 0x2e) {
      if (digits === 0 || part > 255 || ++dots > 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
    } else return -1;
  }
  if (digits === 0 || part > 255 || dots !== 3) return -1;
  return value * 256 + part;
}

/** Parses an IP address; undefined when it is not one. Zone ids are refused. */
export function parseIP(s: string): { family: Family; value: bigint } | undefined {
  const quad = dottedQuad(s);
  if (quad >= 0) return { family: 'ipv4', value: BigInt(quad) };
  const kind = isIP(s);
  if (kind === 4) {
    // Node accepts only dotted quads without leading-zero ambiguity? Be strict ourselves.
    if (s.split('.').some((p) => p.length > 1 && p.startsWith('0'))) return undefined;
    return { family: 'ipv4', value: parseV4(s) };
  }
  if (kind === 6 && !s.includes('%')) return { family: 'ipv6', value: parseV6(s) };
  return undefined;
}

export function formatIP(family: Family, v: bigint): string {
  if (family === 'ipv4') {
    const n = Number(v & 0xffffffffn);
    return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (len >= 2) of zero groups, first one on ties.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/**
 * Why no pod, Service or node can have this address — unspecified (0.0.0.0, ::), loopback
 * (127.0.0.0/8, ::1), multicast (224.0.0.0/4, ff00::/8) or the IPv4 limited broadcast — or
 * undefined when it is an ordinary unicast address. The kernel refuses some of them in a hash set
 * (ipset: "Null-valued element"), and none of them names one endpoint.
 */
export function unusableAddress(ip: { family: Family; value: bigint }): string | undefined {
  if (ip.family === 'ipv4') {
    if (ip.value === 0n) return 'the unspecified address';
    if (ip.value >> 24n === 127n) return 'a loopback address';
    if (ip.value >> 28n === 0xen) return 'a multicast address';
    if (ip.value === 0xffffffffn) return 'the broadcast address';
    return undefined;
  }
  if (ip.value === 0n) return 'the unspecified address';
  if (ip.value === 1n) return 'the loopback address';
  if (ip.value >> 120n === 0xffn) return 'a multicast address';
  return undefined;
}

/** Canonical text of an IP (IPv6 compressed, lowercase); undefined when invalid. */
export function normalizeIP(s: string): string | undefined {
  const ip = parseIP(s);
  return ip && formatIP(ip.family, ip.value);
}

export type CidrResult = { ok: true; cidr: Cidr; hostBitsSet: boolean } | { ok: false; reason: string };

/** Parses `addr/prefix` (the prefix is required, as the API server requires for ipBlock). */
export function parseCIDR(s: string): CidrResult {
  if (typeof s !== 'string') return { ok: false, reason: 'not a string' };
  const slash = s.indexOf('/');
  if (slash < 0) return { ok: false, reason: 'missing /prefix' };
  const ip = parseIP(s.slice(0, slash));
  if (!ip) return { ok: false, reason: 'not an IP address' };
  const pfx = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(pfx)) return { ok: false, reason: 'prefix is not a number' };
  const prefix = Number(pfx);
  const bits = BITS[ip.family];
  if (prefix > bits) return { ok: false, reason: `prefix /${prefix} exceeds ${bits} bits` };
  const mask = prefixMask(ip.family, prefix);
  const addr = ip.value & mask;
  return { ok: true, cidr: { family: ip.family, addr, prefix }, hostBitsSet: addr !== ip.value };
}

export function prefixMask(family: Family, prefix: number): bigint {
  const bits = BigInt(BITS[family]);
  const all = (1n << bits) - 1n;
  return prefix === 0 ? 0n : (all >> (bits - BigInt(prefix))) << (bits - BigInt(prefix));
}

export function formatCIDR(c: Cidr): string {
  return `${formatIP(c.family, c.addr)}/${c.prefix}`;
}

export function cidrContainsIP(c: Cidr, ip: { family: Family; value: bigint }): boolean {
  return c.family === ip.family && (ip.value & prefixMask(c.family, c.prefix)) === c.addr;
}

/** Whether `inner` lies entirely inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && inner.prefix >= outer.prefix && (inner.addr & prefixMask(outer.family, outer.prefix)) === outer.addr;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

/** Parsed-once CIDR text → Cidr (throws on invalid: only for already-validated text). */
export function mustCIDR(s: string): Cidr {
  const r = parseCIDR(s);
  if (!r.ok) throw new Error(`invalid CIDR ${s}: ${r.reason}`);
  return r.cidr;
}

/** IP text in `cidr` minus `except` (all already validated). */
export function ipInBlock(ipText: string, block: { cidr: string; except: readonly string[] }): boolean {
  const ip = parseIP(ipText);
  if (!ip) return false;
  if (!cidrContainsIP(mustCIDR(block.cidr), ip)) return false;
  return !block.except.some((e) => cidrContainsIP(mustCIDR(e), ip));
}

/** Inclusive address interval of one family. */
interface Interval {
  lo: bigint;
  hi: bigint;
}

function intervalOf(c: Cidr): Interval {
  const size = 1n << BigInt(BITS[c.family] - c.prefix);
  return { lo: c.addr, hi: c.addr + size - 1n };
}

/** Sorted, disjoint, merged intervals of some CIDRs (one family). */
function unionOf(cidrs: readonly Cidr[]): Interval[] {
  const list = cidrs.map(intervalOf).sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: Interval[] = [];
  for (const i of list) {
    const last = out[out.length - 1];
    if (last && i.lo <= last.hi + 1n) {
      if (i.hi > last.hi) last.hi = i.hi;
    } else out.push({ ...i });
  }
  return out;
}

/** Total size of the intersection of two sorted disjoint interval lists. */
function overlapSize(a: readonly Interval[], b: readonly Interval[]): bigint {
  let n = 0n;
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const lo = a[i]!.lo > b[j]!.lo ? a[i]!.lo : b[j]!.lo;
    const hi = a[i]!.hi < b[j]!.hi ? a[i]!.hi : b[j]!.hi;
    if (lo <= hi) n += hi - lo + 1n;
    if (a[i]!.hi < b[j]!.hi) i++;
    else j++;
  }
  return n;
}

function sizeOf(l: readonly Interval[]): bigint {
  return l.reduce((n, i) => n + (i.hi - i.lo + 1n), 0n);
}

/**
 * How an ipBlock (`cidr` minus `except`) relates to a region of addresses (CIDRs; only those of the
 * block's family count): it holds every address of the region (`all`), none (`none`), or some
 * (`part`). An empty region gives `none`.
 */
export function blockCoverage(block: { cidr: string; except: readonly string[] }, region: readonly Cidr[]): 'all' | 'none' | 'part' {
  const c = mustCIDR(block.cidr);
  const r = unionOf(region.filter((x) => x.family === c.family));
  const total = sizeOf(r);
  if (total === 0n) return 'none';
  const inside = overlapSize(r, [intervalOf(c)]) - overlapSize(r, unionOf(block.except.map(mustCIDR).filter((e) => cidrContains(c, e))));
  return inside === 0n ? 'none' : inside === total ? 'all' : 'part';
}

/**
 * An address of `region` (CIDRs of one family) that the block holds (`inside: true`) or does not
 * hold (`inside: false`); undefined when there is none. For tests and explanations.
 */
export function witnessAddress(block: { cidr: string; except: readonly string[] }, region: readonly Cidr[], inside: boolean): string | undefined {
  const c = mustCIDR(block.cidr);
  const r = unionOf(region.filter((x) => x.family === c.family));
  const ex = unionOf(block.except.map(mustCIDR));
  const b = intervalOf(c);
  const holds = (v: bigint) => v >= b.lo && v <= b.hi && !ex.some((e) => v >= e.lo && v <= e.hi);
  // Candidates: each boundary where membership can change.
  const points = new Set<bigint>();
  for (const i of r) points.add(i.lo);
  for (const e of [b, ...ex]) {
    points.add(e.lo);
    points.add(e.hi + 1n);
    if (e.lo > 0n) points.add(e.lo - 1n);
  }
  for (const v of [...points].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))) {
    if (!r.some((i) => v >= i.lo && v <= i.hi)) continue;
    if (holds(v) === inside) return formatIP(c.family, v);
  }
  return undefined;
}
