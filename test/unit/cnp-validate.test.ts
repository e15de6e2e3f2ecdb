// ClusterNetworkPolicy validation at the boundary: what the CRD (network-policy-api v0.2.0) rejects is
// an error naming the field, and the object is rejected whole; experimental peers are reported as
// unsupported and read fail closed; good objects read as written.
import test from 'ava';
import { normalizeObject } from '../../src/cluster/normalize.js';
import { clusterNetworkPolicyToRaw } from '../../src/cluster/normalize-cnp.js';
import type { ClusterNetworkPolicy } from '../../src/cluster/model.js';
import { formatFinding } from '../../src/cluster/findings.js';

type Raw = Record<string, any>;

function cnp(spec: Raw, name = 'guard'): Raw {
  return { apiVersion: 'policy.networking.k8s.io/v1alpha2', kind: 'ClusterNetworkPolicy', metadata: { name }, spec };
}

const base = (): Raw => ({
  tier: 'Admin',
  priority: 10,
  subject: { namespaces: { matchLabels: { team: 'a' } } },
  ingress: [{ name: 'deny-b', action: 'Deny', from: [{ namespaces: { matchLabels: { team: 'b' } } }] }],
  egress: [{ name: 'dns', action: 'Accept', to: [{ pods: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { k8s: 'dns' } } } }], protocols: [{ udp: { destinationPort: { number: 53 } } }] }],
});

const read = (raw: Raw) => normalizeObject(raw, { file: 'cnp.yaml', doc: 0 });

test('a valid ClusterNetworkPolicy reads as written', (t) => {
  const r = read(cnp(base()));
  t.deepEqual(r.findings, []);
  const o = r.object as ClusterNetworkPolicy;
  t.is(o.kind, 'ClusterNetworkPolicy');
  t.is(o.tier, 'Admin');
  t.is(o.priority, 10);
  t.deepEqual(o.subject, { form: 'namespaces', namespaceSelector: { matchLabels: { team: 'a' }, matchExpressions: [] } });
  t.deepEqual(o.ingress, [{ name: 'deny-b', action: 'Deny', peers: [{ kind: 'pods', form: 'namespaces', namespaceSelector: { matchLabels: { team: 'b' }, matchExpressions: [] } }], ports: [] }]);
  t.deepEqual(o.egress[0]!.ports, [{ kind: 'port', protocol: 'UDP', port: 53 }]);
  t.is(o.egress[0]!.peers[0]!.kind, 'pods');
});

test('ports, ranges, named ports and networks read as written; pods without namespaceSelector select every namespace', (t) => {
  const spec = base();
  spec.subject = { pods: { podSelector: { matchLabels: { app: 'web' } } } };
  spec.egress = [
    {
      action: 'Pass',
      to: [{ networks: ['10.0.0.0/8', '2001:db8::/32'] }, { pods: { podSelector: {} } }],
      protocols: [{ tcp: { destinationPort: { range: { start: 8000, end: 9000 } } } }, { sctp: { destinationPort: { number: 9003 } } }, { destinationNamedPort: 'web' }],
    },
  ];
  const r = read(cnp(spec));
  const o = r.object as ClusterNetworkPolicy;
  t.truthy(o, r.findings.map(formatFinding).join('\n'));
  t.deepEqual(o.subject, { form: 'pods', namespaceSelector: { matchLabels: {}, matchExpressions: [] }, podSelector: { matchLabels: { app: 'web' }, matchExpressions: [] } });
  t.deepEqual(o.egress[0]!.peers[0], { kind: 'networks', networks: ['10.0.0.0/8', '2001:db8::/32'] });
  t.deepEqual(o.egress[0]!.ports, [
    { kind: 'port', protocol: 'TCP', port: 8000, endPort: 9000 },
    { kind: 'port', protocol: 'SCTP', port: 9003 },
    { kind: 'named', name: 'web' },
  ]);
  t.deepEqual(r.findings.map((f) => f.code), ['named-port-with-networks']);
});

