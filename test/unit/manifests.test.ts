import test from 'ava';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadManifests, parseManifestText } from '../../src/cluster/manifests.js';
import { normalizeObject } from '../../src/cluster/normalize.js';
import { formatFinding } from '../../src/cluster/findings.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'podwall-manifests-'));
  dirs.push(d);
  return d;
}
test.after.always(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

// What `kubectl get ns,pods,netpol,nodes -A -o yaml` prints (trimmed to the fields that matter).
const KUBECTL_LIST = `apiVersion: v1
items:
- apiVersion: v1
  kind: Namespace
  metadata:
    creationTimestamp: "2024-05-01T10:00:00Z"
    labels:
      kubernetes.io/metadata.name: shop
      team: web
    name: shop
    resourceVersion: "101"
    uid: 0d9a2f6e-1111-2222-3333-444455556666
  spec:
    finalizers:
    - kubernetes
  status:
    phase: Active
- apiVersion: v1
  kind: Pod
  metadata:
    labels:
      app: web
    name: web-7d4b9c-abcde
    namespace: shop
    ownerReferences:
    - apiVersion: apps/v1
      kind: ReplicaSet
      name: web-7d4b9c
      uid: 7c1f5e2a-0000-4000-8000-000000000001
  spec:
    containers:
    - image: nginx
      name: nginx
      ports:
      - containerPort: 8080
        name: http
        protocol: TCP
    nodeName: worker-1
  status:
    phase: Running
    podIP: 10.244.1.5
    podIPs:
    - ip: 10.244.1.5
    - ip: fd00:10:244:1::5
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    annotations:
      kubectl.kubernetes.io/last-applied-configuration: |
        {"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy"}
    generation: 1
    name: web
    namespace: shop
  spec:
    ingress:
    - from:
      - namespaceSelector:
          matchLabels:
            team: web
      ports:
      - port: http
        protocol: TCP
    podSelector:
      matchLabels:
        app: web
    policyTypes:
    - Ingress
- apiVersion: v1
  kind: Node
  metadata:
    annotations:
      kube-router.io/pod-cidrs: 10.244.1.0/24,fd00:10:244:1::/64
    name: worker-1
  spec: {}
  status:
    addresses:
    - address: 172.18.0.3
      type: InternalIP
    - address: worker-1
      type: Hostname
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: unrelated
    namespace: shop
kind: List
metadata:
  resourceVersion: ""
`;

test('reads a kubectl -o yaml List exactly as kubectl prints it', async (t) => {
  const d = tmp();
  writeFileSync(join(d, 'cluster.yaml'), KUBECTL_LIST);
  const r = await loadManifests([d]);
  t.deepEqual(r.findings, []);
  t.deepEqual(r.skipped, { ConfigMap: 1 });
  const pod = r.store.pods.get('shop/web-7d4b9c-abcde')!;
  t.deepEqual(pod.ips, ['10.244.1.5', 'fd00:10:244:1::5']);
  t.deepEqual(pod.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
  t.is(pod.nodeName, 'worker-1');
  const np = r.store.policies.get('shop/web')!;
  t.deepEqual(np.policyTypes, ['ingress']);
  t.deepEqual(np.ingress[0]!.ports, [{ protocol: 'TCP', port: 'http' }]);
  const node = r.store.nodes.get('worker-1')!;
  t.deepEqual(node.podCIDRs, ['10.244.1.0/24', 'fd00:10:244:1::/64']);
  t.deepEqual(node.addresses, ['172.18.0.3']);
});

test('reads multi-document YAML, JSON, JSON arrays and folders recursively', async (t) => {
  const d = tmp();
  mkdirSync(join(d, 'sub', 'deeper'), { recursive: true });
  writeFileSync(join(d, 'a.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n---\n');
  writeFileSync(join(d, 'sub', 'c.json'), JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'c' } }));
  writeFileSync(join(d, 'sub', 'deeper', 'd.yml'), 'kind: Namespace\napiVersion: v1\nmetadata: {name: d}\n');
  writeFileSync(join(d, 'sub', 'e.json'), JSON.stringify([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'e' } }]));
  writeFileSync(join(d, 'notes.txt'), 'not a manifest');
  const r = await loadManifests([d]);
  t.deepEqual(r.findings, []);
  t.deepEqual([...r.store.namespaces.keys()].sort(), ['a', 'b', 'c', 'd', 'e']);
  t.is(r.store.namespaces.get('a')!.labels['kubernetes.io/metadata.name'], 'a');
});

