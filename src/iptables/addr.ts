// Addresses and networks as the interpreter needs them (family 4|6, masks), built on the project's
// one IP parser (net/ip.ts). Pure; returns null on bad text.
import { parseIP, prefixMask } from '../net/ip.js';

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

export function parseIp(s: string): Ip | null {
  const ip = typeof s === 'string' ? parseIP(s) : undefined;
  return ip ? { family: ip.family === 'ipv4' ? 4 : 6, value: ip.value } : null;
}

/** `a.b.c.d`, `a.b.c.d/n`, `a.b.c.d/m.m.m.m`, `x::y`, `x::y/n`. A bare address is a host network. */
export function parseNet(s: string): Net | null {
  if (typeof s !== 'string') return null;
  const slash = s.indexOf('/');
  const ip = parseIp(slash < 0 ? s : s.slice(0, slash));
  if (!ip) return null;
  const fam = ip.family === 4 ? 'ipv4' : 'ipv6';
  let mask: bigint;
  let prefix: number;
  if (slash < 0) {
    prefix = bits(ip.family);
    mask = prefixMask(fam, prefix);
  } else {
    const m = s.slice(slash + 1);
    if (/^\d{1,3}$/.test(m)) {
      prefix = Number(m);
      if (prefix > bits(ip.family)) return null;
      mask = prefixMask(fam, prefix);
    } else if (ip.family === 4) {
      const mv = parseIp(m);
      if (!mv || mv.family !== 4) return null;
      mask = mv.value;
      prefix = mv.value.toString(2).split('').filter((c) => c === '1').length;
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
