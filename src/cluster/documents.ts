// Manifest text → raw documents, as strictly as the API server reads them: duplicate keys are
// errors (in JSON too, where JSON.parse would silently keep the last), documents with more than
// 100 aliases (or nested aliases expanding past the yaml library's limit) are errors, `<<` is an
// ordinary key (the schema check then names it), and plain scalars that kubectl — a YAML 1.1
// reader — reads differently from YAML 1.2 (`05432`, `yes`, `on`, `1_000`) are warnings.
//
// Two readers, one verdict. js-yaml (an event parser, ~5x faster than the yaml library) reads
// everything it can; when it refuses a text (tabs between flow items, which kubectl's reader takes;
// nested aliases; a syntax error) the yaml library reads the text again and its verdict stands, one
// document at a time, with its line numbers. Both read YAML 1.2's core schema.
import { parseEvents, constructFromEvents, getScalarValue, load as jsYamlLoad, EVENT_ID, SCALAR_STYLE, type Event, type ScalarEvent } from 'js-yaml';
import { parseAllDocuments, visit, isMap, isPair, isScalar, isSeq, LineCounter, type Document } from 'yaml';

/** More aliases than this in one document reject it (the yaml library's default limit). */
export const MAX_ALIASES = 100;

export interface DocumentWarning {
  code: string;
  /** YAML path inside the document, e.g. `spec.ingress[0].ports[0].port`. */
  field: string;
  message: string;
}

export interface RawDocument {
  value: unknown;
  /** 0-based index of the document in the file (JSON: of the array element). */
  index: number;
  warnings: readonly DocumentWarning[];
}

export interface DocumentError {
  code: 'invalid-yaml' | 'invalid-json' | 'duplicate-key' | 'too-many-aliases';
  /** The document the error is in, when the reader can tell. */
  index?: number;
  message: string;
}

export interface ReadResult {
  docs: RawDocument[];
  /** Documents (or the whole text, without `index`) that could not be read. */
  errors: DocumentError[];
}

const NONE: readonly DocumentWarning[] = Object.freeze([]);

/** Whether the text should be read as JSON (kubectl's reader decides the same way: by its first character). */
function looksLikeJSON(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0xfeff) continue;
    return c === 0x7b /* { */ || c === 0x5b /* [ */;
  }
  return false;
}

/**
 * Reads every document of a manifest text. `json: true` (a `.json` file) reports a text that is
 * not valid JSON as invalid JSON; otherwise such a text is read as YAML (a flow mapping is YAML).
 */
export function readDocuments(text: string, opts: { json?: boolean } = {}): ReadResult {
  if (looksLikeJSON(text)) {
    const r = readJSON(text);
    if (r.docs.length > 0 || opts.json || r.errors.some((e) => e.code === 'duplicate-key')) return r;
  }
  return readYAML(text);
}

// ---------------------------------------------------------------- JSON

function readJSON(text: string): ReadResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { docs: [], errors: [{ code: 'invalid-json', message: `invalid JSON: ${firstLine((e as Error).message)}` }] };
  }
  // JSON.parse keeps the last of duplicate keys; the API server rejects them. Every member of every
  // object is one ':' outside strings, so fewer keys parsed than colons means a duplicate.
  if (jsonMembers(text) !== keysIn(value)) return { docs: [], errors: [duplicateKeyIn(text)] };
  const values = Array.isArray(value) ? value : [value];
  return { docs: values.map((v, index) => ({ value: v, index, warnings: NONE })), errors: [] };
}

function jsonMembers(s: string): number {
  let n = 0;
  let inString = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x3a) n++;
  }
  return n;
}

function keysIn(v: unknown): number {
  if (Array.isArray(v)) {
    let n = 0;
    for (const x of v) n += keysIn(x);
    return n;
  }
  if (v !== null && typeof v === 'object') {
    let n = 0;
    for (const k of Object.keys(v)) n += 1 + keysIn((v as Record<string, unknown>)[k]);
    return n;
  }
  return 0;
}

/** Locates a duplicate key for the message (js-yaml reads JSON and refuses duplicates with a position). */
function duplicateKeyIn(text: string): DocumentError {
  try {
    jsYamlLoad(text);
  } catch (e) {
    const m = (e as { mark?: { line: number; column: number; position: number } }).mark;
    if (m) {
      // js-yaml marks the end of the duplicated pair: the key is the last one before it.
      const keys = [...text.slice(Math.max(0, m.position - 2000), m.position + 1).matchAll(/"((?:[^"\\]|\\.)*)"\s*:/g)];
      const key = keys.at(-1)?.[1];
      return { code: 'duplicate-key', message: `duplicate key${key !== undefined ? ` ${JSON.stringify(key)}` : ''} at line ${m.line + 1}, column ${m.column + 1} (the API server rejects it; JSON.parse would keep the last)` };
    }
  }
  return { code: 'duplicate-key', message: 'a mapping has a duplicate key (the API server rejects it; JSON.parse would keep the last)' };
}

