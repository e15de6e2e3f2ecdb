// Workloads and planned pods as IP-less endpoints: reading every kind, joining a live dump's pods
// with their workloads, what is left out and said so, the tri-state ipBlock verdict, duplicate IPs,
// and every class of malformed workload.
import test from 'ava';
import { stringify } from 'yaml';
import { ClusterStore } from '../../src/cluster/store.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadManifests, parseManifestText } from '../../src/cluster/manifests.js';
import { normalizeObject } from '../../src/cluster/normalize.js';
import { formatFinding, type Finding } from '../../src/cluster/findings.js';
import { formatInputNotes, inputNotes } from '../../src/cluster/workloads.js';
import { compile } from '../../src/policy/compile.js';
import { lint } from '../../src/policy/lint.js';
import { computeMatrix, matrixFromPlan } from '../../src/sim/matrix.js';
import { explain, formatExplanation, resolveEndpoint } from '../../src/sim/explain.js';

type Raw = Record<string, unknown>;

function load(objects: Raw[], file = 'in.yaml'): { store: ClusterStore; findings: Finding[]; skipped: string[] } {
  const parsed = parseManifestText(objects.map((o) => stringify(o)).join('---\n'), file);
  const store = new ClusterStore();
  const findings = [...parsed.findings];
  const skipped: string[] = [];
  for (const { raw, doc } of parsed.docs) {
    const r = normalizeObject(raw, { file, doc });
    findings.push(...r.findings);
    if (r.skipped) skipped.push(r.skipped);
    if (r.object) store.upsert(r.object);
  }
  return { store, findings, skipped };
}

const container = (ports: Raw[] = [{ name: 'http', containerPort: 8080 }]) => [{ name: 'main', image: 'app:1', ports }];
// (selector, serviceName and restartPolicy: what the API requires of each kind, so the full loader accepts them)
const podSpec = (labels: Record<string, string>, extra: Raw = {}) => ({ metadata: { labels }, spec: { containers: container(), ...extra } });

function workload(kind: string, name: string, labels: Record<string, string>, opts: { ns?: string; api?: string; spec?: Raw; meta?: Raw } = {}): Raw {
  const api = opts.api ?? (kind === 'Job' || kind === 'CronJob' ? 'batch/v1' : kind === 'ReplicationController' ? 'v1' : 'apps/v1');
  const template = podSpec(labels, opts.spec);
  const spec = kind === 'CronJob' ? { schedule: '@hourly', jobTemplate: { spec: { template } } } : kind === 'Job' ? { template } : { replicas: 3, selector: { matchLabels: labels }, template, ...(kind === 'StatefulSet' ? { serviceName: name } : {}) };
  return { apiVersion: api, kind, metadata: { name, ...(opts.ns ? { namespace: opts.ns } : { namespace: 'shop' }), ...(opts.meta ?? {}) }, spec };
}

function pod(name: string, labels: Record<string, string>, opts: { ns?: string; ip?: string; phase?: string; owners?: Raw[]; hostNetwork?: boolean; status?: boolean } = {}): Raw {
  const status = opts.status === false ? undefined : { phase: opts.phase ?? 'Running', ...(opts.ip ? { podIP: opts.ip, podIPs: [{ ip: opts.ip }] } : {}) };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: opts.ns ?? 'shop', labels, ...(opts.owners ? { ownerReferences: opts.owners } : {}) },
    spec: { containers: container(), ...(opts.hostNetwork ? { hostNetwork: true } : {}) },
    ...(status ? { status } : {}),
  };
}

const netpol = (name: string, spec: Raw, ns = 'shop'): Raw => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec });
const errors = (f: Finding[]) => f.filter((x) => x.severity === 'error').map(formatFinding);

const KINDS: [string, string][] = [
  ['Deployment', 'apps/v1'],
  ['ReplicaSet', 'apps/v1'],
  ['StatefulSet', 'apps/v1'],
  ['DaemonSet', 'apps/v1'],
  ['Job', 'batch/v1'],
  ['CronJob', 'batch/v1'],
  ['ReplicationController', 'v1'],
];

