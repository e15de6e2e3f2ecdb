// The boundary: raw Kubernetes objects (manifest documents, informer list models, watch events) →
// podwall's model, with the API server's defaulting and validation. Every problem becomes a
// Finding naming object and field. A NetworkPolicy that cannot be fully understood is kept in a
// fail-closed reading: an unreadable rule grants nothing, an unreadable podSelector selects every
// pod of the namespace — never wider access than the spec allows.

import type {
  ClusterObject,
  ContainerPort,
  Direction,
  IPBlock,
  LabelSelector,
  LabelSelectorRequirement,
  Labels,
  Namespace,
  NetworkPolicy,
  Node,
  Origin,
  Pod,
  PodPhase,
  PolicyPeer,
  PolicyPort,
  PolicyRule,
  Protocol,
  Service,
  OwnerReference,
  Workload,
  WorkloadKind,
} from './model.js';
import { CNP_API_VERSION, ENFORCEMENT_ANNOTATION, PROTOCOLS, WORKLOAD_KINDS, type Enforcement } from './model.js';
import { type Finding, show, showBare } from './findings.js';
import { cidrContains, formatCIDR, normalizeIP, parseCIDR, parseIP, unusableAddress } from '../net/ip.js';
// A cycle (normalize-cnp uses this module's helpers): only its hoisted function is used at load time.
import { readClusterNetworkPolicy } from './normalize-cnp.js';

export interface NormalizeResult {
  object?: ClusterObject;
  findings: Finding[];
  /** Set when the object is not one podwall reads: its kind (for `-v` counts). */
  skipped?: string;
}

export const METADATA_NAME_LABEL = 'kubernetes.io/metadata.name';

export type Json = Record<string, unknown>;

export function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Collects findings for one object. */
export class Ctx {
  readonly findings: Finding[] = [];
  object: string;
  constructor(
    readonly origin: Origin | undefined,
    object: string,
    /** Where an object without metadata.namespace goes (`default`, or kubectl's `-n NS`). */
    readonly defaultNamespace = 'default',
  ) {
    this.object = object;
  }
  private add(severity: Finding['severity'], code: string, field: string, message: string): void {
    const f: Finding = { severity, code, message, object: this.object };
    if (field) f.field = field;
    if (this.origin?.file) f.file = this.origin.file;
    this.findings.push(f);
  }
  error(code: string, field: string, message: string): void {
    this.add('error', code, field, message);
  }
  warn(code: string, field: string, message: string): void {
    this.add('warning', code, field, message);
  }
}

// ---------------------------------------------------------------- names and labels

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export function labelKeyProblem(key: string): string | undefined {
  if (typeof key !== 'string' || key === '') return 'label key must be a non-empty string';
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) return `label key prefix ${show(prefix)} is not a DNS subdomain`;
  if (name.length > 63 || !QUALIFIED_NAME.test(name)) return `label key ${show(key)} is not a valid qualified name`;
  return undefined;
}

export function labelValueProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `label value ${show(value)} must be a string`;
  if (value.length > 63 || !LABEL_VALUE.test(value)) return `label value ${show(value)} is not valid (≤63 chars, alphanumerics, '-', '_', '.')`;
  return undefined;
}

/** Port name rules (IANA_SVC_NAME): ≤15 chars, lowercase alphanumerics and '-', a letter, no '--'. */
export function portNameProblem(name: string): string | undefined {
  if (name.length > 15 || !IANA_SVC_NAME.test(name) || name.includes('--') || !/[a-z]/.test(name)) {
    return `${show(name)} is not a valid port name (≤15 lowercase alphanumerics or '-', at least one letter)`;
  }
  return undefined;
}

function readLabels(ctx: Ctx, raw: unknown, field: string): Labels | undefined {
  if (raw === undefined || raw === null) return {};
  if (!isObj(raw)) {
    ctx.error('invalid-labels', field, 'must be a map of strings');
    return undefined;
  }
  const out: Record<string, string> = {};
  let ok = true;
  for (const [k, v] of Object.entries(raw)) {
    const p = labelKeyProblem(k) ?? labelValueProblem(v);
    if (p) {
      ctx.error('invalid-label', `${field}[${show(k)}]`, p);
      ok = false;
    } else out[k] = v as string;
  }
  return ok ? out : undefined;
}

export function readName(ctx: Ctx, meta: Json, field: string, pattern: RegExp, max: number): string | undefined {
  const name = meta.name;
  if (typeof name !== 'string' || name === '') {
    ctx.error('missing-name', field, 'name is required');
    return undefined;
  }
  if (name.length > max || !pattern.test(name)) {
    ctx.error('invalid-name', field, `${show(name)} is not a valid name (lowercase alphanumerics, '-'${pattern === DNS1123_SUBDOMAIN ? ", '.'" : ''}, ≤${max} chars)`);
    return undefined;
  }
  return name;
}

function readNamespaceOf(ctx: Ctx, meta: Json): string | undefined {
  const ns = meta.namespace ?? ctx.defaultNamespace;
  if (typeof ns !== 'string' || ns.length > 63 || !DNS1123_LABEL.test(ns)) {
    ctx.error('invalid-namespace', 'metadata.namespace', `${show(ns)} is not a valid namespace name`);
    return undefined;
  }
  return ns;
}

function describeObject(kind: string, meta: unknown, docIndex?: number): string {
  if (isObj(meta) && typeof meta.name === 'string') {
    const ns = typeof meta.namespace === 'string' ? `${showBare(meta.namespace)}/` : '';
    return `${kind} ${ns}${showBare(meta.name)}`;
  }
  return `${kind} (unnamed${docIndex !== undefined ? `, document ${docIndex}` : ''})`;
}

