// deploy/ is what operators apply: every manifest must be a valid Kubernetes object, the RBAC must be
// read-only, the DaemonSet must keep its security posture, and the Dockerfile must start the CLI the
// manifest configures.
//
// Validation is two checks, both generated from the Kubernetes OpenAPI spec:
// - kubernetes-models: the schema validators (types, required fields, enums, formats), `new X(obj).validate()`;
// - @kubernetes/client-node's model attribute maps: unknown fields. The OpenAPI schemas do not forbid
//   extra properties (the API server's strict field validation does that), so a typo such as
//   `privilegd: true` would pass the schema check alone and be silently dropped by the API server.
import { RESOURCES } from '../../src/cluster/informers.js';
import test from 'ava';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import * as k8s from '@kubernetes/client-node';
import { buildConfig } from '../../src/controller/flags.js';

const deployDir = new URL('../../../deploy/', import.meta.url);
const repoRoot = new URL('../../../', import.meta.url);

type Obj = Record<string, unknown>;
interface Doc {
  file: string;
  index: number;
  obj: Obj;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

function manifestFiles(): string[] {
  return readdirSync(deployDir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
}

/** Every YAML document of one file in deploy/; a YAML error fails with the file and line. */
function readDocs(file: string): Doc[] {
  const text = readFileSync(new URL(file, deployDir), 'utf8');
  const out: Doc[] = [];
  parseAllDocuments(text).forEach((doc, index) => {
    if (doc.errors.length > 0) throw new Error(`deploy/${file} document ${index}: ${doc.errors[0]!.message}`);
    const obj: unknown = doc.toJS();
    if (obj === null || obj === undefined) return; // an empty document (e.g. a trailing ---)
    if (!isObj(obj)) throw new Error(`deploy/${file} document ${index}: not a mapping`);
    out.push({ file, index, obj });
  });
  return out;
}

const KUSTOMIZATION = 'kustomization.yaml';
const kubeDocs = (): Doc[] => manifestFiles().filter((f) => f !== KUSTOMIZATION).flatMap(readDocs);
const label = (d: Doc) => `deploy/${d.file} #${d.index} ${String(d.obj.kind)}/${String((d.obj.metadata as Obj | undefined)?.name)}`;

function only(kind: string): Obj {
  const docs = kubeDocs().filter((d) => d.obj.kind === kind);
  if (docs.length !== 1) throw new Error(`expected exactly one ${kind} in deploy/, found ${docs.length}`);
  return docs[0]!.obj;
}

// ---- the validators -------------------------------------------------------------------------------

/** kubernetes-models' generated schema validator for apiVersion/kind, e.g. apps/v1 DaemonSet. */
async function schemaErrors(obj: Obj): Promise<string[]> {
  const apiVersion = obj.apiVersion;
  const kind = obj.kind;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || !/^[A-Za-z0-9.\/-]+$/.test(apiVersion) || !/^[A-Za-z0-9]+$/.test(kind)) {
    return [`apiVersion/kind missing or malformed: ${JSON.stringify(apiVersion)} ${JSON.stringify(kind)}`];
  }
  const specifier = `kubernetes-models/${apiVersion}/${kind}`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(specifier)) as Record<string, unknown>;
  } catch (e) {
    return [`no Kubernetes schema for ${apiVersion} ${kind} (${specifier}): ${(e as Error).message}`];
  }
  const Model = mod[kind] as (new (data: Obj) => { validate(): void }) | undefined;
  if (typeof Model !== 'function') return [`${specifier} exports no ${kind}`];
  try {
    new Model(clone(obj)).validate();
    return [];
  } catch (e) {
    return [(e as Error).message];
  }
}

type Attr = { baseName: string; type: string };
const models = k8s as unknown as Record<string, { getAttributeTypeMap?: () => Attr[] } | undefined>;

/** client-node's generated model class for apiVersion/kind: core v1 Pod → V1Pod, apps/v1 DaemonSet → V1DaemonSet. */
function modelTypeName(apiVersion: string, kind: string): string {
  const version = apiVersion.split('/').pop()!;
  return version.charAt(0).toUpperCase() + version.slice(1) + kind;
}

