// Expectations files for `podwall test`: what a team asserts about reachability, checked like code.
//
//   apiVersion: podwall.io/v1alpha1      # optional
//   kind: Expectations                   # optional
//   assertions:
//   - name: the database accepts only the API        # optional
//     from: app/api                       # ns/name, ns/name[Kind], ns/*, *, globs, a list of them,
//     to: app/db                          #   or {namespace, namespaceSelector, podSelector}
//     port: 5432/TCP                      # PORT[/PROTO], LO-HI[/PROTO], or a list; protocol TCP by default
//     allow: true
//
// Every problem is one line naming the file, the assertion and the field (`expect.yaml:
// assertions[2].port: ...`); nothing is guessed.
import { parseDocument } from 'yaml';
import type { LabelSelector, LabelSelectorRequirement, Protocol } from '../cluster/model.js';
import { PROTOCOLS } from '../cluster/model.js';
import { labelKeyProblem, labelValueProblem } from '../cluster/normalize.js';
import { parseEndpointPattern, PatternError, selectorPattern, type EndpointPattern } from './endpoint-pattern.js';

export class ExpectationError extends Error {}

export interface PortRange {
  protocol: Protocol;
  lo: number;
  hi: number;
}

export interface EndpointSet {
  /** As written, for messages. */
  text: string;
  patterns: EndpointPattern[];
  /** Names exactly one endpoint (no wildcard, no selector): its pair with itself is checked too. */
  exact: boolean;
}

export interface Assertion {
  file: string;
  /** Position in `assertions`. */
  index: number;
  name: string;
  from: EndpointSet;
  to: EndpointSet;
  ports: PortRange[];
  allow: boolean;
}

export const EXPECTATIONS_API = 'podwall.io/v1alpha1';
const TOP = ['apiVersion', 'kind', 'assertions'];
const FIELDS = ['name', 'from', 'to', 'port', 'ports', 'allow'];

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const q = (v: unknown) => JSON.stringify(v) ?? String(v);

/** Edit distance with transpositions (optimal string alignment), for "did you mean" on field names. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

export function formatPortRange(p: PortRange): string {
  return `${p.lo === p.hi ? p.lo : `${p.lo}-${p.hi}`}/${p.protocol}`;
}

/** `80`, `80/TCP`, `8000-9000/udp`, or a number. */
export function parsePortRange(v: unknown): PortRange | string {
  if (typeof v === 'number') v = String(v);
  if (typeof v !== 'string') return `${q(v)} is not a port: expected PORT[/PROTOCOL] or LO-HI[/PROTOCOL], e.g. 80/TCP`;
  const m = /^\s*(\d{1,5})(?:\s*-\s*(\d{1,5}))?(?:\s*\/\s*([A-Za-z]+))?\s*$/.exec(v);
  if (!m) return `${q(v)} is not a port: expected PORT[/PROTOCOL] or LO-HI[/PROTOCOL], e.g. 80/TCP`;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  const protocol = (m[3] ?? 'TCP').toUpperCase();
  if (lo < 1 || hi > 65535) return `${q(v)}: ports are 1-65535`;
  if (hi < lo) return `${q(v)}: the range ends below its start`;
  if (!(PROTOCOLS as readonly string[]).includes(protocol)) return `${q(v)}: unknown protocol ${q(m[3])} (TCP, UDP, SCTP)`;
  return { protocol: protocol as Protocol, lo, hi };
}

function selector(v: unknown, where: string): LabelSelector {
  if (v === undefined || v === null) return { matchLabels: {}, matchExpressions: [] };
  if (!isObj(v)) throw new ExpectationError(`${where}: must be a label selector (matchLabels, matchExpressions)`);
  for (const k of Object.keys(v)) if (k !== 'matchLabels' && k !== 'matchExpressions') throw new ExpectationError(`${where}.${k}: unknown field (a selector has matchLabels and matchExpressions)`);
  const matchLabels: Record<string, string> = {};
  if (v.matchLabels !== undefined && v.matchLabels !== null) {
    if (!isObj(v.matchLabels)) throw new ExpectationError(`${where}.matchLabels: must be a map of label values`);
    for (const [k, val] of Object.entries(v.matchLabels)) {
      const p = labelKeyProblem(k) ?? labelValueProblem(val);
      if (p) throw new ExpectationError(`${where}.matchLabels[${q(k)}]: ${p}`);
      matchLabels[k] = val as string;
    }
  }
  const matchExpressions: LabelSelectorRequirement[] = [];
  if (v.matchExpressions !== undefined && v.matchExpressions !== null) {
    if (!Array.isArray(v.matchExpressions)) throw new ExpectationError(`${where}.matchExpressions: must be a list`);
    v.matchExpressions.forEach((e, i) => {
      const w = `${where}.matchExpressions[${i}]`;
      if (!isObj(e)) throw new ExpectationError(`${w}: must be a mapping with key, operator, values`);
      const kp = labelKeyProblem(e.key as string);
      if (kp) throw new ExpectationError(`${w}.key: ${kp}`);
      const op = e.operator;
      if (op !== 'In' && op !== 'NotIn' && op !== 'Exists' && op !== 'DoesNotExist') throw new ExpectationError(`${w}.operator: ${q(op)} is not In, NotIn, Exists or DoesNotExist`);
      const values = e.values ?? [];
      if (!Array.isArray(values) || values.some((x) => labelValueProblem(x) !== undefined)) throw new ExpectationError(`${w}.values: must be a list of label values`);
      if ((op === 'In' || op === 'NotIn') && values.length === 0) throw new ExpectationError(`${w}.values: must not be empty for ${op}`);
      if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0) throw new ExpectationError(`${w}.values: must be empty for ${op}`);
      matchExpressions.push({ key: e.key as string, operator: op, values: values as string[] });
    });
  }
  return { matchLabels, matchExpressions };
}

