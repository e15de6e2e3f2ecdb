// One self-contained HTML page per report (`matrix -o html`, `diff -o html`, `lab probe -o html`):
// the cells and the plan embedded as JSON, the page script and podwall's explain engine inlined
// (report/browser-bundle.ts). No network access, nothing to install; it opens from a file.
import type { Plan } from '../policy/plan.js';
import type { ProbePort } from '../policy/ports.js';
import { MatrixView, type MatrixJson } from '../sim/matrix.js';
import { CELL_ALLOWED, CELL_DENIED, CELL_DEPENDS, Reachability } from '../sim/reachability.js';
import type { ReachabilityDiff } from '../sim/diff.js';
import { diffSummary } from './diff.js';
import { pageScripts } from './browser-bundle.js';
import type { EncodedPlan, ReportData, ReportEndpoint } from './html-data.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const cellChar = (v: boolean | null | undefined): string => (v === undefined ? '-' : v === null ? 'u' : v ? 'y' : 'n');
const portText = (p: { port: number; protocol: string }) => `${p.port}/${p.protocol}`;
/** cellChar of a Reachability.rowAt code, as an ASCII byte. */
const CODE_BYTE: Record<number, number> = { [CELL_DENIED]: 0x6e, [CELL_ALLOWED]: 0x79, [CELL_DEPENDS]: 0x75 };
const DASH = 0x2d;

function encodePlan(p: Plan): EncodedPlan {
  return { ...(p as unknown as Record<string, unknown>), podByIP: [...p.podByIP] };
}

/** Endpoint order on both axes: by namespace, then key (so namespaces group). */
function byNamespace(eps: readonly ReportEndpoint[]): (a: number, b: number) => number {
  return (a, b) => {
    const x = eps[a]!;
    const y = eps[b]!;
    return x.ns < y.ns ? -1 : x.ns > y.ns ? 1 : x.key < y.key ? -1 : x.key > y.key ? 1 : 0;
  };
}

function endpointOf(p: { key: string; namespace: string; ports?: readonly { port: number; protocol: string }[] }): ReportEndpoint {
  const e: ReportEndpoint = { key: p.key, ns: p.namespace };
  if (p.ports) e.ports = [...new Set(p.ports.map(portText))];
  return e;
}

function fromView(view: MatrixView, title: string): ReportData {
  const eps = view.reach.endpoints.map(endpointOf);
  const order = byNamespace(eps);
  const rows = [...view.rows].sort(order);
  const cols = [...view.cols].sort(order);
  const cells: string[] = [];
  const audit: string[] = [];
  let allowed = 0;
  let depends = 0;
  const codes = new Uint8Array(cols.length);
  for (const [pi] of view.ports.entries()) {
    const out = Buffer.alloc(rows.length * cols.length);
    let a = '';
    for (const [ri, i] of rows.entries()) {
      view.reach.rowAt(i, cols, pi, codes);
      for (let k = 0; k < codes.length; k++) {
        const code = codes[k]!;
        if (code === CELL_ALLOWED) allowed++;
        else if (code === CELL_DEPENDS) depends++;
        out[ri * cols.length + k] = CODE_BYTE[code]!;
      }
      if (view.enforced) {
        for (const j of cols) {
          const change = view.auditChange(i, j, pi);
          a += change === 'would-deny' ? '!' : change === 'would-allow' ? '+' : ' ';
        }
      }
    }
    cells.push(out.toString('latin1'));
    audit.push(a);
  }
  const data: ReportData = {
    title,
    mode: 'matrix',
    summary: matrixSummary(rows.length, cols.length, view.ports.length, allowed, depends),
    ports: view.ports.map(portText),
    endpoints: eps,
    rows,
    cols,
    cells,
    plan: encodePlan(view.reach.plan),
  };
  const audited = view.audited();
  if (audited.length > 0) {
    data.audit = audit;
    data.audited = audited;
  }
  return data;
}

/** `1,000 × 1,000 endpoints, 3 ports: 3,000,000 pairs — 48,120 allowed, 19,007 depend on the pod's IP, 2,932,873 denied` */
export function matrixSummary(rows: number, cols: number, ports: number, allowed: number, depends: number): string {
  const f = (n: number) => n.toLocaleString('en-US');
  const total = rows * cols * ports;
  return `${f(rows)} × ${f(cols)} endpoints, ${ports} port${ports === 1 ? '' : 's'}: ${f(total)} pairs — ${f(allowed)} allowed${depends > 0 ? `, ${f(depends)} depend on the pod's IP` : ''}, ${f(total - allowed - depends)} denied`;
}

