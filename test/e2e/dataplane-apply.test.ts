// Kernel test of the dataplane (root): in network namespaces created here (one per backend), with
// foreign rules and sets already present, a render of the conformance cluster is applied, then a
// sequence of cluster changes. After each: iptables-save / ipset save parsed back equal the render
// for podwall-owned objects, and the foreign rules and sets are byte-identical. Lines written per
// change kind are printed. Then a policy chain the kernel rejects, a rejected top-level chain,
// drift repair by resync, and cleanup. Namespaces are deleted in test.after.always.
import test, { type ExecutionContext } from 'ava';
import { ClusterStore } from '../../src/cluster/store.js';
import type { Family } from '../../src/cluster/model.js';
import { compile } from '../../src/policy/compile.js';
import { render, type Desired } from '../../src/dataplane/render.js';
import { Dataplane, DataplaneError, withoutChains, type ApplyReport } from '../../src/dataplane/apply.js';
import { familyStateFromSave, setStateFromSave } from '../../src/dataplane/diff.js';
import { isOwnedChain, isOwnedSet, podChainName, policyChainName } from '../../src/dataplane/names.js';
import { parseIpsetSave, parseIptablesSave } from '../../src/iptables/parse.js';
import { writeIpsetSave, writeSave } from '../../src/iptables/write.js';
import { conformanceObjects, policy, type Raw } from '../support/conformance.js';
import { bins, deleteNamespaces, newNamespace as newNamespace0, sh, verify as verify0 } from '../support/kernel.js';
import { applyObjects, applyStep } from '../support/expectations.js';

const newNamespace = (tag: string) => newNamespace0('podwall-dp', tag);
test.after.always(deleteNamespaces);

const FAMILIES: Family[] = ['ipv4', 'ipv6'];
const RO = { node: 'node-1', serviceClusterIPRanges: ['10.96.0.0/12', 'fd00:96::/108'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] as [number, number] };

/** Foreign rules and sets, put in place before podwall runs. */
function addForeign(ns: string, backend: 'nft' | 'legacy'): void {
  const b = bins(backend);
  sh(ns, [b.restore.ipv4, '--noflush'], [
    '*filter',
    ':FOREIGN - [0:0]',
    '-A FOREIGN -s 192.0.2.1/32 -m comment --comment "someone else" -j DROP',
    '-A INPUT -j FOREIGN',
    '-A FORWARD -m set --match-set foreign-set src -j ACCEPT',
    '-A OUTPUT -p tcp -m tcp --dport 25 -j REJECT --reject-with icmp-port-unreachable',
    'COMMIT',
    '*nat',
    ':FOREIGN-NAT - [0:0]',
    '-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE',
    'COMMIT',
    '',
  ].join('\n'));
  sh(ns, [b.restore.ipv6, '--noflush'], ['*filter', '-A FORWARD -s 2001:db8::/32 -j DROP', 'COMMIT', ''].join('\n'));
}

function foreignIpsets(ns: string): void {
  sh(ns, ['ipset', 'restore'], ['create foreign-set hash:ip family inet', 'add foreign-set 198.51.100.7', 'create kube-router-svip hash:ip family inet', 'add kube-router-svip 10.96.0.1', ''].join('\n'));
}

/** Everything podwall does not own, as text. */
function foreignText(ns: string, backend: 'nft' | 'legacy'): string {
  const b = bins(backend);
  let out = '';
  for (const f of FAMILIES) {
    const rs = parseIptablesSave(sh(ns, [b.save[f]]));
    for (const t of rs.tables) {
      t.chains = t.chains
        .filter((c) => !isOwnedChain(c.name))
        .map((c) => ({ ...c, counters: undefined, rules: c.rules.filter((r) => !r.args.some((a, i) => (r.args[i - 1] === '-j' || r.args[i - 1] === '-g') && isOwnedChain(a))) }));
    }
    out += writeSave(rs);
  }
  out += writeIpsetSave(parseIpsetSave(sh(ns, ['ipset', 'save'])).filter((s) => !isOwnedSet(s.name)));
  return out;
}

function verify(t: ExecutionContext, ns: string, backend: 'nft' | 'legacy', desired: Desired[], label: string): void {
  verify0(t, ns, backend, desired, FAMILIES, label);
}

interface Change {
  kind: string;
  step: { apply?: Raw[]; remove?: { kind: string; namespace?: string; name: string }[] };
}

