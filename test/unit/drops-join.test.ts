// The join of NFLOG entries with the Plan, for every kind of denial: pod ingress, pod egress, audited
// ("would deny"), fail closed (unprogrammed), ClusterNetworkPolicy Deny rules (Admin and Baseline),
// entries podwall did not write, and a Plan that moved on.
// The prefixes come from the rendered rules through the interpreter (what the kernel would log).
import test from 'ava';
import { compile } from '../../src/policy/compile.js';
import { render } from '../../src/dataplane/render.js';
import { cnpRuleRef, podChainName } from '../../src/dataplane/names.js';
import { encodePrefix } from '../../src/dataplane/nflog.js';
import { interpret } from '../../src/iptables/interpret.js';
import { filterTableFor } from '../../src/dataplane/trace.js';
import { clusterNodeViews, clusterPaths } from '../../src/dataplane/path.js';
import { clusterRuleByRef, joinEntry, podByChainRef } from '../../src/drops/join.js';
import { StorePlanSource } from '../../src/drops/plan-source.js';
import type { NflogEntry } from '../../src/drops/nflog-pcap.js';
import { conformanceObjects, podIP, policy, storeOf, type Raw } from '../support/conformance.js';

const AUDIT = { 'podwall.io/enforcement': 'audit' };
const withMeta = (p: Raw, annotations?: Record<string, string>): Raw => ({ ...p, metadata: { ...(p.metadata as object), ...(annotations ? { annotations } : {}) } });
const POLICIES: Raw[] = [
  // y/b: isolated by a deny-all and by an allow-web that wants pod=frontend on 80/TCP.
  policy('y', 'deny-all', { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Ingress'] }),
  policy('y', 'allow-web', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'frontend' } } }], ports: [{ port: 80, protocol: 'TCP' }] }] }),
  // x/a: egress only to namespace z.
  policy('x', 'egress-z', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }] }),
  // z/b: an audited policy admitting only pod a.
  withMeta(policy('z', 'staged', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'a' } } }] }] }), AUDIT),
];
const store = storeOf([...conformanceObjects(), ...POLICIES]);
const plan = compile(store);
const RENDER = { serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] as [number, number] };
const ref = (ns: string, pod: string) => podChainName(ns, pod).slice('KUBE-POD-FW-'.length);

/** What the kernel would log for this connection: the NFLOG prefixes the rendered rules pass. */
function logged(from: [string, string], to: [string, string], port: number, st = store): NflogEntry[] {
  const plan = compile(st);
  const views = clusterNodeViews(plan);
  const out: NflogEntry[] = [];
  for (const hop of clusterPaths(views, podIP(...from), podIP(...to), 'tcp', port)) {
    const d = render(compile(st, { node: hop.node }), { ...RENDER, family: 'ipv4', node: hop.node });
    const table = filterTableFor(d);
    const sets = new Map(d.sets.map((x) => [x.name, x]));
    const addr = plan.nodes.find((n) => n.name === hop.node)!.addresses;
    for (const l of interpret(table, sets, hop.packet, { localAddresses: addr }).logged) {
      out.push({ time: 1_700_000_000_000, group: l.group, prefix: l.prefix, packet: { family: 'ipv4', src: podIP(...from), dst: podIP(...to), protocol: 'TCP', sport: 40000, dport: port, tcpFlags: 'S' } });
    }
  }
  return out;
}

