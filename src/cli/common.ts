// Helpers shared by the commands: input loading with findings, one-line errors, output.
import { loadManifests, type LoadResult } from '../cluster/manifests.js';
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

/**
 * Loads -f inputs. Errors are printed (one line each) and make the command fail unless
 * `allowErrors`; warnings are printed only with `printWarnings`.
 */
export async function loadInput(opts: InputOptions, how: { allowErrors?: boolean; printWarnings?: boolean } = {}): Promise<LoadResult> {
  if (!opts.file || opts.file.length === 0) throw new UserError('no input: give manifests with -f FILE|DIR (repeatable)', 2);
  const r = await loadManifests(opts.file, opts.namespace !== undefined ? { defaultNamespace: opts.namespace } : {});
  for (const f of r.findings) {
    if (f.severity === 'error' || how.printWarnings) process.stderr.write(`${formatFinding(f)}\n`);
  }
  if (opts.verbose) {
    const counts = `${r.store.namespaces.size} namespaces, ${r.store.pods.size} pods, ${r.store.policies.size} policies, ${r.store.nodes.size} nodes, ${r.store.services.size} services`;
    process.stderr.write(`read ${r.files.length} file(s): ${counts}\n`);
    for (const [kind, n] of Object.entries(r.skipped).sort()) process.stderr.write(`skipped ${n} ${kind}\n`);
  }
  if (r.files.length === 0 && !hasErrors(r.findings)) throw new UserError(`no manifest files (*.yaml, *.yml, *.json) found in ${opts.file.join(', ')}`);
  if (hasErrors(r.findings) && !how.allowErrors) {
    const n = r.findings.filter((f) => f.severity === 'error').length;
    throw new UserError(`${n} error(s) in the input; fix them (podwall lint lists them all)`);
  }
  return r;
}

export function writeOut(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}
