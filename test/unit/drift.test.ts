// Drift detection without a kernel: the nft monitor parser and its filter, the set-header and full
// comparisons, the watcher (a fake monitor process and target), the dataplane's cheap check and its
// refusal to act on a torn read (a fake runner), and the reconciler's drift path.
import test from 'ava';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ChildProcess } from 'node:child_process';
import pino from 'pino';
import { MonitorParser, parseIpsetTerse, relevantChanges, setDrift, setHeaderDrift, familyDrift } from '../../src/dataplane/drift.js';
import { DriftWatcher, type DriftCheckScope, type DriftTarget } from '../../src/dataplane/drift-watch.js';
import { Dataplane, DataplaneError } from '../../src/dataplane/apply.js';
import { familyStateFromSave, setStateFromSave, type SetState } from '../../src/dataplane/diff.js';
import { ownedIpsetLines, ownedLines } from '../../src/dataplane/apply.js';
import type { Runner } from '../../src/dataplane/exec.js';
import { render, type Desired } from '../../src/dataplane/render.js';
import { writeIpsetSave, writeSave } from '../../src/iptables/write.js';
import type { IptRule } from '../../src/iptables/model.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { Reconciler, type ApplyOutcome, type DataplanePort } from '../../src/controller/reconciler.js';
import { Metrics } from '../../src/controller/metrics.js';
import type { Plan } from '../../src/policy/plan.js';
import { RO, plan, pod, podPeer, policy, port, rule } from './dataplane-fixtures.js';
import { until } from '../support/kernel.js';

// ---------------------------------------------------------------------------------------------
// nft monitor

const MONITOR = `insert rule ip filter FORWARD counter packets 0 bytes 0 accept
# new generation 5 by process 15097 (iptables-nft)
delete rule ip filter KUBE-ROUTER-FORWARD handle 2
# new generation 6 by process 15098 (iptables-nft)
add rule ip filter KUBE-FORWARD ct state invalid counter packets 0 bytes 0 drop
# new generation 7 by process 15099 (iptables-nft)
add table ip nat
add chain ip nat POSTROUTING { type nat hook postrouting priority srcnat; policy accept; }
add rule ip nat POSTROUTING counter packets 0 bytes 0 masquerade
# new generation 8 by process 15103 (iptables-nft)
add rule ip6 filter FORWARD counter packets 0 bytes 0 accept
# new generation 9 by process 15104 (ip6tables-nft)
delete table ip filter
# new generation 10 by process 15105 (nft)
flush chain ip filter PODWALL-DST-PODS
# new generation 11 by process 15106 (iptables-nft-re)
`;

test('monitor parser: transactions with their pid, whatever the chunks', (t) => {
  const whole = new MonitorParser().push(MONITOR);
  const p = new MonitorParser();
  const pieces: ReturnType<MonitorParser['push']> = [];
  for (let i = 0; i < MONITOR.length; i += 7) pieces.push(...p.push(MONITOR.slice(i, i + 7)));
  t.deepEqual(pieces, whole);
  t.deepEqual(
    whole.map((b) => [b.pid, b.process, b.lines.length]),
    [
      [15097, 'iptables-nft', 1],
      [15098, 'iptables-nft', 1],
      [15099, 'iptables-nft', 1],
      [15103, 'iptables-nft', 3],
      [15104, 'ip6tables-nft', 1],
      [15105, 'nft', 1],
      [15106, 'iptables-nft-re', 1],
    ],
  );
});

test('monitor filter: hook chains, owned chains and the table of a managed family; not kube-proxy chains, nat or another family', (t) => {
  const batches = new MonitorParser().push(MONITOR);
  t.deepEqual(
    batches.map((b) => relevantChanges(b, ['ipv4']).length),
    [1, 1, 0, 0, 0, 1, 1],
  );
  t.deepEqual(
    batches.map((b) => relevantChanges(b, ['ipv4', 'ipv6']).length),
    [1, 1, 0, 0, 1, 1, 1],
  );
});

// ---------------------------------------------------------------------------------------------
// comparisons

const TERSE = `Name: KUBE-SRC-AAAA
Type: hash:ip
Revision: 6
Header: family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1
Size in memory: 296
References: 1
Number of entries: 3
Members:

Name: inet6:KUBE-SRC-BBBB
Type: hash:net
Revision: 7
Header: family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x2
Size in memory: 1000
References: 1
Number of entries: 0
Members:

Name: someone-else
Type: bitmap:port
Revision: 3
Header: range 0-1023
Size in memory: 200
References: 0
Number of entries: 1
Members:
`;