for (const [kind, api] of KINDS) {
  test(`${kind} (${api}) is one endpoint ns/name[${kind}] with its template's labels and ports`, (t) => {
    const { store, findings } = load([workload(kind, 'app', { app: 'a' }, { api })]);
    t.deepEqual(errors(findings), []);
    const w = store.workloads.get(`shop/app[${kind}]`);
    t.truthy(w, [...store.workloads.keys()].join(','));
    t.deepEqual(w!.labels, { app: 'a' });
    t.deepEqual(w!.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
    const plan = compile(store, { ipless: true });
    t.deepEqual(plan.pods.map((p) => p.key), [`shop/app[${kind}]`]);
    t.is(plan.pods[0]!.workloadKind, kind as never);
    t.deepEqual(plan.pods[0]!.ips, []);
    // The dataplane never sees a workload.
    t.deepEqual(compile(store).pods, []);
  });
}

test('removed apiVersions of workloads are read with a warning; a foreign group is skipped', (t) => {
  const { store, findings, skipped } = load([workload('Deployment', 'old', { app: 'o' }, { api: 'extensions/v1beta1' }), workload('Deployment', 'alien', { app: 'x' }, { api: 'example.com/v1' })]);
  t.truthy(store.workloads.get('shop/old[Deployment]'));
  t.false(store.workloads.has('shop/alien[Deployment]'));
  t.true(findings.some((f) => f.code === 'deprecated-api-version' && f.object === 'Deployment shop/old'));
  t.deepEqual(skipped, ['Deployment (example.com/v1)']);
});

test('workloads meet policies by template labels; replicas do not matter; named ports resolve per workload', (t) => {
  const { store } = load([
    workload('Deployment', 'web', { app: 'web' }),
    workload('StatefulSet', 'db', { app: 'db' }, { spec: { containers: container([{ name: 'pg', containerPort: 5432 }]) } }),
    workload('CronJob', 'report', { app: 'report' }),
    netpol('db', { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ port: 'pg' }] }] }),
  ]);
  const m = computeMatrix(store, [{ port: 5432, protocol: 'TCP' }, { port: 8080, protocol: 'TCP' }]);
  t.deepEqual(m.pods, ['shop/db[StatefulSet]', 'shop/report[CronJob]', 'shop/web[Deployment]']);
  const [p5432, p8080] = m.probes;
  t.true(p5432!.allowed['shop/web[Deployment]']!['shop/db[StatefulSet]']);
  t.false(p5432!.allowed['shop/report[CronJob]']!['shop/db[StatefulSet]']);
  t.false(p8080!.allowed['shop/web[Deployment]']!['shop/db[StatefulSet]'], 'the named port pg is 5432 on db');
  t.true(p8080!.allowed['shop/db[StatefulSet]']!['shop/web[Deployment]']);
  t.true(p8080!.allowed['shop/db[StatefulSet]']!['shop/db[StatefulSet]'], 'an endpoint reaches itself');
});

test('a planned pod (no status) is an IP-less endpoint; a live Pending pod without IP is left out, and said so', (t) => {
  const { store } = load([pod('planned', { app: 'p' }, { status: false }), pod('waiting', { app: 'w' }, { phase: 'Pending' }), pod('running', { app: 'r' }, { ip: '10.244.0.5' })]);
  t.deepEqual(compile(store, { ipless: true }).pods.map((p) => `${p.key}:${p.ips.join(',')}`), ['shop/planned:', 'shop/running:10.244.0.5']);
  const notes = formatInputNotes(inputNotes(store));
  t.true(notes.some((l) => l.includes('Pending without an IP') && l.includes('shop/waiting')), notes.join('\n'));
});

test('hostNetwork workloads and pods are left out, and said so', (t) => {
  const { store } = load([workload('DaemonSet', 'agent', { app: 'agent' }, { spec: { hostNetwork: true } }), pod('hn', { app: 'h' }, { ip: '172.18.0.2', hostNetwork: true }), workload('Deployment', 'web', { app: 'web' })]);
  t.deepEqual(compile(store, { ipless: true }).pods.map((p) => p.key), ['shop/web[Deployment]']);
  const notes = formatInputNotes(inputNotes(store));
  t.true(notes.some((l) => l.includes('hostNetwork') && l.includes('shop/agent[DaemonSet]') && l.includes('shop/hn')), notes.join('\n'));
});

