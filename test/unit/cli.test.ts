// The command line as a user meets it: exit codes, one-line errors, output formats.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conformanceObjects, policy, writeManifests } from '../support/conformance.js';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'podwall-cli-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const cluster = writeManifests(join(dir, 'ok'), [...conformanceObjects(), policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'] })]);

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function noStack(t: import('ava').ExecutionContext, s: string) {
  t.false(/\n\s+at /.test(s), `no stack trace in: ${s}`);
}

test('--help lists the commands', (t) => {
  const r = run('--help');
  t.is(r.code, 0);
  for (const c of ['matrix', 'explain', 'lint']) t.true(r.out.includes(c));
});

test('matrix -o json has exactly the documented shape', (t) => {
  const r = run('matrix', '-f', cluster, '--ports', '80/TCP,81/UDP', '-o', 'json');
  t.is(r.code, 0, r.err);
  const m = JSON.parse(r.out);
  t.deepEqual(Object.keys(m), ['pods', 'probes']);
  t.is(m.pods.length, 9);
  t.deepEqual(m.probes.map((p: { port: number; protocol: string }) => `${p.port}/${p.protocol}`), ['80/TCP', '81/UDP']);
  t.deepEqual(Object.keys(m.probes[0]), ['port', 'protocol', 'allowed']);
  t.false(m.probes[0].allowed['y/a']['x/a']);
  t.true(m.probes[0].allowed['x/a']['y/a']);
});

test('matrix defaults to every declared container port; table and html render', (t) => {
  const j = JSON.parse(run('matrix', '-f', cluster, '-o', 'json').out);
  t.is(j.probes.length, 6); // 80 and 81 on TCP, UDP, SCTP
  const table = run('matrix', '-f', cluster, '--ports', '80');
  t.is(table.code, 0);
  t.regex(table.out, /80\/TCP/);
  t.regex(table.out, /legend/);
  const html = run('matrix', '-f', cluster, '--ports', '80', '-o', 'html');
  t.regex(html.out, /^<!doctype html>/);
  t.regex(html.out, /<script type="application\/json" id="podwall-data">/);
  t.regex(html.out, /<script type="importmap">/);
});

test('explain prints the verdict', (t) => {
  const r = run('explain', '-f', cluster, '--from', 'y/a', '--to', 'x/b', '--port', '80/TCP');
  t.is(r.code, 0, r.err);
  t.regex(r.out, /^DENIED {2}y\/a → x\/b {2}80\/TCP/);
  const j = JSON.parse(run('explain', '-f', cluster, '--from', 'x/a', '--to', 'y/b', '--port', '80/TCP', '-o', 'json').out);
  t.true(j.allowed);
});

const badInputs: [string, string[], RegExp, number][] = [
  ['no -f', ['matrix'], /no input: give manifests with -f/, 2],
  ['missing file', ['matrix', '-f', '/nonexistent/x.yaml'], /cannot read: ENOENT/, 1],
  ['bad --ports', ['matrix', '-f', 'CLUSTER', '--ports', '80/ICMP'], /--ports: invalid port "80\/ICMP": unknown protocol/, 2],
  ['port out of range', ['matrix', '-f', 'CLUSTER', '--ports', '70000'], /must be 1-65535/, 2],
  ['bad -o', ['matrix', '-f', 'CLUSTER', '-o', 'xml'], /-o "xml": expected one of table, json, html/, 2],
  ['unknown pod', ['explain', '-f', 'CLUSTER', '--from', 'x/zz', '--to', 'x/a', '--port', '80'], /no such pod/, 2],
  ['unknown command', ['frobnicate'], /unknown command/, 1],
  ['unknown flag', ['matrix', '--frob'], /unknown option/, 1],
];

for (const [name, args, msg, code] of badInputs) {
  test(`bad input: ${name}`, (t) => {
    const r = run(...args.map((a) => (a === 'CLUSTER' ? cluster : a)));
    t.is(r.code, code, r.err);
    t.regex(r.err, msg);
    noStack(t, r.err);
  });
}

test('invalid manifests: matrix refuses with one line per problem; lint lists them, exit 1', (t) => {
  const f = join(dir, 'bad.yaml');
  writeFileSync(
    f,
    `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}]
    ports: [{port: 80, protocol: ICMP}]
---
kind: Pod
apiVersion: v1
metadata: {name: "evil\\"name", namespace: x}
---
kind: Pod
metadata: {name: [
`,
  );
  const m = run('matrix', '-f', f, '--ports', '80');
  t.is(m.code, 1);
  t.regex(m.err, /bad\.yaml: NetworkPolicy x\/p: spec\.ingress\[0\]\.from\[0\]\.ipBlock\.except\[0\]: "192\.168\.0\.0\/16" is not strictly inside cidr 10\.0\.0\.0\/8/);
  t.regex(m.err, /spec\.ingress\[0\]\.ports\[0\]\.protocol: "ICMP" is not a supported protocol/);
  t.regex(m.err, /metadata\.name: "evil\\"name" is not a valid name/);
  t.regex(m.err, /invalid YAML/);
  noStack(t, m.err);
  t.is(m.out, '');
  const l = run('lint', '-f', f);
  t.is(l.code, 1);
  t.regex(l.out, /4 error\(s\)/);
  const j = JSON.parse(run('lint', '-f', f, '-o', 'json').out);
  t.true(j.findings.every((x: { file?: string }) => x.file === f));
});

test('lint on a clean cluster exits 0', (t) => {
  const r = run('lint', '-f', cluster);
  t.is(r.code, 0, r.out + r.err);
  t.regex(r.out, /0 error\(s\)/);
});

test('`podwall matrix -f policies/<recipe>` reads each recipe folder whole and prints its matrix', async (t) => {
  const { readdirSync, statSync } = await import('node:fs');
  const root = fileURLToPath(new URL('../../../policies/', import.meta.url));
  const recipes = readdirSync(root).filter((d) => statSync(join(root, d)).isDirectory());
  t.true(recipes.length >= 12);
  for (const r of recipes) {
    const res = run('matrix', '-f', join(root, r), '-o', 'json');
    t.is(res.code, 0, `${r}: ${res.err}`);
    const m = JSON.parse(res.out);
    t.true(m.pods.length > 0 && m.probes.length > 0, r);
  }
});

test('demo --simulate shows the matrix, the live change and an explained denial', (t) => {
  const r = run('demo', '--simulate');
  t.is(r.code, 0, r.err);
  t.regex(r.out, /change: db\/allow-api now admits only api\/payments/);
  t.regex(r.out, /DENIED {2}api\/orders → db\/postgres {2}5432\/TCP/);
});
