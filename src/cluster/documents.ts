// Manifest text → raw documents, as strictly as the API server reads them: duplicate keys are
// errors (in JSON too, where JSON.parse would silently keep the last), documents with more than
// 100 aliases (or nested aliases expanding past the yaml library's limit) are errors, `<<` is an
// ordinary key (the schema check then names it), and plain scalars that kubectl — a YAML 1.1
// reader — reads differently from YAML 1.2 (`05432`, `yes`, `on`, `1_000`) are warnings.
//
// Two readers, one verdict. js-yaml (4.x, ~3x faster than its 5.x line and ~10x faster than the yaml
// library on large manifests) reads the texts it reads exactly as the yaml library does: those
// without anchors, tags, merge keys or explicit keys, and without a plain token that YAML 1.1 or
// js-yaml's own number grammar reads differently from YAML 1.2's core schema (a leading zero,
// 0b/0o/0x, digit separators, yes/no/on/off). Every other text — and every text js-yaml refuses
// (tabs between flow items, which kubectl's reader takes; duplicate keys; a syntax error) — is read
// by the yaml library, whose verdict stands, one document at a time, with line numbers, alias
// limits and the YAML 1.1 warnings by YAML path.
import { load as jsYamlLoad, loadAll as jsYamlLoadAll, CORE_SCHEMA } from 'js-yaml';
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

/**
 * What sends a text to the yaml library: anchors or aliases' targets (`&`), tags (`!`), merge keys,
 * `__proto__`, and these tokens after a separator (or at the text's start), where js-yaml's reading
 * differs from the yaml library's, or kubectl's YAML 1.1 reader's from YAML 1.2's:
 * - explicit keys (`? `), empty or null keys (`{: 1}`, `~: 1` and `null: 1` are js-yaml's key "null",
 *   the yaml library's "");
 * - a sequence entry that starts a sequence (`- -`) or is empty with a comment (`- # c`): js-yaml
 *   files the next, less indented entry into it; `---` glued to something (`---x`: js-yaml reads a
 *   document marker);
 * - numbers: a leading zero or a 0b/0o/0x prefix, a digit separator, a signed number starting with
 *   a dot (`-.5` is a string to js-yaml), a three-digit exponent (`1e400` is a string to js-yaml and
 *   Infinity to the yaml library), `-0` (js-yaml's 0); a YAML 1.1 boolean word.
 * And, checked apart (otherSuspects): a `#` right after a closing quote or bracket (js-yaml takes
 * it as a comment, the yaml library refuses it: a comment needs a space before it), a CR that does
 * not end a line. Liberal on purpose: a false alarm costs only speed.
 */
const SUSPECT_TOKEN = String.raw`(?:\?\s|-[ ]+(?:-(?:\s|$)|#)|---\S|(?:~|null|Null|NULL)[ ]*[:,\]}]|:(?:[\s,\]}]|$)|[+-]\.[0-9]|-0(?=$|[\s,\]}])|[+-]?\.?[0-9][0-9.]*[eE][+-]?[0-9]{3}|[+-]?\.?[0-9][\w.+:-]*_|[+-]?0[0-9_obxOBX]|(?:[yYnN]|[yY]es|YES|[nN]o|NO|[oO]n|ON|[oO]ff|OFF)(?=$|[\s\]},:#]))`;
// A token after a separator anywhere, or at the very start of the text (line starts follow a '\n',
// a separator): two regexes, as one with `^|` is ~40 % slower on large texts. The lookahead (every
// character a token can start with) spares the alternatives at most separators: on 63 MB of
// manifests the scan takes ~0.2 s instead of ~0.5 s.
const NEEDS_YAML_LIBRARY = new RegExp(String.raw`[&!]|<<|__proto__|[\s[{,](?=[-+.0-9?:~nNyYoO])` + SUSPECT_TOKEN);
const SUSPECT_AT_START = new RegExp('^' + SUSPECT_TOKEN);

/**
 * A quoted scalar that goes on past its line: js-yaml takes continuation lines the yaml library
 * refuses (one indented less than the scalar's block, e.g. `a: 'x\n\n# c\n  b'`), so every
 * quoted scalar that spans lines is left to the yaml library. An opening quote follows a space, a
 * line break, `[`, `{`, `,` or `:`; a single-quoted one ends at the next lone `'` (`''` is a quote
 * inside it), a double-quoted one at the next `"` that no backslash escapes.
 */
const MULTILINE_QUOTED = /[\s[{,:](?:'(?:[^'\n]|'')*\n|"(?:[^"\\\n]|\\.)*\\?\n)/;

/** The suspects NEEDS_YAML_LIBRARY leaves out, each looked for only when its rare character is in the text. */
function otherSuspects(text: string): boolean {
  return (
    (text.includes('#') && /['"\]}]#/.test(text)) ||
    (text.includes('\r') && /\r(?!\n)/.test(text)) ||
    /^['"]/.test(text) ||
    MULTILINE_QUOTED.test(text)
  );
}

/**
 * js-yaml on the texts it reads exactly as the yaml library does (see NEEDS_YAML_LIBRARY); undefined
 * when the yaml library must decide. Such a text has no aliases and no YAML 1.1 readings to warn of.
 */
export function readYAMLFast(text: string): ReadResult | undefined {
  if (NEEDS_YAML_LIBRARY.test(text) || SUSPECT_AT_START.test(text) || otherSuspects(text)) return undefined;
  let values: unknown[];
  try {
    values = jsYamlLoadAll(text, null, { schema: CORE_SCHEMA }) as unknown[];
  } catch {
    return undefined;
  }
  const docs: RawDocument[] = [];
  values.forEach((value, index) => {
    if (value !== null && value !== undefined) docs.push({ value, index, warnings: NONE });
  });
  return { docs, errors: [] };
}

/** The yaml library: per-document errors with line numbers, tabs between flow items accepted. */
export function readYAMLSlow(text: string): ReadResult {
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
      // The yaml library rejects at its limit, not past it: one more reads up to MAX_ALIASES.
      value = d.toJS({ maxAliasCount: MAX_ALIASES + 1 });
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
