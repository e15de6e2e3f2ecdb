// The benchmark-only model of kube-router's full-sync layout: the expected chains, jumps, rules and
// sets for a hand-made cluster, per-sync versioned chain names with stable set names, and payloads the
// real `ipset restore` and `iptables-restore` accept inside network namespaces this test creates
// (root; deleted in test.after.always). The host's tables are never touched.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { LabelSelector, NetworkPolicy, Pod, PolicyRule } from '../../src/cluster/model.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { compile } from '../../src/policy/compile.js';
import { applyKubeRouterSync, krPodChain, krPolicyChain, kubeRouterFullSync, measure, type KubeRouterSync } from '../../src/bench/kube-router-layout.js';
import { generateCluster, loadIntoStore } from '../../src/bench/generator.js';

// ---------------------------------------------------------------- network namespaces of this test

const created: string[] = [];
function newNamespace(tag: string): string {
  if (process.getuid?.() !== 0) throw new Error('this test needs root: it loads the payloads into network namespaces it creates');
  const ns = `podwall-krl-${tag}-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  created.push(ns);
  return ns;
}
test.after.always(() => {
  for (const ns of created.splice(0)) {
    try {
      execFileSync('ip', ['netns', 'del', ns]);
    } catch {
      /* already gone */
    }
  }
});
const sh = (ns: string, cmd: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', maxBuffer: 1 << 28 });

// ---------------------------------------------------------------- a hand-made cluster

const sel = (matchLabels: Record<string, string>): LabelSelector => ({ matchLabels, matchExpressions: [] });
const pod = (namespace: string, name: string, node: string, ip: string, labels: Record<string, string>, ports: Pod['ports'] = []): Pod => ({
  kind: 'Pod',
  namespace,
  name,
  labels,
  nodeName: node,
  hostNetwork: false,
  phase: 'Running',
  ips: [ip],
  ports,
});
const pol = (namespace: string, name: string, podSelector: LabelSelector, policyTypes: ('ingress' | 'egress')[], ingress: PolicyRule[], egress: PolicyRule[] = []): NetworkPolicy => ({
  kind: 'NetworkPolicy',
  namespace,
  name,
  podSelector,
  policyTypes,
  ingress,
  egress,
});

function tinyStore(): ClusterStore {
  const s = new ClusterStore();
  s.upsert({ kind: 'Namespace', name: 'a', labels: { 'kubernetes.io/metadata.name': 'a', team: 'x' } });
  s.upsert({ kind: 'Namespace', name: 'b', labels: { 'kubernetes.io/metadata.name': 'b', team: 'y' } });
  s.upsert({ kind: 'Node', name: 'n1', labels: {}, podCIDRs: ['10.1.0.0/24'], addresses: ['172.16.0.1'] });
  s.upsert({ kind: 'Node', name: 'n2', labels: {}, podCIDRs: ['10.1.1.0/24'], addresses: ['172.16.0.2'] });
  s.upsert(pod('a', 'web-1', 'n1', '10.1.0.2', { app: 'web' }, [{ name: 'http', port: 8080, protocol: 'TCP' }]));
  s.upsert(pod('a', 'db-1', 'n1', '10.1.0.3', { app: 'db' }, [{ name: 'postgres', port: 5432, protocol: 'TCP' }]));
  s.upsert(pod('a', 'web-2', 'n2', '10.1.1.2', { app: 'web' }, [{ name: 'http', port: 8081, protocol: 'TCP' }]));
  s.upsert(pod('b', 'client-1', 'n2', '10.1.1.3', { app: 'client' }));
  s.upsert(pol('a', 'deny-ingress', sel({}), ['ingress'], []));
  s.upsert(
    pol('a', 'web-allow', sel({ app: 'web' }), ['ingress'], [
      { peers: [{ namespaceSelector: sel({ team: 'y' }), podSelector: sel({ app: 'client' }) }], ports: [{ protocol: 'TCP', port: 'http' }, { protocol: 'TCP', port: 9000, endPort: 9100 }] },
      { peers: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] } }], ports: [{ protocol: 'TCP', port: 443 }] },
    ]),
  );
  s.upsert(pol('a', 'db-egress', sel({ app: 'db' }), ['egress'], [], [{ peers: [{ podSelector: sel({ app: 'web' }) }], ports: [{ protocol: 'TCP', port: 8080 }] }]));
  s.upsert(pol('b', 'ghost', sel({ app: 'ghost' }), ['ingress'], [{ peers: [{ podSelector: sel({}) }], ports: [] }]));
  return s;
}

const V1 = '1700000000000000001';
const V2 = '1700000000000000002';

function lines(sync: KubeRouterSync): string[] {
  return sync.families[0]!.iptablesRestore.trimEnd().split('\n');
}

test('every policy gets a versioned chain, every local pod a pod chain with seven jumps', (t) => {
  const store = tinyStore();
  const sync = kubeRouterFullSync(store, { node: 'n1', version: V1 });
  t.is(sync.families.length, 1);
  t.is(sync.policies, 4);
  t.is(sync.localPods, 2);
  const l = lines(sync);
  t.is(l[0], '*filter');
  t.is(l.at(-1), 'COMMIT');
  const declared = l.filter((x) => x.startsWith(':')).map((x) => x.slice(1).split(' ')[0]);
  for (const [ns, name] of [['a', 'deny-ingress'], ['a', 'web-allow'], ['a', 'db-egress'], ['b', 'ghost']]) t.true(declared.includes(krPolicyChain(ns!, name!, V1, 'ipv4')), `${ns}/${name} has a chain, even when it selects no local pod`);
  for (const p of ['web-1', 'db-1']) t.true(declared.includes(krPodChain('a', p, V1)));
  t.false(declared.includes(krPodChain('a', 'web-2', V1)), 'remote pods get no pod chain');
  t.is(sync.counts.chains, 6 + 4 + 2);
  for (const [p, ip] of [['web-1', '10.1.0.2'], ['db-1', '10.1.0.3']]) {
    const chain = krPodChain('a', p!, V1);
    const jumps = l.filter((x) => /^-A KUBE-ROUTER-(INPUT|FORWARD|OUTPUT) /.test(x) && x.endsWith(`-j ${chain}`));
    t.is(jumps.length, 7, `seven jumps into ${p}'s chain`);
    t.is(jumps.filter((x) => x.includes(`-d ${ip}`)).length, 3);
    t.is(jumps.filter((x) => x.includes(`-s ${ip}`)).length, 4);
    t.is(jumps.filter((x) => x.includes('--physdev-is-bridged')).length, 2);
  }
  t.is(sync.counts.podJumps, 14);
  // web-1: selected by two ingress policies (jumps with -d), no egress policy (default egress jump).
  const web = krPodChain('a', 'web-1', V1);
  const webRules = l.filter((x) => x.startsWith(`-I ${web} 1 `));
  t.true(webRules.some((x) => x.includes(`-d 10.1.0.2 `) && x.endsWith(`-j ${krPolicyChain('a', 'web-allow', V1, 'ipv4')}`)));
  t.true(webRules.some((x) => x.includes(`-d 10.1.0.2 `) && x.endsWith(`-j ${krPolicyChain('a', 'deny-ingress', V1, 'ipv4')}`)));
  t.true(webRules.some((x) => x.includes('-s 10.1.0.2 ') && x.includes('"default egress"') && x.endsWith('-j KUBE-NWPLCY-DEFAULT')));
  t.false(webRules.some((x) => x.includes('"default ingress"')));
  // db-1: egress policy (-s), ingress isolated by deny-ingress: no default jump at all.
  const db = krPodChain('a', 'db-1', V1);
  t.true(l.some((x) => x.startsWith(`-I ${db} 1 -s 10.1.0.3 `) && x.endsWith(`-j ${krPolicyChain('a', 'db-egress', V1, 'ipv4')}`)));
  t.false(l.some((x) => x.startsWith(`-I ${db} 1 `) && x.includes('KUBE-NWPLCY-DEFAULT')));
  // The tail of the pod chain: NFLOG, REJECT, mark reset, netpol-ok mark.
  const tail = l.filter((x) => x.startsWith(`-A ${db} `));
  t.deepEqual(
    tail.map((x) => x.split(' -j ')[1]!.split(' ')[0]),
    ['NFLOG', 'REJECT', 'MARK', 'MARK'],
  );
  // Tail chain jump and explicit accept end each top-level chain.
  for (const top of ['KUBE-ROUTER-INPUT', 'KUBE-ROUTER-FORWARD', 'KUBE-ROUTER-OUTPUT']) {
    const mine = l.filter((x) => x.startsWith(`-A ${top} `));
    t.true(mine.at(-2)!.endsWith('-j KUBE-NWPLCY-TAIL'));
    t.true(mine.at(-1)!.endsWith('--mark 0x20000/0x20000 -j ACCEPT'));
  }
  for (const b of ['INPUT', 'FORWARD', 'OUTPUT']) t.is(l.filter((x) => x.startsWith(`-A ${b} `) && x.endsWith(`-j KUBE-ROUTER-${b}`)).length, 1);
});

