// A reader for the plain block style of YAML that kubectl, helm and js-yaml's dump write — and only
// that: block mappings and sequences indented with spaces, one-line plain, single- and double-quoted
// scalars (the latter without escapes), the empty flow collections `[]` and `{}`, comments, and `---`
// between documents. Anything else — a multi-line or block scalar, a non-empty flow collection, an
// escape, a key that is not a plain string, a duplicate key, a tab, a CR, a control or surrogate
// character, an indentation it does not expect, nesting deeper than MAX_DEPTH — makes it answer
// undefined, and the caller reads the text with a general YAML reader instead (documents.ts).
//
// It also leaves to the general reader every plain scalar that js-yaml's core schema and the yaml
// library read differently, or that YAML 1.1 (kubectl) reads differently and so gets a warning
// (`-.5`, `1e400`, `-0`, `05432`, `0x1F`, `1_000`, `yes`): what it reads, it reads as the yaml
// library does, without a warning to give — which the property test in
// test/property/block-yaml.test.ts checks on random and hostile texts.
//
// Why: on 100,000 pods of such manifests (63 MB) js-yaml spends ~4 s, allocating a state snapshot
// per node, and the regular-expression gate in front of it (documents.ts) ~0.5 s; this reads the
// same text in about a third of that. Plain scalars are resolved by js-yaml's own core-schema types
// (null, bool, int, float).
import { CORE_SCHEMA } from 'js-yaml';

interface ImplicitType {
  resolve(s: string): boolean;
  construct(s: string): unknown;
}

const IMPLICIT = (CORE_SCHEMA as unknown as { compiledImplicit: ImplicitType[] }).compiledImplicit;

/** Deeper nesting than this is left to the general reader (and its own depth limit). */
const MAX_DEPTH = 100;
/** The longest implicit key YAML allows. */
const MAX_KEY = 1024;

/** Characters this reader never handles: tab, CR, other controls, NEL and the Unicode line breaks, surrogates, BOM, non-characters. */
const UNHANDLED_CHAR = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]/;

/** Thrown (and caught in readBlockYAML) when the text leaves the subset. */
const OUTSIDE = new Error('outside the block YAML subset');

const SPACE = 0x20;
const HASH = 0x23;
const DASH = 0x2d;
const COLON = 0x3a;
const DQUOTE = 0x22;
const SQUOTE = 0x27;

/** Line kinds. */
const CONTENT: number = 0;
const SEPARATOR: number = 1;
const END: number = 2;

class Reader {
  /** Start and end (the '\n' or the text's end) of the current line. */
  private ls = 0;
  private le = -1;
  /** Indentation, and where the content starts, of the current content line. */
  ind = 0;
  cs = 0;
  kind: number = END;
  private depth = 0;

  constructor(private readonly t: string) {}

  /** Moves to the next line that is content, a document separator, or the end. */
  next(): void {
    const t = this.t;
    const n = t.length;
    for (;;) {
      const ls = this.le + 1;
      if (ls > n || (ls === n && this.le >= 0)) {
        this.ls = this.le = n;
        this.kind = END;
        return;
      }
      let le = t.indexOf('\n', ls);
      if (le < 0) le = n;
      this.ls = ls;
      this.le = le;
      let cs = ls;
      while (cs < le && t.charCodeAt(cs) === SPACE) cs++;
      if (cs === le) continue; // blank
      const c = t.charCodeAt(cs);
      if (c === HASH) continue; // comment
      if (cs === ls) {
        if (c === DASH && t.startsWith('---', ls)) {
          for (let i = ls + 3; i < le; i++) if (t.charCodeAt(i) !== SPACE) throw OUTSIDE;
          this.kind = SEPARATOR;
          return;
        }
        if (c === 0x25 /* % */ || (c === 0x2e /* . */ && t.startsWith('...', ls))) throw OUTSIDE;
      }
      this.ind = cs - ls;
      this.cs = cs;
      this.kind = CONTENT;
      return;
    }
  }

  /** Whether the current line is a sequence entry (`-` then a space or the line's end). */
  private dashAt(p: number): boolean {
    return this.t.charCodeAt(p) === DASH && (p + 1 === this.le || this.t.charCodeAt(p + 1) === SPACE);
  }

  /** The node starting on the current content line (indented ≥ the caller's requirement). */
  node(): unknown {
    if (++this.depth > MAX_DEPTH) throw OUTSIDE;
    const v = this.dashAt(this.cs) ? this.seq(this.ind) : this.map(this.ind, this.cs);
    this.depth--;
    return v;
  }

