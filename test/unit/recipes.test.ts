// The policy recipes in policies/: every folder's policy.yaml + cluster.yaml, run through the
// engine behind `podwall matrix`, must give exactly the reachability its expected.txt states
// (written by hand from the Kubernetes NetworkPolicy spec), for every ordered pair and port.
import test from 'ava';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { loadManifests } from '../../src/cluster/manifests.js';
import { computeMatrix, type MatrixJson } from '../../src/sim/matrix.js';
import { parsePortList, formatProbePort } from '../../src/policy/ports.js';
import { formatFinding } from '../../src/cluster/findings.js';

const POLICIES = fileURLToPath(new URL('../../../policies/', import.meta.url));

/** Expected reachability: allowed[port][from][to], pods as ns/name. */
interface Expectation {
  ports: string[];
  pods: string[];
  allowed: Record<string, Record<string, Record<string, boolean>>>;
}

class ExpectationError extends Error {}

/** Resolves a row/column label (pod name, or ns/name) to one of the pods. */
function resolveLabel(label: string, pods: readonly string[], where: string): string {
  if (label.includes('/')) {
    if (!pods.includes(label)) throw new ExpectationError(`${where}: ${JSON.stringify(label)} is not one of pods`);
    return label;
  }
  const hits = pods.filter((p) => p.slice(p.indexOf('/') + 1) === label);
  if (hits.length === 0) throw new ExpectationError(`${where}: ${JSON.stringify(label)} names no pod`);
  if (hits.length > 1) throw new ExpectationError(`${where}: ${JSON.stringify(label)} is ambiguous (${hits.join(', ')}); use ns/name`);
  return hits[0]!;
}

/**
 * Parses expected.txt text. Each port's block has one row per pod: a label (pod name or ns/name)
 * then one 0/1 per pod in the order of `pods` (the columns). `#` lines are comments.
 */
