// Differential on the real kernel: a seeded, bounded number of random clusters and policies (every
// pod serving 80 and 81 on TCP and UDP, spread over two nodes), each built as a lab enforced by
// podwall's agents: the measured matrix equals the simulator's for every pair.
import test from 'ava';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { policy, writeManifests, type Raw } from '../support/conformance.js';
import { extraPod } from '../support/scenarios.js';
import { diffMatrices, LAB_PORTS } from '../support/expectations.js';
import { labDown, labProbe, labUp } from '../../src/lab/lab.js';
import { loadManifests } from '../../src/cluster/manifests.js';
import { computeMatrix } from '../../src/sim/matrix.js';

const CLUSTERS = 5;
const SEED = 5112026;
const tmp = mkdtempSync(join(tmpdir(), 'podwall-labdiff-'));
const labs: string[] = [];
test.after.always(async () => {
  for (const l of labs) await labDown(l).catch(() => {});
  rmSync(tmp, { recursive: true, force: true });
});

const NS = ['x', 'y', 'z'];
const V = ['a', 'b', 'c'];
const labels = fc.dictionary(fc.constantFrom('pod', 'app'), fc.constantFrom(...V), { minKeys: 1, maxKeys: 2 });
const sel = fc.record({ matchLabels: fc.dictionary(fc.constantFrom('pod', 'app'), fc.constantFrom(...V), { maxKeys: 1 }) });
const peer = fc.oneof(
  fc.record({ podSelector: sel }),
  fc.record({ namespaceSelector: fc.record({ matchLabels: fc.dictionary(fc.constant('ns'), fc.constantFrom(...NS), { maxKeys: 1 }) }) }),
  fc.record({ ipBlock: fc.constantFrom({ cidr: '10.244.1.0/24' }, { cidr: '10.244.0.0/16', except: ['10.244.2.0/25'] }) }),
);
const rule = fc.record({ peers: fc.array(peer, { maxLength: 2 }), ports: fc.array(fc.record({ port: fc.constantFrom(80, 81, 'serve-80-tcp', 'serve-81-udp'), protocol: fc.constantFrom('TCP', 'UDP') }), { maxLength: 2 }) });
const cluster = fc.record({
  pods: fc.array(fc.tuple(fc.constantFrom(...NS), labels, fc.integer({ min: 1, max: 2 })), { minLength: 3, maxLength: 7 }),
  policies: fc.array(fc.record({ ns: fc.constantFrom(...NS), sel, types: fc.subarray(['Ingress', 'Egress'], { minLength: 1 }), ingress: fc.array(rule, { maxLength: 2 }), egress: fc.array(rule, { maxLength: 2 }) }), { minLength: 1, maxLength: 4 }),
});

const samples = fc.sample(cluster, { numRuns: CLUSTERS, seed: SEED });

for (const [i, c] of samples.entries()) {
  test.serial(`random cluster ${i + 1} of ${CLUSTERS} (seed ${SEED}): kernel == simulator`, async (t) => {
    const objects: Raw[] = [
      { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1' }, spec: { podCIDRs: ['10.244.1.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: '172.30.0.1' }] } },
      { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-2' }, spec: { podCIDRs: ['10.244.2.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: '172.30.0.2' }] } },
      ...NS.map((ns) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { ns } } })),
      ...c.pods.map(([ns, l, node], j) => extraPod(ns, `p${j}`, l, `10.244.${node}.${10 + j}`, `node-${node}`)),
      ...c.policies.map((p, j) =>
        policy(p.ns, `pol${j}`, {
          podSelector: p.sel,
          policyTypes: p.types,
          ingress: p.ingress.map((r) => ({ from: r.peers, ports: r.ports })),
          egress: p.egress.map((r) => ({ to: r.peers, ports: r.ports })),
        }),
      ),
    ];
    const dir = join(tmp, `c${i}`);
    writeManifests(dir, objects);
    const name = `d${randomBytes(2).toString('hex')}`;
    labs.push(name);
    await labUp({ dir, name });
    const kernel = (await labProbe(name, LAB_PORTS)).matrix;
    const sim = computeMatrix((await loadManifests([dir])).store, LAB_PORTS);
    await labDown(name);
    t.deepEqual(diffMatrices(kernel, sim, 'kernel', 'simulator'), []);
  });
}