test('policy chains: a MARK + RETURN pair per port, set matches, named ports, ranges, ipBlocks with nomatch', (t) => {
  const sync = kubeRouterFullSync(tinyStore(), { node: 'n1', version: V1 });
  const l = lines(sync);
  const chain = krPolicyChain('a', 'web-allow', V1, 'ipv4');
  const rules = l.filter((x) => x.startsWith(`-A ${chain} `));
  // rule 0: named port http resolves to 8080 (web-1) and 8081 (web-2): two named-port sets; plus the range.
  // rule 1: ipBlock, one port. 4 entries × 2 lines.
  t.is(rules.length, 8);
  t.is(rules.filter((x) => x.endsWith('-j MARK --set-xmark 0x10000/0x10000')).length, 4);
  t.is(rules.filter((x) => x.endsWith('-m mark --mark 0x10000/0x10000 -j RETURN')).length, 4);
  t.true(rules.some((x) => x.includes('--dport 9000:9100')));
  t.true(rules.some((x) => x.includes('"a/web-allow ingress pods np"') && x.includes('--dport 8080')));
  t.true(rules.some((x) => x.includes('"a/web-allow ingress pods np"') && x.includes('--dport 8081')));
  t.true(rules.some((x) => x.includes('"a/web-allow ingress cidr"') && x.includes('--dport 443')));
  t.true(rules.every((x) => /-m set --match-set KUBE-(SRC|DST)-[A-Z2-7]{16} (src|dst)/.test(x)));
  const ipset = sync.families[0]!.ipsetRestore;
  t.regex(ipset, /add TMP-[A-Z2-7]{16} 0\.0\.0\.0\/1 timeout 0\n/);
  t.regex(ipset, /add TMP-[A-Z2-7]{16} 128\.0\.0\.0\/1 timeout 0\n/);
  t.regex(ipset, /add TMP-[A-Z2-7]{16} 10\.0\.0\.0\/8 timeout 0 nomatch\n/);
  t.regex(ipset, /create KUBE-SRC-[A-Z2-7]{16} hash:net timeout 0\n/);
  t.regex(ipset, /^create TMP-[A-Z2-7]{16} hash:ip timeout 0\nflush TMP-/);
  t.regex(ipset, /destroy TMP-[A-Z2-7]{16}\n$/);
  // The ghost policy selects nothing but still has its sets: an empty target set and a peer set.
  t.true(sync.families[0]!.activeSets.length >= 10);
  const ghost = krPolicyChain('b', 'ghost', V1, 'ipv4');
  t.is(l.filter((x) => x.startsWith(`-A ${ghost} `)).length, 2, 'ghost: one all-ports pod rule');
  // Egress: target set is a KUBE-SRC set, the peer set a KUBE-DST set.
  const eg = l.filter((x) => x.startsWith(`-A ${krPolicyChain('a', 'db-egress', V1, 'ipv4')} `));
  t.is(eg.length, 2);
  t.regex(eg[0]!, /--match-set KUBE-SRC-\S+ src -m set --match-set KUBE-DST-\S+ dst -p TCP --dport 8080/);
  t.is(sync.counts.sets, sync.families[0]!.activeSets.length);
  t.is(sync.counts.members, (ipset.match(/^add /gm) ?? []).length);
});

