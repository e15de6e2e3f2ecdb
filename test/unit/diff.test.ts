// `podwall diff`: the change of reachability between two states — from paths and from a git
// revision — its JSON contract, its exit codes, and its laws: a tree against itself is empty, and
// diff(A, B) is diff(B, A) turned around.
import test from 'ava';
import fc from 'fast-check';
import { spawnSync, execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterStore } from '../../src/cluster/store.js';
import type { ContainerPort, LabelSelector, NetworkPolicy, Pod, PolicyPeer, PolicyRule, Workload } from '../../src/cluster/model.js';
import { compile } from '../../src/policy/compile.js';
import { changeKind, diffPlans, failsOn, type ReachabilityDiff } from '../../src/sim/diff.js';
import { networkPolicyArb } from '../support/arbitraries.js';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));
const SHOP = fileURLToPath(new URL('../../../policies/demo-shop/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'podwall-diff-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], cwd?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', ...(cwd ? { cwd } : {}) });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The demo shop after its live change (db/allow-api admits only payments), as a second tree. */
function shopAfterChange(target: string): string {
  mkdirSync(target, { recursive: true });
  cpSync(join(SHOP, 'cluster.yaml'), join(target, 'cluster.yaml'));
  const docs = readFileSync(join(SHOP, 'policy.yaml'), 'utf8').split(/\n---\n/);
  const kept = docs.filter((d) => !/name: allow-api[,\s][\s\S]*namespace: db|namespace: db[\s\S]*name: allow-api\b/.test(d.split('spec:')[0]!));
  if (kept.length !== docs.length - 1) throw new Error('fixture: db/allow-api not found exactly once');
  writeFileSync(join(target, 'policy.yaml'), [...kept, readFileSync(join(SHOP, 'change.txt'), 'utf8')].join('\n---\n'));
  return target;
}
const shopNew = shopAfterChange(join(dir, 'shop-new'));

test('diff of a tree with itself is empty (every recipe), exit 0 even with --fail-on any', (t) => {
  const root = fileURLToPath(new URL('../../../policies/', import.meta.url));
  for (const r of ['demo-shop', 'three-tier', 'deny-internet-egress', 'ingress-controller-named-port']) {
    const res = run(['diff', '--old', join(root, r), '--new', join(root, r), '-o', 'json', '--fail-on', 'any']);
    t.is(res.code, 0, `${r}: ${res.err}`);
    t.deepEqual(JSON.parse(res.out), { changes: [], endpoints: { added: [], removed: [] } }, r);
  }
  t.regex(run(['diff', '--old', SHOP, '--new', SHOP]).out, /^no reachability change/);
});

test('diff names the removed access with the reason on both sides; JSON has exactly the documented shape', (t) => {
  const r = run(['diff', '--old', SHOP, '--new', shopNew, '-o', 'json']);
  t.is(r.code, 0, r.err);
  const d = JSON.parse(r.out) as ReachabilityDiff;
  t.deepEqual(Object.keys(d), ['changes', 'endpoints']);
  t.deepEqual(Object.keys(d.endpoints), ['added', 'removed']);
  t.is(d.changes.length, 1);
  const c = d.changes[0]!;
  t.deepEqual(Object.keys(c), ['from', 'to', 'port', 'protocol', 'before', 'after', 'why']);
  t.like(c, { from: 'api/orders', to: 'db/postgres', port: 5432, protocol: 'TCP', before: true, after: false });
  t.regex(c.why.before, /allowed by rule 0 of db\/allow-api/);
  t.regex(c.why.after, /nearest miss \(ingress\): rule 0 of db\/allow-api allows 5432\/TCP but api\/orders does not match podSelector \{app: payments\}/);
  const table = run(['diff', '--old', SHOP, '--new', shopNew]);
  t.regex(table.out, /^0 access added, 1 removed; 0 endpoint\(s\) added, 0 removed\n\napi → db\n {2}- api\/orders → db\/postgres {2}5432\/TCP {2}allowed → denied/);
  const md = run(['diff', '--old', SHOP, '--new', shopNew, '-o', 'md']);
  t.regex(md.out, /^### podwall: reachability changes/);
  t.regex(md.out, /\| 🔴 removed \| `api\/orders` \| `db\/postgres` \| 5432\/TCP \| allowed \| denied \|/);
  t.regex(run(['diff', '--old', SHOP, '--new', shopNew, '-o', 'html']).out, /^<!doctype html>/);
});

test('--fail-on sets the exit code for CI', (t) => {
  t.is(run(['diff', '--old', SHOP, '--new', shopNew, '--fail-on', 'removed']).code, 1);
  t.is(run(['diff', '--old', SHOP, '--new', shopNew, '--fail-on', 'added']).code, 0);
  t.is(run(['diff', '--old', SHOP, '--new', shopNew, '--fail-on', 'any']).code, 1);
  t.is(run(['diff', '--old', shopNew, '--new', SHOP, '--fail-on', 'added']).code, 1, 'the other way round, the access comes back');
  t.is(run(['diff', '--old', SHOP, '--new', shopNew]).code, 0);
});

test('endpoints added and removed are listed apart; ports are every declared port plus --ports', (t) => {
  const more = join(dir, 'shop-more');
  cpSync(shopNew, more, { recursive: true });
  writeFileSync(
    join(more, 'debug.yaml'),
    'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: debug, namespace: api}\nspec:\n  selector: {matchLabels: {app: debug}}\n  template:\n    metadata: {labels: {app: debug}}\n    spec: {containers: [{name: d, image: busybox, ports: [{containerPort: 7777}]}]}\n',
  );
  const d = JSON.parse(run(['diff', '--old', SHOP, '--new', more, '-o', 'json', '--ports', '12345/UDP']).out) as ReachabilityDiff;
  t.deepEqual(d.endpoints, { added: ['api/debug[Deployment]'], removed: [] });
  t.false(d.changes.some((c) => c.from.includes('debug') || c.to.includes('debug')), 'pairs with a new endpoint are not changes');
  const back = JSON.parse(run(['diff', '--old', more, '--new', SHOP, '-o', 'json']).out) as ReachabilityDiff;
  t.deepEqual(back.endpoints, { added: [], removed: ['api/debug[Deployment]'] });
  // 7777 is declared only on the new side, 12345/UDP only asked for: both are compared.
  const portsOf = (args: string[]) => JSON.parse(run(['diff', '--old', SHOP, '--new', shopNew, '-o', 'json', ...args]).out) as ReachabilityDiff;
  t.is(portsOf(['--no-declared-ports', '--ports', '80/TCP']).changes.length, 0, 'only 80/TCP compared: the 5432 change is not seen');
});

test('bad usage and unusable input: one line, exit 2', (t) => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: a}\nspec: {replicas: 1, selector: {matchLabels: {app: web}}}\n');
  const cases: [string[], RegExp][] = [
    [['diff'], /nothing to compare/],
    [['diff', '--old', SHOP], /--old and --new both need at least one PATH/],
    [['diff', '--old', SHOP, '--new', SHOP, '--base', 'HEAD', '-f', SHOP], /not both/],
    [['diff', '--base', 'HEAD'], /--base REF needs -f PATH/],
    [['diff', '--old', SHOP, '--new', SHOP, '--fail-on', 'more'], /--fail-on "more": expected added, removed or any/],
    [['diff', '--old', SHOP, '--new', SHOP, '-o', 'xml'], /-o "xml": expected one of table, json, md, html/],
    [['diff', '--old', SHOP, '--new', bad], /bad\.yaml: Deployment a\/web: spec\.template: required field missing/],
    [['diff', '--old', SHOP, '--new', '/nonexistent/x'], /cannot read: ENOENT/],
    [['diff', '--old', SHOP, '--new', SHOP, '--no-declared-ports'], /--no-declared-ports needs --ports/],
  ];
  for (const [args, re] of cases) {
    const r = run(args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    t.regex(r.err, re);
    t.false(/\n\s+at /.test(r.err), 'no stack trace');
  }
});

test('--base REF -f PATH reads the paths at REF with git and leaves the working tree alone', (t) => {
  const repo = join(dir, 'repo');
  mkdirSync(repo);
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { encoding: 'utf8' });
  git('init', '-q');
  cpSync(SHOP, join(repo, 'deploy'), { recursive: true });
  git('add', '.');
  git('commit', '-qm', 'shop');
  // The pull request: the live change, and a new workload in a new file.
  cpSync(join(shopNew, 'policy.yaml'), join(repo, 'deploy', 'policy.yaml'));
  writeFileSync(join(repo, 'deploy', 'jobs.yaml'), 'apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: report, namespace: api}\nspec:\n  schedule: "@daily"\n  jobTemplate: {spec: {template: {metadata: {labels: {app: report}}, spec: {restartPolicy: Never, containers: [{name: r, image: r}]}}}}\n');
  const statusBefore = git('status', '--porcelain');
  const r = run(['diff', '--base', 'HEAD', '-f', 'deploy', '-o', 'json', '--fail-on', 'removed'], repo);
  t.is(r.code, 1, r.err);
  const d = JSON.parse(r.out) as ReachabilityDiff;
  t.deepEqual(d.changes.map((c) => `${c.from}>${c.to} ${c.port}`), ['api/orders>db/postgres 5432']);
  t.deepEqual(d.endpoints.added, ['api/report[CronJob]']);
  t.is(git('status', '--porcelain'), statusBefore, 'the working tree is untouched');
  t.regex(readFileSync(join(repo, 'deploy', 'policy.yaml'), 'utf8'), /app: payments/);
  // A file only in the working tree: the old state has nothing there.
  const onlyNew = run(['diff', '--base', 'HEAD', '-f', 'deploy/jobs.yaml', '-o', 'json'], repo);
  t.is(onlyNew.code, 0, onlyNew.err);
  t.regex(onlyNew.err, /HEAD:deploy\/jobs\.yaml: does not exist at HEAD/);
  t.deepEqual((JSON.parse(onlyNew.out) as ReachabilityDiff).endpoints.added, ['api/report[CronJob]']);
  // An invalid file at REF is named as such.
  writeFileSync(join(repo, 'deploy', 'broken.yaml'), 'kind: Pod\napiVersion: v1\nmetadata: {name: "x y", namespace: api}\nspec: {containers: [{name: c, image: c}]}\n');
  git('add', 'deploy/broken.yaml');
  git('commit', '-qm', 'broken');
  const broken = run(['diff', '--base', 'HEAD', '-f', 'deploy'], repo);
  t.is(broken.code, 2, broken.err + broken.out);
  t.regex(broken.err, /HEAD:deploy\/broken\.yaml: Pod api\/x y: metadata\.name/);
  t.regex(broken.err, /error\(s\) in the old \(HEAD\) input/);
  const badRef = run(['diff', '--base', 'no-such-ref', '-f', 'deploy'], repo);
  t.is(badRef.code, 2);
  t.regex(badRef.err, /--base "no-such-ref": not a commit in /);
  const outside = run(['diff', '--base', 'HEAD', '-f', shopNew], dir);
  t.is(outside.code, 2);
  t.regex(outside.err, /is not in a git repository/);
});

