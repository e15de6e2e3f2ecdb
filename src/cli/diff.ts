import type { Command } from 'commander';
import { collect, UserError, writeOut } from './common.js';
import { loadManifests, type LoadResult, type ManifestReader } from '../cluster/manifests.js';
import { formatFinding, hasErrors } from '../cluster/findings.js';
import { formatInputNotes, inputNotes } from '../cluster/workloads.js';
import { gitReader, GitSourceError } from '../cluster/git-source.js';
import type { ProbePort } from '../policy/ports.js';
import { declaredPorts } from '../sim/matrix.js';
import { matrixSize, type MatrixScope } from '../sim/bound.js';
import { diffPlans, failsOn } from '../sim/diff.js';
import { diffMarkdown, diffTable } from '../report/diff.js';
import { diffHtml } from '../report/html.js';
import { analysisPlan, namespaceOption, patternsOption, podCidrOption, POD_CIDR_HELP } from './analysis.js';
import { DEFAULT_MAX_CELLS, outputFormat, portsOption } from './matrix.js';

interface DiffOpts {
  old?: string[];
  new?: string[];
  base?: string;
  file?: string[];
  ports?: string;
  podCidr?: string[];
  namespace?: string;
  from?: string[];
  to?: string[];
  maxCells?: string;
  declaredPorts: boolean;
  failOn?: string;
  output: string;
}

/** One side of the diff; unusable input (errors) stops with exit 2. */
async function loadSide(label: string, paths: string[], namespace: string | undefined, reader?: ManifestReader): Promise<LoadResult> {
  let r: LoadResult;
  try {
    r = await loadManifests(paths, { ...(namespace !== undefined ? { defaultNamespace: namespace } : {}), ...(reader ? { reader } : {}) });
  } catch (e) {
    if (e instanceof GitSourceError) throw new UserError(e.message, 2);
    throw e;
  }
  for (const f of r.findings) if (f.severity === 'error' || f.code === 'not-at-base') process.stderr.write(`${formatFinding(f)}\n`);
  if (hasErrors(r.findings)) throw new UserError(`${r.findings.filter((f) => f.severity === 'error').length} error(s) in the ${label} input; fix them (podwall lint lists them all)`, 2);
  if (r.files.length === 0 && !reader) throw new UserError(`no manifest files (*.yaml, *.yml, *.json) found in ${paths.join(', ')} (${label})`, 2);
  for (const line of formatInputNotes(inputNotes(r.store))) process.stderr.write(`${line.replace(/^note:/, `note (${label}):`)}\n`);
  return r;
}

function mergePorts(...lists: ProbePort[][]): ProbePort[] {
  const seen = new Map<string, ProbePort>();
  for (const l of lists) for (const p of l) seen.set(`${p.port}/${p.protocol}`, p);
  const order = { TCP: 0, UDP: 1, SCTP: 2 };
  return [...seen.values()].sort((a, b) => a.port - b.port || order[a.protocol] - order[b.protocol]);
}

