// The manifests source never widens on invalid input: for random valid clusters (written as
// manifest files and read through the whole pipeline — documents, schema, normalisation, accept)
// and a random invalid mutation of one object (an unknown or misspelled field, a wrong type, three
// policyTypes, an invalid label, a missing required field, an invalid CIDR or port, a merge key, a
// duplicate key, a truncated file, an alias bomb, an allow-all rule smuggled in with an error), or a
// new invalid object, the compiled Plan never allows a pair that the cluster with that object's last
// valid version (or, for a new object, without it) denies. Also after a restart (only what the
// state file keeps is remembered).
import test from 'ava';
import fc from 'fast-check';
import { stringify } from 'yaml';
import type { LabelSelector, NetworkPolicy, Pod, PolicyPeer, PolicyRule } from '../../src/cluster/model.js';
import { networkPolicyArb } from '../support/arbitraries.js';
import { toRawObject } from '../../src/bench/generator.js';
import { readManifestText } from '../../src/cluster/manifests.js';
import { accept, type Accepted } from '../../src/cluster/accept.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { hasErrors } from '../../src/cluster/findings.js';
import { compile } from '../../src/policy/compile.js';
import { matrixFromPlan } from '../../src/sim/matrix.js';
import type { ProbePort } from '../../src/policy/ports.js';

type Raw = Record<string, unknown>;
const NS = ['x', 'y', 'z'];
const VALUES = ['a', 'b', 'c'];
const PORTS: ProbePort[] = [
  { port: 80, protocol: 'TCP' },
  { port: 81, protocol: 'UDP' },
];

const labels = fc.dictionary(fc.constantFrom('pod', 'app', 'team'), fc.constantFrom(...VALUES), { maxKeys: 2 });
const selector = fc.record({
  matchLabels: labels,
  matchExpressions: fc.array(
    fc.oneof(
      fc.record({ key: fc.constantFrom('pod', 'team', 'ns'), operator: fc.constantFrom('In' as const, 'NotIn' as const), values: fc.uniqueArray(fc.constantFrom(...VALUES, ...NS), { minLength: 1, maxLength: 2 }) }),
      fc.record({ key: fc.constantFrom('pod', 'team', 'ns'), operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const), values: fc.constant([] as string[]) }),
    ),
    { maxLength: 1 },
  ),
}) as unknown as fc.Arbitrary<LabelSelector>;
const peer = fc.oneof(
  fc.record({ podSelector: selector }),
  fc.record({ namespaceSelector: selector }),
  fc.record({ podSelector: selector, namespaceSelector: selector }),
  fc.record({ ipBlock: fc.constantFrom({ cidr: '10.0.0.0/8', except: ['10.0.1.0/24'] }, { cidr: '0.0.0.0/0', except: [] }) }),
) as fc.Arbitrary<PolicyPeer>;
const rule: fc.Arbitrary<PolicyRule> = fc.record({
  peers: fc.array(peer, { maxLength: 2 }),
  ports: fc.array(fc.record({ protocol: fc.constantFrom('TCP' as const, 'UDP' as const), port: fc.constantFrom(80, 81, 'http') }), { maxLength: 1 }),
});
const pods: fc.Arbitrary<Pod[]> = fc.array(fc.tuple(fc.constantFrom(...NS), labels), { minLength: 2, maxLength: 6 }).map((list) =>
  list.map(([ns, l], i) => ({ kind: 'Pod' as const, namespace: ns, name: `pod${i}`, labels: l, hostNetwork: false, phase: 'Running' as const, nodeName: 'n1', ips: [`10.0.${i % 3}.${i + 1}`], ports: [{ name: 'http', port: 80, protocol: 'TCP' as const }] })),
);
const policies = fc.integer({ min: 1, max: 4 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => networkPolicyArb(i, NS, selector, rule))));
const namespaceLabels = fc.tuple(...NS.map(() => fc.dictionary(fc.constantFrom('team', 'env'), fc.constantFrom(...VALUES), { maxKeys: 2 })));

/** The raw cluster: namespaces and pods in cluster.yaml, policies split over two files. */
function files(nsLabels: Record<string, string>[], ps: Pod[], nps: NetworkPolicy[]): Record<string, Raw[]> {
  const namespaces = NS.map((ns, i) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { ns, ...nsLabels[i] } } }));
  const raws = nps.map((p) => toRawObject(p));
  return {
    'cluster.yaml': [...namespaces, ...ps.map((p) => toRawObject(p))],
    'policies-a.yaml': raws.filter((_, i) => i % 2 === 0),
    'policies-b.yaml': raws.filter((_, i) => i % 2 === 1),
  };
}