/** Paths of fields that the Kubernetes type of that position does not define. */
function unknownFields(value: unknown, type: string, path: string, out: string[]): string[] {
  if (value === null || value === undefined) return out;
  let m: RegExpExecArray | null;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, m![1]!, `${path}[${i}]`, out));
    return out;
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (isObj(value)) for (const [k, v] of Object.entries(value)) unknownFields(v, m[1]!, `${path}.${k}`, out);
    return out;
  }
  const attrs = models[type]?.getAttributeTypeMap?.();
  if (!attrs || !isObj(value)) return out; // a scalar type, or a type error the schema check reports
  const known = new Map(attrs.map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    const t = known.get(k);
    if (t === undefined) out.push(`${path}.${k}`);
    else unknownFields(v, t, `${path}.${k}`, out);
  }
  return out;
}

function strictErrors(obj: Obj): string[] {
  const typeName = modelTypeName(String(obj.apiVersion), String(obj.kind));
  if (!models[typeName]?.getAttributeTypeMap) return [`no Kubernetes model ${typeName} for ${String(obj.apiVersion)} ${String(obj.kind)}`];
  return unknownFields(obj, typeName, '', []).map((p) => `unknown field ${p.slice(1)}`);
}

async function validate(obj: Obj): Promise<string[]> {
  const errors = await schemaErrors(obj);
  errors.push(...strictErrors(obj));
  const name = (obj.metadata as Obj | undefined)?.name;
  if (typeof name !== 'string' || name === '') errors.push('metadata.name missing');
  return errors;
}

// ---- every manifest is a valid Kubernetes object -------------------------------------------------

test('deploy/ holds the DaemonSet, its RBAC and a kustomization', (t) => {
  const kinds = kubeDocs().map((d) => d.obj.kind).sort();
  t.deepEqual(kinds, ['ClusterRole', 'ClusterRoleBinding', 'DaemonSet', 'ServiceAccount']);
  t.true(manifestFiles().includes(KUSTOMIZATION));
});

test('every manifest in deploy/ validates against the Kubernetes schemas, with no unknown field', async (t) => {
  const docs = kubeDocs();
  t.true(docs.length >= 4);
  for (const d of docs) t.deepEqual(await validate(d.obj), [], label(d));
});

test('namespaced objects live in kube-system', (t) => {
  for (const d of kubeDocs()) {
    const ns = (d.obj.metadata as Obj).namespace;
    if (d.obj.kind === 'ClusterRole' || d.obj.kind === 'ClusterRoleBinding') t.is(ns, undefined, label(d));
    else t.is(ns, 'kube-system', label(d));
  }
});

// Each broken copy must be refused, naming the broken field: proves both validators bite.
const broken: Array<{ name: string; kind: string; expect: RegExp; edit: (o: Obj) => void }> = [
  {
    name: 'wrong type: hostNetwork as a string',
    kind: 'DaemonSet',
    expect: /hostNetwork must be boolean/,
    edit: (o) => {
      podSpec(o).hostNetwork = 'yes';
    },
  },
  {
    name: 'wrong type: memory limit as a nested object',
    kind: 'DaemonSet',
    expect: /limits\/memory/,
    edit: (o) => {
      ((container(o).resources as Obj).limits as Obj).memory = { value: 512 };
    },
  },
  {
    name: 'unknown field: a misspelt privileged',
    kind: 'DaemonSet',
    expect: /unknown field spec\.template\.spec\.containers\[0\]\.securityContext\.privilegd/,
    edit: (o) => {
      (container(o).securityContext as Obj).privilegd = true;
    },
  },
  {
    name: 'unknown field at the top level',
    kind: 'DaemonSet',
    expect: /unknown field specs/,
    edit: (o) => {
      o.specs = o.spec;
    },
  },
  {
    name: 'missing required field: container name',
    kind: 'DaemonSet',
    expect: /containers\/0 must have required property '?name'?/,
    edit: (o) => {
      delete container(o).name;
    },
  },
  {
    name: 'wrong type: verbs as a string',
    kind: 'ClusterRole',
    expect: /rules\/0\/verbs must be array/,
    edit: (o) => {
      (o.rules as Obj[])[0]!.verbs = 'get';
    },
  },
  {
    name: 'unknown field in a subject',
    kind: 'ClusterRoleBinding',
    expect: /unknown field subjects\[0\]\.namspace/,
    edit: (o) => {
      (o.subjects as Obj[])[0]!.namspace = 'default';
    },
  },
  {
    name: 'wrong type: automountServiceAccountToken as a string',
    kind: 'ServiceAccount',
    expect: /automountServiceAccountToken must be boolean/,
    edit: (o) => {
      o.automountServiceAccountToken = 'no';
    },
  },
  {
    name: 'a kind Kubernetes does not have (case typo)',
    kind: 'ServiceAccount',
    expect: /no Kubernetes schema for v1 Serviceaccount/,
    edit: (o) => {
      o.kind = 'Serviceaccount';
    },
  },
];