test('a live dump shows the pods, not their workloads a second time (ReplicaSet → Deployment, Job → CronJob, missing middle objects)', (t) => {
  const rsOwner = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d4f9c', uid: 'u1', controller: true }];
  const { store } = load([
    workload('Deployment', 'web', { app: 'web' }),
    workload('ReplicaSet', 'web-5d4f9c', { app: 'web' }, { meta: { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', controller: true }] } }),
    workload('ReplicaSet', 'web-old', { app: 'web' }, { meta: { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', controller: true }] } }),
    pod('web-5d4f9c-abcde', { app: 'web', 'pod-template-hash': '5d4f9c' }, { ip: '10.244.0.10', owners: rsOwner }),
    // RS missing from the dump: the Deployment is found by the pod-template-hash naming rule.
    workload('Deployment', 'api', { app: 'api' }),
    pod('api-7f8e9d-xyz12', { app: 'api', 'pod-template-hash': '7f8e9d' }, { ip: '10.244.0.11', owners: [{ kind: 'ReplicaSet', name: 'api-7f8e9d', controller: true }] }),
    // Job missing: its CronJob is found by the Job's name.
    workload('CronJob', 'nightly', { app: 'nightly' }),
    pod('nightly-28950000-q7w8e', { app: 'nightly' }, { ip: '10.244.0.12', owners: [{ kind: 'Job', name: 'nightly-28950000', controller: true }] }),
    // A StatefulSet with its pod.
    workload('StatefulSet', 'db', { app: 'db' }),
    pod('db-0', { app: 'db' }, { ip: '10.244.0.13', owners: [{ kind: 'StatefulSet', name: 'db', controller: true }] }),
    // A Deployment scaled to zero keeps its place.
    workload('Deployment', 'idle', { app: 'idle' }),
  ]);
  t.deepEqual(
    compile(store, { ipless: true }).pods.map((p) => p.key),
    ['shop/api-7f8e9d-xyz12', 'shop/db-0', 'shop/idle[Deployment]', 'shop/nightly-28950000-q7w8e', 'shop/web-5d4f9c-abcde'],
  );
  const notes = formatInputNotes(inputNotes(store), 10);
  t.true(notes.some((l) => l.startsWith('note: 6 workload(s) shown as their pods')), notes.join('\n'));
});

test('objects without namespace go to default; namespaces only referenced exist implicitly, with a note', (t) => {
  const w = workload('Deployment', 'web', { app: 'web' });
  delete (w.metadata as Raw).namespace;
  const { store } = load([w, pod('x', { app: 'x' }, { ns: 'team-a', ip: '10.244.0.20' }), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } }]);
  t.truthy(store.workloads.get('default/web[Deployment]'));
  t.deepEqual(compile(store, { ipless: true }).namespaceLabels.default, { 'kubernetes.io/metadata.name': 'default' });
  const notes = formatInputNotes(inputNotes(store));
  t.true(notes.some((l) => l.includes('namespace(s) default not defined in the input')), notes.join('\n'));
  t.false(notes.some((l) => l.includes('team-a')));
});

// ---------------------------------------------------------------- IP-less endpoints and ipBlock

function cidrCase(block: Raw, podNetwork?: string[]) {
  const { store } = load([
    workload('Deployment', 'web', { app: 'web' }),
    pod('db', { app: 'db' }, { ip: '10.244.1.5' }),
    netpol('db', { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ ipBlock: block }] }] }),
  ]);
  const plan = compile(store, { ipless: true, ...(podNetwork ? { podNetwork } : {}) });
  return { plan, cell: matrixFromPlan(plan, [{ port: 8080, protocol: 'TCP' }]).json.probes[0]!.allowed['shop/web[Deployment]']!['shop/db'] };
}

