// An interpreter for a parsed iptables **filter** table: traces one packet from a built-in hook chain
// to a verdict, the way the kernel walks the rules. Pure. It never guesses: a match, option or target
// it does not model throws UnsupportedRuleError naming the chain, the rule number and the token.
//
// Semantics: rules in order; all matches of a rule must hold (`!` negates the next option);
// `-j CHAIN` pushes a return point, `-g CHAIN` does not; RETURN or falling off a user chain pops (with
// nothing to pop: the hook chain's policy); ACCEPT / DROP / REJECT end the trace; MARK, NFLOG and LOG
// do not. Rule numbers are 1-based, as `iptables -L --line-numbers` prints them.

import type { Ipset, IptChain, IptRule, IptTable } from './model.js';
import { familyName, netContains, parseIp, parseNet, type Ip, type Net } from './addr.js';

export class InterpretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InterpretError';
  }
}

export class UnsupportedRuleError extends InterpretError {
  readonly chain: string;
  /** 1-based rule number in the chain. */
  readonly index: number;
  readonly token: string;
  constructor(chain: string, index: number, token: string, why: string) {
    super(`chain ${chain} rule ${index}: ${why}: ${JSON.stringify(token)}`);
    this.name = 'UnsupportedRuleError';
    this.chain = chain;
    this.index = index;
    this.token = token;
  }
}

export type CtState = 'NEW' | 'ESTABLISHED' | 'RELATED' | 'INVALID' | 'UNTRACKED' | 'SNAT' | 'DNAT';
export type AddrType =
  | 'UNSPEC' | 'UNICAST' | 'LOCAL' | 'BROADCAST' | 'ANYCAST' | 'MULTICAST'
  | 'BLACKHOLE' | 'UNREACHABLE' | 'PROHIBIT' | 'THROW' | 'NAT' | 'XRESOLVE';

export interface Packet {
  /** IPv4 or IPv6 address (both the same family). */
  src: string;
  dst: string;
  protocol: 'tcp' | 'udp' | 'sctp' | 'icmp';
  sport?: number;
  dport?: number;
  /** ICMP / ICMPv6 type, for `-m icmp --icmp-type` / `-m icmp6 --icmpv6-type`. */
  icmpType?: number;
  hook: 'INPUT' | 'FORWARD' | 'OUTPUT';
  inIface?: string;
  outIface?: string;
  /** The packet is being bridged (has a bridge output port): `--physdev-is-bridged`. */
  bridged?: boolean;
  /** Bridge ports; giving either also means the packet went through a bridge. */
  physdevIn?: string;
  physdevOut?: string;
  /** Conntrack state; NEW when absent. */
  ctstate?: CtState;
  /** Packet mark on entry; 0 when absent. */
  mark?: number;
  /** Route types of the addresses; when absent they are derived from `localAddresses` (see options). */
  srcType?: AddrType;
  dstType?: AddrType;
}

export interface InterpretOptions {
  /** The node's own addresses: these (and loopback) have addrtype LOCAL. */
  localAddresses?: string[];
  /** Also record rules that were evaluated and did not match (`matched: false`). */
  includeNonMatching?: boolean;
  /** Deepest chain nesting before the trace is declared a loop (default 64). */
  maxDepth?: number;
  /** Most rules evaluated before the trace is declared a loop (default 100000). */
  maxSteps?: number;
}

export type Verdict = 'ACCEPT' | 'DROP' | 'REJECT';

export interface TraceStep {
  chain: string;
  /** 1-based rule number; 0 for the chain policy. */
  index: number;
  /** The rule as `-A CHAIN args...` (or `:CHAIN POLICY` for a policy step). */
  line: string;
  /** ACCEPT, DROP, REJECT, RETURN, `JUMP X`, `GOTO X`, `MARK 0x...` (new mark), `NFLOG <group>`,
   *  LOG, CONTINUE (no target), `POLICY ACCEPT|DROP`, or `NO MATCH` when matched is false. */
  action: string;
  matched: boolean;
}

