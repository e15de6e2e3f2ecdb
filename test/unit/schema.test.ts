// The API schema check (client-node's generated models): unknown fields by YAML path, wrong shapes,
// required fields; what real dumps contain passes.
import test from 'ava';
import { loadSchemas, schemaProblems, hasSchema, ROOT_MODELS } from '../../src/cluster/schema.js';

test.before(async () => {
  await loadSchemas();
});

const pod = (spec: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'x' }, spec, ...extra });
const np = (spec: unknown) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'n', namespace: 'x' }, spec });
const problems = (o: Record<string, unknown>) => schemaProblems(o, o.kind as string).map((p) => `${p.field}: ${p.code}: ${p.message}`);

test('every kind podwall reads has its schema', (t) => {
  for (const k of Object.keys(ROOT_MODELS)) t.true(hasSchema(k), k);
});

const cases: [string, Record<string, unknown>, string[]][] = [
  ['a conforming pod', pod({ containers: [{ name: 'c', image: 'i', ports: [{ containerPort: 80, name: 'http' }], resources: { limits: { cpu: 1, memory: '1Gi' } } }], volumes: [{ name: 'v', emptyDir: { sizeLimit: 1 } }] }, { status: { phase: 'Running', podIP: '10.0.0.1' } }), []],
  ['a misspelled field, named by its YAML path', pod({ containers: [{ name: 'c', image: 'i', ports: [{ containerport: 80 }] }] }), [
    'spec.containers[0].ports[0].containerport: unknown-field: unknown field "containerport" (did you mean "containerPort"?)',
    'spec.containers[0].ports[0].containerPort: missing-field: required field missing',
  ]],
  ['a field of another kind', pod({ containers: [{ name: 'c', image: 'i' }], podSelector: {} }), ['spec.podSelector: unknown-field: unknown field "podSelector" (did you mean "nodeSelector"?)']],
  ['a list where a mapping goes', pod({ containers: { name: 'c' } }), ['spec.containers: invalid-type: must be a list, not a mapping']],
  ['a string where a number goes', pod({ containers: [{ name: 'c', image: 'i', ports: [{ containerPort: '80' }] }] }), ['spec.containers[0].ports[0].containerPort: invalid-type: must be an integer, not the string "80"']],
  ['a fraction where an integer goes', pod({ containers: [{ name: 'c', image: 'i', ports: [{ containerPort: 80.5 }] }] }), ['spec.containers[0].ports[0].containerPort: invalid-type: must be an integer, not the number 80.5']],
  ['a number where a string goes', pod({ containers: [{ name: 5, image: 'i' }] }), ['spec.containers[0].name: invalid-type: must be a string, not the number 5']],
  ['a null item in a list of objects', pod({ containers: [null] }), ['spec.containers[0]: invalid-type: must be a mapping, not null']],
  ['missing required fields', pod({ containers: [{ ports: [{}] }] }), [
    'spec.containers[0].ports[0].containerPort: missing-field: required field missing',
    'spec.containers[0].name: missing-field: required field missing',
    'spec.containers[0].image: missing-field: required field missing',
  ]],
  ['no containers', pod({}), ['spec.containers: missing-field: required field missing']],
  ['null is "not set"', pod({ containers: [{ name: 'c', image: 'i', ports: null }] }, { metadata: { name: 'p', creationTimestamp: null } }), []],
  ['a policy with a merge key', np({ '<<': { podSelector: {} } }), ['spec.<<: unknown-field: unknown field "<<": a YAML merge key, which kubectl (YAML 1.1) expands but the API schema does not know; write the fields out']],
  ['a policy port as a boolean', np({ podSelector: {}, ingress: [{ ports: [{ port: true }] }] }), ['spec.ingress[0].ports[0].port: invalid-type: must be an integer or a string, not the boolean true']],
  ['a policy with podSelector as a string', np({ podSelector: 'all' }), ['spec.podSelector: invalid-type: must be a mapping, not the string "all"']],
  ['an ipBlock without cidr', np({ podSelector: {}, ingress: [{ from: [{ ipBlock: { except: ['10.0.0.0/8'] } }] }] }), ['spec.ingress[0].from[0].ipBlock.cidr: missing-field: required field missing']],
  ['a workload template field, deep', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i', port: 80 }] } } } }, [
    'spec.template.spec.containers[0].port: unknown-field: unknown field "port" (did you mean "ports"?)',
  ]],
  ['a Deployment without selector', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { template: { spec: { containers: [{ name: 'c', image: 'i' }] } } } }, ['spec.selector: missing-field: required field missing']],
  ['a namespace with a status and finalizers (kubectl get -o yaml)', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a', uid: 'u', resourceVersion: '1', creationTimestamp: '2024-01-01T00:00:00Z', managedFields: [{ manager: 'kubectl', operation: 'Update', fieldsV1: { 'f:metadata': {} } }] }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } }, []],
];

for (const [name, obj, want] of cases) {
  test(`schema: ${name}`, (t) => {
    t.deepEqual(problems(obj), want);
  });
}

test('kinds without a schema are not checked', (t) => {
  t.deepEqual(schemaProblems({ kind: 'ConfigMap', data: { a: 1 } }, 'ConfigMap'), []);
});
