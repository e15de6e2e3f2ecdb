// The block-YAML reader (src/cluster/block-yaml.ts) against the yaml library, the authority: on every
// text it reads and the fast path's gate lets through — random documents written by js-yaml and the
// yaml library in their styles, with comments and separators, then hostile edits (inserted indicators,
// quotes, colons, dashes, spaces, tabs, CRs, line breaks, deleted and duplicated lines) — the yaml
// library reads the same documents without an error, and readYAMLFast answers what readYAMLSlow
// answers (values, indices, warnings, errors).
import test from 'ava';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { dump, loadAll, CORE_SCHEMA } from 'js-yaml';
import { parseAllDocuments, stringify } from 'yaml';
import { readBlockYAML } from '../../src/cluster/block-yaml.js';
import { readYAMLFast, readYAMLSlow } from '../../src/cluster/documents.js';
import { clusterObjects, generateCluster, toRawObject } from '../../src/bench/generator.js';

/** Strings from the corners: indicators, comment and mapping markers, quotes, number and null spellings. */
const word = fc.oneof(
  { weight: 12, arbitrary: fc.stringMatching(/^[a-z][a-z0-9.-]{0,8}$/) },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '', ' ', 'a b', 'a: b', 'a:b', 'a #b', 'a#b', '#a', '- a', '-a', '-', '--', '---', '...', '? a', ':a', 'a:', '[a]', '{a}', '[]', '{}', 'a,b',
      "it's", '"q"', "'s'", 'a\\b', '\\n', '1', '-1', '+1', '.5', '1e3', '1.0', '0', '-0', '8080', '10.1.2.3', 'fd00::1', '1:20', 'true', 'False',
      'null', 'Null', '~', '.inf', '-.Inf', '.nan', 'a  b', ' a', 'a ', '%a', '@a', '`a', '|', '>', 'a\nb', 'é', '日本', 'constructor', 'toString',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
);
const value = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, word, fc.integer(), fc.boolean(), fc.constant(null), fc.integer({ min: -1e8, max: 1e8 }).map((n) => n / 1000), tie('list'), tie('map')),
  list: fc.array(tie('value'), { maxLength: 4 }),
  map: fc.dictionary(word, tie('value'), { maxKeys: 4 }),
})).map;
const doc = fc.oneof({ weight: 4, arbitrary: fc.dictionary(word, value, { minKeys: 1, maxKeys: 5 }) }, { weight: 1, arbitrary: fc.array(value, { minLength: 1, maxLength: 4 }) });

/** One document written by one of the libraries, in one of their block styles. */
const written = fc.tuple(doc, fc.nat(5), fc.integer({ min: 1, max: 4 }), fc.boolean(), fc.boolean()).map(([d, style, indent, noArrayIndent, forceQuotes]) => {
  switch (style) {
    case 0:
    case 1:
      return dump(d, { lineWidth: -1, indent, noArrayIndent, forceQuotes, quotingType: style === 0 ? "'" : '"' });
    case 2:
      return dump(d, { lineWidth: 20, indent });
    case 3:
      return stringify(d, { indent: Math.max(indent, 2), indentSeq: noArrayIndent });
    case 4:
      return stringify(d, { defaultStringType: forceQuotes ? 'QUOTE_DOUBLE' : 'QUOTE_SINGLE', defaultKeyType: 'PLAIN' });
    default:
      return dump(d, { flowLevel: 1 });
  }
});

/** Several documents, separators and comments as people write them. */
const text = fc.tuple(fc.array(written, { minLength: 1, maxLength: 3 }), fc.boolean(), fc.boolean(), fc.boolean()).map(([docs, leading, trailing, comments]) => {
  let s = (leading ? '---\n' : '') + docs.join('---\n') + (trailing ? '---\n' : '');
  if (comments) s = s.replace(/\n/g, (_, i: number) => (i % 3 === 0 ? '\n# a comment: - x\n' : i % 3 === 1 ? '  # indented\n' : '\n')) + '\n# done';
  return s;
});

