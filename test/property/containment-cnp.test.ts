// Containment never widens with ClusterNetworkPolicy tiers: the sets of Deny and Pass rules are deny
// lists, so a refused member of one cannot be left out (that would open what the rule denies). Whatever
// the kernel refuses, in any order, the rules podwall writes instead accept no packet the full render
// rejects — checked with the interpreter on both tables.
import test from 'ava';
import fc from 'fast-check';
import { Refusals, type AttributedFailure } from '../../src/dataplane/containment.js';
import { render, type Desired } from '../../src/dataplane/render.js';
import { compile } from '../../src/policy/compile.js';
import { interpret, type Packet } from '../../src/iptables/interpret.js';
import { storeOf, type Raw } from '../support/conformance.js';
import { RO, setMap, tableOf } from '../unit/dataplane-fixtures.js';

const ns = (name: string): Raw => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
const podObj = (namespace: string, name: string, ip: string, app: string): Raw => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { namespace, name, labels: { app } },
  spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'x', ports: [{ name: 'http', containerPort: 8080 }] }] },
  status: { phase: 'Running', podIP: ip },
});
const sel = (n: string) => ({ namespaces: { matchLabels: { 'kubernetes.io/metadata.name': n } } });
const cnp = (name: string, tier: string, priority: number, subject: Raw, rules: Raw): Raw => ({ apiVersion: 'policy.networking.k8s.io/v1alpha2', kind: 'ClusterNetworkPolicy', metadata: { name }, spec: { tier, priority, subject, ...rules } });

function desired(): Desired {
  const store = storeOf([
    { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, spec: { podCIDRs: ['10.244.1.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: '172.18.0.2' }] } },
    ns('shop'),
    ns('ops'),
    podObj('shop', 'web', '10.244.1.5', 'web'),
    podObj('shop', 'db', '10.244.1.6', 'db'),
    podObj('ops', 'agent', '10.244.1.7', 'agent'),
    podObj('ops', 'scan', '10.244.1.8', 'scan'),
    // The same addresses in allow lists (NetworkPolicy, Admin Accept) and in deny lists (Deny, Pass).
    { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace: 'shop', name: 'db' }, spec: { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ namespaceSelector: {} }] }] } },
    cnp('guard', 'Admin', 1, sel('shop'), {
      ingress: [
        { action: 'Accept', from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'agent' } } } }], protocols: [{ tcp: { destinationPort: { number: 8080 } } }] },
        { action: 'Deny', from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'agent' } } } }, { pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'scan' } } } }] },
        { action: 'Pass', from: [sel('shop')] },
        { action: 'Deny', from: [{ namespaces: {} }], protocols: [{ destinationNamedPort: 'http' }] },
      ],
      egress: [{ action: 'Deny', to: [{ networks: ['10.244.1.7/32', '192.0.2.0/24'] }] }],
    }),
    cnp('default', 'Baseline', 5, { namespaces: {} }, { ingress: [{ action: 'Deny', from: [sel('ops')] }] }),
  ]);
  return render(compile(store, { node: 'n1' }), { ...RO, family: 'ipv4' });
}

const D = desired();
const SETS = D.sets;
const CHAINS = D.chains;
const ADDRS = ['10.244.1.5', '10.244.1.6', '10.244.1.7', '10.244.1.8', '192.0.2.5', '8.8.8.8', '172.18.0.2'];
const PACKETS: Packet[] = ADDRS.flatMap((src) =>
  ADDRS.filter((dst) => dst !== src).flatMap((dst) =>
    [80, 8080].map((dport): Packet => ({ src, dst, protocol: 'tcp', dport, hook: dst === '172.18.0.2' ? 'INPUT' : src === '172.18.0.2' ? 'OUTPUT' : 'FORWARD', bridged: src.startsWith('10.244.1.') && dst.startsWith('10.244.1.'), ctstate: 'NEW' })),
  ),
);
const LOCAL = ['172.18.0.2', '10.244.1.1'];
function verdict(d: Desired, p: Packet): string {
  const local = p.hook === 'INPUT' ? [...LOCAL, p.dst] : p.hook === 'OUTPUT' ? [...LOCAL, p.src] : LOCAL;
  return interpret(tableOf(d), setMap(d), p, { localAddresses: local }).verdict;
}
const REJECTED: [Packet, string][] = PACKETS.map((p): [Packet, string] => [p, verdict(D, p)]).filter(([, v]) => v !== 'ACCEPT');

