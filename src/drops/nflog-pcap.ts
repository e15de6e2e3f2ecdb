// Reads the pcap stream `tcpdump -i nflog:GROUP -w -` writes: a pcap file of DLT_NFLOG (239) records,
// each an NFLOG message's TLVs (prefix, hook, interfaces, the packet). Pure: bytes in, entries out;
// the process that produces the bytes lives in consumer.ts. No netlink of our own.
//
// Formats (libpcap's LINKTYPE_NFLOG and the pcap file format):
//   file header  24 bytes: magic (its byte order is the writer's; 0xa1b2c3d4 µs, 0xa1b23c4d ns),
//                version, thiszone, sigfigs, snaplen, linktype (u32)
//   record       16 bytes: ts_sec, ts_frac, incl_len, orig_len; then incl_len bytes
//   NFLOG        family u8 (2 AF_INET, 10 AF_INET6), version u8, resource id u16 (big endian: the group)
//   TLV          length u16 and type u16 in the writer's byte order (the capture host's), length
//                counts the 4-byte header, value padded to 4 bytes; values are netlink attributes
//                (network byte order).
import { formatIP, type Family } from '../net/ip.js';

export const LINKTYPE_NFLOG = 239;

/** NFULA_* attribute types (linux/netfilter/nfnetlink_log.h). */
const NFULA = {
  PACKET_HDR: 1,
  MARK: 2,
  TIMESTAMP: 3,
  IFINDEX_INDEV: 4,
  IFINDEX_OUTDEV: 5,
  IFINDEX_PHYSINDEV: 6,
  IFINDEX_PHYSOUTDEV: 7,
  PAYLOAD: 9,
  PREFIX: 10,
} as const;

/** Netfilter hooks as NFULA_PACKET_HDR carries them. */
export const HOOKS = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'] as const;
export type Hook = (typeof HOOKS)[number];

export interface DecodedPacket {
  family: Family;
  src: string;
  dst: string;
  /** TCP, UDP, SCTP, ICMP, ICMPv6, or the IP protocol number for others. */
  protocol: 'TCP' | 'UDP' | 'SCTP' | 'ICMP' | 'ICMPv6' | number;
  sport?: number;
  dport?: number;
  /** TCP flags as letters (S, A, F, R, P, U), e.g. `S` for a connection attempt. */
  tcpFlags?: string;
  icmpType?: number;
  icmpCode?: number;
  /** A non-first fragment (no transport header to read). */
  fragment?: boolean;
}

export interface NflogEntry {
  /** Capture time (the pcap record's timestamp), ms since the epoch. */
  time: number;
  group: number;
  hook?: Hook;
  prefix: string;
  mark?: number;
  indev?: number;
  outdev?: number;
  physindev?: number;
  physoutdev?: number;
  /** Undefined when the payload is missing or cannot be read as IPv4/IPv6. */
  packet?: DecodedPacket;
}

export class PcapError extends Error {}

const TCP_FLAGS: [number, string][] = [
  [0x02, 'S'],
  [0x10, 'A'],
  [0x01, 'F'],
  [0x04, 'R'],
  [0x08, 'P'],
  [0x20, 'U'],
];

function bytesToIP(family: Family, b: Buffer): string {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return formatIP(family, v);
}

function transport(proto: number, b: Buffer, fragment: boolean, family: Family): Omit<DecodedPacket, 'family' | 'src' | 'dst'> {
  const name = proto === 6 ? 'TCP' : proto === 17 ? 'UDP' : proto === 132 ? 'SCTP' : proto === 1 && family === 'ipv4' ? 'ICMP' : proto === 58 && family === 'ipv6' ? 'ICMPv6' : proto;
  const out: Omit<DecodedPacket, 'family' | 'src' | 'dst'> = { protocol: name };
  if (fragment) {
    out.fragment = true;
    return out;
  }
  if ((name === 'TCP' || name === 'UDP' || name === 'SCTP') && b.length >= 4) {
    out.sport = b.readUInt16BE(0);
    out.dport = b.readUInt16BE(2);
    if (name === 'TCP' && b.length >= 14) {
      const f = b[13]!;
      out.tcpFlags = TCP_FLAGS.filter(([bit]) => f & bit)
        .map(([, l]) => l)
        .join('');
    }
  } else if ((name === 'ICMP' || name === 'ICMPv6') && b.length >= 2) {
    out.icmpType = b[0]!;
    out.icmpCode = b[1]!;
  }
  return out;
}

/** IPv6 extension headers that can precede the transport header. */
const V6_EXT = new Set([0, 43, 60, 51, 44]);

/** Decodes an IPv4 or IPv6 packet's addresses and transport ports; undefined when it is neither. */
export function decodeIPPacket(b: Buffer): DecodedPacket | undefined {
  if (b.length < 1) return undefined;
  const version = b[0]! >> 4;
  if (version === 4) {
    const ihl = (b[0]! & 0x0f) * 4;
    if (ihl < 20 || b.length < ihl) return undefined;
    const proto = b[9]!;
    const fragOffset = b.readUInt16BE(6) & 0x1fff;
    return { family: 'ipv4', src: bytesToIP('ipv4', b.subarray(12, 16)), dst: bytesToIP('ipv4', b.subarray(16, 20)), ...transport(proto, b.subarray(ihl), fragOffset !== 0, 'ipv4') };
  }
  if (version === 6) {
    if (b.length < 40) return undefined;
    let next = b[6]!;
    let off = 40;
    let fragment = false;
    for (let hops = 0; V6_EXT.has(next) && hops < 8; hops++) {
      if (b.length < off + 8) return undefined;
      const nh = b[off]!;
      if (next === 44) {
        fragment = (b.readUInt16BE(off + 2) & 0xfff8) !== 0;
        off += 8;
      } else if (next === 51) off += (b[off + 1]! + 2) * 4;
      else off += (b[off + 1]! + 1) * 8;
      next = nh;
    }
    return { family: 'ipv6', src: bytesToIP('ipv6', b.subarray(8, 24)), dst: bytesToIP('ipv6', b.subarray(24, 40)), ...transport(next, b.subarray(Math.min(off, b.length)), fragment, 'ipv6') };
  }
  return undefined;
}