test('the API form round-trips', (t) => {
  const o = read(cnp(base())).object as ClusterNetworkPolicy;
  const again = read(clusterNetworkPolicyToRaw(o) as Raw).object;
  t.deepEqual(again, o);
});

// [case, mutate spec, code, field]
const BAD: [string, (s: Raw) => void, string, string][] = [
  ['missing tier', (s) => delete s.tier, 'missing-field', 'spec.tier'],
  ['bad tier', (s) => (s.tier = 'Cluster'), 'invalid-tier', 'spec.tier'],
  ['missing priority', (s) => delete s.priority, 'missing-field', 'spec.priority'],
  ['priority above 1000', (s) => (s.priority = 1001), 'out-of-range', 'spec.priority'],
  ['negative priority', (s) => (s.priority = -1), 'out-of-range', 'spec.priority'],
  ['priority as a string', (s) => (s.priority = '10'), 'invalid-type', 'spec.priority'],
  ['fractional priority', (s) => (s.priority = 1.5), 'invalid-type', 'spec.priority'],
  ['missing subject', (s) => delete s.subject, 'missing-field', 'spec.subject'],
  ['subject with both', (s) => (s.subject = { namespaces: {}, pods: { podSelector: {} } }), 'invalid-subject', 'spec.subject'],
  ['subject with neither', (s) => (s.subject = {}), 'invalid-subject', 'spec.subject'],
  ['subject pods without podSelector', (s) => (s.subject = { pods: { namespaceSelector: {} } }), 'missing-field', 'spec.subject.pods.podSelector'],
  ['bad selector operator', (s) => (s.subject = { namespaces: { matchExpressions: [{ key: 'a', operator: 'Is' }] } }), 'invalid-operator', 'spec.subject.namespaces.matchExpressions[0].operator'],
  ['bad action', (s) => (s.ingress[0].action = 'Allow'), 'invalid-action', 'spec.ingress[0].action'],
  ['missing action', (s) => delete s.ingress[0].action, 'missing-field', 'spec.ingress[0].action'],
  ['more than 25 ingress rules', (s) => (s.ingress = Array.from({ length: 26 }, () => s.ingress[0])), 'too-many-items', 'spec.ingress'],
  ['more than 25 egress rules', (s) => (s.egress = Array.from({ length: 26 }, () => s.egress[0])), 'too-many-items', 'spec.egress'],
  ['missing from', (s) => delete s.ingress[0].from, 'missing-field', 'spec.ingress[0].from'],
  ['empty from', (s) => (s.ingress[0].from = []), 'too-few-items', 'spec.ingress[0].from'],
  ['more than 25 peers', (s) => (s.ingress[0].from = Array.from({ length: 26 }, () => ({ namespaces: {} }))), 'too-many-items', 'spec.ingress[0].from'],
  ['a peer with both selectors', (s) => (s.ingress[0].from = [{ namespaces: {}, pods: { podSelector: {} } }]), 'invalid-peer', 'spec.ingress[0].from[0]'],
  ['a peer with neither selector', (s) => (s.ingress[0].from = [{}]), 'empty-peer', 'spec.ingress[0].from[0]'],
  ['networks in an ingress peer', (s) => (s.ingress[0].from = [{ networks: ['10.0.0.0/8'] }]), 'unknown-field', 'spec.ingress[0].from[0].networks'],
  ['to in an ingress rule', (s) => (s.ingress[0].to = s.ingress[0].from), 'unknown-field', 'spec.ingress[0].to'],
  ['a v1alpha1 ports list', (s) => (s.ingress[0].ports = [{ portNumber: { protocol: 'TCP', port: 80 } }]), 'unknown-field', 'spec.ingress[0].ports'],
  ['unknown protocol', (s) => (s.egress[0].protocols = [{ icmp: {} }]), 'unknown-protocol', 'spec.egress[0].protocols[0].icmp'],
  ['upper-case protocol key', (s) => (s.egress[0].protocols = [{ TCP: { destinationPort: { number: 80 } } }]), 'unknown-field', 'spec.egress[0].protocols[0].TCP'],
  ['two protocols in one entry', (s) => (s.egress[0].protocols = [{ tcp: { destinationPort: { number: 80 } }, udp: { destinationPort: { number: 80 } } }]), 'invalid-protocol', 'spec.egress[0].protocols[0]'],
  ['empty protocols', (s) => (s.egress[0].protocols = []), 'too-few-items', 'spec.egress[0].protocols'],
  ['tcp without destinationPort', (s) => (s.egress[0].protocols = [{ tcp: {} }]), 'missing-field', 'spec.egress[0].protocols[0].tcp.destinationPort'],
  ['port 0', (s) => (s.egress[0].protocols = [{ udp: { destinationPort: { number: 0 } } }]), 'out-of-range', 'spec.egress[0].protocols[0].udp.destinationPort.number'],
  ['port 65536', (s) => (s.egress[0].protocols = [{ udp: { destinationPort: { number: 65536 } } }]), 'out-of-range', 'spec.egress[0].protocols[0].udp.destinationPort.number'],
  ['number and range', (s) => (s.egress[0].protocols = [{ udp: { destinationPort: { number: 53, range: { start: 1, end: 2 } } } }]), 'invalid-port', 'spec.egress[0].protocols[0].udp.destinationPort'],
  ['range start > end', (s) => (s.egress[0].protocols = [{ tcp: { destinationPort: { range: { start: 9000, end: 8000 } } } }]), 'invalid-port-range', 'spec.egress[0].protocols[0].tcp.destinationPort.range'],
  ['range start = end', (s) => (s.egress[0].protocols = [{ tcp: { destinationPort: { range: { start: 80, end: 80 } } } }]), 'invalid-port-range', 'spec.egress[0].protocols[0].tcp.destinationPort.range'],
  ['range without end', (s) => (s.egress[0].protocols = [{ tcp: { destinationPort: { range: { start: 80 } } } }]), 'missing-field', 'spec.egress[0].protocols[0].tcp.destinationPort.range.end'],
  ['empty named port', (s) => (s.egress[0].protocols = [{ destinationNamedPort: '' }]), 'invalid-port-name', 'spec.egress[0].protocols[0].destinationNamedPort'],
  ['invalid CIDR', (s) => (s.egress[0].to = [{ networks: ['10.0.0.0/33'] }]), 'invalid-cidr', 'spec.egress[0].to[0].networks[0]'],
  ['duplicate CIDR', (s) => (s.egress[0].to = [{ networks: ['10.0.0.0/8', '10.0.0.0/8'] }]), 'duplicate-value', 'spec.egress[0].to[0].networks[1]'],
  ['empty networks', (s) => (s.egress[0].to = [{ networks: [] }]), 'too-few-items', 'spec.egress[0].to[0].networks'],
  ['more than 25 networks', (s) => (s.egress[0].to = [{ networks: Array.from({ length: 26 }, (_, i) => `10.${i}.0.0/16`) }]), 'too-many-items', 'spec.egress[0].to[0].networks'],
  ['rule name over 100 characters', (s) => (s.ingress[0].name = 'x'.repeat(101)), 'invalid-rule-name', 'spec.ingress[0].name'],
  ['unknown spec field', (s) => (s.podSelector = {}), 'unknown-field', 'spec.podSelector'],
  ['domainNames in a Deny rule', (s) => (s.egress[0] = { action: 'Deny', to: [{ domainNames: ['example.com'] }] }), 'invalid-peer', 'spec.egress[0].to[0].domainNames'],
  ['bad domain name', (s) => (s.egress[0] = { action: 'Accept', to: [{ domainNames: ['exa mple.com'] }] }), 'invalid-domain-name', 'spec.egress[0].to[0].domainNames[0]'],
];

