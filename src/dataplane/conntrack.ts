// Strict mode (`--netpol-strict`): after a change, established connections that the new rules would
// not admit are removed from conntrack, so their next packet is judged as a new connection and
// refused. The kernel keeps accepting an established flow otherwise (RELATED,ESTABLISHED → ACCEPT),
// until it ends.
//
// With Debian's `conntrack` tool (conntrack-tools), no netlink code of our own:
//   conntrack -L -f ipv4|ipv6                         one listing per family and change
//   conntrack -D -f F -p P -s SRC -d DST --dport DPORT --reply-src RSRC --reply-port-src RPORT
//                                                     one deletion per (source, destination, port) the
//                                                     new rules deny
// Scope: only flows with a pod podwall manages on this node at either end (its IP in `managed`) are
// ever considered; every deletion names both addresses, the protocol and both ports of the tuple as
// the filter table saw it (after DNAT: the reply source and port), so it can never match another
// pod's flows, let alone flush the table. Which flows the new rules deny is not decided here: the
// caller passes a judge (the simulator on the node's Plan), so policy semantics stay in policy/.
import type { Family, Protocol } from '../cluster/model.js';
import { makeRunner, onPath, type Runner } from './exec.js';

export interface ConntrackTuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

export interface ConntrackFlow {
  family: Family;
  protocol: Protocol;
  /** TCP state (ESTABLISHED, ...); absent for UDP and SCTP without one. */
  state?: string;
  orig: ConntrackTuple;
  reply: ConntrackTuple;
}

const PROTOCOLS: Record<string, Protocol> = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP' };

/**
 * Parses `conntrack -L` output (default format). Lines of other protocols (icmp, ...) and lines it
 * cannot read are skipped: strict mode only ever removes what it understood.
 */
export function parseConntrackList(text: string, family: Family): ConntrackFlow[] {
  const out: ConntrackFlow[] = [];
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    // `-o extended` prefixes the family: accept it too.
    if (words[0] === 'ipv4' || words[0] === 'ipv6') words.splice(0, 2);
    const protocol = PROTOCOLS[words[0] ?? ''];
    if (!protocol) continue;
    const tuples: Partial<ConntrackTuple>[] = [];
    let state: string | undefined;
    for (const w of words.slice(3)) {
      const eq = w.indexOf('=');
      if (eq < 0) {
        if (/^[A-Z_]+$/.test(w) && tuples.length === 0) state = w;
        continue;
      }
      const k = w.slice(0, eq);
      const v = w.slice(eq + 1);
      if (k === 'src') tuples.push({ src: v });
      const t = tuples[tuples.length - 1];
      if (!t) continue;
      if (k === 'dst') t.dst = v;
      else if (k === 'sport') t.sport = Number(v);
      else if (k === 'dport') t.dport = Number(v);
    }
    const [o, r] = tuples;
    const ok = (t: Partial<ConntrackTuple> | undefined): t is ConntrackTuple =>
      !!t && typeof t.src === 'string' && typeof t.dst === 'string' && Number.isInteger(t.sport) && Number.isInteger(t.dport) && t.sport! >= 0 && t.sport! <= 65535 && t.dport! >= 0 && t.dport! <= 65535;
    if (!ok(o) || !ok(r)) continue;
    out.push({ family, protocol, ...(state ? { state } : {}), orig: o, reply: r });
  }
  return out;
}

/** The packet the filter table judged for this flow: the original source, the destination after DNAT. */
export function judgedPacket(f: ConntrackFlow): { src: string; dst: string; protocol: Protocol; port: number } {
  return { src: f.orig.src, dst: f.reply.src, protocol: f.protocol, port: f.reply.sport };
}

/** `conntrack -D` arguments removing exactly the flows of this (source, destination, port) tuple. */
export function deleteArgs(f: ConntrackFlow): string[] {
  return [
    '-D',
    '-f', f.family,
    '-p', f.protocol.toLowerCase(),
    '-s', f.orig.src,
    '-d', f.orig.dst,
    '--dport', String(f.orig.dport),
    '--reply-src', f.reply.src,
    '--reply-port-src', String(f.reply.sport),
  ];
}