test('pod ingress: the policies isolating the destination, why no rule allows the source, the nearest miss', (t) => {
  const [e, ...rest] = logged(['x', 'b'], ['y', 'b'], 80);
  t.is(rest.length, 0);
  t.is(e!.prefix, `podwall/1 deny in ${ref('y', 'b')} y/b`);
  const r = joinEntry(plan, e!, { node: 'node-1' })!;
  t.like(r, { kind: 'deny', verdict: 'denied', direction: 'ingress', pod: 'y/b', node: 'node-1', protocol: 'TCP' });
  t.deepEqual(r.src, { ip: podIP('x', 'b'), pod: 'x/b', port: 40000 });
  t.deepEqual(r.dst, { ip: podIP('y', 'b'), pod: 'y/b', port: 80 });
  t.deepEqual(r.policies, ['y/allow-web', 'y/deny-all']);
  t.deepEqual(r.namespaces, ['y', 'x']);
  t.regex(r.why, /^ingress of y\/b: isolated by y\/allow-web and y\/deny-all; no rule allows x\/b \(nearest miss: rule 0 of y\/allow-web allows 80\/TCP but x\/b does not match podSelector \{pod: frontend\}/);
  t.true(r.rules!.some((l) => l.startsWith('y/deny-all has no ingress rules')));
  t.is(r.note, undefined);
});

test('pod egress: the source pod and its egress policy', (t) => {
  const entries = logged(['x', 'a'], ['y', 'a'], 81);
  t.is(entries.length, 1);
  const r = joinEntry(plan, entries[0]!)!;
  t.like(r, { kind: 'deny', direction: 'egress', pod: 'x/a' });
  t.deepEqual(r.policies, ['x/egress-z']);
  t.regex(r.why, /^egress of x\/a: isolated by x\/egress-z; no rule allows y\/a \(nearest miss: .*namespace y does not match namespaceSelector \{ns: z\}/);
});

test('audited: let through, logged as would deny, naming the audited policy only', (t) => {
  const entries = logged(['x', 'c'], ['z', 'b'], 80);
  t.deepEqual(entries.map((e) => e.prefix), [`podwall/1 audit in ${ref('z', 'b')} z/b`]);
  const r = joinEntry(plan, entries[0]!)!;
  t.like(r, { kind: 'audit', verdict: 'would-deny', direction: 'ingress', pod: 'z/b' });
  t.deepEqual(r.policies, ['z/staged']);
  t.regex(r.why, /^ingress of z\/b: would be isolated by z\/staged \(audited\); no rule allows x\/c .*; let through — z\/staged would deny it once enforced$/);
  // Pod a is admitted by the audited policy: nothing is logged.
  t.deepEqual(logged(['x', 'a'], ['z', 'b'], 80), []);
});

test('fail closed: an unprogrammed pod, and an address no pod holds', (t) => {
  const pkt = { family: 'ipv4' as const, src: podIP('x', 'a'), dst: podIP('y', 'a'), protocol: 'TCP' as const, dport: 80 };
  const known = joinEntry(plan, { time: 0, group: 100, prefix: encodePrefix({ kind: 'unprogrammed', direction: 'ingress', hint: '10.244.1.0/24' }), packet: pkt })!;
  t.like(known, { kind: 'unprogrammed', verdict: 'denied', direction: 'ingress', pod: 'y/a' });
  t.regex(known.why, /^fail closed: y\/a \(10\.244\.1\.\d+\) is not programmed on this node yet — new connections to it are refused/);
  const stranger = joinEntry(plan, { time: 0, group: 100, prefix: encodePrefix({ kind: 'unprogrammed', direction: 'egress', hint: '10.244.1.0/24' }), packet: { ...pkt, src: '10.244.1.250' } })!;
  t.is(stranger.pod, undefined);
  t.regex(stranger.why, /^fail closed: 10\.244\.1\.250 is in this node's pod CIDR 10\.244\.1\.0\/24 but is no pod podwall knows — new connections from it are refused/);
});

type Rule = Record<string, unknown>;
function cnp(name: string, tier: 'Admin' | 'Baseline', priority: number, subject: Rule, rules: { ingress?: Rule[]; egress?: Rule[] }): Raw {
  return { apiVersion: 'policy.networking.k8s.io/v1alpha2', kind: 'ClusterNetworkPolicy', metadata: { name }, spec: { tier, priority, subject, ...rules } };
}
const nsSel = (n: string) => ({ namespaces: { matchLabels: { ns: n } } });
// x's pods: Admin tier accepts DNS from anyone, passes x's own traffic to NetworkPolicy, denies the rest.
const GUARD = cnp('guard', 'Admin', 10, nsSel('x'), {
  ingress: [
    { name: 'dns', action: 'Accept', from: [{ namespaces: {} }], protocols: [{ udp: { destinationPort: { number: 53 } } }] },
    { name: 'own', action: 'Pass', from: [nsSel('x')] },
    { name: 'deny-rest', action: 'Deny', from: [{ namespaces: {} }] },
  ],
});
// Every pod: the Baseline tier denies egress to namespace z where no NetworkPolicy isolates.
const NO_Z = cnp('no-z', 'Baseline', 50, { namespaces: {} }, { egress: [{ name: 'to-z', action: 'Deny', to: [nsSel('z')] }] });
const cnpStore = () => storeOf([...conformanceObjects(), GUARD, NO_Z]);

test('ClusterNetworkPolicy Admin Deny: the rule by its ref, the tier and priority, and the rules passed over', (t) => {
  const st = cnpStore();
  const entries = logged(['y', 'a'], ['x', 'b'], 80, st);
  t.deepEqual(entries.map((e) => e.prefix), [`podwall/1 cnp in ${cnpRuleRef('cnp:guard/ingress/2')} cnp/guard`]);
  const p = compile(st);
  t.is(clusterRuleByRef(p, cnpRuleRef('cnp:guard/ingress/2'))?.id, 'cnp:guard/ingress/2');
  const r = joinEntry(p, entries[0]!, { node: 'node-1' })!;
  t.like(r, { kind: 'cnp', verdict: 'denied', direction: 'ingress', pod: 'x/b', node: 'node-1' });
  t.deepEqual(r.policies, ['cnp:guard']);
  t.deepEqual(r.namespaces, ['x', 'y']);
  t.regex(r.why, /^ingress of x\/b \(10\.244\.\d+\.\d+\): denied by rule 'deny-rest' \(Deny\) of ClusterNetworkPolicy guard, Admin tier, priority 10 .*\(NetworkPolicy cannot allow it\)$/);
  // The rules of the tier evaluated before it, and why each missed.
  t.is(r.rules?.length, 2);
  t.regex(r.rules![0]!, /^Admin rule 'dns' \(Accept, 53\/UDP\) of guard: no match — /);
  t.regex(r.rules![1]!, /^Admin rule 'own' \(Pass, any port\) of guard: no match — .*namespace y/);
  t.is(r.note, undefined);
  // From x itself the Pass rule decides: nothing is logged (x/b is not isolated by a NetworkPolicy).
  t.deepEqual(logged(['x', 'a'], ['x', 'b'], 80, st), []);
});

test('ClusterNetworkPolicy Baseline Deny on egress: the source pod and the Baseline rule', (t) => {
  const st = cnpStore();
  const entries = logged(['y', 'c'], ['z', 'a'], 443, st);
  t.deepEqual(entries.map((e) => e.prefix), [`podwall/1 cnp out ${cnpRuleRef('cnp:no-z/egress/0')} cnp/no-z`]);
  const r = joinEntry(compile(st), entries[0]!)!;
  t.like(r, { kind: 'cnp', verdict: 'denied', direction: 'egress', pod: 'y/c' });
  t.deepEqual(r.policies, ['cnp:no-z']);
  t.regex(r.why, /^egress of y\/c .*: denied by rule 'to-z' \(Deny\) of ClusterNetworkPolicy no-z, Baseline tier, priority 50 .*\(no NetworkPolicy isolates the pod; one would replace the Baseline\)$/);
});

test('ClusterNetworkPolicy Deny that the Plan no longer carries, or no longer decides with, says so', (t) => {
  const e = logged(['y', 'a'], ['x', 'b'], 80, cnpStore())[0]!;
  // The ClusterNetworkPolicy is gone: its rule ref names nothing; the hint still names the policy.
  const gone = joinEntry(compile(storeOf([...conformanceObjects()])), e)!;
  t.like(gone, { kind: 'cnp', direction: 'ingress', pod: 'x/b' });
  t.deepEqual(gone.policies, ['cnp:guard']);
  t.is(gone.why, 'ingress of x/b: denied by a rule of ClusterNetworkPolicy guard');
  t.regex(gone.note!, /^no ClusterNetworkPolicy rule in the Plan has this reference \(\w{16}\)/);
  // Still there, but an Admin Accept of a higher priority now decides first.
  const open = cnp('open', 'Admin', 5, nsSel('x'), { ingress: [{ name: 'all', action: 'Accept', from: [{ namespaces: {} }] }] });
  const moved = joinEntry(compile(storeOf([...conformanceObjects(), GUARD, open])), e)!;
  t.regex(moved.why, /^ingress of x\/b: denied by rule 'deny-rest' \(Deny\) of ClusterNetworkPolicy guard, Admin tier, priority 10$/);
  t.regex(moved.note!, /^the Plan podwall reads now decides this side otherwise \(.*allowed by rule 'all' \(Accept\) of ClusterNetworkPolicy open/);
});

test('an entry podwall did not write (kube-router\'s, no prefix) is joined by address', (t) => {
  const e = logged(['x', 'b'], ['y', 'b'], 80)[0]!;
  const r = joinEntry(plan, { ...e, prefix: '' })!;
  t.like(r, { kind: 'unknown', direction: 'ingress', pod: 'y/b' });
  t.regex(r.note!, /not logged by podwall's rules/);
  t.regex(r.why, /^ingress of y\/b: isolated by y\/allow-web and y\/deny-all/);
});

test('a Plan that moved on says so instead of inventing a reason', (t) => {
  const e = logged(['x', 'b'], ['y', 'b'], 80)[0]!;
  // y/b's policies are gone from the Plan the drops command reads now.
  const now = compile(storeOf([...conformanceObjects()]));
  const r = joinEntry(now, e)!;
  t.is(r.pod, 'y/b');
  t.regex(r.note!, /the Plan podwall reads now does not deny this side/);
  // The pod is gone too: the chain hash names nobody.
  const gone = compile(storeOf(conformanceObjects().filter((o) => !(o.kind === 'Pod' && (o.metadata as { namespace: string; name: string }).namespace === 'y' && (o.metadata as { name: string }).name === 'b'))));
  const g = joinEntry(gone, e)!;
  t.is(g.pod, undefined);
  t.regex(g.note!, /no pod in the Plan has this chain/);
  t.is(podByChainRef(plan, ref('y', 'b')), 'y/b');
});

test('an entry without a readable packet is not joined', (t) => {
  t.is(joinEntry(plan, { time: 0, group: 100, prefix: 'x' }), undefined);
});

test('the Plan drops joins with is compiled again only when the cluster changed, not more often than asked', (t) => {
  // The rate limits are judged on the source's clock, driven here: a compile "takes" compileCost ms.
  const s = storeOf([...conformanceObjects(), ...POLICIES]);
  let now = 1_000_000;
  let compileCost = 0;
  let compiles = 0;
  const src = new StorePlanSource(s, 60_000, {
    now: () => now,
    compile: (st) => {
      compiles++;
      now += compileCost;
      return compile(st);
    },
  });
  const p1 = src.plan();
  t.is(compiles, 1);
  now += 10_000;
  t.is(src.plan(), p1, 'unchanged store: the same Plan');
  s.upsert({ kind: 'Namespace', name: 'w', labels: { 'kubernetes.io/metadata.name': 'w' } });
  t.is(src.plan(), p1, 'changed, but compiled less than a minute ago');
  const p2 = src.plan({ fresh: true });
  t.not(p2, p1, 'an entry the Plan cannot explain asks for a fresh one');
  t.true('w' in p2.namespaceLabels);
  t.is(src.plan({ fresh: true }), p2, 'nothing changed since: no new compile');
  now += 60_000;
  t.is(src.plan(), p2, 'a minute later, still nothing changed: no new compile');
  s.upsert({ kind: 'Namespace', name: 'v', labels: { 'kubernetes.io/metadata.name': 'v' } });
  const p3 = src.plan();
  t.not(p3, p2, 'changed and compiled more than a minute ago: compiled again without being asked');
  t.true('v' in p3.namespaceLabels);
  t.is(compiles, 3);
});

test('a Plan that takes long to compile is compiled at most a fifth of the time, even when a fresh one is asked for', (t) => {
  const s = storeOf([...conformanceObjects(), ...POLICIES]);
  let now = 1_000_000;
  let compiles = 0;
  const src = new StorePlanSource(s, 1000, {
    now: () => now,
    compile: (st) => {
      compiles++;
      now += 400; // each compile takes 400 ms: the next one no sooner than 2 s after it ended
      return compile(st);
    },
  });
  const p1 = src.plan();
  s.upsert({ kind: 'Namespace', name: 'w', labels: { 'kubernetes.io/metadata.name': 'w' } });
  now += 1999;
  t.is(src.plan({ fresh: true }), p1, '1,999 ms after a 400 ms compile: not yet');
  t.is(compiles, 1);
  now += 1;
  const p2 = src.plan({ fresh: true });
  t.not(p2, p1, '2,000 ms after: compiled again');
  t.true('w' in p2.namespaceLabels);
  t.is(compiles, 2);
});
