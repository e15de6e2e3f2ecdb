// One measurement of `bench load` in a fresh process: `node load-child.js lint|source DIR` prints
// one JSON line (LoadMeasurement). `lint` is what `podwall lint -f DIR` does without range flags
// (load, compile, lint, the Service address warnings);
// `source` is the agent's manifests source reading DIR for the first time.
import { loadManifests } from '../cluster/manifests.js';
import { ManifestSource } from '../cluster/manifest-source.js';
import { ClusterStore } from '../cluster/store.js';
import { compile } from '../policy/compile.js';
import { lint } from '../policy/lint.js';
import { lintServices } from '../cluster/service-lint.js';
import type { LoadMeasurement } from './load.js';

const [mode, dir] = process.argv.slice(2);
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const t0 = performance.now();
const c0 = cpu();
const phases: Record<string, number> = {};
let objects = 0;
let errors = 0;
if (mode === 'lint') {
  let t = performance.now();
  const r = await loadManifests([dir!]);
  phases.load = performance.now() - t;
  t = performance.now();
  const plan = compile(r.store, { ipless: true });
  phases.compile = performance.now() - t;
  t = performance.now();
  const findings = [...r.findings, ...lint(r.store, plan)];
  phases.lint = performance.now() - t;
  t = performance.now();
  // As the command with no range flags: no ranges, the default node-port range.
  findings.push(...lintServices(r.store, { clusterIP: [], externalIP: [], loadBalancerIP: [], nodePort: [30000, 32767] }, { clusterIPRangeGiven: false, nodePortRangeGiven: false }));
  phases.serviceLint = performance.now() - t;
  objects = Object.values(r.summary.objects).reduce((a, b) => a + b, 0);
  errors = findings.filter((f) => f.severity === 'error').length;
} else if (mode === 'source') {
  const store = new ClusterStore();
  const src = new ManifestSource(dir!, store, () => {}, { settleMs: 0 });
  const t = performance.now();
  const report = await src.start();
  phases.firstLoad = performance.now() - t;
  src.stop();
  objects = store.pods.size + store.policies.size + store.namespaces.size + store.nodes.size + store.services.size + store.workloads.size;
  errors = report.state.errors;
} else {
  process.stderr.write('usage: load-child.js lint|source DIR\n');
  process.exit(2);
}
const m: LoadMeasurement = { mode: mode as 'lint' | 'source', wallMs: performance.now() - t0, cpuMs: cpu() - c0, peakRssMB: process.resourceUsage().maxRSS / 1024, phases, objects, errors };
process.stdout.write(`${JSON.stringify(m)}\n`);