function fromMeasured(m: MatrixJson, title: string): ReportData {
  const eps: ReportEndpoint[] = m.pods.map((key) => ({ key, ns: key.slice(0, key.indexOf('/')) }));
  const index = new Map(m.pods.map((k, i) => [k, i]));
  const order = byNamespace(eps);
  const firstRows = m.probes[0] ? Object.keys(m.probes[0].allowed) : m.pods;
  const rows = firstRows.map((k) => index.get(k)!).sort(order);
  const firstCols = m.probes[0] && firstRows[0] !== undefined ? Object.keys(m.probes[0].allowed[firstRows[0]]!) : m.pods;
  const cols = firstCols.map((k) => index.get(k)!).sort(order);
  const cells = m.probes.map((p) => rows.map((i) => cols.map((j) => cellChar(p.allowed[m.pods[i]!]?.[m.pods[j]!] ?? false)).join('')).join(''));
  return { title, mode: 'measured', summary: `${rows.length} × ${cols.length} endpoints measured with real packets`, ports: m.probes.map(portText), endpoints: eps, rows, cols, cells };
}

/** The matrix report: from a computed view (cells explained in the page), or a measured matrix. */
export function matrixHtml(src: MatrixView | MatrixJson, title = 'podwall reachability'): string {
  return page(src instanceof MatrixView ? fromView(src, title) : fromMeasured(src, title));
}

/** The diff report: both states' cells over every endpoint of either side, added and removed access coloured. */
export function diffHtml(before: Plan, after: Plan, ports: readonly ProbePort[], d: ReachabilityDiff, title = 'podwall: reachability changes'): string {
  const a = new Reachability(before, ports);
  const b = new Reachability(after, ports);
  const ia = new Map(before.pods.map((p, i) => [p.key, i]));
  const ib = new Map(after.pods.map((p, i) => [p.key, i]));
  const byKey = new Map<string, ReportEndpoint>();
  for (const p of before.pods) byKey.set(p.key, { ...endpointOf(p), status: 'removed' });
  for (const p of after.pods) {
    const e = endpointOf(p);
    if (byKey.has(p.key)) byKey.set(p.key, e);
    else byKey.set(p.key, { ...e, status: 'added' });
  }
  const eps = [...byKey.values()];
  const order = byNamespace(eps);
  const all = eps.map((_, i) => i).sort(order);
  // One side's cells over every endpoint of either side ('-' where the endpoint is not on this side), a row at once.
  // (ASCII bytes, decoded once: 3 million cells as string concatenation are mostly garbage collection.)
  const side = (r: Reachability, idx: Map<string, number>, pi: number) => {
    const at = all.map((i) => idx.get(eps[i]!.key));
    const present = at.filter((x): x is number => x !== undefined);
    const codes = new Uint8Array(present.length);
    const out = Buffer.alloc(all.length * all.length, DASH);
    at.forEach((x, row) => {
      if (x === undefined) return;
      r.rowAt(x, present, pi, codes);
      let k = 0;
      at.forEach((y, col) => {
        if (y !== undefined) out[row * all.length + col] = CODE_BYTE[codes[k++]!]!;
      });
    });
    return out.toString('latin1');
  };
  return page({
    title,
    mode: 'diff',
    summary: diffSummary(d),
    ports: ports.map(portText),
    endpoints: eps,
    rows: all,
    cols: all,
    cells: ports.map((_, pi) => side(b, ib, pi)),
    before: ports.map((_, pi) => side(a, ia, pi)),
    plan: encodePlan(after),
    beforePlan: encodePlan(before),
  });
}