const ipset = (name: string, entries: string[], type = 'hash:ip', family: 'inet' | 'inet6' = 'inet') => ({ name, type, family, options: [], members: entries.map((entry) => ({ entry })) });

test('ipset list -t: name, type, family and the number of entries', (t) => {
  const h = parseIpsetTerse(TERSE);
  t.deepEqual([...h.values()], [
    { name: 'KUBE-SRC-AAAA', type: 'hash:ip', family: 'inet', entries: 3 },
    { name: 'inet6:KUBE-SRC-BBBB', type: 'hash:net', family: 'inet6', entries: 0 },
    { name: 'someone-else', type: 'bitmap:port', entries: 1 },
  ]);
});

test('set headers: a smuggled or removed member changes the count; a set gone, retyped or new is drift; others\' sets are not', (t) => {
  const h = parseIpsetTerse(TERSE);
  const exp: SetState = new Map([['KUBE-SRC-AAAA', ipset('KUBE-SRC-AAAA', ['10.0.0.1', '10.0.0.2', '10.0.0.3'])]]);
  t.deepEqual(setHeaderDrift(exp, h, ['ipv4']), [], 'IPv6 sets are not managed here');
  t.deepEqual(setHeaderDrift(exp, h, ['ipv4', 'ipv6']), ['set inet6:KUBE-SRC-BBBB appeared']);
  t.deepEqual(setHeaderDrift(new Map([['KUBE-SRC-AAAA', ipset('KUBE-SRC-AAAA', ['10.0.0.1', '10.0.0.2'])]]), h, ['ipv4']), ['set KUBE-SRC-AAAA has 3 entries, not 2']);
  t.deepEqual(setHeaderDrift(new Map([['KUBE-SRC-CCCC', ipset('KUBE-SRC-CCCC', [])]]), h, ['ipv4']), ['set KUBE-SRC-CCCC is gone', 'set KUBE-SRC-AAAA appeared']);
  t.deepEqual(setHeaderDrift(new Map([['KUBE-SRC-AAAA', ipset('KUBE-SRC-AAAA', ['1', '2', '3'], 'hash:net')]]), h, ['ipv4']), ['set KUBE-SRC-AAAA is hash:ip, not hash:net']);
});

test('full set comparison: a member replaced by another (same count) is drift', (t) => {
  const exp: SetState = new Map([['S', ipset('S', ['10.0.0.1', '10.0.0.2'])]]);
  t.deepEqual(setDrift(exp, new Map([['S', ipset('S', ['10.0.0.2', '10.0.0.1'])]])), []);
  t.deepEqual(setDrift(exp, new Map([['S', ipset('S', ['10.0.0.1', '10.0.0.9'])]])), ['set S: 1 member(s) added (10.0.0.9), 1 removed (10.0.0.2)']);
});

function desired(): Desired {
  return render(
    plan(
      [pod('a', 'p', ['10.244.1.5'], { ingress: ['a/x'] })],
      [policy('a/x', ['ingress'], ['a/p'], [rule('a/x', 'ingress', 0, [podPeer('a/x/ingress/0/0', 0, ['10.244.2.1', '10.244.2.2'])], [port('TCP', 0, 80)])])],
    ),
    { ...RO, family: 'ipv4' },
  );
}

/** The iptables-save text of a node holding `d` (plus `extra` rules in hook chains, before the jumps). */
function saveOf(d: Desired, mutate: (chains: Map<string, IptRule[]>) => void = () => {}, extraFirst: Record<string, IptRule[]> = {}): string {
  const chains = new Map<string, IptRule[]>(d.chains.map((c) => [c.name, c.rules.map((r) => ({ args: [...r.args] }))]));
  for (const h of ['INPUT', 'FORWARD', 'OUTPUT']) chains.set(h, [...(extraFirst[h] ?? []), ...d.jumps.filter((j) => j.chain === h).map((j) => j.rule)]);
  mutate(chains);
  return writeSave({ tables: [{ name: 'filter', chains: [...chains].map(([name, rules]) => ({ name, policy: ['INPUT', 'FORWARD', 'OUTPUT'].includes(name) ? 'ACCEPT' : '-', rules })) }] });
}

