// The Kubernetes API schema of the kinds podwall reads, as an API server with strict field
// validation applies it: fields unknown to the kind's schema (not merely unread by podwall), values
// of the wrong shape, and the required fields of the objects podwall reads. The schema is
// @kubernetes/client-node's generated models (each class's `attributeTypeMap`: wire name and type
// like `Array<V1Container>`), loaded on demand — only the models reachable from the kinds asked for
// (a Pod reaches ~150), not the whole ObjectSerializer (~2,700 models, ~0.4 s to import).
//
// Use: `await loadSchemas(kinds)` once, then `schemaProblems(raw, kind, apiVersion)` per object
// (synchronous). Problems name the field by its YAML path: `spec.containers[0].containerport`.

type FieldType =
  | { t: 'model'; name: string }
  | { t: 'array'; of: FieldType }
  | { t: 'map'; of: FieldType }
  | { t: 'string' }
  | { t: 'number'; integer: boolean }
  | { t: 'boolean' }
  | { t: 'intOrString' }
  | { t: 'any' };

interface Field {
  type: FieldType;
  /** A string field that also takes a number (a resource quantity, QUANTITY_FIELDS). */
  quantity: boolean;
}

interface Model {
  fields: Map<string, Field>;
  /** Wire names, for "did you mean". */
  names: string[];
  /** The required fields (REQUIRED), and which of them must not be empty lists (NON_EMPTY). */
  required: readonly { key: string; nonEmpty: boolean }[];
}

interface Attribute {
  baseName: string;
  type: string;
  format: string;
}

/** The generated model of each kind podwall reads, by kind. */
export const ROOT_MODELS: Readonly<Record<string, string>> = {
  Pod: 'V1Pod',
  Namespace: 'V1Namespace',
  Node: 'V1Node',
  Service: 'V1Service',
  NetworkPolicy: 'V1NetworkPolicy',
  Deployment: 'V1Deployment',
  ReplicaSet: 'V1ReplicaSet',
  StatefulSet: 'V1StatefulSet',
  DaemonSet: 'V1DaemonSet',
  Job: 'V1Job',
  CronJob: 'V1CronJob',
  ReplicationController: 'V1ReplicationController',
};

/**
 * Fields the API server requires on the objects podwall reads (the generated models do not say
 * which are required). Arrays listed here must also be non-empty.
 */
const REQUIRED: Readonly<Record<string, readonly string[]>> = {
  V1PodSpec: ['containers'],
  V1Container: ['name', 'image'],
  V1ContainerPort: ['containerPort'],
  V1EnvVar: ['name'],
  V1Volume: ['name'],
  V1VolumeMount: ['name', 'mountPath'],
  V1IPBlock: ['cidr'],
  V1LabelSelectorRequirement: ['key', 'operator'],
  V1NodeAddress: ['type', 'address'],
  V1ServicePort: ['port'],
  V1OwnerReference: ['apiVersion', 'kind', 'name', 'uid'],
  V1DeploymentSpec: ['selector', 'template'],
  V1ReplicaSetSpec: ['selector'],
  V1StatefulSetSpec: ['selector', 'template'],
  V1DaemonSetSpec: ['selector', 'template'],
  V1JobSpec: ['template'],
  V1CronJobSpec: ['schedule', 'jobTemplate'],
};
const NON_EMPTY = new Set(['V1PodSpec.containers']);

/**
 * Strings the API server also takes as numbers: resource quantities (`cpu: 1`) are map values
 * (limits, requests, capacity) or these fields.
 */
const QUANTITY_FIELDS = new Set(['V1EmptyDirVolumeSource.sizeLimit']);

const models = new Map<string, Model>();

function parseType(type: string, format: string): FieldType {
  if (type.startsWith('Array<') && type.endsWith('>')) return { t: 'array', of: parseType(type.slice(6, -1), '') };
  if (type.startsWith('{ [key: string]: ') && type.endsWith('; }')) return { t: 'map', of: parseType(type.slice(17, -3), '') };
  switch (type) {
    case 'string':
    case 'Date':
      return { t: 'string' };
    case 'number':
      return { t: 'number', integer: format === 'int32' || format === 'int64' };
    case 'boolean':
      return { t: 'boolean' };
    case 'IntOrString':
      return { t: 'intOrString' };
    case 'any':
      return { t: 'any' };
    default:
      return /^[A-Z][A-Za-z0-9]*$/.test(type) ? { t: 'model', name: type } : { t: 'any' };
  }
}

