// `podwall demo`: the built-in shop cluster. The simulator's answer always; when this machine can
// build a lab (root, iptables, ipset), the kernel's measured answer beside it (see lab/).
import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
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

export function register(program: Command): void {
  program
    .command('demo')
    .description('run the built-in example cluster (a shop) and show who can reach whom, and why')
    .option('--simulate', 'only the simulator, even when a lab could be built')
    .action(async () => {
      await runSimulatorDemo(process.stdout.isTTY === true);
    });
}