const pod = (ns: string, name: string, labels: Record<string, string>, ips: string[], node = 'node-1'): Raw => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: ns, labels },
  spec: { nodeName: node, containers: [{ name: 's', image: 'x', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }] },
  status: { phase: 'Running', podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) },
});

const P_DENY = policy('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
const P_ALLOW = (ports: Raw[]) =>
  policy('x', 'allow-a', {
    podSelector: { matchLabels: { pod: 'a' } },
    policyTypes: ['Ingress'],
    ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }, { ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] } }, { ipBlock: { cidr: '::/0', except: ['fd00::/8'] } }], ports }],
  });
const P_CLIENTS = policy('z', 'from-clients', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: 'client' } } }], ports: [{ port: 'http' }, { port: 80 }] }] });
const P_EGRESS = policy('y', 'egress-b', { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: {} }], ports: [{ port: 53, protocol: 'UDP' }] }] });

/** Dual-stack, with an external IP outside the ranges and 17 node ports (two multiport rules). */
const SERVICE = (ports: string[]): Raw => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'dns', namespace: 'z' },
  spec: {
    type: 'NodePort',
    clusterIPs: ['10.96.0.10', 'fd00:96::a'],
    externalIPs: ['198.51.100.1'],
    ports: [
      ...ports.map((p, i) => ({ name: `p${i}`, port: Number(p.split('/')[0]), protocol: p.split('/')[1], nodePort: 30053 + i })),
      ...Array.from({ length: 15 }, (_, i) => ({ name: `n${i}`, port: 9000 + i, protocol: 'TCP', nodePort: 31000 + i })),
    ],
  },
});

