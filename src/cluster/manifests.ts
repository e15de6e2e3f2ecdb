// Manifest input, read the way kubectl and a strict API server read it: files or folders (recursive
// *.yaml, *.yml, *.json, hidden entries skipped, sorted), `-` for standard input, multi-document
// YAML, JSON objects and arrays, `List` and every typed list (`PodList`, ...). Each document becomes
// a Definition: its identity (kind, namespace, name), the object read from it when it is valid, and
// its findings — fields unknown to the kind's API schema, wrong shapes, missing required fields,
// everything normalize.ts validates. Which definitions are in force is decided by accept.ts (one
// rule for the commands and for the agent's watched directory).
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ClusterStore } from './store.js';
import { type Finding, rejectsObject, showBare } from './findings.js';
import { METADATA_NAME_LABEL, normalizeObject, type NormalizeOptions } from './normalize.js';
import type { ClusterObject, Namespace } from './model.js';
import { readDocuments, type RawDocument } from './documents.js';
import { loadSchemas, schemaProblems, ROOT_MODELS } from './schema.js';
import { accept, type Accepted } from './accept.js';

/** `-f -`: standard input. */
export const STDIN = '-';
export const STDIN_NAME = '<stdin>';

/** Kinds whose objects live in a namespace (the others podwall reads are cluster-scoped). */
const CLUSTER_SCOPED = new Set(['Namespace', 'Node', 'ClusterNetworkPolicy', 'AdminNetworkPolicy', 'BaselineAdminNetworkPolicy']);

/** One document's object: identity, reading and findings. */
export interface Definition {
  /** `Kind namespace/name` (`Kind name` for cluster-scoped kinds), the kind as written. */
  id: string;
  file: string;
  doc: number;
  /** Index in its List, for List items. */
  item?: number;
  /** The raw object, unless the reader was told not to keep it (ReadOptions.keepRaw). */
  raw?: Record<string, unknown>;
  /** The object read from it; undefined when it is rejected (any error). */
  object?: ClusterObject;
  /** When rejected and no version was ever accepted: a reading that can only narrow access (a Namespace whose labels are unknown). */
  unknown?: ClusterObject;
  findings: Finding[];
}

export interface FileRead {
  file: string;
  defs: Definition[];
  /**
   * Documents that may define objects but could not be identified (unparseable, no valid name):
   * the agent keeps the objects this file defined before.
   */
  unidentified: number;
  /** Findings that belong to no definition (parse errors, skipped documents). */
  findings: Finding[];
  /** Objects of kinds podwall does not read, by kind. */
  skipped: Record<string, number>;
  /** Documents that are not Kubernetes objects (no apiVersion and no kind). */
  notObjects: number;
  documents: number;
  /** Nothing but whitespace. */
  empty: boolean;
}

export interface ReadOptions {
  /** Found while walking a folder (not named by the user): documents that are not Kubernetes objects are skipped with a warning instead of being errors. */
  inFolder?: boolean;
  /** Namespace for namespaced objects that name none (kubectl's `-n`); default `default`. */
  defaultNamespace?: string;
  /**
   * Which kinds' definitions keep the raw object they were read from (default: every kind). Raw
   * objects no one reads again die young instead of being carried through the load (100,000 pods:
   * ~0.5 s of garbage collection and ~100 MB).
   */
  keepRaw?: (kind: string) => boolean;
}

/** What a load read and left out, for the one line commands print when there is nothing to analyse. */
export interface LoadSummary {
  files: number;
  documents: number;
  /** Objects in force, by kind as written (Pod, Deployment, NetworkPolicy, ...). */
  objects: Record<string, number>;
  /** Objects of kinds podwall does not read, by kind. */
  skipped: Record<string, number>;
  /** Files (or documents) skipped because they hold no Kubernetes object. */
  notObjects: string[];
  /** Objects rejected as invalid. */
  rejected: number;
}