export interface Trace {
  verdict: Verdict;
  /** The `--reject-with` of a REJECT verdict (the default is icmp-port-unreachable). */
  rejectWith?: string;
  steps: TraceStep[];
  /** Packet mark after the trace. */
  mark: number;
  /** NFLOG targets passed, in order. */
  logged: { group: number; prefix: string }[];
}

// ---------------------------------------------------------------------------------------------
// Compiled rules

interface PacketCtx {
  p: Packet;
  src: Ip;
  dst: Ip;
  srcType: AddrType;
  dstType: AddrType;
  mark: number;
  sets: Map<string, Ipset>;
}

type MatchFn = (c: PacketCtx) => boolean;

type Target =
  | { kind: 'none' }
  | { kind: 'verdict'; verdict: Verdict; rejectWith?: string }
  | { kind: 'return' }
  | { kind: 'jump'; chain: string }
  | { kind: 'goto'; chain: string }
  | { kind: 'mark'; value: number; mask: number }
  | { kind: 'nflog'; group: number; prefix: string }
  | { kind: 'log' };

interface Compiled {
  matches: MatchFn[];
  target: Target;
}

const ADDR_TYPES = new Set<AddrType>(['UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE']);
const CT_STATES = new Set(['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED', 'SNAT', 'DNAT']);
const STATE_STATES = new Set(['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED']);
const PROTO_NUM: Record<string, number> = { tcp: 6, udp: 17, sctp: 132, icmp: 1, 'ipv6-icmp': 58, icmpv6: 58 };
const PORT_PROTOS = new Set(['tcp', 'udp', 'sctp']);

function ifaceMatches(pattern: string, name: string | undefined): boolean {
  const n = name ?? '';
  if (pattern.endsWith('+')) return n.startsWith(pattern.slice(0, -1));
  return n === pattern;
}

function packetProtoMatches(proto: string, c: PacketCtx): boolean {
  const p = c.p.protocol;
  if (proto === 'all' || proto === '0') return true;
  let num: number;
  if (/^\d+$/.test(proto)) num = Number(proto);
  else num = PROTO_NUM[proto] ?? -1;
  if (p === 'icmp') return c.src.family === 4 ? num === 1 : num === 58;
  return num === PROTO_NUM[p];
}

function u32(n: bigint | number): number {
  return Number(BigInt(n) & 0xffffffffn);
}

function parseU32(s: string): number | null {
  if (!/^(0x[0-9a-fA-F]{1,8}|\d{1,10})$/.test(s)) return null;
  const v = s.startsWith('0x') ? parseInt(s, 16) : Number(s);
  return v > 0xffffffff ? null : v;
}

function parseValueMask(s: string): { value: number; mask: number } | null {
  const [v, m, ...rest] = s.split('/');
  if (rest.length) return null;
  const value = parseU32(v ?? '');
  const mask = m === undefined ? 0xffffffff : parseU32(m);
  if (value === null || mask === null) return null;
  return { value, mask };
}

function parsePortRange(s: string): [number, number] | null {
  const m = /^(\d{0,5})(?::(\d{0,5}))?$/.exec(s);
  if (!m) return null;
  const lo = m[1] === '' ? 0 : Number(m[1]);
  const hi = m[2] === undefined ? lo : m[2] === '' ? 65535 : Number(m[2]);
  if (m[2] === undefined && m[1] === '') return null;
  if (lo > 65535 || hi > 65535) return null;
  return lo <= hi ? [lo, hi] : [hi, lo];
}

function parsePortList(s: string): [number, number][] | null {
  const out: [number, number][] = [];
  for (const part of s.split(',')) {
    const r = parsePortRange(part);
    if (!r) return null;
    out.push(r);
  }
  return out.length ? out : null;
}

