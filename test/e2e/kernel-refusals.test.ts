// Kernel refusals are contained (root, network namespaces made here): when the kernel refuses a set
// member, a set or a chain, only that object is left out — never widening — the rest of the node is
// programmed, and the dataplane recovers by itself when the object changes or goes away.
// Refusals are real where the kernel really refuses something (ipset: "Null-valued element" for a
// pod at 0.0.0.0 that bypassed validation; iptables: a rule naming a set that does not exist);
// otherwise a runner wrapper refuses one line and really applies the lines before it, as ipset
// restore does. Verdicts are read back from the live tables with the interpreter.
import test, { type ExecutionContext } from 'ava';
import pino from 'pino';
import { ClusterStore } from '../../src/cluster/store.js';
import type { Pod } from '../../src/cluster/model.js';
import { compile } from '../../src/policy/compile.js';
import { IncrementalCompiler } from '../../src/policy/incremental.js';
import { render, type Desired } from '../../src/dataplane/render.js';
import { Dataplane, DataplaneError } from '../../src/dataplane/apply.js';
import { closedPodChain } from '../../src/dataplane/containment.js';
import { makeRunner, type Runner } from '../../src/dataplane/exec.js';
import { PROGRAMMED_SET, podChainName, policyChainName } from '../../src/dataplane/names.js';
import { interpret, type Packet } from '../../src/iptables/interpret.js';
import { parseIpsetSave, parseIptablesSave } from '../../src/iptables/parse.js';
import { Reconciler } from '../../src/controller/reconciler.js';
import { Metrics } from '../../src/controller/metrics.js';
import { conformanceObjects, podIP, policy } from '../support/conformance.js';
import { applyObjects } from '../support/expectations.js';
import { bins, deleteNamespaces, liveDiff, newNamespace as newNamespace0, sh, until } from '../support/kernel.js';

const newNamespace = (tag: string) => newNamespace0('podwall-refuse', tag);
test.after.always(deleteNamespaces);

const RO = { node: 'node-1', serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] as [number, number] };
const FROM_Y = policy('x', 'from-y', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }] }] });
const BLOCK = (except: string[]) => policy('x', 'block', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except } }] }] });

/** A pod straight into the store, past validation: what "the kernel still refuses" looks like. */
const rawPod = (ns: string, name: string, ip: string, node: string): Pod => ({ kind: 'Pod', namespace: ns, name, labels: { pod: name }, nodeName: node, hostNetwork: false, phase: 'Running', ips: [ip], ports: [] });

function baseStore(): ClusterStore {
  const store = new ClusterStore();
  applyObjects(store, [...conformanceObjects(), FROM_Y, BLOCK(['10.66.0.0/16'])]);
  return store;
}
const desiredOf = (store: ClusterStore): Desired[] => [render(compile(store, { node: 'node-1' }), { ...RO, family: 'ipv4' })];

/** Counts failed restores; refuses lines matching `refuse` after really applying the lines before them. */
function wrap(ns: string, refuse?: (line: string) => boolean): Runner & { failures: number } {
  const real = makeRunner(ns);
  const r = (async (cmd: string, args: string[], input?: string) => {
    if (refuse && cmd === 'ipset' && args[0] === 'restore' && input) {
      const lines = input.split('\n');
      const i = lines.findIndex(refuse);
      if (i >= 0) {
        if (i > 0) await real(cmd, args, `${lines.slice(0, i).join('\n')}\n`);
        r.failures++;
        return { stdout: '', stderr: `ipset v7.17: Error in line ${i + 1}: Kernel error received: refused for the test\n`, code: 1 };
      }
    }
    const out = await real(cmd, args, input);
    if (out.code !== 0) r.failures++;
    return out;
  }) as Runner & { failures: number };
  r.failures = 0;
  return r;
}

/** The verdict of the live tables for a packet (read back with iptables-save / ipset save). */
function liveVerdict(ns: string, backend: 'nft' | 'legacy', p: Packet): string {
  const table = parseIptablesSave(sh(ns, [bins(backend).save.ipv4, '-t', 'filter'])).tables.find((t) => t.name === 'filter')!;
  return interpret(table, parseIpsetSave(sh(ns, ['ipset', 'save'])), p, { localAddresses: ['172.18.0.2', '10.244.1.1'] }).verdict;
}
const fwd = (src: string, dst: string, dport: number): Packet => ({ src, dst, protocol: 'tcp', dport, hook: 'FORWARD', ctstate: 'NEW' });

function members(ns: string, set: string): string[] {
  return parseIpsetSave(sh(ns, ['ipset', 'save', set]))[0]!.members.map((m) => m.entry);
}

function same(t: ExecutionContext, ns: string, backend: 'nft' | 'legacy', d: Desired[], label: string): void {
  t.deepEqual(liveDiff(ns, backend, d, ['ipv4']), [], label);
}

