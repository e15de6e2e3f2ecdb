// The policy recipes in policies/: every folder's policy.yaml + cluster.yaml must pass its
// expect.yaml — a `podwall test` expectations file written by hand from the Kubernetes
// NetworkPolicy spec. Its assertions must cover every ordered pair of pods on every port they name
// (so a recipe pins its whole matrix), and flipping any one of them must make it fail (so none
// passes vacuously).
import test from 'ava';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadManifests } from '../../src/cluster/manifests.js';
import { compile } from '../../src/policy/compile.js';
import type { Plan } from '../../src/policy/plan.js';
import { formatFinding } from '../../src/cluster/findings.js';
import { parseExpectations, formatPortRange, type Assertion } from '../../src/sim/expectations.js';
import { checkAssertions, formatTestReport } from '../../src/sim/assertions.js';
import { matchesAny } from '../../src/sim/endpoint-pattern.js';

const POLICIES = fileURLToPath(new URL('../../../policies/', import.meta.url));
const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));

function recipeFolders(): string[] {
  return readdirSync(POLICIES)
    .filter((e) => !e.startsWith('.') && statSync(join(POLICIES, e)).isDirectory())
    .sort();
}

const RECIPES = recipeFolders();

test('policies/ holds at least 12 recipes, each with policy, cluster, expectations and README', (t) => {
  t.true(RECIPES.length >= 12, `only ${RECIPES.length} recipe folders: ${RECIPES.join(', ')}`);
  const incomplete = RECIPES.flatMap((r) => ['policy.yaml', 'cluster.yaml', 'expect.yaml', 'README.md'].filter((f) => !existsSync(join(POLICIES, r, f))).map((f) => `${r}/${f}`));
  t.deepEqual(incomplete, [], 'missing files');
  for (const r of RECIPES) t.regex(r, /^[a-z0-9]+(-[a-z0-9]+)*$/, 'folder names are kebab-case');
});

test('policies/README.md indexes every recipe', (t) => {
  const index = readFileSync(join(POLICIES, 'README.md'), 'utf8');
  const unlisted = RECIPES.filter((r) => !index.includes(`(${r}/)`) && !index.includes(`(./${r}/)`));
  t.deepEqual(unlisted, [], 'recipes without a link in policies/README.md');
});

/** Ports an expectations file names, as single ports: both ends of every range. */
function namedPorts(assertions: readonly Assertion[]): { protocol: string; port: number }[] {
  const seen = new Map<string, { protocol: string; port: number }>();
  for (const a of assertions) for (const r of a.ports) for (const port of [r.lo, r.hi]) seen.set(`${port}/${r.protocol}`, { protocol: r.protocol, port });
  return [...seen.values()];
}

/** Ordered pairs of distinct pods and ports no assertion covers. */
function uncovered(plan: Plan, assertions: readonly Assertion[]): string[] {
  const nsLabels = (ns: string) => plan.namespaceLabels[ns] ?? {};
  const out: string[] = [];
  for (const { protocol, port } of namedPorts(assertions)) {
    for (const from of plan.pods) {
      for (const to of plan.pods) {
        if (from.key === to.key) continue;
        const covered = assertions.some((a) => a.ports.some((r) => r.protocol === protocol && r.lo <= port && port <= r.hi) && matchesAny(a.from.patterns, from, nsLabels) && matchesAny(a.to.patterns, to, nsLabels));
        if (!covered) out.push(`${from.key} → ${to.key} ${port}/${protocol}`);
      }
    }
  }
  return out;
}

for (const recipe of RECIPES) {
  const dir = join(POLICIES, recipe);

  test(`${recipe}: policy.yaml holds only NetworkPolicies (and ClusterNetworkPolicies)`, (t) => {
    const docs = parseAllDocuments(readFileSync(join(dir, 'policy.yaml'), 'utf8'));
    const list = Array.isArray(docs) ? docs : [docs];
    const values = list
      .map((d) => {
        t.deepEqual(d.errors.map(String), [], 'YAML errors');
        return d.toJS() as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
      })
      .filter((v) => v !== null);
    t.true(values.length > 0, 'no policy in policy.yaml');
    for (const v of values) {
      if (v.kind === 'ClusterNetworkPolicy') {
        t.is(v.apiVersion, 'policy.networking.k8s.io/v1alpha2');
        t.is(typeof v.metadata?.name, 'string', 'metadata.name');
        continue;
      }
      t.is(v.apiVersion, 'networking.k8s.io/v1');
      t.is(v.kind, 'NetworkPolicy');
      t.is(typeof v.metadata?.name, 'string', 'metadata.name');
      t.is(typeof v.metadata?.namespace, 'string', `metadata.namespace of ${String(v.metadata?.name)}`);
    }
  });

  test(`${recipe}: podwall test passes expect.yaml, which covers every pair and port it names, and fails each flipped assertion`, async (t) => {
    const loaded = await loadManifests([join(dir, 'cluster.yaml'), join(dir, 'policy.yaml')]);
    const errors = loaded.findings.filter((f) => f.severity === 'error').map(formatFinding);
    t.deepEqual(errors, [], 'error findings while loading');
    for (const w of loaded.findings.filter((f) => f.severity === 'warning')) t.log(formatFinding(w));
    t.deepEqual(loaded.skipped, {}, 'objects podwall does not read');
    t.true(loaded.store.policies.size + (loaded.store.clusterPolicies.size) > 0, 'no policy loaded');
    const file = join(dir, 'expect.yaml');
    const assertions = parseExpectations(readFileSync(file, 'utf8'), file);
    const plan = compile(loaded.store, { ipless: true });
    const report = checkAssertions(plan, assertions);
    if (report.failed > 0) t.log(formatTestReport(report));
    t.is(report.failed, 0, `${report.failed} assertion(s) of ${recipe}/expect.yaml fail`);
    t.deepEqual(uncovered(plan, assertions), [], 'pairs and ports no assertion covers');
    for (const a of assertions) {
      const flipped = checkAssertions(plan, [{ ...a, allow: !a.allow }]);
      t.is(flipped.failed, 1, `assertions[${a.index}] (${a.name}, ${a.ports.map(formatPortRange).join(', ')}) still passes when flipped`);
    }
  });
}

test('the command line runs a recipe: exit 0, and exit 1 with a flipped expectation', (t) => {
  const r = spawnSync(process.execPath, [BIN, 'test', '-f', join(POLICIES, 'three-tier', 'cluster.yaml'), '-f', join(POLICIES, 'three-tier', 'policy.yaml'), '--expect', join(POLICIES, 'three-tier', 'expect.yaml')], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /9 assertion\(s\): 9 passed, 0 failed$/m);
});
