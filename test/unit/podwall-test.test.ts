// `podwall test`: the expectations format (every malformed file is one line naming the field), the
// checking (ranges, selectors, IP-dependent verdicts, self pairs), JUnit XML, and the command line's
// exit codes.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExpectationError, parseExpectations, parsePortRange } from '../../src/sim/expectations.js';
import { checkAssertions, portStretches } from '../../src/sim/assertions.js';
import { junitXml } from '../../src/report/junit.js';
import { compile } from '../../src/policy/compile.js';
import { conformanceObjects, policy, storeOf, writeManifests } from '../support/conformance.js';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'podwall-test-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

// Conformance model (x, y, z × a, b, c; ns labels ns=<name>, pod labels pod=<name>) plus:
// x/web-ports: pods of x accept 80 and 8000-9000/TCP from y only; z/cidr: z accepts 81/TCP from 10.0.0.0/8.
const OBJECTS = [
  ...conformanceObjects(),
  policy('x', 'web-ports', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }, { port: 8000, endPort: 9000 }] }] }),
  policy('z', 'cidr', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' } }], ports: [{ port: 81 }] }] }),
  { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'w', namespace: 'y' }, spec: { selector: { matchLabels: { pod: 'w' } }, template: { metadata: { labels: { pod: 'w' } }, spec: { containers: [{ name: 'c', image: 'c' }] } } } },
];
const plan = compile(storeOf(OBJECTS), { ipless: true });
const cluster = writeManifests(join(dir, 'cluster'), OBJECTS);

const expectations = (body: string) => `apiVersion: podwall.io/v1alpha1\nkind: Expectations\nassertions:\n${body}`;
const check = (body: string) => checkAssertions(plan, parseExpectations(expectations(body), 'e.yaml'));

test('every form of from/to and port is read', (t) => {
  const a = parseExpectations(
    expectations(`- {name: one, from: x/a, to: "y/*", port: 80, allow: true}
- from: [x/a, "z/w[Deployment]"]
  to: {namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchExpressions: [{key: pod, operator: In, values: [a, b]}]}}
  ports: [80/tcp, 8000-9000/UDP, " 53 / UDP "]
  allow: false
- {from: "*", to: {namespace: z}, port: 1-65535/SCTP, allow: false}
- {from: web, to: db, port: 5432, allow: true}
`),
    'e.yaml',
    'shop',
  );
  t.is(a.length, 4);
  t.is(a[0]!.name, 'one');
  t.is(a[1]!.name, 'x/a, z/w[Deployment] → pods {pod In (a, b)} in namespaces {ns: y} 80/TCP, 8000-9000/UDP, 53/UDP denied');
  t.deepEqual(a[1]!.ports, [
    { protocol: 'TCP', lo: 80, hi: 80 },
    { protocol: 'UDP', lo: 8000, hi: 9000 },
    { protocol: 'UDP', lo: 53, hi: 53 },
  ]);
  t.true(a[0]!.from.exact);
  t.false(a[0]!.to.exact);
  t.is(a[3]!.from.text, 'web');
  t.true(a[3]!.from.patterns[0]!.matches({ key: 'shop/web', namespace: 'shop', labels: {} }, () => ({})), 'a bare name is in -n');
});

