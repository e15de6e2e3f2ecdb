// Manifest text → documents: duplicate keys (JSON and YAML), aliases, tabs kubectl accepts, merge
// keys as plain keys, YAML 1.1 readings, and the two readers agreeing.
import test from 'ava';
import fc from 'fast-check';
import { parseAllDocuments, stringify } from 'yaml';
import { readDocuments, readYAMLFast, readYAMLSlow, yaml11Difference, MAX_ALIASES } from '../../src/cluster/documents.js';

test('JSON: objects and arrays are documents; a duplicate key is an error with its line (JSON.parse would keep the last)', (t) => {
  t.deepEqual(
    readDocuments('[{"a": 1}, {"b": 2}]').docs.map((d) => d.value),
    [{ a: 1 }, { b: 2 }],
  );
  const r = readDocuments('{\n  "kind": "Namespace",\n  "metadata": {"name": "a", "name": "b"}\n}');
  t.deepEqual(r.docs, []);
  t.is(r.errors[0]?.code, 'duplicate-key');
  t.regex(r.errors[0]!.message, /duplicate key "name" at line 3/);
  // Colons inside strings are not members.
  t.deepEqual(readDocuments('{"a": "x:y", "b": "\\"c\\": d"}').errors, []);
});

test('JSON: a broken .json file is invalid JSON; a flow mapping in a .yaml file is YAML', (t) => {
  t.is(readDocuments('{"kind": "Namespace",', { json: true }).errors[0]?.code, 'invalid-json');
  t.deepEqual(readDocuments('{kind: Namespace, metadata: {name: a}}').docs[0]?.value, { kind: 'Namespace', metadata: { name: 'a' } });
});

test('YAML: duplicate keys are errors, per document; the other documents are read', (t) => {
  const r = readDocuments('a: 1\n---\nkind: x\nkind: y\n---\nb: 2\n');
  t.deepEqual(
    r.docs.map((d) => [d.index, d.value]),
    [
      [0, { a: 1 }],
      [2, { b: 2 }],
    ],
  );
  t.is(r.errors.length, 1);
  t.is(r.errors[0]!.code, 'duplicate-key');
  t.is(r.errors[0]!.index, 1);
  t.regex(r.errors[0]!.message, /at line 4/);
});

test('YAML: tabs between flow items are accepted, as kubectl accepts them', (t) => {
  t.deepEqual(readDocuments('ports: [80,\t81]\nsel: {a: 1,\tb: 2}\n').docs[0]?.value, { ports: [80, 81], sel: { a: 1, b: 2 } });
});

test('YAML: a merge key stays an ordinary key (the schema check names it)', (t) => {
  t.deepEqual(readDocuments('spec:\n  <<: {podSelector: {}}\n').docs[0]?.value, { spec: { '<<': { podSelector: {} } } });
});

test(`YAML: up to ${MAX_ALIASES} aliases are read; more, or nested ones that expand past the limit, reject the document`, (t) => {
  const aliases = (n: number) => `base: &v x\n${Array.from({ length: n }, (_, i) => `k${i}: *v`).join('\n')}\n`;
  const ok = readDocuments(aliases(MAX_ALIASES));
  t.deepEqual(ok.errors, []);
  t.is((ok.docs[0]!.value as Record<string, string>).k99, 'x');
  const many = readDocuments(`a: 1\n---\n${aliases(MAX_ALIASES + 1)}`);
  t.deepEqual(many.docs.map((d) => d.index), [0]);
  t.is(many.errors[0]?.code, 'too-many-aliases');
  t.is(many.errors[0]?.index, 1);
  const levels = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'];
  const bomb = levels.map((l, i) => `${l}: &${l} [${Array(10).fill(i === 0 ? 'lol' : `*${levels[i - 1]}`).join(',')}]`).join('\n');
  const r = readDocuments(bomb);
  t.deepEqual(r.docs, []);
  t.is(r.errors[0]?.code, 'too-many-aliases');
});