test('a new sync version renames every policy and pod chain but no set; the plan can be passed in', (t) => {
  const store = tinyStore();
  const a = kubeRouterFullSync(store, { node: 'n1', version: V1 });
  const b = kubeRouterFullSync(store, { node: 'n1', version: V2, plan: compile(store) });
  const chains = (s: KubeRouterSync) => new Set(lines(s).filter((x) => x.startsWith(':KUBE-NWPLCY-') || x.startsWith(':KUBE-POD-FW-')).map((x) => x.split(' ')[0]!));
  const fixed = new Set([':KUBE-NWPLCY-COMMON', ':KUBE-NWPLCY-DEFAULT', ':KUBE-NWPLCY-TAIL']);
  const ca = [...chains(a)].filter((c) => !fixed.has(c));
  const cb = [...chains(b)].filter((c) => !fixed.has(c));
  t.is(ca.length, 6);
  t.is(cb.length, 6);
  t.false(ca.some((c) => cb.includes(c)));
  t.deepEqual(a.families[0]!.activeSets, b.families[0]!.activeSets);
  t.is(a.families[0]!.ipsetRestore, b.families[0]!.ipsetRestore);
  t.deepEqual(a.counts, b.counts);
  t.throws(() => kubeRouterFullSync(store, { node: 'n1', plan: compile(store, { node: 'n1' }) }), { message: /needs a whole-cluster plan/ });
});

