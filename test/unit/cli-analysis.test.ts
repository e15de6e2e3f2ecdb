// matrix and explain on helm-style input (workloads, no namespaces, -n), the size bound with its
// suggestion, the filters and the by-namespace counts it suggests.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conformanceObjects, policy, writeManifests } from '../support/conformance.js';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'podwall-cli-analysis-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const cluster = writeManifests(join(dir, 'conf'), [...conformanceObjects(), policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'] })]);

// What `helm template` prints: workloads without namespaces, a Service, a policy.
const chart = join(dir, 'chart.yaml');
writeFileSync(
  chart,
  `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: pg, image: postgres, ports: [{name: pg, containerPort: 5432}]}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: backup}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: backup}}
        spec:
          containers: [{name: b, image: backup}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: http}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}, {ipBlock: {cidr: 10.0.0.0/8}}]
    ports: [{port: pg}]
`,
);

test('helm-style workloads: endpoints ns/name[Kind], -n places objects, notes on stderr, ? for IP-dependent cells', (t) => {
  const r = run('matrix', '-f', chart, '-n', 'shop');
  t.is(r.code, 0, r.err);
  t.regex(r.out, /shop\/db\[StatefulSet\]/);
  t.regex(r.out, /shop\/web\[Deployment\]/);
  t.regex(r.out, /shop\/backup\[CronJob\]/);
  t.regex(r.err, /note: namespace\(s\) shop not defined in the input/);
  const j = JSON.parse(run('matrix', '-f', chart, '-n', 'shop', '-o', 'json').out);
  const p = j.probes.find((x: { port: number }) => x.port === 5432).allowed;
  t.true(p['shop/web[Deployment]']['shop/db[StatefulSet]']);
  t.is(p['shop/backup[CronJob]']['shop/db[StatefulSet]'], null, 'the 10.0.0.0/8 ipBlock holds part of the pod network');
  const pinned = JSON.parse(run('matrix', '-f', chart, '-n', 'shop', '-o', 'json', '--pod-cidr', '10.244.0.0/16').out);
  t.true(pinned.probes.find((x: { port: number }) => x.port === 5432).allowed['shop/backup[CronJob]']['shop/db[StatefulSet]']);
  const x = run('explain', '-f', chart, '-n', 'shop', '--from', 'shop/backup[CronJob]', '--to', 'shop/db[StatefulSet]', '--port', '5432');
  t.is(x.code, 0, x.err);
  t.regex(x.out, /^DEPENDS ON IP/);
  t.regex(x.out, /ipBlock 10\.0\.0\.0\/8 holds only part of the pod network/);
  // Without -n the objects go to default.
  t.regex(run('matrix', '-f', chart, '--ports', '80').out, /default\/web\[Deployment\]/);
});

test('matrix estimates its size first and stops with one line suggesting filters or aggregation', (t) => {
  const r = run('matrix', '-f', cluster, '--max-cells', '50');
  t.is(r.code, 2);
  t.is(r.err.trim().split('\n').filter((l) => l.startsWith('podwall:')).length, 1);
  t.regex(r.err, /podwall: the matrix would have 486 cells \(9 × 9 endpoints × 6 ports\), over --max-cells 50: narrow it with --namespace NS, --from ns\/\* or --to ns\/\*, give fewer --ports, or count pairs by namespace with --aggregate namespace/);
  t.is(r.out, '');
  const agg = run('matrix', '-f', cluster, '--max-cells', '60', '--aggregate', 'namespace', '-o', 'json');
  t.is(agg.code, 0, agg.err);
  const a = JSON.parse(agg.out);
  t.deepEqual(a.namespaces, ['x', 'y', 'z']);
  const tcp80 = a.probes.find((p: { port: number; protocol: string }) => p.port === 80 && p.protocol === 'TCP');
  t.deepEqual(tcp80.pairs.y.x, { allowed: 0, denied: 9, unknown: 0 });
  t.deepEqual(tcp80.pairs.x.x, { allowed: 3, denied: 6, unknown: 0 }, 'each pod reaches itself');
  t.deepEqual(tcp80.pairs.x.y, { allowed: 9, denied: 0, unknown: 0 });
  t.regex(run('matrix', '-f', cluster, '--aggregate', 'namespace', '--ports', '80').out, /by namespace/);
});

test('--namespace, --from and --to narrow rows and columns', (t) => {
  const n = JSON.parse(run('matrix', '-f', cluster, '-n', 'y', '--ports', '80', '-o', 'json').out);
  t.deepEqual(n.pods, ['y/a', 'y/b', 'y/c']);
  const f = JSON.parse(run('matrix', '-f', cluster, '--from', 'y/*', '--to', 'x/a', '--to', 'z/c', '--ports', '80', '-o', 'json').out);
  t.deepEqual(Object.keys(f.probes[0].allowed), ['y/a', 'y/b', 'y/c']);
  t.deepEqual(Object.keys(f.probes[0].allowed['y/a']), ['x/a', 'z/c']);
  t.deepEqual(f.pods, ['x/a', 'y/a', 'y/b', 'y/c', 'z/c']);
  const none = run('matrix', '-f', cluster, '--from', 'q/*');
  t.is(none.code, 2);
  t.regex(none.err, /no endpoint matches the filters \(9 endpoints in the input\)/);
  const bad = run('matrix', '-f', cluster, '--from', 'x/a/b');
  t.is(bad.code, 2);
  t.regex(bad.err, /--from "x\/a\/b": expected namespace\/name/);
  t.regex(run('matrix', '-f', cluster, '-n', 'Bad_NS').err, /--namespace "Bad_NS": not a namespace name/);
  t.regex(run('matrix', '-f', cluster, '--aggregate', 'node').err, /--aggregate "node": expected namespace/);
  t.regex(run('matrix', '-f', cluster, '--max-cells', 'lots').err, /--max-cells "lots": expected a positive whole number/);
});

test('an input with nothing to analyse says so in one line', (t) => {
  const f = join(dir, 'nothing.yaml');
  writeFileSync(f, 'apiVersion: v1\nkind: Pod\nmetadata: {name: waiting, namespace: a}\nspec: {containers: [{name: c, image: app}]}\nstatus: {phase: Pending}\n');
  const r = run('matrix', '-f', f, '--ports', '80');
  t.is(r.code, 2);
  t.regex(r.err, /note: left out 1 object, Pending without an IP: a\/waiting/);
  t.regex(r.err, /podwall: nothing to analyse: the input has no pod with an IP and no workload or planned pod/);
});
