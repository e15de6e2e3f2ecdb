// lint warnings for ClusterNetworkPolicies, on the conformance model (x, y, z × a, b, c).
import test from 'ava';
import { conformanceObjects, policy, storeOf, type Raw } from '../support/conformance.js';
import { lint } from '../../src/policy/lint.js';
import type { Finding } from '../../src/cluster/findings.js';

type Rule = Record<string, unknown>;
function cnp(name: string, tier: 'Admin' | 'Baseline', priority: number, subject: Rule, rules: { ingress?: Rule[]; egress?: Rule[] }): Raw {
  return { apiVersion: 'policy.networking.k8s.io/v1alpha2', kind: 'ClusterNetworkPolicy', metadata: { name }, spec: { tier, priority, subject, ...rules } };
}
const ns = (n: string) => ({ namespaces: { matchLabels: { ns: n } } });
const run = (...objects: Raw[]): Finding[] => lint(storeOf([...conformanceObjects(), ...objects])).filter((f) => f.object?.startsWith('ClusterNetworkPolicy') || f.code === 'egress-blocks-dns');
const codes = (fs: Finding[]) => fs.map((f) => `${f.code} ${f.object} ${f.field}`);

test('no warnings for a plain, well-formed policy', (t) => {
  t.deepEqual(codes(run(cnp('g', 'Admin', 10, ns('x'), { ingress: [{ action: 'Deny', from: [ns('y')] }] }))), []);
});

test('equal priorities with overlapping subjects and rules in the same direction: warned, with podwall order', (t) => {
  const fs = run(cnp('b', 'Admin', 5, ns('x'), { ingress: [{ action: 'Deny', from: [ns('y')] }] }), cnp('a', 'Admin', 5, { namespaces: {} }, { ingress: [{ action: 'Accept', from: [ns('y')] }] }));
  const w = fs.filter((f) => f.code === 'equal-priority-overlap');
  t.is(w.length, 1);
  t.is(w[0]!.object, 'ClusterNetworkPolicy b');
  t.is(w[0]!.field, 'spec.priority');
  t.regex(w[0]!.message, /Admin priority 5 is also the priority of ClusterNetworkPolicy a, and they both select x\/a, x\/b, x\/c with ingress rules: .*podwall evaluates a first \(by name\)/);
});

test('equal priorities without a shared pod, in other tiers or other directions: no warning', (t) => {
  t.deepEqual(codes(run(cnp('a', 'Admin', 5, ns('x'), { ingress: [{ action: 'Deny', from: [ns('y')] }] }), cnp('b', 'Admin', 5, ns('y'), { ingress: [{ action: 'Deny', from: [ns('z')] }] }))), []);
  t.deepEqual(codes(run(cnp('a', 'Admin', 5, ns('x'), { ingress: [{ action: 'Deny', from: [ns('y')] }] }), cnp('b', 'Baseline', 5, ns('x'), { ingress: [{ action: 'Deny', from: [ns('z')] }] }))), []);
  t.deepEqual(codes(run(cnp('a', 'Admin', 5, ns('x'), { ingress: [{ action: 'Deny', from: [ns('y')] }] }), cnp('b', 'Admin', 5, ns('x'), { egress: [{ action: 'Deny', to: [ns('z')] }] }))), []);
});

test('a rule after one that matches all its peers on every port is shadowed', (t) => {
  const fs = run(cnp('g', 'Admin', 10, ns('x'), { ingress: [{ name: 'deny-all', action: 'Deny', from: [{ namespaces: {} }] }, { name: 'dns', action: 'Accept', from: [ns('y')], protocols: [{ udp: { destinationPort: { number: 53 } } }] }] }));
  t.deepEqual(codes(fs), ['rule-shadowed ClusterNetworkPolicy g spec.ingress[1]']);
  t.regex(fs[0]!.message, /rule 0 \("deny-all"\) \(Deny\) before it matches every peer/);
  // An earlier rule restricted by protocols does not shadow.
  t.deepEqual(codes(run(cnp('g', 'Admin', 10, ns('x'), { ingress: [{ action: 'Deny', from: [{ namespaces: {} }], protocols: [{ tcp: { destinationPort: { number: 80 } } }] }, { action: 'Accept', from: [ns('y')] }] }))), []);
});

test('subject or peer matching no pod, unresolved named port', (t) => {
  const fs = run(
    cnp('nobody', 'Admin', 10, ns('nope'), { ingress: [{ action: 'Deny', from: [ns('y')] }] }),
    cnp('g', 'Admin', 11, ns('x'), { ingress: [{ action: 'Deny', from: [ns('nope')] }, { action: 'Deny', from: [ns('y')], protocols: [{ destinationNamedPort: 'nope' }] }] }),
  );
  t.deepEqual(codes(fs), ['selects-no-pod ClusterNetworkPolicy nobody spec.subject', 'peer-matches-nothing ClusterNetworkPolicy g spec.ingress[0].from[0]', 'named-port-unresolved ClusterNetworkPolicy g spec.ingress[1].protocols[0].destinationNamedPort']);
});

test('networks covering pod addresses: warned (they judge pod-to-pod traffic too); Pass rules are not', (t) => {
  const fs = run(cnp('g', 'Admin', 10, ns('x'), { egress: [{ action: 'Deny', to: [{ networks: ['10.244.0.0/16', '192.0.2.0/24'] }] }, { action: 'Pass', to: [{ networks: ['10.0.0.0/8'] }] }] }));
  t.deepEqual(codes(fs), ['networks-cover-pods ClusterNetworkPolicy g spec.egress[0].to[0].networks[0]']);
});

test('egress-blocks-dns: an Admin Accept of DNS counts', (t) => {
  const lockdown = policy('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] });
  t.is(run(lockdown).filter((f) => f.code === 'egress-blocks-dns').length, 1);
  const dns = cnp('dns', 'Admin', 1, { namespaces: {} }, { egress: [{ action: 'Accept', to: [{ namespaces: {} }], protocols: [{ udp: { destinationPort: { number: 53 } } }] }] });
  t.is(run(lockdown, dns).filter((f) => f.code === 'egress-blocks-dns').length, 0);
});
