// The pcap/NFLOG reader on a real capture (`tcpdump -i nflog:100 -w -` on this machine's kernel) and on
// synthetic records for what a capture here does not produce (big-endian writers, nanosecond files,
// fragments, IPv6 extension headers, corrupt streams).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NflogPcapReader, PcapError, decodeIPPacket, decodeNflog, LINKTYPE_NFLOG } from '../../src/drops/nflog-pcap.js';

const FIXTURE = readFileSync(fileURLToPath(new URL('../../../test/fixtures/nflog/three.pcap', import.meta.url)));

test('a real capture: prefix, hook, interfaces and the packet of every record', (t) => {
  const entries = new NflogPcapReader().push(FIXTURE);
  t.is(entries.length, 3);
  const [a, b, c] = entries;
  t.is(a!.group, 100);
  t.is(a!.prefix, 'podwall/1 deny in ABCDEFGHIJKLMNOP y/b');
  t.is(a!.hook, 'OUTPUT');
  t.like(a!.packet, { family: 'ipv4', src: '10.244.1.5', dst: '10.244.1.5', protocol: 'TCP', dport: 81, tcpFlags: 'S' });
  t.true(a!.time > Date.UTC(2024, 0, 1));
  t.is(b!.prefix, 'podwall/1 audit out QRSTUVWXYZ234567 x/a');
  t.like(b!.packet, { protocol: 'UDP', sport: 40000, dport: 53 });
  t.is(c!.prefix, 'podwall/1 unprogrammed in - fd00::/64');
  t.like(c!.packet, { family: 'ipv6', src: 'fd00::5', dst: 'fd00::5', protocol: 'TCP', dport: 82, tcpFlags: 'S' });
  t.true(b!.time >= a!.time && c!.time >= b!.time);
});

test('chunks of any size give the same entries', (t) => {
  const whole = new NflogPcapReader().push(FIXTURE);
  for (const size of [1, 3, 17, 24, 100]) {
    const r = new NflogPcapReader();
    const got = [];
    for (let i = 0; i < FIXTURE.length; i += size) got.push(...r.push(FIXTURE.subarray(i, i + size)));
    t.deepEqual(got, whole, `chunk ${size}`);
    t.is(r.pending(), 0);
  }
});

function tlv(type: number, value: Buffer, le: boolean): Buffer {
  const len = 4 + value.length;
  const h = Buffer.alloc(4);
  if (le) {
    h.writeUInt16LE(len, 0);
    h.writeUInt16LE(type, 2);
  } else {
    h.writeUInt16BE(len, 0);
    h.writeUInt16BE(type, 2);
  }
  return Buffer.concat([h, value, Buffer.alloc((4 - (len % 4)) % 4)]);
}

function pcap(records: Buffer[], o: { le: boolean; nanos?: boolean; linktype?: number }): Buffer {
  const w32 = (b: Buffer, v: number, off: number) => (o.le ? b.writeUInt32LE(v, off) : b.writeUInt32BE(v, off));
  const head = Buffer.alloc(24);
  w32(head, o.nanos ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  w32(head, o.linktype ?? LINKTYPE_NFLOG, 20);
  const parts: Buffer[] = [head];
  records.forEach((r, i) => {
    const rh = Buffer.alloc(16);
    w32(rh, 1_700_000_000 + i, 0);
    w32(rh, o.nanos ? 500_000_000 : 500_000, 4);
    w32(rh, r.length, 8);
    w32(rh, r.length, 12);
    parts.push(rh, r);
  });
  return Buffer.concat(parts);
}

const ipv4Udp = Buffer.from('45000020000040004011000a0a0001050a00020700350035000c0000', 'hex');

function record(le: boolean, payload: Buffer, prefix = 'p'): Buffer {
  const hdr = Buffer.from([0x08, 0x00, 2, 0]); // hw_protocol IPv4, hook FORWARD
  const dev = Buffer.alloc(4);
  dev.writeUInt32BE(7);
  return Buffer.concat([Buffer.from([2, 0, 0, 100]), tlv(1, hdr, le), tlv(10, Buffer.from(`${prefix}\0`), le), tlv(6, dev, le), tlv(9, payload, le)]);
}

test('big-endian and nanosecond writers', (t) => {
  for (const le of [true, false]) {
    for (const nanos of [false, true]) {
      const [e] = new NflogPcapReader().push(pcap([record(le, ipv4Udp, 'x y')], { le, nanos }));
      t.is(e!.prefix, 'x y');
      t.is(e!.hook, 'FORWARD');
      t.is(e!.physindev, 7);
      t.is(e!.time, 1_700_000_000_500);
      t.like(e!.packet, { src: '10.0.1.5', dst: '10.0.2.7', protocol: 'UDP', sport: 53, dport: 53 });
    }
  }
});

test('not a pcap, or not NFLOG: a clear error', (t) => {
  t.throws(() => new NflogPcapReader().push(Buffer.from('tcpdump: nflog:100: No such device exists\n')), { instanceOf: PcapError, message: /not a pcap stream/ });
  t.throws(() => new NflogPcapReader().push(pcap([], { le: true, linktype: 1 })), { instanceOf: PcapError, message: /link type 1 is not NFLOG/ });
});

test('truncated TLVs and payloads never throw', (t) => {
  const r = record(true, ipv4Udp);
  for (let n = 0; n <= r.length; n++) t.notThrows(() => decodeNflog(r.subarray(0, n), 0, true));
  for (let n = 0; n <= ipv4Udp.length; n++) t.notThrows(() => decodeIPPacket(ipv4Udp.subarray(0, n)));
});

test('IPv4 fragments, ICMP, other protocols', (t) => {
  const frag = Buffer.from(ipv4Udp);
  frag.writeUInt16BE(0x0010, 6); // offset 16 * 8
  t.like(decodeIPPacket(frag), { protocol: 'UDP', fragment: true });
  t.is(decodeIPPacket(frag)!.dport, undefined);
  const icmp = Buffer.from(ipv4Udp);
  icmp[9] = 1;
  icmp[20] = 8;
  icmp[21] = 0;
  t.like(decodeIPPacket(icmp), { protocol: 'ICMP', icmpType: 8, icmpCode: 0 });
  const gre = Buffer.from(ipv4Udp);
  gre[9] = 47;
  t.like(decodeIPPacket(gre), { protocol: 47 });
  t.is(decodeIPPacket(Buffer.from([0x15, 0])), undefined);
});

test('IPv6 through extension headers to the transport header', (t) => {
  const base = Buffer.alloc(40);
  base[0] = 0x60;
  base[6] = 0; // hop-by-hop
  base[23] = 1; // src ::1
  base[24] = 0xfd; // dst fd00::2
  base[39] = 2;
  const hbh = Buffer.from([44, 0, 0, 0, 0, 0, 0, 0]); // next: fragment, length 0 (8 bytes)
  const frag = Buffer.from([6, 0, 0, 0, 0, 0, 0, 1]); // next: TCP, offset 0 (first fragment)
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(33000, 0);
  tcp.writeUInt16BE(443, 2);
  tcp[13] = 0x02;
  t.like(decodeIPPacket(Buffer.concat([base, hbh, frag, tcp])), { family: 'ipv6', src: '::1', dst: 'fd00::2', protocol: 'TCP', sport: 33000, dport: 443, tcpFlags: 'S' });
  const later = Buffer.from(frag);
  later.writeUInt16BE(0x0100, 2);
  t.like(decodeIPPacket(Buffer.concat([base, hbh, later, tcp])), { protocol: 'TCP', fragment: true });
});
