// Which definitions are in force (accept.ts): every rule, table-driven, through readManifestText.
import test from 'ava';
import { stringify } from 'yaml';
import { readManifestText, type FileRead } from '../../src/cluster/manifests.js';
import { accept, type Accepted } from '../../src/cluster/accept.js';
import type { NetworkPolicy, Namespace } from '../../src/cluster/model.js';

type Raw = Record<string, unknown>;
const np = (name: string, spec: Raw, ns = 'x'): Raw => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec });
const DENY = { podSelector: {}, policyTypes: ['Ingress'] };
const ALLOW = { podSelector: {}, ingress: [{}] };
const BROKEN = { podselector: {}, ingress: [{}] };
const yaml = (objs: Raw[]) => objs.map((o) => stringify(o)).join('---\n');

async function read(files: Record<string, Raw[] | string>): Promise<FileRead[]> {
  const out: FileRead[] = [];
  for (const f of Object.keys(files).sort()) {
    const v = files[f]!;
    out.push(await readManifestText(typeof v === 'string' ? v : yaml(v), f, { inFolder: true }));
  }
  return out;
}

async function inForce(files: Record<string, Raw[] | string>, prev: ReadonlyMap<string, Accepted> = new Map()) {
  const r = accept(prev, await read(files), { history: true });
  return { ...r, view: Object.fromEntries([...r.next].map(([id, a]) => [id, `${a.file}:${a.object.kind === 'NetworkPolicy' ? ((a.object as NetworkPolicy).ingress.length > 0 ? 'allow' : 'deny') : a.unknown ? 'unknown' : 'ok'}`])) };
}

test('a valid definition is accepted; an invalid one without history does not exist', async (t) => {
  const r = await inForce({ 'a.yaml': [np('d', DENY), np('b', BROKEN)] });
  t.deepEqual(r.view, { 'NetworkPolicy x/d': 'a.yaml:deny' });
  t.deepEqual(r.rejected, ['NetworkPolicy x/b']);
  t.true(r.findings.some((f) => f.code === 'not-in-force' && f.object === 'NetworkPolicy x/b'));
});

test('an invalid definition keeps the last accepted version in force', async (t) => {
  const first = await inForce({ 'a.yaml': [np('d', DENY)] });
  const r = await inForce({ 'a.yaml': [np('d', BROKEN)] }, first.next);
  t.deepEqual(r.view, { 'NetworkPolicy x/d': 'a.yaml:deny' });
  t.true(r.findings.some((f) => f.code === 'kept-last-accepted'));
  // Fixed: the new version is in force.
  t.deepEqual((await inForce({ 'a.yaml': [np('d', ALLOW)] }, r.next)).view, { 'NetworkPolicy x/d': 'a.yaml:allow' });
});