test('family comparison: a flushed chain, a jump not first, a jump gone, a chain added', (t) => {
  const d = desired();
  const exp = familyStateFromSave(saveOf(d));
  t.deepEqual(familyDrift('ipv4', exp, familyStateFromSave(saveOf(d))), []);
  t.deepEqual(familyDrift('ipv4', exp, familyStateFromSave(saveOf(d, (c) => c.set('KUBE-ROUTER-FORWARD', [])))), [`ipv4 chain KUBE-ROUTER-FORWARD changed (${d.chains.find((c) => c.name === 'KUBE-ROUTER-FORWARD')!.rules.length} rules expected, 0 found)`]);
  t.deepEqual(familyDrift('ipv4', exp, familyStateFromSave(saveOf(d, () => {}, { FORWARD: [{ args: ['-j', 'ACCEPT'] }] }))), ["ipv4 FORWARD: podwall's jump is at 2, not 1"]);
  t.deepEqual(familyDrift('ipv4', exp, familyStateFromSave(saveOf(d, (c) => c.set('FORWARD', [])))), ["ipv4 FORWARD: podwall's jump is gone"]);
  t.deepEqual(familyDrift('ipv4', exp, familyStateFromSave(saveOf(d, (c) => c.set('KUBE-POD-FW-EXTRA', [])))), ['ipv4 chain KUBE-POD-FW-EXTRA appeared']);
});

test('owned text (the torn-read key and the check baseline): equal exactly when the owned state is equal', (t) => {
  const d = desired();
  const key = (save: string, sets = writeIpsetSave(d.sets)) => `${ownedLines(save)}\n${ownedIpsetLines(sets)}`;
  const a = key(saveOf(d));
  t.is(key(`# Generated by iptables-save v1.8.9 on another day\n${saveOf(d).replace(':FORWARD ACCEPT [0:0]', ':FORWARD ACCEPT [812:99120]')}`, `create foreign hash:ip family inet\nadd foreign 1.2.3.4\n${writeIpsetSave(d.sets)}`), a, 'comments, counters and others\' sets do not matter');
  t.not(key(saveOf(d, (c) => c.set('KUBE-ROUTER-FORWARD', []))), a, 'a flushed chain');
  t.not(key(saveOf(d, () => {}, { FORWARD: [{ args: ['-j', 'ACCEPT'] }] })), a, 'a rule before the jump');
  t.not(key(saveOf(d), writeIpsetSave(d.sets.map((s, i) => (i === 0 ? { ...s, members: [...s.members, { entry: '10.9.9.9' }] } : s)))), a, 'a member added');
});

// ---------------------------------------------------------------------------------------------
// The dataplane: a fake kernel whose save output the test sets

interface FakeKernel {
  save: string;
  ipsets: string;
  /** Save outputs to hand out first, one per call (a table someone is changing). */
  queue: string[];
  restores: number;
}

function fakeDataplane(k: FakeKernel): Dataplane {
  const runner: Runner = async (cmd, args) => {
    if (cmd.endsWith('-save')) return { stdout: k.queue.shift() ?? k.save, stderr: '', code: 0 };
    if (cmd === 'ipset' && args[0] === 'save') return { stdout: k.ipsets, stderr: '', code: 0 };
    if (cmd === 'ipset' && args[0] === 'list') {
      const sets = setStateFromSave(k.ipsets, ['ipv4']);
      return { stdout: [...sets.values()].map((s) => `Name: ${s.name}\nType: ${s.type}\nHeader: family ${s.family}\nNumber of entries: ${s.members.length}\nMembers:\n`).join('\n'), stderr: '', code: 0 };
    }
    if (cmd.includes('restore')) k.restores++;
    return { stdout: '', stderr: '', code: 0 };
  };
  return new Dataplane({ backend: 'nft', families: ['ipv4'], runner });
}

