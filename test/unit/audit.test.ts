// Audited (staged) policies: `podwall.io/enforcement: audit` on a NetworkPolicy or its Namespace.
// Read, compiled, simulated, explained, shown in the matrix, linted and rendered — and never able to
// turn enforcement off.
import test from 'ava';
import { normalizeObject } from '../../src/cluster/normalize.js';
import { compile } from '../../src/policy/compile.js';
import { IncrementalCompiler } from '../../src/policy/incremental.js';
import { asEnforced } from '../../src/policy/audit.js';
import { lint } from '../../src/policy/lint.js';
import { evaluate } from '../../src/sim/evaluate.js';
import { explain, formatExplanation, resolveEndpoint } from '../../src/sim/explain.js';
import { matrixFromPlan } from '../../src/sim/matrix.js';
import { matrixTable } from '../../src/report/table.js';
import { render } from '../../src/dataplane/render.js';
import { sameChain } from '../../src/dataplane/diff.js';
import { podChainName } from '../../src/dataplane/names.js';
import { loadManifests } from '../../src/cluster/manifests.js';
import { conformanceObjects, podIP, policy, storeOf, writeManifests, type Raw } from '../support/conformance.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const AUDIT = { 'podwall.io/enforcement': 'audit' };
const denyAll = (ns: string, name = 'deny-all', annotations?: Record<string, string>): Raw => ({
  ...policy(ns, name, { podSelector: {}, policyTypes: ['Ingress'] }),
  metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) },
});
const fromA = (ns: string, name: string, annotations?: Record<string, string>): Raw => ({
  ...policy(ns, name, { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'a' } } }], ports: [{ port: 80, protocol: 'TCP' }] }] }),
  metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) },
});
function withNamespaceAnnotation(objs: Raw[], ns: string, annotations: Record<string, string>): Raw[] {
  return objs.map((o) => (o.kind === 'Namespace' && (o.metadata as { name: string }).name === ns ? { ...o, metadata: { ...(o.metadata as object), annotations } } : o));
}
const tcp = (from: [string, string], to: [string, string], port = 80) => ({ src: podIP(...from), dst: podIP(...to), protocol: 'TCP' as const, port });

test('the annotation is read on policies and namespaces; a malformed value is an error and the policy is enforced', (t) => {
  const np = (annotations: Record<string, unknown>) => normalizeObject({ ...denyAll('y'), metadata: { name: 'p', namespace: 'y', annotations } }, { file: 'f.yaml' });
  t.is((np(AUDIT).object as { enforcement?: string }).enforcement, 'audit');
  t.is((np({ 'podwall.io/enforcement': 'enforce' }).object as { enforcement?: string }).enforcement, 'enforce');
  t.is((np({}).object as { enforcement?: string }).enforcement, undefined);
  for (const bad of ['Audit', 'audit ', 'dry-run', '', true, 1]) {
    const r = np({ 'podwall.io/enforcement': bad });
    t.is((r.object as { enforcement?: string }).enforcement, 'enforce', `value ${JSON.stringify(bad)} reads as enforce`);
    const e = r.findings.find((f) => f.code === 'invalid-enforcement')!;
    t.is(e.severity, 'error');
    t.is(e.field, 'metadata.annotations["podwall.io/enforcement"]');
    t.regex(e.message, /is not "audit" or "enforce": the policy is enforced/);
  }
  const ns = normalizeObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'y', annotations: { 'podwall.io/enforcement': 'yes' } } });
  t.is((ns.object as { enforcement?: string }).enforcement, undefined);
  t.is(ns.findings[0]!.code, 'invalid-enforcement');
});

