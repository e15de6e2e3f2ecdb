// What podwall's NFLOG rules carry, so a log entry can be joined with the Plan without guessing:
// the prefix codec and the rate limit. Pure; the renderer writes prefixes, `podwall drops` and the
// counter reader decode them.
//
// Prefix (the kernel keeps 63 bytes + NUL; every prefix here is ASCII and at most 63 bytes):
//
//   podwall/1 <kind> <dir> <ref> <hint>
//
//   kind  deny          a pod's NetworkPolicies deny it (the pod chain's REJECT follows)
//         audit         audited (staged) policies would deny it; it is let through
//         unprogrammed  fail closed: a local pod IP podwall has not programmed yet (REJECT follows)
//         cnp           a ClusterNetworkPolicy Deny rule (ref: the rule's stable hash; see cnpRuleRef)
//   dir   in | out      ingress of the destination / egress of the source
//   ref   16 characters of [A-Z2-7]: the pod chain's hash (KUBE-POD-FW-<ref>), or the CNP rule's;
//         `-` when the entry has no object (unprogrammed)
//   hint  for people reading raw `tcpdump -i nflog:100` output only: `ns/pod` (or a CIDR), cut to
//         fit; never used to join (names are longer than 63 bytes allow)
//
// A ref is the same hash the chain name carries, so the join is a hash lookup over the Plan's pods
// (podChainName) — stable across restarts and identical on every node.
import type { Direction } from '../cluster/model.js';

export const PREFIX_MAGIC = 'podwall/1';
/** The kernel keeps 63 bytes of an NFLOG prefix (64 with the NUL). */
export const MAX_PREFIX_BYTES = 63;
export const DROP_KINDS = ['deny', 'audit', 'unprogrammed', 'cnp'] as const;
export type DropKind = (typeof DROP_KINDS)[number];

export interface NflogTag {
  kind: DropKind;
  direction: Direction;
  /** [A-Z2-7]{16}, or absent (`-`). */
  ref?: string;
  /** Advisory, truncated; absent when empty. */
  hint?: string;
}

const REF = /^[A-Z2-7]{16}$/;
/** Characters a hint keeps: what namespace/pod names and CIDRs are made of. */
const HINT_CHARS = /[^A-Za-z0-9._/:-]/g;

/** The hint as it survives encoding: safe characters only, cut to the room left. */
export function hintFor(tag: Omit<NflogTag, 'hint'>, hint: string | undefined): string | undefined {
  if (hint === undefined) return undefined;
  const room = MAX_PREFIX_BYTES - head(tag).length - 1;
  const s = hint.replace(HINT_CHARS, '?').slice(0, Math.max(0, room));
  return s.length > 0 ? s : undefined;
}

function head(tag: Omit<NflogTag, 'hint'>): string {
  return `${PREFIX_MAGIC} ${tag.kind} ${tag.direction === 'ingress' ? 'in' : 'out'} ${tag.ref ?? '-'}`;
}

export class PrefixError extends Error {}

/** Encodes a tag; throws PrefixError on an unknown kind or a malformed ref (a renderer bug). */
export function encodePrefix(tag: NflogTag): string {
  if (!(DROP_KINDS as readonly string[]).includes(tag.kind)) throw new PrefixError(`unknown NFLOG kind ${JSON.stringify(tag.kind)}`);
  if (tag.direction !== 'ingress' && tag.direction !== 'egress') throw new PrefixError(`unknown direction ${JSON.stringify(tag.direction)}`);
  if (tag.ref !== undefined && !REF.test(tag.ref)) throw new PrefixError(`NFLOG ref ${JSON.stringify(tag.ref)} is not 16 base32 characters`);
  const h = head(tag);
  const hint = hintFor(tag, tag.hint);
  return hint === undefined ? h : `${h} ${hint}`;
}

/** Decodes a prefix written by encodePrefix; undefined for anything else (kube-router's, other software's). */
export function decodePrefix(prefix: string): NflogTag | undefined {
  if (typeof prefix !== 'string' || prefix.length > MAX_PREFIX_BYTES || !prefix.startsWith(`${PREFIX_MAGIC} `)) return undefined;
  const parts = prefix.split(' ');
  if (parts.length < 4 || parts.length > 5) return undefined;
  const [, kind, dir, ref, hint] = parts as [string, string, string, string, string | undefined];
  if (!(DROP_KINDS as readonly string[]).includes(kind)) return undefined;
  if (dir !== 'in' && dir !== 'out') return undefined;
  if (ref !== '-' && !REF.test(ref)) return undefined;
  if (hint !== undefined && !/^[A-Za-z0-9._/:?-]+$/.test(hint)) return undefined;
  const tag: NflogTag = { kind: kind as DropKind, direction: dir === 'in' ? 'ingress' : 'egress' };
  if (ref !== '-') tag.ref = ref;
  if (hint !== undefined && hint !== '') tag.hint = hint;
  return tag;
}

// ------------------------------------------------------------------------------ rate limit

/**
 * The rate limit of podwall's NFLOG rules (xt_limit per rule: per pod and direction). kube-router
 * logs at most 10 per minute with a burst of 10 per pod chain; podwall keeps that as the default.
 * `undefined` rate: every denial is logged (no limit match).
 */
export interface LogLimit {
  /** Canonical text as iptables-save prints it: `10/min`, `5/sec`, `100/hour`, `1/day`. */
  rate?: string;
  burst: number;
}

export const DEFAULT_LOG_LIMIT: LogLimit = { rate: '10/min', burst: 10 };

const UNITS: Record<string, string> = {
  s: 'sec', sec: 'sec', second: 'sec', seconds: 'sec',
  m: 'min', min: 'min', minute: 'min', minutes: 'min',
  h: 'hour', hour: 'hour', hours: 'hour',
  d: 'day', day: 'day', days: 'day',
};
/** xt_limit's largest burst. */
export const MAX_BURST = 10000;

export class LogLimitError extends Error {}

/**
 * `10/minute`, `10/min`, `5/s`, `100/hour` → canonical `N/unit`; `0`, `none` or `off` → no limit.
 * The count must be 1-10000 (xt_limit cannot express less than 1/day or more than 10000/sec exactly).
 */
export function parseLogRate(text: string): string | undefined {
  const t = text.trim().toLowerCase();
  if (t === '0' || t === 'none' || t === 'off' || t === 'unlimited') return undefined;
  const m = /^(\d{1,5})\/([a-z]+)$/.exec(t);
  const unit = m && Object.hasOwn(UNITS, m[2]!) ? UNITS[m[2]!] : undefined;
  const n = m ? Number(m[1]) : NaN;
  if (!m || !unit || n < 1 || n > 10000) throw new LogLimitError(`${JSON.stringify(text)} is not a rate: expected N/second, N/minute, N/hour or N/day with N in 1-10000, or 0 for no limit (e.g. 10/minute)`);
  return `${n}/${unit}`;
}

export function parseLogBurst(text: string): number {
  const n = /^\d{1,6}$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!(n >= 1 && n <= MAX_BURST)) throw new LogLimitError(`${JSON.stringify(text)} is not a burst: expected a whole number in 1-${MAX_BURST}`);
  return n;
}

/** The `-m limit` arguments of a rule (empty without a limit). */
export function limitArgs(limit: LogLimit): string[] {
  return limit.rate === undefined ? [] : ['-m', 'limit', '--limit', limit.rate, '--limit-burst', String(limit.burst)];
}

/** `10/min, burst 10` or `no limit`, for messages. */
export function describeLimit(limit: LogLimit): string {
  return limit.rate === undefined ? 'no limit' : `${limit.rate}, burst ${limit.burst}`;
}
