// `podwall demo`: the built-in shop cluster. The simulator's answer always; when this machine can
// build a lab (root, iptables, ipset), the kernel's measured answer beside it (see lab/).
import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseAllDocuments } from 'yaml';
import type { MatrixJson } from '../sim/matrix.js';
import { loadManifests } from '../cluster/manifests.js';
import { hasErrors, formatFinding } from '../cluster/findings.js';
import { compile } from '../policy/compile.js';
import { parsePortList } from '../policy/ports.js';
import { matrixFromPlan } from '../sim/matrix.js';
import { matrixTable } from '../report/table.js';
import { explain, formatExplanation, resolveEndpoint } from '../sim/explain.js';
import { UserError, writeOut } from './common.js';

export const DEMO_DIR = fileURLToPath(new URL('../../../policies/demo-shop/', import.meta.url));
export const DEMO_PORTS = '8080/TCP,5432/TCP,9090/TCP,53/UDP';

/** Loads `files`, then applies `updates` on top as API updates would (same objects replaced). */
export async function simulate(files: string[], updates: string[] = [], ports = DEMO_PORTS) {
  const r = await loadManifests(files);
  const u = await loadManifests(updates.length ? updates : []);
  const findings = [...r.findings, ...(updates.length ? u.findings : [])];
  if (hasErrors(findings)) throw new UserError(`demo input is invalid: ${findings.map(formatFinding).join('; ')}`);
  if (updates.length) for (const map of [u.store.namespaces, u.store.pods, u.store.policies, u.store.nodes, u.store.services]) for (const o of map.values()) r.store.upsert(o);
  const plan = compile(r.store);
  return { plan, matrix: matrixFromPlan(plan, parsePortList(ports)).json };
}

export async function runSimulatorDemo(color: boolean): Promise<void> {
  const base = [join(DEMO_DIR, 'cluster.yaml'), join(DEMO_DIR, 'policy.yaml')];
  writeOut('podwall demo: the shop cluster (policies/demo-shop), answered by the simulator\n');
  const before = await simulate(base);
  writeOut(matrixTable(before.matrix, { color }));
  writeOut('\n── change: db/allow-api now admits only api/payments (policies/demo-shop/change.txt)\n');
  const after = await simulate(base, [join(DEMO_DIR, 'change.txt')]);
  writeOut(matrixTable({ ...after.matrix, probes: after.matrix.probes.filter((p) => p.port === 5432) }, { color }));
  writeOut('\n── why is api/orders → db/postgres 5432/TCP denied now?\n');
  const plan = after.plan;
  writeOut(formatExplanation(explain(plan, resolveEndpoint(plan, 'api/orders', 'from'), resolveEndpoint(plan, 'db/postgres', 'to'), 'TCP', 5432)));
}

/** What stops a lab here (root, tools); empty when a lab can be built. */
function labBlockers(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (the lab creates network namespaces)');
  for (const tool of ['ip', 'iptables', 'ipset', 'conntrack']) {
    if (!process.env.PATH?.split(':').some((d) => existsSync(join(d, tool)))) missing.push(`the ${tool} command`);
  }
  return missing;
}