test('malformed YAML is one finding naming the file and line, not a crash', async (t) => {
  const d = tmp();
  writeFileSync(join(d, 'bad.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a\n');
  const r = await loadManifests([join(d, 'bad.yaml')]);
  t.is(r.findings.length, 1);
  const line = formatFinding(r.findings[0]!);
  t.regex(line, /^error: .*bad\.yaml: document 0: invalid YAML/);
  t.false(line.includes('\n'));
});

test('malformed JSON and a missing file are findings', async (t) => {
  const d = tmp();
  writeFileSync(join(d, 'bad.json'), '{"kind": "Namespace",');
  const r = await loadManifests([join(d, 'bad.json'), join(d, 'missing.yaml')]);
  t.deepEqual(r.findings.map((f) => f.code).sort(), ['invalid-json', 'unreadable']);
});

test('duplicate keys in YAML are an error, not a silent overwrite', (t) => {
  const r = parseManifestText('kind: Namespace\nmetadata: {name: a}\nmetadata: {name: b}\n', 'dup.yaml');
  t.is(r.findings[0]?.code, 'duplicate-key');
});

const bad: [string, Record<string, unknown>, string, string][] = [
  ['bad CIDR', { ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/40' } }] }] }, 'invalid-cidr', 'spec.ingress[0].from[0].ipBlock.cidr'],
  ['not an IP', { ingress: [{ from: [{ ipBlock: { cidr: 'ten/8' } }] }] }, 'invalid-cidr', 'spec.ingress[0].from[0].ipBlock.cidr'],
  ['except outside cidr', { ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] } }] }] }, 'except-outside-cidr', 'spec.ingress[0].from[0].ipBlock.except[0]'],
  ['except equal to cidr', { ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.0.0/8'] } }] }] }, 'except-outside-cidr', 'spec.ingress[0].from[0].ipBlock.except[0]'],
  ['endPort without port', { ingress: [{ ports: [{ endPort: 90 }] }] }, 'endport-without-port', 'spec.ingress[0].ports[0].endPort'],
  ['endPort below port', { ingress: [{ ports: [{ port: 90, endPort: 80 }] }] }, 'endport-below-port', 'spec.ingress[0].ports[0].endPort'],
  ['port out of range', { egress: [{ ports: [{ port: 70000 }] }] }, 'port-out-of-range', 'spec.egress[0].ports[0].port'],
  ['port zero', { egress: [{ ports: [{ port: 0 }] }] }, 'port-out-of-range', 'spec.egress[0].ports[0].port'],
  ['unknown protocol', { ingress: [{ ports: [{ port: 80, protocol: 'ICMP' }] }] }, 'unknown-protocol', 'spec.ingress[0].ports[0].protocol'],
  ['lowercase protocol', { ingress: [{ ports: [{ port: 80, protocol: 'tcp' }] }] }, 'unknown-protocol', 'spec.ingress[0].ports[0].protocol'],
  ['bad selector operator', { podSelector: { matchExpressions: [{ key: 'a', operator: 'Equals', values: ['b'] }] } }, 'invalid-operator', 'spec.podSelector.matchExpressions[0].operator'],
  ['In without values', { podSelector: { matchExpressions: [{ key: 'a', operator: 'In', values: [] }] } }, 'invalid-selector', 'spec.podSelector.matchExpressions[0].values'],
  ['named port with endPort', { ingress: [{ ports: [{ port: 'http', endPort: 90 }] }] }, 'endport-with-named-port', 'spec.ingress[0].ports[0].endPort'],
  ['quoted number as port', { ingress: [{ ports: [{ port: '80' }] }] }, 'invalid-port-name', 'spec.ingress[0].ports[0].port'],
  ['peer with nothing', { ingress: [{ from: [{}] }] }, 'empty-peer', 'spec.ingress[0].from[0]'],
  ['ipBlock with selector', { ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }] }, 'invalid-peer', 'spec.ingress[0].from[0]'],
  ['typo in a field', { ingress: [{ form: [] }] }, 'unknown-field', 'spec.ingress[0].form'],
  ['bad policy type', { policyTypes: ['Inbound'] }, 'invalid-policy-types', 'spec.policyTypes[0]'],
  ['label value with a newline', { podSelector: { matchLabels: { app: 'web\n-j ACCEPT' } } }, 'invalid-label', 'spec.podSelector.matchLabels["app"]'],
];

