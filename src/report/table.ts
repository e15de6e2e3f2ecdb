// Plain-text reachability grids.
import type { MatrixJson } from '../sim/matrix.js';
import type { AggregateJson } from '../sim/aggregate.js';

interface Marks {
  yes: string;
  no: string;
  maybe: string;
  some: string;
}

function marks(color: boolean | undefined): Marks {
  const c = (code: number, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { yes: c(32, '✓'), no: color ? c(31, '✗') : '.', maybe: c(33, '?'), some: c(36, '~') };
}

/** Rows × columns grids, one per port; rows and columns numbered by their place in `pods`. */
export function matrixTable(m: MatrixJson, opts: { color?: boolean } = {}): string {
  const out: string[] = [];
  const { yes, no, maybe } = marks(opts.color);
  let anyMaybe = false;
  // Audited policies (not enforced): cells they would change once enforced.
  const wouldDeny = opts.color ? '\x1b[33m!\x1b[0m' : '!';
  const wouldAllow = opts.color ? '\x1b[36m+\x1b[0m' : '+';
  const num = new Map(m.pods.map((p, i) => [p, String(i + 1)]));
  for (const probe of m.probes) {
    const rows = Object.keys(probe.allowed);
    const cols = rows.length > 0 ? Object.keys(probe.allowed[rows[0]!]!) : m.pods;
    const labelW = Math.max(4, ...rows.map((p) => `${num.get(p)} ${p}`.length));
    const cellW = Math.max(2, ...cols.map((c) => num.get(c)!.length)) + 1;
    let allowed = 0;
    let open = 0;
    out.push(`${probe.port}/${probe.protocol}   (rows: from, columns: to)`);
    out.push(`${' '.repeat(labelW)} ${cols.map((c) => num.get(c)!.padStart(cellW)).join('')}`);
    for (const from of rows) {
      const cells = cols.map((to) => {
        const a = probe.allowed[from]?.[to];
        if (a === true) allowed++;
        if (a === null) open++;
        const change = probe.audit?.[from]?.[to];
        return ' '.repeat(cellW - 1) + (change === 'would-deny' ? wouldDeny : change === 'would-allow' ? wouldAllow : a === true ? yes : a === null ? maybe : no);
      });
      out.push(`${`${num.get(from)} ${from}`.padEnd(labelW)} ${cells.join('')}`);
    }
    if (open > 0) anyMaybe = true;
    out.push(`${allowed} of ${rows.length * cols.length} pairs allowed${open > 0 ? `, ${open} depend on pod IPs` : ''}`);
    out.push('');
  }
  out.push(`legend: ${yes} allowed   ${no} denied${anyMaybe ? `   ${maybe} depends on the pod's IP (podwall explain says why)` : ''}   (a pod always reaches itself)`);
  if (m.audited) {
    out.push(`audited (not enforced): ${m.audited.join(', ')} — ${wouldDeny} allowed now, denied once they are enforced   ${wouldAllow} denied now, allowed once they are enforced`);
  }
  return out.join('\n');
}

/** Namespace × namespace grids: ✓ every pair allowed, . none, ~ some, ? some depend on pod IPs. */
export function aggregateTable(a: AggregateJson, opts: { color?: boolean } = {}): string {
  const out: string[] = [];
  const { yes, no, maybe, some } = marks(opts.color);
  const labelW = Math.max(4, ...a.namespaces.map((n, i) => `${i + 1} ${n}`.length));
  const cellW = String(a.namespaces.length).length + 2;
  for (const probe of a.probes) {
    const rows = a.namespaces.filter((n) => probe.pairs[n]);
    const cols = a.namespaces.filter((n) => rows.some((r) => probe.pairs[r]?.[n]));
    let allowed = 0;
    let total = 0;
    let unknown = 0;
    out.push(`${probe.port}/${probe.protocol}   by namespace (rows: from, columns: to)`);
    out.push(`${' '.repeat(labelW)} ${cols.map((c) => String(a.namespaces.indexOf(c) + 1).padStart(cellW)).join('')}`);
    for (const r of rows) {
      const cells = cols.map((c) => {
        const x = probe.pairs[r]?.[c];
        if (!x) return ' '.repeat(cellW);
        const n = x.allowed + x.denied + x.unknown;
        allowed += x.allowed;
        unknown += x.unknown;
        total += n;
        const mark = x.unknown > 0 ? maybe : x.allowed === n ? yes : x.allowed === 0 ? no : some;
        return ' '.repeat(cellW - 1) + mark;
      });
      out.push(`${`${a.namespaces.indexOf(r) + 1} ${r}`.padEnd(labelW)} ${cells.join('')}`);
    }
    out.push(`${allowed} of ${total} endpoint pairs allowed${unknown > 0 ? `, ${unknown} depend on pod IPs` : ''}`);
    out.push('');
  }
  out.push(`legend: ${yes} every pair allowed   ${no} none   ${some} some   ${maybe} some depend on the pod's IP   (-o json gives the counts)`);
  return out.join('\n');
}