test('YAML 1.1 readings kubectl differs on are warnings with the YAML path; quoted values and agreeing numbers are not', (t) => {
  const cases: [string, string | undefined, RegExp?][] = [
    ['05432', 'yaml11-number', /05432 is 5432 here, but kubectl \(YAML 1\.1\) reads it as 2842/],
    ['-012', 'yaml11-number', /reads it as -10/],
    ['0o17', 'yaml11-number', /0o17 is 15 here, but kubectl .* the string "0o17"/],
    ['1_000', 'yaml11-number', /the string "1_000" here, but kubectl .* reads it as 1000/],
    ['0b101', 'yaml11-number', /reads it as 5/],
    ['yes', 'yaml11-boolean', /boolean true/],
    ['on', 'yaml11-boolean', /boolean true/],
    ['N', 'yaml11-boolean', /boolean false/],
    ['Off', 'yaml11-boolean', /boolean false/],
    ['5432', undefined],
    ['0', undefined],
    ['00', undefined],
    ['08', undefined],
    ['0x1F', undefined],
    ['true', undefined],
    ['yesterday', undefined],
    ['1.5', undefined],
  ];
  for (const [src, code, msg] of cases) {
    const d = yaml11Difference(src);
    t.is(d?.code, code, src);
    if (msg) t.regex(d!.message, msg, src);
  }
  const doc = readDocuments("spec:\n  ingress:\n  - ports:\n    - port: 05432\n    - port: '05432'\n  - from: [{podSelector: {matchLabels: {enabled: on}}}]\n");
  t.deepEqual(
    doc.docs[0]!.warnings.map((w) => [w.field, w.code]),
    [
      ['spec.ingress[0].ports[0].port', 'yaml11-number'],
      ['spec.ingress[1].from[0].podSelector.matchLabels.enabled', 'yaml11-boolean'],
    ],
  );
  // The yaml library's path (taken when js-yaml refuses, here for a tab) names the same fields.
  const slow = readDocuments('a: [1,\t2]\nspec:\n  ports:\n  - port: 05432\n');
  t.deepEqual(slow.docs[0]!.warnings.map((w) => w.field), ['spec.ports[0].port']);
});

// Both readers read YAML 1.2's core schema: wherever js-yaml reads a text, the yaml library reads the same.
const json = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.double({ noNaN: true, noDefaultInfinity: true }), tie('list'), tie('map')),
  list: fc.array(tie('value'), { maxLength: 4 }),
  map: fc.dictionary(fc.string({ minLength: 1 }), tie('value'), { maxKeys: 4 }),
})).map;
test('the fast reader and the yaml library agree on every text the fast reader takes', (t) => {
  fc.assert(
    fc.property(fc.array(json, { minLength: 1, maxLength: 3 }), fc.constantFrom('PLAIN', 'QUOTE_DOUBLE', 'QUOTE_SINGLE', 'BLOCK_LITERAL'), fc.boolean(), (docs, style, flow) => {
      const text = docs.map((d) => stringify(d, { defaultStringType: style as 'PLAIN', collectionStyle: flow ? 'flow' : 'block' })).join('---\n');
      const ours = readDocuments(text);
      const theirs = parseAllDocuments(text).map((d) => d.toJS());
      const expected = theirs.filter((v) => v !== null && v !== undefined);
      return ours.errors.length === 0 && JSON.stringify(ours.docs.map((d) => d.value)) === JSON.stringify(expected);
    }),
    { numRuns: 300, seed: 4242 },
  );
  t.pass();
});