// ---------------------------------------------------------------- selectors

const OPERATORS = new Set(['In', 'NotIn', 'Exists', 'DoesNotExist']);

/** Returns the selector, or undefined when it is invalid (findings recorded). */
export function readSelector(ctx: Ctx, raw: unknown, field: string): LabelSelector | undefined {
  if (raw === null || raw === undefined) return { matchLabels: {}, matchExpressions: [] };
  if (!isObj(raw)) {
    ctx.error('invalid-selector', field, 'must be a label selector object');
    return undefined;
  }
  let ok = true;
  for (const k of Object.keys(raw)) {
    if (k !== 'matchLabels' && k !== 'matchExpressions') {
      ctx.error('unknown-field', `${field}.${k}`, `unknown field ${show(k)} (a selector has matchLabels and matchExpressions)`);
      ok = false;
    }
  }
  const matchLabels = readLabels(ctx, raw.matchLabels, `${field}.matchLabels`);
  if (!matchLabels) ok = false;
  const exprs: LabelSelectorRequirement[] = [];
  const me = raw.matchExpressions;
  if (me !== undefined && me !== null) {
    if (!Array.isArray(me)) {
      ctx.error('invalid-selector', `${field}.matchExpressions`, 'must be a list');
      ok = false;
    } else {
      me.forEach((e, i) => {
        const f = `${field}.matchExpressions[${i}]`;
        if (!isObj(e)) {
          ctx.error('invalid-selector', f, 'must be an object with key, operator, values');
          ok = false;
          return;
        }
        const keyProblem = labelKeyProblem(e.key as string);
        if (keyProblem) {
          ctx.error('invalid-selector', `${f}.key`, keyProblem);
          ok = false;
        }
        const op = e.operator;
        if (typeof op !== 'string' || !OPERATORS.has(op)) {
          ctx.error('invalid-operator', `${f}.operator`, `${show(op)} is not a selector operator (In, NotIn, Exists, DoesNotExist)`);
          ok = false;
          return;
        }
        const values = e.values ?? [];
        if (!Array.isArray(values)) {
          ctx.error('invalid-selector', `${f}.values`, 'must be a list of strings');
          ok = false;
          return;
        }
        if ((op === 'In' || op === 'NotIn') && values.length === 0) {
          ctx.error('invalid-selector', `${f}.values`, `must be non-empty when operator is ${op}`);
          ok = false;
        }
        if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0) {
          ctx.error('invalid-selector', `${f}.values`, `must be empty when operator is ${op}`);
          ok = false;
        }
        values.forEach((v, j) => {
          const p = labelValueProblem(v);
          if (p) {
            ctx.error('invalid-selector', `${f}.values[${j}]`, p);
            ok = false;
          }
        });
        for (const k of Object.keys(e)) {
          if (!['key', 'operator', 'values'].includes(k)) {
            ctx.error('unknown-field', `${f}.${k}`, `unknown field ${show(k)}`);
            ok = false;
          }
        }
        if (ok) exprs.push({ key: e.key as string, operator: op as LabelSelectorRequirement['operator'], values: [...(values as string[])] });
      });
    }
  }
  return ok && matchLabels ? { matchLabels, matchExpressions: exprs } : undefined;
}

// ---------------------------------------------------------------- NetworkPolicy

export function checkKnown(ctx: Ctx, obj: Json, known: readonly string[], field: string): boolean {
  let ok = true;
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) {
      ctx.error('unknown-field', field ? `${field}.${k}` : k, `unknown field ${show(k)}${suggest(k, known)}`);
      ok = false;
    }
  }
  return ok;
}

function suggest(k: string, known: readonly string[]): string {
  const lower = k.toLowerCase();
  const hit = known.find((c) => c.toLowerCase() === lower || (c.length > 3 && lower.startsWith(c.toLowerCase().slice(0, 3)) && Math.abs(c.length - k.length) <= 2));
  return hit ? ` (did you mean ${show(hit)}?)` : '';
}

function readIPBlock(ctx: Ctx, raw: unknown, field: string): IPBlock | undefined {
  if (!isObj(raw)) {
    ctx.error('invalid-ipblock', field, 'must be an object with cidr and except');
    return undefined;
  }
  let ok = checkKnown(ctx, raw, ['cidr', 'except'], field);
  const parsed = parseCIDR(raw.cidr as string);
  if (!parsed.ok) {
    ctx.error('invalid-cidr', `${field}.cidr`, `${show(raw.cidr)} is not a valid CIDR: ${parsed.reason}`);
    return undefined;
  }
  if (parsed.hostBitsSet) ctx.warn('cidr-host-bits', `${field}.cidr`, `${show(raw.cidr)} has host bits set; it means ${formatCIDR(parsed.cidr)}`);
  const except: string[] = [];
  const rawExcept = raw.except ?? [];
  if (!Array.isArray(rawExcept)) {
    ctx.error('invalid-ipblock', `${field}.except`, 'must be a list of CIDRs');
    return undefined;
  }
  rawExcept.forEach((e, i) => {
    const f = `${field}.except[${i}]`;
    const p = parseCIDR(e as string);
    if (!p.ok) {
      ctx.error('invalid-cidr', f, `${show(e)} is not a valid CIDR: ${p.reason}`);
      ok = false;
      return;
    }
    if (p.cidr.family !== parsed.cidr.family || !cidrContains(parsed.cidr, p.cidr) || p.cidr.prefix === parsed.cidr.prefix) {
      ctx.error('except-outside-cidr', f, `${show(e)} is not strictly inside cidr ${formatCIDR(parsed.cidr)}`);
      ok = false;
      return;
    }
    except.push(formatCIDR(p.cidr));
  });
  return ok ? { cidr: formatCIDR(parsed.cidr), except } : undefined;
}