const text = (objects: Raw[]) => objects.map((o) => stringify(o)).join('---\n');

async function decide(prev: ReadonlyMap<string, Accepted>, texts: Record<string, string>) {
  const reads = [];
  for (const file of Object.keys(texts).sort()) reads.push(await readManifestText(texts[file]!, file, { inFolder: true }));
  const decided = accept(prev, reads, { history: true });
  const store = new ClusterStore();
  for (const a of decided.next.values()) store.upsert(a.object);
  const errors = hasErrors([...reads.flatMap((r) => [...r.findings, ...r.defs.flatMap((d) => d.findings)]), ...decided.findings]);
  return { next: decided.next, store, errors };
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const spec = (o: Raw) => (o.spec ??= {}) as Raw;

/** Object-level invalid mutations, each the kind of mistake people make (or a hostile edit hides). */
const OBJECT_MUTATIONS: Record<string, (o: Raw) => void> = {
  'misspelled field': (o) => {
    const s = spec(o);
    if (o.kind === 'NetworkPolicy') {
      s.podselector = s.podSelector ?? {};
      delete s.podSelector;
    } else (o.metadata as Raw).lables = { a: 'b' };
  },
  'unknown field with an allow-all': (o) => {
    if (o.kind === 'NetworkPolicy') {
      const s = spec(o);
      s.ingress = [{}];
      s.egress = [{}];
      s.ingres = [];
    } else spec(o).unknownField = true;
  },
  'wrong type': (o) => {
    if (o.kind === 'NetworkPolicy') spec(o).podSelector = 'all';
    else if (o.kind === 'Pod') spec(o).containers = { name: 'c' };
    else (o.metadata as Raw).labels = 'team=a';
  },
  'three policyTypes with an allow-all': (o) => {
    if (o.kind !== 'NetworkPolicy') return void ((o.metadata as Raw).labels = { team: 'not valid!' });
    Object.assign(spec(o), { policyTypes: ['Ingress', 'Egress', 'Ingress'], ingress: [{}] });
  },
  'invalid label': (o) => {
    const m = o.metadata as Raw;
    m.labels = { ...(m.labels as Raw), team: 'a b' };
  },
  'missing required field': (o) => {
    if (o.kind === 'Pod') delete spec(o).containers;
    else if (o.kind === 'NetworkPolicy') spec(o).ingress = [{ from: [{ ipBlock: { except: ['10.0.0.0/16'] } }] }];
    else (o.metadata as Raw).labels = { '': 'x' };
  },
  'invalid CIDR next to an allow-all': (o) => {
    if (o.kind !== 'NetworkPolicy') return void ((o.metadata as Raw).labels = { 'a/b/c': 'x' });
    spec(o).ingress = [{}, { from: [{ ipBlock: { cidr: '10.0.0.0/40' } }] }];
  },
  'port 0': (o) => {
    if (o.kind === 'Pod') return void ((spec(o).containers as Raw[])[0]!.ports = [{ containerPort: 0 }]);
    if (o.kind !== 'NetworkPolicy') return void ((o.metadata as Raw).labels = { team: '-x' });
    spec(o).egress = [{ ports: [{ port: 0 }] }];
  },
  'merge key': (o) => {
    spec(o)['<<'] = { ingress: [{}] };
  },
};

/** Text-level mutations of the file holding the object. */
const TEXT_MUTATIONS: Record<string, (file: string, docText: string, cut: number) => string> = {
  'duplicate key': (file, doc) => file.replace(doc, `${doc}kind: Pod\n`),
  truncated: (file, _doc, cut) => file.slice(0, Math.max(1, Math.floor(file.length * cut))),
  'alias bomb': (file, doc) => file.replace(doc, `${doc}x-bomb:\n  a: &a [1,1,1,1,1,1,1,1,1,1]\n  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n  d: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n`),
};

const mutation = fc.oneof(
  fc.record({ how: fc.constant('object' as const), which: fc.constantFrom(...Object.keys(OBJECT_MUTATIONS)), target: fc.nat(), cut: fc.constant(0) }),
  fc.record({ how: fc.constant('text' as const), which: fc.constantFrom(...Object.keys(TEXT_MUTATIONS)), target: fc.nat(), cut: fc.double({ min: 0.05, max: 0.95, noNaN: true }) }),
  fc.record({ how: fc.constant('new' as const), which: fc.constant('new invalid allow-all'), target: fc.nat(), cut: fc.constant(0) }),
);

const allowedPairs = (store: ClusterStore) => {
  const m = matrixFromPlan(compile(store), PORTS).json;
  const out = new Map<string, boolean>();
  m.probes.forEach((p, i) => {
    for (const f of m.pods) for (const t of m.pods) out.set(`${i} ${f} ${t}`, p.allowed[f]![t] === true);
  });
  return out;
};

test('an invalid mutation of one object never allows a pair its last valid version (or its absence) denies', async (t) => {
  await fc.assert(
    fc.asyncProperty(namespaceLabels, pods, policies, mutation, fc.boolean(), async (nsLabels, ps, nps, mut, restart) => {
      const original = files(nsLabels, ps, nps);
      const originalTexts = Object.fromEntries(Object.entries(original).map(([f, objs]) => [f, text(objs)]));
      const before = await decide(new Map(), originalTexts);
      if (before.errors) throw new Error(`the generated cluster is invalid: ${JSON.stringify(originalTexts)}`);
      const mutated = clone(original);
      const all = Object.entries(mutated).flatMap(([file, objs]) => objs.map((o, i) => ({ file, i, o })));
      const target = all[mut.target % all.length]!;
      const texts = Object.fromEntries(Object.entries(mutated).map(([f, objs]) => [f, text(objs)]));
      if (mut.how === 'object') {
        OBJECT_MUTATIONS[mut.which]!(target.o);
        texts[target.file] = text(mutated[target.file]!);
      } else if (mut.how === 'text') {
        texts[target.file] = TEXT_MUTATIONS[mut.which]!(texts[target.file]!, stringify(target.o), mut.cut);
      } else {
        const wide = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'p-new', namespace: NS[mut.target % NS.length] }, spec: { podSelector: {}, ingress: [{}], egress: [{}], policyTypes: ['Ingress', 'Egress'], unknown: 1 } };
        texts['new.yaml'] = text([wide]);
      }
      // After a restart only the state file's kinds are remembered.
      const prev = restart ? new Map([...before.next].filter(([, a]) => ['NetworkPolicy', 'Namespace', 'Node'].includes(a.kind))) : before.next;
      const after = await decide(prev, texts);
      // The premise: the mutation is invalid (a valid edit may widen access, as it should).
      fc.pre(after.errors);
      const was = allowedPairs(before.store);
      const now = allowedPairs(after.store);
      for (const [k, v] of now) if (v && was.get(k) === false) return false;
      return true;
    }),
    { numRuns: 400, seed: 20261126 },
  );
  t.pass();
});

