// The conformance scenarios against the simulator (the lab e2e suite runs the same ones on the kernel).
import test from 'ava';
import { conformanceObjects } from '../support/conformance.js';
import { SCENARIOS } from '../support/scenarios.js';
import { applyObjects, applyStep, LAB_PORTS, mismatches } from '../support/expectations.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { computeMatrix } from '../../src/sim/matrix.js';

test('there are at least 30 scenarios, several of them multi-step', (t) => {
  t.true(SCENARIOS.length >= 30, `${SCENARIOS.length} scenarios`);
  t.true(SCENARIOS.filter((s) => s.steps.length > 1).length >= 6);
});

for (const scenario of SCENARIOS) {
  test(`simulator: ${scenario.name}`, (t) => {
    const store = new ClusterStore();
    applyObjects(store, conformanceObjects());
    scenario.steps.forEach((step, i) => {
      applyStep(store, step);
      const wrong = mismatches(computeMatrix(store, LAB_PORTS), step);
      t.deepEqual(wrong, [], `step ${i}: ${wrong.length} pair(s) differ`);
    });
  });
}
