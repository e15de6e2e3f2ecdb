// IPv4 / IPv6 addresses and networks as bigints, for the interpreter. Pure; returns null on bad text.

export interface Ip {
  family: 4 | 6;
  value: bigint;
}

export interface Net {
  family: 4 | 6;
  /** Network address (already masked). */
  base: bigint;
  mask: bigint;
  /** Prefix length; for a non-contiguous v4 dotted mask, the number of set bits. */
  prefix: number;
}

const bits = (f: 4 | 6): number => (f === 4 ? 32 : 128);
const allOnes = (f: 4 | 6): bigint => (1n << BigInt(bits(f))) - 1n;

export function parseIpv4(s: string): bigint | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

export function parseIpv6(s: string): bigint | null {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return null;
  let head = s;
  if (s.includes('.')) {
    // Embedded IPv4 in the last 32 bits (::ffff:1.2.3.4): rewrite it as two hex groups.
    const lastColon = s.lastIndexOf(':');
    const v4 = parseIpv4(s.slice(lastColon + 1));
    if (v4 === null) return null;
    head = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const dbl = head.indexOf('::');
  if (dbl !== head.lastIndexOf('::')) return null;
  let groups: string[];
  if (dbl >= 0) {
    const left = head.slice(0, dbl) ? head.slice(0, dbl).split(':') : [];
    const right = head.slice(dbl + 2) ? head.slice(dbl + 2).split(':') : [];
    const fill = 8 - left.length - right.length;
    if (fill < 1) return null;
    groups = [...left, ...Array<string>(fill).fill('0'), ...right];
  } else {
    groups = head.split(':');
    if (groups.length !== 8) return null;
  }
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  return v;
}

export function parseIp(s: string): Ip | null {
  if (typeof s !== 'string') return null;
  if (s.includes(':')) {
    const v = parseIpv6(s);
    return v === null ? null : { family: 6, value: v };
  }
  const v = parseIpv4(s);
  return v === null ? null : { family: 4, value: v };
}

function prefixMask(f: 4 | 6, prefix: number): bigint {
  const b = bits(f);
  return prefix === 0 ? 0n : (allOnes(f) >> BigInt(b - prefix)) << BigInt(b - prefix);
}

/** `a.b.c.d`, `a.b.c.d/n`, `a.b.c.d/m.m.m.m`, `x::y`, `x::y/n`. A bare address is a host network. */
export function parseNet(s: string): Net | null {
  if (typeof s !== 'string') return null;
  const slash = s.indexOf('/');
  const ip = parseIp(slash < 0 ? s : s.slice(0, slash));
  if (!ip) return null;
  const b = bits(ip.family);
  let mask: bigint;
  let prefix: number;
  if (slash < 0) {
    prefix = b;
    mask = allOnes(ip.family);
  } else {
    const m = s.slice(slash + 1);
    if (/^\d{1,3}$/.test(m)) {
      prefix = Number(m);
      if (prefix > b) return null;
      mask = prefixMask(ip.family, prefix);
    } else if (ip.family === 4) {
      const mv = parseIpv4(m);
      if (mv === null) return null;
      mask = mv;
      prefix = mv.toString(2).split('').filter((c) => c === '1').length;
    } else return null;
  }
  return { family: ip.family, base: ip.value & mask, mask, prefix };
}

export function netContains(n: Net, ip: Ip): boolean {
  return n.family === ip.family && (ip.value & n.mask) === n.base;
}

export function familyName(f: 4 | 6): 'inet' | 'inet6' {
  return f === 4 ? 'inet' : 'inet6';
}