const CIDR_CASES: [string, Raw, string[] | undefined, boolean | null][] = [
  ['0.0.0.0/0 holds the whole IPv4 pod network', { cidr: '0.0.0.0/0' }, undefined, true],
  ['10.0.0.0/8 holds part of the default pod network', { cidr: '10.0.0.0/8' }, undefined, null],
  ['::/0 is the other family (IPv4 is paired first)', { cidr: '::/0' }, undefined, false],
  ['10.0.0.0/8 holds all of --pod-cidr 10.244.0.0/16', { cidr: '10.0.0.0/8' }, ['10.244.0.0/16'], true],
  ['10.0.0.0/8 is disjoint from --pod-cidr 192.168.0.0/16', { cidr: '10.0.0.0/8' }, ['192.168.0.0/16'], false],
  ['an except inside the pod network makes it partial', { cidr: '10.0.0.0/8', except: ['10.244.1.0/24'] }, ['10.244.0.0/16'], null],
  ['an except holding the whole pod network makes it disjoint', { cidr: '10.0.0.0/8', except: ['10.244.0.0/16'] }, ['10.244.0.0/16'], false],
  ['two pod CIDRs, one inside and one outside: partial', { cidr: '10.0.0.0/8' }, ['10.244.0.0/16', '192.168.0.0/16'], null],
  ['excepts that together hold the pod network: disjoint', { cidr: '10.0.0.0/8', except: ['10.244.0.0/17', '10.244.128.0/17'] }, ['10.244.0.0/16'], false],
];
for (const [name, block, net, want] of CIDR_CASES) {
  test(`ipBlock and an IP-less endpoint: ${name} → ${String(want)}`, (t) => {
    t.is(cidrCase(block, net).cell, want);
  });
}

test('explain says why a verdict depends on the pod IP, and JSON carries null', (t) => {
  const { plan } = cidrCase({ cidr: '10.0.0.0/8' });
  const x = explain(plan, resolveEndpoint(plan, 'shop/web[Deployment]', 'from'), resolveEndpoint(plan, 'shop/db', 'to'), 'TCP', 8080);
  t.is(x.verdict.allowed, null);
  t.is(x.ingress.verdict.outcome, 'depends');
  const text = formatExplanation(x);
  t.regex(text, /^DEPENDS ON IP {2}shop\/web\[Deployment\] → shop\/db {2}8080\/TCP/);
  t.regex(text, /ipBlock 10\.0\.0\.0\/8 holds only part of the pod network \(0\.0\.0\.0\/0\): whether it holds shop\/web\[Deployment\] depends on the IP its pod gets/);
});