// ---------------------------------------------------------------- laws, over random states

const NS = ['x', 'y'];
const labels = fc.dictionary(fc.constantFrom('app', 'tier'), fc.constantFrom('a', 'b'), { maxKeys: 2 });
const selector = fc.record({ matchLabels: labels, matchExpressions: fc.constant([]) });
const peer = fc.oneof(fc.record({ podSelector: selector }), fc.record({ namespaceSelector: selector }), fc.record({ ipBlock: fc.constantFrom({ cidr: '10.0.0.0/8', except: [] }, { cidr: '10.0.1.0/24', except: [] }) })) as unknown as fc.Arbitrary<PolicyPeer>;
const rule: fc.Arbitrary<PolicyRule> = fc.record({ peers: fc.array(peer, { maxLength: 2 }), ports: fc.array(fc.record({ protocol: fc.constant('TCP' as const), port: fc.constantFrom(80, 81) }), { maxLength: 1 }) });
const policies = fc.array(fc.nat(1000), { maxLength: 4 }).chain((ids) => fc.tuple(...ids.map((_, i) => networkPolicyArb(i, NS, selector as unknown as fc.Arbitrary<LabelSelector>, rule))));
const ports: ContainerPort[] = [{ port: 80, protocol: 'TCP' }];
const endpoints = fc.uniqueArray(fc.tuple(fc.nat(5), fc.constantFrom(...NS), labels, fc.boolean()), { selector: (e) => e[0], maxLength: 5 });