// The js-yaml path must read every text it takes exactly as the yaml library does. Raw plain
// scalars from the corners where YAML readers disagree (number grammars, YAML 1.1 words, null and
// infinity spellings, keys, flow collections, comments, several documents), written unquoted.
// Values the gate lets through (the cases js-yaml must get right) and values it must send away.
const agreeing = fc.constantFrom(
  '1e3', '1E-2', '.5', '1.', '-.inf', '.NaN', '.nan', '+.inf', '+12', '-0', '0', '8080', '1:20', '190:20:30.15', 'true', 'True', 'FALSE',
  'null', 'Null', '~', '', '10.0.0.1', 'fd00::1', '2001:db8::1', '2024-01-01', '2024-01-01T00:00:00Z', 'a b', 'app', 'x-y', '-', '=',
  '*a', '"q"', "'s'", '"05"', '[1, 2]', '{a: 1}', '[x, 8080]', '{x: .5}', 'a # c', '#c', '12345678901234567890', '0.0.0.0/0', 'a: b',
);
const disagreeing = fc.constantFrom('05432', '0x1F', '0o17', '0b101', '1_000', '1.5_0', '-0x1F', '007', 'yes', 'No', 'on', 'OFF', 'y', 'n', '<<', '&a x', '!!str 5', '? a', '[on, 05]', '__proto__');
const tricky = fc.oneof({ arbitrary: agreeing, weight: 12 }, { arbitrary: disagreeing, weight: 1 });
test('js-yaml reads every text it takes exactly as the yaml library does (raw plain scalars from the disagreeing corners)', (t) => {
  let taken = 0;
  fc.assert(
    fc.property(fc.array(fc.array(fc.tuple(fc.constantFrom('k', 'port', 'a b', 'k', 'port', 'a b', 'on', '0x1'), tricky, fc.boolean()), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }), (docs) => {
      const text = docs.map((lines) => lines.map(([k, v, item]) => (item ? `${k}:\n- ${v}\n` : `${k}: ${v}\n`)).join('')).join('---\n');
      const fast = readYAMLFast(text);
      if (!fast) return true;
      taken++;
      const exact = readYAMLSlow(text);
      return exact.errors.length === 0 && JSON.stringify(fast) === JSON.stringify(exact);
    }),
    { numRuns: 3000, seed: 7 },
  );
  // The property only means something if js-yaml takes a fair share of the texts.
  t.true(taken > 300, `js-yaml took ${taken} of 3000 texts`);
});

// Texts js-yaml reads differently from the yaml library (found by a property test holding a reader to
// the yaml library on random and hostile texts): the gate sends them to the yaml library, whose
// reading (or refusal) stands.
test('texts js-yaml reads differently go to the yaml library', (t) => {
  const texts = [
    "a: 'x'#\nb: 1\n", // a comment glued to a quote: the yaml library refuses it
    'a: {}#\n',
    'a: -.5\nb: +.5e3\n', // a string to js-yaml
    'a: 5e400\n', // a string to js-yaml, Infinity to the yaml library
    'a: -0\n',
    'a: {: 1}\n', // an empty key: js-yaml's "null"
    '~: 1\n',
    'null: 1\n',
    'a:\n  Null: 1\n',
    '- -\n- {a: 1}\n', // js-yaml files the next entry into the empty inner sequence
    'a:\n  -\n      - x\n      - # c\n  - y\n',
    '---# a\n- {a: 1}\n',
    '---x\n',
    'a: 1\n---x: 1\n',
    '\ra: {}\n',
    // quoted scalars that go on past their line (js-yaml takes a continuation line indented less)
    "a: 'x\n\n# c\n  b'\n",
    "a:\n  b: 'x\n y'\n",
    "a:\n  b: 'it''s\n y'\n",
    'a:\n  b: "x\\" \n y"\n',
    'a:\n  b: "x\\\n y"\n',
    '- ["x\n y"]\n',
    "'a\n b': 1\n",
  ];
  for (const s of texts) {
    t.is(readYAMLFast(s), undefined, JSON.stringify(s));
    t.deepEqual(readDocuments(s), readYAMLSlow(s), JSON.stringify(s));
  }
});