export interface LoadResult {
  store: ClusterStore;
  findings: Finding[];
  /** Objects of kinds podwall does not read, by kind. */
  skipped: Record<string, number>;
  files: string[];
  summary: LoadSummary;
}

const EXTENSIONS = /\.(ya?ml|json)$/i;

/** Expands files and folders (recursively, sorted) into manifest files; `inFolder` lists those found by walking a folder. */
export async function listManifestFiles(paths: readonly string[]): Promise<{ files: string[]; inFolder: Set<string>; findings: Finding[] }> {
  const files: string[] = [];
  const inFolder = new Set<string>();
  const findings: Finding[] = [];
  async function walk(p: string, explicit: boolean): Promise<void> {
    if (explicit && p === STDIN) {
      files.push(p);
      return;
    }
    let st;
    try {
      st = await stat(p);
    } catch (e) {
      findings.push({ severity: 'error', code: 'unreadable', file: p, message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` });
      return;
    }
    if (st.isDirectory()) {
      let entries: string[];
      try {
        entries = (await readdir(p)).sort();
      } catch (e) {
        findings.push({ severity: 'error', code: 'unreadable', file: p, message: `cannot read the folder: ${(e as NodeJS.ErrnoException).code ?? String(e)}` });
        return;
      }
      for (const e of entries) {
        if (e.startsWith('.')) continue;
        const child = join(p, e);
        const cst = await stat(child).catch(() => undefined);
        if (cst?.isDirectory()) await walk(child, false);
        else if (EXTENSIONS.test(e)) {
          files.push(child);
          inFolder.add(child);
        }
      }
    } else if (explicit || EXTENSIONS.test(p)) files.push(p);
  }
  for (const p of paths) await walk(p, true);
  return { files, inFolder, findings };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Kinds podwall reads, and the schema kinds that need loading for a text's documents. */
function kindsIn(docs: readonly RawDocument[]): string[] {
  const kinds = new Set<string>();
  const add = (v: unknown, listKind?: string) => {
    if (!isMapping(v)) return;
    const k = typeof v.kind === 'string' ? v.kind : listKind;
    if (k && k in ROOT_MODELS) kinds.add(k);
  };
  for (const d of docs) {
    const v = d.value;
    if (isMapping(v) && typeof v.kind === 'string' && v.kind.endsWith('List') && Array.isArray(v.items)) {
      const itemKind = v.kind === 'List' ? undefined : v.kind.slice(0, -4);
      for (const it of v.items) add(it, itemKind);
    } else add(v);
  }
  return [...kinds];
}

/** Reads one file's text into definitions. Never throws for bad input: problems become findings. */
export async function readManifestText(text: string, file: string, opts: ReadOptions = {}): Promise<FileRead> {
  const out: FileRead = { file, defs: [], unidentified: 0, findings: [], skipped: {}, notObjects: 0, documents: 0, empty: text.trim() === '' };
  const read = readDocuments(text, { json: /\.json$/i.test(file) });
  for (const e of read.errors) {
    out.unidentified++;
    out.findings.push({ severity: 'error', code: e.code, file, ...(e.index !== undefined ? { object: `document ${e.index}` } : {}), message: e.message });
  }
  out.documents = read.docs.length + read.errors.length;
  await loadSchemas(kindsIn(read.docs));
  for (const d of read.docs) readDocument(out, d, opts);
  return out;
}

function readDocument(out: FileRead, d: RawDocument, opts: ReadOptions): void {
  const v = d.value;
  const where = { file: out.file, object: `document ${d.index}` };
  if (!isMapping(v) || (v.apiVersion === undefined && v.kind === undefined)) {
    out.notObjects++;
    out.unidentified++;
    out.findings.push(
      opts.inFolder
        ? { severity: 'warning', code: 'not-an-object', ...where, message: 'not a Kubernetes object (no apiVersion and kind): skipped' }
        : { severity: 'error', code: 'not-an-object', ...where, message: 'not a Kubernetes object (expected a mapping with apiVersion, kind and metadata)' },
    );
    return;
  }
  const kind = v.kind;
  if (typeof kind === 'string' && kind.endsWith('List') && (v.items !== undefined || kind === 'List')) {
    if (!Array.isArray(v.items)) {
      out.unidentified++;
      out.findings.push({ severity: 'error', code: 'invalid-list', ...where, field: 'items', message: `a ${kind} needs an items list` });
      return;
    }
    // Items of a typed list (what the API returns for GET /api/v1/pods) carry no kind of their own.
    const itemKind = kind === 'List' ? undefined : kind.slice(0, -4);
    const listWarnings = d.warnings;
    v.items.forEach((item, i) => {
      const prefix = `items[${i}]`;
      const warnings = listWarnings.length === 0 ? listWarnings : listWarnings.filter((w) => w.field.startsWith(`${prefix}.`)).map((w) => ({ ...w, field: w.field.slice(prefix.length + 1) }));
      if (isMapping(item) && itemKind !== undefined) {
        if (item.kind === undefined) item = { kind: itemKind, ...item };
        if ((item as Record<string, unknown>).apiVersion === undefined && typeof v.apiVersion === 'string') item = { apiVersion: v.apiVersion, ...(item as Record<string, unknown>) };
      }
      readObject(out, item, d.index, i, warnings, opts);
    });
    return;
  }
  readObject(out, v, d.index, undefined, d.warnings, opts);
}

function readObject(out: FileRead, v: unknown, doc: number, item: number | undefined, warnings: RawDocument['warnings'], opts: ReadOptions): void {
  const where = { file: out.file, object: `document ${doc}${item !== undefined ? ` item ${item}` : ''}` };
  if (!isMapping(v)) {
    out.unidentified++;
    out.findings.push({ severity: 'error', code: 'not-an-object', ...where, message: 'a List item must be a Kubernetes object (a mapping with apiVersion, kind and metadata)' });
    return;
  }
  const kind = v.kind;
  if (typeof kind !== 'string' || kind === '') {
    out.unidentified++;
    out.findings.push({ severity: 'error', code: 'missing-kind', ...where, field: 'kind', message: 'kind is required' });
    return;
  }
  const namespaced = !CLUSTER_SCOPED.has(kind);
  const raw = v;
  const origin = { file: out.file, doc: item ?? doc };
  const r = normalizeObject(raw, origin, undefined, opts.defaultNamespace !== undefined ? { defaultNamespace: opts.defaultNamespace } : {});
  if (r.skipped !== undefined) {
    out.skipped[r.skipped] = (out.skipped[r.skipped] ?? 0) + 1;
    out.findings.push(...r.findings);
    return;
  }
  // Identity first: a document whose name cannot be read may be any object (the agent keeps what the file defined before).
  const nameProblem = r.findings.find((f) => f.severity === 'error' && (f.field === 'metadata.name' || f.field === 'metadata.namespace'));
  const meta = isMapping(raw.metadata) ? raw.metadata : undefined;
  if (nameProblem || !meta || typeof meta.name !== 'string') {
    out.unidentified++;
    if (!nameProblem) out.findings.push({ severity: 'error', code: 'missing-name', ...where, field: 'metadata.name', message: 'name is required' });
    out.findings.push(...r.findings);
    return;
  }
  const ns = namespaced ? (typeof meta.namespace === 'string' ? meta.namespace : (opts.defaultNamespace ?? 'default')) : undefined;
  const id = `${kind} ${ns !== undefined ? `${ns}/` : ''}${meta.name}`;
  const object = `${kind} ${ns !== undefined ? `${ns}/` : ''}${showBare(meta.name)}`;
  const findings: Finding[] = [];
  if (raw.apiVersion === undefined || raw.apiVersion === null || raw.apiVersion === '') findings.push({ severity: 'error', code: 'missing-field', file: out.file, object, field: 'apiVersion', message: 'apiVersion is required' });
  const problems = schemaProblems(raw, kind);
  for (const p of problems) findings.push({ severity: 'error', code: p.code, file: out.file, object, field: p.field, message: p.message });
  if (problems.length === 0) findings.push(...r.findings);
  else {
    // normalize.ts names some of the same problems (unknown fields of a NetworkPolicy): once is enough.
    const seen = new Set(problems.map((p) => `${p.field}\u0000${p.code}`));
    for (const f of r.findings) if (!seen.has(`${f.field ?? ''}\u0000${f.code}`)) findings.push(f);
  }
  for (const w of warnings) findings.push({ severity: 'warning', code: w.code, file: out.file, object, field: w.field, message: w.message });
  const def: Definition = { id, file: out.file, doc, findings };
  if (opts.keepRaw?.(kind) ?? true) def.raw = raw;
  if (item !== undefined) def.item = item;
  if (!rejectsObject(findings) && r.object) def.object = r.object;
  else if (kind === 'Namespace') def.unknown = unreadableNamespace(meta.name, origin);
  out.defs.push(def);
}

/** A Namespace that exists but whose labels are unknown: no namespace selector matches it. */
export function unreadableNamespace(name: string, origin?: Namespace['origin']): Namespace {
  const ns: Namespace = { kind: 'Namespace', name, labels: { [METADATA_NAME_LABEL]: name }, labelsUnreadable: true };
  if (origin) ns.origin = origin;
  return ns;
}

/** Definitions from raw objects (the agent's saved state), with the same checks as a file's documents. */
export async function readRawObjects(values: readonly unknown[], file: string): Promise<FileRead> {
  const out: FileRead = { file, defs: [], unidentified: 0, findings: [], skipped: {}, notObjects: 0, documents: values.length, empty: false };
  const docs: RawDocument[] = values.map((value, index) => ({ value, index, warnings: [] }));
  await loadSchemas(kindsIn(docs));
  for (const d of docs) readDocument(out, d, {});
  return out;
}

/** Reads one file (or standard input) into definitions. */
export async function readManifestFile(file: string, opts: ReadOptions = {}): Promise<FileRead> {
  let text: string;
  try {
    text = file === STDIN ? await readStdin() : await readFile(file, 'utf8');
  } catch (e) {
    const name = file === STDIN ? STDIN_NAME : file;
    return { file: name, defs: [], unidentified: 1, findings: [{ severity: 'error', code: 'unreadable', file: name, message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }], skipped: {}, notObjects: 0, documents: 0, empty: false };
  }
  return readManifestText(text, file === STDIN ? STDIN_NAME : file, opts);
}

/**
 * Parses one file's text into raw documents (List items flattened), with their positions — for
 * callers that normalise themselves. Prefer readManifestText, which validates against the schema.
 */
export function parseManifestText(text: string, file: string): { docs: { raw: unknown; doc: number }[]; findings: Finding[] } {
  const read = readDocuments(text, { json: /\.json$/i.test(file) });
  const findings: Finding[] = read.errors.map((e) => ({ severity: 'error', code: e.code, file, ...(e.index !== undefined ? { object: `document ${e.index}` } : {}), message: e.message }));
  const docs: { raw: unknown; doc: number }[] = [];
  let n = 0;
  for (const d of read.docs) {
    const v = d.value;
    if (isMapping(v) && typeof v.kind === 'string' && v.kind.endsWith('List') && Array.isArray(v.items)) {
      const itemKind = v.kind === 'List' ? undefined : v.kind.slice(0, -4);
      for (const item of v.items) docs.push({ raw: isMapping(item) && itemKind !== undefined && item.kind === undefined ? { kind: itemKind, ...item } : item, doc: n++ });
    } else docs.push({ raw: v, doc: n++ });
  }
  return { docs, findings };
}

/** Where manifest files come from: the file system by default, or e.g. a git revision (git-source.ts). */
export interface ManifestReader {
  /** Expands the paths into manifest files, as listManifestFiles does. */
  list(paths: readonly string[]): Promise<{ files: string[]; inFolder: Set<string>; findings: Finding[] }>;
  /** One file's text; throws an error with a `code` when it cannot. */
  read(file: string): Promise<string>;
}

export interface LoadOptions extends NormalizeOptions {
  reader?: ManifestReader;
}

async function readWith(reader: ManifestReader, file: string, opts: ReadOptions): Promise<FileRead> {
  let text: string;
  try {
    text = await reader.read(file);
  } catch (e) {
    return { file, defs: [], unidentified: 1, findings: [{ severity: 'error', code: 'unreadable', file, message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }], skipped: {}, notObjects: 0, documents: 0, empty: false };
  }
  return readManifestText(text, file, opts);
}

/** Loads manifests into a fresh store. Never throws for bad input: problems become findings. */
export async function loadManifests(paths: readonly string[], opts: LoadOptions = {}): Promise<LoadResult> {
  const listed = opts.reader ? await opts.reader.list(paths) : await listManifestFiles(paths);
  const findings = [...listed.findings];
  if (listed.files.filter((f) => f === STDIN).length > 1) findings.push({ severity: 'error', code: 'stdin-twice', file: STDIN_NAME, message: 'standard input (-f -) can be read only once' });
  const reads: FileRead[] = [];
  const seenStdin = { done: false };
  for (const file of listed.files) {
    if (file === STDIN) {
      if (seenStdin.done) continue;
      seenStdin.done = true;
    }
    // The commands read the objects, never the raw documents again.
    const ro: ReadOptions = { inFolder: listed.inFolder.has(file), keepRaw: () => false };
    if (opts.defaultNamespace) ro.defaultNamespace = opts.defaultNamespace;
    reads.push(opts.reader ? await readWith(opts.reader, file, ro) : await readManifestFile(file, ro));
  }
  const decided = accept(new Map(), reads);
  const store = new ClusterStore();
  for (const a of decided.next.values()) store.upsert(a.object);
  const skipped: Record<string, number> = {};
  const summary: LoadSummary = { files: reads.length, documents: 0, objects: {}, skipped, notObjects: [], rejected: 0 };
  for (const r of reads) {
    findings.push(...r.findings);
    for (const d of r.defs) findings.push(...d.findings);
    summary.documents += r.documents;
    for (const [k, n] of Object.entries(r.skipped)) skipped[k] = (skipped[k] ?? 0) + n;
    if (r.notObjects > 0) summary.notObjects.push(r.notObjects === r.documents ? r.file : `${r.notObjects} document(s) of ${r.file}`);
    summary.rejected += r.defs.filter((d) => d.object === undefined).length;
  }
  findings.push(...decided.findings);
  for (const a of decided.next.values()) if (!a.unknown) summary.objects[a.kind] = (summary.objects[a.kind] ?? 0) + 1;
  return { store, findings, skipped, files: reads.map((r) => r.file), summary };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : word.endsWith('s') ? 'es' : 's'}`;

/** One line: what a load read and what it left out (`read 3 files (12 documents): 4 Pods, 2 NetworkPolicies; skipped: 3 ConfigMaps`). */
export function describeLoad(s: LoadSummary): string {
  const objects = Object.entries(s.objects)
    .sort()
    .map(([k, n]) => plural(n, k));
  const skipped = Object.entries(s.skipped)
    .sort()
    .map(([k, n]) => plural(n, k));
  if (s.notObjects.length > 0) skipped.push(`${s.notObjects.join(', ')} (not Kubernetes objects)`);
  if (s.rejected > 0) skipped.push(`${plural(s.rejected, 'invalid object')} (see the errors)`);
  return `read ${plural(s.files, 'file')} (${plural(s.documents, 'document')}): ${objects.length > 0 ? objects.join(', ') : 'no object podwall reads'}${skipped.length > 0 ? `; skipped: ${skipped.join(', ')}` : ''}`;
}

export type { Accepted };