/** Hostile edits at random places. */
const EDIT_CHARS = [' ', '  ', '-', '- ', ':', ': ', '#', ' #', '"', "'", '[', ']', '{', '}', ',', '\n', '\n  ', '\t', '\r', '---\n', '...', '?', '|', '>', '&', '*', '!', '%', '\\', '~', '0', '.'];
const edited = fc.tuple(text, fc.array(fc.tuple(fc.nat(), fc.nat(4), fc.constantFrom(...EDIT_CHARS)), { minLength: 1, maxLength: 4 })).map(([s, edits]) => {
  for (const [at, how, piece] of edits) {
    const i = s.length === 0 ? 0 : at % s.length;
    if (how === 0) s = s.slice(0, i) + s.slice(i + 1); // delete a character
    else if (how === 1) {
      // duplicate the line
      const ls = s.lastIndexOf('\n', i - 1) + 1;
      const le = s.indexOf('\n', i);
      const line = s.slice(ls, le < 0 ? s.length : le + 1);
      s = s.slice(0, ls) + line + (line.endsWith('\n') ? '' : '\n') + s.slice(ls);
    } else if (how === 2) {
      // change the indentation of the line
      const ls = s.lastIndexOf('\n', i - 1) + 1;
      s = at % 2 === 0 ? s.slice(0, ls) + ' ' + s.slice(ls) : s.slice(0, ls) + s.slice(ls).replace(/^ /, '');
    } else s = s.slice(0, i) + piece + s.slice(i);
  }
  return s;
});

function jsYaml(s: string): unknown[] | Error {
  try {
    return loadAll(s, null, { schema: CORE_SCHEMA }) as unknown[];
  } catch (e) {
    return e as Error;
  }
}

