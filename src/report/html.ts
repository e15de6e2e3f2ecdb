// One self-contained HTML page: a heatmap per probe, the reason on hover.
import type { DetailedMatrix } from '../sim/matrix.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function matrixHtml(d: DetailedMatrix, title = 'podwall reachability'): string {
  const m = d.json;
  const sections = m.probes.map((probe, pi) => {
    const head = m.pods.map((p, i) => `<th title="${escapeHtml(p)}"><span>${i + 1}</span></th>`).join('');
    const rows = m.pods
      .map((from, i) => {
        const cells = m.pods
          .map((to) => {
            const ok = probe.allowed[from]?.[to] === true;
            const v = d.verdict?.(pi, from, to);
            const why = v ? v.summary : d.verdict ? 'no common IP family' : 'measured';
            // An audited policy would change this cell once enforced: ! (would deny) or + (would allow).
            const change = probe.audit?.[from]?.[to];
            const mark = change === 'would-deny' ? '!' : change === 'would-allow' ? '+' : '';
            return `<td class="${ok ? 'y' : 'n'}${mark ? ' a' : ''}" title="${escapeHtml(`${from} → ${to} ${probe.port}/${probe.protocol}\n${why}`)}">${ok ? '✓' : '✗'}${mark}</td>`;
          })
          .join('');
        return `<tr><th class="r">${i + 1} ${escapeHtml(from)}</th>${cells}</tr>`;
      })
      .join('\n');
    const allowed = m.pods.reduce((n, f) => n + m.pods.filter((t) => probe.allowed[f]?.[t]).length, 0);
    return `<section><h2>${probe.port}/${escapeHtml(probe.protocol)} <small>${allowed} of ${m.pods.length ** 2} pairs allowed</small></h2>
<table><thead><tr><th class="r">from \\ to</th>${head}</tr></thead><tbody>
${rows}
</tbody></table></section>`;
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}
td{width:1.6em;height:1.6em;text-align:center;border:1px solid #fff;cursor:help}
td.y{background:#2e9e4f;color:#fff}td.n{background:#d64541;color:#fff}td.a{outline:2px dashed #f0a500;outline-offset:-3px}
th{font-weight:normal;font-size:12px;padding:0 4px}th.r{text-align:left;white-space:nowrap}
small{color:#777;font-weight:normal}
</style></head><body>
<h1>${escapeHtml(title)}</h1>
<p>Rows: source pod; columns: destination pod. Green: allowed, red: denied. Hover a cell for the reason.</p>
${m.audited ? `<p>Audited (not enforced): ${escapeHtml(m.audited.join(', '))}. Dashed cells change once they are enforced: ! allowed now, denied then; + denied now, allowed then.</p>` : ''}
${sections.join('\n')}
</body></html>
`;
}