function readPeer(ctx: Ctx, raw: unknown, field: string): PolicyPeer | undefined {
  if (!isObj(raw)) {
    ctx.error('invalid-peer', field, 'must be an object with podSelector, namespaceSelector or ipBlock');
    return undefined;
  }
  let ok = checkKnown(ctx, raw, ['podSelector', 'namespaceSelector', 'ipBlock'], field);
  const peer: PolicyPeer = {};
  const has = (k: string) => raw[k] !== undefined && raw[k] !== null;
  if (!has('podSelector') && !has('namespaceSelector') && !has('ipBlock')) {
    ctx.error('empty-peer', field, 'a peer needs podSelector, namespaceSelector or ipBlock');
    return undefined;
  }
  if (has('ipBlock') && (has('podSelector') || has('namespaceSelector'))) {
    ctx.error('invalid-peer', field, 'ipBlock cannot be combined with podSelector or namespaceSelector');
    return undefined;
  }
  if (has('podSelector')) {
    const s = readSelector(ctx, raw.podSelector, `${field}.podSelector`);
    if (s) peer.podSelector = s;
    else ok = false;
  }
  if (has('namespaceSelector')) {
    const s = readSelector(ctx, raw.namespaceSelector, `${field}.namespaceSelector`);
    if (s) peer.namespaceSelector = s;
    else ok = false;
  }
  if (has('ipBlock')) {
    const b = readIPBlock(ctx, raw.ipBlock, `${field}.ipBlock`);
    if (b) peer.ipBlock = b;
    else ok = false;
  }
  return ok ? peer : undefined;
}

function readPolicyPort(ctx: Ctx, raw: unknown, field: string): PolicyPort | undefined {
  if (!isObj(raw)) {
    ctx.error('invalid-port', field, 'must be an object with protocol, port, endPort');
    return undefined;
  }
  let ok = checkKnown(ctx, raw, ['protocol', 'port', 'endPort'], field);
  const protocol = raw.protocol ?? 'TCP';
  if (typeof protocol !== 'string' || !(PROTOCOLS as readonly string[]).includes(protocol)) {
    ctx.error('unknown-protocol', `${field}.protocol`, `${show(protocol)} is not a supported protocol (TCP, UDP, SCTP)`);
    return undefined;
  }
  const out: PolicyPort = { protocol: protocol as Protocol };
  const port = raw.port;
  if (port !== undefined && port !== null) {
    if (typeof port === 'number') {
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        ctx.error('port-out-of-range', `${field}.port`, `${show(port)} is not a port number (1-65535)`);
        return undefined;
      }
      out.port = port;
    } else if (typeof port === 'string') {
      const p = portNameProblem(port);
      if (p) {
        ctx.error('invalid-port-name', `${field}.port`, /^\d+$/.test(port) ? `${show(port)} is a string; write the number without quotes` : p);
        return undefined;
      }
      out.port = port;
    } else {
      ctx.error('invalid-port', `${field}.port`, `${show(port)} must be a number or a port name`);
      return undefined;
    }
  }
  const endPort = raw.endPort;
  if (endPort !== undefined && endPort !== null) {
    if (typeof endPort !== 'number' || !Number.isInteger(endPort) || endPort < 1 || endPort > 65535) {
      ctx.error('port-out-of-range', `${field}.endPort`, `${show(endPort)} is not a port number (1-65535)`);
      return undefined;
    }
    if (out.port === undefined) {
      ctx.error('endport-without-port', `${field}.endPort`, 'endPort requires port');
      return undefined;
    }
    if (typeof out.port === 'string') {
      ctx.error('endport-with-named-port', `${field}.endPort`, `endPort cannot be used with the named port ${show(out.port)}`);
      return undefined;
    }
    if (endPort < out.port) {
      ctx.error('endport-below-port', `${field}.endPort`, `endPort ${endPort} is below port ${out.port}`);
      return undefined;
    }
    out.endPort = endPort;
  }
  return ok ? out : undefined;
}

function readRule(ctx: Ctx, raw: unknown, field: string, direction: Direction): PolicyRule {
  const peerKey = direction === 'ingress' ? 'from' : 'to';
  const before = ctx.findings.filter((f) => f.severity === 'error').length;
  const rule: PolicyRule = { peers: [], ports: [] };
  if (raw === null || raw === undefined) raw = {};
  if (!isObj(raw)) {
    ctx.error('invalid-rule', field, 'must be an object');
    return { peers: [], ports: [], invalid: `${field} is not an object` };
  }
  // Typed models from client-node's list call spell `from` as `_from`: accept both spellings.
  const known = direction === 'ingress' ? ['from', '_from', 'ports'] : ['to', 'ports'];
  checkKnown(ctx, raw, known, field);
  const rawPeers = raw[peerKey] ?? (direction === 'ingress' ? raw._from : undefined);
  if (rawPeers !== undefined && rawPeers !== null) {
    if (!Array.isArray(rawPeers)) ctx.error('invalid-rule', `${field}.${peerKey}`, 'must be a list of peers');
    else
      rawPeers.forEach((p, i) => {
        const peer = readPeer(ctx, p, `${field}.${peerKey}[${i}]`);
        if (peer) rule.peers.push(peer);
      });
  }
  const rawPorts = raw.ports;
  if (rawPorts !== undefined && rawPorts !== null) {
    if (!Array.isArray(rawPorts)) ctx.error('invalid-rule', `${field}.ports`, 'must be a list of ports');
    else
      rawPorts.forEach((p, i) => {
        const port = readPolicyPort(ctx, p, `${field}.ports[${i}]`);
        if (port) rule.ports.push(port);
      });
  }
  const errors = ctx.findings.filter((f) => f.severity === 'error').slice(before);
  if (errors.length > 0) {
    // Fail closed: a rule with anything we could not understand grants nothing.
    return { peers: [], ports: [], invalid: errors.map((e) => `${e.field}: ${e.message}`).join('; ') };
  }
  return rule;
}