function referenced(t: FieldType, out: Set<string>): void {
  if (t.t === 'model') out.add(t.name);
  else if (t.t === 'array' || t.t === 'map') referenced(t.of, out);
}

let loading: Promise<void> = Promise.resolve();

/** Loads the models reachable from the given kinds (default: every kind podwall reads). */
export function loadSchemas(kinds: readonly string[] = Object.keys(ROOT_MODELS)): Promise<void> {
  const roots = kinds.map((k) => ROOT_MODELS[k]).filter((m): m is string => m !== undefined && !models.has(m));
  if (roots.length === 0) return loading;
  loading = loading.then(async () => {
    let frontier = roots.filter((m) => !models.has(m));
    while (frontier.length > 0) {
      const loaded = await Promise.all(
        frontier.map(async (name) => {
          const mod = (await import(`@kubernetes/client-node/dist/gen/models/${name}.js`)) as Record<string, { attributeTypeMap?: Attribute[] }>;
          const attrs = mod[name]?.attributeTypeMap;
          if (!Array.isArray(attrs)) throw new Error(`@kubernetes/client-node has no model ${name}`);
          return [name, attrs] as const;
        }),
      );
      const next = new Set<string>();
      for (const [name, attrs] of loaded) {
        const fields = new Map<string, Field>();
        for (const a of attrs) {
          const t = parseType(a.type, a.format);
          fields.set(a.baseName, { type: t, quantity: QUANTITY_FIELDS.has(`${name}.${a.baseName}`) });
          referenced(t, next);
        }
        const required = (REQUIRED[name] ?? []).map((key) => ({ key, nonEmpty: NON_EMPTY.has(`${name}.${key}`) }));
        models.set(name, { fields, names: [...fields.keys()], required });
      }
      frontier = [...next].filter((m) => !models.has(m));
    }
  });
  return loading;
}

/** Whether `loadSchemas` has loaded the schema of `kind`. */
export function hasSchema(kind: string): boolean {
  const root = ROOT_MODELS[kind];
  return root !== undefined && models.has(root);
}

export interface SchemaProblem {
  code: 'unknown-field' | 'invalid-type' | 'missing-field';
  /** YAML path of the field. */
  field: string;
  message: string;
}

/** Problems of one raw object against the schema of its kind (empty when it conforms, or when the kind has no schema loaded). */
export function schemaProblems(raw: Record<string, unknown>, kind: string): SchemaProblem[] {
  const root = ROOT_MODELS[kind];
  const out: SchemaProblem[] = [];
  const model = root !== undefined ? models.get(root) : undefined;
  if (model === undefined) return out;
  new Walk(out).model(raw, model);
  return out;
}

const MAX_PROBLEMS = 20;

/** Kinds of path segments: a field, a list index, a map key. */
const FIELD = 0;
const INDEX = 1;
const KEY = 2;

/**
 * One object's walk. The YAML path of where it is stands on a stack of segments and is written out
 * only for a problem: an object that conforms costs no path strings (100,000 pods have ~10 million
 * fields).
 */
class Walk {
  private readonly segs: (string | number)[] = [];
  private readonly kinds: number[] = [];
  constructor(private readonly out: SchemaProblem[]) {}

  private push(seg: string | number, kind: number): void {
    this.segs.push(seg);
    this.kinds.push(kind);
  }

  private pop(): void {
    this.segs.pop();
    this.kinds.pop();
  }

  /** The path of where the walk is (`spec.containers[0].ports`, `metadata.labels["a"]`). */
  private path(): string {
    let p = '';
    for (let i = 0; i < this.segs.length; i++) {
      const seg = this.segs[i]!;
      const kind = this.kinds[i];
      if (kind === FIELD) p = p === '' ? (seg as string) : `${p}.${seg as string}`;
      else if (kind === INDEX) p += `[${seg as number}]`;
      else p += `[${JSON.stringify(seg)}]`;
    }
    return p;
  }

  private problem(code: SchemaProblem['code'], message: string): void {
    this.out.push({ code, field: this.path(), message });
  }