for (const [name, mutate, code, field] of BAD) {
  test(`invalid: ${name} → ${code} at ${field}, object rejected`, (t) => {
    const spec = base();
    mutate(spec);
    const r = read(cnp(spec));
    t.is(r.object, undefined, 'an invalid ClusterNetworkPolicy is rejected whole');
    const hit = r.findings.find((f) => f.severity === 'error' && f.code === code && f.field === field);
    t.truthy(hit, `want ${code} at ${field}; got ${r.findings.map(formatFinding).join(' | ')}`);
    t.is(hit!.object, 'ClusterNetworkPolicy guard');
    t.is(hit!.file, 'cnp.yaml');
    for (const f of r.findings) t.notRegex(formatFinding(f), /undefined|\[object Object\]/);
  });
}

test('no spec: rejected', (t) => {
  const r = read({ apiVersion: 'policy.networking.k8s.io/v1alpha2', kind: 'ClusterNetworkPolicy', metadata: { name: 'x' } });
  t.is(r.object, undefined);
  t.true(r.findings.some((f) => f.code === 'missing-field' && f.field === 'spec'));
});

test('experimental peers: reported as unsupported, kept, read fail closed', (t) => {
  const spec = base();
  spec.egress = [
    { name: 'to-nodes', action: 'Deny', to: [{ nodes: { matchLabels: { role: 'control-plane' } } }], protocols: [{ tcp: { destinationPort: { number: 6443 } } }] },
    { name: 'fqdn', action: 'Accept', to: [{ domainNames: ['*.example.com'] }] },
  ];
  const r = read(cnp(spec));
  const o = r.object as ClusterNetworkPolicy;
  t.truthy(o, 'kept: an unsupported peer does not reject the object');
  const unsupported = r.findings.filter((f) => f.code === 'unsupported-peer');
  t.deepEqual(unsupported.map((f) => [f.severity, f.field]), [
    ['error', 'spec.egress[0].to[0].nodes'],
    ['error', 'spec.egress[1].to[0].domainNames'],
  ]);
  t.regex(unsupported[0]!.message, /not supported by podwall; this Deny rule is enforced as denying every destination/);
  t.regex(unsupported[1]!.message, /this Accept rule matches no traffic/);
  t.deepEqual(o.egress[0]!.peers, [{ kind: 'unsupported', field: 'nodes' }]);
});

