// Helpers shared by the commands: input loading with findings, one-line errors, output.
import { describeLoad, loadManifests, type LoadResult } from '../cluster/manifests.js';
import { formatFinding, hasErrors } from '../cluster/findings.js';

/** A problem the user can fix: printed as one line, exit code as given. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export interface InputOptions {
  file?: string[];
  verbose?: boolean;
  /** kubectl's -n: where objects without a namespace go. */
  namespace?: string;
}

/** Warnings about what was read (skipped documents, YAML 1.1 readings): printed by every command, not only lint. */
const INPUT_WARNINGS = /^(not-an-object|yaml11-|duplicate-|foreign-api-version)/;

/**
 * Loads -f inputs (`-` is standard input). Errors are printed (one line each, on stderr) and make
 * the command fail unless `allowErrors`; warnings about the input itself are printed too, other
 * warnings only with `printWarnings`. `quiet`: print nothing (the caller prints the findings, once).
 */
export async function loadInput(opts: InputOptions, how: { allowErrors?: boolean; printWarnings?: boolean; quiet?: boolean } = {}): Promise<LoadResult> {
  if (!opts.file || opts.file.length === 0) throw new UserError('no input: give manifests with -f FILE|DIR (repeatable; - reads standard input)', 2);
  const r = await loadManifests(opts.file, opts.namespace !== undefined ? { defaultNamespace: opts.namespace } : {});
  if (!how.quiet) {
    for (const f of r.findings) {
      if (f.severity === 'error' || how.printWarnings || INPUT_WARNINGS.test(f.code)) process.stderr.write(`${formatFinding(f)}\n`);
    }
  }
  if (opts.verbose) process.stderr.write(`${describeLoad(r.summary)}\n`);
  if (r.files.length === 0 && !hasErrors(r.findings)) throw new UserError(`no manifest files (*.yaml, *.yml, *.json) found in ${opts.file.join(', ')}`);
  if (hasErrors(r.findings) && !how.allowErrors) {
    const n = r.findings.filter((f) => f.severity === 'error').length;
    throw new UserError(`${n} error(s) in the input; fix them (podwall lint lists them all)`);
  }
  return r;
}

/** Whether the input gave podwall nothing at all to read (every object skipped, rejected or absent). */
export function nothingRead(r: LoadResult): boolean {
  return Object.keys(r.summary.objects).length === 0;
}

/**
 * The one line a command prints when the input yields nothing to analyse: what was read and what
 * was skipped (`nothing to analyse: read 2 files (5 documents): no object podwall reads; skipped: 3 ConfigMaps`).
 */
export function nothingToAnalyse(r: LoadResult, what = 'nothing to analyse'): string {
  return `${what}: ${describeLoad(r.summary)}`;
}

export function writeOut(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}