  /** A block sequence whose dashes sit at column n. */
  private seq(n: number): unknown[] {
    const t = this.t;
    const out: unknown[] = [];
    while (this.kind === CONTENT && this.ind === n && this.dashAt(this.cs)) {
      let q = this.cs + 1;
      while (q < this.le && t.charCodeAt(q) === SPACE) q++;
      if (q === this.le || t.charCodeAt(q) === HASH) {
        this.next();
        out.push(this.kind === CONTENT && this.ind > n ? this.node() : null);
      } else if (this.dashAt(q)) throw OUTSIDE; // `- - a`
      else if (this.keyColon(q) >= 0) {
        if (++this.depth > MAX_DEPTH) throw OUTSIDE;
        out.push(this.map(q - this.ls, q));
        this.depth--;
      } else {
        out.push(this.inline(q));
        this.next();
      }
      if (this.kind === CONTENT && this.ind > n) throw OUTSIDE;
    }
    return out;
  }

  /** A block mapping at column col whose first key starts at p on the current line. */
  private map(col: number, p: number): Record<string, unknown> {
    const t = this.t;
    const out: Record<string, unknown> = {};
    for (;;) {
      const colon = this.keyColon(p);
      if (colon < 0) throw OUTSIDE;
      const key = this.key(p, colon);
      if (Object.prototype.hasOwnProperty.call(out, key)) throw OUTSIDE; // a duplicate: the general reader names it
      let v = colon + 1;
      while (v < this.le && t.charCodeAt(v) === SPACE) v++;
      let value: unknown;
      if (v === this.le || t.charCodeAt(v) === HASH) {
        this.next();
        if (this.kind === CONTENT && this.ind > col) value = this.node();
        else if (this.kind === CONTENT && this.ind === col && this.dashAt(this.cs)) {
          if (++this.depth > MAX_DEPTH) throw OUTSIDE;
          value = this.seq(col);
          this.depth--;
        } else value = null;
      } else {
        value = this.inline(v);
        this.next();
      }
      out[key] = value;
      if (this.kind !== CONTENT || this.ind < col) return out;
      if (this.ind > col) throw OUTSIDE;
      p = this.cs;
    }
  }

  /**
   * Where the key starting at p ends with `:` (followed by a space or the line's end), or -1 when
   * the line holds no key there. Only plain keys that start with an ordinary character and
   * double-quoted keys without escapes, or single-quoted ones, are keys here.
   */
  private keyColon(p: number): number {
    const t = this.t;
    const le = this.le;
    const c = t.charCodeAt(p);
    let i = p;
    if (c === DQUOTE || c === SQUOTE) {
      i = this.quoteEnd(p);
      while (i < le && t.charCodeAt(i) === SPACE) i++;
      return i < le && t.charCodeAt(i) === COLON && (i + 1 === le || t.charCodeAt(i + 1) === SPACE) ? i : -1;
    }
    if (!plainStart(t, p, le)) return -1;
    for (; i < le; i++) {
      const ch = t.charCodeAt(i);
      if (ch === COLON) {
        if (i + 1 === le || t.charCodeAt(i + 1) === SPACE) return i;
      } else if (ch === HASH && t.charCodeAt(i - 1) === SPACE) return -1;
    }
    return -1;
  }

  /** The key between p and its colon, as a string; outside the subset when it would read as something else. */
  private key(p: number, colon: number): string {
    const t = this.t;
    const c = t.charCodeAt(p);
    let key: string;
    if (c === DQUOTE || c === SQUOTE) key = this.quoted(p).value;
    else {
      if (t.charCodeAt(colon - 1) === SPACE) throw OUTSIDE; // `a : b`
      key = t.slice(p, colon);
      if (typeof plainValue(key) !== 'string' || readsDifferently(key) || key === '<<') throw OUTSIDE; // `1: x`, `null: x`, `true: x`, `-.5: x`, a merge key
    }
    if (key.length > MAX_KEY || key === '__proto__') throw OUTSIDE;
    return key;
  }

  /** Index just past the closing quote of the quoted scalar starting at p (on this line). */
  private quoteEnd(p: number): number {
    return this.quoted(p).end;
  }

  /** The one-line quoted scalar starting at p. */
  private quoted(p: number): { value: string; end: number } {
    const t = this.t;
    const le = this.le;
    if (t.charCodeAt(p) === DQUOTE) {
      const close = t.indexOf('"', p + 1);
      if (close < 0 || close >= le) throw OUTSIDE;
      const value = t.slice(p + 1, close);
      if (value.includes('\\')) throw OUTSIDE;
      return { value, end: close + 1 };
    }
    let value = '';
    let from = p + 1;
    for (;;) {
      const close = t.indexOf("'", from);
      if (close < 0 || close >= le) throw OUTSIDE;
      value += t.slice(from, close);
      if (t.charCodeAt(close + 1) === SQUOTE) {
        value += "'";
        from = close + 2;
      } else return { value, end: close + 1 };
    }
  }

