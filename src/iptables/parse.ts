// Parsers for `iptables-save` / `ip6tables-save` (with or without `-c`) and `ipset save` output.
// Pure: text in, model out. Anything that is not the format throws IptablesParseError naming the
// 1-based line and the line itself; nothing else is ever thrown for bad input.
//
// Quoting, as iptables 1.8 prints and reads it (checked against both backends on this machine):
// an argument made only of [A-Za-z0-9_-] is printed bare; any other is printed in double quotes with
// `"`, `\` and `'` escaped by a backslash; an empty argument is `""`; a newline inside an argument is
// printed raw (so one rule can span lines). iptables-restore splits on spaces and tabs, copies bytes
// after a backslash inside quotes, and treats a backslash outside quotes literally. `#` is a comment
// only at the start of a line.

import type { IpsetMember, Ipset, IptChain, IptRule, IptRuleset, IptTable } from './model.js';

export class IptablesParseError extends Error {
  readonly lineNumber: number;
  readonly line: string;
  constructor(reason: string, lineNumber: number, line: string) {
    super(`line ${lineNumber}: ${reason}: ${JSON.stringify(line.length > 200 ? `${line.slice(0, 200)}...` : line)}`);
    this.name = 'IptablesParseError';
    this.lineNumber = lineNumber;
    this.line = line;
  }
}

/** A logical line: physical lines joined when a quoted argument contains a newline. */
interface LogicalLine {
  number: number;
  text: string;
  tokens: string[];
}

class TokenizeError extends Error {}

const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\r';
const PLAIN_BLANKS = /[ \t\r]+/;

/**
 * Splits one logical line into arguments. Returns null when a quote is still open at the end of the
 * text (the caller then appends the next physical line). Throws TokenizeError for malformed text.
 */
function tokenize(text: string, escapes: boolean): string[] | null {
  const out: string[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === '"') {
      let tok = '';
      i++;
      let closed = false;
      while (i < n) {
        const d = text[i]!;
        if (escapes && d === '\\') {
          if (i + 1 >= n) return null; // escaped newline: continues on the next line
          tok += text[i + 1]!;
          i += 2;
          continue;
        }
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        tok += d;
        i++;
      }
      if (!closed) return null;
      if (i < n && !isSpace(text[i]!)) throw new TokenizeError('text directly after a closing quote');
      out.push(tok);
      continue;
    }
    let tok = '';
    while (i < n && !isSpace(text[i]!)) {
      if (text[i] === '"') throw new TokenizeError('quote inside an unquoted argument');
      tok += text[i]!;
      i++;
    }
    out.push(tok);
  }
  return out;
}

/** Splits text into logical lines (skipping blank and `#` lines) and tokenizes each. */
function logicalLines(text: string, escapes: boolean): LogicalLine[] {
  if (typeof text !== 'string') throw new IptablesParseError('input is not text', 0, String(text));
  const phys = text.split('\n');
  // A final newline leaves an empty last element; that is not a line.
  if (phys.length > 0 && phys[phys.length - 1] === '') phys.pop();
  const out: LogicalLine[] = [];
  for (let i = 0; i < phys.length; i++) {
    const first = phys[i]!;
    if (first.includes('\0')) throw new IptablesParseError('NUL byte', i + 1, first);
    const trimmed = first.replace(/^[ \t\r]+/, '');
    if (trimmed === '' || trimmed.replace(/[ \t\r]+$/, '') === '' || trimmed.startsWith('#')) continue;
    // Most lines hold no quote and no backslash: split on blanks, as tokenize() would (tens of
    // thousands of set members are read back at every resync and full drift check).
    if (!first.includes('"') && !(escapes && first.includes('\\'))) {
      const tokens = trimmed.split(PLAIN_BLANKS);
      if (tokens[tokens.length - 1] === '') tokens.pop();
      out.push({ number: i + 1, text: first, tokens });
      continue;
    }
    let joined = first;
    const start = i;
    for (;;) {
      let tokens: string[] | null;
      try {
        tokens = tokenize(joined, escapes);
      } catch (e) {
        if (e instanceof TokenizeError) throw new IptablesParseError(e.message, start + 1, joined);
        throw e;
      }
      if (tokens !== null) {
        out.push({ number: start + 1, text: joined, tokens });
        break;
      }
      if (i + 1 >= phys.length) throw new IptablesParseError('unterminated quote', start + 1, joined);
      i++;
      if (phys[i]!.includes('\0')) throw new IptablesParseError('NUL byte', i + 1, phys[i]!);
      joined += `\n${phys[i]!}`;
    }
  }
  return out;
}

const COUNTERS = /^\[(\d+):(\d+)\]$/;

function parseCounters(tok: string): { packets: bigint; bytes: bigint } | null {
  const m = COUNTERS.exec(tok);
  if (!m) return null;
  return { packets: BigInt(m[1]!), bytes: BigInt(m[2]!) };
}