/** Decodes one DLT_NFLOG record (without the pcap record header). */
export function decodeNflog(rec: Buffer, time: number, littleEndian: boolean): NflogEntry | undefined {
  if (rec.length < 4) return undefined;
  const group = rec.readUInt16BE(2);
  const entry: NflogEntry = { time, group, prefix: '' };
  let off = 4;
  while (off + 4 <= rec.length) {
    const len = littleEndian ? rec.readUInt16LE(off) : rec.readUInt16BE(off);
    const type = (littleEndian ? rec.readUInt16LE(off + 2) : rec.readUInt16BE(off + 2)) & 0x7fff;
    if (len < 4) break;
    // A record cut by the snapshot length: only the payload (last) may be read in part.
    if (off + len > rec.length && type !== NFULA.PAYLOAD) break;
    const v = rec.subarray(off + 4, Math.min(off + len, rec.length));
    switch (type) {
      case NFULA.PACKET_HDR:
        if (v.length >= 3 && v[2]! < HOOKS.length) entry.hook = HOOKS[v[2]!];
        break;
      case NFULA.TIMESTAMP:
        // The kernel's time of the packet (sec, usec as u64): better than when the reader got it.
        if (v.length >= 16) {
          const ms = Number(v.readBigUInt64BE(0)) * 1000 + Number(v.readBigUInt64BE(8)) / 1000;
          if (ms > 0) entry.time = ms;
        }
        break;
      case NFULA.MARK:
        if (v.length >= 4) entry.mark = v.readUInt32BE(0);
        break;
      case NFULA.IFINDEX_INDEV:
        if (v.length >= 4) entry.indev = v.readUInt32BE(0);
        break;
      case NFULA.IFINDEX_OUTDEV:
        if (v.length >= 4) entry.outdev = v.readUInt32BE(0);
        break;
      case NFULA.IFINDEX_PHYSINDEV:
        if (v.length >= 4) entry.physindev = v.readUInt32BE(0);
        break;
      case NFULA.IFINDEX_PHYSOUTDEV:
        if (v.length >= 4) entry.physoutdev = v.readUInt32BE(0);
        break;
      case NFULA.PREFIX: {
        const nul = v.indexOf(0);
        entry.prefix = v.subarray(0, nul < 0 ? v.length : nul).toString('latin1');
        break;
      }
      case NFULA.PAYLOAD: {
        const p = decodeIPPacket(v);
        if (p) entry.packet = p;
        break;
      }
      default:
        break;
    }
    off += (len + 3) & ~3;
  }
  return entry;
}

/**
 * Incremental pcap reader: feed it chunks as they arrive, get whole NFLOG entries back. Throws
 * PcapError when the stream is not a pcap of NFLOG records.
 */
export class NflogPcapReader {
  private buf: Buffer = Buffer.alloc(0);
  private header: { littleEndian: boolean; nanos: boolean } | undefined;

  push(chunk: Buffer): NflogEntry[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: NflogEntry[] = [];
    if (!this.header) {
      if (this.buf.length < 24) return out;
      const be = this.buf.readUInt32BE(0);
      const le = this.buf.readUInt32LE(0);
      let h: { littleEndian: boolean; nanos: boolean } | undefined;
      if (le === 0xa1b2c3d4) h = { littleEndian: true, nanos: false };
      else if (le === 0xa1b23c4d) h = { littleEndian: true, nanos: true };
      else if (be === 0xa1b2c3d4) h = { littleEndian: false, nanos: false };
      else if (be === 0xa1b23c4d) h = { littleEndian: false, nanos: true };
      if (!h) throw new PcapError(`not a pcap stream (magic 0x${be.toString(16).padStart(8, '0')})`);
      const linktype = (h.littleEndian ? this.buf.readUInt32LE(20) : this.buf.readUInt32BE(20)) & 0x0fffffff;
      if (linktype !== LINKTYPE_NFLOG) throw new PcapError(`pcap link type ${linktype} is not NFLOG (${LINKTYPE_NFLOG})`);
      this.header = h;
      this.buf = this.buf.subarray(24);
    }
    const { littleEndian, nanos } = this.header;
    let off = 0;
    while (this.buf.length - off >= 16) {
      const u32 = (o: number) => (littleEndian ? this.buf.readUInt32LE(o) : this.buf.readUInt32BE(o));
      const sec = u32(off);
      const frac = u32(off + 4);
      const incl = u32(off + 8);
      if (incl > 16 * 1024 * 1024) throw new PcapError(`pcap record of ${incl} bytes: the stream is corrupt`);
      if (this.buf.length - off - 16 < incl) break;
      const rec = this.buf.subarray(off + 16, off + 16 + incl);
      const time = sec * 1000 + (nanos ? frac / 1e6 : frac / 1e3);
      const e = decodeNflog(rec, time, littleEndian);
      if (e) out.push(e);
      off += 16 + incl;
    }
    // Keep only the unread tail (a copy, so the consumed chunks can be freed).
    this.buf = off === 0 ? this.buf : Buffer.from(this.buf.subarray(off));
    return out;
  }

  /** Bytes received and not yet part of a whole record. */
  pending(): number {
    return this.buf.length;
  }
}