test('a namespace on the cluster-scoped object is a warning', (t) => {
  const raw = cnp(base());
  raw.metadata.namespace = 'default';
  const r = read(raw);
  t.truthy(r.object);
  t.deepEqual(r.findings.map((f) => [f.severity, f.code, f.field]), [['warning', 'cluster-scoped', 'metadata.namespace']]);
});

test('AdminNetworkPolicy / BaselineAdminNetworkPolicy v1alpha1: skipped with a warning', (t) => {
  for (const kind of ['AdminNetworkPolicy', 'BaselineAdminNetworkPolicy']) {
    const r = read({ apiVersion: 'policy.networking.k8s.io/v1alpha1', kind, metadata: { name: 'default' }, spec: {} });
    t.is(r.object, undefined);
    t.is(r.skipped, kind);
    t.deepEqual(r.findings.map((f) => [f.severity, f.code]), [['warning', 'unsupported-kind']]);
    t.regex(r.findings[0]!.message, /ClusterNetworkPolicy v1alpha2/);
  }
});

test('a ClusterNetworkPolicy of another API version is skipped with a warning', (t) => {
  const raw = cnp(base());
  raw.apiVersion = 'policy.networking.k8s.io/v1beta1';
  const r = read(raw);
  t.is(r.object, undefined);
  t.deepEqual(r.findings.map((f) => f.code), ['foreign-api-version']);
});