// ---------------------------------------------------------------- YAML

function readYAML(text: string): ReadResult {
  const fast = readYAMLFast(text);
  return fast ?? readYAMLSlow(text);
}

interface Frame {
  /** 0 document, 1 mapping, 2 sequence */
  kind: 0 | 1 | 2;
  /** mapping: the next node is a key */
  expectKey: boolean;
  /** mapping: the current key's scalar event (undefined for a complex key) */
  key: ScalarEvent | undefined;
  /** sequence: index of the current item */
  index: number;
  /** nodes in this collection so far (for alias expansion) */
  size: number;
  /** anchor of this collection, if any */
  anchor: string | undefined;
  /** an alias occurs inside */
  hasAlias: boolean;
}

/**
 * js-yaml's event stream: walked once for aliases and YAML 1.1 scalars, then constructed. Returns
 * undefined whenever the yaml library must decide (refused text, nested or too many aliases).
 */
function readYAMLFast(text: string): ReadResult | undefined {
  let events: Event[];
  try {
    events = parseEvents(text, {});
  } catch {
    return undefined;
  }
  const warnings: DocumentWarning[][] = [];
  const stack: Frame[] = [];
  const anchors = new Map<string, { size: number; hasAlias: boolean }>();
  let doc = -1;
  let aliases = 0;
  const frame = (kind: 0 | 1 | 2, anchor: string | undefined): Frame => ({ kind, expectKey: true, key: undefined, index: 0, size: 0, anchor, hasAlias: false });
  // A node (scalar, alias or a finished collection) of `size` nodes completed in the top frame.
  const completed = (size: number, hasAlias: boolean) => {
    const top = stack[stack.length - 1]!;
    top.size += size;
    if (hasAlias) top.hasAlias = true;
    if (top.kind === 1) top.expectKey = !top.expectKey;
    else if (top.kind === 2) top.index++;
  };
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    switch (e.type) {
      case EVENT_ID.DOCUMENT:
        doc++;
        anchors.clear();
        aliases = 0;
        stack.push(frame(0, undefined));
        break;
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE: {
        const top = stack[stack.length - 1]!;
        if (top.kind === 1 && top.expectKey) top.key = undefined;
        stack.push(frame(e.type === EVENT_ID.MAPPING ? 1 : 2, e.anchorStart >= 0 ? text.slice(e.anchorStart, e.anchorEnd) : undefined));
        break;
      }
      case EVENT_ID.POP: {
        const f = stack.pop()!;
        if (f.kind === 0) break;
        if (f.anchor !== undefined) anchors.set(f.anchor, { size: f.size + 1, hasAlias: f.hasAlias });
        completed(f.size + 1, f.hasAlias);
        break;
      }
      case EVENT_ID.ALIAS: {
        const a = anchors.get(text.slice(e.anchorStart, e.anchorEnd));
        aliases++;
        // Nested aliases expand multiplicatively: let the yaml library count them.
        if (aliases > MAX_ALIASES || !a || a.hasAlias) return undefined;
        const top = stack[stack.length - 1]!;
        if (top.kind === 1 && top.expectKey) top.key = undefined;
        completed(a.size, true);
        break;
      }
      case EVENT_ID.SCALAR: {
        const top = stack[stack.length - 1]!;
        if (top.kind === 1 && top.expectKey) top.key = e;
        else if (e.style === SCALAR_STYLE.PLAIN && e.valueEnd - e.valueStart <= 24) {
          const diff = yaml11Difference(text.slice(e.valueStart, e.valueEnd));
          if (diff) (warnings[doc] ??= []).push({ ...diff, field: pathOf(stack, text) });
        }
        if (e.anchorStart >= 0) anchors.set(text.slice(e.anchorStart, e.anchorEnd), { size: 1, hasAlias: false });
        completed(1, false);
        break;
      }
    }
  }
  let values: unknown[];
  try {
    values = constructFromEvents(events, { source: text, maxAliases: MAX_ALIASES });
  } catch {
    return undefined;
  }
  const docs: RawDocument[] = [];
  values.forEach((value, index) => {
    if (value !== null && value !== undefined) docs.push({ value, index, warnings: warnings[index] ?? NONE });
  });
  return { docs, errors: [] };
}

function pathOf(stack: readonly Frame[], text: string): string {
  let out = '';
  for (const f of stack) {
    if (f.kind === 1) {
      const key = f.key ? getScalarValue(text, f.key) : '?';
      out += out === '' ? key : `.${key}`;
    } else if (f.kind === 2) out += `[${f.index}]`;
  }
  return out;
}

