import test from 'ava';
import pino from 'pino';
import { ClusterStore } from '../../src/cluster/store.js';
import { Reconciler, type ApplyOutcome, type DataplanePort } from '../../src/controller/reconciler.js';
import { Metrics } from '../../src/controller/metrics.js';
import type { Plan } from '../../src/policy/plan.js';

const logger = pino({ level: 'silent' });
const outcome: ApplyOutcome = { ipsetLines: 1, iptablesLines: 2, chains: 3, sets: 4 };

/** A dataplane whose applies are released by hand, to observe coalescing. */
class FakeDataplane implements DataplanePort<Plan> {
  applied: Plan[] = [];
  inFlight = 0;
  maxInFlight = 0;
  failNext = 0;
  gate: (() => void)[] = [];
  hold = false;
  async apply(d: Plan[]) {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    if (this.hold) await new Promise<void>((r) => this.gate.push(r));
    this.inFlight--;
    if (this.failNext > 0) {
      this.failNext--;
      throw Object.assign(new Error('iptables-restore: line 3 failed'), { line: '-A X -j Y' });
    }
    this.applied.push(d[0]!);
    return outcome;
  }
  async resync(d: Plan[]) {
    return { ...(await this.apply(d)), drift: 2 };
  }
  release() {
    this.gate.splice(0).forEach((r) => r());
  }
}

const ns = (name: string) => ({ kind: 'Namespace' as const, name, labels: {} });
const pod = (name: string, ip: string) => ({ kind: 'Pod' as const, namespace: 'x', name, labels: {}, nodeName: 'n1', hostNetwork: false, phase: 'Running' as const, ips: [ip], ports: [] });

function setup(backoff = { initialMs: 5, maxMs: 20 }) {
  const store = new ClusterStore();
  const dp = new FakeDataplane();
  const metrics = new Metrics();
  const r = new Reconciler({ store, node: 'n1', render: (p) => [p], dataplane: dp, metrics, logger, syncPeriodMs: 60_000, backoff });
  return { store, dp, metrics, r };
}

test('a burst of changes coalesces: one reconcile in flight, at most one pending, ends at the last version', async (t) => {
  const { store, dp, r } = setup();
  dp.hold = true;
  store.upsert(ns('x'));
  for (let i = 0; i < 50; i++) store.upsert(pod(`p${i}`, `10.0.0.${i + 1}`));
  // First reconcile started with the namespace only; everything else is pending behind it.
  while (dp.gate.length === 0) await new Promise((res) => setImmediate(res));
  dp.release();
  const done = r.waitForVersion(store.version);
  while (r.status.appliedVersion < store.version) {
    dp.release();
    await new Promise((res) => setImmediate(res));
  }
  await done;
  t.is(dp.maxInFlight, 1);
  t.true(dp.applied.length <= 3, `applies: ${dp.applied.length}`);
  t.is(dp.applied.at(-1)!.pods.length, 50);
});

test('a failed apply retries with backoff, keeps reporting the error, then converges', async (t) => {
  const { store, dp, r, metrics } = setup();
  dp.failNext = 2;
  store.upsert(ns('x'));
  store.upsert(pod('a', '10.0.0.1'));
  await r.waitForVersion(store.version);
  t.is(dp.applied.at(-1)!.pods.length, 1);
  t.is(r.status.lastError, undefined);
  const errors = (await metrics.registry.getSingleMetric('podwall_sync_errors_total')!.get()).values;
  t.is(errors.reduce((n, v) => n + v.value, 0), 2);
});

test('resync reports drift repairs; latency histogram sees every change', async (t) => {
  const { store, r, metrics } = setup();
  store.upsert(ns('x'));
  await r.waitForVersion(store.version);
  r.kick('resync');
  await r.idle();
  const drift = (await metrics.registry.getSingleMetric('podwall_drift_repairs_total')!.get()).values[0]!.value;
  t.is(drift, 2);
  const lat = await metrics.registry.getSingleMetric('podwall_event_to_enforcement_seconds')!.get();
  const count = lat.values.find((v) => (v as { metricName?: string }).metricName === 'podwall_event_to_enforcement_seconds_count' && v.labels.kind === 'Namespace');
  t.is(count?.value, 1);
  const text = await metrics.registry.metrics();
  for (const name of ['kube_router_controller_iptables_sync_time', 'kube_router_controller_policy_chains', 'kube_router_controller_policy_ipsets', 'kube_router_controller_iptables_v4_restore_time']) t.true(text.includes(name), name);
});
