// `podwall drops` as a module: NFLOG entries of one or more network namespaces (a node, or every node
// of a lab) joined with the Plan, filtered, plus what the rate limit kept out of the log (from the
// kernel's counters, dataplane/counters.ts). The command files only parse flags and print.
import { LRUCache } from 'lru-cache';
import type { Family } from '../cluster/model.js';
import { makeRunner, onPath, type Runner } from '../dataplane/exec.js';
import { readLogCounters, saveBinaries, CounterReadError, type LogCounter } from '../dataplane/counters.js';
import { describeLimit, type LogLimit, type DropKind } from '../dataplane/nflog.js';
import type { Plan } from '../policy/plan.js';
import { clusterRuleByRef, joinEntry, podByChainRef, type DropRecord } from './join.js';
import { requireConsumer, startCapture, type Capture, type CaptureOptions } from './consumer.js';
import { NflogPcapReader, type NflogEntry } from './nflog-pcap.js';

export interface DropsFilter {
  /** Entries involving this namespace (either end). */
  namespace?: string;
  /** Entries involving this pod (`ns/name`, either end). */
  pod?: string;
  /** Entries whose verdict involves this policy (`ns/name`). */
  policy?: string;
  /** Entries logged at or after this time (ms since the epoch). */
  since?: number;
  /** true: only "would deny" entries of audited policies; false: only denials. */
  audit: boolean;
}

export function matches(r: DropRecord, f: DropsFilter): boolean {
  if (f.audit !== (r.kind === 'audit')) return false;
  if (f.namespace !== undefined && !r.namespaces.includes(f.namespace)) return false;
  if (f.pod !== undefined && r.src.pod !== f.pod && r.dst.pod !== f.pod && r.pod !== f.pod) return false;
  if (f.policy !== undefined && !r.policies.includes(f.policy)) return false;
  if (f.since !== undefined && r.time < f.since) return false;
  return true;
}

/** Denials the rate limit kept out of the log, from the kernel's counters. */
export interface SuppressedRecord {
  time: number;
  node?: string;
  kind: DropKind;
  direction: 'ingress' | 'egress';
  /** The pod whose rules counted them, when the Plan knows it. */
  pod?: string;
  namespaces: string[];
  policies: string[];
  /** How many were not logged since the previous reading. */
  count: number;
  /** Length of that window, ms. */
  windowMs: number;
  /** The limit in effect, as the rules say. */
  limit?: string;
}

/** The current Plan, recompiled only when the cluster changed (and not more often than `minAgeMs`). */
export interface PlanSource {
  plan(opts?: { fresh?: boolean }): Plan;
}

export interface DropsSource {
  /** Label for the records (node name). */
  node?: string;
  /** Network namespace to read in (lab nodes); absent: this one. */
  netns?: string;
}

export interface StreamOptions {
  sources: DropsSource[];
  plan: PlanSource;
  filter: DropsFilter;
  onRecord(r: DropRecord): void;
  onSuppressed(s: SuppressedRecord): void;
  /** Things worth one line on stderr (a source without podwall NFLOG rules yet, rules gone, ...). */
  onNotice(text: string): void;
  /** How often the counters are read for suppressed entries (default 5 s; 0 disables). */
  counterIntervalMs?: number;
  group?: number;
  /** Tests: runner per source, tcpdump binary, PATH lookups. */
  runnerFor?: (s: DropsSource) => Runner;
  capture?: Pick<CaptureOptions, 'tcpdump' | 'exists' | 'startTimeoutMs'>;
  exists?: (name: string) => boolean;
}

export class DropsError extends Error {}

export interface DropsStream {
  stop(): Promise<void>;
  /** Resolves when every capture ended (stop(), or an error: then `error` says why). */
  readonly done: Promise<{ error?: string }>;
}

const FAMILIES: Family[] = ['ipv4', 'ipv6'];
const where = (s: DropsSource) => (s.netns ? `network namespace ${s.netns}${s.node ? ` (node ${s.node})` : ''}` : 'this node');

/** The rate limit the NFLOG rules carry, as text: read from the rules themselves. */
function limitText(l: LogLimit | undefined): string | undefined {
  return l ? describeLimit(l) : undefined;
}

interface SourceState {
  src: DropsSource;
  run: Runner;
  last: Map<string, { total: bigint; logged: bigint; at: number; tag: LogCounter['tag'] }>;
  firewall: boolean;
  limit?: LogLimit;
}