/**
 * The `podwall.io/enforcement` annotation. A value other than `audit` or `enforce` is an error and
 * reads as `fallback` — for a policy `enforce`, so a typo can never turn enforcement off.
 */
function readEnforcement(ctx: Ctx, meta: Json, fallback: Enforcement | undefined, what: string): Enforcement | undefined {
  const ann = meta.annotations;
  if (!isObj(ann) || !Object.hasOwn(ann, ENFORCEMENT_ANNOTATION)) return undefined;
  const v = ann[ENFORCEMENT_ANNOTATION];
  if (v === 'audit' || v === 'enforce') return v;
  ctx.error('invalid-enforcement', `metadata.annotations[${show(ENFORCEMENT_ANNOTATION)}]`, `${show(v)} is not "audit" or "enforce": ${what}`);
  return fallback;
}

function readNetworkPolicy(ctx: Ctx, o: Json): NetworkPolicy | undefined {
  const meta = isObj(o.metadata) ? o.metadata : {};
  const name = readName(ctx, meta, 'metadata.name', DNS1123_SUBDOMAIN, 253);
  const namespace = readNamespaceOf(ctx, meta);
  if (!name || !namespace) return undefined;
  const policyErrorsBefore = ctx.findings.length;
  // API defaulting: a missing or null spec is an empty one — podSelector {} (every pod of the
  // namespace) and policyTypes [Ingress]: it denies all ingress there.
  const spec = o.spec === undefined || o.spec === null ? {} : o.spec;
  if (o.spec === undefined || o.spec === null) ctx.warn('empty-spec', 'spec', `is ${o.spec === null ? 'null' : 'missing'}: the API server defaults it to podSelector {} and policyTypes [Ingress], which denies all ingress to every pod of namespace ${namespace}`);
  const policy: NetworkPolicy = {
    kind: 'NetworkPolicy',
    namespace,
    name,
    podSelector: { matchLabels: {}, matchExpressions: [] },
    policyTypes: [],
    ingress: [],
    egress: [],
  };
  if (typeof meta.uid === 'string') policy.uid = meta.uid;
  const enforcement = readEnforcement(ctx, meta, 'enforce', 'the policy is enforced');
  if (enforcement !== undefined) policy.enforcement = enforcement;
  const policyProblems: string[] = [];
  if (!isObj(spec)) {
    ctx.error('invalid-spec', 'spec', `must be a mapping, not ${show(spec)}`);
    policyProblems.push('spec is not a mapping');
  } else {
    checkKnown(ctx, spec, ['podSelector', 'policyTypes', 'ingress', 'egress'], 'spec');
    if (spec.podSelector === undefined || spec.podSelector === null) {
      // API defaulting: the empty selector.
      if (o.spec !== undefined && o.spec !== null) ctx.warn('empty-pod-selector', 'spec.podSelector', `is ${spec.podSelector === null ? 'null' : 'missing'}: the API server reads it as {}, every pod of namespace ${namespace} (write {} to say so)`);
    } else {
      const sel = readSelector(ctx, spec.podSelector, 'spec.podSelector');
      if (sel) policy.podSelector = sel;
      else policyProblems.push('podSelector could not be understood: selecting every pod of the namespace');
    }
    for (const dir of ['ingress', 'egress'] as const) {
      const rules = spec[dir];
      if (rules === undefined || rules === null) continue;
      if (!Array.isArray(rules)) {
        ctx.error('invalid-rule', `spec.${dir}`, 'must be a list of rules');
        policyProblems.push(`spec.${dir} is not a list`);
        continue;
      }
      policy[dir] = rules.map((r, i) => readRule(ctx, r, `spec.${dir}[${i}]`, dir));
    }
    const types = spec.policyTypes;
    if (types === undefined || types === null || (Array.isArray(types) && types.length === 0)) {
      // API-server defaulting.
      policy.policyTypes = ['ingress'];
      if (policy.egress.length > 0 || (Array.isArray(spec.egress) && spec.egress.length > 0)) policy.policyTypes.push('egress');
    } else if (!Array.isArray(types)) {
      ctx.error('invalid-policy-types', 'spec.policyTypes', 'must be a list of Ingress and/or Egress');
      policyProblems.push('policyTypes unreadable: isolating both directions');
      policy.policyTypes = ['ingress', 'egress'];
    } else {
      const set = new Set<Direction>();
      types.forEach((t, i) => {
        if (t === 'Ingress') set.add('ingress');
        else if (t === 'Egress') set.add('egress');
        else {
          ctx.error('invalid-policy-types', `spec.policyTypes[${i}]`, `${show(t)} is not Ingress or Egress`);
          policyProblems.push('policyTypes unreadable: isolating both directions');
          set.add('ingress').add('egress');
        }
      });
      if (types.length > 2) ctx.error('invalid-policy-types', 'spec.policyTypes', 'may not list more than two types');
      policy.policyTypes = (['ingress', 'egress'] as const).filter((d) => set.has(d));
    }
  }
  if (policyProblems.length > 0) {
    policy.invalid = policyProblems.join('; ');
    // Its targets are a guess (the whole namespace): its rules must not grant anything to them.
    const revoke = (r: PolicyRule): PolicyRule => ({ peers: [], ports: [], invalid: r.invalid ?? `the policy itself is invalid (${policy.invalid})` });
    policy.ingress = policy.ingress.map(revoke);
    policy.egress = policy.egress.map(revoke);
  }
  void policyErrorsBefore;
  return policy;
}

