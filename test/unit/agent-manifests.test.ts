// The agent with --manifests, on a dataplane that only records: /healthz and /status report an
// unavailable directory and rejected objects (every time, until fixed), the last good state is kept,
// and the agent's first sync waits until the directory can be read whole.
import test from 'ava';
import pino from 'pino';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../src/controller/agent.js';
import { buildConfig } from '../../src/controller/flags.js';
import type { Plan } from '../../src/policy/plan.js';

const root = mkdtempSync(join(tmpdir(), 'podwall-agent-manifests-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));
const logger = pino({ level: 'silent' });
const np = (name: string, spec = '{podSelector: {}, policyTypes: [Ingress]}') => `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ${name}, namespace: x}\nspec: ${spec}\n`;

async function until(pred: () => boolean, ms = 10_000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function agent(dir: string) {
  const cfg = buildConfig(['--manifests', dir, '--hostname-override', 'n1', '--health-port', '0', '--manifests-settle', '0', '--manifests-state-file', join(root, `${Math.random()}.json`), '--cache-sync-timeout', '1s'], {});
  const applied: Plan[] = [];
  const a = new Agent<Plan>(
    cfg,
    {
      createDataplane: async () => ({
        apply: async (d: Plan[]) => {
          applied.push(d[0]!);
          return { ipsetLines: 1, iptablesLines: 1, chains: 0, sets: 0 };
        },
        resync: async () => ({ ipsetLines: 0, iptablesLines: 0, chains: 0, sets: 0, drift: 0 }),
        cleanup: async () => {},
      }),
      render: (plan) => plan,
    },
    logger,
  );
  return { a, applied };
}

test('healthz: rejected objects and an unavailable directory are reported; the last good state stays', async (t) => {
  const dir = join(root, 'd1');
  mkdirSync(dir);
  writeFileSync(join(dir, 'a.yaml'), np('deny'));
  const { a, applied } = agent(dir);
  t.teardown(() => a.stop());
  await a.start();
  await until(() => a.status().appliedVersion === a.status().storeVersion && applied.length > 0);
  t.deepEqual(a.health(), { ok: true, reason: `applied version ${a.status().appliedVersion}` });

  writeFileSync(join(dir, 'a.yaml'), np('deny', '{podselector: {}, ingress: [{}]}'));
  await until(() => !a.health().ok);
  t.regex(a.health().reason, /1 error\(s\) in the manifests \(1 object\(s\) rejected: the last accepted version of each stays in force\), first: .*a\.yaml: NetworkPolicy x\/deny: spec\.podselector: unknown field/);
  t.deepEqual(a.status().source?.rejected, ['NetworkPolicy x/deny']);
  t.deepEqual(a.store.policies.get('x/deny')?.ingress, []);

  rmSync(dir, { recursive: true });
  await until(() => a.status().source?.available === false);
  t.regex(a.health().reason, /^manifests unavailable since .* \(.*the directory is gone\): the last good state stays enforced$/);
  t.true(a.store.policies.has('x/deny'));

  mkdirSync(dir);
  writeFileSync(join(dir, 'a.yaml'), np('deny'));
  await until(() => a.health().ok);
});

test('a directory missing at start: nothing applied, healthz says why, the first sync once it appears', async (t) => {
  const dir = join(root, 'd2');
  const { a, applied } = agent(dir);
  t.teardown(() => a.stop());
  const started = a.start();
  await until(() => a.status().source?.available === false);
  t.false(a.status().synced);
  t.regex(a.health().reason, /manifests unavailable .*the directory is gone.*: nothing applied yet; the rules in the kernel stay/);
  t.is(applied.length, 0);
  mkdirSync(dir);
  writeFileSync(join(dir, 'a.yaml'), np('deny'));
  await started;
  await until(() => applied.length > 0);
  t.true(a.store.policies.has('x/deny'));
});
