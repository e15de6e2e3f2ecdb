// Denial metrics from the kernel's rule counters: deltas between readings attributed through the Plan
// to namespaces and policies (never pods or IPs), counter resets, audited policies, fail-closed
// denials, what the rate limit kept out of the log, and reading at most once per interval.
import test from 'ava';
import { Metrics } from '../../src/controller/metrics.js';
import { DenialCounters } from '../../src/controller/denials.js';
import { counterKey, logCounters, type LogCounter } from '../../src/dataplane/counters.js';
import { cnpRuleRef, podChainName } from '../../src/dataplane/names.js';
import type { NflogTag } from '../../src/dataplane/nflog.js';
import { parseIptablesSave } from '../../src/iptables/parse.js';
import { compile } from '../../src/policy/compile.js';
import { conformanceObjects, policy, storeOf } from '../support/conformance.js';

const plan = compile(
  storeOf([
    ...conformanceObjects(),
    policy('y', 'deny-all', { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Ingress'] }),
    policy('y', 'allow-web', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'a' } } }] }] }),
    { ...policy('z', 'staged', { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Ingress'] }), metadata: { name: 'staged', namespace: 'z', annotations: { 'podwall.io/enforcement': 'audit' } } },
  ]),
  { node: 'node-1' },
);
const ref = (ns: string, pod: string) => podChainName(ns, pod).slice('KUBE-POD-FW-'.length);
const counter = (tag: NflogTag, total: number, logged: number): LogCounter => ({ tag, key: counterKey(tag), total: BigInt(total), logged: BigInt(logged), limit: { rate: '10/min', burst: 10 } });
const deny = (total: number, logged: number) => counter({ kind: 'deny', direction: 'ingress', ref: ref('y', 'b'), hint: 'y/b' }, total, logged);
const audit = (total: number, logged: number) => counter({ kind: 'audit', direction: 'ingress', ref: ref('z', 'b'), hint: 'z/b' }, total, logged);
const unprog = (total: number) => counter({ kind: 'unprogrammed', direction: 'egress', hint: '10.244.1.0/24' }, total, Math.min(total, 10));

async function values(m: Metrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const metric of await m.registry.getMetricsAsJSON()) {
    if (!/denied|would_deny|suppressed/.test(metric.name)) continue;
    for (const v of (metric as { values: { labels: Record<string, string>; value: number }[] }).values) {
      out[`${metric.name}{${Object.entries(v.labels).map(([k, x]) => `${k}=${x}`).join(',')}}`] = v.value;
    }
  }
  return out;
}

test('deltas between readings, attributed to namespaces and policies; the first reading is the baseline', async (t) => {
  const m = new Metrics();
  let reads = [deny(3, 3), audit(2, 2), unprog(1)];
  const d = new DenialCounters(m, async () => reads, () => plan, 0);
  m.collectDenials = () => d.refresh();
  t.deepEqual(await values(m), {}, 'what the kernel counted before the agent started is not reported');
  reads = [deny(18, 10), audit(5, 5), unprog(4)];
  t.deepEqual(await values(m), {
    'podwall_denied_packets_total{namespace=y,direction=ingress}': 15,
    'podwall_policy_denied_packets_total{namespace=y,policy=allow-web,direction=ingress}': 15,
    'podwall_policy_denied_packets_total{namespace=y,policy=deny-all,direction=ingress}': 15,
    'podwall_audit_would_deny_packets_total{namespace=z,direction=ingress}': 3,
    'podwall_policy_audit_would_deny_packets_total{namespace=z,policy=staged,direction=ingress}': 3,
    'podwall_unprogrammed_denied_packets_total{direction=egress}': 3,
    'podwall_nflog_suppressed_packets_total{kind=deny}': 8,
  });
  // y/b's chain rewritten (counters from 0 again): its new count is the increase.
  reads = [deny(2, 2), audit(5, 5), unprog(4)];
  const v = await values(m);
  t.is(v['podwall_denied_packets_total{namespace=y,direction=ingress}'], 17);
  t.is(v['podwall_audit_would_deny_packets_total{namespace=z,direction=ingress}'], 3);
  for (const k of Object.keys(v)) t.false(/pod=|ip=|10\.244|y\/b/.test(k), `no pod or IP label: ${k}`);
});

test('a pod gone from the Plan still counts for its namespace (from the prefix hint)', async (t) => {
  const m = new Metrics();
  let reads = [counter({ kind: 'deny', direction: 'egress', ref: 'AAAAAAAAAAAAAAAA', hint: 'gone/pod' }, 0, 0)];
  const d = new DenialCounters(m, async () => reads, () => plan, 0);
  await d.refresh();
  reads = [counter({ kind: 'deny', direction: 'egress', ref: 'AAAAAAAAAAAAAAAA', hint: 'gone/pod' }, 4, 4)];
  await d.refresh();
  t.deepEqual(await values(m), { 'podwall_denied_packets_total{namespace=gone,direction=egress}': 4 });
});

