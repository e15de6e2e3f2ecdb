import type { Command } from 'commander';
import { collect, loadInput, UserError, writeOut } from './common.js';
import { compile } from '../policy/compile.js';
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
    .option('-o, --output <format>', 'table | json | html', 'table')
    .option('-v, --verbose', 'report what was read and skipped')
    .action(async (opts: { file?: string[]; ports?: string; output: string; verbose?: boolean }) => {
      const format = outputFormat(opts.output, ['table', 'json', 'html']);
      const { store } = await loadInput(opts);
      const ports = portsOption(opts.ports) ?? declaredPorts(store);
      if (ports.length === 0) throw new UserError('no ports to probe: the pods declare no container ports; give --ports 80/TCP,...', 2);
      const detailed = matrixFromPlan(compile(store), ports);
      if (format === 'json') writeOut(JSON.stringify(detailed.json, null, 2));
      else if (format === 'html') writeOut(matrixHtml(detailed));
      else writeOut(matrixTable(detailed.json, { color: process.stdout.isTTY === true }));
    });
}