for (const b of broken) {
  test(`a broken ${b.kind} fails validation: ${b.name}`, async (t) => {
    const good = only(b.kind);
    t.deepEqual(await validate(good), [], 'the original must be valid for this test to mean anything');
    const bad = clone(good);
    b.edit(bad);
    const errors = await validate(bad);
    t.true(errors.some((e) => b.expect.test(e)), `expected an error matching ${b.expect}, got ${JSON.stringify(errors)}`);
  });
}

// ---- RBAC: read-only, exactly the resources the informers watch --------------------------------------------------

const READ_VERBS = new Set(['get', 'list', 'watch']);
const WRITE_VERBS = ['create', 'update', 'patch', 'delete', 'deletecollection', 'escalate', 'bind', 'impersonate', 'approve', 'sign', 'use', '*'];
/** `apiGroup/resource` of every kind the informers watch (`/pods` for the core group), from their list paths. */
const NEEDED = RESOURCES.map((r) => {
  const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)\/([^/]+)$/.exec(r.path);
  if (!m) throw new Error(`unexpected informer path ${r.path}`);
  return `${m[1] ?? ''}/${m[2]}`;
});

/** Every (apiGroup/resource, verb) a role grants, and anything that is not a plain resource rule. */
function grants(role: Obj): { pairs: Array<{ resource: string; verb: string }>; other: string[] } {
  const pairs: Array<{ resource: string; verb: string }> = [];
  const other: string[] = [];
  if (role.aggregationRule !== undefined) other.push('aggregationRule (grants whatever the aggregated roles grant)');
  for (const [i, rule] of ((role.rules as Obj[] | undefined) ?? []).entries()) {
    if (rule.nonResourceURLs !== undefined) other.push(`rules[${i}].nonResourceURLs`);
    for (const group of (rule.apiGroups as string[] | undefined) ?? []) {
      for (const resource of (rule.resources as string[] | undefined) ?? []) {
        for (const verb of (rule.verbs as string[] | undefined) ?? []) pairs.push({ resource: `${group}/${resource}`, verb });
      }
    }
  }
  return { pairs, other };
}

test('the ClusterRole grants no write verb and nothing outside the resources the informers watch', (t) => {
  t.true(NEEDED.includes('policy.networking.k8s.io/clusternetworkpolicies'), NEEDED.join(', '));
  const roles = kubeDocs().filter((d) => d.obj.kind === 'ClusterRole' || d.obj.kind === 'Role');
  t.is(roles.length, 1);
  const { pairs, other } = grants(roles[0]!.obj);
  t.deepEqual(other, []);
  for (const { resource, verb } of pairs) {
    t.false(WRITE_VERBS.includes(verb), `write verb ${verb} on ${resource}`);
    t.true(READ_VERBS.has(verb), `verb ${verb} on ${resource} is not get/list/watch`);
    t.true(NEEDED.includes(resource), `resource ${resource} is outside what podwall reads`);
  }
  // and every resource the informers watch is granted get, list and watch
  for (const resource of NEEDED) {
    for (const verb of READ_VERBS) t.true(pairs.some((p) => p.resource === resource && p.verb === verb), `${verb} ${resource} not granted`);
  }
});