test('ClusterNetworkPolicy Deny rules count per policy, tier and direction (rules of one policy summed; a policy gone is tier unknown)', async (t) => {
  const guard = {
    apiVersion: 'policy.networking.k8s.io/v1alpha2',
    kind: 'ClusterNetworkPolicy',
    metadata: { name: 'guard' },
    spec: { tier: 'Admin', priority: 10, subject: { namespaces: { matchLabels: { ns: 'x' } } }, ingress: [{ name: 'a', action: 'Deny', from: [{ namespaces: { matchLabels: { ns: 'y' } } }] }, { name: 'b', action: 'Deny', from: [{ namespaces: { matchLabels: { ns: 'z' } } }] }] },
  };
  const cplan = compile(storeOf([...conformanceObjects(), guard]), { node: 'node-1' });
  const rule = (i: number, total: number) => counter({ kind: 'cnp', direction: 'ingress', ref: cnpRuleRef(`cnp:guard/ingress/${i}`), hint: 'cnp/guard' }, total, total);
  const gone = (total: number) => counter({ kind: 'cnp', direction: 'egress', ref: 'AAAAAAAAAAAAAAAA', hint: 'cnp/old' }, total, total);
  const m = new Metrics();
  let reads = [rule(0, 1), rule(1, 1), gone(0)];
  const d = new DenialCounters(m, async () => reads, () => cplan, 0);
  await d.refresh();
  reads = [rule(0, 4), rule(1, 3), gone(2)];
  await d.refresh();
  t.deepEqual(await values(m), {
    'podwall_cluster_policy_denied_packets_total{policy=guard,tier=Admin,direction=ingress}': 5,
    'podwall_cluster_policy_denied_packets_total{policy=old,tier=unknown,direction=egress}': 2,
  });
});

test('read at most once per interval; concurrent scrapes share one reading; a failed reading never fails a scrape', async (t) => {
  const m = new Metrics();
  let n = 0;
  const d = new DenialCounters(
    m,
    async () => {
      n++;
      return [deny(n, n)];
    },
    () => plan,
    60_000,
  );
  await Promise.all([d.refresh(), d.refresh(), d.refresh()]);
  t.is(n, 1);
  await d.refresh();
  t.is(n, 1, 'within the interval: not read again');
  const later = new DenialCounters(m, async () => {
    throw new Error('iptables-save: gone');
  }, () => plan, 0);
  await t.notThrowsAsync(() => later.refresh());
  t.regex(later.lastError!, /gone/);
});

test('counters are read from the NFLOG rule and the rule after it (iptables-save -c)', (t) => {
  const save = `*filter
:KUBE-POD-FW-X - [0:0]
[7:420] -A KUBE-POD-FW-X -d 10.244.1.21/32 -m mark ! --mark 0x10000/0x10000 -m limit --limit 10/min --limit-burst 10 -m comment --comment "y/b: log ingress denied" -j NFLOG --nflog-prefix "podwall/1 deny in ${ref('y', 'b')} y/b" --nflog-group 100 --nflog-threshold 1
[19:1140] -A KUBE-POD-FW-X -d 10.244.1.21/32 -m mark ! --mark 0x10000/0x10000 -m comment --comment "y/b: reject ingress no policy allows" -j REJECT --reject-with icmp-port-unreachable
[3:180] -A KUBE-POD-FW-X -d 10.244.1.31/32 -m mark ! --mark 0x10000/0x10000 -m limit --limit 5/sec --limit-burst 7 -m comment --comment "z/b: log" -j NFLOG --nflog-prefix "podwall/1 audit in ${ref('z', 'b')} z/b" --nflog-group 100 --nflog-threshold 1
[4:240] -A KUBE-POD-FW-X -d 10.244.1.31/32 -m mark ! --mark 0x10000/0x10000 -m comment --comment "z/b: count"
[9:540] -A KUBE-POD-FW-X -j NFLOG --nflog-group 100
[2:120] -A KUBE-POD-FW-X -m comment --comment "someone else's" -j NFLOG --nflog-prefix "podwall/1 deny out ${ref('x', 'a')} x/a" --nflog-group 100
[1:60] -A KUBE-POD-FW-X -j ACCEPT
COMMIT
`;
  const table = parseIptablesSave(save).tables[0]!;
  const c = logCounters(table);
  t.deepEqual(
    c.map((x) => [x.key, x.logged, x.total, x.limit]),
    [
      [`deny/ingress/${ref('y', 'b')}`, 7n, 19n, { rate: '10/min', burst: 10 }],
      [`audit/ingress/${ref('z', 'b')}`, 3n, 4n, { rate: '5/sec', burst: 7 }],
      // Not followed by its REJECT: counted as logged only.
      [`deny/egress/${ref('x', 'a')}`, 2n, 2n, { burst: 1 }],
    ],
  );
});
