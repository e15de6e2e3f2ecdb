// `podwall lab drops` on a real lab: denied probes appear naming the right pod, policies and rule (a
// ClusterNetworkPolicy Deny rule too); an audited policy's probe passes and is logged as "would deny";
// an enforced and an audited policy on the same pod behave as specified (the enforced one decides,
// nothing is audited there); what the rate limit kept out of the log is reported; a node without
// podwall's rules and a taken NFLOG group are refused with one line.
import test from 'ava';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { conformanceObjects, podIP, policy, writeManifests, type Raw } from '../support/conformance.js';
import { LAB_METRICS_PORT, labDown, labUp, waitForAgents } from '../../src/lab/lab.js';
import { readState } from '../../src/lab/state.js';
import { probeAllDetailed } from '../../src/lab/probe.js';
import { probeSocketPath } from '../../src/lab/servers.js';
import { killAndWait } from '../../src/lab/netns.js';
import { deleteNamespaces, newNamespace, until } from '../support/kernel.js';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'podwall-drops-'));
const name = `d${randomBytes(2).toString('hex')}`;
const children: ChildProcess[] = [];
test.after.always(async () => {
  for (const c of children) if (c.pid !== undefined && c.exitCode === null) await killAndWait([c.pid]).catch(() => {});
  await labDown(name).catch(() => {});
  deleteNamespaces();
  rmSync(dir, { recursive: true, force: true });
});

const AUDIT = { 'podwall.io/enforcement': 'audit' };
const annotated = (p: Raw): Raw => ({ ...p, metadata: { ...(p.metadata as object), annotations: AUDIT } });
const POLICIES: Raw[] = [
  // y/b: enforced — a deny-all and an allow-web that wants pod=frontend.
  policy('y', 'deny-all', { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Ingress'] }),
  policy('y', 'allow-web', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'frontend' } } }], ports: [{ port: 80, protocol: 'TCP' }] }] }),
  // z/b (node-1): only an audited policy, admitting pod a of any namespace.
  annotated(policy('z', 'new-policy', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'a' } } }] }] })),
  // z/c (node-2): enforced admits x/a only; an audited deny-all on the same pod.
  policy('z', 'enforced-c', { podSelector: { matchLabels: { pod: 'c' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } }, podSelector: { matchLabels: { pod: 'a' } } }] }] }),
  annotated(policy('z', 'staged-c', { podSelector: { matchLabels: { pod: 'c' } }, policyTypes: ['Ingress'] })),
  // x/c (node-2): egress only to namespace z.
  policy('x', 'egress-z', { podSelector: { matchLabels: { pod: 'c' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }] }),
  // Namespace x's pods: the Admin tier denies ingress from namespace y (nothing else probes into x).
  {
    apiVersion: 'policy.networking.k8s.io/v1alpha2',
    kind: 'ClusterNetworkPolicy',
    metadata: { name: 'guard' },
    spec: { tier: 'Admin', priority: 10, subject: { namespaces: { matchLabels: { ns: 'x' } } }, ingress: [{ name: 'deny-y', action: 'Deny', from: [{ namespaces: { matchLabels: { ns: 'y' } } }] }] },
  },
];

interface Line {
  type: string;
  [k: string]: unknown;
}

/** `podwall lab drops` as a child: its JSON lines as they arrive. */
function startDrops(args: string[]): { lines: Line[]; arrived: number[]; stderr: () => string; child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, [BIN, 'lab', 'drops', '--name', name, '-o', 'json', '--counters-interval', '1s', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: Line[] = [];
  const arrived: number[] = [];
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
    let nl;
    while ((nl = out.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(out.slice(0, nl)) as Line);
      arrived.push(Date.now());
      out = out.slice(nl + 1);
    }
  });
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  // It says on stderr once every node's tcpdump has bound the group.
  const ready = until('lab drops to start reading', () => /reading NFLOG group 100/.test(err) || (child.exitCode !== null ? Promise.reject(new Error(err)) : false), 30_000).then(() => undefined);
  ready.catch(() => {}); // awaited by the tests that expect it to start
  return { lines, arrived, stderr: () => err, child, ready };
}

async function stop(c: ChildProcess): Promise<number | null> {
  if (c.exitCode !== null) return c.exitCode;
  const done = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
  c.kill('SIGINT');
  return done;
}

/** Opens one TCP connection from a pod to another pod's address (through the pod's server); true when it connected. */
async function probe(from: [string, string], to: [string, string], port = 80): Promise<{ ok: boolean; at: number }> {
  const st = readState(name);
  if (!st.ok) throw new Error(st.error);
  const pod = st.state.pods.find((p) => p.key === `${from[0]}/${from[1]}`)!;
  const [r] = await probeAllDetailed([{ fromNs: pod.ns, toIp: podIP(...to), port, protocol: 'TCP' }], { timeoutMs: 2000, socketFor: (ns) => probeSocketPath(name, ns) });
  return { ok: r!.ok, at: Date.now() };
}