  /** A scalar (or `[]`, `{}`) from p to the end of the line, or to a comment. */
  private inline(p: number): unknown {
    const t = this.t;
    const le = this.le;
    const c = t.charCodeAt(p);
    let value: unknown;
    let end: number;
    if (c === DQUOTE || c === SQUOTE) {
      const q = this.quoted(p);
      value = q.value;
      end = q.end;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      end = p + 1;
      while (end < le && t.charCodeAt(end) === SPACE) end++;
      if (t.charCodeAt(end) !== (c === 0x5b ? 0x5d : 0x7d)) throw OUTSIDE;
      end++;
      value = c === 0x5b ? [] : {};
    } else {
      if (!plainStart(t, p, le)) throw OUTSIDE;
      let last = p; // the last non-space character
      let i = p;
      for (; i < le; i++) {
        const ch = t.charCodeAt(i);
        if (ch === SPACE) continue;
        if (ch === HASH && t.charCodeAt(i - 1) === SPACE) break;
        if (ch === COLON && (i + 1 === le || t.charCodeAt(i + 1) === SPACE)) throw OUTSIDE; // a mapping where a scalar is
        last = i;
      }
      const text = t.slice(p, last + 1);
      if (readsDifferently(text)) throw OUTSIDE;
      return plainValue(text);
    }
    // After a quoted scalar or an empty collection: spaces, then a comment or the line's end.
    if (end < le && t.charCodeAt(end) !== SPACE) throw OUTSIDE;
    while (end < le && t.charCodeAt(end) === SPACE) end++;
    if (end < le && t.charCodeAt(end) !== HASH) throw OUTSIDE;
    return value;
  }
}

/**
 * Whether a plain scalar may start at p here: not at a YAML indicator (this reader also leaves `?x`
 * and `:x` to the general reader), not at a dash that starts a sequence entry, not at a space.
 */
function plainStart(t: string, p: number, le: number): boolean {
  switch (t.charCodeAt(p)) {
    case 0x2c: // ,
    case 0x5b: // [
    case 0x5d: // ]
    case 0x7b: // {
    case 0x7d: // }
    case 0x23: // #
    case 0x26: // &
    case 0x2a: // *
    case 0x21: // !
    case 0x7c: // |
    case 0x3e: // >
    case 0x27: // '
    case 0x22: // "
    case 0x25: // %
    case 0x40: // @
    case 0x60: // `
    case 0x3f: // ?
    case 0x3a: // :
    case SPACE:
      return false;
    case DASH:
      return p + 1 < le && t.charCodeAt(p + 1) !== SPACE;
    default:
      return true;
  }
}

/** Numbers js-yaml's core schema reads differently from the yaml library's, or YAML 1.1 (kubectl) from YAML 1.2. */
const NUMBER_READ_DIFFERENTLY = /^(?:[+-]\.[0-9]|-0$|[+-]?\.?[0-9][0-9.]*[eE][+-]?[0-9]{3}|[+-]?\.?[0-9][\w.+:-]*_|[+-]?0[0-9_obxOBX])/;
/** Words YAML 1.1 (kubectl) reads as booleans, YAML 1.2 as strings. */
const BOOLEAN_11 = /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/;

/**
 * Whether a plain scalar is one the general reader must read: js-yaml's core schema and the yaml
 * library's read it differently (`-.5`, `1e400`, `-0`), or it gets a YAML 1.1 warning there
 * (`05432`, `0x1F`, `1_000`, `yes`). The same tokens documents.ts's gate sends away.
 */
function readsDifferently(s: string): boolean {
  const c = s.charCodeAt(0);
  if ((c >= 0x30 && c <= 0x39) || c === DASH || c === 0x2b || c === 0x2e) return NUMBER_READ_DIFFERENTLY.test(s);
  if (c === 0x79 || c === 0x59 || c === 0x6e || c === 0x4e || c === 0x6f || c === 0x4f) return BOOLEAN_11.test(s);
  return false;
}

/** A plain scalar as js-yaml's core schema reads it. */
function plainValue(s: string): unknown {
  const c = s.charCodeAt(0);
  // Only these can start a null, a boolean, an int or a float of the core schema.
  if ((c >= 0x30 && c <= 0x39) || c === DASH || c === 0x2b || c === 0x2e || c === 0x7e || c === 0x6e || c === 0x4e || c === 0x74 || c === 0x54 || c === 0x66 || c === 0x46) {
    for (const type of IMPLICIT) if (type.resolve(s)) return type.construct(s);
  }
  return s;
}

/**
 * The documents of a text in the block subset, as js-yaml's loadAll (core schema) reads them —
 * empty documents are null —, or undefined when the text leaves the subset.
 */
export function readBlockYAML(text: string): unknown[] | undefined {
  if (UNHANDLED_CHAR.test(text)) return undefined;
  const r = new Reader(text);
  const docs: unknown[] = [];
  try {
    r.next();
    // What precedes the first `---` is a document only when it has content.
    if (r.kind === CONTENT) docs.push(root(r));
    while (r.kind === SEPARATOR) {
      r.next();
      docs.push(r.kind === CONTENT ? root(r) : null);
    }
    if (r.kind !== END) return undefined;
  } catch {
    return undefined;
  }
  return docs;
}

function root(r: Reader): unknown {
  const v = r.node();
  if (r.kind === CONTENT) throw OUTSIDE; // content left at a smaller indentation
  return v;
}
