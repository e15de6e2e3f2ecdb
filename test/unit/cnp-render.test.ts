// ClusterNetworkPolicy tier chains in the rendered dataplane: which pods get chains, where the tier
// jumps sit in a pod chain, what each action renders to, stable names, shared chains, small diffs.
import test from 'ava';
import { conformanceObjects, policy, storeOf, type Raw } from '../support/conformance.js';
import { compile } from '../../src/policy/compile.js';
import { render, type Desired } from '../../src/dataplane/render.js';
import { cnpRuleRef, podChainName, tierChainName } from '../../src/dataplane/names.js';
import { emptyFamilyState, familyStateAfter, planIpset, planIptables, setStateAfter } from '../../src/dataplane/diff.js';
import { cnpDenyPrefix } from '../../src/dataplane/render-cnp.js';
import type { IptChain } from '../../src/iptables/model.js';

type Rule = Record<string, unknown>;
function cnp(name: string, tier: 'Admin' | 'Baseline', priority: number, subject: Rule, rules: { ingress?: Rule[]; egress?: Rule[] }): Raw {
  return { apiVersion: 'policy.networking.k8s.io/v1alpha2', kind: 'ClusterNetworkPolicy', metadata: { name }, spec: { tier, priority, subject, ...rules } };
}
const ns = (n: string) => ({ namespaces: { matchLabels: { ns: n } } });

function renderNode1(...objects: Raw[]): Desired {
  const store = storeOf([...conformanceObjects(), ...objects]);
  return render(compile(store, { node: 'node-1' }), { family: 'ipv4', node: 'node-1', serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] });
}
const chain = (d: Desired, name: string): IptChain | undefined => d.chains.find((c) => c.name === name);
const text = (c: IptChain) => c.rules.map((r) => r.args.join(' '));

const guard = cnp('guard', 'Admin', 10, ns('x'), {
  ingress: [
    { name: 'dns', action: 'Accept', from: [{ namespaces: {} }], protocols: [{ udp: { destinationPort: { number: 53 } } }] },
    { name: 'own', action: 'Pass', from: [ns('x')] },
    { name: 'deny-rest', action: 'Deny', from: [{ namespaces: {} }] },
  ],
});
const base = cnp('default', 'Baseline', 100, { namespaces: {} }, { ingress: [{ name: 'default-deny', action: 'Deny', from: [ns('z')] }] });

test('pods selected only by a ClusterNetworkPolicy get a chain; others do not', (t) => {
  const none = renderNode1();
  t.false(none.chains.some((c) => c.name === podChainName('x', 'a')));
  const d = renderNode1(guard);
  t.truthy(chain(d, podChainName('x', 'a')), 'x/a (node-1) is a subject');
  t.truthy(chain(d, podChainName('x', 'b')));
  t.falsy(chain(d, podChainName('y', 'a')), 'y/a is not selected by anything');
});

test('Admin tier chain: rules in order, Accept marks and returns, Pass returns, Deny logs to group 100 and rejects', (t) => {
  const d = renderNode1(guard);
  const name = tierChainName('admin', 'ingress', ['guard']);
  const c = chain(d, name)!;
  t.truthy(c, name);
  t.is(d.origins[name], 'admin tier ingress: ClusterNetworkPolicy guard');
  const rules = text(c);
  const i = {
    accept: rules.findIndex((r) => r.includes('rule dns Accept') && r.endsWith('-j MARK --set-xmark 0x10000/0x10000')),
    acceptReturn: rules.findIndex((r) => r.startsWith('-m mark --mark 0x10000/0x10000') && r.endsWith('-j RETURN')),
    pass: rules.findIndex((r) => r.includes('rule own Pass') && r.endsWith('-j RETURN')),
    nflog: rules.findIndex((r) => r.includes('rule deny-rest Deny') && r.includes('-j NFLOG') && r.includes('--nflog-group 100')),
    reject: rules.findIndex((r) => r.includes('rule deny-rest Deny') && r.endsWith('-j REJECT --reject-with icmp-port-unreachable')),
  };
  t.true(Object.values(i).every((n) => n >= 0), JSON.stringify(i));
  t.true(i.accept < i.acceptReturn && i.acceptReturn < i.pass && i.pass < i.nflog && i.nflog < i.reject, JSON.stringify(i));
  t.regex(rules[i.accept]!, /^-p udp -m set --match-set KUBE-SRC-\w{16} src -m udp --dport 53 /);
  t.true(rules[i.nflog]!.includes(`--nflog-prefix podwall/1 cnp in ${cnpRuleRef('cnp:guard/ingress/2')} cnp/guard`));
});

test('pod chain: Admin jump before NetworkPolicy jumps; Baseline only without NetworkPolicy, guarded by the mark, before DEFAULT', (t) => {
  const d = renderNode1(guard, base, policy('x', 'np', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{}] }));
  const admin = tierChainName('admin', 'ingress', ['guard']);
  const baseline = tierChainName('baseline', 'ingress', ['default']);
  const a = text(chain(d, podChainName('x', 'a'))!);
  const adminAt = a.findIndex((r) => r.endsWith(`-j ${admin}`));
  const npAt = a.findIndex((r) => r.includes('ingress policy x/np'));
  t.true(adminAt >= 0 && npAt > adminAt, 'x/a: admin tier, then its NetworkPolicy');
  t.false(a.some((r) => r.endsWith(`-j ${baseline}`)), 'x/a is isolated by a NetworkPolicy: no Baseline');
  const b = text(chain(d, podChainName('x', 'b'))!);
  const bl = b.findIndex((r) => r.endsWith(`-j ${baseline}`));
  const def = b.findIndex((r) => r.startsWith('-d 10.244.1.11/32') && r.endsWith('-j KUBE-NWPLCY-DEFAULT'));
  t.true(b.findIndex((r) => r.endsWith(`-j ${admin}`)) < bl && bl < def, 'x/b: admin, baseline, default');
  t.true(b[bl]!.includes('-m mark ! --mark 0x10000/0x10000'), 'Baseline skipped once something accepted');
  t.truthy(chain(d, baseline));
});

