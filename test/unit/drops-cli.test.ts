// `podwall drops` as a user meets it, without a kernel: a saved capture (-r, recorded in a lab with
// `tcpdump -i nflog:100 -w`) joined with the manifests, filters, JSON lines, and one-line errors.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { filterOptions, sinceOption, type DropsCliOptions } from '../../src/cli/drops.js';
import { loadManifests } from '../../src/cluster/manifests.js';
import { compile } from '../../src/policy/compile.js';
import { joinCapture } from '../../src/drops/stream.js';
import { UserError } from '../../src/cli/common.js';
import { startCapture, CaptureError, describeTcpdumpError } from '../../src/drops/consumer.js';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PCAP = join(ROOT, 'test/fixtures/nflog/shop-node-1.pcap');
const SHOP = ['-f', join(ROOT, 'policies/demo-shop'), '-f', join(ROOT, 'test/fixtures/nflog/egress-lockdown.yaml')];
const dir = mkdtempSync(join(tmpdir(), 'podwall-drops-cli-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, [BIN, 'drops', ...args], { encoding: 'utf8', env });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('-r: a capture from a lab node joined with the manifests; a retransmitted SYN is one line', (t) => {
  const r = run(['-r', PCAP, ...SHOP, '--node', 'node-1']);
  t.is(r.code, 0, r.err);
  const lines = r.out.trim().split('\n');
  t.is(lines.length, 1, r.out);
  t.regex(lines[0]!, /^2026-\S+Z node-1 DENIED {2}monitoring\/prometheus → api\/orders 8080\/TCP {2}ingress of api\/orders: isolated by api\/allow-frontend, api\/allow-scrape and api\/default-deny-ingress; no rule allows monitoring\/prometheus \(nearest miss: rule 0 of api\/allow-frontend allows http\/TCP but monitoring\/prometheus's namespace monitoring does not match namespaceSelector \{tier: frontend\}/);
});

test('-r --audit -o json: the would-be denials of the audited policy, one object per line', (t) => {
  const r = run(['-r', PCAP, ...SHOP, '--audit', '-o', 'json', '-c', '5']);
  t.is(r.code, 0, r.err);
  const objs = r.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(objs.map((o) => [o.type, o.kind, o.verdict, o.direction, o.pod, (o.dst as { pod: string }).pod, o.protocol]), [
    ['drop', 'audit', 'would-deny', 'egress', 'api/orders', 'frontend/web', 'TCP'],
    ['drop', 'audit', 'would-deny', 'egress', 'api/orders', 'monitoring/prometheus', 'UDP'],
  ]);
  t.deepEqual(objs[0]!.policies, ['api/egress-lockdown']);
  t.regex(objs[1]!.why as string, /the connection is 9999\/UDP and the rule has no UDP ports\); let through — api\/egress-lockdown would deny it once enforced$/);
});

test('filters: namespace, pod, policy, since (in process, on the same capture)', async (t) => {
  const { store } = await loadManifests([join(ROOT, 'policies/demo-shop'), join(ROOT, 'test/fixtures/nflog/egress-lockdown.yaml')]);
  const plan = compile(store);
  const bytes = readFileSync(PCAP);
  const count = (o: Partial<DropsCliOptions>) => joinCapture(bytes, plan, filterOptions({ output: 'json', countersInterval: '5s', ...o })).length;
  t.is(count({}), 1);
  t.is(count({ namespace: 'monitoring' }), 1);
  t.is(count({ namespace: 'db' }), 0);
  t.is(count({ pod: 'api/orders' }), 1);
  t.is(count({ namespace: 'api', pod: 'orders', audit: true }), 2);
  t.is(count({ policy: 'api/allow-scrape' }), 1);
  t.is(count({ policy: 'api/egress-lockdown' }), 0, 'an audited policy takes no part in denials');
  t.is(count({ policy: 'egress-lockdown', namespace: 'api', audit: true }), 2);
  t.is(count({ since: '2026-11-26T10:02:48Z', audit: true }), 2);
  t.is(count({ since: '2027-01-01T00:00:00Z', audit: true }), 0);
});

test('bad input: one line, the right exit code', (t) => {
  const live = run(['--since', '10m', ...SHOP]);
  t.is(live.code, 2);
  t.is(live.err, 'podwall: --since needs -r FILE: NFLOG keeps no history (record one with tcpdump -i nflog:100 -w FILE); live entries are always new\n');
  t.regex(run(['-r', join(dir, 'none.pcap'), ...SHOP]).err, /^podwall: -r \S+none\.pcap: no such file\n$/);
  writeFileSync(join(dir, 'text.pcap'), 'not a capture at all, just text\n');
  t.regex(run(['-r', join(dir, 'text.pcap'), ...SHOP]).err, /^podwall: -r \S+text\.pcap: not a pcap stream \(magic 0x[0-9a-f]{8}\) \(write one with tcpdump -i nflog:100 -w FILE\)\n$/);
  t.is(run(['-r', PCAP, ...SHOP, '--pod', 'orders']).err, 'podwall: --pod "orders": expected namespace/pod (or a name with --namespace)\n');
});

test('a missing tcpdump is one line naming the Debian package', async (t) => {
  const r = run([...SHOP], { ...process.env, PATH: '/nonexistent' });
  t.is(r.code, 1);
  t.is(r.err, 'podwall: podwall drops reads NFLOG with tcpdump, which is not installed: install the Debian package tcpdump (apt-get install tcpdump)\n');
  await t.throwsAsync(() => startCapture(() => {}, { exists: () => false }), { instanceOf: CaptureError, message: /install the Debian package tcpdump/ });
});

test('what tcpdump says becomes one line', (t) => {
  t.regex(describeTcpdumpError("tcpdump: Can't listen on group index: Operation not permitted\n", 100, 'n1'), /^NFLOG group 100 is already read by another process in network namespace n1 \(the kernel allows one reader per group/);
  t.regex(describeTcpdumpError('tcpdump: NFULNL_CFG_CMD_PF_UNBIND: Operation not permitted\n', 100), /^reading NFLOG group 100 needs root \(CAP_NET_ADMIN\)/);
  t.regex(describeTcpdumpError('tcpdump: nflog:100: No such device exists\n', 100), /^tcpdump cannot open nflog:100: /);
  t.is(describeTcpdumpError('', 100), 'tcpdump could not read nflog:100: it exited without a message');
});

test('flag parsing: --since, --pod with --namespace, bad values', (t) => {
  t.throws(() => filterOptions({ since: 'yesterday', output: 'text', countersInterval: '5s' }), { instanceOf: UserError, message: /--since "yesterday": expected a duration/ });
  t.throws(() => filterOptions({ policy: 'nope', output: 'text', countersInterval: '5s' }), { instanceOf: UserError, message: /--policy "nope": expected namespace\/name/ });
  t.is(sinceOption('10m', 1_000_000), 400_000);
  t.is(sinceOption('2026-01-31T12:00:00Z'), Date.UTC(2026, 0, 31, 12));
  t.throws(() => sinceOption('soon'), { instanceOf: UserError });
  t.deepEqual(filterOptions({ namespace: 'y', pod: 'b', policy: 'deny-all', output: 'text', countersInterval: '5s' }), { audit: false, namespace: 'y', pod: 'y/b', policy: 'y/deny-all' });
  // A ClusterNetworkPolicy by name, never put in a namespace.
  t.deepEqual(filterOptions({ namespace: 'y', policy: 'cnp:guard', output: 'text', countersInterval: '5s' }), { audit: false, namespace: 'y', policy: 'cnp:guard' });
  t.throws(() => filterOptions({ policy: 'cnp:a/b', output: 'text', countersInterval: '5s' }), { instanceOf: UserError, message: /or cnp:NAME for a ClusterNetworkPolicy/ });
});