function portOf(c: PacketCtx, which: 'sport' | 'dport'): number {
  const v = c.p[which];
  if (v === undefined || !Number.isInteger(v) || v < 0 || v > 65535) {
    throw new InterpretError(`packet ${c.p.protocol} ${c.p.src} -> ${c.p.dst} has no valid ${which}, needed by a port match`);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// ipset lookups

interface SetIndex {
  /** Entries as networks, with the port part (proto, lo, hi) for the `,port` types. */
  entries: { net: Net; nomatch: boolean; port?: { proto: string; lo: number; hi: number } }[];
  kind: 'ip' | 'net' | 'ip,port' | 'net,port';
}

const setIndexCache = new WeakMap<Ipset, SetIndex>();

function indexSet(set: Ipset, fail: (why: string, token: string) => never): SetIndex {
  const cached = setIndexCache.get(set);
  if (cached) return cached;
  const kinds: Record<string, SetIndex['kind']> = { 'hash:ip': 'ip', 'hash:net': 'net', 'hash:ip,port': 'ip,port', 'hash:net,port': 'net,port' };
  const kind = kinds[set.type];
  if (!kind) fail(`ipset ${set.name} has type ${set.type}, which the interpreter does not model`, set.type);
  for (let i = 0; i < set.options.length; i++) {
    const o = set.options[i]!;
    if (o === 'netmask' || o === 'bitmask') fail(`ipset ${set.name} uses ${o}, which the interpreter does not model`, o);
  }
  const entries: SetIndex['entries'] = [];
  for (const m of set.members) {
    let addr = m.entry;
    let port: SetIndex['entries'][number]['port'];
    if (kind === 'ip,port' || kind === 'net,port') {
      const comma = m.entry.indexOf(',');
      if (comma < 0) fail(`ipset ${set.name} entry has no port part`, m.entry);
      addr = m.entry.slice(0, comma);
      const pp = m.entry.slice(comma + 1);
      const colon = pp.indexOf(':');
      const proto = colon < 0 ? 'tcp' : pp.slice(0, colon);
      const range = parsePortRange((colon < 0 ? pp : pp.slice(colon + 1)).replace('-', ':'));
      if (!range || !/^[a-z0-9-]+$/.test(proto)) fail(`ipset ${set.name} entry has an unreadable port part`, m.entry);
      port = { proto, lo: range![0], hi: range![1] };
    }
    const net = parseNet(addr);
    if (!net) fail(`ipset ${set.name} entry is not an address or network`, m.entry);
    if (familyName(net!.family) !== set.family) fail(`ipset ${set.name} (${set.family}) holds an entry of the other family`, m.entry);
    if (m.nomatch && (kind === 'ip' || kind === 'ip,port')) fail(`ipset ${set.name} of type ${set.type} cannot hold nomatch entries`, m.entry);
    entries.push({ net: net!, nomatch: !!m.nomatch, ...(port ? { port } : {}) });
  }
  const idx: SetIndex = { entries, kind: kind! };
  setIndexCache.set(set, idx);
  return idx;
}

/** Kernel semantics: for net types, the most specific entry containing the address decides, and a
 *  nomatch entry means "not in the set" (unless --return-nomatch). */
function setLookup(idx: SetIndex, ip: Ip, port: { proto: string; port: number } | null, returnNomatch: boolean): boolean {
  let best: SetIndex['entries'][number] | null = null;
  for (const e of idx.entries) {
    if (!netContains(e.net, ip)) continue;
    if (e.port) {
      if (!port || e.port.proto !== port.proto || port.port < e.port.lo || port.port > e.port.hi) continue;
    }
    if (!best || e.net.prefix > best.net.prefix) best = e;
  }
  if (!best) return false;
  return best.nomatch ? returnNomatch : true;
}

// ---------------------------------------------------------------------------------------------
// Rule compiler

const MATCH_MODULES = new Set(['tcp', 'udp', 'sctp', 'icmp', 'icmp6', 'multiport', 'set', 'mark', 'conntrack', 'state', 'addrtype', 'physdev', 'comment', 'limit']);

/** ICMP type names iptables accepts (the ones kube-router-style rules use), to numbers. */
const ICMP_TYPES: Record<string, number> = { 'echo-reply': 0, 'destination-unreachable': 3, 'echo-request': 8, 'time-exceeded': 11, 'parameter-problem': 12 };
const ICMP6_TYPES: Record<string, number> = { 'destination-unreachable': 1, 'packet-too-big': 2, 'time-exceeded': 3, 'parameter-problem': 4, 'echo-request': 128, 'echo-reply': 129 };
const TARGETS_WITH_OPTIONS = new Set(['REJECT', 'MARK', 'NFLOG', 'LOG']);

function compileRule(table: IptTable, chain: IptChain, index: number, rule: IptRule): Compiled {
  const fail = (why: string, token: string): never => {
    throw new UnsupportedRuleError(chain.name, index, token, why);
  };
  const args = rule.args;
  const matches: MatchFn[] = [];
  let target: Target = { kind: 'none' };
  let targetName: string | null = null;
  let module: string | null = null;
  let protocol: string | null = null;
  let invert = false;
  let i = 0;
  const value = (opt: string): string => {
    const v = args[i + 1];
    if (v === undefined) fail('option without a value', opt);
    i++;
    return v!;
  };
  const add = (fn: MatchFn, inv: boolean): void => {
    matches.push(inv ? (c) => !fn(c) : fn);
  };
  const noInvert = (tok: string, inv: boolean): void => {
    if (inv) fail('"!" is not allowed here', tok);
  };
  // target option state
  let mark: { value: number; mask: number } | null = null;
  let nflog = { group: 0, prefix: '' };

  for (; i < args.length; i++) {
    const tok = args[i]!;
    if (tok === '!') {
      if (invert) fail('double "!"', tok);
      invert = true;
      continue;
    }
    const inv = invert;
    invert = false;

    if (targetName !== null) {
      // Options of the target.
      noInvert(tok, inv);
      switch (targetName) {
        case 'REJECT':
          if (tok === '--reject-with') {
            target = { kind: 'verdict', verdict: 'REJECT', rejectWith: value(tok) };
            continue;
          }
          break;
        case 'MARK': {
          const ops: Record<string, (v: number, m: number) => { value: number; mask: number }> = {
            '--set-xmark': (v, m) => ({ value: v, mask: m }),
            '--set-mark': (v, m) => ({ value: v, mask: u32(m | v) }),
            '--and-mark': (v) => ({ value: 0, mask: u32(~v) }),
            '--or-mark': (v) => ({ value: v, mask: v }),
            '--xor-mark': (v) => ({ value: v, mask: 0 }),
          };
          const op = ops[tok];
          if (op) {
            if (mark) fail('second mark operation', tok);
            const raw = value(tok);
            const vm = parseValueMask(raw);
            if (!vm || ((tok === '--and-mark' || tok === '--or-mark' || tok === '--xor-mark') && raw.includes('/'))) fail('invalid mark value', raw);
            mark = op(vm!.value, vm!.mask);
            continue;
          }
          break;
        }
        case 'NFLOG':
          if (tok === '--nflog-group') {
            const g = value(tok);
            if (!/^\d{1,5}$/.test(g) || Number(g) > 65535) fail('invalid NFLOG group', g);
            nflog = { ...nflog, group: Number(g) };
            continue;
          }
          if (tok === '--nflog-prefix') {
            nflog = { ...nflog, prefix: value(tok) };
            continue;
          }
          if (tok === '--nflog-range' || tok === '--nflog-size' || tok === '--nflog-threshold') {
            value(tok);
            continue;
          }
          break;
        case 'LOG':
          if (tok === '--log-prefix' || tok === '--log-level') {
            value(tok);
            continue;
          }
          if (['--log-tcp-sequence', '--log-tcp-options', '--log-ip-options', '--log-uid', '--log-macdecode'].includes(tok)) continue;
          break;
        default:
          break;
      }
      fail(`unknown option for target ${targetName}`, tok);
    }

    switch (tok) {
      case '-s': case '--source': case '--src':
      case '-d': case '--destination': case '--dst': {
        const raw = value(tok);
        const net = parseNet(raw);
        if (!net) fail('invalid address', raw);
        const isSrc = tok === '-s' || tok === '--source' || tok === '--src';
        add((c) => {
          const ip = isSrc ? c.src : c.dst;
          if (ip.family !== net!.family) throw new InterpretError(`chain ${chain.name} rule ${index}: address ${raw} and packet ${ip.family === 4 ? 'IPv4' : 'IPv6'} are different families`);
          return netContains(net!, ip);
        }, inv);
        continue;
      }
      case '-p': case '--protocol': {
        const raw = value(tok).toLowerCase();
        if (!(raw in PROTO_NUM) && raw !== 'all' && !/^\d{1,3}$/.test(raw)) fail('unknown protocol', raw);
        protocol = raw;
        add((c) => packetProtoMatches(raw, c), inv);
        continue;
      }
      case '-i': case '--in-interface':
      case '-o': case '--out-interface': {
        const raw = value(tok);
        const isIn = tok === '-i' || tok === '--in-interface';
        add((c) => ifaceMatches(raw, isIn ? c.p.inIface : c.p.outIface), inv);
        continue;
      }
      case '-m': case '--match': {
        noInvert(tok, inv);
        const name = value(tok);
        if (!MATCH_MODULES.has(name)) fail('unsupported match module', name);
        module = name;
        continue;
      }
      case '-j': case '--jump':
      case '-g': case '--goto': {
        noInvert(tok, inv);
        const name = value(tok);
        const isGoto = tok === '-g' || tok === '--goto';
        targetName = name;
        if (!isGoto && (name === 'ACCEPT' || name === 'DROP')) target = { kind: 'verdict', verdict: name };
        else if (!isGoto && name === 'REJECT') target = { kind: 'verdict', verdict: 'REJECT', rejectWith: 'icmp-port-unreachable' };
        else if (!isGoto && name === 'RETURN') target = { kind: 'return' };
        else if (!isGoto && TARGETS_WITH_OPTIONS.has(name)) target = { kind: 'none' };
        else {
          const dest = table.chains.find((c) => c.name === name);
          if (!dest) fail(isGoto ? 'goto to a chain the table does not have' : 'unsupported target', name);
          if (dest!.policy !== '-') fail('jump to a built-in chain', name);
          target = isGoto ? { kind: 'goto', chain: name } : { kind: 'jump', chain: name };
        }
        continue;
      }
      default:
        break;
    }

    if (!tok.startsWith('--')) fail('unsupported option', tok);
    // A module option. Without `-m`, `-p tcp|udp|sctp` loads that protocol's match implicitly.
    const mod = module ?? (protocol && PORT_PROTOS.has(protocol) ? protocol : null);
    if (mod === null) fail('option outside any match module', tok);
    switch (mod) {
      case 'tcp': case 'udp': case 'sctp': {
        const isD = tok === '--dport' || tok === '--destination-port';
        const isS = tok === '--sport' || tok === '--source-port';
        if (!isD && !isS) break;
        const raw = value(tok);
        const r = parsePortRange(raw);
        if (!r) fail('invalid port or range', raw);
        const proto = mod;
        add((c) => {
          if (c.p.protocol !== proto) return false;
          const port = portOf(c, isD ? 'dport' : 'sport');
          return port >= r![0] && port <= r![1];
        }, inv);
        continue;
      }
      case 'multiport': {
        const which = ({ '--dports': 'd', '--destination-ports': 'd', '--sports': 's', '--source-ports': 's', '--ports': 'b' } as Record<string, string>)[tok];
        if (!which) break;
        const raw = value(tok);
        const list = parsePortList(raw);
        if (!list) fail('invalid port list', raw);
        add((c) => {
          if (!PORT_PROTOS.has(c.p.protocol)) return false;
          const inList = (p: number): boolean => list!.some(([lo, hi]) => p >= lo && p <= hi);
          if (which === 'd') return inList(portOf(c, 'dport'));
          if (which === 's') return inList(portOf(c, 'sport'));
          return inList(portOf(c, 'sport')) || inList(portOf(c, 'dport'));
        }, inv);
        continue;
      }
      case 'set': {
        if (tok === '--match-set') {
          const name = value(tok);
          const dirsRaw = value(tok);
          const dirs = dirsRaw.split(',');
          if (dirs.length > 6 || dirs.some((d) => d !== 'src' && d !== 'dst')) fail('invalid set direction', dirsRaw);
          // --return-nomatch may follow in the same match; read ahead for it.
          let returnNomatch = false;
          for (let j = i + 1; j < args.length && args[j] !== '-m' && args[j] !== '--match' && args[j] !== '-j' && args[j] !== '-g'; j++) {
            if (args[j] === '--return-nomatch') returnNomatch = true;
          }
          add((c) => {
            const set = c.sets.get(name);
            if (!set) throw new InterpretError(`chain ${chain.name} rule ${index}: ipset ${name} was not given to the interpreter`);
            const idx = indexSet(set, (why, t) => fail(why, t));
            const ip = dirs[0] === 'src' ? c.src : c.dst;
            if (familyName(ip.family) !== set.family) {
              throw new InterpretError(`chain ${chain.name} rule ${index}: ipset ${name} is ${set.family} but the packet is ${familyName(ip.family)}`);
            }
            let port: { proto: string; port: number } | null = null;
            if (idx.kind === 'ip,port' || idx.kind === 'net,port') {
              if (!PORT_PROTOS.has(c.p.protocol)) return false;
              port = { proto: c.p.protocol, port: portOf(c, (dirs[1] ?? 'dst') === 'src' ? 'sport' : 'dport') };
            }
            return setLookup(idx, ip, port, returnNomatch);
          }, inv);
          continue;
        }
        if (tok === '--return-nomatch') {
          noInvert(tok, inv);
          continue;
        }
        if (tok === '--update-counters' || tok === '--update-subcounters') continue; // with or without "!": no effect on matching
        break;
      }
      case 'mark': {
        if (tok !== '--mark') break;
        const raw = value(tok);
        const vm = parseValueMask(raw);
        if (!vm) fail('invalid mark', raw);
        add((c) => u32(c.mark & vm!.mask) === vm!.value, inv);
        continue;
      }
      case 'conntrack':
      case 'state': {
        if (!(mod === 'conntrack' ? tok === '--ctstate' : tok === '--state')) break;
        const raw = value(tok);
        const states = raw.split(',');
        const allowed = mod === 'conntrack' ? CT_STATES : STATE_STATES;
        for (const s of states) if (!allowed.has(s)) fail('unknown conntrack state', s);
        add((c) => states.includes(c.p.ctstate ?? 'NEW'), inv);
        continue;
      }
      case 'addrtype': {
        if (tok === '--limit-iface-in' || tok === '--limit-iface-out') {
          // The packet model has one route type per address, not one per interface: no narrowing.
          noInvert(tok, inv);
          continue;
        }
        if (tok !== '--src-type' && tok !== '--dst-type') break;
        const raw = value(tok);
        const types = raw.split(',');
        for (const t of types) if (!ADDR_TYPES.has(t as AddrType)) fail('unknown address type', t);
        const isSrc = tok === '--src-type';
        add((c) => types.includes(isSrc ? c.srcType : c.dstType), inv);
        continue;
      }
      case 'physdev': {
        const hasBridgeInfo = (c: PacketCtx): boolean => !!c.p.bridged || c.p.physdevIn !== undefined || c.p.physdevOut !== undefined;
        let fn: MatchFn | null = null;
        if (tok === '--physdev-is-bridged') fn = (c) => !!c.p.bridged;
        else if (tok === '--physdev-is-in') fn = (c) => c.p.physdevIn !== undefined;
        else if (tok === '--physdev-is-out') fn = (c) => c.p.physdevOut !== undefined;
        else if (tok === '--physdev-in' || tok === '--physdev-out') {
          const raw = value(tok);
          const isIn = tok === '--physdev-in';
          fn = (c) => ifaceMatches(raw, isIn ? c.p.physdevIn : c.p.physdevOut);
        }
        if (!fn) break;
        const f = fn;
        // Kernel: a packet without bridge information fails every positive physdev option and
        // passes every negated one.
        add((c) => (hasBridgeInfo(c) ? (inv ? !f(c) : f(c)) : inv), false);
        continue;
      }
      case 'icmp':
      case 'icmp6': {
        if (tok !== '--icmp-type' && tok !== '--icmpv6-type') break;
        const raw = value(tok);
        const [typeText] = raw.split('/');
        const names = mod === 'icmp' ? ICMP_TYPES : ICMP6_TYPES;
        const type = /^\d+$/.test(typeText!) ? Number(typeText) : names[typeText!];
        if (type === undefined) fail('unknown ICMP type', raw);
        add((c) => c.p.protocol === 'icmp' && c.p.icmpType === type, inv);
        continue;
      }
      case 'comment': {
        if (tok !== '--comment') break;
        noInvert(tok, inv);
        value(tok);
        continue;
      }
      case 'limit': {
        if (tok !== '--limit' && tok !== '--limit-burst') break;
        noInvert(tok, inv);
        value(tok);
        continue; // rate limits are treated as always matching
      }
      default:
        break;
    }
    fail(`unsupported option for match ${mod}`, tok);
  }
  if (invert) fail('"!" at the end of the rule', '!');
  if (targetName === 'MARK') {
    if (!mark) fail('MARK without a mark operation', 'MARK');
    target = { kind: 'mark', ...mark! };
  } else if (targetName === 'NFLOG') target = { kind: 'nflog', ...nflog };
  else if (targetName === 'LOG') target = { kind: 'log' };
  return { matches, target };
}

// ---------------------------------------------------------------------------------------------
// Trace

const compileCache = new WeakMap<IptTable, WeakMap<IptRule, Compiled>>();

function compiled(table: IptTable, chain: IptChain, index: number, rule: IptRule): Compiled {
  let perTable = compileCache.get(table);
  if (!perTable) {
    perTable = new WeakMap();
    compileCache.set(table, perTable);
  }
  let c = perTable.get(rule);
  if (!c) {
    c = compileRule(table, chain, index, rule);
    perTable.set(rule, c);
  }
  return c;
}

function displayArg(s: string): string {
  if (/^[A-Za-z0-9_.\/:,=+@%!-]+$/.test(s)) return s;
  return `"${s.replace(/["\\']/g, (ch) => `\\${ch}`).replace(/\n/g, '\\n')}"`;
}

function ruleLine(chain: string, rule: IptRule): string {
  return `-A ${chain}${rule.args.map((a) => ` ${displayArg(a)}`).join('')}`;
}

function addrTypeOf(ip: Ip, local: Ip[]): AddrType {
  if (local.some((l) => l.family === ip.family && l.value === ip.value)) return 'LOCAL';
  if (ip.family === 4) {
    if (ip.value >> 24n === 127n) return 'LOCAL';
    if (ip.value === 0xffffffffn) return 'BROADCAST';
    if (ip.value >> 28n === 0xen) return 'MULTICAST';
    return 'UNICAST';
  }
  if (ip.value === 1n) return 'LOCAL';
  if (ip.value >> 120n === 0xffn) return 'MULTICAST';
  return 'UNICAST';
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** Traces `packet` through the filter table from its hook chain. */
export function interpret(table: IptTable, sets: Map<string, Ipset> | Ipset[], packet: Packet, opts: InterpretOptions = {}): Trace {
  const src = parseIp(packet.src);
  const dst = parseIp(packet.dst);
  if (!src) throw new InterpretError(`packet src ${JSON.stringify(packet.src)} is not an IP address`);
  if (!dst) throw new InterpretError(`packet dst ${JSON.stringify(packet.dst)} is not an IP address`);
  if (src.family !== dst.family) throw new InterpretError(`packet src ${packet.src} and dst ${packet.dst} are different families`);
  if (!['tcp', 'udp', 'sctp', 'icmp'].includes(packet.protocol)) throw new InterpretError(`packet protocol ${JSON.stringify(packet.protocol)} is not tcp, udp, sctp or icmp`);
  const local: Ip[] = [];
  for (const a of opts.localAddresses ?? []) {
    const ip = parseIp(a);
    if (!ip) throw new InterpretError(`localAddresses: ${JSON.stringify(a)} is not an IP address`);
    local.push(ip);
  }
  const setMap = sets instanceof Map ? sets : new Map(sets.map((s) => [s.name, s] as const));
  const startMark = packet.mark ?? 0;
  if (!Number.isInteger(startMark) || startMark < 0 || startMark > 0xffffffff) throw new InterpretError(`packet mark ${startMark} is not a 32-bit unsigned integer`);
  const ctx: PacketCtx = {
    p: packet,
    src,
    dst,
    srcType: packet.srcType ?? addrTypeOf(src, local),
    dstType: packet.dstType ?? addrTypeOf(dst, local),
    mark: startMark,
    sets: setMap,
  };
  const chainByName = new Map(table.chains.map((c) => [c.name, c] as const));
  const hook = chainByName.get(packet.hook);
  if (!hook) throw new InterpretError(`table ${table.name} has no ${packet.hook} chain`);
  if (hook.policy !== 'ACCEPT' && hook.policy !== 'DROP') throw new InterpretError(`chain ${hook.name} has policy ${hook.policy}; a built-in chain needs ACCEPT or DROP`);
  const maxDepth = opts.maxDepth ?? 64;
  const maxSteps = opts.maxSteps ?? 100000;
  const steps: TraceStep[] = [];
  const logged: Trace['logged'] = [];
  const stack: { chain: IptChain; next: number }[] = [];
  let chain = hook;
  let pos = 0;
  let evaluated = 0;
  const finish = (verdict: Verdict, rejectWith?: string): Trace => ({ verdict, ...(rejectWith ? { rejectWith } : {}), steps, mark: ctx.mark, logged });

  for (;;) {
    if (pos >= chain.rules.length) {
      // Fell off the end: a user chain returns, the hook chain applies its policy.
      const back = stack.pop();
      if (back) {
        chain = back.chain;
        pos = back.next;
        continue;
      }
      steps.push({ chain: hook.name, index: 0, line: `:${hook.name} ${hook.policy}`, action: `POLICY ${hook.policy}`, matched: true });
      return finish(hook.policy as Verdict);
    }
    if (++evaluated > maxSteps) throw new InterpretError(`more than ${maxSteps} rules evaluated: the chains loop (last in chain ${chain.name})`);
    const rule = chain.rules[pos]!;
    const index = pos + 1;
    const c = compiled(table, chain, index, rule);
    let ok = true;
    for (const m of c.matches) {
      if (!m(ctx)) {
        ok = false;
        break;
      }
    }
    if (!ok) {
      if (opts.includeNonMatching) steps.push({ chain: chain.name, index, line: ruleLine(chain.name, rule), action: 'NO MATCH', matched: false });
      pos++;
      continue;
    }
    const step = (action: string): void => {
      steps.push({ chain: chain.name, index, line: ruleLine(chain.name, rule), action, matched: true });
    };
    const t = c.target;
    switch (t.kind) {
      case 'none':
        step('CONTINUE');
        pos++;
        break;
      case 'verdict':
        step(t.verdict);
        return finish(t.verdict, t.rejectWith);
      case 'return': {
        step('RETURN');
        const back = stack.pop();
        if (back) {
          chain = back.chain;
          pos = back.next;
        } else {
          steps.push({ chain: hook.name, index: 0, line: `:${hook.name} ${hook.policy}`, action: `POLICY ${hook.policy}`, matched: true });
          return finish(hook.policy as Verdict);
        }
        break;
      }
      case 'jump':
      case 'goto': {
        step(`${t.kind === 'jump' ? 'JUMP' : 'GOTO'} ${t.chain}`);
        const dest = chainByName.get(t.chain)!;
        if (t.kind === 'jump') {
          stack.push({ chain, next: pos + 1 });
          if (stack.length > maxDepth) throw new InterpretError(`chain nesting deeper than ${maxDepth} at chain ${chain.name} rule ${index} (jump loop?)`);
        }
        chain = dest;
        pos = 0;
        break;
      }
      case 'mark':
        ctx.mark = u32((BigInt(ctx.mark) & ~BigInt(t.mask)) ^ BigInt(t.value));
        step(`MARK ${hex(ctx.mark)}`);
        pos++;
        break;
      case 'nflog':
        logged.push({ group: t.group, prefix: t.prefix });
        step(`NFLOG ${t.group}`);
        pos++;
        break;
      case 'log':
        step('LOG');
        pos++;
        break;
    }
  }
}
