// The HTML report in a real browser: Debian's chromium driven by puppeteer-core (which downloads
// nothing). Load a report, filter by port and namespace, collapse and expand a namespace, click a
// cell and read the panel — which must say exactly what `podwall explain` says — and save a
// screenshot. The page must fetch nothing. Also a diff report and a 1,000-endpoint report.
import test from 'ava';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { existsSync, mkdtempSync, rmSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { compile } from '../../src/policy/compile.js';
import { matrixView } from '../../src/sim/matrix.js';
import { diffPlans } from '../../src/sim/diff.js';
import { explain, formatExplanation, resolveEndpoint } from '../../src/sim/explain.js';
import { matrixHtml, diffHtml } from '../../src/report/html.js';
import { loadManifests } from '../../src/cluster/manifests.js';
import { generateCluster, loadIntoStore } from '../../src/bench/generator.js';
import type { Plan } from '../../src/policy/plan.js';

const CHROMIUM = process.env.PODWALL_CHROMIUM ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const dir = mkdtempSync(join(tmpdir(), 'podwall-report-'));
let browser: Browser | undefined;

test.before(async () => {
  // Not skipped when missing: scripts/setup.sh installs chromium; a CI without it must fail here.
  if (!CHROMIUM) throw new Error('chromium is not installed (scripts/setup.sh installs it; or set PODWALL_CHROMIUM)');
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    userDataDir: join(dir, 'profile'),
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
test.after.always(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

const problemsOf = new WeakMap<Page, string[]>();

/** Opens a report file; every request other than the file itself or an inlined data: module is a problem (see clean). */
async function open(html: string, name: string): Promise<Page> {
  const file = join(dir, name);
  writeFileSync(file, html);
  const page = await browser!.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${String(e)}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('request', (r) => !r.url().startsWith('file:') && !r.url().startsWith('data:') && problems.push(`network: ${r.url()}`));
  await page.goto(`file://${file}`);
  problemsOf.set(page, problems);
  await page.waitForSelector('body[data-ready=true]', { timeout: 60_000 });
  return page;
}

/** The page ran without errors and fetched nothing. */
async function clean(t: import('ava').ExecutionContext, page: Page): Promise<void> {
  t.deepEqual(problemsOf.get(page), [], 'the page ran without errors and fetched nothing');
  await page.close();
}

async function shot(t: import('ava').ExecutionContext, page: Page, name: string): Promise<void> {
  const path = join(process.env.PODWALL_SCREENSHOT_DIR ?? dir, name);
  await page.screenshot({ path });
  t.true(existsSync(path));
  t.log(`screenshot: ${path}`);
}

const panelText = (page: Page) => page.$eval('#panel', (e) => (e as HTMLElement).innerText);
const whyTexts = (page: Page) => page.$$eval('#panel pre.why', (l) => l.map((e) => e.textContent ?? ''));

function explained(plan: Plan, from: string, to: string, port: number, protocol: 'TCP' | 'UDP' = 'TCP'): string {
  return formatExplanation(explain(plan, resolveEndpoint(plan, from, 'from'), resolveEndpoint(plan, to, 'to'), protocol, port));
}

// Workloads, a planned pod, an IP pod, a partial ipBlock (an open cell) and a pod serving no port.
const OBJECTS = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { team: 'shop' } } },
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ops' } },
  { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop' }, spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'w', image: 'web', ports: [{ containerPort: 8080, name: 'http' }] }] } } } },
  { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db', namespace: 'shop' }, spec: { selector: { matchLabels: { app: 'db' } }, serviceName: 'db', template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'pg', image: 'postgres', ports: [{ containerPort: 5432 }] }] } } } },
  { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'backup', namespace: 'ops' }, spec: { schedule: '@daily', jobTemplate: { spec: { template: { metadata: { labels: { app: 'backup' } }, spec: { restartPolicy: 'Never', containers: [{ name: 'b', image: 'backup' }] } } } } } },
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'debug', namespace: 'ops', labels: { app: 'debug' } }, spec: { containers: [{ name: 'd', image: 'busybox' }] }, status: { phase: 'Running', podIP: '192.168.7.7', podIPs: [{ ip: '192.168.7.7' }] } },
  { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'db', namespace: 'shop' }, spec: { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }, { ipBlock: { cidr: '10.0.0.0/8' } }], ports: [{ port: 5432 }] }] } },
];

