// `matrix -o json` is written row by row (report/json.ts); it must be exactly the in-memory matrix,
// audited changes, filters and open (null) cells included.
import test from 'ava';
import { compile } from '../../src/policy/compile.js';
import { matrixView } from '../../src/sim/matrix.js';
import { matrixJsonText } from '../../src/report/json.js';
import { conformanceObjects, policy, storeOf } from '../support/conformance.js';

const PORTS = [
  { port: 80, protocol: 'TCP' as const },
  { port: 81, protocol: 'UDP' as const },
];

test('the streamed JSON parses to the matrix object: plain, audited, filtered, with a workload and an open cell', (t) => {
  const audited = { ...policy('y', 'new', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'a' } } }] }] }), metadata: { name: 'new', namespace: 'y', annotations: { 'podwall.io/enforcement': 'audit' } } };
  const workload = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'w', namespace: 'x' }, spec: { template: { metadata: { labels: { pod: 'w' } }, spec: { containers: [{ name: 'c', ports: [{ containerPort: 80 }] }] } } } };
  const cidr = policy('z', 'cidr', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }] });
  const cases = [
    [...conformanceObjects()],
    [...conformanceObjects(), audited],
    [...conformanceObjects(), workload, cidr, audited],
  ];
  for (const objs of cases) {
    const plan = compile(storeOf(objs), { ipless: true });
    for (const opts of [{}, { from: (p: { namespace: string }) => p.namespace === 'x', to: (p: { key: string }) => p.key !== 'y/a' }]) {
      const view = matrixView(plan, PORTS, opts);
      t.deepEqual(JSON.parse(matrixJsonText(view)), view.json());
    }
  }
  const open = matrixView(compile(storeOf(cases[2]!), { ipless: true }), PORTS).json();
  t.is(open.probes[0]!.allowed['x/w[Deployment]']!['z/a'], null);
  t.deepEqual(open.audited, ['y/new']);
  const empty = matrixView(compile(storeOf(conformanceObjects()), { ipless: true }), []);
  t.deepEqual(JSON.parse(matrixJsonText(empty)), empty.json());
});