test('the real ipset restore and iptables-restore accept the payloads; a later sync replaces chains and drops stale sets', (t) => {
  const store = tinyStore();
  const ns = newNamespace('tiny');
  const s1 = kubeRouterFullSync(store, { node: 'n1', version: V1 });
  applyKubeRouterSync(ns, s1);
  const save1 = sh(ns, ['iptables-nft-save', '-t', 'filter']);
  t.is((save1.match(new RegExp(`-j ${krPodChain('a', 'web-1', V1)}$`, 'gm')) ?? []).length, 7);
  t.true(save1.includes(`:${krPolicyChain('b', 'ghost', V1, 'ipv4')} -`));
  t.is((save1.match(/^-A /gm) ?? []).length, s1.counts.rules);
  const sets1 = sh(ns, ['ipset', 'list', '-n']).trim().split('\n').sort();
  t.deepEqual(sets1, [...s1.families[0]!.activeSets].sort(), 'only the real sets remain (TMP sets destroyed)');

  // Next sync without the ghost policy: new chain names, the ghost's sets destroyed.
  store.remove('NetworkPolicy', 'b/ghost');
  const s2 = kubeRouterFullSync(store, { node: 'n1', version: V2 });
  applyKubeRouterSync(ns, s2);
  const save2 = sh(ns, ['iptables-nft-save', '-t', 'filter']);
  t.false(save2.includes(krPodChain('a', 'web-1', V1)), 'old pod chains are gone');
  t.false(save2.includes(krPolicyChain('a', 'web-allow', V1, 'ipv4')), 'old policy chains are gone');
  t.is((save2.match(new RegExp(`-j ${krPodChain('a', 'web-1', V2)}$`, 'gm')) ?? []).length, 7);
  const sets2 = sh(ns, ['ipset', 'list', '-n']).trim().split('\n').sort();
  t.deepEqual(sets2, [...s2.families[0]!.activeSets].sort());
  t.true(sets2.length < sets1.length);
  // Set members are what the model says (the client pod is the only peer of web-allow's rule 0).
  const ipsetSave = sh(ns, ['ipset', 'save']);
  t.true(ipsetSave.includes('add KUBE-SRC-') && /add KUBE-SRC-\S+ 10\.1\.1\.3/.test(ipsetSave));
  t.regex(ipsetSave, /add KUBE-SRC-\S+ 10\.0\.0\.0\/8 (timeout 0 )?nomatch/);
});

test('generated dual-stack cluster: both families accepted by the kernel, seven jumps per pod and family', (t) => {
  const c = generateCluster({ pods: 120, policies: 24, namespaces: 6, localPods: 12 }, 5, { dualStack: true });
  const store = loadIntoStore(c);
  const sync = kubeRouterFullSync(store, { node: c.localNode, version: V1 });
  t.deepEqual(sync.families.map((f) => f.family), ['ipv4', 'ipv6']);
  t.is(sync.counts.podJumps, 2 * 7 * 12);
  t.true(sync.families[1]!.activeSets.every((s) => s.startsWith('inet6:KUBE-')));
  t.regex(sync.families[1]!.ipsetRestore, /hash:ip timeout 0 family inet6/);
  const ns = newNamespace('dual');
  applyKubeRouterSync(ns, sync);
  for (const [bin, f] of [['iptables-nft-save', 0], ['ip6tables-nft-save', 1]] as const) {
    const save = sh(ns, [bin, '-t', 'filter']);
    t.is((save.match(/^-A /gm) ?? []).length, sync.families[f]!.counts.rules, bin);
    t.is((save.match(/^:KUBE-POD-FW-/gm) ?? []).length, 12, bin);
    t.is((save.match(/^:KUBE-NWPLCY-[A-Z2-7]{16} /gm) ?? []).length, 24, bin);
  }
  t.is(sh(ns, ['ipset', 'list', '-n']).trim().split('\n').length, sync.counts.sets);
});

test('measure: a cold sync and events with full syncs, store left as found', async (t) => {
  const c = generateCluster({ pods: 150, policies: 20, namespaces: 6, localPods: 10 }, 8);
  const store = loadIntoStore(c);
  const before = JSON.stringify(compile(store));
  const progress: string[] = [];
  const m = await measure({ cluster: c, store, node: c.localNode, newNamespace, events: 12, seed: 3, progress: (s) => progress.push(s) });
  t.is(m.events.n, 12);
  t.is(m.events.perKind.reduce((n, k) => n + k.n, 0), 12);
  t.is(m.counts.podJumps, 70);
  t.is(m.policies, 20);
  t.true(m.cold.kernelMs > 0 && m.cold.iptablesRestoreMs > 0 && m.cold.ipsetRestoreMs > 0);
  t.true(m.events.kernelP50 > 0);
  t.is(JSON.stringify(compile(store)), before);
  t.true(progress.some((p) => p.includes('cold sync')));
});