for (const backend of ['nft', 'legacy'] as const) {
  test(`${backend}: a member the kernel refuses (a pod at 0.0.0.0) is left out of its sets; the policy and every other pod are programmed; gone, it is forgotten`, async (t) => {
    const ns = newNamespace(`member-${backend}`);
    const run = wrap(ns);
    const dp = new Dataplane({ netns: ns, backend, families: ['ipv4'], runner: run });
    await dp.init();
    const store = baseStore();
    store.upsert(rawPod('y', 'zero', '0.0.0.0', 'node-2')); // a peer of x/from-y
    store.upsert(rawPod('x', 'zero', '0.0.0.0', 'node-1')); // a local pod: podwall-programmed
    const desired = desiredOf(store);
    const rep = await dp.apply(desired);
    t.log(rep.rejected?.join('\n'));
    t.deepEqual(rep.refusals?.map((r) => [r.kind, r.member]).sort(), [
      ['member', '0.0.0.0'],
      ['member', '0.0.0.0'],
    ]);
    t.true(rep.refusals!.some((r) => r.object === PROGRAMMED_SET), 'the local pod at 0.0.0.0 stays unprogrammed');
    t.true(rep.refusals!.some((r) => r.object.startsWith('KUBE-SRC-') && /policy x\/from-y ingress/.test(r.origin)), 'the peer set of x/from-y');
    t.true(run.failures >= 1 && run.failures <= 3, `failed restores: ${run.failures}`);
    // Everything else is in place: the policy chain, the peer set without 0.0.0.0, every other pod programmed.
    const live = sh(ns, [bins(backend).save.ipv4, '-t', 'filter']);
    t.true(live.includes(`:${policyChainName('x/from-y', 'ingress')}`), 'x/from-y is programmed');
    t.deepEqual(members(ns, PROGRAMMED_SET).sort(), ['x', 'y', 'z'].flatMap((n) => ['a', 'b'].map((p) => podIP(n, p))).sort());
    t.is(liveVerdict(ns, backend, fwd(podIP('y', 'c'), podIP('x', 'a'), 80)), 'ACCEPT', 'y/c -> x/a:80 as x/from-y allows');
    t.is(liveVerdict(ns, backend, fwd(podIP('z', 'c'), podIP('x', 'a'), 80)), 'REJECT');
    // The same render again: no failed restore, nothing written.
    const before = run.failures;
    const again = await dp.apply(desired);
    t.is(run.failures, before, 'known refusals are not tried again');
    t.is(again.ipsetLines + again.iptablesLines, 0);
    // The pods go away: the refusals are forgotten and the node equals the render, without a resync.
    store.remove('Pod', 'y/zero');
    store.remove('Pod', 'x/zero');
    const clean = desiredOf(store);
    const rep2 = await dp.apply(clean);
    t.is(rep2.refusals, undefined);
    same(t, ns, backend, clean, 'recovered');
  });
}

test('nft: a refused nomatch member refuses its whole set: the policy using it is left out and its pods stay closed; a changed policy is tried again', async (t) => {
  const ns = newNamespace('nomatch');
  const run = wrap(ns, (l) => / 10\.66\.0\.0\/16 nomatch/.test(l));
  const dp = new Dataplane({ netns: ns, backend: 'nft', families: ['ipv4'], runner: run });
  await dp.init();
  const store = baseStore();
  const rep = await dp.apply(desiredOf(store));
  t.deepEqual(rep.refusals?.map((r) => r.kind), ['set']);
  t.regex(rep.rejected![0]!, /policy x\/block ingress/);
  const live = sh(ns, ['iptables-nft-save', '-t', 'filter']);
  t.false(live.includes(`:${policyChainName('x/block', 'ingress')}`), 'x/block is left out');
  t.true(live.includes(`:${policyChainName('x/from-y', 'ingress')}`), 'x/from-y is programmed');
  // x/b is isolated by x/block: without its allowances it is closed (10.1.2.3 is inside the block).
  t.is(liveVerdict(ns, 'nft', fwd('10.1.2.3', podIP('x', 'b'), 80)), 'REJECT');
  t.is(liveVerdict(ns, 'nft', fwd(podIP('y', 'c'), podIP('x', 'a'), 80)), 'ACCEPT');
  // The policy changes (another except): tried again at once, and programmed.
  applyObjects(store, [BLOCK(['10.67.0.0/16'])]);
  const rep2 = await dp.apply(desiredOf(store));
  t.is(rep2.refusals, undefined);
  same(t, ns, 'nft', desiredOf(store), 'programmed after the change');
  t.is(liveVerdict(ns, 'nft', fwd('10.1.2.3', podIP('x', 'b'), 80)), 'ACCEPT');
});