// ---------------------------------------------------------------- Pod, Namespace, Node, Service

const PHASES = new Set(['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown']);

function readIPs(ctx: Ctx, raw: unknown[], field: string): string[] | undefined {
  const out: string[] = [];
  for (const [i, ip] of raw.entries()) {
    const n = typeof ip === 'string' ? normalizeIP(ip) : undefined;
    if (!n) {
      ctx.error('invalid-ip', `${field}[${i}]`, `${show(ip)} is not an IP address`);
      return undefined;
    }
    const unusable = unusableAddress(parseIP(n)!);
    if (unusable) {
      ctx.error('unusable-ip', `${field}[${i}]`, `${show(ip)} is ${unusable}, which no endpoint can have`);
      return undefined;
    }
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

/**
 * Container ports of a pod spec found at `at` (`spec` for a Pod, `spec.template.spec` for a
 * workload): every container's, and restartable init containers' (sidecars). undefined when any is
 * unreadable (findings recorded).
 */
function readContainerPorts(ctx: Ctx, spec: Json, at = 'spec'): ContainerPort[] | undefined {
  const out: ContainerPort[] = [];
  let ok = true;
  for (const group of ['containers', 'initContainers'] as const) {
    const list = spec[group];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) {
      ctx.error('invalid-type', `${at}.${group}`, `must be a list of containers, not ${show(list)}`);
      ok = false;
      continue;
    }
    list.forEach((c, ci) => {
      if (!isObj(c)) {
        ctx.error('invalid-type', `${at}.${group}[${ci}]`, 'must be a container (a mapping with name, image, ports)');
        ok = false;
        return;
      }
      if (c.ports === undefined || c.ports === null) return;
      if (!Array.isArray(c.ports)) {
        ctx.error('invalid-type', `${at}.${group}[${ci}].ports`, `must be a list of ports, not ${show(c.ports)}`);
        ok = false;
        return;
      }
      // Only restartable init containers (sidecars) keep serving.
      if (group === 'initContainers' && c.restartPolicy !== 'Always') return;
      c.ports.forEach((p, pi) => {
        const f = `${at}.${group}[${ci}].ports[${pi}]`;
        if (!isObj(p)) {
          ctx.error('invalid-port', f, 'must be an object');
          ok = false;
          return;
        }
        const num = p.containerPort;
        if (num === undefined || num === null) {
          ctx.error('missing-field', `${f}.containerPort`, 'containerPort is required');
          ok = false;
          return;
        }
        if (typeof num === 'string') {
          ctx.error('invalid-type', `${f}.containerPort`, `${show(num)} is a string; write the number without quotes`);
          ok = false;
          return;
        }
        if (typeof num !== 'number' || !Number.isInteger(num) || num < 1 || num > 65535) {
          ctx.error('port-out-of-range', `${f}.containerPort`, `${show(num)} is not a port number (1-65535)`);
          ok = false;
          return;
        }
        const protocol = p.protocol ?? 'TCP';
        if (typeof protocol !== 'string' || !(PROTOCOLS as readonly string[]).includes(protocol)) {
          ctx.error('unknown-protocol', `${f}.protocol`, `${show(protocol)} is not a supported protocol (TCP, UDP, SCTP)`);
          ok = false;
          return;
        }
        const cp: ContainerPort = { port: num, protocol: protocol as Protocol };
        if (p.name !== undefined) {
          const problem = typeof p.name === 'string' ? portNameProblem(p.name) : `${show(p.name)} must be a string`;
          if (problem) {
            ctx.error('invalid-port-name', `${f}.name`, problem);
            ok = false;
            return;
          }
          cp.name = p.name as string;
        }
        out.push(cp);
      });
    });
  }
  return ok ? out : undefined;
}

/** metadata.ownerReferences: who controls this object (only read to join pods with their workloads). */
function readOwners(ctx: Ctx, meta: Json): OwnerReference[] | undefined {
  const raw = meta.ownerReferences;
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    ctx.error('invalid-owner', 'metadata.ownerReferences', 'must be a list');
    return undefined;
  }
  const out: OwnerReference[] = [];
  for (const [i, r] of raw.entries()) {
    const f = `metadata.ownerReferences[${i}]`;
    if (!isObj(r) || typeof r.kind !== 'string' || r.kind === '' || typeof r.name !== 'string' || r.name === '') {
      ctx.error('invalid-owner', f, 'must name the owner with kind and name');
      return undefined;
    }
    const o: OwnerReference = { kind: r.kind, name: r.name };
    if (typeof r.uid === 'string') o.uid = r.uid;
    if (r.controller === true) o.controller = true;
    out.push(o);
  }
  return out;
}

