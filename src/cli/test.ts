import type { Command } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import { collect, loadInput, UserError, writeOut } from './common.js';
import { ExpectationError, parseExpectations, type Assertion } from '../sim/expectations.js';
import { checkAssertions, formatTestReport } from '../sim/assertions.js';
import { junitXml } from '../report/junit.js';
import { analysisPlan, namespaceOption, podCidrOption, POD_CIDR_HELP, printInputNotes } from './analysis.js';
import { outputFormat } from './matrix.js';

interface TestOpts {
  file?: string[];
  expect?: string[];
  junit?: string;
  podCidr?: string[];
  namespace?: string;
  output: string;
  verbose?: boolean;
}

/** Unusable input is exit 2 for `podwall test`: 1 means an assertion failed. */
function unusable<T>(p: Promise<T>): Promise<T> {
  return p.catch((e: unknown) => {
    if (e instanceof UserError) throw new UserError(e.message, 2);
    throw e;
  });
}

export function register(program: Command): void {
  program
    .command('test')
    .description('check expectations about reachability (assertions) against manifests, like code: exit 1 when one fails')
    .option('-f, --file <path>', 'manifest file or folder (repeatable; - for standard input)', collect)
    .option('--expect <file>', 'expectations file (repeatable); see docs/testing.md', collect)
    .option('--junit <file>', 'also write the results as JUnit XML for CI')
    .option('--pod-cidr <cidr>', POD_CIDR_HELP, collect)
    .option('-n, --namespace <ns>', 'as kubectl: objects without a namespace go to NS; bare names in expectations are in NS')
    .option('-o, --output <format>', 'text | json', 'text')
    .option('-v, --verbose', 'report what was read and skipped')
    .action(async (opts: TestOpts) => {
      const format = outputFormat(opts.output, ['text', 'json']);
      if (!opts.expect || opts.expect.length === 0) throw new UserError('no expectations: give --expect FILE (repeatable)', 2);
      const podCidr = podCidrOption(opts.podCidr);
      const namespace = namespaceOption(opts.namespace);
      const assertions: Assertion[] = [];
      for (const f of opts.expect) {
        let text: string;
        try {
          text = await readFile(f, 'utf8');
        } catch (e) {
          throw new UserError(`${f}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 2);
        }
        try {
          assertions.push(...parseExpectations(text, f, namespace));
        } catch (e) {
          if (e instanceof ExpectationError) throw new UserError(e.message, 2);
          throw e;
        }
      }
      const started = performance.now();
      const { store } = await unusable(loadInput({ ...opts, ...(namespace !== undefined ? { namespace } : {}) }));
      printInputNotes(store);
      const report = checkAssertions(analysisPlan(store, podCidr), assertions);
      if (opts.junit) {
        try {
          await writeFile(opts.junit, junitXml(report, { timeSeconds: (performance.now() - started) / 1000 }));
        } catch (e) {
          throw new UserError(`--junit ${opts.junit}: cannot write: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 2);
        }
      }
      if (format === 'json') {
        writeOut(
          JSON.stringify(
            {
              passed: report.passed,
              failed: report.failed,
              assertions: report.results.map((r) => ({
                file: r.assertion.file,
                index: r.assertion.index,
                name: r.assertion.name,
                from: r.assertion.from.text,
                to: r.assertion.to.text,
                ports: r.assertion.ports.map((p) => `${p.lo === p.hi ? p.lo : `${p.lo}-${p.hi}`}/${p.protocol}`),
                allow: r.assertion.allow,
                passed: r.passed,
                checked: r.checked,
                failed: r.failed,
                ...(r.problem ? { problem: r.problem } : {}),
                failures: r.failures,
              })),
            },
            null,
            2,
          ),
        );
      } else writeOut(formatTestReport(report));
      if (report.failed > 0) process.exitCode = 1;
    });
}