  model(v: Record<string, unknown>, model: Model): void {
    const out = this.out;
    for (const key in v) {
      if (!Object.prototype.hasOwnProperty.call(v, key)) continue;
      if (out.length >= MAX_PROBLEMS) return;
      const field = model.fields.get(key);
      this.push(key, FIELD);
      if (field === undefined) this.problem('unknown-field', unknownFieldMessage(key, model.names));
      else {
        const value = v[key];
        if (value !== null && value !== undefined) this.value(value, field.type, field.quantity);
      }
      this.pop();
    }
    for (const { key, nonEmpty } of model.required) {
      const value = v[key];
      const missing = value === undefined || value === null || value === '';
      if (!missing && !(nonEmpty && Array.isArray(value) && value.length === 0)) continue;
      this.push(key, FIELD);
      this.problem('missing-field', missing ? 'required field missing' : 'must list at least one item');
      this.pop();
    }
  }

  private value(value: unknown, type: FieldType, quantity = false): void {
    const out = this.out;
    switch (type.t) {
      case 'any':
        return;
      case 'model': {
        if (!isMapping(value)) return this.problem('invalid-type', typeMessage('a mapping', value));
        const model = models.get(type.name);
        if (model) this.model(value, model);
        return;
      }
      case 'array':
        if (!Array.isArray(value)) return this.problem('invalid-type', typeMessage('a list', value));
        for (let i = 0; i < value.length && out.length < MAX_PROBLEMS; i++) {
          const item: unknown = value[i];
          this.push(i, INDEX);
          if (item === null || item === undefined) {
            if (type.of.t === 'model') this.problem('invalid-type', 'must be a mapping, not null');
          } else this.value(item, type.of);
          this.pop();
        }
        return;
      case 'map':
        if (!isMapping(value)) return this.problem('invalid-type', typeMessage('a mapping', value));
        for (const k in value) {
          if (!Object.prototype.hasOwnProperty.call(value, k)) continue;
          if (out.length >= MAX_PROBLEMS) return;
          const item = value[k];
          if (item === null || item === undefined) continue;
          // Map values of strings are resource quantities (limits, capacity) or labels; labels are checked where they are read.
          this.push(k, KEY);
          this.value(item, type.of, type.of.t === 'string');
          this.pop();
        }
        return;
      case 'string':
        if (typeof value === 'string') return;
        if (quantity && typeof value === 'number') return;
        return this.problem('invalid-type', typeMessage('a string', value));
      case 'number':
        if (typeof value !== 'number') return this.problem('invalid-type', typeMessage(type.integer ? 'an integer' : 'a number', value));
        if (type.integer && !Number.isInteger(value)) this.problem('invalid-type', typeMessage('an integer', value));
        return;
      case 'boolean':
        if (typeof value !== 'boolean') this.problem('invalid-type', typeMessage('true or false', value));
        return;
      case 'intOrString':
        if (typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value))) return;
        this.problem('invalid-type', typeMessage('an integer or a string', value));
        return;
    }
  }
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a mapping';
  const s = JSON.stringify(v) ?? String(v);
  return `${typeof v === 'string' ? 'the string' : typeof v === 'boolean' ? 'the boolean' : 'the number'} ${s.length > 40 ? `${s.slice(0, 37)}...` : s}`;
}

function typeMessage(want: string, value: unknown): string {
  return `must be ${want}, not ${describe(value)}`;
}

function unknownFieldMessage(key: string, known: readonly string[]): string {
  const shown = JSON.stringify(key);
  if (key === '<<') return `unknown field ${shown}: a YAML merge key, which kubectl (YAML 1.1) expands but the API schema does not know; write the fields out`;
  const hit = nearest(key, known);
  return `unknown field ${shown}${hit ? ` (did you mean ${JSON.stringify(hit)}?)` : ''}`;
}

/** The known name a typo most likely meant: same letters ignoring case, or at most two edits away. */
function nearest(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const same = known.find((k) => k.toLowerCase() === lower);
  if (same) return same;
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    if (Math.abs(k.length - key.length) >= bestD) continue;
    const d = editDistance(lower, k.toLowerCase(), bestD);
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return key.length > 3 ? best : undefined;
}

function editDistance(a: string, b: string, cap: number): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      rowMin = Math.min(rowMin, cur[j]!);
    }
    if (rowMin >= cap) return cap;
    prev = cur;
  }
  return prev[b.length]!;
}