/** What the yaml library reads, documents without content left out (as readYAMLSlow does), or an error. */
function yamlLibrary(s: string): { index: number; value: unknown }[] | 'error' {
  const docs = parseAllDocuments(s, { uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.some((d) => d.errors.length > 0)) return 'error';
  const out: { index: number; value: unknown }[] = [];
  list.forEach((d, index) => {
    const v = d.toJS({ maxAliasCount: 101 }) as unknown;
    if (v !== null && v !== undefined) out.push({ index, value: v });
  });
  return out;
}

/** The documents with content, with their indices. */
function contentOf(docs: unknown[]): { index: number; value: unknown }[] {
  return docs.flatMap((value, index) => (value !== null && value !== undefined ? [{ index, value }] : []));
}

/**
 * Where the fast path takes a text (behind its gate of texts the libraries read differently) and
 * block-yaml reads it, the yaml library reads the same documents, and the fast path's whole answer
 * is the slow path's (values, indices, warnings, errors). Undefined when block-yaml or the gate leaves it.
 */
function agrees(s: string): boolean | string | undefined {
  const ours = readBlockYAML(s);
  if (ours === undefined) return undefined;
  const fast = readYAMLFast(s);
  if (fast === undefined) return undefined;
  const lib = yamlLibrary(s);
  if (lib === 'error') return `block-yaml read ${JSON.stringify(ours)}, the yaml library refuses the text`;
  if (!isDeepStrictEqual(contentOf(ours), lib)) return `block-yaml read ${JSON.stringify(contentOf(ours))}, the yaml library ${JSON.stringify(lib)}`;
  if (!isDeepStrictEqual(fast, readYAMLSlow(s))) return 'the fast path and readYAMLSlow differ';
  return true;
}

function check(t: { true(v: boolean, m?: string): void }, arb: fc.Arbitrary<string>, runs: number, seed: number): { taken: number; total: number } {
  let taken = 0;
  const details = fc.check(
    fc.property(arb, (s) => {
      const r = agrees(s);
      if (r === undefined) return;
      taken++;
      if (r !== true) throw new Error(`${r}\ntext: ${JSON.stringify(s)}`);
    }),
    { numRuns: runs, seed },
  );
  t.true(!details.failed, details.failed ? fc.defaultReportMessage(details) ?? 'failed' : '');
  return { taken, total: runs };
}

test('block-yaml reads what js-yaml and the yaml library read, on documents both libraries write', (t) => {
  const { taken, total } = check(t, text, 1500, 901);
  // The property means something only if block-yaml takes most of these texts (flow style and escapes it leaves).
  t.true(taken > total / 5, `block-yaml and the gate took ${taken} of ${total} texts`);
});

test('block-yaml reads what js-yaml and the yaml library read, or leaves the text to them, after hostile edits', (t) => {
  const { taken, total } = check(t, edited, 3000, 902);
  t.true(taken > total / 20, `block-yaml and the gate took ${taken} of ${total} edited texts`);
});

test('block-yaml reads the manifests the bench generates (kubectl-style block YAML) as js-yaml does', (t) => {
  const c = generateCluster({ name: 'block-yaml', pods: 300, policies: 40, namespaces: 12, localPods: 50 }, 3);
  const raws = [...clusterObjects(c)].map(toRawObject);
  const s = raws.map((o) => dump(o, { lineWidth: -1 })).join('---\n');
  const ours = readBlockYAML(s);
  t.not(ours, undefined);
  t.deepEqual(ours, jsYaml(s));
  t.is(ours!.length, raws.length);
});

test('block-yaml: the subset, table-driven (undefined = left to the general reader)', (t) => {
  const cases: [string, unknown[] | undefined][] = [
    ['', []],
    ['# only a comment\n', []],
    ['a: 1\n---\n', [{ a: 1 }, null]],
    ['# x\n---\na: 1\n', [{ a: 1 }]],
    ['---\n---\nb: x\n', [null, { b: 'x' }]],
    ['a:\n- 1\n- -2\nb: {}\nc: [ ]\nd:\n', [{ a: [1, -2], b: {}, c: [], d: null }]],
    ['- a: 1\n  b:\n  - x\n-\n- "q": \'it\'\'s\' # c\n', [[{ a: 1, b: ['x'] }, null, { q: "it's" }]]],
    ['a: b#c # comment\n', [{ a: 'b#c' }]],
    ['  a: 1\n  b: 2\n', [{ a: 1, b: 2 }]],
    ['a: x\nconstructor: 1\n', [{ a: 'x', constructor: 1 }]],
    // Left to the general reader:
    ['a: |\n  x\n', undefined], // block scalar
    ['a: b\n  c\n', undefined], // multi-line plain scalar
    ['a: [1, 2]\n', undefined], // flow collection
    ['a: "x\\ty"\n', undefined], // escape
    ['a: 1\na: 2\n', undefined], // duplicate key
    ['1: a\n', undefined], // a key that is not a string
    ['a : 1\n', undefined],
    ['a: b: c\n', undefined],
    ['a: - b\n', undefined],
    ['- - a\n', undefined],
    ['a:\tb\n', undefined],
    ['a: 1\r\n', undefined],
    ['\ufeffa: 1\n', undefined],
    ['--- a: 1\n', undefined],
    ['%YAML 1.2\n---\na: 1\n', undefined],
    ['a: 1\n...\n', undefined],
    ['hello\n', undefined],
    ['  a: 1\nb: 2\n', undefined],
    ['a: "unterminated\n', undefined],
    ['__proto__: 1\n', undefined],
    [`${'- '.repeat(1)}${'a:\n'}${Array.from({ length: 150 }, (_, i) => `${' '.repeat(i + 1)}a:\n`).join('')}`, undefined], // deeper than MAX_DEPTH
  ];
  for (const [s, want] of cases) t.deepEqual(readBlockYAML(s), want, JSON.stringify(s));
  // Where it reads a text, so does js-yaml, the same way.
  for (const [s, want] of cases) if (want !== undefined) t.deepEqual(contentOf(jsYaml(s) as unknown[]), contentOf(want), JSON.stringify(s));
});
