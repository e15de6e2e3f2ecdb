// The agent's manifests source: follows the directory, reads files once they settle, treats a gone
// or unreadable directory and an empty file as "unavailable" (the store untouched), survives
// rename-replace without its poll, and keeps the last accepted policies across restarts.
import test, { type ExecutionContext } from 'ava';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync, unlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterStore } from '../../src/cluster/store.js';
import { ManifestSource, digestDir, type LoadReport } from '../../src/cluster/manifest-source.js';

const root = mkdtempSync(join(tmpdir(), 'podwall-src-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const newDir = () => {
  const d = join(root, `d${n++}`);
  mkdirSync(d);
  return d;
};

const np = (name: string, spec = '{podSelector: {}, policyTypes: [Ingress]}') => `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ${name}, namespace: x}\nspec: ${spec}\n`;
function source(t: ExecutionContext, dir: string, store: ClusterStore, opts: ConstructorParameters<typeof ManifestSource>[3] = {}, reports: LoadReport[] = []): ManifestSource {
  const s = new ManifestSource(dir, store, (r) => reports.push(r), { pollMs: 50, settleMs: 0, ...opts });
  t.teardown(() => s.stop());
  return s;
}

async function until(pred: () => boolean | Promise<boolean>, ms = 10_000) {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('follows the directory: adds, changes, keeps the last good objects of a broken file, removes deleted files', async (t) => {
  const dir = newDir();
  writeFileSync(join(dir, 'a.yaml'), np('deny'));
  const store = new ClusterStore();
  const src = source(t, dir, store);
  const first = await src.start();
  t.is(first.digest, await digestDir(dir));
  t.true(store.policies.has('x/deny'));

  writeFileSync(join(dir, 'b.yaml'), np('second'));
  await until(() => store.policies.has('x/second'));

  writeFileSync(join(dir, 'a.yaml'), 'kind: NetworkPolicy\nmetadata: {name: deny\n'); // half-written
  await until(async () => src.digest === (await digestDir(dir)));
  t.true(store.policies.has('x/deny'), 'a file that does not parse keeps its last good policy (never widens)');

  unlinkSync(join(dir, 'a.yaml'));
  await until(() => !store.policies.has('x/deny'));
  t.true(store.policies.has('x/second'));
});

test('a file is read once its content has been unchanged for the settle time', async (t) => {
  const dir = newDir();
  writeFileSync(join(dir, 'a.yaml'), np('old'));
  const store = new ClusterStore();
  const src = source(t, dir, store, { settleMs: 400 });
  await src.start();
  await until(() => store.policies.has('x/old'));
  writeFileSync(join(dir, 'a.yaml'), np('new'));
  const r = await src.load();
  t.deepEqual(r.state.settling, [join(dir, 'a.yaml')]);
  t.false(r.complete);
  t.true(store.policies.has('x/old'), 'until it settles, the previous reading of the file holds');
  t.false(store.policies.has('x/new'));
  await until(() => store.policies.has('x/new'));
  t.false(store.policies.has('x/old'));
  t.deepEqual(src.state.settling, []);
});

test('a deletion settles too: a file gone for less than the settle time keeps its policies (a tree restored file by file never opens)', async (t) => {
  const dir = newDir();
  writeFileSync(join(dir, 'a.yaml'), np('allow', '{podSelector: {}, ingress: [{}]}'));
  writeFileSync(join(dir, 'b.yaml'), np('deny'));
  const store = new ClusterStore();
  const src = source(t, dir, store, { settleMs: 400, pollMs: 60_000 });
  await src.start();
  await until(() => store.policies.has('x/deny') && store.policies.has('x/allow'));

  // The directory goes away and comes back one file at a time (cp -r, a restore, an untar).
  rmSync(dir, { recursive: true });
  t.false((await src.load()).state.available);
  mkdirSync(dir);
  writeFileSync(join(dir, 'a.yaml'), np('allow', '{podSelector: {}, ingress: [{}]}'));
  const partial = await src.load();
  t.true(partial.state.available, 'the directory is back');
  t.true(partial.state.settling.includes(join(dir, 'b.yaml')), 'the missing file is reported as settling');
  t.false(partial.complete);
  t.true(store.policies.has('x/deny'), 'a file missing for less than the settle time keeps its policies');
  writeFileSync(join(dir, 'b.yaml'), np('deny'));
  await until(async () => src.digest === (await digestDir(dir)) && src.state.settling.length === 0);
  t.true(store.policies.has('x/deny') && store.policies.has('x/allow'), 'both files read again');

  // A real deletion: in force until the file has been gone for the settle time, then deleted.
  unlinkSync(join(dir, 'b.yaml'));
  await src.load();
  t.true(store.policies.has('x/deny'), 'a deleted file counts once gone for the settle time');
  await until(() => !store.policies.has('x/deny'));
  t.true(store.policies.has('x/allow'));
});

test('an empty file, a gone directory, a FIFO: source unavailable, the store untouched, then back', async (t) => {
  const dir = newDir();
  writeFileSync(join(dir, 'a.yaml'), np('deny'));
  writeFileSync(join(dir, 'b.yaml'), np('other'));
  const store = new ClusterStore();
  const src = source(t, dir, store);
  await src.start();
  const version = store.version;

  writeFileSync(join(dir, 'a.yaml'), '');
  await until(() => !src.state.available);
  t.regex(src.state.reason!, /a\.yaml is empty/);
  t.is(store.version, version);
  writeFileSync(join(dir, 'a.yaml'), np('deny'));
  await until(() => src.state.available);

  rmSync(dir, { recursive: true });
  await until(() => !src.state.available);
  t.regex(src.state.reason!, /the directory is gone/);
  t.true(store.policies.has('x/deny') && store.policies.has('x/other'), 'never "cluster empty"');
  mkdirSync(dir);
  writeFileSync(join(dir, 'a.yaml'), np('deny'));
  await until(() => src.state.available && !store.policies.has('x/other'));
  t.true(store.policies.has('x/deny'));

  execFileSync('mkfifo', [join(dir, 'pipe.yaml')]);
  await until(() => !src.state.available);
  t.regex(src.state.reason!, /pipe\.yaml is not a regular file/);
  unlinkSync(join(dir, 'pipe.yaml'));
  await until(() => src.state.available);
});

test('watching survives rename-replace of a file and of a folder (the poll switched off)', async (t) => {
  const dir = newDir();
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'a.yaml'), np('one'));
  const store = new ClusterStore();
  const src = source(t, dir, store, { pollMs: 3_600_000 });
  await src.start();
  writeFileSync(join(dir, 'sub', '.a.tmp'), np('two'));
  renameSync(join(dir, 'sub', '.a.tmp'), join(dir, 'sub', 'a.yaml'));
  await until(() => store.policies.has('x/two'));
  writeFileSync(join(dir, 'sub', 'a.yaml'), np('three')); // in place, after the rename
  await until(() => store.policies.has('x/three'));
  mkdirSync(join(dir, 'sub.next'));
  writeFileSync(join(dir, 'sub.next', 'a.yaml'), np('four'));
  rmSync(join(dir, 'sub'), { recursive: true });
  renameSync(join(dir, 'sub.next'), join(dir, 'sub'));
  await until(() => store.policies.has('x/four'));
  writeFileSync(join(dir, 'sub', 'a.yaml'), np('five'));
  await until(() => store.policies.has('x/five'));
  t.deepEqual([...store.policies.keys()], ['x/five']);
});