function readPod(ctx: Ctx, o: Json): Pod | undefined {
  const meta = isObj(o.metadata) ? o.metadata : {};
  const name = readName(ctx, meta, 'metadata.name', DNS1123_SUBDOMAIN, 253);
  const namespace = readNamespaceOf(ctx, meta);
  const labels = readLabels(ctx, meta.labels, 'metadata.labels');
  const spec = isObj(o.spec) ? o.spec : {};
  // No status at all: a pod written in git, not read from a cluster (it has no IP yet).
  const planned = o.status === undefined || o.status === null || (isObj(o.status) && Object.keys(o.status).length === 0);
  const status = isObj(o.status) ? o.status : {};
  const ports = readContainerPorts(ctx, spec);
  const owners = readOwners(ctx, meta);
  let rawIPs: unknown[] = [];
  if (Array.isArray(status.podIPs) && status.podIPs.length > 0) rawIPs = status.podIPs.map((x) => (isObj(x) ? x.ip : x));
  else if (status.podIP !== undefined && status.podIP !== null && status.podIP !== '') rawIPs = [status.podIP];
  const ips = readIPs(ctx, rawIPs, Array.isArray(status.podIPs) && status.podIPs.length > 0 ? 'status.podIPs' : 'status.podIP');
  const phase = status.phase;
  if (phase !== undefined && (typeof phase !== 'string' || !PHASES.has(phase))) ctx.warn('unknown-phase', 'status.phase', `${show(phase)} is not a pod phase`);
  const nodeName = spec.nodeName;
  if (nodeName !== undefined && (typeof nodeName !== 'string' || !DNS1123_SUBDOMAIN.test(nodeName))) {
    ctx.error('invalid-name', 'spec.nodeName', `${show(nodeName)} is not a valid node name`);
    return undefined;
  }
  if (!name || !namespace || !labels || !ports || !ips || !owners) return undefined;
  const pod: Pod = {
    kind: 'Pod',
    namespace,
    name,
    labels,
    hostNetwork: spec.hostNetwork === true,
    ips,
    ports,
  };
  if (typeof meta.uid === 'string') pod.uid = meta.uid;
  if (typeof nodeName === 'string') pod.nodeName = nodeName;
  if (typeof phase === 'string' && PHASES.has(phase)) pod.phase = phase as PodPhase;
  if (planned) pod.planned = true;
  if (owners.length > 0) pod.owners = owners;
  return pod;
}