function endpointSet(v: unknown, where: string, defaultNamespace: string | undefined): EndpointSet {
  const one = (x: unknown, w: string): { p: EndpointPattern; exact: boolean } => {
    if (typeof x === 'string') {
      try {
        const p = parseEndpointPattern(x, defaultNamespace);
        return { p, exact: !x.includes('*') };
      } catch (e) {
        if (e instanceof PatternError) throw new ExpectationError(`${w}: ${e.message}`);
        throw e;
      }
    }
    if (isObj(x)) {
      for (const k of Object.keys(x)) if (!['namespace', 'namespaceSelector', 'podSelector'].includes(k)) throw new ExpectationError(`${w}.${k}: unknown field (an endpoint selector has namespace, namespaceSelector and podSelector)`);
      if (x.namespace !== undefined && typeof x.namespace !== 'string') throw new ExpectationError(`${w}.namespace: must be a namespace name`);
      if (x.namespace !== undefined && x.namespaceSelector !== undefined) throw new ExpectationError(`${w}: give namespace or namespaceSelector, not both`);
      const ns = x.namespaceSelector === undefined ? undefined : selector(x.namespaceSelector, `${w}.namespaceSelector`);
      const pod = x.podSelector === undefined ? undefined : selector(x.podSelector, `${w}.podSelector`);
      return { p: selectorPattern(ns, pod, x.namespace as string | undefined), exact: false };
    }
    throw new ExpectationError(`${w}: expected an endpoint (ns/name, ns/name[Kind], ns/*), a list of them, or {namespace, namespaceSelector, podSelector}`);
  };
  if (v === undefined || v === null) throw new ExpectationError(`${where}: required`);
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) throw new ExpectationError(`${where}: an empty list matches nothing`);
  const parts = list.map((x, i) => one(x, Array.isArray(v) ? `${where}[${i}]` : where));
  return { text: parts.map((x) => x.p.text).join(', '), patterns: parts.map((x) => x.p), exact: parts.length === 1 && parts[0]!.exact };
}

/** Parses one expectations file. Throws ExpectationError with one line naming file and field. */
export function parseExpectations(text: string, file: string, defaultNamespace?: string): Assertion[] {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const first = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ExpectationError(`${file}: invalid YAML${e.linePos?.[0] ? ` at line ${e.linePos[0].line}` : ''}: ${first}`);
  }
  const top: unknown = doc.toJS({ maxAliasCount: 100 });
  if (!isObj(top)) throw new ExpectationError(`${file}: expected a mapping with assertions (see docs/testing.md)`);
  for (const k of Object.keys(top)) if (!TOP.includes(k)) throw new ExpectationError(`${file}: ${k}: unknown field (an expectations file has ${TOP.join(', ')})`);
  if (top.apiVersion !== undefined && top.apiVersion !== EXPECTATIONS_API) throw new ExpectationError(`${file}: apiVersion: ${q(top.apiVersion)} is not ${EXPECTATIONS_API}`);
  if (top.kind !== undefined && top.kind !== 'Expectations') throw new ExpectationError(`${file}: kind: ${q(top.kind)} is not Expectations`);
  if (!Array.isArray(top.assertions)) throw new ExpectationError(`${file}: assertions: required, a list`);
  if (top.assertions.length === 0) throw new ExpectationError(`${file}: assertions: empty — nothing to test`);
  return top.assertions.map((a, index) => {
    const where = `${file}: assertions[${index}]`;
    if (!isObj(a)) throw new ExpectationError(`${where}: must be a mapping with from, to, port, allow`);
    for (const k of Object.keys(a)) {
      if (FIELDS.includes(k)) continue;
      const best = FIELDS.map((f) => [f, distance(f.toLowerCase(), k.toLowerCase())] as const).sort((x, y) => x[1] - y[1])[0]!;
      const hint = best[1] <= 2 ? best[0] : undefined;
      throw new ExpectationError(`${where}.${k}: unknown field${hint ? ` (did you mean ${q(hint)}?)` : ` (an assertion has ${FIELDS.join(', ')})`}`);
    }
    if (a.port !== undefined && a.ports !== undefined) throw new ExpectationError(`${where}: give port or ports, not both`);
    if (typeof a.allow !== 'boolean') throw new ExpectationError(`${where}.allow: required, true or false${a.allow !== undefined ? ` (not ${q(a.allow)})` : ''}`);
    if (a.name !== undefined && typeof a.name !== 'string') throw new ExpectationError(`${where}.name: must be text`);
    const from = endpointSet(a.from, `${where}.from`, defaultNamespace);
    const to = endpointSet(a.to, `${where}.to`, defaultNamespace);
    const rawPorts = a.port ?? a.ports;
    if (rawPorts === undefined || rawPorts === null) throw new ExpectationError(`${where}.port: required (e.g. 80/TCP, 8000-9000/UDP)`);
    const list = Array.isArray(rawPorts) ? rawPorts : [rawPorts];
    if (list.length === 0) throw new ExpectationError(`${where}.port: an empty list checks nothing`);
    const ports = list.map((p, i) => {
      const r = parsePortRange(p);
      if (typeof r === 'string') throw new ExpectationError(`${where}.${a.port !== undefined ? 'port' : 'ports'}${Array.isArray(rawPorts) ? `[${i}]` : ''}: ${r}`);
      return r;
    });
    const name = (a.name as string | undefined) ?? `${from.text} → ${to.text} ${ports.map(formatPortRange).join(', ')} ${a.allow ? 'allowed' : 'denied'}`;
    return { file, index, name, from, to, ports, allow: a.allow };
  });
}