test('DIR as a symlink swapped in one rename (the atomic update of a whole tree) is followed without the poll', async (t) => {
  const base = newDir();
  for (const [v, name] of [['v1', 'one'], ['v2', 'two']] as const) {
    mkdirSync(join(base, v));
    writeFileSync(join(base, v, 'a.yaml'), np(name));
  }
  symlinkSync(join(base, 'v1'), join(base, 'DIR'));
  const store = new ClusterStore();
  await source(t, join(base, 'DIR'), store, { pollMs: 3_600_000 }).start();
  t.true(store.policies.has('x/one'));
  symlinkSync(join(base, 'v2'), join(base, 'DIR.tmp'));
  renameSync(join(base, 'DIR.tmp'), join(base, 'DIR'));
  await until(() => store.policies.has('x/two'));
  writeFileSync(join(base, 'v2', 'b.yaml'), np('three'));
  await until(() => store.policies.has('x/three'));
  t.deepEqual([...store.policies.keys()].sort(), ['x/three', 'x/two']);
});

test('the last accepted policy survives a restart while its file is invalid (the state file)', async (t) => {
  const dir = newDir();
  const stateFile = join(root, `state-${n}.json`);
  writeFileSync(join(dir, 'a.yaml'), np('deny'));
  const first = new ClusterStore();
  const a = source(t, dir, first, { stateFile });
  await a.start();
  a.stop();
  writeFileSync(join(dir, 'a.yaml'), np('deny', '{podselector: {}, ingress: [{}]}'));

  const restarted = new ClusterStore();
  const b = source(t, dir, restarted, { stateFile });
  const r = await b.start();
  t.deepEqual(r.state.rejected, ['NetworkPolicy x/deny']);
  t.deepEqual(restarted.policies.get('x/deny')?.ingress, [], 'the accepted deny, not the invalid allow-all');
  t.true(r.findings.some((f) => f.code === 'kept-last-accepted'));

  // Without the state file (or with another directory's), an invalid object that was never accepted does not exist.
  const fresh = new ClusterStore();
  await source(t, dir, fresh).start();
  t.false(fresh.policies.has('x/deny'));
  const other = new ClusterStore();
  const d2 = newDir();
  writeFileSync(join(d2, 'a.yaml'), np('deny', '{podselector: {}}'));
  await source(t, d2, other, { stateFile }).start();
  t.false(other.policies.has('x/deny'));
});

test('a load with rejected objects reports them every time, warnings only when a file is read', async (t) => {
  const dir = newDir();
  writeFileSync(join(dir, 'a.yaml'), np('bad', '{podselector: {}}'));
  writeFileSync(join(dir, 'b.yaml'), np('ok', '{podSelector: {matchLabels: {on: yes}}}'));
  const store = new ClusterStore();
  const reports: LoadReport[] = [];
  const src = source(t, dir, store, {}, reports);
  await src.start();
  writeFileSync(join(dir, 'c.yaml'), np('more'));
  await until(() => store.policies.has('x/more'));
  const [r1, r2] = [reports[0]!, reports.at(-1)!];
  for (const r of [r1, r2]) t.true(r.findings.some((f) => f.code === 'unknown-field' && f.object === 'NetworkPolicy x/bad'));
  t.true(r1.findings.some((f) => f.code === 'yaml11-boolean'));
  t.false(r2.findings.some((f) => f.code === 'yaml11-boolean'));
  t.is(src.state.errors, 1);
  t.deepEqual(src.state.rejected, ['NetworkPolicy x/bad']);
});
