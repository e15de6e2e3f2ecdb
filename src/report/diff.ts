// `podwall diff` for people: a terminal listing and a pull-request comment (Markdown), grouped by
// namespace pair, each change with the reason on both sides.
import { changeKind, groupByNamespacePair, type AccessChange, type Cell, type ReachabilityDiff } from '../sim/diff.js';

const word = (v: Cell) => (v === null ? 'depends on IP' : v ? 'allowed' : 'denied');

function counts(d: ReachabilityDiff): { added: number; removed: number } {
  let added = 0;
  for (const c of d.changes) if (changeKind(c) === 'added') added++;
  return { added, removed: d.changes.length - added };
}

export function diffSummary(d: ReachabilityDiff): string {
  const c = counts(d);
  const e = d.endpoints;
  if (d.changes.length === 0 && e.added.length === 0 && e.removed.length === 0) return 'no reachability change';
  return `${c.added} access added, ${c.removed} removed; ${e.added.length} endpoint(s) added, ${e.removed.length} removed`;
}

export function diffTable(d: ReachabilityDiff, opts: { color?: boolean } = {}): string {
  const paint = (code: number, s: string) => (opts.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const out: string[] = [diffSummary(d)];
  for (const [pair, list] of groupByNamespacePair(d.changes)) {
    out.push('', pair);
    for (const c of list) {
      const kind = changeKind(c);
      const mark = kind === 'added' ? paint(32, '+') : paint(31, '-');
      out.push(`  ${mark} ${c.from} → ${c.to}  ${c.port}/${c.protocol}  ${word(c.before)} → ${word(c.after)}`);
      out.push(`      before: ${c.why.before}`);
      out.push(`      after:  ${c.why.after}`);
    }
  }
  if (d.endpoints.added.length > 0) out.push('', `endpoints added: ${d.endpoints.added.join(', ')}`);
  if (d.endpoints.removed.length > 0) out.push('', `endpoints removed: ${d.endpoints.removed.join(', ')}`);
  return out.join('\n');
}

/** Markdown text safe inside a table cell or inline code. */
function md(s: string): string {
  return s.replace(/[\\`*_{}[\]<>|#]/g, (c) => `\\${c}`).replace(/\n/g, ' ');
}

const code = (s: string) => `\`${s.replace(/`/g, "'")}\``;

/** A pull-request comment: summary, one table per namespace pair, reasons folded. */
export function diffMarkdown(d: ReachabilityDiff, opts: { title?: string; maxRows?: number } = {}): string {
  const maxRows = opts.maxRows ?? 200;
  const out: string[] = [`### ${opts.title ?? 'podwall: reachability changes'}`, '', `**${diffSummary(d)}**`];
  let shown = 0;
  for (const [pair, list] of groupByNamespacePair(d.changes)) {
    if (shown >= maxRows) break;
    const c = counts({ changes: list, endpoints: { added: [], removed: [] } });
    out.push('', `#### ${md(pair)} — ${c.added} added, ${c.removed} removed`, '', '| | from | to | port | before | after |', '|---|---|---|---|---|---|');
    const rows = list.slice(0, maxRows - shown);
    for (const x of rows) out.push(`| ${changeKind(x) === 'added' ? '🟢 added' : '🔴 removed'} | ${code(x.from)} | ${code(x.to)} | ${x.port}/${x.protocol} | ${word(x.before)} | ${word(x.after)} |`);
    shown += rows.length;
    out.push('', '<details><summary>why</summary>', '');
    for (const x of rows) out.push(`- ${code(`${x.from} → ${x.to} ${x.port}/${x.protocol}`)}`, `  - before: ${md(x.why.before)}`, `  - after: ${md(x.why.after)}`);
    out.push('', '</details>');
  }
  if (d.changes.length > shown) out.push('', `… and ${d.changes.length - shown} more changes (\`podwall diff -o json\` lists them all).`);
  if (d.endpoints.added.length > 0) out.push('', `**Endpoints added:** ${d.endpoints.added.map(code).join(', ')}`);
  if (d.endpoints.removed.length > 0) out.push('', `**Endpoints removed:** ${d.endpoints.removed.map(code).join(', ')}`);
  return out.join('\n');
}

export type { AccessChange };