test('egress of a pod to an IP-less destination through an ipBlock is tri-state too; to a pod with an IP it is decided', (t) => {
  const { store } = load([
    workload('Deployment', 'web', { app: 'web' }),
    pod('db', { app: 'db' }, { ip: '10.244.1.5' }),
    pod('client', { app: 'client' }, { ip: '192.168.0.9' }),
    netpol('client', { podSelector: { matchLabels: { app: 'client' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.244.0.0/16' } }] }] }),
  ]);
  const a = computeMatrix(store, [{ port: 8080, protocol: 'TCP' }]).probes[0]!.allowed['shop/client']!;
  t.is(a['shop/db'], true);
  t.is(a['shop/web[Deployment]'], null);
  const b = computeMatrix(store, [{ port: 8080, protocol: 'TCP' }], { podNetwork: ['10.244.0.0/16'] }).probes[0]!.allowed['shop/client']!;
  t.is(b['shop/web[Deployment]'], true);
});

test('a denial on either side beats an open side: false, not null', (t) => {
  const { store } = load([
    workload('Deployment', 'web', { app: 'web' }),
    pod('db', { app: 'db' }, { ip: '10.244.1.5' }),
    netpol('db', { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }] }),
    netpol('web', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Egress'] }),
  ]);
  t.is(computeMatrix(store, [{ port: 8080, protocol: 'TCP' }]).probes[0]!.allowed['shop/web[Deployment]']!['shop/db'], false);
});

// ---------------------------------------------------------------- duplicate IPs

test('two pods with one IP: a lint error naming both, explain says so instead of "reaches itself", the matrix cell is open', (t) => {
  const { store } = load([
    pod('a', { app: 'a' }, { ip: '10.244.0.7' }),
    pod('b', { app: 'b' }, { ip: '10.244.0.7' }),
    pod('c', { app: 'c' }, { ip: '10.244.0.8' }),
    netpol('deny', { podSelector: {} }),
  ]);
  const dup = lint(store).filter((f) => f.code === 'duplicate-ip');
  t.deepEqual(dup.map(formatFinding), ['error: in.yaml: Pod shop/b: status.podIPs[0]: 10.244.0.7 is also the IP of pod shop/a: two pods cannot share an address (the network delivers to one, and policy cannot tell them apart) [duplicate-ip]']);
  const plan = compile(store, { ipless: true });
  const x = explain(plan, resolveEndpoint(plan, 'shop/a', 'from'), resolveEndpoint(plan, 'shop/b', 'to'), 'TCP', 8080);
  const text = formatExplanation(x);
  t.is(x.verdict.allowed, null);
  t.notRegex(text, /reaches itself/);
  t.regex(text, /shop\/a and shop\/b have the same IP 10\.244\.0\.7/);
  const m = matrixFromPlan(plan, [{ port: 8080, protocol: 'TCP' }]).json.probes[0]!.allowed;
  t.is(m['shop/a']!['shop/b'], null);
  t.is(m['shop/a']!['shop/a'], true);
  t.is(m['shop/c']!['shop/b'], false, 'c → b is judged on b, denied by the deny-all policy');
});

// ---------------------------------------------------------------- malformed workloads

const BAD: [string, Raw, string][] = [
  ['no template', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop' }, spec: { replicas: 1 } }, 'in.yaml: Deployment shop/web: spec.template: template is required'],
  ['template not a mapping', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop' }, spec: { template: 'web' } }, 'in.yaml: Deployment shop/web: spec.template: must be a mapping, not "web"'],
  ['no spec at all', { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'web', namespace: 'shop' } }, 'in.yaml: StatefulSet shop/web: spec: spec is required'],
  ['CronJob without jobTemplate', { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'web', namespace: 'shop' }, spec: { schedule: '@daily' } }, 'in.yaml: CronJob shop/web: spec.jobTemplate: jobTemplate is required'],
  ['template without spec', { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'web', namespace: 'shop' }, spec: { template: { metadata: { labels: { a: 'b' } } } } }, 'in.yaml: DaemonSet shop/web: spec.template.spec: the pod template needs a spec with containers'],
  ['containers missing', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop' }, spec: { template: { spec: {} } } }, 'in.yaml: Deployment shop/web: spec.template.spec.containers: containers is required'],
  ['containers not a list', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop' }, spec: { template: { spec: { containers: { name: 'main' } } } } }, 'in.yaml: Deployment shop/web: spec.template.spec.containers: must be a list of containers, not {"name":"main"}'],
  ['ports not a list', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop' }, spec: { template: { spec: { containers: [{ name: 'm', ports: '8080' }] } } } }, 'in.yaml: Deployment shop/web: spec.template.spec.containers[0].ports: must be a list of ports, not "8080"'],
  ['port as a string', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop' }, spec: { template: { spec: { containers: [{ name: 'm', ports: [{ containerPort: '8080' }] }] } } } }, 'in.yaml: Deployment shop/web: spec.template.spec.containers[0].ports[0].containerPort: "8080" is a string; write the number without quotes'],
  ['CronJob port out of range', { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'web', namespace: 'shop' }, spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'm', ports: [{ containerPort: 70000 }] }] } } } } } }, 'in.yaml: CronJob shop/web: spec.jobTemplate.spec.template.spec.containers[0].ports[0].containerPort: 70000 is not a port number (1-65535)'],
  ['bad template label', { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'web', namespace: 'shop' }, spec: { template: { metadata: { labels: { app: 'no spaces' } }, spec: { containers: [] } } } }, 'in.yaml: Job shop/web: spec.template.metadata.labels["app"]: label value "no spaces" is not valid'],
  ['a container that is not a mapping', { apiVersion: 'v1', kind: 'ReplicationController', metadata: { name: 'web', namespace: 'shop' }, spec: { template: { spec: { containers: ['main'] } } } }, 'in.yaml: ReplicationController shop/web: spec.template.spec.containers[0]: must be a container'],
  ['bad ownerReferences', { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'web', namespace: 'shop', ownerReferences: [{ kind: 'Deployment' }] }, spec: { template: { spec: { containers: [] } } } }, 'in.yaml: ReplicaSet shop/web: metadata.ownerReferences[0]: must name the owner with kind and name'],
];
for (const [name, raw, want] of BAD) {
  test(`malformed workload (${name}): one line naming file, object and YAML path; rejected whole, nothing wider`, (t) => {
    const { store, findings } = load([
      raw,
      workload('Deployment', 'ok', { app: 'ok' }),
      pod('db', { app: 'db' }, { ip: '10.244.1.5' }),
      netpol('db', { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'ok' } } }] }] }),
    ]);
    const errs = errors(findings);
    t.is(errs.length, 1, errs.join('\n'));
    t.true(errs[0]!.startsWith(`error: ${want}`), errs[0]);
    t.notRegex(errs[0]!, /undefined|null|NaN|\[object/);
    t.is(store.workloads.size, 1, 'only the valid workload is kept');
    const m = computeMatrix(store, [{ port: 8080, protocol: 'TCP' }]);
    t.deepEqual(m.pods, ['shop/db', 'shop/ok[Deployment]']);
    t.true(m.probes[0]!.allowed['shop/ok[Deployment]']!['shop/db']);
  });
}