export interface StrictLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface CutReport {
  /** Flows listed, flows with a managed pod at either end, flows the new rules deny, deletions run. */
  listed: number;
  checked: number;
  denied: number;
  deletions: number;
  /** Set when nothing could be done (tool missing or failing). */
  skipped?: string;
}

export interface CutOptions {
  families: Family[];
  /** IPs of the local pods podwall manages (isolated, with a pod chain): the only flows considered. */
  managed: ReadonlySet<string>;
  /** Whether the new rules admit this flow as a new connection; null: unknown (never cut). */
  admits: (flow: ConntrackFlow) => boolean | null;
}

export class ConntrackCutter {
  private readonly run: Runner;
  private readonly exists: (name: string) => boolean;
  private reportedMissing = false;
  private lastFailure: string | undefined;

  constructor(
    private readonly log: StrictLogger,
    opts: { netns?: string; runner?: Runner; exists?: (name: string) => boolean } = {},
  ) {
    this.run = opts.runner ?? makeRunner(opts.netns);
    this.exists = opts.exists ?? onPath;
  }

  /** Lists the flows, asks the judge, deletes the denied ones. Never throws: strict mode is best effort. */
  async cut(o: CutOptions): Promise<CutReport> {
    const rep: CutReport = { listed: 0, checked: 0, denied: 0, deletions: 0 };
    const missing = (): CutReport => {
      if (!this.reportedMissing) {
        this.reportedMissing = true;
        this.log.warn({ tool: 'conntrack', debianPackage: 'conntrack' }, '--netpol-strict: the conntrack tool is not installed (Debian package: conntrack); established connections are not cut, new connections are enforced as usual');
      }
      return { ...rep, skipped: 'conntrack tool not installed' };
    };
    if (!this.exists('conntrack')) return missing();
    if (o.managed.size === 0) return rep;
    const doomed = new Map<string, ConntrackFlow>();
    for (const family of o.families) {
      let text: string;
      try {
        const r = await this.run('conntrack', ['-L', '-f', family]);
        if (r.code !== 0) throw new Error(r.stderr.trim().split('\n')[0] || `exit ${r.code}`);
        text = r.stdout;
      } catch (e) {
        // Not found where the runner looked (a PATH without it): the same as not installed.
        if (/ENOENT|not found|No such file/i.test((e as Error).message)) return missing();
        return { ...rep, skipped: this.failed(`conntrack -L -f ${family}: ${(e as Error).message}`) };
      }
      for (const f of parseConntrackList(text, family)) {
        rep.listed++;
        const p = judgedPacket(f);
        if (!o.managed.has(p.src) && !o.managed.has(p.dst)) continue;
        rep.checked++;
        if (o.admits(f) !== false) continue;
        rep.denied++;
        doomed.set(deleteArgs(f).join(' '), f);
      }
    }
    for (const f of doomed.values()) {
      const r = await this.run('conntrack', deleteArgs(f)).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
      rep.deletions++;
      // Exit 1 with "0 flow entries have been deleted": the flow ended meanwhile.
      if (r.code !== 0 && !/0 flow entries/.test(r.stderr)) this.failed(`conntrack ${deleteArgs(f).join(' ')}: ${r.stderr.trim().split('\n')[0] ?? ''}`);
    }
    if (rep.denied > 0) this.log.info({ ...rep }, '--netpol-strict: established connections the new rules deny were removed from conntrack');
    this.lastFailure = undefined;
    return rep;
  }

  /** Logs a failure once until it changes (a failing tool is not repeated on every change). */
  private failed(msg: string): string {
    if (msg !== this.lastFailure) this.log.warn({ err: msg }, '--netpol-strict: could not cut established connections; new connections are enforced as usual');
    this.lastFailure = msg;
    return msg;
  }
}
