#!/usr/bin/env node
// podwall command line: one file per command; this file wires them and turns errors into one line.
import { Command, CommanderError } from 'commander';
import { UserError } from './common.js';
import { register as matrix } from './matrix.js';
import { register as explain } from './explain.js';
import { register as lint } from './lint.js';
import { register as demo } from './demo.js';
import { register as trace } from './trace.js';
import { register as dataplane } from './dataplane.js';
import { register as lab } from './lab.js';
import { register as drops } from './drops.js';
import { register as diff } from './diff.js';
import { register as testCommand } from './test.js';

const COMMANDS: ((p: Command) => void)[] = [matrix, explain, lint, diff, testCommand, dataplane, trace, drops, lab, demo];

export function buildProgram(): Command {
  const program = new Command('podwall')
    .description('Kubernetes NetworkPolicy firewall (kube-router compatible) and reachability analysis')
    .version(process.env.npm_package_version ?? '0.1.0')
    .showHelpAfterError(false)
    .exitOverride();
  for (const c of COMMANDS) c(program);
  program.command('run').description('run the node agent (kube-router --run-firewall drop-in); `podwall run --help` lists its flags');
  for (const c of program.commands) c.exitOverride();
  return program;
}

/** kube-router spelling: `podwall --run-firewall [flags]` is `podwall run [flags]`. */
export function rewriteArgv(args: string[]): string[] {
  if (args.some((a) => a === '--run-firewall' || a.startsWith('--run-firewall='))) return ['run', ...args];
  return args;
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  const program = buildProgram();
  try {
    const args = rewriteArgv(argv);
    // The agent takes kube-router's flag syntax, parsed by its own parser.
    if (args[0] === 'run') {
      const { runCommand } = await import('./run.js');
      return await runCommand(args.slice(1));
    }
    await program.parseAsync(args, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are "errors" with exit code 0; commander already printed its message.
      return e.exitCode;
    }
    if (e instanceof UserError) {
      process.stderr.write(`podwall: ${e.message}\n`);
      return e.exitCode;
    }
    const err = e as Error;
    process.stderr.write(`podwall: internal error: ${err?.message ?? String(e)}${process.env.PODWALL_DEBUG ? `\n${err?.stack}` : ' (set PODWALL_DEBUG=1 for details)'}\n`);
    return 70;
  }
}

const isMain = process.argv[1] !== undefined && /(?:bin\/podwall(?:\.js)?|cli\/main\.js)$/.test(process.argv[1]);
if (isMain) {
  main().then((code) => {
    process.exitCode = code;
  });
}