function store(eps: [number, string, Record<string, string>, boolean][], nps: readonly NetworkPolicy[]): ClusterStore {
  const s = new ClusterStore();
  for (const [i, ns, l, workload] of eps) {
    if (workload) s.upsert({ kind: 'Workload', workloadKind: 'Deployment', namespace: ns, name: `e${i}`, labels: l, hostNetwork: false, ips: [], ports, owners: [] } satisfies Workload);
    else s.upsert({ kind: 'Pod', namespace: ns, name: `e${i}`, labels: l, hostNetwork: false, phase: 'Running', ips: [`10.0.${i % 2}.${i + 1}`], ports } satisfies Pod);
  }
  nps.forEach((p) => s.upsert(p));
  return s;
}

test('diff(A, A) is empty and diff(A, B) is diff(B, A) turned around, for random states', (t) => {
  const PORTS = [{ port: 80, protocol: 'TCP' as const }, { port: 81, protocol: 'TCP' as const }];
  let seen = 0;
  fc.assert(
    fc.property(endpoints, policies, endpoints, policies, (ea, pa, eb, pb) => {
      const a = compile(store(ea, pa), { ipless: true });
      const b = compile(store(eb, pb), { ipless: true });
      const same = diffPlans(a, a, PORTS);
      if (same.changes.length > 0 || same.endpoints.added.length > 0 || same.endpoints.removed.length > 0) return false;
      const ab = diffPlans(a, b, PORTS);
      const ba = diffPlans(b, a, PORTS);
      seen += ab.changes.length;
      const turned = ba.changes.map((c) => ({ ...c, before: c.after, after: c.before, why: { before: c.why.after, after: c.why.before } }));
      if (JSON.stringify(turned) !== JSON.stringify(ab.changes)) return false;
      if (JSON.stringify(ab.endpoints) !== JSON.stringify({ added: ba.endpoints.removed, removed: ba.endpoints.added })) return false;
      // Added one way is removed the other way; --fail-on follows.
      if (!ab.changes.every((c, i) => changeKind(c) !== changeKind(ba.changes[i]!))) return false;
      return failsOn(ab, 'added') === failsOn(ba, 'removed');
    }),
    { numRuns: 300 },
  );
  t.true(seen > 0, 'the generator never produced a change');
});