const BAD: [string, string, RegExp][] = [
  ['invalid YAML', 'assertions: [', /^e\.yaml: invalid YAML at line 1/],
  ['duplicate keys', 'assertions:\n- {from: x/a, from: x/b, to: y/a, port: 80, allow: true}\n', /invalid YAML.*[Dd]uplicate|Map keys must be unique/],
  ['not a mapping', '- 1\n', /^e\.yaml: expected a mapping with assertions/],
  ['unknown top field', 'asserts: []\n', /^e\.yaml: asserts: unknown field/],
  ['wrong apiVersion', 'apiVersion: v1\nassertions: []\n', /apiVersion: "v1" is not podwall\.io\/v1alpha1/],
  ['wrong kind', 'kind: Pod\nassertions: []\n', /kind: "Pod" is not Expectations/],
  ['no assertions', 'kind: Expectations\n', /assertions: required, a list/],
  ['empty assertions', 'assertions: []\n', /assertions: empty — nothing to test/],
  ['assertion not a mapping', 'assertions: [x/a]\n', /assertions\[0\]: must be a mapping/],
  ['misspelt field', 'assertions:\n- {from: x/a, to: y/a, port: 80, alow: true}\n', /assertions\[0\]\.alow: unknown field \(did you mean "allow"\?\)/],
  ['allow missing', 'assertions:\n- {from: x/a, to: y/a, port: 80}\n', /assertions\[0\]\.allow: required, true or false/],
  ['allow as text', 'assertions:\n- {from: x/a, to: y/a, port: 80, allow: "yes"}\n', /assertions\[0\]\.allow: required, true or false \(not "yes"\)/],
  ['port missing', 'assertions:\n- {from: x/a, to: y/a, allow: true}\n', /assertions\[0\]\.port: required/],
  ['port and ports', 'assertions:\n- {from: x/a, to: y/a, port: 80, ports: [81], allow: true}\n', /give port or ports, not both/],
  ['bad port', 'assertions:\n- {from: x/a, to: y/a, port: http, allow: true}\n', /assertions\[0\]\.port: "http" is not a port/],
  ['reversed range', 'assertions:\n- {from: x/a, to: y/a, ports: [80, 90-10], allow: true}\n', /assertions\[0\]\.ports\[1\]: "90-10": the range ends below its start/],
  ['port 0', 'assertions:\n- {from: x/a, to: y/a, port: 0, allow: true}\n', /ports are 1-65535/],
  ['unknown protocol', 'assertions:\n- {from: x/a, to: y/a, port: 80/ICMP, allow: true}\n', /unknown protocol "ICMP"/],
  ['bad pattern', 'assertions:\n- {from: x/a/b, to: y/a, port: 80, allow: true}\n', /assertions\[0\]\.from: "x\/a\/b": expected namespace\/name/],
  ['from missing', 'assertions:\n- {to: y/a, port: 80, allow: true}\n', /assertions\[0\]\.from: required/],
  ['empty list', 'assertions:\n- {from: [], to: y/a, port: 80, allow: true}\n', /assertions\[0\]\.from: an empty list matches nothing/],
  ['bad operator', 'assertions:\n- {from: {podSelector: {matchExpressions: [{key: a, operator: Is, values: [b]}]}}, to: y/a, port: 80, allow: true}\n', /from\.podSelector\.matchExpressions\[0\]\.operator: "Is" is not In/],
  ['selector typo', 'assertions:\n- {from: {podselector: {}}, to: y/a, port: 80, allow: true}\n', /from\.podselector: unknown field/],
  ['bad label', 'assertions:\n- {from: {podSelector: {matchLabels: {app: "a b"}}}, to: y/a, port: 80, allow: true}\n', /from\.podSelector\.matchLabels\["app"\]: label value "a b" is not valid/],
  ['namespace twice', 'assertions:\n- {from: {namespace: x, namespaceSelector: {}}, to: y/a, port: 80, allow: true}\n', /give namespace or namespaceSelector, not both/],
];
for (const [name, text, re] of BAD) {
  test(`expectations file rejected: ${name}`, (t) => {
    const e = t.throws(() => parseExpectations(text, 'e.yaml'), { instanceOf: ExpectationError, message: re });
    t.false(e!.message.includes('\n'), 'one line');
    t.notRegex(e!.message, /undefined|\[object/);
  });
}

test('port ranges are checked once per stretch no rule tells apart', (t) => {
  t.deepEqual(portStretches(plan, { protocol: 'TCP', lo: 1, hi: 65535 }), [
    { protocol: 'TCP', lo: 1, hi: 79 },
    { protocol: 'TCP', lo: 80, hi: 80 },
    { protocol: 'TCP', lo: 81, hi: 81 },
    { protocol: 'TCP', lo: 82, hi: 7999 },
    { protocol: 'TCP', lo: 8000, hi: 9000 },
    { protocol: 'TCP', lo: 9001, hi: 65535 },
  ]);
  t.is(check('- {from: "y/*", to: "x/*", port: 8000-9000, allow: true}').failed, 0);
  const r = check('- {from: y/a, to: x/a, port: 7990-9005, allow: true}').results[0]!;
  t.false(r.passed);
  t.deepEqual(
    r.failures.map((f) => f.port),
    ['7990-7999/TCP', '9001-9005/TCP'],
  );
  t.regex(r.failures[0]!.why, /^DENIED {2}y\/a → x\/a {2}7990\/TCP/);
  t.is(check('- {from: z/a, to: x/a, ports: [1-65535/TCP, 1-65535/UDP, 1-65535/SCTP], allow: false}').failed, 0);
  t.deepEqual(parsePortRange('65536'), '"65536": ports are 1-65535');
});

test('selectors, lists, self pairs and what matches nothing', (t) => {
  t.is(check('- {from: {namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: a}}}, to: {namespace: x}, port: 80, allow: true}').failed, 0);
  // x's pods reach each other? x isolates ingress to y only: denied between them, self pairs left out.
  t.is(check('- {from: "x/*", to: "x/*", port: 80, allow: false}').failed, 0);
  // Named exactly on both sides, an endpoint's pair with itself is checked (always allowed).
  t.false(check('- {from: x/a, to: x/a, port: 80, allow: false}').results[0]!.passed);
  t.is(check('- {from: x/a, to: x/a, port: 80, allow: true}').failed, 0);
  const none = check('- {from: q/*, to: x/a, port: 80, allow: true}').results[0]!;
  t.false(none.passed);
  t.is(none.problem, 'from q/* matches no endpoint');
  const kinds = check('- {from: "y/w[Deployment]", to: "x/*", port: 80, allow: true}').results[0]!;
  t.true(kinds.passed, 'a workload is matched by ns/name[Kind] and by namespace labels');
  t.is(kinds.checked, 3);
});

test('an IP-dependent verdict passes neither allow: true nor allow: false, and says why', (t) => {
  for (const allow of [true, false]) {
    const r = check(`- {from: "y/w[Deployment]", to: z/a, port: 81, allow: ${allow}}`).results[0]!;
    t.false(r.passed);
    t.is(r.failures[0]!.got, null);
    t.regex(r.failures[0]!.why, /^DEPENDS ON IP/);
  }
  t.true(checkAssertions(compile(storeOf(OBJECTS), { ipless: true, podNetwork: ['10.244.0.0/16'] }), parseExpectations(expectations('- {from: "y/w[Deployment]", to: z/a, port: 81, allow: true}'), 'e.yaml')).results[0]!.passed);
});

test('JUnit XML: one suite per file, one case per assertion, failures with their explanation, hostile text escaped', (t) => {
  const r = checkAssertions(plan, [
    ...parseExpectations(expectations('- {name: "ok <&> \\u0007 \\U0001F600", from: y/a, to: x/a, port: 80, allow: true}\n- {name: bad, from: z/a, to: x/a, port: 80, allow: true}'), 'one.yaml'),
    ...parseExpectations(expectations('- {from: q/*, to: x/a, port: 80, allow: true}'), 'two.yaml'),
  ]);
  const x = junitXml(r, { timeSeconds: 0.25 });
  t.regex(x, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="podwall test" tests="3" failures="2" errors="0" time="0\.250">/);
  t.regex(x, /<testsuite name="one\.yaml" tests="2" failures="1"/);
  t.regex(x, /<testsuite name="two\.yaml" tests="1" failures="1"/);
  t.regex(x, /<testcase classname="one\.yaml" name="\[0\] ok &lt;&amp;&gt; \uFFFD 😀" assertions="1"\/>/);
  t.regex(x, /<failure message="1 of 1 pair\(s\) and port\(s\) are not allowed" type="reachability">z\/a → x\/a 80\/TCP: expected ALLOWED, got DENIED\n {2}DENIED/);
  t.regex(x, /<failure message="from q\/\* matches no endpoint"/);
  t.is((x.match(/<testcase /g) ?? []).length, 3);
  t.is((x.match(/<\/testsuite>/g) ?? []).length, 2);
});

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, 'test', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('podwall test: exit 0 when all pass, 1 when one fails (explained), 2 on unusable input; -o json; --junit', (t) => {
  const good = join(dir, 'good.yaml');
  writeFileSync(good, expectations('- {name: y reaches x on 80, from: "y/*", to: "x/*", port: 80, allow: true}\n- {from: "z/*", to: "x/*", port: 80, allow: false}\n'));
  const ok = run('-f', cluster, '--expect', good);
  t.is(ok.code, 0, ok.err);
  t.regex(ok.out, /^PASS {2}y reaches x on 80 {2}\(.*good\.yaml: assertions\[0\]\)/);
  t.regex(ok.out, /2 assertion\(s\): 2 passed, 0 failed\n$/);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, expectations('- {name: flipped, from: "y/*", to: "x/*", port: 80, allow: false}\n'));
  const junit = join(dir, 'junit.xml');
  const fail = run('-f', cluster, '--expect', good, '--expect', bad, '--junit', junit);
  t.is(fail.code, 1);
  t.regex(fail.out, /FAIL {2}flipped/);
  t.regex(fail.out, /y\/a → x\/a 80\/TCP: expected DENIED, got ALLOWED\n {8}ALLOWED {2}y\/a → x\/a {2}80\/TCP/);
  t.regex(fail.out, /… and 7 more failing pair\(s\) and port\(s\) of 12/);
  t.regex(readFileSync(junit, 'utf8'), /tests="3" failures="1"/);
  const j = JSON.parse(run('-f', cluster, '--expect', bad, '-o', 'json').out);
  t.deepEqual(Object.keys(j), ['passed', 'failed', 'assertions']);
  t.like(j.assertions[0], { name: 'flipped', from: 'y/*', to: 'x/*', ports: ['80/TCP'], allow: false, passed: false, checked: 12, failed: 12 });
  t.deepEqual(Object.keys(j.assertions[0].failures[0]), ['from', 'to', 'port', 'expected', 'got', 'why']);
  const broken = join(dir, 'broken.yaml');
  writeFileSync(broken, 'apiVersion: v1\nkind: Pod\nmetadata: {name: "a b", namespace: x}\nspec: {containers: [{name: c, image: c}]}\n');
  const cases: [string[], RegExp][] = [
    [['-f', cluster], /no expectations: give --expect FILE/],
    [['-f', cluster, '--expect', join(dir, 'missing.yaml')], /missing\.yaml: cannot read: ENOENT/],
    [['-f', cluster, '--expect', cluster + '/x.yaml'], /cannot read/],
    [['-f', broken, '--expect', good], /broken\.yaml: Pod x\/a b: metadata\.name/],
    [['--expect', good], /no input: give manifests with -f/],
  ];
  writeFileSync(join(dir, 'typo.yaml'), expectations('- {from: x/a, to: y/a, prot: 80, allow: true}\n'));
  cases.push([['-f', cluster, '--expect', join(dir, 'typo.yaml')], /typo\.yaml: assertions\[0\]\.prot: unknown field \(did you mean "port"\?\)/]);
  for (const [args, re] of cases) {
    const r = run(...args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    t.regex(r.err, re);
    t.false(/\n\s+at /.test(r.err), 'no stack trace');
  }
});