const CHANGES: Change[] = [
  { kind: 'pod add (local, dual-stack)', step: { apply: [pod('x', 'd', { pod: 'd', role: 'client' }, ['10.244.1.40', 'fd00:244:1::40'])] } },
  { kind: 'pod add (remote)', step: { apply: [pod('y', 'e', { pod: 'e' }, ['10.244.2.41'], 'node-2')] } },
  { kind: 'pod relabel', step: { apply: [pod('y', 'e', { pod: 'e', role: 'client' }, ['10.244.2.41'], 'node-2')] } },
  { kind: 'namespace relabel', step: { apply: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'y', labels: { ns: 'yy' } } }] } },
  { kind: 'policy update', step: { apply: [P_ALLOW([{ port: 80 }, { port: 81, protocol: 'UDP' }])] } },
  { kind: 'policy add', step: { apply: [P_EGRESS] } },
  { kind: 'policy delete', step: { remove: [{ kind: 'NetworkPolicy', namespace: 'x', name: 'deny-all' }] } },
  { kind: 'pod delete', step: { remove: [{ kind: 'Pod', namespace: 'x', name: 'd' }] } },
  {
    kind: 'node add',
    step: { apply: [{ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-3' }, spec: { podCIDRs: ['10.244.3.0/24', 'fd00:244:3::/64'] }, status: { addresses: [{ type: 'InternalIP', address: '172.18.0.4' }] } }] },
  },
  { kind: 'node delete', step: { remove: [{ kind: 'Node', name: 'node-3' }] } },
  { kind: 'service add (address,port set; node port rules)', step: { apply: [SERVICE(['53/UDP', '53/TCP'])] } },
  { kind: 'service update', step: { apply: [SERVICE(['53/UDP', '8053/TCP'])] } },
  { kind: 'no change', step: {} },
];

function desiredOf(store: ClusterStore): Desired[] {
  const plan = compile(store, { node: 'node-1' });
  return FAMILIES.map((family) => render(plan, { ...RO, family }));
}

const lines = (r: ApplyReport) => `ipset ${r.ipsetLines}, iptables ${r.lines.iptables.ipv4 ?? 0}+${r.lines.iptables.ipv6 ?? 0} (v4+v6); chains +${r.chainsCreated} ~${r.chainsUpdated} -${r.chainsDeleted}; sets +${r.setsCreated} ~${r.setsUpdated} -${r.setsDeleted}`;

for (const backend of ['nft', 'legacy'] as const) {
  test(`${backend}: apply, a sequence of changes, a rejected policy, drift repair and cleanup`, async (t) => {
    const ns = newNamespace(backend);
    foreignIpsets(ns);
    addForeign(ns, backend);
    const foreign = foreignText(ns, backend);
    t.true(foreign.includes('FOREIGN') && foreign.includes('foreign-set') && foreign.includes('kube-router-svip'));

    const store = new ClusterStore();
    applyObjects(store, [...conformanceObjects(), P_DENY, P_ALLOW([{ port: 80 }, { port: 'serve-81-udp', protocol: 'UDP' }]), P_CLIENTS]);
    const dp = new Dataplane({ netns: ns, backend, families: FAMILIES });
    await dp.init();
    t.is(dp.backend, backend);

    const report: string[] = [];
    let desired = desiredOf(store);
    const first = await dp.apply(desired);
    report.push(`cold sync: ${lines(first)}`);
    verify(t, ns, backend, desired, 'cold sync');
    t.is(foreignText(ns, backend), foreign, 'cold sync: foreign rules and sets untouched');

    for (const c of CHANGES) {
      applyStep(store, { ...c.step, expect: () => true });
      desired = desiredOf(store);
      const r = await dp.apply(desired);
      report.push(`${c.kind}: ${lines(r)}`);
      verify(t, ns, backend, desired, c.kind);
      t.is(foreignText(ns, backend), foreign, `${c.kind}: foreign rules and sets untouched`);
      if (c.kind === 'no change') t.is(r.ipsetLines + r.iptablesLines, 0, 'nothing written when nothing changed');
      if (c.kind === 'pod add (remote)' || c.kind === 'pod relabel' || c.kind === 'node add') t.is(r.iptablesLines, 0, `${c.kind}: set members only`);
      if (c.kind.startsWith('service add')) {
        const set = parseIpsetSave(sh(ns, ['ipset', 'save', 'podwall-service-ports']))[0]!;
        t.is(set.type, 'hash:ip,port');
        t.true(set.members.some((m) => m.entry === '10.96.0.10,udp:53'), 'cluster IP inside the range, with its port');
        t.false(set.members.some((m) => m.entry.startsWith('198.51.100.1,')), 'external IP outside the range: not exempted');
        t.regex(sh(ns, [bins(backend).save.ipv4, '-t', 'filter']), /--dports 30054,31000,31001,/);
      }
    }
    console.log(`\n[${backend}] lines written per change kind:\n  ${report.join('\n  ')}`);
    t.log(report.join('\n'));

    // A policy chain the kernel rejects is left out; the others are programmed; its pods stay closed.
    const badChain = policyChainName('x/allow-a', 'ingress');
    const poisoned = desired.map((d) => ({
      ...d,
      chains: d.chains.map((c) => (c.name === badChain && d.family === 'ipv4' ? { ...c, rules: [{ args: ['-m', 'set', '--match-set', 'podwall-no-such-set', 'src', '-j', 'ACCEPT'] }, ...c.rules] } : c)),
    }));
    applyStep(store, { apply: [P_ALLOW([{ port: 80 }])], expect: () => true }); // a real change in the same sync
    const withChange = desiredOf(store).map((d) => ({
      ...d,
      chains: d.chains.map((c) => (c.name === badChain && d.family === 'ipv4' ? { ...c, rules: [{ args: ['-m', 'set', '--match-set', 'podwall-no-such-set', 'src', '-j', 'ACCEPT'] }, ...c.rules] } : c)),
    }));
    t.truthy(poisoned[0]!.chains.find((c) => c.name === badChain));
    const rep = await dp.apply(withChange);
    t.is(rep.rejected?.length, 1);
    t.regex(rep.rejected![0]!, /policy x\/allow-a ingress/);
    t.regex(rep.rejected![0]!, /line \d+/);
    const expected = withChange.map((d) => (d.family === 'ipv4' ? withoutChains(d, new Set([badChain])) : d));
    verify(t, ns, backend, expected, 'rejected policy left out');
    const podChain = expected[0]!.chains.find((c) => c.name === podChainName('x', 'a'))!;
    t.false(podChain.rules.some((r) => r.args.includes(badChain)), 'no jump to the rejected chain');
    t.true(podChain.rules.some((r) => r.args.includes('REJECT')), 'x/a keeps rejecting');
    // The same render again: left out at once, without another failed restore.
    const again = await dp.apply(withChange);
    t.is(again.iptablesLines, 0);
    t.is(again.rejected?.length, 1);

    // A rejected top-level chain cannot be isolated: the apply throws, naming the line, and the kernel keeps the previous state.
    const before = sh(ns, [bins(backend).save.ipv4, '-t', 'filter']).replace(/^#.*\n/gm, '');
    const broken = expected.map((d) => ({ ...d, chains: d.chains.map((c) => (c.name === 'KUBE-ROUTER-FORWARD' ? { ...c, rules: [{ args: ['-p', 'tcp', '-m', 'tcp', '--dport', '99999', '-j', 'ACCEPT'] }, ...c.rules] } : c)) }));
    const err = await t.throwsAsync(dp.apply(broken), { instanceOf: DataplaneError });
    t.regex(err!.message, /line \d+/);
    t.is((err as DataplaneError).object, 'KUBE-ROUTER-FORWARD');
    t.is(sh(ns, [bins(backend).save.ipv4, '-t', 'filter']).replace(/^#.*\n/gm, ''), before, 'previous state in place');

    // Drift: someone deletes a rule and a set member; resync puts them back.
    const fwd = expected[0]!.chains.find((c) => c.name === 'KUBE-ROUTER-FORWARD')!;
    sh(ns, ['iptables-' + backend, '-D', 'KUBE-ROUTER-FORWARD', '1']);
    const someSet = expected[0]!.sets.find((s) => s.name.startsWith('KUBE-SRC-') && s.members.length > 0)!;
    sh(ns, ['ipset', 'del', someSet.name, someSet.members[0]!.entry]);
    sh(ns, ['iptables-' + backend, '-I', 'FORWARD', '1', '-j', 'ACCEPT']); // our jump is no longer first
    const rs = await dp.resync(expected);
    t.true(rs.drift >= 3, `drift ${rs.drift}`);
    t.true(fwd.rules.length > 0);
    // resync leaves out the known-bad chain again
    const foreignAfterDrift = foreignText(ns, backend);
    verify(t, ns, backend, expected, 'after resync');
    sh(ns, ['iptables-' + backend, '-D', 'FORWARD', '-j', 'ACCEPT']);
    t.is(foreignText(ns, backend), foreign);
    t.not(foreignAfterDrift, foreign, 'the foreign ACCEPT stayed until removed by hand');

    // cleanup: nothing of podwall left, the foreign rules and sets as they were.
    await dp.cleanup();
    for (const f of FAMILIES) {
      const live = familyStateFromSave(sh(ns, [bins(backend).save[f], '-t', 'filter']));
      t.is(live.chains.size, 0, `${f}: no owned chain`);
      t.is(live.jumps.length, 0, `${f}: no jump`);
    }
    t.is(setStateFromSave(sh(ns, ['ipset', 'save']), FAMILIES).size, 0, 'no owned set');
    t.is(foreignText(ns, backend), foreign, 'cleanup: foreign rules and sets untouched');
  });
}

test('init detects the backend like the iptables-wrapper (legacy rules present → legacy)', async (t) => {
  const ns = newNamespace('detect');
  const dp0 = new Dataplane({ netns: ns, backend: 'auto', families: ['ipv4'] });
  await dp0.init();
  t.is(dp0.backend, 'nft', 'empty namespace: nft');
  sh(ns, ['iptables-legacy-restore', '--noflush'], '*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n');
  const dp1 = new Dataplane({ netns: ns, backend: 'auto', families: ['ipv4'] });
  await dp1.init();
  t.is(dp1.backend, 'legacy', 'kubelet hint chain in legacy');
});

for (const backend of ['nft', 'legacy'] as const) {
  test(`${backend}: upgrade from the hash:ip podwall-service-ips whitelist (every port of every Service address) converges and destroys it`, async (t) => {
    const ns = newNamespace(`svc-${backend}`);
    const b = bins(backend);
    // What an earlier podwall left: the set and a KUBE-ROUTER-INPUT rule returning on it.
    sh(ns, ['ipset', 'restore'], 'create podwall-service-ips hash:ip family inet\nadd podwall-service-ips 172.18.0.2\n');
    sh(ns, [b.restore.ipv4, '--noflush'], '*filter\n:KUBE-ROUTER-INPUT - [0:0]\n-A KUBE-ROUTER-INPUT -m set --match-set podwall-service-ips dst -m comment --comment "allow traffic to service IPs" -j RETURN\n-I INPUT 1 -j KUBE-ROUTER-INPUT\nCOMMIT\n');
    const store = new ClusterStore();
    applyObjects(store, [...conformanceObjects(), P_DENY, SERVICE(['53/UDP'])]);
    const dp = new Dataplane({ netns: ns, backend, families: ['ipv4'] });
    await dp.init();
    const desired = [render(compile(store, { node: 'node-1' }), { ...RO, family: 'ipv4' })];
    await dp.apply(desired);
    verify0(t, ns, backend, desired, ['ipv4'], 'converged');
    t.false(sh(ns, ['ipset', 'list', '-n']).split('\n').includes('podwall-service-ips'), 'the old set is gone');
  });
}