async function planOf(objects: unknown[]): Promise<Plan> {
  const f = join(dir, `in-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(f, objects.map((o) => stringify(o)).join('---\n'));
  const r = await loadManifests([f]);
  const errors = r.findings.filter((x) => x.severity === 'error');
  if (errors.length > 0) throw new Error(`fixture invalid: ${JSON.stringify(errors)}`);
  return compile(r.store, { ipless: true });
}

test.serial('matrix report: load, filter by port and namespace, collapse, click a cell — the panel is podwall explain', async (t) => {
  const plan = await planOf(OBJECTS);
  const ports = [
    { port: 5432, protocol: 'TCP' as const },
    { port: 8080, protocol: 'TCP' as const },
  ];
  const page = await open(matrixHtml(matrixView(plan, ports), 'browser test'), 'matrix.html');
  t.is(await page.title(), 'browser test');
  // 4 × 4 endpoints, expanded: names on both axes, grouped by namespace.
  t.is((await page.$$('td.c:not(.agg)')).length, 16);
  t.deepEqual(await page.$$eval('th.grp.row', (l) => l.map((e) => e.textContent)), ['▾ ops', '▾ shop']);
  t.deepEqual(await page.$$eval('th.name.row', (l) => l.map((e) => e.getAttribute('title'))), ['ops/backup[CronJob]', 'ops/debug', 'shop/db[StatefulSet]', 'shop/web[Deployment]']);
  // 5432/TCP: web → db allowed; backup → db depends on the IP (10.0.0.0/8 holds part of the pod network); debug → db denied.
  const cell = (from: string, to: string) => page.$(`td.c[title^="${from} → ${to}:"]`);
  const cls = async (from: string, to: string) => (await (await cell(from, to))!.evaluate((e) => e.className)).split(' ');
  t.true((await cls('shop/web[Deployment]', 'shop/db[StatefulSet]')).includes('y'));
  t.true((await cls('ops/backup[CronJob]', 'shop/db[StatefulSet]')).includes('u'));
  t.true((await cls('ops/debug', 'shop/db[StatefulSet]')).includes('n'));
  t.true((await cls('shop/db[StatefulSet]', 'ops/debug')).includes('ns'), 'allowed, but debug serves no port: not served');
  // "Not served", "denied" and "depends on IP" look different.
  const colour = async (from: string, to: string) => (await cell(from, to))!.evaluate((e) => getComputedStyle(e).backgroundImage + getComputedStyle(e).backgroundColor);
  const looks = new Set([await colour('ops/debug', 'shop/db[StatefulSet]'), await colour('ops/backup[CronJob]', 'shop/db[StatefulSet]'), await colour('shop/db[StatefulSet]', 'ops/debug'), await colour('shop/web[Deployment]', 'shop/db[StatefulSet]')]);
  t.is(looks.size, 4);
  // Click: the panel holds the engine's explanation, both directions.
  await (await cell('ops/backup[CronJob]', 'shop/db[StatefulSet]'))!.click();
  await page.waitForSelector('#panel:not([hidden])');
  const why = await whyTexts(page);
  t.is(why[0], explained(plan, 'ops/backup[CronJob]', 'shop/db[StatefulSet]', 5432));
  t.is(why[1], explained(plan, 'shop/db[StatefulSet]', 'ops/backup[CronJob]', 5432));
  t.regex(why[0]!, /^DEPENDS ON IP/);
  t.regex(await panelText(page), /depends on the pod's IP/);
  await shot(t, page, 'matrix-panel.png');
  // Filter by port: 8080/TCP — web serves it, db is isolated on 5432 only.
  await page.select('#port', '1');
  t.true((await cls('shop/web[Deployment]', 'shop/db[StatefulSet]')).includes('n'));
  t.true((await cls('ops/debug', 'shop/web[Deployment]')).includes('y'));
  // Filter by namespace: without ops, only shop's 2 × 2 remain.
  await page.click('#controls details summary');
  await page.click('#namespaces input[value="ops"]');
  t.is((await page.$$('td.c')).length, 4);
  t.deepEqual(await page.$$eval('th.grp.row', (l) => l.map((e) => e.textContent)), ['▾ shop']);
  // Collapse shop: one aggregate cell; click it for the counts.
  await page.click('th.grp.row');
  t.is((await page.$$('td.c.agg')).length, 1);
  await page.click('td.c.agg');
  t.regex(await panelText(page), /shop → shop\s+8080\/TCP/);
  t.regex(await panelText(page), /1 allowed, 1 denied, 2 an endpoint reaches itself/);
  t.deepEqual(await page.$$eval('#panel ul.pairs a', (l) => l.map((e) => e.textContent)), ['shop/db[StatefulSet] → shop/web[Deployment]']);
  await shot(t, page, 'matrix-collapsed.png');
  await clean(t, page);
});

test.serial('diff report: added and removed access coloured, the panel explains before and after', async (t) => {
  const before = await planOf(OBJECTS);
  const changed = OBJECTS.map((o) => (o.kind === 'NetworkPolicy' ? { ...o, spec: { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'backup' } }, namespaceSelector: {} }], ports: [{ port: 5432 }] }] } } : o));
  const after = await planOf(changed);
  const ports = [{ port: 5432, protocol: 'TCP' as const }];
  const d = diffPlans(before, after, ports);
  t.deepEqual(
    d.changes.map((c) => `${c.from} ${String(c.before)}→${String(c.after)}`),
    ['ops/backup[CronJob] null→true', 'shop/web[Deployment] true→false'],
  );
  const page = await open(diffHtml(before, after, ports, d), 'diff.html');
  t.is((await page.$$('td.c.added')).length, 1);
  t.is((await page.$$('td.c.removed')).length, 1);
  const [added, removed] = [await page.$eval('td.c.added', (e) => getComputedStyle(e).backgroundColor), await page.$eval('td.c.removed', (e) => getComputedStyle(e).backgroundColor)];
  t.not(added, removed);
  await page.click('td.c.removed');
  const why = await whyTexts(page);
  t.is(why[0], explained(before, 'shop/web[Deployment]', 'shop/db[StatefulSet]', 5432));
  t.is(why[1], explained(after, 'shop/web[Deployment]', 'shop/db[StatefulSet]', 5432));
  t.regex(await panelText(page), /access removed/);
  await shot(t, page, 'diff-panel.png');
  // Collapsed to namespace cells, each change is still marked, and listed on a click.
  await page.click('#collapse');
  const groups = await page.$$eval('td.c.agg', (l) => Object.fromEntries(l.map((e) => [`${e.getAttribute('data-rg')}→${e.getAttribute('data-cg')}`, e.className.split(' ').pop()])));
  t.is(groups['ops→shop'], 'added');
  t.is(groups['shop→shop'], 'removed');
  await page.click('td.c.agg.removed');
  t.deepEqual(await page.$$eval('#panel ul.pairs a', (l) => l.map((e) => e.textContent)), ['shop/web[Deployment] → shop/db[StatefulSet]']);
  await clean(t, page);
});

test.serial('1,000 endpoints: the report opens grouped by namespace, a namespace expands, a cell explains', async (t) => {
  const c = generateCluster({ pods: 1000, policies: 500, namespaces: 50, localPods: 30 }, 7);
  const plan = compile(loadIntoStore(c), { ipless: true });
  const ports = [
    { port: 53, protocol: 'UDP' as const },
    { port: 80, protocol: 'TCP' as const },
    { port: 443, protocol: 'TCP' as const },
  ];
  const page = await open(matrixHtml(matrixView(plan, ports), '1,000 endpoints'), 'big.html');
  t.is(await page.$$eval('th.grp.row', (l) => l.length), 50, 'one row per namespace');
  t.is(await page.$$eval('td.c:not(.agg)', (l) => l.length), 0, 'collapsed: only namespace cells are drawn');
  t.is(await page.$$eval('td.c.agg', (l) => l.length), 2500);
  // A namespace cell lists the pairs that get in (denied ones are only counted); each explains on a click.
  await page.click('td.c.agg.some');
  const links = await page.$$eval('#panel ul.pairs a', (l) => l.map((e) => e.textContent!));
  t.true(links.length > 0);
  t.regex(await panelText(page), /allowed or depending on the IP: \d+ pair\(s\)/);
  await page.click('#panel ul.pairs a');
  const [f0, t0] = links[0]!.split(' → ') as [string, string];
  // (A pair allowed but not served has a "not served" note first.)
  t.true((await whyTexts(page)).includes(explained(plan, f0, t0, 53, 'UDP')));
  await page.click('th.grp.row');
  const members = await page.$$eval('th.name.row[title]', (l) => l.map((e) => e.getAttribute('title')!));
  t.true(members.length > 1);
  const target = (await page.$$('td.c:not(.agg):not(.self)'))[0]!;
  const title = (await target.evaluate((e) => e.getAttribute('title')))!;
  await target.click();
  const why = await whyTexts(page);
  const [from, to] = title.slice(0, title.lastIndexOf(':')).split(' → ') as [string, string];
  t.is(why[0], explained(plan, from, to, 53, 'UDP'));
  await shot(t, page, 'big.png');
  await clean(t, page);
});

test.serial('podwall lab probe -o html: a measured matrix opens, and its panel says it is measured', async (t) => {
  const m = { pods: ['a/x', 'b/y'], probes: [{ port: 80, protocol: 'TCP', allowed: { 'a/x': { 'a/x': true, 'b/y': false }, 'b/y': { 'a/x': true, 'b/y': true } } }] };
  const page = await open(matrixHtml(m, 'measured'), 'measured.html');
  t.is((await page.$$('td.c.n')).length, 1);
  await page.click('td.c.n');
  t.regex(await panelText(page), /Measured with real packets/);
  await clean(t, page);
});

test.serial('the report is one file: copied elsewhere alone, it still works', async (t) => {
  const plan = await planOf(OBJECTS);
  const html = matrixHtml(matrixView(plan, [{ port: 5432, protocol: 'TCP' }]));
  const alone = join(dir, 'alone');
  mkdirSync(alone);
  writeFileSync(join(alone, 'r.html'), html);
  copyFileSync(join(alone, 'r.html'), join(alone, 'copy.html'));
  const page = await open(html, 'alone/copy.html');
  t.is((await page.$$('td.c')).length, 16);
  t.false(html.includes('src="') || html.includes("src='") || /<link[^>]+href=/.test(html), 'no external resource');
  await clean(t, page);
});
