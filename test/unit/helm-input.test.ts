// What a security team feeds podwall: `helm template` output on standard input — several workload
// kinds, no namespaces (they go to `default`), `# Source:` comments, a `List` and a typed list, a stray ConfigMap,
// tabs in flow sequences — and the whole matrix it prints, cell by cell, against the verdicts the
// Kubernetes NetworkPolicy spec gives (worked out by hand below). Then every typed list kind.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { loadManifests } from '../../src/cluster/manifests.js';
import { formatFinding } from '../../src/cluster/findings.js';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));

function run(args: string[], input: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', input });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// `helm template shop ./chart` for a shop: a frontend, an API, a database, a node agent, a nightly
// backup, a migration job; monitoring's Prometheus comes from another chart in the same stream.
const CHART = `---
# Source: shop/templates/frontend.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: frontend
  labels: {app.kubernetes.io/managed-by: Helm}
spec:
  replicas: 3
  selector: {matchLabels: {app: frontend}}
  template:
    metadata: {labels: {app: frontend, tier: web}}
    spec:
      containers:
      - name: web
        image: shop/frontend:1.2
        ports: [{name: http,\tcontainerPort: 8080}]
---
# Source: shop/templates/api.yaml
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: api}
spec:
  serviceName: api
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: api
        image: shop/api:3
        ports:
        - {name: http, containerPort: 8080}
        - {name: metrics, containerPort: 9090}
---
# Source: shop/templates/db.yaml
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      initContainers: [{name: init, image: busybox}]
      containers: [{name: pg, image: postgres:16, ports: [{name: pg, containerPort: 5432}]}]
---
# Source: shop/templates/agent.yaml
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: worker}
spec:
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec: {containers: [{name: w, image: shop/worker}]}
---
# Source: shop/templates/backup.yaml
apiVersion: batch/v1
kind: CronJob
metadata: {name: backup}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: backup}}
        spec: {restartPolicy: OnFailure, containers: [{name: b, image: shop/backup}]}
---
# Source: shop/templates/migrate.yaml
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, annotations: {helm.sh/hook: pre-upgrade}}
spec:
  template:
    metadata: {labels: {app: migrate}}
    spec: {restartPolicy: Never, containers: [{name: m, image: shop/migrate}]}
---
# Source: shop/templates/service.yaml
apiVersion: v1
kind: Service
metadata: {name: api}
spec: {selector: {app: api}, ports: [{port: 80, targetPort: http}]}
---
# Source: shop/templates/config.yaml
apiVersion: v1
kind: ConfigMap
metadata: {name: shop-config}
data: {LOG_LEVEL: info}
---
# Source: shop/templates/policies.yaml
apiVersion: v1
kind: List
items:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: default-deny}
  spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: egress-in-namespace}
  spec:
    podSelector: {}
    policyTypes: [Egress]
    egress: [{to: [{podSelector: {}}]}]
---
# Source: shop/templates/ingress-policies.yaml
apiVersion: networking.k8s.io/v1
kind: NetworkPolicyList
items:
- metadata: {name: api}
  spec:
    podSelector: {matchLabels: {app: api}}
    ingress:
    - from: [{podSelector: {matchLabels: {app: frontend}}}]
      ports: [{port: http}]
    - from: [{namespaceSelector: {matchLabels: {purpose: monitoring}}}]
      ports: [{port: 9090,\tprotocol: TCP}]
- metadata: {name: db}
  spec:
    podSelector: {matchLabels: {app: db}}
    ingress:
    - from: [{podSelector: {matchExpressions: [{key: app, operator: In, values: [api, migrate, backup]}]}}]
      ports: [{port: 5432}]
    - from: [{ipBlock: {cidr: 10.0.0.0/8}}]
      ports: [{port: 5432}]
---
# Source: monitoring/templates/namespace.yaml
apiVersion: v1
kind: Namespace
metadata: {name: monitoring, labels: {purpose: monitoring}}
---
# Source: monitoring/templates/prometheus.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: prometheus, namespace: monitoring}
spec:
  selector: {matchLabels: {app: prometheus}}
  template:
    metadata: {labels: {app: prometheus}}
    spec: {containers: [{name: p, image: prom/prometheus, ports: [{containerPort: 9090}]}]}
`;

const FRONTEND = 'default/frontend[Deployment]';
const API = 'default/api[StatefulSet]';
const DB = 'default/db[StatefulSet]';
const WORKER = 'default/worker[DaemonSet]';
const BACKUP = 'default/backup[CronJob]';
const MIGRATE = 'default/migrate[Job]';
const PROM = 'monitoring/prometheus[Deployment]';
const ALL = [API, BACKUP, DB, FRONTEND, MIGRATE, WORKER, PROM];
const SHOP = new Set([API, BACKUP, DB, FRONTEND, MIGRATE, WORKER]);

/**
 * The spec's verdict, worked out by hand. A connection needs its source's egress and its
 * destination's ingress. The shop chart writes no namespace: its objects are in default. Every shop endpoint is isolated both ways by default-deny; its egress is
 * allowed to pods of its own namespace only (a peer podSelector without namespaceSelector), so
 * nothing in shop reaches monitoring. Prometheus is isolated by nothing. Ingress: api admits the
 * frontend on its named port http (8080) and namespaces labelled purpose=monitoring on 9090; db
 * admits api, migrate and backup on 5432, and 10.0.0.0/8 on 5432 — which holds part of the pod
 * network (all addresses by default), so for an endpoint with no IP yet it depends on its pod's IP.
 */
function spec(from: string, to: string, port: number, podCidr: 'all' | 'inside' | 'outside' = 'all'): boolean | null {
  if (from === to) return true;
  const egress = !SHOP.has(from) || SHOP.has(to);
  if (!egress) return false;
  if (to === PROM) return true;
  if (to === API) return (port === 8080 && from === FRONTEND) || (port === 9090 && from === PROM);
  if (to === DB && port === 5432) {
    if ([API, MIGRATE, BACKUP].includes(from)) return true;
    return podCidr === 'all' ? null : podCidr === 'inside';
  }
  return false;
}

type Matrix = { pods: string[]; probes: { port: number; protocol: string; allowed: Record<string, Record<string, boolean | null>> }[] };

function expectSpec(t: import('ava').ExecutionContext, m: Matrix, podCidr: 'all' | 'inside' | 'outside') {
  t.deepEqual([...m.pods].sort(), [...ALL].sort());
  t.deepEqual(m.probes.map((p) => `${p.port}/${p.protocol}`), ['5432/TCP', '8080/TCP', '9090/TCP']);
  const wrong: string[] = [];
  for (const p of m.probes) {
    for (const from of ALL) {
      for (const to of ALL) {
        const want = spec(from, to, p.port, podCidr);
        const got = p.allowed[from]?.[to];
        if (got !== want) wrong.push(`${from} → ${to} ${p.port}: ${String(got)}, the spec says ${String(want)}`);
      }
    }
  }
  t.deepEqual(wrong, []);
}

test('helm template output on stdin (-f -): the whole matrix is what the Kubernetes spec says, cell by cell', (t) => {
  // Ports: every declared container port (5432, 8080, 9090).
  const r = run(['matrix', '-f', '-', '-o', 'json'], CHART);
  t.is(r.code, 0, r.err);
  expectSpec(t, JSON.parse(r.out) as Matrix, 'all');
  // The implicit namespace is a note, not an error; the ConfigMap is not an endpoint.
  t.regex(r.err, /note: namespace\(s\) default not defined in the input/);
  t.notRegex(r.out, /shop-config/);
  // Where the pods' IPs come from decides the ipBlock: inside 10.0.0.0/8 it admits, outside it does not.
  expectSpec(t, JSON.parse(run(['matrix', '-f', '-', '-o', 'json', '--pod-cidr', '10.244.0.0/16'], CHART).out) as Matrix, 'inside');
  expectSpec(t, JSON.parse(run(['matrix', '-f', '-', '-o', 'json', '--pod-cidr', '192.168.0.0/16'], CHART).out) as Matrix, 'outside');
  // The table shows the open cells as `?`, and lint finds nothing wrong with the chart.
  const table = run(['matrix', '-f', '-', '--ports', '5432'], CHART);
  t.is(table.code, 0, table.err);
  t.regex(table.out, /\?/);
  const lint = run(['lint', '-f', '-'], CHART);
  t.is(lint.code, 0, lint.out + lint.err);
  t.regex(lint.out, /^0 error\(s\), 0 warning\(s\)\n$/);
  // As with kubectl, -n places the objects that name no namespace (and matrix shows that namespace).
  const shop = run(['matrix', '-f', '-', '-n', 'shop', '-o', 'json', '--ports', '5432'], CHART);
  t.is(shop.code, 0, shop.err);
  t.deepEqual((JSON.parse(shop.out) as Matrix).pods, [...ALL].filter((e) => SHOP.has(e)).map((e) => e.replace('default/', 'shop/')).sort());
  t.is(run(['lint', '-f', '-', '-n', 'shop'], CHART).code, 0);
  // explain says why an open cell is open.
  const x = run(['explain', '-f', '-', '--from', FRONTEND, '--to', DB, '--port', '5432'], CHART);
  t.is(x.code, 0, x.err);
  t.regex(x.out, /^DEPENDS ON IP/);
  t.regex(x.out, /10\.0\.0\.0\/8 holds only part of the pod network/);
});

// Every typed list kind, as `kubectl get KIND -o yaml` prints it: items without kind/apiVersion.
const item = (kind: string): Record<string, unknown> => {
  const tpl = { metadata: { labels: { app: 'a' } }, spec: { containers: [{ name: 'c', image: 'i', ports: [{ containerPort: 80 }] }] } };
  const sel = { matchLabels: { app: 'a' } };
  switch (kind) {
    case 'Pod':
      return { metadata: { name: 'p', namespace: 'shop', labels: { app: 'a' } }, spec: tpl.spec, status: { phase: 'Running', podIP: '10.244.0.5', podIPs: [{ ip: '10.244.0.5' }] } };
    case 'Namespace':
      return { metadata: { name: 'shop', labels: { team: 't' } } };
    case 'Node':
      return { metadata: { name: 'n1' }, spec: { podCIDR: '10.244.0.0/24' }, status: { addresses: [{ type: 'InternalIP', address: '172.18.0.2' }] } };
    case 'Service':
      return { metadata: { name: 's', namespace: 'shop' }, spec: { clusterIP: '10.96.0.20', ports: [{ port: 80 }] } };
    case 'NetworkPolicy':
      return { metadata: { name: 'np', namespace: 'shop' }, spec: { podSelector: {} } };
    case 'CronJob':
      return { metadata: { name: 'w', namespace: 'shop' }, spec: { schedule: '@daily', jobTemplate: { spec: { template: tpl } } } };
    case 'Job':
      return { metadata: { name: 'w', namespace: 'shop' }, spec: { template: tpl } };
    case 'ReplicationController':
      return { metadata: { name: 'w', namespace: 'shop' }, spec: { selector: { app: 'a' }, template: tpl } };
    case 'StatefulSet':
      return { metadata: { name: 'w', namespace: 'shop' }, spec: { serviceName: 'w', selector: sel, template: tpl } };
    default:
      return { metadata: { name: 'w', namespace: 'shop' }, spec: { selector: sel, template: tpl } };
  }
};
const LISTS: [string, string, (s: Awaited<ReturnType<typeof loadManifests>>['store']) => boolean][] = [
  ['PodList', 'v1', (s) => s.pods.has('shop/p')],
  ['NamespaceList', 'v1', (s) => s.namespaces.get('shop')?.labels.team === 't'],
  ['NodeList', 'v1', (s) => s.nodes.has('n1')],
  ['ServiceList', 'v1', (s) => s.services.has('shop/s')],
  ['NetworkPolicyList', 'networking.k8s.io/v1', (s) => s.policies.has('shop/np')],
  ['DeploymentList', 'apps/v1', (s) => s.workloads.has('shop/w[Deployment]')],
  ['ReplicaSetList', 'apps/v1', (s) => s.workloads.has('shop/w[ReplicaSet]')],
  ['StatefulSetList', 'apps/v1', (s) => s.workloads.has('shop/w[StatefulSet]')],
  ['DaemonSetList', 'apps/v1', (s) => s.workloads.has('shop/w[DaemonSet]')],
  ['JobList', 'batch/v1', (s) => s.workloads.has('shop/w[Job]')],
  ['CronJobList', 'batch/v1', (s) => s.workloads.has('shop/w[CronJob]')],
  ['ReplicationControllerList', 'v1', (s) => s.workloads.has('shop/w[ReplicationController]')],
];
const dir = mkdtempSync(join(tmpdir(), 'podwall-helm-input-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

for (const [list, apiVersion, has] of LISTS) {
  for (const format of ['yaml', 'json'] as const) {
    test(`${list} (${format}, items without kind) is read: its items are objects`, async (t) => {
      const kind = list.slice(0, -4);
      const body = { apiVersion, kind: list, metadata: { resourceVersion: '1' }, items: [item(kind)] };
      const f = join(dir, `${list}.${format}`);
      writeFileSync(f, format === 'json' ? JSON.stringify(body) : stringify(body));
      const r = await loadManifests([f]);
      t.deepEqual(r.findings.filter((x) => x.severity === 'error').map(formatFinding), []);
      t.true(has(r.store), `${kind} not in the store`);
      t.is(r.summary.objects[kind], 1, JSON.stringify(r.summary.objects));
    });
  }
}

test('a List of mixed kinds, and a typed list whose item names another kind, are read as written', async (t) => {
  const f = join(dir, 'mixed.yaml');
  writeFileSync(
    f,
    stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'apps/v1', kind: 'Deployment', ...item('Deployment') },
        { apiVersion: 'batch/v1', kind: 'Job', ...item('Job') },
        { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', ...item('NetworkPolicy') },
      ],
    }),
  );
  const r = await loadManifests([f]);
  t.deepEqual(r.findings.filter((x) => x.severity === 'error').map(formatFinding), []);
  t.deepEqual([...r.store.workloads.keys()].sort(), ['shop/w[Deployment]', 'shop/w[Job]']);
  t.true(r.store.policies.has('shop/np'));
  // A typed list whose items lack `items`: one line naming file and field.
  const bad = join(dir, 'bad-list.yaml');
  writeFileSync(bad, stringify({ apiVersion: 'v1', kind: 'PodList', items: 'none' }));
  const e = await loadManifests([bad]);
  t.deepEqual(e.findings.filter((x) => x.severity === 'error').map(formatFinding), [`error: ${bad}: document 0: items: a PodList needs an items list [invalid-list]`]);
});