function parseExpectation(text: string, file = 'expected.txt'): Expectation {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ExpectationError(`${file}: invalid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ExpectationError(`${file}: expected a mapping with ports, pods, allowed`);
  const d = doc as Record<string, unknown>;
  const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
  if (!isStrings(d.ports) || d.ports.length === 0) throw new ExpectationError(`${file}: ports must be a non-empty list of PORT/PROTOCOL strings`);
  if (!isStrings(d.pods) || d.pods.length === 0) throw new ExpectationError(`${file}: pods must be a non-empty list of ns/name strings`);
  const pods = d.pods;
  for (const p of pods) if (!/^[^/\s]+\/[^/\s]+$/.test(p)) throw new ExpectationError(`${file}: pods: ${JSON.stringify(p)} is not ns/name`);
  if (new Set(pods).size !== pods.length) throw new ExpectationError(`${file}: pods: duplicate entries`);
  const portList = d.ports;
  const ports = portList.map((p) => {
    try {
      const parsed = parsePortList(p);
      if (parsed.length !== 1) throw new Error('one port per entry');
      return formatProbePort(parsed[0]!);
    } catch (e) {
      throw new ExpectationError(`${file}: ports: ${JSON.stringify(p)}: ${(e as Error).message}`);
    }
  });
  if (typeof d.allowed !== 'object' || d.allowed === null || Array.isArray(d.allowed)) throw new ExpectationError(`${file}: allowed must map each port to a matrix`);
  const blocks = d.allowed as Record<string, unknown>;
  const extra = Object.keys(blocks).filter((k) => !portList.includes(k));
  if (extra.length > 0) throw new ExpectationError(`${file}: allowed: ${extra.join(', ')} not listed under ports`);
  const allowed: Expectation['allowed'] = {};
  for (const [i, portKey] of portList.entries()) {
    const where = `${file}: allowed.${portKey}`;
    const block = blocks[portKey];
    if (typeof block !== 'string') throw new ExpectationError(`${where}: missing, or not a text block`);
    const matrix: Record<string, Record<string, boolean>> = {};
    for (const [n, rawLine] of block.split('\n').entries()) {
      const line = rawLine.trim();
      if (line === '' || line.startsWith('#')) continue;
      const [label, ...cells] = line.split(/\s+/) as [string, ...string[]];
      const lw = `${where} line ${n + 1}`;
      const from = resolveLabel(label, pods, lw);
      if (matrix[from]) throw new ExpectationError(`${lw}: row ${from} given twice`);
      if (cells.length !== pods.length) throw new ExpectationError(`${lw}: ${cells.length} values, want ${pods.length} (one per pod)`);
      const row: Record<string, boolean> = {};
      for (const [j, c] of cells.entries()) {
        if (c !== '0' && c !== '1') throw new ExpectationError(`${lw}: value ${JSON.stringify(c)} is not 0 or 1`);
        row[pods[j]!] = c === '1';
      }
      if (!row[from]) throw new ExpectationError(`${lw}: ${from} must reach itself (diagonal is 1)`);
      matrix[from] = row;
    }
    const missing = pods.filter((p) => !matrix[p]);
    if (missing.length > 0) throw new ExpectationError(`${where}: no row for ${missing.join(', ')}`);
    allowed[ports[i]!] = matrix;
  }
  return { ports, pods, allowed };
}

/** Pairs where the engine's matrix differs from the expectation, as readable lines. */
function diffAgainst(exp: Expectation, got: MatrixJson): string[] {
  const out: string[] = [];
  const gotPods = [...got.pods].sort();
  const expPods = [...exp.pods].sort();
  if (JSON.stringify(gotPods) !== JSON.stringify(expPods)) {
    out.push(`pods differ: podwall has [${gotPods.join(', ')}], expected.txt has [${expPods.join(', ')}]`);
    return out;
  }
  for (const port of exp.ports) {
    const probe = got.probes.find((p) => `${p.port}/${p.protocol}` === port);
    if (!probe) {
      out.push(`${port}: not probed`);
      continue;
    }
    for (const from of exp.pods) {
      for (const to of exp.pods) {
        const want = exp.allowed[port]![from]![to]!;
        const have = probe.allowed[from]?.[to];
        if (have !== want) out.push(`${port} ${from} -> ${to}: podwall says ${have === undefined ? 'nothing' : have ? 'ALLOWED' : 'DENIED'}, expected ${want ? 'ALLOWED' : 'DENIED'}`);
      }
    }
  }
  return out;
}

/** The engine's matrix in expected.txt's row format, to read next to a diff. */
function render(exp: Expectation, got: MatrixJson, port: string): string {
  const probe = got.probes.find((p) => `${p.port}/${p.protocol}` === port);
  if (!probe) return '';
  return exp.pods.map((from) => `${from}  ${exp.pods.map((to) => (probe.allowed[from]?.[to] ? '1' : '0')).join(' ')}`).join('\n');
}

function recipeFolders(): string[] {
  return readdirSync(POLICIES)
    .filter((e) => !e.startsWith('.') && statSync(join(POLICIES, e)).isDirectory())
    .sort();
}

const RECIPES = recipeFolders();

test('policies/ holds at least 12 recipes, each with policy, cluster, expectation and README', (t) => {
  t.true(RECIPES.length >= 12, `only ${RECIPES.length} recipe folders: ${RECIPES.join(', ')}`);
  const incomplete = RECIPES.flatMap((r) => ['policy.yaml', 'cluster.yaml', 'expected.txt', 'README.md'].filter((f) => !existsSync(join(POLICIES, r, f))).map((f) => `${r}/${f}`));
  t.deepEqual(incomplete, [], 'missing files');
  for (const r of RECIPES) t.regex(r, /^[a-z0-9]+(-[a-z0-9]+)*$/, 'folder names are kebab-case');
});

test('policies/README.md indexes every recipe', (t) => {
  const index = readFileSync(join(POLICIES, 'README.md'), 'utf8');
  const unlisted = RECIPES.filter((r) => !index.includes(`(${r}/)`) && !index.includes(`(./${r}/)`));
  t.deepEqual(unlisted, [], 'recipes without a link in policies/README.md');
});

for (const recipe of RECIPES) {
  const dir = join(POLICIES, recipe);

  test(`${recipe}: policy.yaml holds only NetworkPolicies and ClusterNetworkPolicies`, (t) => {
    const docs = parseAllDocuments(readFileSync(join(dir, 'policy.yaml'), 'utf8'));
    const list = Array.isArray(docs) ? docs : [docs];
    const values = list.map((d) => {
      t.deepEqual(d.errors.map(String), [], 'YAML errors');
      return d.toJS() as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
    }).filter((v) => v !== null);
    t.true(values.length > 0, 'no policy in policy.yaml');
    for (const v of values) {
      t.is(typeof v.metadata?.name, 'string', 'metadata.name');
      if (v.kind === 'ClusterNetworkPolicy') {
        t.is(v.apiVersion, 'policy.networking.k8s.io/v1alpha2');
        t.is(v.metadata?.namespace, undefined, `ClusterNetworkPolicy ${String(v.metadata?.name)} is cluster-scoped`);
        continue;
      }
      t.is(v.apiVersion, 'networking.k8s.io/v1');
      t.is(v.kind, 'NetworkPolicy');
      t.is(typeof v.metadata?.namespace, 'string', `metadata.namespace of ${String(v.metadata?.name)}`);
    }
  });

  test(`${recipe}: podwall matrix matches expected.txt`, async (t) => {
    const exp = parseExpectation(readFileSync(join(dir, 'expected.txt'), 'utf8'), `${recipe}/expected.txt`);
    const loaded = await loadManifests([join(dir, 'cluster.yaml'), join(dir, 'policy.yaml')]);
    const errors = loaded.findings.filter((f) => f.severity === 'error').map(formatFinding);
    t.deepEqual(errors, [], 'error findings while loading');
    for (const w of loaded.findings.filter((f) => f.severity === 'warning')) t.log(formatFinding(w));
    t.deepEqual(loaded.skipped, {}, 'objects podwall does not read');
    t.true(loaded.store.policies.size + loaded.store.clusterPolicies.size > 0, 'no policy loaded');
    const cnps = values(readFileSync(join(dir, 'policy.yaml'), 'utf8')).filter((v) => v.kind === 'ClusterNetworkPolicy').length;
    t.is(loaded.store.clusterPolicies.size, cnps, 'every ClusterNetworkPolicy of policy.yaml was read');
    const got = computeMatrix(loaded.store, parsePortList(exp.ports.join(',')));
    const diff = diffAgainst(exp, got);
    if (diff.length > 0) {
      for (const port of exp.ports) t.log(`podwall's ${port} matrix (columns: ${exp.pods.join(' ')}):\n${render(exp, got, port)}`);
    }
    t.deepEqual(diff, [], `${diff.length} pair(s) differ from expected.txt`);
  });
}

