// Keeps docs/ true to what is built: every flag and metric the code defines is documented.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { FLAGS } from '../../src/controller/flags.js';
import { Metrics } from '../../src/controller/metrics.js';

const doc = (name: string) => readFileSync(new URL(`../../../docs/${name}`, import.meta.url), 'utf8');

test('docs/flags.md lists every flag', (t) => {
  const text = doc('flags.md');
  for (const f of Object.keys(FLAGS)) t.true(text.includes(f === 'v' ? '`-v`' : `--${f}`), `--${f} missing from docs/flags.md`);
});

test('docs/metrics.md lists every metric', async (t) => {
  const text = doc('metrics.md');
  const m = new Metrics();
  for (const metric of await m.registry.getMetricsAsJSON()) {
    const name = metric.name;
    const short = name.replace(/^kube_router_controller_/, '').replace(/_v[46]_/, '_v4_');
    t.true(text.includes(name) || text.includes(`..._${short.split('_v4_')[1] ?? ''}`) || text.includes(name.replace('_v6_', '_v4_')), `${name} missing from docs/metrics.md`);
  }
});