for (const [name, spec, code, field] of bad) {
  test(`invalid NetworkPolicy: ${name} → ${code} at ${field}`, (t) => {
    const r = normalizeObject({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'p', namespace: 'ns' }, spec: { podSelector: {}, ...spec } }, { file: 'f.yaml', doc: 0 });
    const f = r.findings.find((x) => x.severity === 'error');
    t.truthy(f, 'an error finding');
    t.is(f!.code, code);
    t.is(f!.field, field);
    t.is(f!.object, 'NetworkPolicy ns/p');
    t.is(f!.file, 'f.yaml');
    t.false(formatFinding(f!).includes('\n'));
    // Fail closed: whatever survives grants nothing wider than the valid parts.
    const np = r.object;
    if (np && np.kind === 'NetworkPolicy') {
      for (const rule of [...np.ingress, ...np.egress]) t.truthy(rule.invalid, 'the rule holding the error is marked invalid');
    }
  });
}

test('hostile names and labels are rejected with a printable one-line message', (t) => {
  const hostile = ['a"b', 'x\ny', "it's", 'a b', '-j ACCEPT', 'COMMIT\n*filter', '💥', 'a'.repeat(300)];
  for (const h of hostile) {
    for (const obj of [
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: h, namespace: 'x' }, status: { podIP: '10.0.0.1' } },
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'x', labels: { app: h } }, status: { podIP: '10.0.0.1' } },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: h } },
      { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: h, namespace: 'x' }, spec: { podSelector: {} } },
    ]) {
      const r = normalizeObject(obj, { file: 'h.yaml' });
      t.is(r.object, undefined, `rejected: ${JSON.stringify(obj)}`);
      const e = r.findings.find((f) => f.severity === 'error')!;
      t.truthy(e);
      t.false(formatFinding(e).includes('\n'));
    }
  }
});

test('list models (`_from`) and wire JSON (`from`) normalise identically', (t) => {
  const wire = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'p', namespace: 'x' }, spec: { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { a: 'b' } } }] }] } };
  const model = { ...wire, spec: { podSelector: {}, ingress: [{ _from: [{ podSelector: { matchLabels: { a: 'b' } } }] }] } };
  t.deepEqual(normalizeObject(model).object, normalizeObject(wire).object);
  t.is((normalizeObject(wire).object as { ingress: { peers: unknown[] }[] }).ingress[0]!.peers.length, 1);
});

test('pods: named ports of sidecars count, plain init containers do not; IPv6 is canonicalised', (t) => {
  const r = normalizeObject({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'x' },
    spec: {
      initContainers: [
        { name: 'once', ports: [{ containerPort: 1 }] },
        { name: 'side', restartPolicy: 'Always', ports: [{ containerPort: 9090, name: 'metrics' }] },
      ],
      containers: [{ name: 'c', ports: [{ containerPort: 53, protocol: 'UDP', name: 'dns' }] }],
    },
    status: { podIPs: [{ ip: 'FD00:0:0:0:0:0:0:1' }] },
  });
  const pod = r.object as import('../../src/cluster/model.js').Pod;
  t.deepEqual(pod.ports, [
    { port: 53, protocol: 'UDP', name: 'dns' },
    { port: 9090, protocol: 'TCP', name: 'metrics' },
  ]);
  t.deepEqual(pod.ips, ['fd00::1']);
});