test('the read-only check bites: a role with a write verb, a wildcard or an extra resource fails it', (t) => {
  const role = only('ClusterRole');
  const withVerb = (verb: string) => {
    const r = clone(role);
    ((r.rules as Obj[])[0]!.verbs as string[]).push(verb);
    return r;
  };
  for (const verb of WRITE_VERBS) t.true(grants(withVerb(verb)).pairs.some((p) => WRITE_VERBS.includes(p.verb)), verb);
  const secrets = clone(role);
  ((secrets.rules as Obj[])[0]!.resources as string[]).push('secrets');
  t.true(grants(secrets).pairs.some((p) => !NEEDED.includes(p.resource)));
  const wildcard = clone(role);
  (wildcard.rules as Obj[])[1]!.apiGroups = ['*'];
  t.true(grants(wildcard).pairs.some((p) => !NEEDED.includes(p.resource)));
});

test('the ClusterRoleBinding binds the ClusterRole to the DaemonSet\'s service account', (t) => {
  const binding = only('ClusterRoleBinding');
  const sa = only('ServiceAccount');
  const ds = only('DaemonSet');
  t.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: (only('ClusterRole').metadata as Obj).name });
  t.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: (sa.metadata as Obj).name, namespace: (sa.metadata as Obj).namespace }]);
  t.is(podSpec(ds).serviceAccountName, (sa.metadata as Obj).name);
  t.is((ds.metadata as Obj).namespace, (sa.metadata as Obj).namespace);
});

// ---- the DaemonSet -------------------------------------------------------------------------------

function podSpec(ds: Obj): Obj {
  return ((ds.spec as Obj).template as Obj).spec as Obj;
}
function container(ds: Obj): Obj {
  return (podSpec(ds).containers as Obj[])[0]!;
}

test('the DaemonSet is not privileged and holds exactly NET_ADMIN and NET_RAW', (t) => {
  const spec = podSpec(only('DaemonSet'));
  const containers = [...((spec.containers as Obj[]) ?? []), ...((spec.initContainers as Obj[] | undefined) ?? [])];
  t.is(containers.length, 1);
  for (const c of containers) {
    const sc = (c.securityContext ?? {}) as Obj;
    t.not(sc.privileged, true, `${String(c.name)} is privileged`);
    t.is(sc.allowPrivilegeEscalation, false);
    const caps = (sc.capabilities ?? {}) as Obj;
    t.deepEqual([...((caps.add as string[]) ?? [])].sort(), ['NET_ADMIN', 'NET_RAW']);
    t.deepEqual(caps.drop, ['ALL']);
  }
  t.not(spec.hostPID, true);
  t.not(spec.hostIPC, true);
});

