// Writers: iptables-restore (`--noflush`) payloads, iptables-save text, ipset restore / save text.
// Pure. Every argument is quoted so that iptables-restore reads back exactly the same argv, or the
// writer throws RestoreWriteError: nothing can inject a second rule or break the payload.
//
// Facts these rely on (iptables 1.8.9, both backends, ipset 7.17, checked in a network namespace):
// - iptables-restore reads one rule per line; inside "..." a backslash escapes any byte; arguments
//   of 1024 bytes or more fail with "Parameter too long!".
// - A comment longer than 255 bytes is silently truncated by the kernel (XT_MAX_COMMENT_LEN is 256
//   including the NUL), so a longer one would never read back equal: sanitizeComment caps at 255.
// - `:CHAIN - [0:0]` with --noflush creates a user chain, or flushes it if it exists; on a built-in
//   chain it neither flushes nor changes the policy.
// - ipset restore splits on blanks, understands "..." without escapes and refuses `"` in comments.

import type { IpsetMember, Ipset, IpsetType, IptChain, IptRule, IptRuleset } from './model.js';
import { ipsetTypeHasFamily } from './parse.js';

export class RestoreWriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreWriteError';
  }
}

/** Longest comment the kernel keeps intact (bytes). */
export const MAX_COMMENT_BYTES = 255;
/** iptables-restore refuses arguments of this many bytes or more. */
export const MAX_ARG_BYTES = 1024;
/** Longest chain name iptables accepts. */
export const MAX_CHAIN_NAME = 28;
/** Longest ipset name. */
export const MAX_SET_NAME = 31;

const BARE = /^[A-Za-z0-9_.\/:,=+@%!-]+$/;

function quote(s: string, allowNewline: boolean): string {
  if (typeof s !== 'string') throw new RestoreWriteError(`argument is not a string: ${String(s)}`);
  if (s.includes('\0')) throw new RestoreWriteError(`argument contains a NUL byte: ${JSON.stringify(s)}`);
  if (!allowNewline && /[\n\r]/.test(s)) {
    throw new RestoreWriteError(`argument contains a line break, which iptables-restore cannot read: ${JSON.stringify(s)}`);
  }
  if (BARE.test(s)) return s;
  return `"${s.replace(/["\\']/g, (c) => `\\${c}`)}"`;
}

/**
 * Quotes one argument for an iptables-restore line. Bare when it is made of [A-Za-z0-9_./:,=+@%!-],
 * otherwise in double quotes with `"`, `\` and `'` backslash-escaped (as iptables-save does).
 * Throws RestoreWriteError for text iptables-restore cannot carry: NUL, CR or LF, 1024+ bytes.
 */
export function quoteArg(s: string): string {
  const q = quote(s, false);
  if (Buffer.byteLength(s, 'utf8') >= MAX_ARG_BYTES) {
    throw new RestoreWriteError(`argument is ${Buffer.byteLength(s, 'utf8')} bytes; iptables-restore takes at most ${MAX_ARG_BYTES - 1}`);
  }
  return q;
}

/**
 * Makes user-controlled text (names, labels from Kubernetes objects) safe for `-m comment --comment`:
 * keeps printable ASCII except `"` and `\`, turns every run of whitespace into one space, trims, and
 * caps at 255 characters (the kernel keeps 255 bytes). The result always round-trips unchanged.
 */
export function sanitizeComment(s: string): string {
  const text = typeof s === 'string' ? s : String(s);
  const collapsed = text
    .replace(/\s+/gu, ' ')
    .replace(/[^\x20-\x7e]|["\\]/g, '')
    .replace(/ {2,}/g, ' ')
    .trim();
  return collapsed.slice(0, MAX_COMMENT_BYTES).trimEnd();
}

function checkChainName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_CHAIN_NAME || !/^[\x21-\x7e]+$/.test(name) || /["'\\]/.test(name) || /^[-!#*:\[]/.test(name)) {
    throw new RestoreWriteError(`invalid chain name ${JSON.stringify(name)}: 1-${MAX_CHAIN_NAME} printable characters, no quotes or backslash, not starting with - ! # * : [`);
  }
}

function checkTableName(name: string): void {
  if (typeof name !== 'string' || !/^[a-z_][a-z0-9_]*$/.test(name)) throw new RestoreWriteError(`invalid table name ${JSON.stringify(name)}`);
}

function argsText(rule: IptRule, allowNewline: boolean): string {
  if (!rule || !Array.isArray(rule.args)) throw new RestoreWriteError('rule has no args array');
  return rule.args
    .map((a) => {
      const q = quote(a, allowNewline);
      if (!allowNewline && Buffer.byteLength(a, 'utf8') >= MAX_ARG_BYTES) {
        throw new RestoreWriteError(`argument is ${Buffer.byteLength(a, 'utf8')} bytes; iptables-restore takes at most ${MAX_ARG_BYTES - 1}`);
      }
      return ` ${q}`;
    })
    .join('');
}

/** `-A CHAIN args...` as one iptables-restore line (no counters, no newline). */
export function formatRule(chain: string, rule: IptRule): string {
  checkChainName(chain);
  return `-A ${chain}${argsText(rule, false)}`;
}

/** Built-in chain names of the iptables tables; appending to them in a payload is never idempotent. */
export const BUILTIN_CHAINS: Readonly<Record<string, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};