// Through the whole loader (schema check included): each malformed workload is one line, no JS words.
test('malformed workloads through the loader: one line each naming file, object and YAML path; the rest still analysed', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'podwall-workloads-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  const f = join(d, 'chart.yaml');
  const sel = { matchLabels: { app: 'a' } };
  const tpl = (spec: Raw) => ({ metadata: { labels: { app: 'a' } }, spec });
  writeFileSync(
    f,
    [
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'no-template', namespace: 'shop' }, spec: { selector: sel } },
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'containers-map', namespace: 'shop' }, spec: { selector: sel, template: tpl({ containers: { name: 'm', image: 'x' } }) } },
      { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'port-string', namespace: 'shop' }, spec: { selector: sel, template: tpl({ containers: [{ name: 'm', image: 'x', ports: [{ containerPort: '8080' }] }] }) } },
      { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'ports-string', namespace: 'shop' }, spec: { selector: sel, serviceName: 's', template: tpl({ containers: [{ name: 'm', image: 'x', ports: '8080' }] }) } },
      { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'no-job', namespace: 'shop' }, spec: { schedule: '@daily' } },
      workload('Deployment', 'ok', { app: 'ok' }, { spec: { containers: [{ name: 'm', image: 'x', ports: [{ containerPort: 8080 }] }] } }),
      pod('db', { app: 'db' }, { ip: '10.244.1.5' }),
    ]
      .map((o) => stringify(o))
      .join('---\n'),
  );
  const r = await loadManifests([f]);
  const lines = r.findings.filter((x) => x.severity === 'error').map(formatFinding);
  t.deepEqual(lines, [
    `error: ${f}: Deployment shop/no-template: spec.template: required field missing [missing-field]`,
    `error: ${f}: Deployment shop/containers-map: spec.template.spec.containers: must be a list, not a mapping [invalid-type]`,
    `error: ${f}: DaemonSet shop/port-string: spec.template.spec.containers[0].ports[0].containerPort: must be an integer, not the string "8080" [invalid-type]`,
    `error: ${f}: StatefulSet shop/ports-string: spec.template.spec.containers[0].ports: must be a list, not the string "8080" [invalid-type]`,
    `error: ${f}: CronJob shop/no-job: spec.jobTemplate: required field missing [missing-field]`,
  ]);
  t.is(r.summary.rejected, 5, 'each rejected object is counted');
  t.deepEqual([...r.store.workloads.keys()], ['shop/ok[Deployment]']);
  t.deepEqual(computeMatrix(r.store, [{ port: 8080, protocol: 'TCP' }]).pods, ['shop/db', 'shop/ok[Deployment]']);
});
