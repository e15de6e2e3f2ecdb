import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterStore } from '../../src/cluster/store.js';
import { ManifestSource, digestDir } from '../../src/cluster/manifest-source.js';

const dir = mkdtempSync(join(tmpdir(), 'podwall-src-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const np = (name: string) => `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ${name}, namespace: x}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n`;

async function until(pred: () => boolean | Promise<boolean>, ms = 5000) {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('follows the directory: adds, changes, keeps the last good objects of a broken file, removes deleted files', async (t) => {
  writeFileSync(join(dir, 'a.yaml'), np('deny'));
  const store = new ClusterStore();
  const reports: string[] = [];
  const src = new ManifestSource(dir, store, (r) => reports.push(r.digest), { pollMs: 50, settleMs: 0 });
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
  src.stop();
});