/** Where each workload kind keeps its pod template. */
const TEMPLATE_PATH: Record<WorkloadKind, readonly string[]> = {
  Deployment: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  Job: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

/**
 * A workload: one endpoint with its pod template's labels and container ports. Its own labels do
 * not matter to policy (selectors see the pods'); replicas do not change reachability.
 */
function readWorkload(ctx: Ctx, o: Json): Workload | undefined {
  const kind = o.kind as WorkloadKind;
  const meta = isObj(o.metadata) ? o.metadata : {};
  const name = readName(ctx, meta, 'metadata.name', DNS1123_SUBDOMAIN, 253);
  const namespace = readNamespaceOf(ctx, meta);
  const owners = readOwners(ctx, meta);
  // Walk to the pod template, naming the first missing step.
  let node: unknown = o;
  const path: string[] = [];
  for (const step of TEMPLATE_PATH[kind]) {
    const parent = node as Json;
    path.push(step);
    node = parent[step];
    if (!isObj(node)) {
      ctx.error(node === undefined || node === null ? 'missing-field' : 'invalid-type', path.join('.'), node === undefined || node === null ? `${step} is required (the pod template podwall reads)` : `must be a mapping, not ${show(node)}`);
      return undefined;
    }
  }
  const template = node as Json;
  const at = path.join('.');
  const tmeta = template.metadata === undefined || template.metadata === null ? {} : template.metadata;
  if (!isObj(tmeta)) {
    ctx.error('invalid-type', `${at}.metadata`, 'must be a mapping');
    return undefined;
  }
  const labels = readLabels(ctx, tmeta.labels, `${at}.metadata.labels`);
  const tspec = template.spec;
  if (!isObj(tspec)) {
    ctx.error(tspec === undefined || tspec === null ? 'missing-field' : 'invalid-type', `${at}.spec`, tspec === undefined || tspec === null ? 'the pod template needs a spec with containers' : `must be a mapping, not ${show(tspec)}`);
    return undefined;
  }
  if (tspec.containers === undefined || tspec.containers === null) {
    ctx.error('missing-field', `${at}.spec.containers`, 'containers is required');
    return undefined;
  }
  const ports = readContainerPorts(ctx, tspec, `${at}.spec`);
  if (!name || !namespace || !labels || !ports || !owners) return undefined;
  const w: Workload = { kind: 'Workload', workloadKind: kind, namespace, name, labels, hostNetwork: tspec.hostNetwork === true, ips: [], ports, owners };
  if (typeof meta.uid === 'string') w.uid = meta.uid;
  return w;
}

function readNamespace(ctx: Ctx, o: Json): Namespace | undefined {
  const meta = isObj(o.metadata) ? o.metadata : {};
  const name = readName(ctx, meta, 'metadata.name', DNS1123_LABEL, 63);
  const labels = readLabels(ctx, meta.labels, 'metadata.labels');
  if (!name) return undefined;
  // It exists whatever its labels say (its pods do): with labels unknown, no namespace selector matches it.
  if (!labels) return { kind: 'Namespace', name, labels: { [METADATA_NAME_LABEL]: name }, labelsUnreadable: true };
  const withName = { ...labels };
  // The API server sets it on every namespace (since 1.21); manifests often omit it.
  if (withName[METADATA_NAME_LABEL] === undefined) withName[METADATA_NAME_LABEL] = name;
  else if (withName[METADATA_NAME_LABEL] !== name) {
    ctx.warn('metadata-name-label', `metadata.labels[${show(METADATA_NAME_LABEL)}]`, `is ${show(withName[METADATA_NAME_LABEL])}; the API server would set it to ${show(name)}`);
    withName[METADATA_NAME_LABEL] = name;
  }
  const ns: Namespace = { kind: 'Namespace', name, labels: withName };
  const enforcement = readEnforcement(ctx, meta, undefined, 'ignored; its policies are enforced unless they say otherwise');
  if (enforcement !== undefined) ns.enforcement = enforcement;
  return ns;
}

function readCIDRList(ctx: Ctx, raw: unknown[], field: string): string[] | undefined {
  const out: string[] = [];
  for (const [i, c] of raw.entries()) {
    const p = parseCIDR(typeof c === 'string' ? c.trim() : (c as string));
    if (!p.ok) {
      ctx.error('invalid-cidr', `${field}[${i}]`, `${show(c)} is not a valid CIDR: ${p.reason}`);
      return undefined;
    }
    out.push(formatCIDR(p.cidr));
  }
  return out;
}

function readNode(ctx: Ctx, o: Json): Node | undefined {
  const meta = isObj(o.metadata) ? o.metadata : {};
  const name = readName(ctx, meta, 'metadata.name', DNS1123_SUBDOMAIN, 253);
  const labels = readLabels(ctx, meta.labels, 'metadata.labels');
  const spec = isObj(o.spec) ? o.spec : {};
  const status = isObj(o.status) ? o.status : {};
  let podCIDRs: string[] | undefined = [];
  if (Array.isArray(spec.podCIDRs) && spec.podCIDRs.length > 0) podCIDRs = readCIDRList(ctx, spec.podCIDRs, 'spec.podCIDRs');
  else if (typeof spec.podCIDR === 'string' && spec.podCIDR !== '') podCIDRs = readCIDRList(ctx, [spec.podCIDR], 'spec.podCIDR');
  else {
    const ann = isObj(meta.annotations) ? meta.annotations : {};
    const a = ann['kube-router.io/pod-cidrs'] ?? ann['kube-router.io/pod-cidr'];
    if (typeof a === 'string' && a.trim() !== '') podCIDRs = readCIDRList(ctx, a.split(','), 'metadata.annotations[kube-router.io/pod-cidrs]');
  }
  const addresses: string[] = [];
  if (Array.isArray(status.addresses)) {
    status.addresses.forEach((a, i) => {
      if (!isObj(a) || (a.type !== 'InternalIP' && a.type !== 'ExternalIP')) return;
      const ip = typeof a.address === 'string' ? normalizeIP(a.address) : undefined;
      const unusable = ip ? unusableAddress(parseIP(ip)!) : undefined;
      if (!ip) ctx.error('invalid-ip', `status.addresses[${i}].address`, `${show(a.address)} is not an IP address`);
      else if (unusable) ctx.error('unusable-ip', `status.addresses[${i}].address`, `${show(a.address)} is ${unusable}, which no node can be reached at`);
      else if (!addresses.includes(ip)) addresses.push(ip);
    });
  }
  if (!name || !labels || !podCIDRs) return undefined;
  return { kind: 'Node', name, labels, podCIDRs, addresses };
}

function readService(ctx: Ctx, o: Json): Service | undefined {
  const meta = isObj(o.metadata) ? o.metadata : {};
  const name = readName(ctx, meta, 'metadata.name', DNS1123_LABEL, 63);
  const namespace = readNamespaceOf(ctx, meta);
  const spec = isObj(o.spec) ? o.spec : {};
  const status = isObj(o.status) ? o.status : {};
  const clusterRaw = Array.isArray(spec.clusterIPs) ? spec.clusterIPs : spec.clusterIP !== undefined ? [spec.clusterIP] : [];
  const clusterIPs = readIPs(ctx, clusterRaw.filter((x) => x !== 'None' && x !== '' && x !== null), 'spec.clusterIPs');
  const externalIPs = readIPs(ctx, Array.isArray(spec.externalIPs) ? spec.externalIPs : [], 'spec.externalIPs');
  const lb = isObj(status.loadBalancer) && Array.isArray(status.loadBalancer.ingress) ? status.loadBalancer.ingress : [];
  const loadBalancerIPs = readIPs(ctx, lb.filter((x) => isObj(x) && typeof x.ip === 'string').map((x) => (x as Json).ip), 'status.loadBalancer.ingress');
  // Ports decide which Service address:port pairs KUBE-ROUTER-INPUT exempts: one the API server
  // would refuse rejects the Service (its last accepted version stays).
  const ports: Service['ports'] = [];
  const nodePorts: Service['nodePorts'] = [];
  let portsOk = true;
  if (spec.ports !== undefined && spec.ports !== null && !Array.isArray(spec.ports)) {
    ctx.error('invalid-port', 'spec.ports', 'must be a list');
    portsOk = false;
  }
  (Array.isArray(spec.ports) ? spec.ports : []).forEach((p, i) => {
    const f = `spec.ports[${i}]`;
    if (!isObj(p)) {
      ctx.error('invalid-port', f, 'must be an object');
      portsOk = false;
      return;
    }
    const protocol = p.protocol ?? 'TCP';
    if (typeof protocol !== 'string' || !(PROTOCOLS as readonly string[]).includes(protocol)) {
      ctx.error('unknown-protocol', `${f}.protocol`, `${show(protocol)} is not a supported protocol (TCP, UDP, SCTP)`);
      portsOk = false;
      return;
    }
    const isPort = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
    if (!isPort(p.port)) {
      ctx.error('port-out-of-range', `${f}.port`, `${show(p.port)} is not a port number (1-65535)`);
      portsOk = false;
      return;
    }
    ports.push({ port: p.port, protocol: protocol as Protocol });
    if (p.nodePort === undefined || p.nodePort === null || p.nodePort === 0) return;
    if (!isPort(p.nodePort)) {
      ctx.error('port-out-of-range', `${f}.nodePort`, `${show(p.nodePort)} is not a port number (1-65535)`);
      portsOk = false;
      return;
    }
    nodePorts.push({ port: p.nodePort, protocol: protocol as Protocol, index: i });
  });
  if (!name || !namespace || !clusterIPs || !externalIPs || !loadBalancerIPs || !portsOk) return undefined;
  return { kind: 'Service', namespace, name, type: typeof spec.type === 'string' ? spec.type : 'ClusterIP', clusterIPs, externalIPs, loadBalancerIPs, ports, nodePorts };
}

// ---------------------------------------------------------------- entry point

const READERS: Record<string, (ctx: Ctx, o: Json) => ClusterObject | undefined> = {
  Namespace: readNamespace,
  Pod: readPod,
  ...Object.fromEntries(WORKLOAD_KINDS.map((k) => [k, readWorkload])),
  NetworkPolicy: readNetworkPolicy,
  Node: readNode,
  Service: readService,
  ClusterNetworkPolicy: readClusterNetworkPolicy,
};

/** Kinds of the same API group that podwall knows it does not read, with why. */
const SUPERSEDED: Record<string, string> = {
  AdminNetworkPolicy: 'AdminNetworkPolicy (v1alpha1) is replaced by ClusterNetworkPolicy v1alpha2 (tier: Admin); podwall reads only ClusterNetworkPolicy: this object is not enforced',
  BaselineAdminNetworkPolicy: 'BaselineAdminNetworkPolicy (v1alpha1) is replaced by ClusterNetworkPolicy v1alpha2 (tier: Baseline); podwall reads only ClusterNetworkPolicy: this object is not enforced',
};

const EXPECTED_API: Record<string, string[]> = {
  Namespace: ['v1'],
  Pod: ['v1'],
  Deployment: ['apps/v1', 'apps/v1beta2', 'apps/v1beta1', 'extensions/v1beta1'],
  ReplicaSet: ['apps/v1', 'apps/v1beta2', 'extensions/v1beta1'],
  StatefulSet: ['apps/v1', 'apps/v1beta2', 'apps/v1beta1'],
  DaemonSet: ['apps/v1', 'apps/v1beta2', 'extensions/v1beta1'],
  Job: ['batch/v1'],
  CronJob: ['batch/v1', 'batch/v1beta1'],
  ReplicationController: ['v1'],
  Node: ['v1'],
  Service: ['v1'],
  NetworkPolicy: ['networking.k8s.io/v1', 'extensions/v1beta1'],
  ClusterNetworkPolicy: [CNP_API_VERSION],
};

export interface NormalizeOptions {
  /** Namespace for objects without one (kubectl's `-n`); default `default`. */
  defaultNamespace?: string;
}

/**
 * Normalises one raw object. `kind` may be missing on informer list items: pass `defaultKind`.
 */
export function normalizeObject(raw: unknown, origin?: Origin, defaultKind?: string, opts: NormalizeOptions = {}): NormalizeResult {
  if (!isObj(raw)) {
    const ctx = new Ctx(origin, origin?.doc !== undefined ? `document ${origin.doc}` : 'object');
    ctx.error('not-an-object', '', 'is not a Kubernetes object (expected a mapping with kind and metadata)');
    return { findings: ctx.findings };
  }
  const kind = typeof raw.kind === 'string' ? raw.kind : defaultKind;
  const ctx = new Ctx(origin, describeObject(kind ?? 'object', raw.metadata, origin?.doc), opts.defaultNamespace);
  if (kind === undefined) {
    ctx.error('missing-kind', 'kind', 'kind is required');
    return { findings: ctx.findings };
  }
  const reader = READERS[kind];
  if (!reader) {
    const why = SUPERSEDED[kind];
    if (why && typeof raw.apiVersion === 'string' && raw.apiVersion.startsWith('policy.networking.k8s.io/')) {
      ctx.warn('unsupported-kind', 'kind', why);
      return { findings: ctx.findings, skipped: kind };
    }
    return { findings: [], skipped: kind };
  }
  const api = raw.apiVersion;
  if (api !== undefined && !EXPECTED_API[kind]!.includes(api as string)) {
    // e.g. Calico's projectcalico.org/v3 NetworkPolicy: same kind, different semantics.
    ctx.warn('foreign-api-version', 'apiVersion', `${show(api)} is not ${EXPECTED_API[kind]![0]}; skipped`);
    return { findings: ctx.findings, skipped: `${kind} (${String(api)})` };
  }
  if (kind === 'NetworkPolicy' && api === 'extensions/v1beta1') ctx.warn('deprecated-api-version', 'apiVersion', 'extensions/v1beta1 is long removed; read as networking.k8s.io/v1');
  else if (api !== undefined && api !== EXPECTED_API[kind]![0]) ctx.warn('deprecated-api-version', 'apiVersion', `${show(api)} is long removed; read as ${EXPECTED_API[kind]![0]}`);
  const object = reader(ctx, raw);
  if (object && origin) object.origin = origin;
  return object ? { object, findings: ctx.findings } : { findings: ctx.findings };
}

export type { PolicyRule };
