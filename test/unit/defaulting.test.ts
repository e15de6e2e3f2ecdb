// API defaulting and the fail-closed readings normalize.ts applies, and how compile reads a
// namespace whose labels are unknown.
import test from 'ava';
import { normalizeObject } from '../../src/cluster/normalize.js';
import type { Namespace, NetworkPolicy } from '../../src/cluster/model.js';
import { conformanceObjects, policy, storeOf } from '../support/conformance.js';
import { compile } from '../../src/policy/compile.js';
import { matrixFromPlan } from '../../src/sim/matrix.js';

const np = (spec: unknown) => normalizeObject({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'p', namespace: 'x' }, ...(spec === 'absent' ? {} : { spec }) });

for (const spec of [null, 'absent', {}] as const) {
  test(`NetworkPolicy spec ${JSON.stringify(spec)}: API defaulting, podSelector {} and policyTypes [Ingress] (deny all ingress)`, (t) => {
    const r = np(spec);
    t.deepEqual(r.findings.filter((f) => f.severity === 'error'), []);
    const p = r.object as NetworkPolicy;
    t.deepEqual(p.podSelector, { matchLabels: {}, matchExpressions: [] });
    t.deepEqual(p.policyTypes, ['ingress']);
    t.deepEqual(p.ingress, []);
    t.true(r.findings.some((f) => f.severity === 'warning' && (f.code === 'empty-spec' || f.code === 'empty-pod-selector')), 'said in a warning');
  });
}

test('policyTypes defaulting: Egress is added when egress rules are present; [] is defaulted too', (t) => {
  t.deepEqual((np({ podSelector: {}, egress: [{}] }).object as NetworkPolicy).policyTypes, ['ingress', 'egress']);
  t.deepEqual((np({ podSelector: {}, policyTypes: [] }).object as NetworkPolicy).policyTypes, ['ingress']);
});

test('a spec that is not a mapping is an error', (t) => {
  t.is(np('all').findings.find((f) => f.severity === 'error')?.code, 'invalid-spec');
});

test('a Namespace with an invalid label exists with labels no selector reads (labelsUnreadable)', (t) => {
  const r = normalizeObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'z', labels: { ns: 'z', team: 'a b' } } });
  t.is(r.findings.find((f) => f.severity === 'error')?.code, 'invalid-label');
  const ns = r.object as Namespace;
  t.true(ns.labelsUnreadable);
  t.deepEqual(ns.labels, { 'kubernetes.io/metadata.name': 'z' });
});

test('no namespace selector matches a namespace whose labels are unknown: In, NotIn, Exists, DoesNotExist, {}', (t) => {
  const objects = conformanceObjects().map((o) => (o.kind === 'Namespace' && (o.metadata as { name: string }).name === 'z' ? { ...o, metadata: { name: 'z', labels: { ns: 'z', team: 'a b' } } } : o));
  const selectors = [
    { matchLabels: { ns: 'z' } },
    { matchExpressions: [{ key: 'ns', operator: 'NotIn', values: ['y'] }] },
    { matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['red'] }] },
    { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] },
    { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'Exists' }] },
    {},
  ];
  for (const namespaceSelector of selectors) {
    const store = storeOf([...objects, policy('x', 'from-ns', { podSelector: {}, ingress: [{ from: [{ namespaceSelector }] }] })]);
    const m = matrixFromPlan(compile(store), [{ port: 80, protocol: 'TCP' }]).json.probes[0]!.allowed;
    t.false(m['z/a']!['x/a'], `z/a → x/a through ${JSON.stringify(namespaceSelector)}`);
  }
  // A readable namespace is still matched (the rule is live): y by NotIn [z].
  const store = storeOf([...objects, policy('x', 'from-ns', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'NotIn', values: ['z'] }] } }] }] })]);
  t.true(matrixFromPlan(compile(store), [{ port: 80, protocol: 'TCP' }]).json.probes[0]!.allowed['y/a']!['x/a']!);
});
