import type { Command } from 'commander';
import { collect, loadInput, writeOut } from './common.js';
import { formatFinding, hasErrors } from '../cluster/findings.js';
import { lint } from '../policy/lint.js';
import { outputFormat } from './matrix.js';

export function register(program: Command): void {
  program
    .command('lint')
    .description('report invalid objects (errors, exit 1) and what reviewers miss (warnings)')
    .option('-f, --file <path>', 'manifest file or folder (repeatable)', collect)
    .option('-o, --output <format>', 'text | json', 'text')
    .option('-v, --verbose', 'report what was read and skipped')
    .action(async (opts: { file?: string[]; output: string; verbose?: boolean }) => {
      const format = outputFormat(opts.output, ['text', 'json']);
      const r = await loadInput({ ...(opts.file ? { file: opts.file } : {}), ...(opts.verbose ? { verbose: true } : {}) }, { allowErrors: true });
      const findings = [...r.findings, ...lint(r.store)];
      if (format === 'json') writeOut(JSON.stringify({ findings }, null, 2));
      else {
        // Errors were already printed on stderr by loadInput; print everything on stdout too.
        for (const f of findings) writeOut(formatFinding(f));
        const e = findings.filter((f) => f.severity === 'error').length;
        writeOut(`${e} error(s), ${findings.length - e} warning(s)`);
      }
      if (hasErrors(findings)) process.exitCode = 1;
    });
}