const drops = (lines: Line[]) => lines.filter((l) => l.type === 'drop');

function st() {
  const s = readState(name);
  if (!s.ok) throw new Error(s.error);
  return s.state;
}

/** The metrics of the agent in a node's namespace. */
function scrape(ns: string): string {
  return execFileSync('ip', ['netns', 'exec', ns, process.execPath, '-e', `fetch('http://127.0.0.1:${LAB_METRICS_PORT}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`], { encoding: 'utf8' });
}

test.serial('lab drops: denials name pod, policies and nearest miss; audited policies log "would deny" and let through', async (t) => {
  writeManifests(dir, [...conformanceObjects(), ...POLICIES]);
  await labUp({ dir, name });
  await waitForAgents(name);

  const d = startDrops([]);
  await d.ready;
  // Denied: x/b → y/b 80/TCP (ingress of y/b, on node-1).
  const p1 = await probe(['x', 'b'], ['y', 'b']);
  t.false(p1.ok, 'the kernel refuses x/b → y/b');
  const hit = await until('the denial of x/b → y/b', () => drops(d.lines).find((l) => (l.src as { pod?: string }).pod === 'x/b' && (l.dst as { pod?: string }).pod === 'y/b'), 10_000);
  const arrived = d.arrived[d.lines.indexOf(hit)]!;
  t.log(`x/b → y/b refused; its entry was printed ${arrived - Date.parse(hit.time as string)} ms after the kernel logged it, ${arrived - p1.at} ms after the probe returned`);
  t.like(hit, { kind: 'deny', verdict: 'denied', direction: 'ingress', pod: 'y/b', node: 'node-1', protocol: 'TCP' });
  t.deepEqual(hit.policies, ['y/allow-web', 'y/deny-all']);
  t.regex(hit.why as string, /^ingress of y\/b: isolated by y\/allow-web and y\/deny-all; no rule allows x\/b \(nearest miss: rule 0 of y\/allow-web allows 80\/TCP but x\/b does not match podSelector \{pod: frontend\}/);
  t.is((hit.dst as { port: number }).port, 80);

  // Egress, judged on node-2: x/c → y/a.
  const p2 = await probe(['x', 'c'], ['y', 'a']);
  t.false(p2.ok);
  const eg = await until('the egress denial of x/c', () => drops(d.lines).find((l) => l.pod === 'x/c'), 10_000);
  t.like(eg, { direction: 'egress', node: 'node-2' });
  t.deepEqual(eg.policies, ['x/egress-z']);

  // A ClusterNetworkPolicy Deny rule (Admin tier) on x/b: the policy, rule, tier and priority named.
  const p0 = await probe(['y', 'a'], ['x', 'b']);
  t.false(p0.ok, 'the Admin tier refuses y/a → x/b');
  const cn = await until('the ClusterNetworkPolicy denial of y/a → x/b', () => drops(d.lines).find((l) => l.kind === 'cnp'), 10_000);
  t.log(`y/a → x/b refused by a ClusterNetworkPolicy; its entry was printed ${d.arrived[d.lines.indexOf(cn)]! - p0.at} ms after the probe returned`);
  t.like(cn, { verdict: 'denied', direction: 'ingress', pod: 'x/b', node: 'node-1' });
  t.deepEqual(cn.policies, ['cnp:guard']);
  t.regex(cn.why as string, /^ingress of x\/b \(10\.244\.1\.11\): denied by rule 'deny-y' \(Deny\) of ClusterNetworkPolicy guard, Admin tier, priority 10 \(from all pods in namespaces \{ns: y\}, any port\)/);
  t.is(cn.note, undefined);

  // Enforced and audited on z/c: the enforced policy decides both ways; nothing is audited there.
  t.true((await probe(['x', 'a'], ['z', 'c'])).ok, 'z/enforced-c admits x/a (the audited deny-all does not deny it)');
  t.false((await probe(['y', 'a'], ['z', 'c'])).ok, 'z/enforced-c refuses y/a (the audited policy does not weaken it)');
  const zc = await until('the denial of y/a → z/c', () => drops(d.lines).find((l) => l.pod === 'z/c'), 10_000);
  t.deepEqual(zc.policies, ['z/enforced-c'], 'the audited policy is not named as denying');

  // Audited only: x/c → z/b passes.
  t.true((await probe(['x', 'c'], ['z', 'b'])).ok, 'an audited policy lets the connection through');
  // Plenty of denials of y/b: more than the burst of 10 → suppressed entries are reported.
  for (let i = 0; i < 14; i++) t.false((await probe(['z', 'a'], ['y', 'b'])).ok);
  const sup = await until('a suppressed report for y/b', () => d.lines.find((l) => l.type === 'suppressed' && l.pod === 'y/b'), 10_000);
  t.like(sup, { kind: 'deny', direction: 'ingress', limit: '10/min, burst 10' });
  t.true((sup.count as number) >= 1);
  t.false(drops(d.lines).some((l) => l.kind === 'audit'), 'without --audit, no would-be denials');
  t.is(await stop(d.child), 0);
  t.log(`${drops(d.lines).length} denials and ${d.lines.length - drops(d.lines).length} suppressed reports`);

  // --audit: the would-be denial of the audited policy, and only that.
  const a = startDrops(['--audit']);
  await a.ready;
  const p3 = await probe(['y', 'c'], ['z', 'b']);
  t.true(p3.ok, 'let through');
  const would = await until('the would-deny entry of y/c → z/b', () => drops(a.lines).find((l) => (l.src as { pod?: string }).pod === 'y/c'), 10_000);
  t.log(`y/c → z/b let through; its "would deny" entry arrived ${a.arrived[a.lines.indexOf(would)]! - p3.at} ms after the probe returned`);
  t.like(would, { kind: 'audit', verdict: 'would-deny', direction: 'ingress', pod: 'z/b' });
  t.deepEqual(would.policies, ['z/new-policy']);
  t.regex(would.why as string, /would be isolated by z\/new-policy \(audited\); no rule allows y\/c .*let through — z\/new-policy would deny it once enforced/);
  t.true((await probe(['x', 'a'], ['z', 'b'])).ok, 'pod a is admitted by the audited policy');
  t.false((await probe(['y', 'c'], ['y', 'b'])).ok, 'still denied (enforced)');
  // Both are in the table's counters by now; a later denial proves the stream is still reading.
  await until('a second would-deny', async () => ((await probe(['z', 'c'], ['z', 'b'])).ok && drops(a.lines).some((l) => (l.src as { pod?: string }).pod === 'z/c')) || false, 10_000);
  t.false(drops(a.lines).some((l) => (l.src as { pod?: string }).pod === 'x/a'), 'nothing logged for what the audited policy allows');
  t.false(drops(a.lines).some((l) => l.kind === 'deny'), '--audit shows only would-be denials');
  t.is(await stop(a.child), 0);

  // node-1's agent counted every refusal of y/b (16: x/b once, z/a 14 times, y/c once) from the
  // kernel's counters — the log had only 10 of the first 15 — and the would-be denials of z/b.
  const node1 = st().nodes[0]!.ns;
  const want = 'podwall_denied_packets_total{namespace="y",direction="ingress"} 16';
  const text = await until('the agent\'s denial counters', () => {
    const m = scrape(node1);
    return m.includes(want) ? m : false;
  }, 20_000);
  t.true(text.includes('podwall_policy_denied_packets_total{namespace="y",policy="allow-web",direction="ingress"} 16'));
  t.true(text.includes('podwall_policy_denied_packets_total{namespace="y",policy="deny-all",direction="ingress"} 16'));
  const wouldDeny = Number(/podwall_policy_audit_would_deny_packets_total\{namespace="z",policy="new-policy",direction="ingress"\} (\d+)/.exec(text)?.[1]);
  t.true(wouldDeny >= 3, `z/new-policy would have denied ${wouldDeny} packets`);
  t.false(/podwall_policy_audit_would_deny_packets_total\{[^}]*staged-c/.test(text), 'z/staged-c: the enforced policy decides z/c, nothing is audited');
  t.regex(text, /podwall_nflog_suppressed_packets_total\{kind="deny"\} [1-9]/);
  t.regex(text, /podwall_cluster_policy_denied_packets_total\{policy="guard",tier="Admin",direction="ingress"\} [1-9]/);
  t.false(/(denied|would_deny)_packets_total\{[^}]*(pod=|10\.244)/.test(text), 'no pod or IP labels');
});

test.serial('a taken NFLOG group and a node without podwall\'s rules are refused with one line', async (t) => {
  const st = readState(name);
  if (!st.ok) throw new Error(st.error);
  // Someone else reads group 100 on node-2.
  const other = spawn('ip', ['netns', 'exec', st.state.nodes[1]!.ns, 'tcpdump', '-i', 'nflog:100', '-w', '/dev/null'], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(other);
  let err = '';
  other.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  await until('the other reader', () => /listening on/.test(err));
  const busy = startDrops([]);
  const code = await new Promise<number | null>((r) => busy.child.once('exit', (c) => r(c)));
  t.is(code, 1);
  t.regex(busy.stderr(), /^podwall: NFLOG group 100 is already read by another process in network namespace pwl-\S+ \(the kernel allows one reader per group: ulogd2, a tcpdump -i nflog:100, or another podwall drops\?\)\n$/);
  await killAndWait([other.pid!]);

  const bare = newNamespace('pw-drops', 'bare');
  const out = (() => {
    try {
      execFileSync(process.execPath, [BIN, 'drops', '--netns', bare, '-f', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return { code: 0, stderr: '' };
    } catch (e) {
      return { code: (e as { status: number }).status, stderr: (e as { stderr: string }).stderr };
    }
  })();
  t.is(out.code, 1);
  t.regex(out.stderr, new RegExp(`^podwall: no podwall rules in network namespace ${bare} .*: the filter table has no KUBE-ROUTER-FORWARD chain .*is the podwall agent running here\\?\\n$`));
});