export interface RestoreTable {
  /** `filter`, `nat`, ... */
  name: string;
  /** User chains to create-or-flush (`:NAME - [0:0]`) and fill with their rules, in order. */
  chains: IptChain[];
  /** Chains to flush (`-F`) without rewriting them. */
  flushChains?: string[];
  /** Chains to delete: flushed first, then `-X` after every other line of the table. */
  deleteChains?: string[];
  /** Rules to delete by specification (`-D CHAIN args`), e.g. a stale jump from a built-in chain. */
  deleteRules?: { chain: string; rule: IptRule }[];
  /** Rules to insert (`-I CHAIN POSITION args`), e.g. the jump at position 1 of INPUT. Written in order. */
  insertRules?: { chain: string; position: number; rule: IptRule }[];
}

/**
 * An `iptables-restore --noflush` payload. Per table, in this order: `*name`; `:CHAIN - [0:0]` for
 * every chain in `chains`; `-F` for flushChains and deleteChains; `-D` for deleteRules; the `-A` lines
 * of every chain; `-I` for insertRules; `-X` for deleteChains; `COMMIT`. Built-in chains cannot be
 * listed in `chains` (their rules would be appended, not replaced): use insertRules/deleteRules.
 */
export function writeRestore(tables: RestoreTable[]): string {
  const out: string[] = [];
  for (const t of tables) {
    checkTableName(t.name);
    const builtins = BUILTIN_CHAINS[t.name] ?? [];
    const declared = new Set<string>();
    for (const c of t.chains) {
      checkChainName(c.name);
      if (builtins.includes(c.name)) {
        throw new RestoreWriteError(`table ${t.name}: built-in chain ${c.name} cannot be rewritten by a --noflush payload; use insertRules/deleteRules`);
      }
      if (declared.has(c.name)) throw new RestoreWriteError(`table ${t.name}: chain ${c.name} listed twice`);
      declared.add(c.name);
    }
    const deletes = t.deleteChains ?? [];
    for (const d of deletes) {
      checkChainName(d);
      if (declared.has(d)) throw new RestoreWriteError(`table ${t.name}: chain ${d} is both written and deleted`);
      if (builtins.includes(d)) throw new RestoreWriteError(`table ${t.name}: built-in chain ${d} cannot be deleted`);
    }
    const flushes = [...(t.flushChains ?? []), ...deletes.filter((d) => !(t.flushChains ?? []).includes(d))];
    out.push(`*${t.name}`);
    for (const c of t.chains) out.push(`:${c.name} - [0:0]`);
    for (const f of flushes) {
      checkChainName(f);
      out.push(`-F ${f}`);
    }
    for (const d of t.deleteRules ?? []) {
      checkChainName(d.chain);
      out.push(`-D ${d.chain}${argsText(d.rule, false)}`);
    }
    for (const c of t.chains) for (const r of c.rules) out.push(formatRule(c.name, r));
    for (const ins of t.insertRules ?? []) {
      checkChainName(ins.chain);
      if (!Number.isInteger(ins.position) || ins.position < 1) {
        throw new RestoreWriteError(`table ${t.name}: insert position for ${ins.chain} must be an integer >= 1, got ${ins.position}`);
      }
      out.push(`-I ${ins.chain} ${ins.position}${argsText(ins.rule, false)}`);
    }
    for (const d of deletes) out.push(`-X ${d}`);
    out.push('COMMIT');
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

function countersText(c: { packets: bigint; bytes: bigint } | undefined): string | null {
  if (!c) return null;
  if (typeof c.packets !== 'bigint' || typeof c.bytes !== 'bigint' || c.packets < 0n || c.bytes < 0n) {
    throw new RestoreWriteError('counters must be non-negative bigints');
  }
  return `[${c.packets}:${c.bytes}]`;
}

/**
 * Prints a ruleset as iptables-save does: per table `*name`, chain lines (with counters when the
 * model has them), rules chain by chain (with `[p:b]` when the rule has counters), `COMMIT`.
 * Newlines inside arguments are printed raw, as iptables-save does; parseIptablesSave reads them back.
 */
export function writeSave(ruleset: IptRuleset): string {
  const out: string[] = [];
  for (const t of ruleset.tables) {
    checkTableName(t.name);
    out.push(`*${t.name}`);
    for (const c of t.chains) {
      checkChainName(c.name);
      if (!/^[A-Z-]+$/.test(c.policy)) throw new RestoreWriteError(`chain ${c.name}: invalid policy ${JSON.stringify(c.policy)}`);
      const ct = countersText(c.counters);
      out.push(`:${c.name} ${c.policy}${ct ? ` ${ct}` : ''}`);
    }
    for (const c of t.chains) {
      for (const r of c.rules) {
        const ct = countersText(r.counters);
        out.push(`${ct ? `${ct} ` : ''}-A ${c.name}${argsText(r, true)}`);
      }
    }
    out.push('COMMIT');
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

// ---------------------------------------------------------------------------------------------
// ipset

export type IpsetOp =
  | { op: 'create'; name: string; type: IpsetType; family: 'inet' | 'inet6'; options?: string[] }
  | ({ op: 'add'; name: string; exist?: boolean } & IpsetMember)
  | { op: 'del'; name: string; entry: string; exist?: boolean }
  | { op: 'flush'; name: string }
  | { op: 'swap'; name: string; other: string }
  | { op: 'destroy'; name: string };

function checkSetName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_SET_NAME || !/^[\x21-\x7e]+$/.test(name) || /["'\\]/.test(name) || name.startsWith('-')) {
    throw new RestoreWriteError(`invalid ipset name ${JSON.stringify(name)}: 1-${MAX_SET_NAME} printable characters, no quotes or backslash, not starting with -`);
  }
}

function ipsetWord(s: string, what: string): string {
  if (typeof s !== 'string' || !/^[\x21-\x7e]+$/.test(s) || /["'\\]/.test(s)) {
    throw new RestoreWriteError(`invalid ipset ${what} ${JSON.stringify(s)}`);
  }
  return s;
}

/** Options or per-entry extras; the value after `comment` is quoted, as ipset save prints it. */
function ipsetExtras(tokens: readonly string[], what: string, allowComment: boolean): string {
  let out = '';
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!;
    if (allowComment && tok === 'comment' && i + 1 < tokens.length) {
      const v = tokens[i + 1]!;
      if (typeof v !== 'string' || /["\n\r\0]/.test(v) || Buffer.byteLength(v, 'utf8') > MAX_COMMENT_BYTES) {
        throw new RestoreWriteError(`invalid ipset comment ${JSON.stringify(v)}: no double quote or line break, at most ${MAX_COMMENT_BYTES} bytes`);
      }
      out += ` comment "${v}"`;
      i++;
      continue;
    }
    if (allowComment && tok === 'nomatch') throw new RestoreWriteError(`${what}: nomatch belongs in the nomatch flag, not in extra`);
    out += ` ${ipsetWord(tok, what)}`;
  }
  return out;
}

function createLine(name: string, type: string, family: string, options: readonly string[]): string {
  checkSetName(name);
  if (typeof type !== 'string' || !/^[a-z]+:[a-z,]+$/.test(type)) throw new RestoreWriteError(`set ${name}: invalid type ${JSON.stringify(type)}`);
  if (family !== 'inet' && family !== 'inet6') throw new RestoreWriteError(`set ${name}: invalid family ${JSON.stringify(family)}`);
  if (!ipsetTypeHasFamily(type) && family !== 'inet') throw new RestoreWriteError(`set ${name}: type ${type} has no family, the model must say inet`);
  if (options.includes('family')) throw new RestoreWriteError(`set ${name}: give the family in the family field, not in options`);
  const fam = ipsetTypeHasFamily(type) ? ` family ${family}` : '';
  return `create ${name} ${type}${fam}${ipsetExtras(options, `option for set ${name}`, false)}`;
}

function addLine(name: string, m: IpsetMember): string {
  checkSetName(name);
  const entry = ipsetWord(m.entry, `entry for set ${name}`);
  return `add ${name} ${entry}${ipsetExtras(m.extra ?? [], `entry option for set ${name}`, true)}${m.nomatch ? ' nomatch' : ''}`;
}

/** An `ipset restore` payload, one command per line; `create` always carries `-exist`. */
export function writeIpsetRestore(ops: IpsetOp[]): string {
  const out: string[] = [];
  for (const o of ops) {
    switch (o.op) {
      case 'create':
        out.push(`${createLine(o.name, o.type, o.family, o.options ?? [])} -exist`);
        break;
      case 'add':
        out.push(`${addLine(o.name, o)}${o.exist ? ' -exist' : ''}`);
        break;
      case 'del':
        checkSetName(o.name);
        out.push(`del ${o.name} ${ipsetWord(o.entry, `entry for set ${o.name}`)}${o.exist ? ' -exist' : ''}`);
        break;
      case 'flush':
        checkSetName(o.name);
        out.push(`flush ${o.name}`);
        break;
      case 'swap':
        checkSetName(o.name);
        checkSetName(o.other);
        out.push(`swap ${o.name} ${o.other}`);
        break;
      case 'destroy':
        checkSetName(o.name);
        out.push(`destroy ${o.name}`);
        break;
      default:
        throw new RestoreWriteError(`unknown ipset op ${JSON.stringify((o as { op?: unknown }).op)}`);
    }
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** Prints sets as `ipset save` does: each `create` line followed by its `add` lines. */
export function writeIpsetSave(sets: Ipset[]): string {
  const out: string[] = [];
  for (const s of sets) {
    out.push(createLine(s.name, s.type, s.family, s.options));
    for (const m of s.members) out.push(addLine(s.name, m));
  }
  return out.length ? `${out.join('\n')}\n` : '';
}