export function register(program: Command): void {
  program
    .command('diff')
    .description('reachability change between two states: access added and removed, per endpoint pair and port, with the reason on both sides')
    .option('--old <path>', 'the state before: manifest file or folder (repeatable)', collect)
    .option('--new <path>', 'the state after: manifest file or folder (repeatable)', collect)
    .option('--base <ref>', 'in a git checkout: the state before is -f PATH... as it is at REF (read with git; the working tree is not touched)')
    .option('-f, --file <path>', 'with --base: the state after, from the working tree (repeatable)', collect)
    .option('--ports <list>', 'ports to compare besides every container port declared on either side, e.g. 80/TCP,53/UDP')
    .option('--no-declared-ports', 'compare only the --ports given, not every declared container port')
    .option('--pod-cidr <cidr>', POD_CIDR_HELP, collect)
    .option('-n, --namespace <ns>', 'as kubectl: objects without a namespace go to NS (both sides)')
    .option('--from <pattern>', 'only changes from these endpoints: ns/name, ns/name[Kind], ns/*, globs (repeatable)', collect)
    .option('--to <pattern>', 'only changes to these endpoints (repeatable)', collect)
    .option('--max-cells <n>', `stop before comparing more cells than this (default ${DEFAULT_MAX_CELLS.toLocaleString('en-US')})`)
    .option('--fail-on <kind>', 'exit 1 when there is access added, removed, or any change (added | removed | any)')
    .option('-o, --output <format>', 'table | json | md | html', 'table')
    .action(async (opts: DiffOpts) => {
      const format = outputFormat(opts.output, ['table', 'json', 'md', 'html']);
      const failOn = opts.failOn;
      if (failOn !== undefined && failOn !== 'added' && failOn !== 'removed' && failOn !== 'any') throw new UserError(`--fail-on ${JSON.stringify(failOn)}: expected added, removed or any`, 2);
      const byPaths = (opts.old?.length ?? 0) > 0 || (opts.new?.length ?? 0) > 0;
      const byGit = opts.base !== undefined;
      if (byPaths && (byGit || (opts.file?.length ?? 0) > 0)) throw new UserError('give either --old PATH... --new PATH..., or --base REF -f PATH..., not both', 2);
      if (byPaths && (!opts.old?.length || !opts.new?.length)) throw new UserError('--old and --new both need at least one PATH', 2);
      if (byGit && !opts.file?.length) throw new UserError('--base REF needs -f PATH... (the paths to compare)', 2);
      if (!byPaths && !byGit) throw new UserError('nothing to compare: give --old PATH... --new PATH..., or --base REF -f PATH...', 2);
      const podCidr = podCidrOption(opts.podCidr);
      const namespace = namespaceOption(opts.namespace);
      const extraPorts = portsOption(opts.ports) ?? [];
      const maxCells = opts.maxCells === undefined ? DEFAULT_MAX_CELLS : Number(opts.maxCells.replace(/_/g, ''));
      if (!Number.isSafeInteger(maxCells) || maxCells < 1) throw new UserError(`--max-cells ${JSON.stringify(opts.maxCells)}: expected a positive whole number`, 2);

      const before = byGit ? await loadSide(`old (${opts.base})`, opts.file!, namespace, gitReader(opts.base!)) : await loadSide('old', opts.old!, namespace);
      const after = await loadSide('new', byGit ? opts.file! : opts.new!, namespace);

      const ports = opts.declaredPorts ? mergePorts(declaredPorts(before.store), declaredPorts(after.store), extraPorts) : mergePorts(extraPorts);
      if (!opts.declaredPorts && ports.length === 0) throw new UserError('--no-declared-ports needs --ports 80/TCP,...', 2);
      if (ports.length === 0) process.stderr.write('note: no ports to compare (neither side declares a container port; give --ports 80/TCP,...): only endpoints are compared\n');
      const scope: MatrixScope = {};
      const from = patternsOption('--from', opts.from, namespace);
      const to = patternsOption('--to', opts.to, namespace);
      if (from) scope.from = from;
      if (to) scope.to = to;
      const size = matrixSize(after.store, scope);
      const cells = size.rows * size.cols * ports.length;
      if (cells > maxCells) {
        const f = (n: number) => n.toLocaleString('en-US');
        throw new UserError(`the comparison would cover ${f(cells)} cells (${f(size.rows)} × ${f(size.cols)} endpoints × ${ports.length} ports), over --max-cells ${f(maxCells)}: narrow it with --from ns/* or --to ns/*, or compare only some ports with --no-declared-ports --ports LIST`, 2);
      }
      const planBefore = analysisPlan(before.store, podCidr);
      const planAfter = analysisPlan(after.store, podCidr);
      const d = diffPlans(planBefore, planAfter, ports, size.filters);
      if (format === 'json') writeOut(JSON.stringify(d, null, 2));
      else if (format === 'md') writeOut(diffMarkdown(d));
      else if (format === 'html') writeOut(diffHtml(planBefore, planAfter, ports, d));
      else writeOut(diffTable(d, { color: process.stdout.isTTY === true }));
      if (failOn !== undefined && failsOn(d, failOn)) process.exitCode = 1;
    });
}