function values(text: string): { kind?: unknown }[] {
  const docs = parseAllDocuments(text);
  return (Array.isArray(docs) ? docs : [docs]).map((d) => d.toJS() as { kind?: unknown } | null).filter((v): v is { kind?: unknown } => v !== null);
}

// The expectation parser itself: a malformed expected.txt must fail loudly, never pass vacuously.
const GOOD = `ports: [80/TCP]
pods: [a/web, b/web, b/db]
allowed:
  80/TCP: |
    # comment
    a/web 1 0 1
    b/web 1 1 0
    db    0 0 1
`;

test('parseExpectation reads rows by label and columns by pod order', (t) => {
  const e = parseExpectation(GOOD);
  t.deepEqual(e.ports, ['80/TCP']);
  t.deepEqual(e.allowed['80/TCP']!['a/web'], { 'a/web': true, 'b/web': false, 'b/db': true });
  t.deepEqual(e.allowed['80/TCP']!['b/db'], { 'a/web': false, 'b/web': false, 'b/db': true });
});

test('parseExpectation normalises port spelling', (t) => {
  const e = parseExpectation(`ports: [53/udp]\npods: [a/x]\nallowed:\n  53/udp: |\n    x 1\n`);
  t.deepEqual(e.ports, ['53/UDP']);
  t.true(e.allowed['53/UDP']!['a/x']!['a/x']);
});

const BAD: [string, string, RegExp][] = [
  ['ambiguous label', GOOD.replace('a/web 1 0 1', 'web 1 0 1'), /ambiguous/],
  ['unknown label', GOOD.replace('db    0 0 1', 'cache 0 0 1'), /names no pod/],
  ['short row', GOOD.replace('b/web 1 1 0', 'b/web 1 1'), /2 values, want 3/],
  ['bad value', GOOD.replace('b/web 1 1 0', 'b/web 1 1 x'), /not 0 or 1/],
  ['missing row', GOOD.replace('    db    0 0 1\n', ''), /no row for b\/db/],
  ['duplicate row', GOOD.replace('db    0 0 1', 'b/web 1 1 0'), /given twice/],
  ['diagonal 0', GOOD.replace('db    0 0 1', 'db    0 0 0'), /reach itself/],
  ['port without block', GOOD.replace('ports: [80/TCP]', 'ports: [80/TCP, 53/UDP]'), /allowed\.53\/UDP: missing/],
  ['block without port', GOOD.replace('ports: [80/TCP]', 'ports: [81/TCP]'), /not listed under ports/],
  ['bad port', GOOD.replace('ports: [80/TCP]', 'ports: [http]'), /ports: "http"/],
  ['pod not ns/name', GOOD.replace('pods: [a/web, b/web, b/db]', 'pods: [web, b/web, b/db]'), /not ns\/name/],
  ['not a mapping', '- 1\n', /expected a mapping/],
];
for (const [name, text, re] of BAD) {
  test(`parseExpectation rejects: ${name}`, (t) => {
    t.throws(() => parseExpectation(text), { instanceOf: ExpectationError, message: re });
  });
}

test('diffAgainst names every differing pair and port', (t) => {
  const e = parseExpectation(GOOD);
  const got: MatrixJson = {
    pods: ['a/web', 'b/db', 'b/web'],
    probes: [{ port: 80, protocol: 'TCP', allowed: {
      'a/web': { 'a/web': true, 'b/web': false, 'b/db': true },
      'b/web': { 'a/web': true, 'b/web': true, 'b/db': true },
      'b/db': { 'a/web': false, 'b/web': false, 'b/db': true },
    } }],
  };
  t.deepEqual(diffAgainst(e, got), ['80/TCP b/web -> b/db: podwall says ALLOWED, expected DENIED']);
  t.deepEqual(diffAgainst(e, { ...got, pods: ['a/web', 'b/web'] }).length, 1);
  got.probes[0]!.allowed['b/web']!['b/db'] = false;
  t.deepEqual(diffAgainst(e, got), []);
});