test('through the strict manifests loader, a malformed annotation value keeps the policy in force, enforced; a namespace keeps its labels', async (t) => {
  // Any string is a valid annotation to an API server: the object is not rejected whole (that would
  // lift its isolation); a non-string value is refused as an API server refuses it.
  const dir = mkdtempSync(join(tmpdir(), 'podwall-audit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const objs = withNamespaceAnnotation([...conformanceObjects(), denyAll('y', 'typo', { 'podwall.io/enforcement': 'Audit' })], 'z', { 'podwall.io/enforcement': 'dry-run' });
  writeManifests(dir, objs);
  const r = await loadManifests([dir]);
  t.deepEqual(r.findings.filter((f) => f.severity === 'error').map((f) => `${f.code} ${f.object}`), ['invalid-enforcement Namespace z', 'invalid-enforcement NetworkPolicy y/typo']);
  const plan = compile(r.store);
  const yb = plan.pods.find((p) => p.key === 'y/b')!;
  t.deepEqual(yb.ingressPolicies, ['y/typo'], 'enforced');
  t.is(yb.ingressAudit, undefined);
  t.false(evaluate(plan, tcp(['x', 'a'], ['y', 'b'])).allowed);
  t.is(plan.namespaceLabels.z?.ns, 'z', 'the namespace is read with its labels');
  writeManifests(dir, [...conformanceObjects(), { ...denyAll('y', 'typo'), metadata: { name: 'typo', namespace: 'y', annotations: { 'podwall.io/enforcement': true } } }]);
  const bad = await loadManifests([dir]);
  t.true(bad.findings.some((f) => f.code === 'invalid-type' && f.object === 'NetworkPolicy y/typo'), 'a non-string annotation is refused as by an API server');
});

test('an audited policy isolates nobody: it is kept apart in the Plan', (t) => {
  const plan = compile(storeOf([...conformanceObjects(), denyAll('y', 'new', AUDIT)]));
  const yb = plan.pods.find((p) => p.key === 'y/b')!;
  t.deepEqual(yb.ingressPolicies, []);
  t.deepEqual(yb.ingressAudit, ['y/new']);
  t.is(plan.policies.find((p) => p.id === 'y/new')!.audit, true);
  t.deepEqual(asEnforced(plan).pods.find((p) => p.key === 'y/b')!.ingressPolicies, ['y/new']);
  t.is(plan.pods.find((p) => p.key === 'x/b')!.ingressAudit, undefined);
});

test('a namespace annotated audit audits every policy of it; a policy annotated enforce, or malformed, is enforced there', (t) => {
  const objs = withNamespaceAnnotation([...conformanceObjects(), denyAll('y', 'a-audited'), fromA('y', 'b-enforced', { 'podwall.io/enforcement': 'enforce' }), fromA('y', 'c-typo', { 'podwall.io/enforcement': 'adit' })], 'y', AUDIT);
  const plan = compile(storeOf(objs));
  const yb = plan.pods.find((p) => p.key === 'y/b')!;
  t.deepEqual(yb.ingressPolicies, ['y/b-enforced', 'y/c-typo']);
  t.deepEqual(yb.ingressAudit, ['y/a-audited']);
  // y/a is selected only by the audited deny-all: not isolated.
  t.deepEqual(plan.pods.find((p) => p.key === 'y/a')!.ingressPolicies, []);
});

test('simulator: allowed now, "would deny once enforced" — enforced policies keep enforcing next to audited ones', (t) => {
  const plan = compile(storeOf([...conformanceObjects(), denyAll('y', 'new', AUDIT), fromA('z', 'web'), denyAll('z', 'staged-deny', AUDIT), fromA('x', 'enforced'), { ...fromA('x', 'staged-allow-c', AUDIT), spec: { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'c' } } }] }] } }]));
  // y/b: only an audited deny-all selects it.
  const a = evaluate(plan, tcp(['x', 'a'], ['y', 'b']));
  t.true(a.allowed);
  t.like(a.audit, { allowed: false, change: 'would-deny', policies: ['y/new'] });
  t.regex(a.summary, /ALLOWED: .*only audited policies select it: y\/new.*; y\/new would deny it once enforced/);
  // z/b: enforced z/web (from pod a on 80) plus an audited deny-all: the enforced one decides as before.
  t.true(evaluate(plan, tcp(['x', 'a'], ['z', 'b'])).allowed);
  t.is(evaluate(plan, tcp(['x', 'a'], ['z', 'b'])).audit!.change, 'none');
  const zc = evaluate(plan, tcp(['x', 'c'], ['z', 'b']));
  t.false(zc.allowed, 'the audited deny-all does not weaken z/web');
  t.is(zc.audit!.change, 'none');
  // x/b: enforced x/enforced denies x/c; the audited policy would allow it once enforced.
  const xc = evaluate(plan, tcp(['x', 'c'], ['x', 'b'], 81));
  t.false(xc.allowed, 'an audited allow grants nothing');
  t.like(xc.audit, { allowed: true, change: 'would-allow', policies: ['x/staged-allow-c'] });
  // Pods no audited policy selects get no audit verdict.
  t.is(evaluate(plan, tcp(['y', 'a'], ['x', 'a'])).audit, undefined);
});

test('explain shows the audited policies apart: "allowed; y/new would deny it once enforced", with the rules and nearest miss', (t) => {
  const plan = compile(storeOf([...conformanceObjects(), fromA('y', 'new', AUDIT)]));
  const x = explain(plan, resolveEndpoint(plan, 'x/c', 'from'), resolveEndpoint(plan, 'y/b', 'to'), 'TCP', 80);
  const text = formatExplanation(x);
  t.regex(text, /^ALLOWED; y\/new would deny it once enforced {2}x\/c → y\/b {2}80\/TCP/);
  t.regex(text, /ingress of y\/b: not isolated \(only audited policies select it for ingress: y\/new\) → allowed/);
  t.regex(text, /audited policies, once enforced: DENIED/);
  t.regex(text, /ingress of y\/b: isolated by y\/new and no rule allows it → denied/);
  t.regex(text, /rule 0 of y\/new allows 80\/TCP but x\/c does not match podSelector \{pod: a\}/);
});