const NAME = /^[^\s"]+$/;

/** Parses full `iptables-save` / `ip6tables-save` output (any tables, with or without `-c` counters). */
export function parseIptablesSave(text: string): IptRuleset {
  const tables: IptTable[] = [];
  const seenTables = new Set<string>();
  let current: { table: IptTable; chains: Map<string, IptChain>; rulesStarted: boolean } | null = null;
  let lastLine: LogicalLine | null = null;
  for (const ll of logicalLines(text, true)) {
    lastLine = ll;
    const fail = (reason: string): never => {
      throw new IptablesParseError(reason, ll.number, ll.text);
    };
    const t = ll.tokens;
    const head = t[0]!;
    if (head.startsWith('*') && !ll.text.trimStart().startsWith('"')) {
      if (t.length !== 1) fail('table line has extra text');
      if (current) fail(`table ${head} starts before COMMIT of table ${current.table.name}`);
      const name = head.slice(1);
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) fail('invalid table name');
      if (seenTables.has(name)) fail(`table ${name} appears twice`);
      seenTables.add(name);
      const table: IptTable = { name, chains: [] };
      tables.push(table);
      current = { table, chains: new Map(), rulesStarted: false };
      continue;
    }
    if (head === 'COMMIT' && ll.text.trim() === 'COMMIT') {
      if (!current) fail('COMMIT outside a table');
      current = null;
      continue;
    }
    if (!current) {
      fail('line outside a table (expected *table)');
      continue; // unreachable; narrows `current`
    }
    if (head.startsWith(':') && !ll.text.trimStart().startsWith('"')) {
      const name = head.slice(1);
      if (!name || !NAME.test(name)) fail('invalid chain name');
      if (t.length < 2 || t.length > 3) fail('chain line must be `:NAME POLICY [packets:bytes]`');
      const policy = t[1]!;
      if (!/^[A-Z-]+$/.test(policy)) fail(`invalid chain policy ${JSON.stringify(policy)}`);
      let counters: { packets: bigint; bytes: bigint } | undefined;
      if (t.length === 3) {
        const c = parseCounters(t[2]!);
        if (!c) fail('invalid chain counters (expected [packets:bytes])');
        counters = c!;
      }
      if (current.chains.has(name)) fail(`chain ${name} declared twice`);
      const chain: IptChain = { name, policy, rules: [] };
      if (counters) chain.counters = counters;
      current.chains.set(name, chain);
      current.table.chains.push(chain);
      continue;
    }
    let i = 0;
    let counters: { packets: bigint; bytes: bigint } | undefined;
    if (head.startsWith('[') && !ll.text.trimStart().startsWith('"')) {
      const c = parseCounters(head);
      if (!c) fail('invalid rule counters (expected [packets:bytes])');
      counters = c!;
      i = 1;
    }
    if (t[i] !== '-A' && t[i] !== '--append') fail('expected -A CHAIN');
    const chainName = t[i + 1];
    if (chainName === undefined) fail('-A without a chain name');
    const chain = current.chains.get(chainName!);
    if (!chain) fail(`rule for undeclared chain ${chainName}`);
    const rule: IptRule = { args: t.slice(i + 2) };
    if (counters) rule.counters = counters;
    chain!.rules.push(rule);
  }
  if (current) {
    const ll = lastLine!;
    throw new IptablesParseError(`table ${current.table.name} has no COMMIT`, ll.number, ll.text);
  }
  return { tables };
}

/** Set types whose `create` line has no `family` (the model then says 'inet'). */
export function ipsetTypeHasFamily(type: string): boolean {
  return !(type.startsWith('list:') || type.startsWith('bitmap:') || type === 'hash:mac');
}

const SET_NAME = /^[^\s"]{1,31}$/;

/** Parses `ipset save` (or `ipset list -o save`) output: `create` and `add` lines, both families. */
export function parseIpsetSave(text: string): Ipset[] {
  const sets: Ipset[] = [];
  const byName = new Map<string, Ipset>();
  for (const ll of logicalLines(text, false)) {
    const fail = (reason: string): never => {
      throw new IptablesParseError(reason, ll.number, ll.text);
    };
    if (ll.text.includes('\n')) fail('quoted text spans lines');
    const t = ll.tokens;
    const cmd = t[0];
    if (cmd === 'create' || cmd === '-N' || cmd === 'n') {
      const name = t[1];
      const type = t[2];
      if (name === undefined || !SET_NAME.test(name)) fail('invalid set name');
      if (type === undefined || !/^[a-z]+:[a-z,]+$/.test(type)) fail('invalid set type');
      if (byName.has(name!)) fail(`set ${name} created twice`);
      const options: string[] = [];
      let family: 'inet' | 'inet6' | undefined;
      for (let i = 3; i < t.length; i++) {
        if (t[i] === 'family') {
          const f = t[i + 1];
          if (f !== 'inet' && f !== 'inet6') fail(`invalid family ${JSON.stringify(f ?? '')}`);
          if (family) fail('family given twice');
          family = f as 'inet' | 'inet6';
          i++;
          continue;
        }
        options.push(t[i]!);
      }
      const set: Ipset = { name: name!, type: type!, family: family ?? 'inet', options, members: [] };
      sets.push(set);
      byName.set(name!, set);
      continue;
    }
    if (cmd === 'add' || cmd === '-A' || cmd === 'a') {
      const name = t[1];
      const entry = t[2];
      if (name === undefined) fail('add without a set name');
      const set = byName.get(name!);
      if (!set) fail(`add to a set that was not created: ${name}`);
      if (entry === undefined || entry === '') fail('add without an entry');
      const member: IpsetMember = { entry: entry! };
      const extra: string[] = [];
      for (let i = 3; i < t.length; i++) {
        if (t[i] === 'comment' && i + 1 < t.length) {
          extra.push('comment', t[i + 1]!);
          i++;
        } else if (t[i] === 'nomatch') {
          if (member.nomatch) fail('nomatch given twice');
          member.nomatch = true;
        } else extra.push(t[i]!);
      }
      if (extra.length) member.extra = extra;
      set!.members.push(member);
      continue;
    }
    fail(`unexpected command ${JSON.stringify(cmd ?? '')} (expected create or add)`);
  }
  return sets;
}