/** `serves(pod, port, protocol)`: only ports a pod listens on can be measured; others print `-`. */
function sideBySide(sim: MatrixJson, kernel: MatrixJson, color: boolean, serves: (pod: string, port: number, protocol: string) => boolean): string {
  const out: string[] = [];
  const short = (k: string) => k.split('/')[1]!.slice(0, 10);
  const yes = color ? '\x1b[32m✓\x1b[0m' : '✓';
  const no = color ? '\x1b[31m.\x1b[0m' : '.';
  const w = Math.max(...sim.pods.map((p) => p.length)) + 2;
  for (const [i, probe] of sim.probes.entries()) {
    const kp = kernel.probes[i]!;
    const cols = sim.pods.map((p) => short(p).padStart(11)).join('');
    out.push(`${probe.port}/${probe.protocol}`.padEnd(w) + `simulator${' '.repeat(Math.max(1, sim.pods.length * 11 - 9))}   kernel (real packets)`);
    out.push(' '.repeat(w) + cols + '   ' + cols);
    let differ = 0;
    let compared = 0;
    const served = (to: string) => serves(to, probe.port, probe.protocol);
    for (const from of sim.pods) {
      const row = (m: MatrixJson['probes'][number]) => sim.pods.map((to) => ' '.repeat(10) + (!served(to) ? '-' : m.allowed[from]?.[to] ? yes : no)).join('');
      for (const to of sim.pods) {
        if (!served(to)) continue;
        compared++;
        if (probe.allowed[from]?.[to] !== kp.allowed[from]?.[to]) differ++;
      }
      out.push(from.padEnd(w) + row(probe) + '   ' + row(kp));
    }
    out.push(differ === 0 ? `  → kernel and simulator agree on all ${compared} pairs (- : the destination does not serve ${probe.port}/${probe.protocol})` : `  → ${differ} of ${compared} pair(s) DIFFER`);
    out.push('');
  }
  return out.join('\n');
}

async function runLabDemo(color: boolean): Promise<void> {
  const { labUp, labProbe, labDown } = await import('../lab/lab.js');
  const dir = mkdtempSync(join(tmpdir(), 'podwall-demo-'));
  const name = 'demo';
  await labDown(name).catch(() => {});
  try {
    copyFileSync(join(DEMO_DIR, 'cluster.yaml'), join(dir, 'cluster.yaml'));
    copyFileSync(join(DEMO_DIR, 'policy.yaml'), join(dir, 'policy.yaml'));
    writeOut('podwall demo: the shop cluster (policies/demo-shop) in a lab of network namespaces, enforced by podwall\'s agents\n');
    await labUp({ dir, name, progress: (s) => process.stderr.write(`  ${s}\n`) });
    const ports = parsePortList(DEMO_PORTS);
    const { store } = await loadManifests([dir]);
    const serves = (pod: string, port: number, protocol: string) => store.pods.get(pod)?.ports.some((p) => p.port === port && p.protocol === protocol) ?? false;
    const measure = async () => ({ sim: (await simulate([dir])).matrix, kernel: (await labProbe(name, ports)).matrix });
    let m = await measure();
    writeOut(sideBySide(m.sim, m.kernel, color, serves));
    writeOut('── change, applied live: db/allow-api now admits only api/payments (policies/demo-shop/change.txt)\n');
    const change = readFileSync(join(DEMO_DIR, 'change.txt'), 'utf8');
    const docs = parseAllDocuments(readFileSync(join(dir, 'policy.yaml'), 'utf8')).map((d) => d.toString());
    const replaced = docs.map((d) => (/name: allow-api, namespace: db/.test(d) ? change : d));
    writeFileSync(join(dir, 'policy.yaml'), replaced.join('---\n'));
    m = await measure();
    const only = (x: MatrixJson) => ({ ...x, probes: x.probes.filter((p) => p.port === 5432) });
    writeOut(sideBySide(only(m.sim), only(m.kernel), color, serves));
    writeOut('── why is api/orders → db/postgres 5432/TCP denied now?');
    const plan = (await simulate([dir])).plan;
    writeOut(formatExplanation(explain(plan, resolveEndpoint(plan, 'api/orders', 'from'), resolveEndpoint(plan, 'db/postgres', 'to'), 'TCP', 5432)));
  } finally {
    process.stderr.write('  tearing the lab down\n');
    await labDown(name).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('run the built-in example cluster (a shop) in a lab — simulator and kernel side by side — and show why')
    .option('--simulate', 'only the simulator, even when a lab could be built')
    .action(async (o: { simulate?: boolean }) => {
      const color = process.stdout.isTTY === true;
      const blockers = labBlockers();
      if (o.simulate || blockers.length > 0) {
        if (!o.simulate) process.stderr.write(`podwall demo: no lab here (needs ${blockers.join(', ')}); showing the simulator's answer\n\n`);
        await runSimulatorDemo(color);
        return;
      }
      await runLabDemo(color);
    });
}
