// Plain-text reachability grids.
import type { MatrixJson } from '../sim/matrix.js';

export function matrixTable(m: MatrixJson, opts: { color?: boolean } = {}): string {
  const out: string[] = [];
  const idx = m.pods.map((_, i) => String(i + 1));
  const yes = opts.color ? '\x1b[32m✓\x1b[0m' : '✓';
  const no = opts.color ? '\x1b[31m✗\x1b[0m' : '.';
  const maybe = opts.color ? '\x1b[33m?\x1b[0m' : '?';
  let anyMaybe = false;
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
        return ' '.repeat(cellW - 1) + (a === true ? yes : a === null ? maybe : no);
      });
      out.push(`${`${i + 1} ${from}`.padEnd(labelW)} ${cells.join('')}`);
    });
    if (open > 0) anyMaybe = true;
    out.push(`${allowed} of ${m.pods.length * m.pods.length} pairs allowed${open > 0 ? `, ${open} depend on pod IPs` : ''}`);
    out.push('');
  }
  out.push(`legend: ${yes} allowed   ${no} denied${anyMaybe ? `   ${maybe} depends on the pod's IP (podwall explain says why)` : ''}   (a pod always reaches itself)`);
  return out.join('\n');
}
