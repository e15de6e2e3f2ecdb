// Input like kubectl, as a user meets it on the command line: `-f -`, List and typed lists, a stray
// non-manifest file in a folder, unknown fields by YAML path, lint printing each finding once, and
// one line when there is nothing to analyse.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { conformanceObjects, policy } from '../support/conformance.js';
import { describeLoad, loadManifests } from '../../src/cluster/manifests.js';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'podwall-cli-input-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', input: input ?? '' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const objects = [...conformanceObjects(), policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'] })];
const yaml = objects.map((o) => stringify(o)).join('---\n');

test('-f - reads standard input (helm template . | podwall lint -f -)', (t) => {
  const lint = run(['lint', '-f', '-'], yaml);
  t.is(lint.code, 0, lint.err);
  t.regex(lint.out, /0 error\(s\)/);
  const m = run(['matrix', '-f', '-', '--ports', '80', '-o', 'json'], yaml);
  t.is(m.code, 0, m.err);
  t.false(JSON.parse(m.out).probes[0].allowed['y/a']['x/a']);
  const twice = run(['lint', '-f', '-', '-f', '-'], yaml);
  t.is(twice.code, 1);
  t.regex(twice.out, /standard input \(-f -\) can be read only once/);
});

test('List and typed lists (items without kind, as the API returns them) are read', async (t) => {
  const d = join(dir, 'lists');
  mkdirSync(d);
  const pods = objects.filter((o) => o.kind === 'Pod').map(({ kind: _k, apiVersion: _a, ...rest }) => rest);
  writeFileSync(join(d, 'pods.json'), JSON.stringify({ apiVersion: 'v1', kind: 'PodList', metadata: {}, items: pods }));
  writeFileSync(join(d, 'rest.yaml'), stringify({ apiVersion: 'v1', kind: 'List', items: objects.filter((o) => o.kind !== 'Pod') }));
  writeFileSync(join(d, 'ns.yaml'), stringify({ apiVersion: 'v1', kind: 'NamespaceList', items: [{ metadata: { name: 'extra' } }] }));
  const r = await loadManifests([d]);
  t.deepEqual(r.findings.filter((f) => f.severity === 'error'), []);
  t.is(r.store.pods.size, 9);
  t.true(r.store.namespaces.has('extra'));
  t.is(r.summary.objects.Pod, 9);
});

test('a file in a folder that is not a Kubernetes object is skipped with a warning; the folder is read', (t) => {
  const d = join(dir, 'stray');
  mkdirSync(d);
  writeFileSync(join(d, 'cluster.yaml'), yaml);
  writeFileSync(join(d, 'results.json'), JSON.stringify({ passed: 3, failed: 0 }));
  const m = run(['matrix', '-f', d, '--ports', '80', '-o', 'json']);
  t.is(m.code, 0, m.err);
  t.regex(m.err, /results\.json: document 0: not a Kubernetes object \(no apiVersion and kind\): skipped \[not-an-object\]/);
  // Named explicitly, it is an error.
  const e = run(['matrix', '-f', join(d, 'results.json'), '--ports', '80']);
  t.is(e.code, 1);
});

test('unknown fields are findings named by their YAML path, never JavaScript words', (t) => {
  const f = join(dir, 'typo.yaml');
  writeFileSync(f, `${yaml}---\napiVersion: v1\nkind: Pod\nmetadata: {name: typo, namespace: x}\nspec:\n  containers:\n  - name: c\n    image: i\n    ports: [{containerport: 80}]\nstatus: {podIP: 10.244.1.99}\n`);
  const r = run(['lint', '-f', f]);
  t.is(r.code, 1);
  t.regex(r.out, /typo\.yaml: Pod x\/typo: spec\.containers\[0\]\.ports\[0\]\.containerport: unknown field "containerport" \(did you mean "containerPort"\?\) \[unknown-field\]/);
  t.false(/undefined|null|\[object/.test(r.out), r.out);
});

test('lint prints each finding once: on stdout, nothing repeated on stderr', (t) => {
  const f = join(dir, 'bad.yaml');
  writeFileSync(f, `${yaml}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 70000}, {port: 05432}]\n`);
  const r = run(['lint', '-f', f]);
  t.is(r.code, 1);
  t.is(r.err, '');
  const lines = r.out.trim().split('\n');
  t.is(lines.filter((l) => /port-out-of-range/.test(l)).length, 1);
  t.regex(r.out, /spec\.ingress\[0\]\.ports\[1\]\.port: 05432 is 5432 here, but kubectl \(YAML 1\.1\) reads it as 2842/);
  t.is(new Set(lines).size, lines.length, 'no line twice');
});

test('nothing to analyse: one line saying what was read and what was skipped', async (t) => {
  const d = join(dir, 'nothing');
  mkdirSync(d);
  writeFileSync(join(d, 'cm.yaml'), stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: {} }));
  writeFileSync(join(d, 'notes.json'), '{"a": 1}');
  const r = run(['lint', '-f', d]);
  t.is(r.code, 1);
  t.regex(r.err, /^podwall: nothing to lint: read 2 files \(2 documents\): no object podwall reads; skipped: 1 ConfigMap, .*notes\.json \(not Kubernetes objects\)\n$/);
  t.is(describeLoad((await loadManifests([join(d, 'cm.yaml')])).summary), 'read 1 file (1 document): no object podwall reads; skipped: 1 ConfigMap');
});
