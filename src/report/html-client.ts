// The report page's script (runs in the browser, inlined by report/browser-bundle.ts). It draws the
// grid from the embedded cells — names on both axes, grouped and collapsible by namespace, filtered
// by namespace and port — and explains a clicked cell with podwall's own engine (sim/explain.ts,
// inlined too), on the embedded plan: the panel says exactly what `podwall explain` says.
import type { Plan } from '../policy/plan.js';
import type { EncodedPlan, ReportData } from './html-data.js';
import { explain, formatExplanation, resolveEndpoint } from '../sim/explain.js';

const data = JSON.parse(document.getElementById('podwall-data')!.textContent!) as ReportData;
const decode = (p: EncodedPlan | undefined): Plan | undefined => (p ? ({ ...p, podByIP: new Map(p.podByIP) } as unknown as Plan) : undefined);
const plan = decode(data.plan);
const beforePlan = decode(data.beforePlan);

/** Rendering more cells than this at once makes the page sluggish: collapse or filter first. */
const MAX_CELLS = 60_000;

type State = 'y' | 'n' | 'u' | 'ns' | 'self' | 'added' | 'removed' | 'both' | 'absent' | 'some';

interface Group {
  ns: string;
  /** Positions in the axis (rows or cols). */
  members: number[];
}

function groupsOf(axis: readonly number[]): Group[] {
  const out: Group[] = [];
  axis.forEach((e, pos) => {
    const ns = data.endpoints[e]!.ns;
    let g = out[out.length - 1];
    if (!g || g.ns !== ns) out.push((g = { ns, members: [] }));
    g.members.push(pos);
  });
  return out;
}

const rowGroups = groupsOf(data.rows);
const colGroups = groupsOf(data.cols);
const namespaces = [...new Set([...rowGroups, ...colGroups].map((g) => g.ns))].sort();
const C = data.cols.length;

const ui = {
  port: 0,
  shown: new Set(namespaces),
  expanded: new Set<string>(data.rows.length * data.cols.length <= 20_000 ? namespaces : []),
};

const rank = (ch: string) => (ch === 'n' ? 0 : ch === 'u' ? 1 : 2);

function served(e: number, port: string): boolean {
  const ports = data.endpoints[e]!.ports;
  return ports === undefined || ports.includes(port);
}

/** The state of one endpoint pair (positions in rows and cols). */
function cellState(r: number, c: number): State {
  const from = data.rows[r]!;
  const to = data.cols[c]!;
  if (from === to) return 'self';
  const a = data.cells[ui.port]![r * C + c]!;
  if (data.mode === 'diff') {
    const b = data.before![ui.port]![r * C + c]!;
    if (a === '-' || b === '-') return 'absent';
    if (rank(a) > rank(b)) return 'added';
    if (rank(a) < rank(b)) return 'removed';
  }
  if (a === 'y') return served(to, data.ports[ui.port]!) ? 'y' : 'ns';
  return a === 'u' ? 'u' : 'n';
}

const MARK: Record<State, string> = { y: '✓', n: '✗', u: '?', ns: '○', self: '·', added: '+', removed: '−', both: '±', absent: '', some: '~' };
const WORD: Record<State, string> = {
  y: 'allowed',
  n: 'denied',
  u: "depends on the pod's IP",
  ns: 'allowed, but the destination serves no such port',
  self: 'an endpoint reaches itself',
  added: 'access added',
  removed: 'access removed',
  both: 'access added and access removed',
  absent: 'endpoint only on one side',
  some: 'some allowed, some denied',
};

function counts(rg: Group, cg: Group): Record<State, number> {
  const n: Record<State, number> = { y: 0, n: 0, u: 0, ns: 0, self: 0, added: 0, removed: 0, both: 0, absent: 0, some: 0 };
  for (const r of rg.members) for (const c of cg.members) n[cellState(r, c)]++;
  return n;
}