test('an invalid Namespace without history exists with labels no selector matches', async (t) => {
  const r = await inForce({ 'ns.yaml': [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n', labels: { team: 'a b' } } }] });
  t.deepEqual(r.view, { 'Namespace n': 'ns.yaml:unknown' });
  const ns = r.next.get('Namespace n')!.object as Namespace;
  t.true(ns.labelsUnreadable);
  t.deepEqual(ns.labels, { 'kubernetes.io/metadata.name': 'n' });
  // With history, its last accepted version stays instead.
  const good = await inForce({ 'ns.yaml': [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n', labels: { team: 'a' } } }] });
  const again = await inForce({ 'ns.yaml': [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n', labels: { team: 'a b' } } }] }, good.next);
  t.deepEqual((again.next.get('Namespace n')!.object as Namespace).labels, { team: 'a', 'kubernetes.io/metadata.name': 'n' });
});

test('duplicates: without history the first in file order wins; with history the file of the accepted version wins', async (t) => {
  const r = await inForce({ 'b.yaml': [np('d', DENY)], 'a.yaml': [np('d', ALLOW)] });
  t.deepEqual(r.view, { 'NetworkPolicy x/d': 'a.yaml:allow' });
  t.true(r.findings.some((f) => f.code === 'duplicate-object' && f.file === 'b.yaml'));
  const accepted = await inForce({ 'b.yaml': [np('d', DENY)] });
  const copy = await inForce({ 'b.yaml': [np('d', DENY)], 'a.yaml': [np('d', ALLOW)] }, accepted.next);
  t.deepEqual(copy.view, { 'NetworkPolicy x/d': 'b.yaml:deny' }, 'a copy sorted first never overrides what is in force');
  t.true(copy.findings.some((f) => f.code === 'duplicate-object' && f.file === 'a.yaml'));
  // Twice in one file: the first document.
  t.deepEqual((await inForce({ 'a.yaml': [np('d', DENY), np('d', ALLOW)] })).view, { 'NetworkPolicy x/d': 'a.yaml:deny' });
  // The owner's definition is invalid: its last accepted version stays, the other file's is still a duplicate.
  const broken = await inForce({ 'b.yaml': [np('d', BROKEN)], 'a.yaml': [np('d', ALLOW)] }, accepted.next);
  t.deepEqual(broken.view, { 'NetworkPolicy x/d': 'b.yaml:deny' });
});

test('an object moved to another file is accepted from there', async (t) => {
  const before = await inForce({ 'a.yaml': [np('d', DENY), np('e', DENY)] });
  const r = await inForce({ 'a.yaml': [np('e', DENY)], 'b.yaml': [np('d', ALLOW)] }, before.next);
  t.deepEqual(r.view, { 'NetworkPolicy x/d': 'b.yaml:allow', 'NetworkPolicy x/e': 'a.yaml:deny' });
});

test('deletions: a clean file deletes, a file with errors or unreadable documents deletes nothing, a removed file deletes', async (t) => {
  const before = await inForce({ 'a.yaml': [np('d', DENY), np('e', DENY)], 'b.yaml': [np('f', DENY)] });
  t.deepEqual(Object.keys((await inForce({ 'a.yaml': [np('d', DENY)], 'b.yaml': [np('f', DENY)] }, before.next)).view).sort(), ['NetworkPolicy x/d', 'NetworkPolicy x/f']);
  const withError = await inForce({ 'a.yaml': [np('d', BROKEN)], 'b.yaml': [np('f', DENY)] }, before.next);
  t.deepEqual(Object.keys(withError.view).sort(), ['NetworkPolicy x/d', 'NetworkPolicy x/e', 'NetworkPolicy x/f']);
  const truncated = await inForce({ 'a.yaml': `${yaml([np('d', DENY)])}---\nkind: NetworkPolicy\nmetadata: {name: e`, 'b.yaml': [np('f', DENY)] }, before.next);
  t.deepEqual(Object.keys(truncated.view).sort(), ['NetworkPolicy x/d', 'NetworkPolicy x/e', 'NetworkPolicy x/f']);
  const unnamed = await inForce({ 'a.yaml': [np('d', DENY), np('Not A Name', ALLOW)], 'b.yaml': [np('f', DENY)] }, before.next);
  t.deepEqual(Object.keys(unnamed.view).sort(), ['NetworkPolicy x/d', 'NetworkPolicy x/e', 'NetworkPolicy x/f']);
  t.deepEqual(Object.keys((await inForce({ 'b.yaml': [np('f', DENY)] }, before.next)).view), ['NetworkPolicy x/f']);
});

test('a document that is not a Kubernetes object is skipped with a warning in a folder, an error when named', async (t) => {
  const inFolder = await readManifestText('{"results": [1, 2]}', 'results.json', { inFolder: true });
  t.is(inFolder.notObjects, 1);
  t.deepEqual(inFolder.findings.map((f) => [f.severity, f.code]), [['warning', 'not-an-object']]);
  const named = await readManifestText('{"results": [1, 2]}', 'results.json', {});
  t.deepEqual(named.findings.map((f) => [f.severity, f.code]), [['error', 'not-an-object']]);
});