test('the DaemonSet runs on every node in the host network', (t) => {
  const ds = only('DaemonSet');
  const spec = podSpec(ds);
  t.is(spec.hostNetwork, true);
  t.is(spec.dnsPolicy, 'ClusterFirstWithHostNet');
  t.is(spec.priorityClassName, 'system-node-critical');
  t.deepEqual(spec.tolerations, [{ operator: 'Exists' }]); // no key, no effect: every taint
  t.deepEqual((ds.spec as Obj).updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
  t.is(spec.terminationGracePeriodSeconds, 30);
  const selector = ((ds.spec as Obj).selector as Obj).matchLabels as Obj;
  const podLabels = (((ds.spec as Obj).template as Obj).metadata as Obj).labels as Obj;
  for (const [k, v] of Object.entries(selector)) t.is(podLabels[k], v, `selector ${k} does not match the pod template`);
});

test('the DaemonSet mounts the host xtables lock and /lib/modules read-only', (t) => {
  const ds = only('DaemonSet');
  const volumes = new Map(((podSpec(ds).volumes as Obj[]) ?? []).map((v) => [v.name as string, v]));
  const mounts = new Map(((container(ds).volumeMounts as Obj[]) ?? []).map((m) => [m.mountPath as string, m]));
  const lock = mounts.get('/run/xtables.lock');
  t.truthy(lock, 'no mount at /run/xtables.lock');
  t.deepEqual(volumes.get(lock!.name as string)?.hostPath, { path: '/run/xtables.lock', type: 'FileOrCreate' });
  t.not(lock!.readOnly, true, 'iptables must be able to take the lock');
  const modules = mounts.get('/lib/modules');
  t.truthy(modules, 'no mount at /lib/modules');
  t.is(modules!.readOnly, true);
  t.is((volumes.get(modules!.name as string)?.hostPath as Obj | undefined)?.path, '/lib/modules');
  // every other hostPath is a hole in the posture: only these two are allowed
  const hostPaths = [...volumes.values()].filter((v) => v.hostPath !== undefined).map((v) => (v.hostPath as Obj).path).sort();
  t.deepEqual(hostPaths, ['/lib/modules', '/run/xtables.lock']);
});

test('the DaemonSet probes /healthz and /readyz on 20244 and requests resources', (t) => {
  const c = container(only('DaemonSet'));
  t.deepEqual((c.livenessProbe as Obj).httpGet, { path: '/healthz', port: 20244 });
  t.deepEqual((c.readinessProbe as Obj).httpGet, { path: '/readyz', port: 20244 });
  t.deepEqual(c.resources, { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '512Mi' } });
  t.deepEqual(c.env, [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }]);
});

test('the DaemonSet\'s args are accepted by podwall run and agree with its probes, ports and scrape annotations', (t) => {
  const ds = only('DaemonSet');
  const c = container(ds);
  const args = c.args as string[];
  t.is(args[0], 'run');
  t.is(c.command, undefined, 'command would replace the image ENTRYPOINT');
  const cfg = buildConfig(args.slice(1), { NODE_NAME: 'node-a' });
  t.is(cfg.nodeName, 'node-a', 'the node name must come from $NODE_NAME');
  t.is<unknown, unknown>(((c.livenessProbe as Obj).httpGet as Obj).port, cfg.healthPort);
  t.is<unknown, unknown>(((c.readinessProbe as Obj).httpGet as Obj).port, cfg.healthPort);
  t.is(cfg.metricsPort, 8080);
  const annotations = (((ds.spec as Obj).template as Obj).metadata as Obj).annotations as Obj;
  t.is(annotations['prometheus.io/scrape'], 'true');
  t.is(annotations['prometheus.io/port'], String(cfg.metricsPort));
  t.is(annotations['prometheus.io/path'], cfg.metricsPath);
  const ports = new Map(((c.ports as Obj[]) ?? []).map((p) => [p.name as string, p.containerPort as number]));
  t.is(ports.get('metrics'), cfg.metricsPort);
  t.is(ports.get('health'), cfg.healthPort);
});

test('the image tag is the package version', (t) => {
  const pkg = JSON.parse(readFileSync(new URL('package.json', repoRoot), 'utf8')) as { version: string };
  t.is(container(only('DaemonSet')).image, `ghcr.io/podwall/podwall:${pkg.version}`);
});

// ---- kustomization -------------------------------------------------------------------------------

// Top-level fields of kustomize's Kustomization (kustomize.config.k8s.io/v1beta1) this folder may use.
const KUSTOMIZATION_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'namespace', 'namePrefix', 'nameSuffix', 'labels', 'commonLabels', 'commonAnnotations', 'resources', 'images', 'patches', 'configMapGenerator', 'secretGenerator', 'generatorOptions', 'components', 'replicas']);

