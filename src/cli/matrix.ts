import type { Command } from 'commander';
import { collect, loadInput, UserError, writeOut } from './common.js';
import { parsePortList, PortListError, type ProbePort } from '../policy/ports.js';
import { declaredPorts, matrixView } from '../sim/matrix.js';
import { matrixSize, type MatrixScope } from '../sim/bound.js';
import { aggregateByNamespace, aggregateWork } from '../sim/aggregate.js';
import { matrixTable, aggregateTable } from '../report/table.js';
import { matrixHtml } from '../report/html.js';
import { matrixJsonChunks } from '../report/json.js';
import { analysisPlan, namespaceOption, patternsOption, podCidrOption, POD_CIDR_HELP, printInputNotes } from './analysis.js';

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

/**
 * Writes chunks to stdout, waiting while the pipe is full: a matrix of 1,000 endpoints is ~170 MB of
 * JSON and must not sit in memory whole behind a slow reader. Stops when the reader goes away.
 */
async function writeChunks(chunks: Iterable<Uint8Array>): Promise<void> {
  let gone = false;
  const onError = () => (gone = true);
  process.stdout.on('error', onError);
  try {
    for (const chunk of chunks) {
      if (gone) return;
      if (!process.stdout.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => (process.stdout.off('drain', done), process.stdout.off('close', done), process.stdout.off('error', done), resolve());
          process.stdout.once('drain', done).once('close', done).once('error', done);
        });
      }
    }
  } finally {
    process.stdout.off('error', onError);
  }
}

/** Default bound on written cells: 1,000 endpoints over 5 ports fit; 100,000 pods do not. */
export const DEFAULT_MAX_CELLS = 5_000_000;

function countOption(flag: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < 1) throw new UserError(`${flag} ${JSON.stringify(v)}: expected a positive whole number`, 2);
  return n;
}

interface MatrixOpts {
  file?: string[];
  ports?: string;
  podCidr?: string[];
  namespace?: string;
  from?: string[];
  to?: string[];
  aggregate?: string;
  maxCells?: string;
  output: string;
  verbose?: boolean;
}

export function register(program: Command): void {
  program
    .command('matrix')
    .description('print who can reach whom, per port, from manifests')
    .option('-f, --file <path>', 'manifest file or folder (repeatable)', collect)
    .option('--ports <list>', 'ports to probe, e.g. 80/TCP,81/UDP (default: every declared container port)')
    .option('--pod-cidr <cidr>', POD_CIDR_HELP, collect)
    .option('-n, --namespace <ns>', 'as kubectl: objects without a namespace go to NS, and only NS\'s endpoints are shown')
    .option('--from <pattern>', 'rows: ns/name, ns/name[Kind], ns/*, globs (repeatable)', collect)
    .option('--to <pattern>', 'columns: ns/name, ns/name[Kind], ns/*, globs (repeatable)', collect)
    .option('--aggregate <by>', 'count endpoint pairs per namespace pair instead of one cell per pair (namespace)')
    .option('--max-cells <n>', `stop before writing more cells than this (default ${DEFAULT_MAX_CELLS.toLocaleString('en-US')})`)
    .option('-o, --output <format>', 'table | json | html', 'table')
    .option('-v, --verbose', 'report what was read and skipped')
    .action(async (opts: MatrixOpts) => {
      const format = outputFormat(opts.output, ['table', 'json', 'html']);
      if (opts.aggregate !== undefined && opts.aggregate !== 'namespace') throw new UserError(`--aggregate ${JSON.stringify(opts.aggregate)}: expected namespace`, 2);
      const podCidr = podCidrOption(opts.podCidr);
      const namespace = namespaceOption(opts.namespace);
      const maxCells = countOption('--max-cells', opts.maxCells, DEFAULT_MAX_CELLS);
      const scope: MatrixScope = {};
      const from = patternsOption('--from', opts.from, namespace);
      const to = patternsOption('--to', opts.to, namespace);
      if (from) scope.from = from;
      if (to) scope.to = to;
      if (namespace !== undefined) scope.namespace = namespace;
      const { store } = await loadInput(opts);
      printInputNotes(store);
      const explicitPorts = portsOption(opts.ports);
      const ports = explicitPorts ?? declaredPorts(store);
      // Estimate first: what is written grows with rows × columns × ports.
      const size = matrixSize(store, scope);
      if (size.rows === 0 || size.cols === 0) {
        throw new UserError(size.endpoints === 0 ? 'nothing to analyse: the input has no pod with an IP and no workload or planned pod (see the notes above)' : `no endpoint matches the filters (${size.endpoints} endpoints in the input)`, 2);
      }
      if (ports.length === 0) throw new UserError('no ports to probe: the pods and workloads declare no container ports; give --ports 80/TCP,...', 2);
      const cells = size.rows * size.cols * ports.length;
      const aggregated = opts.aggregate === 'namespace';
      const written = aggregated ? size.rowNamespaces * size.colNamespaces * ports.length : cells;
      if (written > maxCells) {
        const f = (n: number) => n.toLocaleString('en-US');
        const what = aggregated
          ? `${f(written)} cells (${f(size.rowNamespaces)} × ${f(size.colNamespaces)} namespaces × ${ports.length} port${ports.length === 1 ? '' : 's'})`
          : `${f(written)} cells (${f(size.rows)} × ${f(size.cols)} endpoints × ${ports.length} port${ports.length === 1 ? '' : 's'})`;
        throw new UserError(
          `the matrix would have ${what}, over --max-cells ${f(maxCells)}: narrow it with --namespace NS, --from ns/* or --to ns/*, give fewer --ports${aggregated ? '' : ', or count pairs by namespace with --aggregate namespace'}`,
          2,
        );
      }
      const plan = analysisPlan(store, podCidr);
      const view = matrixView(plan, ports, size.filters);
      if (aggregated) {
        const work = aggregateWork(view);
        if (work > maxCells * 4) throw new UserError(`counting by namespace would decide ${work.toLocaleString('en-US')} groups of endpoints, over the bound: narrow it with --namespace NS, --from ns/* or --to ns/*`, 2);
        const agg = aggregateByNamespace(view);
        if (format === 'json') writeOut(JSON.stringify(agg, null, 2));
        else if (format === 'html') writeOut(matrixHtml(view));
        else writeOut(aggregateTable(agg, { color: process.stdout.isTTY === true }));
        return;
      }
      if (format === 'json') await writeChunks(matrixJsonChunks(view));
      else if (format === 'html') writeOut(matrixHtml(view));
      else writeOut(matrixTable(view.json(), { color: process.stdout.isTTY === true }));
    });
}
