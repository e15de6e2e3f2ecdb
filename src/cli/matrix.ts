import type { Command } from 'commander';
import { collect, loadInput, UserError, writeOut } from './common.js';
import { analysisPlan, podCidrOption, POD_CIDR_HELP, printInputNotes } from './analysis.js';
import { parsePortList, PortListError, type ProbePort } from '../policy/ports.js';
import { declaredPorts, matrixFromPlan } from '../sim/matrix.js';
import { matrixTable } from '../report/table.js';
import { matrixHtml } from '../report/html.js';

export function outputFormat(value: string, allowed: readonly string[]): string {
  if (!allowed.includes(value)) throw new UserError(`-o ${JSON.stringify(value)}: expected one of ${allowed.join(', ')}`, 2);
  return value;
}

export function portsOption(text: string | undefined): ProbePort[] | undefined {
  if (text === undefined) return undefined;
  try {
    return parsePortList(text);
  } catch (e) {
    if (e instanceof PortListError) throw new UserError(`--ports: ${e.message}`, 2);
    throw e;
  }
}

export function register(program: Command): void {
  program
    .command('matrix')
    .description('print who can reach whom, per port, from manifests')
    .option('-f, --file <path>', 'manifest file or folder (repeatable)', collect)
    .option('--ports <list>', 'ports to probe, e.g. 80/TCP,81/UDP (default: every declared container port)')
    .option('--pod-cidr <cidr>', POD_CIDR_HELP, collect)
    .option('-o, --output <format>', 'table | json | html', 'table')
    .option('-v, --verbose', 'report what was read and skipped')
    .action(async (opts: { file?: string[]; ports?: string; podCidr?: string[]; output: string; verbose?: boolean }) => {
      const format = outputFormat(opts.output, ['table', 'json', 'html']);
      const podCidr = podCidrOption(opts.podCidr);
      const { store } = await loadInput(opts);
      printInputNotes(store);
      const plan = analysisPlan(store, podCidr);
      if (plan.pods.length === 0) throw new UserError('nothing to analyse: the input has no pod with an IP and no workload or planned pod (see the notes above)', 2);
      const ports = portsOption(opts.ports) ?? declaredPorts(store);
      if (ports.length === 0) throw new UserError('no ports to probe: the pods and workloads declare no container ports; give --ports 80/TCP,...', 2);
      const detailed = matrixFromPlan(plan, ports);
      if (format === 'json') writeOut(JSON.stringify(detailed.json, null, 2));
      else if (format === 'html') writeOut(matrixHtml(detailed));
      else writeOut(matrixTable(detailed.json, { color: process.stdout.isTTY === true }));
    });
}
