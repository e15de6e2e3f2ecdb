// An in-process agent for tests: informers against a (fake) API server, the dataplane inside a
// network namespace made by the test, and an optional one-shot iptables-restore failure.
import pino from 'pino';
import { writeFileSync } from 'node:fs';
import { Agent } from '../../src/controller/agent.js';
import { buildConfig } from '../../src/controller/flags.js';
import { informerSource } from '../../src/controller/informer-source.js';
import { Dataplane } from '../../src/dataplane/apply.js';
import { makeRunner, type Runner } from '../../src/dataplane/exec.js';
import { render, type Desired } from '../../src/dataplane/render.js';

const logger = pino({ level: 'silent' });

export const renderOptions = (node: string) => ({ node, serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] as [number, number], defaultDeny: true });

export function writeKubeconfig(path: string, server: string): void {
  writeFileSync(path, JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'fake', cluster: { server, 'insecure-skip-tls-verify': true } }], users: [{ name: 'u', user: { token: 'x' } }], contexts: [{ name: 'c', context: { cluster: 'fake', user: 'u' } }], 'current-context': 'c' }));
}

/** Starts an agent for `node` enforcing inside `ns`; when `fail.armed`, the next iptables-restore fails once. */
export async function startApiAgent(node: string, ns: string, kubeconfig: string, fail: { armed: boolean }, opts: { crdRecheckMs?: number } = {}): Promise<Agent<Desired>> {
  const cfg = buildConfig(['--kubeconfig', kubeconfig, '--hostname-override', node, '--health-port', '0', '--iptables-sync-period', '2s', '--cache-sync-timeout', '10s'], {});
  const base = makeRunner(ns);
  const runner: Runner = async (cmd, args, input) => {
    if (fail.armed && cmd.includes('iptables') && cmd.includes('restore')) {
      fail.armed = false;
      // A transient failure (no failing line to attribute): retried with backoff, nothing left out.
      return { code: 4, stdout: '', stderr: 'iptables-restore: Resource temporarily unavailable (injected)' };
    }
    return base(cmd, args, input);
  };
  const agent = new Agent<Desired>(
    cfg,
    {
      createDataplane: async (families) => {
        const dp = new Dataplane({ families, backend: 'nft', runner, logger });
        await dp.init();
        return dp;
      },
      render: (plan, family) => render(plan, { ...renderOptions(node), family }),
      createInformerSource: (store, metrics) => informerSource(store, { kubeconfig, logger, metrics, backoff: { initialMs: 50, maxMs: 500 }, ...opts }),
    },
    logger,
  );
  await agent.start();
  return agent;
}