test('with nothing remembered (first start, state file lost), an invalid Namespace is matched by no namespace selector: never wider', async (t) => {
  const nsMutations = ['misspelled field', 'wrong type', 'invalid label', 'missing required field'];
  // Policies whose peers select namespaces (In, NotIn, Exists, DoesNotExist): where a namespace's labels matter.
  const nsRule: fc.Arbitrary<PolicyRule> = fc.record({ peers: fc.array(fc.record({ namespaceSelector: selector }) as fc.Arbitrary<PolicyPeer>, { minLength: 1, maxLength: 2 }), ports: fc.constant([]) });
  const nsPolicies = fc.integer({ min: 1, max: 3 }).chain((k) => fc.tuple(...Array.from({ length: k }, (_, i) => networkPolicyArb(i, NS, selector, nsRule))));
  await fc.assert(
    fc.asyncProperty(namespaceLabels, pods, nsPolicies, fc.constantFrom(...nsMutations), fc.nat(NS.length - 1), async (nsLabels, ps, nps, which, n) => {
      const original = files(nsLabels, ps, nps);
      const before = await decide(new Map(), Object.fromEntries(Object.entries(original).map(([f, objs]) => [f, text(objs)])));
      const mutated = clone(original);
      OBJECT_MUTATIONS[which]!(mutated['cluster.yaml']![n]!);
      const after = await decide(new Map(), Object.fromEntries(Object.entries(mutated).map(([f, objs]) => [f, text(objs)])));
      if (!after.errors || !after.store.namespaces.get(NS[n]!)?.labelsUnreadable) return false;
      const was = allowedPairs(before.store);
      for (const [k, v] of allowedPairs(after.store)) if (v && was.get(k) === false) return false;
      return true;
    }),
    { numRuns: 300, seed: 20261127 },
  );
  t.pass();
});
