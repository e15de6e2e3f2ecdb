// Manifest input: files or folders (recursive *.yaml, *.yml, *.json), multi-document YAML, JSON,
// `kind: List` as `kubectl get ... -o yaml` prints it. Everything is normalised into the store.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ClusterStore } from './store.js';
import { type Finding, show } from './findings.js';
import { normalizeObject, type NormalizeOptions } from './normalize.js';
import type { ClusterObject } from './model.js';
import { objectKey } from './model.js';

export interface LoadResult {
  store: ClusterStore;
  findings: Finding[];
  /** Objects of kinds podwall does not read, by kind. */
  skipped: Record<string, number>;
  files: string[];
}

const EXTENSIONS = /\.(ya?ml|json)$/i;

/** Expands files and folders (recursively, sorted) into manifest files. */
export async function listManifestFiles(paths: readonly string[]): Promise<{ files: string[]; findings: Finding[] }> {
  const files: string[] = [];
  const findings: Finding[] = [];
  async function walk(p: string, explicit: boolean): Promise<void> {
    let st;
    try {
      st = await stat(p);
    } catch (e) {
      findings.push({ severity: 'error', code: 'unreadable', file: p, message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` });
      return;
    }
    if (st.isDirectory()) {
      const entries = (await readdir(p)).sort();
      for (const e of entries) {
        if (e.startsWith('.')) continue;
        const child = join(p, e);
        const cst = await stat(child).catch(() => undefined);
        if (cst?.isDirectory()) await walk(child, false);
        else if (EXTENSIONS.test(e)) await walk(child, false);
      }
    } else if (explicit || EXTENSIONS.test(p)) files.push(p);
  }
  for (const p of paths) await walk(p, true);
  return { files, findings };
}

/** Parses one file's text into raw documents (List items flattened), with their positions. */
export function parseManifestText(text: string, file: string): { docs: { raw: unknown; doc: number }[]; findings: Finding[] } {
  const findings: Finding[] = [];
  const docs: { raw: unknown; doc: number }[] = [];
  const trimmed = text.trimStart();
  let values: unknown[] = [];
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      const v = JSON.parse(text) as unknown;
      values = Array.isArray(v) ? v : [v];
    } catch (e) {
      findings.push({ severity: 'error', code: 'invalid-json', file, message: `invalid JSON: ${(e as Error).message.split('\n')[0]}` });
      return { docs, findings };
    }
  } else {
    const parsed = parseAllDocuments(text, { prettyErrors: false, uniqueKeys: true });
    const list = Array.isArray(parsed) ? parsed : [parsed];
    for (const [i, d] of list.entries()) {
      if (d.errors.length > 0) {
        const err = d.errors[0]!;
        const line = err.linePos?.[0]?.line;
        findings.push({ severity: 'error', code: 'invalid-yaml', file, object: `document ${i}`, message: `invalid YAML${line ? ` at line ${line}` : ''}: ${err.message.split('\n')[0]}` });
        continue;
      }
      values.push(d.toJS({ maxAliasCount: 100 }));
    }
  }
  let n = 0;
  for (const v of values) {
    if (v === null || v === undefined) continue; // empty document (e.g. trailing ---)
    if (typeof v === 'object' && !Array.isArray(v) && (v as { kind?: unknown }).kind === 'List') {
      const items = (v as { items?: unknown }).items;
      if (!Array.isArray(items)) {
        findings.push({ severity: 'error', code: 'invalid-list', file, object: `document ${n}`, field: 'items', message: 'a List needs an items array' });
        n++;
        continue;
      }
      for (const item of items) docs.push({ raw: item, doc: n++ });
    } else docs.push({ raw: v, doc: n++ });
  }
  return { docs, findings };
}

/** Loads manifests into a fresh store. Never throws for bad input: problems become findings. */
export async function loadManifests(paths: readonly string[], opts: NormalizeOptions = {}): Promise<LoadResult> {
  const { files, findings } = await listManifestFiles(paths);
  const store = new ClusterStore();
  const skipped: Record<string, number> = {};
  const seen = new Map<string, string>();
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      findings.push({ severity: 'error', code: 'unreadable', file, message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` });
      continue;
    }
    const parsed = parseManifestText(text, file);
    findings.push(...parsed.findings);
    for (const { raw, doc } of parsed.docs) {
      const r = normalizeObject(raw, { file, doc }, undefined, opts);
      findings.push(...r.findings);
      if (r.skipped) skipped[r.skipped] = (skipped[r.skipped] ?? 0) + 1;
      if (r.object) addUnique(store, r.object, file, seen, findings);
    }
  }
  return { store, findings, skipped, files };
}

function addUnique(store: ClusterStore, o: ClusterObject, file: string, seen: Map<string, string>, findings: Finding[]): void {
  const id = `${o.kind} ${objectKey(o)}`;
  const prev = seen.get(id);
  if (prev !== undefined) {
    findings.push({ severity: 'error', code: 'duplicate-object', file, object: id, message: `defined twice (first in ${show(prev)}); the later definition wins` });
  }
  seen.set(id, file);
  store.upsert(o);
}
