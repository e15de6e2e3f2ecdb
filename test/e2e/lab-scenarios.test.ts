// The conformance scenarios on the real kernel: one lab (namespaces x, y, z; pods a, b, c over two
// nodes; 80 and 81 on TCP and UDP) enforced by podwall's agents reading the manifests directory.
// After every step: kernel matrix == simulator matrix == the scenario's expectation, for every pair.
// Scenarios that add or delete pods rely on the lab's follower attaching and detaching pod
// namespaces as the directory changes.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { conformanceObjects, type Raw } from '../support/conformance.js';
import { SCENARIOS } from '../support/scenarios.js';
import { diffMatrices, LAB_PORTS, mismatches } from '../support/expectations.js';
import { labDown, labProbe, labUp } from '../../src/lab/lab.js';
import { loadManifests } from '../../src/cluster/manifests.js';
import { computeMatrix } from '../../src/sim/matrix.js';
import { listNetns } from '../../src/lab/netns.js';

const dir = mkdtempSync(join(tmpdir(), 'podwall-lab-e2e-'));
const name = `e${randomBytes(2).toString('hex')}`;
const keyOf = (o: Raw) => {
  const m = o.metadata as { name: string; namespace?: string };
  return `${o.kind}/${m.namespace ?? ''}/${m.name}`;
};
const base = new Map(conformanceObjects().map((o) => [keyOf(o), o]));
const writeCluster = (objs: Map<string, Raw>) => writeFileSync(join(dir, 'cluster.yaml'), [...objs.values()].map((o) => stringify(o)).join('---\n'));

test.before(async () => {
  writeCluster(base);
  await labUp({ dir, name });
});
test.after.always(async () => {
  await labDown(name).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

const changesPods = (sc: (typeof SCENARIOS)[number]) =>
  sc.steps.some((s) => (s.remove ?? []).some((r) => r.kind === 'Pod') || (s.apply ?? []).some((o) => o.kind === 'Pod' && !base.has(keyOf(o))));

test('every scenario runs on the kernel, pods added and deleted included', (t) => {
  t.true(SCENARIOS.length >= 30, `${SCENARIOS.length}`);
  t.true(SCENARIOS.some(changesPods), 'some scenario adds or deletes pods');
});

for (const scenario of SCENARIOS) {
  test.serial(`kernel == simulator == expectation: ${scenario.name}`, async (t) => {
    const objs = new Map(base);
    for (const [i, step] of scenario.steps.entries()) {
      for (const o of step.apply ?? []) objs.set(keyOf(o), o);
      for (const r of step.remove ?? []) objs.delete(`${r.kind}/${r.namespace ?? ''}/${r.name}`);
      writeCluster(objs);
      const kernel = (await labProbe(name, LAB_PORTS)).matrix;
      const sim = computeMatrix((await loadManifests([dir])).store, LAB_PORTS);
      t.deepEqual(diffMatrices(kernel, sim, 'kernel', 'simulator'), [], `step ${i}: kernel vs simulator`);
      t.deepEqual(mismatches(kernel, step), [], `step ${i}: kernel vs expectation`);
    }
  });
}

test.serial.after('no lab namespace or process is left', async (t) => {
  await labDown(name);
  t.deepEqual((await listNetns()).filter((ns) => ns.startsWith(`pwl-${name}-`)), []);
});