test('legacy: a refused pod chain is replaced by a closed chain; the other pods are programmed; a new render tries it again', async (t) => {
  const ns = newNamespace('podchain');
  const dp = new Dataplane({ netns: ns, backend: 'legacy', families: ['ipv4'] });
  await dp.init();
  const store = baseStore();
  const good = desiredOf(store);
  const chain = podChainName('x', 'a');
  // A real refusal: a rule naming a set that does not exist.
  const poisoned = good.map((d) => ({ ...d, chains: d.chains.map((c) => (c.name === chain ? { ...c, rules: [...c.rules.slice(0, 1), { args: ['-m', 'set', '--match-set', 'podwall-no-such-set', 'src', '-j', 'ACCEPT'] }, ...c.rules.slice(1)] } : c)) }));
  const rep = await dp.apply(poisoned);
  t.deepEqual(rep.refusals?.map((r) => [r.kind, r.object]), [['pod-chain', chain]]);
  const table = parseIptablesSave(sh(ns, ['iptables-legacy-save', '-t', 'filter'])).tables[0]!;
  t.deepEqual(
    table.chains.find((c) => c.name === chain)!.rules.map((r) => r.args),
    closedPodChain(chain, 'x/a', 'ipv4').rules.map((r) => r.args),
  );
  t.is(liveVerdict(ns, 'legacy', fwd(podIP('y', 'c'), podIP('x', 'a'), 80)), 'REJECT', 'x/a is closed, even for what x/from-y allows');
  t.is(liveVerdict(ns, 'legacy', fwd(podIP('x', 'a'), '10.1.2.3', 80)), 'REJECT', 'both directions');
  t.is(liveVerdict(ns, 'legacy', { ...fwd(podIP('y', 'c'), podIP('x', 'a'), 80), ctstate: 'ESTABLISHED' }), 'ACCEPT', 'replies pass');
  t.is(liveVerdict(ns, 'legacy', fwd('10.1.2.3', podIP('x', 'b'), 80)), 'ACCEPT', 'x/b is programmed as rendered');
  const rep2 = await dp.apply(good);
  t.is(rep2.refusals, undefined);
  same(t, ns, 'legacy', good, 'the real chain after a new render');
});

test('nft: a refused Service set drops its whitelist rule (fewer exemptions), the rest is programmed; a refusal nothing can contain fails and leaves the previous state', async (t) => {
  const ns = newNamespace('svcset');
  const run = wrap(ns, (l) => l.startsWith('create podwall-service-ports '));
  const dp = new Dataplane({ netns: ns, backend: 'nft', families: ['ipv4'], runner: run });
  await dp.init();
  const store = baseStore();
  applyObjects(store, [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'dns', namespace: 'z' }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 53, protocol: 'UDP' }] } }]);
  const rep = await dp.apply(desiredOf(store));
  t.deepEqual(rep.refusals?.map((r) => [r.kind, r.object]), [['set', 'podwall-service-ports']]);
  const live = sh(ns, ['iptables-nft-save', '-t', 'filter']);
  t.false(live.includes('podwall-service-ports'));
  t.true(live.includes(`:${podChainName('x', 'a')}`));
  // podwall-programmed is used by the fail-closed REJECTs (negated): leaving it out would widen.
  const ns2 = newNamespace('uncontained');
  const dp2 = new Dataplane({ netns: ns2, backend: 'nft', families: ['ipv4'], runner: wrap(ns2, (l) => l.startsWith(`create ${PROGRAMMED_SET} `)) });
  await dp2.init();
  await t.throwsAsync(dp2.apply(desiredOf(store)), { instanceOf: DataplaneError, message: /refused for the test/ });
  t.false(sh(ns2, ['iptables-nft-save', '-t', 'filter']).includes('KUBE-ROUTER-FORWARD'), 'nothing half-programmed: no chain refers to a set that is not there');
});

test('agent loop: a refused member is reported in the status and forgotten when its pod goes away, without a resync', async (t) => {
  const ns = newNamespace('agent');
  const store = baseStore();
  const dp = new Dataplane({ netns: ns, backend: 'nft', families: ['ipv4'] });
  await dp.init();
  const compiler = new IncrementalCompiler(store, 'node-1');
  const metrics = new Metrics();
  const r = new Reconciler<Desired>({
    store,
    node: 'node-1',
    compile: () => compiler.build(),
    render: (plan) => [render(plan, { ...RO, family: 'ipv4' })],
    dataplane: dp,
    metrics,
    logger: pino({ level: 'silent' }),
    syncPeriodMs: 3_600_000,
  });
  r.kick('startup');
  await r.waitForVersion(store.version);
  store.upsert(rawPod('y', 'zero', '0.0.0.0', 'node-2'));
  await r.waitForVersion(store.version);
  await r.idle();
  t.is(r.status.refused?.length, 1);
  t.regex(r.status.refused![0]!, /member 0\.0\.0\.0/);
  t.regex(await metrics.registry.getSingleMetricAsString('podwall_kernel_refusals'), /kind="member"} 1/);
  store.remove('Pod', 'y/zero');
  await r.waitForVersion(store.version);
  await until('the refusal forgotten', async () => (await r.idle(), r.status.refused === undefined));
  t.deepEqual(liveDiff(ns, 'nft', desiredOf(store), ['ipv4']), []);
  t.regex(await metrics.registry.getSingleMetricAsString('podwall_kernel_refusals'), /kind="member"} 0/);
  await r.stop();
});