test('kustomization.yaml is a Kustomization for kube-system with the podwall label', (t) => {
  const docs = readDocs(KUSTOMIZATION);
  t.is(docs.length, 1);
  const k = docs[0]!.obj;
  t.is(k.apiVersion, 'kustomize.config.k8s.io/v1beta1');
  t.is(k.kind, 'Kustomization');
  for (const key of Object.keys(k)) t.true(KUSTOMIZATION_FIELDS.has(key), `unknown Kustomization field ${key}`);
  t.is(k.namespace, 'kube-system');
  const labels = (k.labels as Obj[] | undefined) ?? [];
  t.true(labels.some((l) => isObj(l.pairs) && l.pairs['app.kubernetes.io/name'] === 'podwall') || (k.commonLabels as Obj | undefined)?.['app.kubernetes.io/name'] === 'podwall');
});

test('kustomization.yaml lists every manifest file in deploy/, and only existing ones', (t) => {
  const resources = readDocs(KUSTOMIZATION)[0]!.obj.resources as string[];
  t.true(Array.isArray(resources));
  const files = manifestFiles().filter((f) => f !== KUSTOMIZATION);
  t.deepEqual([...resources].sort(), files);
  for (const r of resources) t.true(existsSync(new URL(r, deployDir)), `${r} does not exist`);
});

// ---- Dockerfile ----------------------------------------------------------------------------------

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function dockerInstructions(): Array<{ op: string; rest: string }> {
  const text = readFileSync(new URL('Dockerfile', deployDir), 'utf8');
  const lines = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return lines.map((l) => {
    const m = /^(\S+)\s+(.*)$/.exec(l);
    return { op: (m?.[1] ?? l).toUpperCase(), rest: m?.[2] ?? '' };
  });
}

test('the Dockerfile builds on Node 22 slim, ships production dependencies only and starts the CLI', (t) => {
  const ins = dockerInstructions();
  const froms = ins.filter((i) => i.op === 'FROM').map((i) => i.rest.split(/\s+/)[0]);
  t.deepEqual(froms, ['node:22-bookworm-slim', 'node:22-bookworm-slim']);
  const runs = ins.filter((i) => i.op === 'RUN').map((i) => i.rest).join(' ;; ');
  t.regex(runs, /npm ci\b/);
  t.regex(runs, /npm run build\b/);
  t.regex(runs, /npm prune --omit=dev\b/);
  t.regex(runs, /apt-get install -y --no-install-recommends [^;]*\biptables\b/);
  for (const pkg of ['ipset', 'iproute2', 'conntrack', 'tcpdump']) t.regex(runs, new RegExp(`apt-get install[^;]*\\b${pkg}\\b`));
  t.notRegex(runs, /update-alternatives/, 'podwall picks the iptables backend itself');
  const entrypoint = ins.filter((i) => i.op === 'ENTRYPOINT').pop();
  t.deepEqual(JSON.parse(entrypoint!.rest), ['node', '--enable-source-maps', '/app/bin/podwall.js']);
  t.deepEqual(JSON.parse(ins.filter((i) => i.op === 'CMD').pop()!.rest), ['run']);
  // what the runtime stage copies from the build context exists in the checkout, and the bin the
  // ENTRYPOINT runs is the package's bin
  const lastFrom = ins.map((i) => i.op).lastIndexOf('FROM');
  const runtime = ins.slice(lastFrom);
  for (const copy of runtime.filter((i) => i.op === 'COPY' && !i.rest.startsWith('--from'))) {
    const src = copy.rest.split(/\s+/)[0]!;
    t.true(existsSync(new URL(src, repoRoot)), `COPY ${src}: not in the repository`);
  }
  const pkg = JSON.parse(readFileSync(new URL('package.json', repoRoot), 'utf8')) as { bin: Record<string, string> };
  t.is(`/app/${pkg.bin.podwall!.replace(/^\.\//, '')}`, '/app/bin/podwall.js');
  const copiedFromBuild = runtime.filter((i) => i.op === 'COPY' && i.rest.startsWith('--from=build')).map((i) => i.rest.split(/\s+/)[1]);
  t.true(copiedFromBuild.includes('/app/node_modules'));
  t.true(copiedFromBuild.includes('/app/dist/src'));
});