/** The yaml library: per-document errors with line numbers, tabs between flow items accepted. */
function readYAMLSlow(text: string): ReadResult {
  const lines = new LineCounter();
  const parsed = parseAllDocuments(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  const list = (Array.isArray(parsed) ? parsed : [parsed]) as Document.Parsed[];
  const docs: RawDocument[] = [];
  const errors: DocumentError[] = [];
  list.forEach((d, index) => {
    const line = (offset: number | undefined) => (offset !== undefined ? ` at line ${lines.linePos(offset).line}` : '');
    if (d.errors.length > 0) {
      const err = d.errors[0]!;
      const dup = err.code === 'DUPLICATE_KEY';
      errors.push({ code: dup ? 'duplicate-key' : 'invalid-yaml', index, message: `${dup ? 'duplicate key' : 'invalid YAML'}${line(err.pos[0])}: ${firstLine(err.message)}` });
      return;
    }
    let value: unknown;
    try {
      value = d.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (e) {
      const many = e instanceof ReferenceError || /alias/i.test((e as Error).message);
      errors.push({ code: many ? 'too-many-aliases' : 'invalid-yaml', index, message: many ? `too many YAML aliases${line(d.range[0])} (more than ${MAX_ALIASES} expansions): rejected as a resource exhaustion attack` : `invalid YAML${line(d.range[0])}: ${firstLine((e as Error).message)}` });
      return;
    }
    if (value === null || value === undefined) return;
    const warnings: DocumentWarning[] = [];
    visit(d, {
      Scalar(key, node, path) {
        if (key === 'key' || node.type !== 'PLAIN' || typeof node.source !== 'string') return;
        const diff = yaml11Difference(node.source);
        if (diff) warnings.push({ ...diff, field: astPath(path, node) });
      },
    });
    docs.push({ value, index, warnings: warnings.length > 0 ? warnings : NONE });
  });
  return { docs, errors };
}

function astPath(path: readonly unknown[], leaf: unknown): string {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const p = path[i];
    const child = i + 1 < path.length ? path[i + 1] : leaf;
    if (isPair(p)) {
      const k = isScalar(p.key) ? String(p.key.value) : '?';
      out += out === '' ? k : `.${k}`;
    } else if (isSeq(p)) out += `[${p.items.indexOf(child as never)}]`;
    else if (isMap(p)) continue;
  }
  return out;
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

// ---------------------------------------------------------------- YAML 1.1 readings

const BOOL_11 = /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/;
const TRUE_11 = /^(?:y|Y|yes|Yes|YES|on|On|ON)$/;

/**
 * How kubectl's reader (go-yaml, YAML 1.1) reads a plain scalar differently from YAML 1.2's core
 * schema, which podwall reads: undefined when both agree.
 */
export function yaml11Difference(src: string): { code: string; message: string } | undefined {
  const c = src.charCodeAt(0);
  const digitish = (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d;
  if (!digitish) {
    if (!BOOL_11.test(src)) return undefined;
    return { code: 'yaml11-boolean', message: `${src} is the string ${JSON.stringify(src)} here, but kubectl (YAML 1.1) reads it as the boolean ${TRUE_11.test(src)}: quote it, or write ${TRUE_11.test(src)}` };
  }
  const sign = c === 0x2d ? -1 : 1;
  const body = c === 0x2b || c === 0x2d ? src.slice(1) : src;
  let v11: number | undefined;
  let v12: number | string = src;
  let why = '';
  if (/^0[0-7_]+$/.test(body) && /[1-7]/.test(body)) {
    v11 = sign * parseInt(body.replace(/_/g, ''), 8);
    v12 = body.includes('_') ? src : sign * parseInt(body, 10);
    why = 'an octal number';
  } else if (/^0o[0-7]+$/.test(src)) {
    return { code: 'yaml11-number', message: `${src} is ${parseInt(src.slice(2), 8)} here, but kubectl (YAML 1.1) reads it as the string ${JSON.stringify(src)}: write ${parseInt(src.slice(2), 8)}` };
  } else if (/^0b[01_]+$/.test(body)) {
    v11 = sign * parseInt(body.slice(2).replace(/_/g, ''), 2);
    why = 'a binary number';
  } else if (/^[0-9][0-9_]*$/.test(body) && body.includes('_')) {
    v11 = sign * parseInt(body.replace(/_/g, ''), 10);
    why = 'a number with digit separators';
  } else return undefined;
  if (v11 === v12 || Number.isNaN(v11)) return undefined;
  const here = typeof v12 === 'number' ? String(v12) : `the string ${JSON.stringify(v12)}`;
  return { code: 'yaml11-number', message: `${src} is ${here} here, but kubectl (YAML 1.1) reads it as ${v11} (${why}): write ${v11} if that is meant, or quote it` };
}