async function readSource(st: SourceState, exists: (n: string) => boolean): Promise<{ firewall: boolean; podwallRules: number; counters: LogCounter[] }> {
  const counters: LogCounter[] = [];
  let firewall = false;
  for (const family of FAMILIES) {
    try {
      const r = await readLogCounters(st.run, family, saveBinaries(family, exists));
      firewall ||= r.hasFirewall;
      counters.push(...r.counters);
      st.limit ??= r.limit;
    } catch (e) {
      // IPv6 tables may be missing (no ip6tables module): only both failing is an error.
      if (family === 'ipv4' && e instanceof CounterReadError) throw new DropsError(`${where(st.src)}: ${e.message}`);
    }
  }
  return { firewall, podwallRules: counters.length, counters };
}

/**
 * Starts streaming. Rejects with one line when a source has no podwall rules (nothing would ever be
 * logged there), when tcpdump is missing, or when the NFLOG group is taken.
 */
export async function streamDrops(o: StreamOptions): Promise<DropsStream> {
  const exists = o.exists ?? onPath;
  const group = o.group ?? 100;
  // The consumer first: without it nothing else matters.
  try {
    for (const src of o.sources) requireConsumer({ ...(src.netns !== undefined ? { netns: src.netns } : {}), exists, ...(o.capture?.tcpdump !== undefined ? { tcpdump: o.capture.tcpdump } : {}) });
  } catch (e) {
    throw new DropsError((e as Error).message);
  }
  const states: SourceState[] = o.sources.map((src) => ({ src, run: o.runnerFor?.(src) ?? makeRunner(src.netns), last: new Map(), firewall: false }));
  // Before anything else: are podwall's rules here at all? Waiting for entries that can never come
  // helps nobody.
  for (const st of states) {
    const r = await readSource(st, exists);
    if (!r.firewall) {
      throw new DropsError(`no podwall rules in ${where(st.src)}: the filter table has no KUBE-ROUTER-FORWARD chain (iptables-nft or -legacy), so nothing is logged to NFLOG group ${group} — is the podwall agent running here?`);
    }
    st.firewall = true;
    if (r.podwallRules === 0) {
      o.onNotice(`${where(st.src)}: no podwall NFLOG rule yet (no local pod isolated or audited, and no fail-closed rule); kube-router's rules log without a prefix and are joined by address`);
    }
    const now = Date.now();
    for (const c of r.counters) st.last.set(c.key, { total: c.total, logged: c.logged, at: now, tag: c.tag });
  }

  const captures: Capture[] = [];
  const repeats = new RepeatFilter();
  const onEntry = (src: DropsSource) => (e: NflogEntry) => {
    let plan = o.plan.plan();
    let rec = joinEntry(plan, e, src.node !== undefined ? { node: src.node } : {});
    // A pod or policy newer than the Plan: compile again once before saying the Plan disagrees.
    if (rec?.note !== undefined && rec.kind !== 'unknown') {
      const fresh = o.plan.plan({ fresh: true });
      if (fresh !== plan) {
        plan = fresh;
        rec = joinEntry(plan, e, src.node !== undefined ? { node: src.node } : {});
      }
    }
    if (!rec || !matches(rec, o.filter)) return;
    if (repeats.seen(rec)) return;
    o.onRecord(rec);
  };
  try {
    for (const st of states) {
      captures.push(await startCapture(onEntry(st.src), { group, ...(st.src.netns !== undefined ? { netns: st.src.netns } : {}), ...o.capture }));
    }
  } catch (e) {
    await Promise.all(captures.map((c) => c.stop()));
    throw new DropsError((e as Error).message);
  }

  let timer: NodeJS.Timeout | undefined;
  let reading = false;
  const interval = o.counterIntervalMs ?? 5000;
  const tick = async () => {
    if (reading) return;
    reading = true;
    try {
      for (const st of states) await readSuppressed(st);
    } catch (e) {
      o.onNotice(`cannot read the counters: ${(e as Error).message}`);
    } finally {
      reading = false;
    }
  };
  const readSuppressed = async (st: SourceState) => {
    const r = await readSource(st, exists);
    if (st.firewall && !r.firewall) o.onNotice(`${where(st.src)}: podwall's rules are gone (the agent cleaned up, or was removed); nothing more will be logged`);
    if (!st.firewall && r.firewall) o.onNotice(`${where(st.src)}: podwall's rules are back`);
    st.firewall = r.firewall;
    const now = Date.now();
    const plan = o.plan.plan();
    for (const c of r.counters) {
      const prev = st.last.get(c.key);
      st.last.set(c.key, { total: c.total, logged: c.logged, at: now, tag: c.tag });
      // A rewritten chain starts its counters again from 0: count from there.
      const reset = prev !== undefined && (c.total < prev.total || c.logged < prev.logged);
      const dTotal = prev && !reset ? c.total - prev.total : c.total;
      const dLogged = prev && !reset ? c.logged - prev.logged : c.logged;
      const missed = Number(dTotal - dLogged);
      if (missed <= 0) continue;
      // A ClusterNetworkPolicy Deny rule's ref names the rule (its tier chain is shared by pods), not a pod.
      const cnp = c.tag.kind === 'cnp';
      const pod = c.tag.ref !== undefined && !cnp ? podByChainRef(plan, c.tag.ref) : undefined;
      const pp = pod !== undefined ? plan.pods.find((p) => p.key === pod) : undefined;
      const cnpName = cnp ? ((c.tag.ref !== undefined ? clusterRuleByRef(plan, c.tag.ref)?.origin.policy : undefined) ?? c.tag.hint?.replace(/^cnp\//, '')) : undefined;
      const policies = cnp ? (cnpName !== undefined ? [`cnp:${cnpName}`] : []) : pp ? (c.tag.kind === 'audit' ? (c.tag.direction === 'ingress' ? pp.ingressAudit : pp.egressAudit) ?? [] : c.tag.direction === 'ingress' ? pp.ingressPolicies : pp.egressPolicies) : [];
      const s: SuppressedRecord = {
        time: now,
        ...(st.src.node !== undefined ? { node: st.src.node } : {}),
        kind: c.tag.kind,
        direction: c.tag.direction,
        ...(pod !== undefined ? { pod } : {}),
        namespaces: pod !== undefined ? [pod.slice(0, pod.indexOf('/'))] : [],
        policies: [...policies],
        count: missed,
        windowMs: prev ? now - prev.at : interval,
        ...(limitText(st.limit) ? { limit: limitText(st.limit)! } : {}),
      };
      if (suppressedMatches(s, o.filter)) o.onSuppressed(s);
    }
  };
  if (interval > 0) timer = setInterval(() => void tick(), interval);

  let stopped = false;
  const done = Promise.all(captures.map((c) => c.done)).then((rs) => {
    if (timer) clearInterval(timer);
    const err = rs.find((r) => r.error)?.error;
    return err && !stopped ? { error: err } : {};
  });
  // One capture ending on its own (tcpdump killed, the namespace gone) ends the stream.
  for (const c of captures) void c.done.then((r) => (r.error && !stopped ? Promise.all(captures.map((x) => x.stop())) : undefined));
  return {
    done,
    stop: async () => {
      stopped = true;
      if (timer) clearInterval(timer);
      // A last reading, so what the limit suppressed up to now is said.
      if (interval > 0) await tick();
      await Promise.all(captures.map((c) => c.stop()));
    },
  };
}

function suppressedMatches(s: SuppressedRecord, f: DropsFilter): boolean {
  if (f.audit !== (s.kind === 'audit')) return false;
  if (f.namespace !== undefined && !s.namespaces.includes(f.namespace)) return false;
  if (f.pod !== undefined && s.pod !== f.pod) return false;
  if (f.policy !== undefined && !s.policies.includes(f.policy)) return false;
  return true;
}

/**
 * One line per connection attempt, not per packet: a refused SYN is retransmitted (the kernel here,
 * 6.18, ignores the first ICMP port-unreachable of a connecting socket: the client fails ~1 s later,
 * at the retransmission), and applications resend UDP on the same ports. The same 5-tuple, kind and
 * node within 5 s (by the entries' own times) is shown once; the metrics count every packet.
 */
export class RepeatFilter {
  private readonly last = new LRUCache<string, number>({ max: 10_000 });
  seen(r: DropRecord): boolean {
    const key = `${r.node ?? ''}|${r.kind}|${r.protocol}|${r.src.ip}|${r.src.port ?? ''}|${r.dst.ip}|${r.dst.port ?? ''}`;
    const prev = this.last.get(key);
    this.last.set(key, r.time);
    return prev !== undefined && r.time - prev < 5000 && r.time >= prev;
  }
}

/** Joins the entries of a saved capture (`tcpdump -i nflog:100 -w FILE`), for `podwall drops -r FILE`. */
export function joinCapture(bytes: Buffer, plan: Plan, filter: DropsFilter, node?: string): DropRecord[] {
  const out: DropRecord[] = [];
  const repeats = new RepeatFilter();
  for (const e of new NflogPcapReader().push(bytes)) {
    const r = joinEntry(plan, e, node !== undefined ? { node } : {});
    if (r && matches(r, filter) && !repeats.seen(r)) out.push(r);
  }
  return out;
}
