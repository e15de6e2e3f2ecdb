// Plain-text reachability grids.
import type { MatrixJson } from '../sim/matrix.js';

export function matrixTable(m: MatrixJson, opts: { color?: boolean } = {}): string {
  const out: string[] = [];
  const idx = m.pods.map((_, i) => String(i + 1));
  const yes = opts.color ? '\x1b[32m✓\x1b[0m' : '✓';
  const no = opts.color ? '\x1b[31m✗\x1b[0m' : '.';
  const maybe = opts.color ? '\x1b[33m?\x1b[0m' : '?';
  let anyMaybe = false;
  // Audited policies (not enforced): cells they would change once enforced.
  const wouldDeny = opts.color ? '\x1b[33m!\x1b[0m' : '!';
  const wouldAllow = opts.color ? '\x1b[36m+\x1b[0m' : '+';
  const labelW = Math.max(4, ...m.pods.map((p, i) => `${i + 1} ${p}`.length));
  const cellW = Math.max(2, ...idx.map((s) => s.length)) + 1;
  for (const probe of m.probes) {
    let allowed = 0;
    let open = 0;
    out.push(`${probe.port}/${probe.protocol}   (rows: from, columns: to)`);
    out.push(`${' '.repeat(labelW)} ${idx.map((s) => s.padStart(cellW)).join('')}`);
    m.pods.forEach((from, i) => {
      const cells = m.pods.map((to) => {
        const a = probe.allowed[from]?.[to];
        if (a === true) allowed++;
        if (a === null) open++;
        const change = probe.audit?.[from]?.[to];
        return ' '.repeat(cellW - 1) + (change === 'would-deny' ? wouldDeny : change === 'would-allow' ? wouldAllow : a === true ? yes : a === null ? maybe : no);
      });
      out.push(`${`${i + 1} ${from}`.padEnd(labelW)} ${cells.join('')}`);
    });
    if (open > 0) anyMaybe = true;
    out.push(`${allowed} of ${m.pods.length * m.pods.length} pairs allowed${open > 0 ? `, ${open} depend on pod IPs` : ''}`);
    out.push('');
  }
  out.push(`legend: ${yes} allowed   ${no} denied${anyMaybe ? `   ${maybe} depends on the pod's IP (podwall explain says why)` : ''}   (a pod always reaches itself)`);
  if (m.audited) {
    out.push(`audited (not enforced): ${m.audited.join(', ')} — ${wouldDeny} allowed now, denied once they are enforced   ${wouldAllow} denied now, allowed once they are enforced`);
  }
  return out.join('\n');
}