test('dataplane check: nothing while in sync; each kind of tampering is named; nothing before the first apply', async (t) => {
  const d = desired();
  const k: FakeKernel = { save: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n', ipsets: '', queue: [], restores: 0 };
  const dp = fakeDataplane(k);
  await dp.init();
  t.deepEqual(await dp.checkDrift({ tables: true, members: true }), [], 'nothing applied yet: nothing to compare');
  await dp.apply([d]);
  k.save = saveOf(d);
  k.ipsets = writeIpsetSave(d.sets);
  const all: DriftCheckScope = { tables: true, members: true };
  t.deepEqual(await dp.checkDrift(all), []);
  t.deepEqual(await dp.checkDrift({ tables: false, members: false }), []);
  k.save = saveOf(d, () => {}, { FORWARD: [{ args: ['-j', 'ACCEPT'] }] });
  t.deepEqual(await dp.checkDrift(all), ["ipv4 FORWARD: podwall's jump is at 2, not 1"]);
  t.deepEqual(await dp.checkDrift({ tables: false, members: false }), [], 'without tables only the sets are read');
  k.save = saveOf(d);
  const peer = d.sets.find((s) => s.name.startsWith('KUBE-SRC-'))!;
  k.ipsets = writeIpsetSave(d.sets.map((s) => (s === peer ? { ...s, members: [...s.members, { entry: '10.9.9.9' }] } : s)));
  t.deepEqual(await dp.checkDrift({ tables: false, members: false }), [`set ${peer.name} has 3 entries, not 2`]);
  t.deepEqual(await dp.checkDrift(all), [`set ${peer.name}: 1 member(s) added (10.9.9.9)`]);
});

test('resync never acts on a torn read: it reads until two reads agree, and gives up (writing nothing) when they never do', async (t) => {
  const d = desired();
  const k: FakeKernel = { save: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n', ipsets: '', queue: [], restores: 0 };
  const dp = fakeDataplane(k);
  await dp.init();
  await dp.apply([d]);
  k.save = saveOf(d);
  k.ipsets = writeIpsetSave(d.sets);
  const torn = saveOf(d, (c) => c.set('KUBE-ROUTER-FORWARD', c.get('KUBE-ROUTER-FORWARD')!.slice(1)));
  // One torn read first, then the settled state: the resync sees no drift and writes nothing.
  k.queue = [torn];
  const before = k.restores;
  const r = await dp.resync([d]);
  t.is(r.drift, 0);
  t.is(k.restores, before, 'nothing written');
  // Always changing: refuses to act.
  k.queue = Array.from({ length: 12 }, (_, i) => (i % 2 ? torn : saveOf(d)));
  const e = await t.throwsAsync(dp.resync([d]), { instanceOf: DataplaneError });
  t.regex(e!.message, /torn read/);
  t.is(k.restores, before, 'still nothing written');
});

// ---------------------------------------------------------------------------------------------
// The watcher

function fakeMonitor(): ChildProcess & { feed(text: string): void } {
  const e = new EventEmitter() as ChildProcess & { feed(text: string): void };
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  Object.assign(e, { stdout, stderr, exitCode: null, signalCode: null });
  e.kill = (() => {
    (e as { exitCode: number | null }).exitCode = 0;
    setImmediate(() => e.emit('exit', 0, null));
    return true;
  }) as ChildProcess['kill'];
  e.feed = (text) => stdout.write(text);
  setImmediate(() => e.emit('spawn'));
  return e;
}

function fakeTarget(backend: 'nft' | 'legacy', answer: string[] = []): DriftTarget & { scopes: DriftCheckScope[]; own: Set<number> } {
  const scopes: DriftCheckScope[] = [];
  const own = new Set<number>();
  return { backend, families: ['ipv4'], scopes, own, isOwnPid: (pid) => own.has(pid), checkDrift: async (s) => (scopes.push(s), answer) };
}

const quiet = pino({ level: 'silent' });

test('watcher (nft): a foreign transaction on a hook or owned chain is drift at once; its own restores, others\' chains and nat are not', async (t) => {
  const target = fakeTarget('nft');
  target.own.add(15098);
  const mon = fakeMonitor();
  const seen: [string[], string][] = [];
  const w = new DriftWatcher({ target, periodMs: 0, logger: quiet, spawnMonitor: () => mon, onDrift: (what, _at, source) => seen.push([what, source]) });
  w.start();
  mon.feed(MONITOR);
  await new Promise((r) => setImmediate(r));
  t.deepEqual(
    seen.map(([what, source]) => [what.length, source]),
    [
      [1, 'nft-monitor'], // insert at FORWARD by pid 15097
      [1, 'nft-monitor'], // delete table ip filter
      [1, 'nft-monitor'], // flush of PODWALL-DST-PODS
    ],
  );
  t.regex(seen[0]![0][0]!, /^iptables-nft \(pid 15097\): insert rule ip filter FORWARD/);
  await w.stop();
});

test('watcher: everything once at start; ticks read the set headers; with the legacy backend or the monitor down the tables too; every nth tick everything', async (t) => {
  const legacy = fakeTarget('legacy');
  const w = new DriftWatcher({ target: legacy, periodMs: 5, fullEvery: 3, logger: quiet, onDrift: () => {} });
  w.start();
  await until('five checks', () => legacy.scopes.length >= 5);
  await w.stop();
  t.deepEqual(legacy.scopes[0], { tables: true, members: true }, 'one full check at start');
  t.deepEqual(legacy.scopes.slice(1, 4), [
    { tables: true, members: false },
    { tables: true, members: false },
    { tables: true, members: true },
  ]);
  const nft = fakeTarget('nft', ['set S has 3 entries, not 2']);
  const mon = fakeMonitor();
  const seen: string[] = [];
  const w2 = new DriftWatcher({ target: nft, periodMs: 5, fullEvery: 100, logger: quiet, spawnMonitor: () => mon, onDrift: (_w, _a, source) => seen.push(source) });
  w2.start();
  await until('the monitor up', () => w2.monitoring());
  const from = nft.scopes.length;
  await until('three checks', () => nft.scopes.length >= from + 3);
  t.true(nft.scopes.slice(from).every((s) => !s.tables), 'monitor up: set headers only');
  t.deepEqual([...new Set(seen)].sort(), ['check', 'full-check'], 'the start check, then ticks');
  // The monitor dies: the ticks read the tables until it is back.
  mon.kill();
  await until('the monitor down', () => !w2.monitoring());
  const down = nft.scopes.length;
  await until('two more checks', () => nft.scopes.length >= down + 2);
  t.true(nft.scopes.slice(down).every((s) => s.tables));
  await w2.stop();
});

// ---------------------------------------------------------------------------------------------
// The reconciler

class DriftyDataplane implements DataplanePort<Plan> {
  resyncs = 0;
  applies = 0;
  failResync = 0;
  async apply(): Promise<ApplyOutcome> {
    this.applies++;
    return { ipsetLines: 0, iptablesLines: 0, chains: 0, sets: 0 };
  }
  async resync(): Promise<ApplyOutcome & { drift: number; driftWhat: string[] }> {
    this.resyncs++;
    if (this.failResync > 0) {
      this.failResync--;
      throw new DataplaneError('torn read');
    }
    return { ipsetLines: 0, iptablesLines: 4, chains: 0, sets: 0, drift: 1, driftWhat: ["ipv4 FORWARD: podwall's jump is gone"] };
  }
}

test('reconciler: drift resyncs at once, counts the repair and its time; a failed repair is retried as a resync', async (t) => {
  const store = new ClusterStore();
  const dp = new DriftyDataplane();
  const metrics = new Metrics();
  const r = new Reconciler({ store, node: 'n1', render: (p) => [p], dataplane: dp, metrics, logger: quiet, syncPeriodMs: 3_600_000, backoff: { initialMs: 5, maxMs: 10 } });
  r.drift(["ipv4 FORWARD: podwall's jump is gone"], performance.now(), 'nft-monitor');
  await r.idle();
  t.is(dp.resyncs, 1);
  t.is(dp.applies, 0);
  t.regex(await metrics.registry.getSingleMetricAsString('podwall_drift_repairs_total'), / 1$/m);
  t.regex(await metrics.registry.getSingleMetricAsString('podwall_drift_repair_seconds'), /podwall_drift_repair_seconds_count 1/);
  t.regex(await metrics.registry.getSingleMetricAsString('podwall_drift_detected_total'), /source="nft-monitor"} 1/);
  dp.failResync = 1;
  r.drift(['set S has 3 entries, not 2'], performance.now(), 'check');
  await new Promise((res) => setTimeout(res, 50));
  await r.idle();
  t.is(dp.resyncs, 3, 'the failed repair was retried as a resync');
  t.is(dp.applies, 0);
  t.regex(await metrics.registry.getSingleMetricAsString('podwall_drift_repair_seconds'), /podwall_drift_repair_seconds_count 2/);
  await r.stop();
});

test('the first apply after a read-back puts podwall\'s jumps first (a foreign rule inserted before them while the agent was down)', async (t) => {
  const d = desired();
  const payloads: string[] = [];
  const runner: Runner = async (cmd, _args, input) => {
    if (cmd.endsWith('-save')) return { stdout: saveOf(d, () => {}, { FORWARD: [{ args: ['-j', 'ACCEPT'] }] }), stderr: '', code: 0 };
    if (cmd === 'ipset') return { stdout: '', stderr: '', code: 0 };
    if (cmd.includes('restore') && cmd.includes('iptables')) payloads.push(input ?? '');
    return { stdout: '', stderr: '', code: 0 };
  };
  const dp = new Dataplane({ backend: 'nft', families: ['ipv4'], runner });
  await dp.init();
  await dp.apply([d]);
  t.is(payloads.length, 1);
  t.regex(payloads[0]!, /^-D FORWARD .*-j KUBE-ROUTER-FORWARD$/m);
  t.regex(payloads[0]!, /^-I FORWARD 1 .*-j KUBE-ROUTER-FORWARD$/m);
  await dp.apply([d]);
  t.is(payloads.length, 1, 'then from memory: nothing to write');
});