const failure = fc.oneof(
  fc.tuple(fc.nat(SETS.length - 1), fc.nat(40)).map(([si, mi]): AttributedFailure => {
    const s = SETS[si]!;
    const m = s.members[mi % Math.max(1, s.members.length)];
    return m ? { kind: 'ipset', object: s.name, op: { op: 'add', name: s.name, entry: m.entry, nomatch: !!m.nomatch }, message: 'refused' } : { kind: 'ipset', object: s.name, op: { op: 'create', name: s.name, type: s.type, family: s.family }, message: 'refused' };
  }),
  fc.nat(SETS.length - 1).map((si): AttributedFailure => ({ kind: 'ipset', object: SETS[si]!.name, op: { op: 'create', name: SETS[si]!.name, type: SETS[si]!.type, family: SETS[si]!.family }, message: 'refused' })),
  fc.nat(CHAINS.length - 1).map((ci): AttributedFailure => ({ kind: 'iptables', object: CHAINS[ci]!.name, family: 'ipv4', message: 'refused' })),
);

test(`with ClusterNetworkPolicy tiers, containment never accepts a packet the full render rejects (200 refusal sequences × ${REJECTED.length} packets)`, (t) => {
  t.true(CHAINS.some((c) => c.name.startsWith('PODWALL-ADM-')) && CHAINS.some((c) => c.name.startsWith('PODWALL-BSL-')), 'both tiers rendered');
  t.true(REJECTED.length > 20, `${REJECTED.length} rejected packets`);
  let refusedToContain = 0;
  fc.assert(
    fc.property(fc.array(failure, { minLength: 1, maxLength: 5 }), (failures) => {
      const r = new Refusals();
      for (const f of failures) if (!r.record(f, [r.applyTo(D)], [D])) refusedToContain++;
      const eff = r.applyTo(D);
      for (const [p, full] of REJECTED) {
        if (verdict(eff, p) === 'ACCEPT') {
          t.log(`${JSON.stringify(p)}: contained ACCEPT, full ${full}; refusals ${JSON.stringify(r.list())}`);
          return false;
        }
      }
      return true;
    }),
    { numRuns: 200, seed: 2026 },
  );
  t.true(refusedToContain > 10);
});

test('a refused member of a set a tier chain uses is not containable; tier chains are never left out', (t) => {
  const tierSets = new Set(CHAINS.filter((c) => c.name.startsWith('PODWALL-')).flatMap((c) => c.rules.flatMap((r) => r.args.filter((_, i) => r.args[i - 1] === '--match-set'))));
  const s = SETS.find((x) => tierSets.has(x.name) && x.members.length > 0)!;
  t.truthy(s);
  t.is(new Refusals().record({ kind: 'ipset', object: s.name, op: { op: 'add', name: s.name, entry: s.members[0]!.entry }, message: 'x' }, [D], [D]), undefined);
  t.is(new Refusals().record({ kind: 'ipset', object: s.name, op: { op: 'create', name: s.name, type: s.type, family: s.family }, message: 'x' }, [D], [D]), undefined);
  for (const c of CHAINS.filter((x) => x.name.startsWith('PODWALL-ADM-') || x.name.startsWith('PODWALL-BSL-'))) t.is(new Refusals().record({ kind: 'iptables', object: c.name, family: 'ipv4', message: 'x' }, [D], [D]), undefined, c.name);
});