test('matrix: enforced cells as always, audited changes marked apart (JSON and table)', (t) => {
  const plan = compile(storeOf([...conformanceObjects(), fromA('y', 'new', AUDIT)]));
  const m = matrixFromPlan(plan, [{ port: 80, protocol: 'TCP' }]).json;
  t.deepEqual(m.audited, ['y/new']);
  const p = m.probes[0]!;
  t.true(p.allowed['x/c']!['y/b']);
  t.is(p.audit!['x/c']!['y/b'], 'would-deny');
  t.false('y/b' in (p.audit!['x/a'] ?? {}), 'x/a stays allowed once enforced');
  const text = matrixTable(m);
  t.regex(text, /audited \(not enforced\): y\/new — ! allowed now, denied once they are enforced/);
  t.true(text.split('\n').some((l) => l.startsWith('3 x/c') && l.includes('!')));
  const plain = matrixFromPlan(compile(storeOf([...conformanceObjects(), fromA('y', 'new')])), [{ port: 80, protocol: 'TCP' }]).json;
  t.is(plain.audited, undefined);
  t.is(plain.probes[0]!.audit, undefined);
});

test('lint reports audited policies and a malformed annotation', (t) => {
  const objs = withNamespaceAnnotation([...conformanceObjects(), fromA('x', 'own', AUDIT), denyAll('y', 'by-namespace'), fromA('z', 'typo', { 'podwall.io/enforcement': 'Audit' })], 'y', AUDIT);
  const store = storeOf(objs);
  const findings = lint(store);
  const audited = findings.filter((f) => f.code === 'audited-policy');
  t.deepEqual(audited.map((f) => [f.object, f.field]), [
    ['NetworkPolicy x/own', 'metadata.annotations["podwall.io/enforcement"]'],
    ['NetworkPolicy y/by-namespace', 'metadata.namespace'],
  ]);
  t.regex(audited[1]!.message, /audit on namespace y\): it isolates nobody/);
  t.false(findings.some((f) => f.object === 'NetworkPolicy z/typo' && f.code === 'audited-policy'));
  const err = normalizeObject(objs.at(-1)).findings.find((f) => f.code === 'invalid-enforcement');
  t.is(err?.severity, 'error');
});

test('render: an audited-only pod logs "would deny" and lets everything through; audit → enforce is a small change', (t) => {
  const base = conformanceObjects();
  const opts = { family: 'ipv4' as const, node: 'node-1', serviceClusterIPRanges: [], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] as [number, number] };
  const audited = render(compile(storeOf([...base, fromA('y', 'new', AUDIT)]), { node: 'node-1' }), opts);
  const chain = audited.chains.find((c) => c.name === podChainName('y', 'b'))!;
  const lines = chain.rules.map((r) => r.args.join(' '));
  const ref = podChainName('y', 'b').slice('KUBE-POD-FW-'.length);
  const i = lines.findIndex((l) => l.includes('audited policy y/new'));
  t.true(i > 0);
  // Fenced by the audit mark bit: entered only when nothing accepted yet, left with the marks cleared.
  t.regex(lines[i - 1]!, /-m mark ! --mark 0x10000\/0x10000 .*audited policies: begin -j MARK --set-xmark 0x40000\/0x40000$/);
  t.regex(lines[i]!, /-m mark --mark 0x40000\/0x40000 .* -j KUBE-NWPLCY-/);
  t.regex(lines[i + 1]!, new RegExp(`-m mark --mark 0x40000/0x50000 .*-j NFLOG --nflog-prefix podwall/1 audit in ${ref} y/b --nflog-group 100`));
  t.notRegex(lines[i + 2]!, / -j /, 'the counting rule has no target');
  t.regex(lines[i + 3]!, /audited policies: end -j MARK --set-xmark 0x0\/0x50000$/);
  t.regex(lines[i + 4]!, /-j KUBE-NWPLCY-DEFAULT$/);
  t.false(lines.some((l) => l.includes('REJECT')), 'nothing is rejected');
  t.is(audited.origins[chain.name], 'pod y/b');
  t.true(Object.values(audited.origins).includes('policy y/new ingress (audited)'));
  // Enforcing it: same policy chain, only the pod chain changes.
  const enforced = render(compile(storeOf([...base, fromA('y', 'new')]), { node: 'node-1' }), opts);
  const changed = enforced.chains.filter((c) => !sameChain(c, audited.chains.find((x) => x.name === c.name))).map((c) => c.name);
  t.deepEqual(changed, [chain.name]);
  t.deepEqual(enforced.chains.map((c) => c.name).sort(), audited.chains.map((c) => c.name).sort());
});

test('incremental: a namespace switching audit → enforce recompiles its policies (same as a full compile)', (t) => {
  const objs = [...conformanceObjects(), denyAll('y'), fromA('y', 'web')];
  const store = storeOf(withNamespaceAnnotation(objs, 'y', AUDIT));
  const inc = new IncrementalCompiler(store, 'node-1');
  t.deepEqual(inc.build().pods.find((p) => p.key === 'y/b')!.ingressAudit, ['y/deny-all', 'y/web']);
  const ns = normalizeObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'y', labels: { ns: 'y' } } }).object!;
  store.upsert(ns);
  const after = inc.build();
  t.deepEqual(after.pods.find((p) => p.key === 'y/b')!.ingressPolicies, ['y/deny-all', 'y/web']);
  t.deepEqual(JSON.stringify(after.policies), JSON.stringify(compile(store, { node: 'node-1' }).policies));
});
