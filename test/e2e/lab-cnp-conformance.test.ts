// network-policy-api's conformance model on the kernel: a lab of the four houses (two StatefulSet
// replicas each, one per node; the host-network centaurs are left out as the lab leaves every
// host-network pod) enforced by podwall's agents reading the manifests directory. For each case of
// test/support/npapi-cases.ts marked `lab`: kernel matrix == simulator matrix == the case's
// expectation, on every ordered pair and on 80/TCP, 8080/TCP, 53/UDP and 5353/UDP (no SCTP sockets
// here; the unit test checks SCTP on the simulator and the rendered rules).
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import type { Raw } from '../support/conformance.js';
import { HOUSE_PODS, HOUSE_PORTS, houseObjects } from '../support/npapi-conformance.js';
import { NPAPI_CASES } from '../support/npapi-cases.js';
import { diffMatrices } from '../support/expectations.js';
import { labDown, labProbe, labUp } from '../../src/lab/lab.js';
import { loadManifests } from '../../src/cluster/manifests.js';
import { computeMatrix, type MatrixJson } from '../../src/sim/matrix.js';
import { listNetns } from '../../src/lab/netns.js';

const dir = mkdtempSync(join(tmpdir(), 'podwall-lab-npapi-'));
const name = `h${randomBytes(2).toString('hex')}`;
const PORTS = HOUSE_PORTS.filter((p) => p.protocol !== 'SCTP');
const BASE = houseObjects({ declareServed: true });
const write = (objects: Raw[]) => writeFileSync(join(dir, 'cluster.yaml'), [...BASE, ...objects].map((o) => stringify(o)).join('---\n'));
const byKey = new Map(HOUSE_PODS.map((p) => [p.key, p]));
const CASES = NPAPI_CASES.filter((c) => c.lab);

test.before(async () => {
  write([]);
  await labUp({ dir, name });
});
test.after.always(async () => {
  await labDown(name).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

function expectationMismatches(m: MatrixJson, expect: (typeof CASES)[number]['expect']): string[] {
  const out: string[] = [];
  for (const probe of m.probes)
    for (const from of m.pods)
      for (const to of m.pods) {
        if (from === to) continue;
        const want = expect(byKey.get(from)!, byKey.get(to)!, { port: probe.port, protocol: probe.protocol as 'TCP' });
        if (probe.allowed[from]?.[to] !== want) out.push(`${from} -> ${to} ${probe.port}/${probe.protocol}: kernel ${probe.allowed[from]?.[to]}, want ${want}`);
      }
  return out;
}

test.serial('the lab holds the eight house pods and no centaur', async (t) => {
  const m = (await labProbe(name, PORTS.slice(0, 1))).matrix;
  t.deepEqual([...m.pods].sort(), HOUSE_PODS.map((p) => p.key).sort());
  t.true(CASES.length >= 10, `${CASES.length}`);
});

for (const c of CASES) {
  test.serial(`kernel == simulator == expectation: ${c.name}`, async (t) => {
    write(c.objects);
    const kernel = (await labProbe(name, PORTS)).matrix;
    const sim = computeMatrix((await loadManifests([dir])).store, PORTS);
    t.deepEqual(diffMatrices(kernel, sim, 'kernel', 'simulator').slice(0, 10), [], 'kernel vs simulator');
    t.deepEqual(expectationMismatches(kernel, c.expect).slice(0, 10), [], 'kernel vs expectation');
  });
}

test.serial.after('no lab namespace or process is left', async (t) => {
  await labDown(name);
  t.deepEqual((await listNetns()).filter((ns) => ns.startsWith(`pwl-${name}-`)), []);
});
