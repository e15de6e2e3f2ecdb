// `podwall run [flags]` / `podwall --run-firewall [flags]`: the node agent. Flags are kube-router's
// (parsed by controller/flags.ts, not commander, so `--flag=true|false` spellings work).
import pino from 'pino';
import { buildConfig, FlagError, flagsHelp, renderOptionsOf, type RunConfig } from '../controller/flags.js';
import { Agent, type Source } from '../controller/agent.js';
import type { ClusterStore } from '../cluster/store.js';
import { UserError } from './common.js';
import { informerSource } from '../controller/informer-source.js';
import { tuneHeapForAgent } from '../controller/heap.js';

export async function runCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(flagsHelp());
    return 0;
  }
  let cfg: RunConfig;
  try {
    cfg = buildConfig(argv.filter((a) => a !== 'run'));
  } catch (e) {
    if (e instanceof FlagError) throw new UserError(e.message, 2);
    throw e;
  }
  tuneHeapForAgent();
  const logger = pino({ level: cfg.logLevel, base: { node: cfg.nodeName }, timestamp: pino.stdTimeFunctions.isoTime });
  const { Dataplane } = await import('../dataplane/apply.js');
  const { render } = await import('../dataplane/render.js');
  const families = [...(cfg.enableIPv4 ? ['ipv4' as const] : []), ...(cfg.enableIPv6 ? ['ipv6' as const] : [])];

  if (cfg.cleanupConfig) {
    const dp = new Dataplane({ backend: cfg.backend, families, logger });
    await dp.init();
    await dp.cleanup();
    logger.info('removed every podwall/kube-router firewall chain, jump and set');
    return 0;
  }

  const agent = new Agent(
    cfg,
    {
      createDataplane: async (fams) => {
        const dp = new Dataplane({ backend: cfg.backend, families: fams, logger });
        await dp.init();
        return dp;
      },
      render: (plan, family) => render(plan, renderOptionsOf(cfg, family)),
      createInformerSource: (store: ClusterStore, metrics) => informerSource(store, { ...(cfg.kubeconfig ? { kubeconfig: cfg.kubeconfig } : {}), ...(cfg.master ? { master: cfg.master } : {}), logger, metrics }),
    },
    logger,
  );

  let exiting = false;
  const shutdown = (signal: string) => {
    if (exiting) return;
    exiting = true;
    logger.info({ signal }, 'stopping; the rules stay in place');
    // Exit within 2 s whatever happens.
    setTimeout(() => process.exit(0), 1800).unref();
    agent.stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('unhandledRejection', (e) => logger.error({ err: (e as Error)?.message ?? String(e) }, 'unhandled rejection (ignored)'));
  // A bug that escapes everything: one line in the log and a non-zero exit (the DaemonSet restarts
  // the agent; the rules in the kernel stay in place meanwhile). Never a silent exit.
  process.on('uncaughtException', (e) => {
    logger.fatal({ err: e.message, stack: e.stack }, 'internal error; exiting (the rules stay in place)');
    process.exit(70);
  });
  // The agent runs until SIGTERM/SIGINT. Its timers and watchers come and go (a watched directory
  // can vanish, the health port can be off), so this keeps the process alive on its own.
  const keepAlive = setInterval(() => {}, 1 << 30);
  process.once('exit', (code) => {
    clearInterval(keepAlive);
    if (!exiting) logger.error({ code }, 'exiting without a signal');
  });

  try {
    await agent.start();
  } catch (e) {
    // A fatal startup error: a log line, a non-zero exit, nothing left running.
    logger.error({ err: (e as Error).message }, 'cannot start');
    exiting = true;
    clearInterval(keepAlive);
    await agent.stop().catch(() => {});
    throw new UserError((e as Error).message);
  }
  // Runs until a signal.
  await new Promise(() => {});
  return 0;
}