test('pods selected by the same policies share one tier chain; names are stable', (t) => {
  const d1 = renderNode1(guard, base);
  const d2 = renderNode1(guard, base);
  t.deepEqual(d1, d2);
  const admins = d1.chains.filter((c) => c.name.startsWith('PODWALL-ADM-'));
  t.is(admins.length, 1, 'x/a and x/b share the guard chain');
  const baselines = d1.chains.filter((c) => c.name.startsWith('PODWALL-BSL-'));
  t.is(baselines.length, 1, 'every local pod shares the default chain');
});

test('a rule edit is a small diff: the tier chain and its sets, nothing else', (t) => {
  const before = renderNode1(guard, base);
  const edited = cnp('guard', 'Admin', 10, ns('x'), {
    ingress: [
      { name: 'dns', action: 'Accept', from: [{ namespaces: {} }], protocols: [{ udp: { destinationPort: { number: 53 } } }, { tcp: { destinationPort: { number: 53 } } }] },
      { name: 'own', action: 'Pass', from: [ns('x')] },
      { name: 'deny-rest', action: 'Deny', from: [{ namespaces: {} }] },
    ],
  });
  const after = renderNode1(edited, base);
  const state = familyStateAfter(before, emptyFamilyState(), planIptables(before, emptyFamilyState()));
  const p = planIptables(after, state);
  t.deepEqual(p.created, []);
  t.deepEqual(p.deleted, []);
  t.deepEqual(p.updated, [tierChainName('admin', 'ingress', ['guard'])]);
  const sets = setStateAfter(before.sets, new Map(), planIpset(before.sets, new Map()));
  const ip = planIpset(after.sets, sets);
  t.deepEqual([...ip.early, ...ip.late].flatMap((g) => g.ops), [], 'same peers: the sets are reused as they are');
});

test('a priority change that reorders two policies: new shared chain, old one removed, pod chains rejump', (t) => {
  const a = cnp('a', 'Admin', 1, ns('x'), { ingress: [{ action: 'Deny', from: [ns('y')] }] });
  const b = (p: number) => cnp('b', 'Admin', p, ns('x'), { ingress: [{ action: 'Accept', from: [ns('y')] }] });
  const before = renderNode1(a, b(2));
  const after = renderNode1(a, b(0));
  t.truthy(chain(before, tierChainName('admin', 'ingress', ['a', 'b'])));
  t.truthy(chain(after, tierChainName('admin', 'ingress', ['b', 'a'])));
  const p = planIptables(after, familyStateAfter(before, emptyFamilyState(), planIptables(before, emptyFamilyState())));
  t.deepEqual(p.created, [tierChainName('admin', 'ingress', ['b', 'a'])]);
  t.deepEqual(p.deleted, [tierChainName('admin', 'ingress', ['a', 'b'])]);
  t.deepEqual([...p.updated].sort(), [podChainName('x', 'a'), podChainName('x', 'b')].sort());
});

test('networks: one hash:net set per rule and family, /0 as two halves', (t) => {
  const d = renderNode1(cnp('out', 'Admin', 1, ns('x'), { egress: [{ action: 'Deny', to: [{ networks: ['0.0.0.0/0', '2001:db8::/32'] }, { networks: ['192.0.2.0/24'] }] }] }));
  const nets = d.sets.filter((s) => s.type === 'hash:net' && s.name.startsWith('KUBE-DST-'));
  t.is(nets.length, 1);
  t.deepEqual(nets[0]!.members.map((m) => m.entry).sort(), ['0.0.0.0/1', '128.0.0.0/1', '192.0.2.0/24']);
});

test('NFLOG prefix: at most 63 bytes, the rule reference and a safe hint', (t) => {
  const store = storeOf([...conformanceObjects(), cnp(`a${'b'.repeat(200)}`, 'Admin', 1, ns('x'), { ingress: [{ action: 'Deny', from: [ns('y')] }] })]);
  const rule = compile(store).clusterPolicies[0]!.ingress[0]!;
  const p = cnpDenyPrefix(rule);
  t.true(Buffer.byteLength(p) <= 63, p);
  t.regex(p, /^podwall\/1 cnp in [A-Z2-7]{16} cnp\/ab+$/);
});

test('every NFLOG rule, tier chains included, hands entries over at once (--nflog-threshold 1), not in 1 s batches', (t) => {
  const isolate = policy('y', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
  const d = renderNode1(guard, base, isolate);
  const nflog = d.chains.flatMap((c) => c.rules.map((r) => r.args.join(' ')).filter((r) => r.includes('-j NFLOG')).map((r) => [c.name, r] as const));
  t.true(nflog.some(([c]) => c.startsWith('PODWALL-ADM-')) && nflog.some(([c]) => c.startsWith('PODWALL-BSL-')) && nflog.some(([c]) => c.startsWith('KUBE-POD-FW-')));
  for (const [c, r] of nflog) t.true(r.endsWith('--nflog-group 100 --nflog-threshold 1'), `${c}: ${r}`);
});