function groupState(n: Record<State, number>): State {
  // A group never hides a change behind another: added and removed together are both.
  if (n.added > 0 && n.removed > 0) return 'both';
  if (n.added > 0) return 'added';
  if (n.removed > 0) return 'removed';
  if (n.u > 0) return 'u';
  // An endpoint reaching itself is no access worth a colour: a group where nothing else is allowed is denied.
  const allowed = n.y + n.ns;
  if (allowed === 0 && n.n === 0) return n.self > 0 ? 'self' : 'absent';
  if (n.n === 0) return n.y > 0 ? 'y' : 'ns';
  if (allowed === 0) return 'n';
  return 'some';
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const keyOf = (e: number) => data.endpoints[e]!.key;
const shortName = (e: number) => keyOf(e).slice(data.endpoints[e]!.ns.length + 1);

function render(): void {
  const grid = document.getElementById('grid')!;
  grid.textContent = '';
  const rgs = rowGroups.filter((g) => ui.shown.has(g.ns));
  const cgs = colGroups.filter((g) => ui.shown.has(g.ns));
  const width = (gs: Group[]) => gs.reduce((n, g) => n + (ui.expanded.has(g.ns) ? g.members.length : 1), 0);
  const total = width(rgs) * width(cgs);
  document.getElementById('size')!.textContent = `${width(rgs)} × ${width(cgs)} cells shown`;
  if (total > MAX_CELLS) {
    grid.append(el('p', { class: 'warn' }, `${total.toLocaleString()} cells are too many to draw at once: collapse namespaces or show fewer.`));
    return;
  }
  const table = el('table', { id: 'matrix' });
  const thead = el('thead');
  const top = el('tr');
  top.append(el('th', { class: 'corner', colspan: '2', rowspan: '2' }, 'from ↓  to →'));
  for (const g of cgs) {
    const open = ui.expanded.has(g.ns);
    // A collapsed group is one narrow column: its name runs vertically; an open one spans its members.
    // A group a few columns wide cannot hold its name across: it runs vertically too.
    const across = open && g.members.length * 19 - 6 >= Math.min(8 * (g.ns.length + 2), 160);
    const th = el('th', { class: `grp col${across ? '' : ' shut'}`, colspan: String(open ? g.members.length : 1), 'data-ns': g.ns, title: `${g.ns}: ${g.members.length} endpoint(s); click to ${open ? 'collapse' : 'expand'}` });
    const label = el('div', across ? { style: `width:${g.members.length * 19 - 6}px` } : {}, `${open ? '▾' : '▸'} ${g.ns}`);
    th.append(label);
    top.append(th);
  }
  const names = el('tr');
  for (const g of cgs) {
    if (ui.expanded.has(g.ns)) for (const c of g.members) names.append(el('th', { class: 'name col', title: keyOf(data.cols[c]!) }, shortName(data.cols[c]!)));
    else names.append(el('th', { class: 'name col agg' }, `${g.members.length}`));
  }
  thead.append(top, names);
  const tbody = el('tbody');
  for (const rg of rgs) {
    const open = ui.expanded.has(rg.ns);
    const lines = open ? rg.members.map((r) => [r]) : [rg.members];
    lines.forEach((members, li) => {
      const tr = el('tr');
      if (li === 0) {
        const th = el('th', { class: 'grp row', rowspan: String(lines.length), 'data-ns': rg.ns, title: `${rg.ns}: click to ${open ? 'collapse' : 'expand'}` });
        th.append(el('div', {}, `${open ? '▾' : '▸'} ${rg.ns}`));
        tr.append(th);
      }
      tr.append(open ? el('th', { class: 'name row', title: keyOf(data.rows[members[0]!]!) }, shortName(data.rows[members[0]!]!)) : el('th', { class: 'name row agg' }, `${members.length}`));
      for (const cg of cgs) {
        const cols = ui.expanded.has(cg.ns) ? cg.members.map((c) => [c]) : [cg.members];
        for (const cm of cols) {
          if (open && cm.length === 1 && ui.expanded.has(cg.ns)) {
            const s = cellState(members[0]!, cm[0]!);
            const td = el('td', { class: `c ${s}${auditMark(members[0]!, cm[0]!) ? ' audit' : ''}`, 'data-r': String(members[0]), 'data-c': String(cm[0]), title: `${keyOf(data.rows[members[0]!]!)} → ${keyOf(data.cols[cm[0]!]!)}: ${WORD[s]}` }, MARK[s]);
            tr.append(td);
          } else {
            const n = counts({ ns: rg.ns, members }, { ns: cg.ns, members: cm });
            const s = groupState(n);
            tr.append(el('td', { class: `c agg ${s}`, 'data-rg': rg.ns, 'data-cg': cg.ns, 'data-rm': members.join(','), 'data-cm': cm.join(','), title: summaryOf(n) }, MARK[s]));
          }
        }
      }
      tbody.append(tr);
    });
  }
  table.append(thead, tbody);
  grid.append(table);
}

function auditMark(r: number, c: number): string {
  const a = data.audit?.[ui.port]?.[r * C + c];
  return a === '!' || a === '+' ? a : '';
}

function summaryOf(n: Record<State, number>): string {
  const unchanged = (k: State) => data.mode === 'diff' && ['y', 'n', 'u', 'ns', 'self'].includes(k);
  return (Object.keys(n) as State[])
    .filter((k) => n[k] > 0)
    .map((k) => `${n[k]} ${unchanged(k) ? `unchanged (${WORD[k]})` : WORD[k]}`)
    .join(', ');
}

function explainText(p: Plan | undefined, from: string, to: string): string {
  if (!p) return data.mode === 'measured' ? 'Measured with real packets: no explanation (run podwall explain on the manifests).' : 'No plan in this report.';
  if (!p.pods.some((x) => x.key === from) || !p.pods.some((x) => x.key === to)) return 'One of the two endpoints does not exist on this side.';
  const [port, protocol] = data.ports[ui.port]!.split('/') as [string, 'TCP' | 'UDP' | 'SCTP'];
  try {
    return formatExplanation(explain(p, resolveEndpoint(p, from, 'from'), resolveEndpoint(p, to, 'to'), protocol, Number(port)));
  } catch (e) {
    return `cannot explain: ${(e as Error).message}`;
  }
}

function showPanel(parts: [string, string][], head: string, cls: string): void {
  const panel = document.getElementById('panel')!;
  panel.textContent = '';
  panel.hidden = false;
  const h = el('h2', { class: cls }, head);
  const close = el('button', { id: 'close', title: 'close' }, '×');
  close.addEventListener('click', () => (panel.hidden = true));
  panel.append(close, h);
  for (const [title, body] of parts) {
    panel.append(el('h3', {}, title));
    panel.append(el('pre', { class: 'why' }, body));
  }
}

function onCell(td: HTMLElement): void {
  if (td.dataset.r !== undefined) {
    showPair(Number(td.dataset.r), Number(td.dataset.c));
    return;
  }
  const port = data.ports[ui.port]!;
  const rm = td.dataset.rm!.split(',').map(Number);
  const cm = td.dataset.cm!.split(',').map(Number);
  const n = counts({ ns: td.dataset.rg!, members: rm }, { ns: td.dataset.cg!, members: cm });
  showPanel([['pairs', summaryOf(n)]], `${td.dataset.rg} → ${td.dataset.cg}  ${port}`, groupState(n));
  // The pairs a reviewer looks for — who gets in (or, in a diff, what changed) — listed, each
  // explained on a click; denied pairs are only counted.
  const wanted: State[] = data.mode === 'diff' ? ['added', 'removed'] : ['y', 'u', 'ns'];
  const pairs: [number, number, State][] = [];
  for (const r of rm) for (const c of cm) {
    const s = cellState(r, c);
    if (wanted.includes(s)) pairs.push([r, c, s]);
  }
  const panel = document.getElementById('panel')!;
  if (pairs.length === 0) {
    panel.append(el('p', {}, data.mode === 'diff' ? 'No access changes between these namespaces on this port.' : 'No pair is allowed or depends on an IP between these namespaces on this port.'));
    return;
  }
  const LIST = 500;
  panel.append(el('h3', {}, `${data.mode === 'diff' ? 'changed' : 'allowed or depending on the IP'}: ${pairs.length} pair(s)${pairs.length > LIST ? `, the first ${LIST}` : ''} — click one to explain it`));
  const list = el('ul', { class: 'pairs' });
  for (const [r, c, s] of pairs.slice(0, LIST)) {
    const li = el('li');
    li.append(el('i', { class: s }, MARK[s]), el('a', { href: '#', 'data-r': String(r), 'data-c': String(c) }, `${keyOf(data.rows[r]!)} → ${keyOf(data.cols[c]!)}`));
    list.append(li);
  }
  panel.append(list);
}

/** The whole explanation of one pair (positions in rows and cols), in the panel. */
function showPair(r: number, c: number): void {
  const port = data.ports[ui.port]!;
  {
    const from = keyOf(data.rows[r]!);
    const to = keyOf(data.cols[c]!);
    const s = cellState(r, c);
    const parts: [string, string][] = [];
    if (s === 'ns') parts.push(['not served', `${to} declares no container port ${port}: policy allows it, but nothing is declared listening there.`]);
    if (data.mode === 'diff') {
      parts.push([`before: ${from} → ${to}`, explainText(beforePlan, from, to)]);
      parts.push([`after: ${from} → ${to}`, explainText(plan, from, to)]);
    } else {
      parts.push([`${from} → ${to}`, explainText(plan, from, to)]);
      if (from !== to) parts.push([`and back: ${to} → ${from}`, explainText(plan, to, from)]);
    }
    showPanel(parts, `${from} → ${to}  ${port}: ${WORD[s]}`, s);
  }
}

function controls(): void {
  const sel = document.getElementById('port') as HTMLSelectElement;
  data.ports.forEach((p, i) => sel.append(el('option', { value: String(i) }, p)));
  sel.addEventListener('change', () => {
    ui.port = Number(sel.value);
    render();
  });
  const list = document.getElementById('namespaces')!;
  for (const ns of namespaces) {
    const label = el('label', { class: 'ns' });
    const box = el('input', { type: 'checkbox', value: ns });
    box.checked = true;
    box.addEventListener('change', () => {
      if (box.checked) ui.shown.add(ns);
      else ui.shown.delete(ns);
      render();
    });
    label.append(box, document.createTextNode(` ${ns}`));
    list.append(label);
  }
  const filter = document.getElementById('nsfilter') as HTMLInputElement;
  filter.addEventListener('input', () => {
    const q = filter.value.trim().toLowerCase();
    for (const box of list.querySelectorAll<HTMLInputElement>('input[type=checkbox]')) {
      const on = q === '' || box.value.toLowerCase().includes(q);
      box.checked = on;
      if (on) ui.shown.add(box.value);
      else ui.shown.delete(box.value);
    }
    render();
  });
  document.getElementById('expand')!.addEventListener('click', () => {
    for (const ns of ui.shown) ui.expanded.add(ns);
    render();
  });
  document.getElementById('collapse')!.addEventListener('click', () => {
    ui.expanded.clear();
    render();
  });
  document.getElementById('grid')!.addEventListener('click', (ev) => {
    const t = ev.target as HTMLElement;
    const grp = t.closest<HTMLElement>('th.grp');
    if (grp) {
      const ns = grp.dataset.ns!;
      if (ui.expanded.has(ns)) ui.expanded.delete(ns);
      else ui.expanded.add(ns);
      render();
      return;
    }
    const td = t.closest<HTMLElement>('td.c');
    if (td) onCell(td);
  });
  document.getElementById('panel')!.addEventListener('click', (ev) => {
    const a = (ev.target as HTMLElement).closest<HTMLElement>('a[data-r]');
    if (!a) return;
    ev.preventDefault();
    showPair(Number(a.dataset.r), Number(a.dataset.c));
  });
}

controls();
render();
document.body.dataset.ready = 'true';