const CSS = `
:root{--y:#2e9e4f;--n:#d64541;--u:#e0a100;--ns:#b9dfc4;--bg:#fff;--fg:#222}
*{box-sizing:border-box}
body{font:13px system-ui,sans-serif;margin:0;color:var(--fg);background:var(--bg)}
header{padding:12px 16px;border-bottom:1px solid #ddd}
h1{font-size:18px;margin:0 0 4px}
#summary{color:#555}
#controls{display:flex;gap:16px;align-items:flex-start;padding:8px 16px;border-bottom:1px solid #eee;flex-wrap:wrap}
#controls details{max-width:420px}
#namespaces{max-height:180px;overflow:auto;display:grid;grid-template-columns:repeat(auto-fill,minmax(130px,1fr));gap:2px 8px;margin-top:4px}
.legend span{display:inline-block;margin-right:10px}
.legend i{display:inline-block;width:14px;height:14px;vertical-align:middle;margin-right:3px;border:1px solid #fff;font-style:normal;text-align:center;line-height:13px;font-size:11px;color:#fff}
main{display:flex}
#grid{overflow:auto;padding:8px 16px;flex:1;max-height:calc(100vh - 150px)}
table{border-collapse:collapse}
th{font-weight:normal;white-space:nowrap;background:#fafafa;position:sticky}
thead th{top:0;z-index:2}
th.grp{cursor:pointer;color:#124;font-weight:600;padding:2px 3px;border:1px solid #ddd}
th.grp div{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
th.grp.col.shut div{writing-mode:vertical-rl;transform:rotate(180deg);max-height:150px}
th.grp.row{left:0;z-index:1;text-align:left;vertical-align:top}
th.grp.row div{width:140px}
th.name.col{writing-mode:vertical-rl;transform:rotate(180deg);max-height:160px;overflow:hidden;text-overflow:ellipsis;padding:4px 0;font-size:11px}
th.name.row{text-align:left;font-size:11px;padding:0 6px;left:148px;z-index:1;max-width:220px;overflow:hidden;text-overflow:ellipsis}
th.agg{color:#888;font-style:italic}
td.c{width:18px;height:18px;min-width:18px;text-align:center;cursor:pointer;border:1px solid #fff;font-size:11px;color:#fff;padding:0}
td.c:hover{outline:2px solid #124;outline-offset:-2px}
.y,i.y{background:var(--y)}
.n,i.n{background:var(--n)}
.u,i.u{background:repeating-linear-gradient(45deg,var(--u),var(--u) 3px,#f6d77a 3px,#f6d77a 6px);color:#222!important}
.ns,i.ns{background:var(--ns);color:#2e7d46!important}
.self{background:#8fc9a0}
.some,i.some{background:linear-gradient(135deg,var(--y) 50%,var(--n) 50%)}
.added,i.added{background:#0a8f3c;box-shadow:inset 0 0 0 2px #b7f5c9;font-weight:700}
.removed,i.removed{background:#b3141d;box-shadow:inset 0 0 0 2px #ffc2c5;font-weight:700}
.absent{background:#e8e8e8}
.both,i.both{background:linear-gradient(135deg,#0a8f3c 50%,#b3141d 50%);font-weight:700}
.diff td.c.y,.diff td.c.n,.diff td.c.u,.diff td.c.ns,.diff td.c.self,.diff td.c.some{opacity:.35}
ul.pairs{list-style:none;padding:0;margin:4px 0;font:12px ui-monospace,monospace}
ul.pairs li{margin:1px 0}
ul.pairs i{display:inline-block;width:14px;height:14px;margin-right:6px;text-align:center;font-style:normal;color:#fff;font-size:11px;line-height:14px;vertical-align:middle}
td.audit{outline:2px dashed #f0a500;outline-offset:-3px}
#panel{width:46%;max-width:720px;border-left:1px solid #ddd;padding:8px 16px;overflow:auto;max-height:calc(100vh - 150px);position:relative}
#panel h2{font-size:14px;padding:4px 6px;color:#fff;border-radius:3px}
#panel h2.self,#panel h2.absent{color:#222}
#panel h3{font-size:12px;margin:10px 0 2px;color:#444}
#panel pre{white-space:pre-wrap;font:12px ui-monospace,monospace;background:#f6f6f6;padding:8px;margin:0}
#close{position:absolute;right:8px;top:8px;border:0;background:none;font-size:18px;cursor:pointer}
.warn{color:#a33}
`;

function page(data: ReportData): string {
  // JSON inside a script element: no "</script>" or "<!--" can end it early.
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  const legend =
    data.mode === 'diff'
      ? '<span><i class="added">+</i>access added</span><span><i class="removed">−</i>access removed</span><span><i class="both">±</i>both (a namespace group)</span><span><i class="y" style="opacity:.35">✓</i><i class="n" style="opacity:.35">✗</i><i class="u" style="opacity:.35">?</i>unchanged (allowed, denied, depends)</span><span><i class="absent"></i>endpoint on one side only</span>'
      : '<span><i class="y">✓</i>allowed</span><span><i class="ns">○</i>allowed, not served (no such container port)</span><span><i class="n">✗</i>denied</span><span><i class="u">?</i>depends on the pod\'s IP</span><span><i class="some">~</i>some allowed, some denied (a namespace group; click for the pairs)</span><span><i class="self">·</i>itself</span>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(data.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${CSS}</style></head>
<body class="${data.mode}">
<header><h1>${escapeHtml(data.title)}</h1><div id="summary">${escapeHtml(data.summary)}</div>
${data.audited ? `<div>Audited (not enforced): ${escapeHtml(data.audited.join(', '))} — dashed cells change once they are enforced.</div>` : ''}</header>
<div id="controls">
<label>port <select id="port"></select></label>
<details><summary>namespaces</summary><input id="nsfilter" type="search" placeholder="filter namespaces"><div id="namespaces"></div></details>
<span><button id="expand">expand all</button> <button id="collapse">collapse all</button> <span id="size"></span></span>
<div class="legend">${legend}</div>
</div>
<main><div id="grid"></div><aside id="panel" hidden></aside></main>
<noscript>This report needs JavaScript (it runs inside the file; nothing is fetched).</noscript>
<script type="application/json" id="podwall-data">${json}</script>
${pageScripts()}
</body></html>
`;
}
