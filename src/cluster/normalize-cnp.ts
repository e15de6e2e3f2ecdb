// ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2, network-policy-api v0.2.0) at the
// boundary: validated as the CRD's schema and CEL rules validate it, every problem a finding naming
// the field. An invalid object is rejected whole, as the API server rejects it: the caller keeps
// what it had (informers: the previous version; manifests: nothing), so an object podwall cannot
// understand never changes what the valid ones give. Experimental-channel peers (`nodes`,
// `domainNames`) are valid API but not enforced by podwall: they are reported (error
// `unsupported-peer`) and read fail closed, never ignored and never widening.
import type { ClusterNetworkPolicy, CnpAction, CnpPeer, CnpPodSelection, CnpPort, CnpRule, CnpTier, Direction, Protocol } from './model.js';
import { CNP_ACTIONS, CNP_API_VERSION, CNP_TIERS } from './model.js';
import { show } from './findings.js';
import { checkKnown, Ctx, DNS1123_SUBDOMAIN, isObj, portNameProblem, readName, readSelector, type Json } from './normalize.js';
import { formatCIDR, parseCIDR } from '../net/ip.js';

/** The CRD's MaxItems for ingress/egress rules, peers, protocols, networks and domain names. */
export const CNP_MAX_ITEMS = 25;
export const CNP_MAX_PRIORITY = 1000;
const MAX_RULE_NAME = 100;
/** CIDR strings are at most 43 characters (the CRD's MaxLength). */
const MAX_CIDR_LENGTH = 43;
/** The CRD's pattern for a domain name (a `*.` prefix allowed). */
const DOMAIN_NAME = /^(\*\.)?([a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+[a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?$/;

/** Findings with this code do not reject the object: it is kept and read fail closed. */
export const UNSUPPORTED_PEER = 'unsupported-peer';

const present = (o: Json, k: string): boolean => o[k] !== undefined && o[k] !== null;

function readInt(ctx: Ctx, raw: unknown, field: string, min: number, max: number, what: string): number | undefined {
  if (typeof raw !== 'number' || !Number.isInteger(raw)) {
    ctx.error('invalid-type', field, `${show(raw)} is not an integer${typeof raw === 'string' && /^\d+$/.test(raw) ? ' (write the number without quotes)' : ''}`);
    return undefined;
  }
  if (raw < min || raw > max) {
    ctx.error('out-of-range', field, `${raw} is out of range: ${what} is ${min}-${max}`);
    return undefined;
  }
  return raw;
}

/** A list field: must be an array of min..max items. */
function readList(ctx: Ctx, raw: unknown, field: string, min: number, max: number): unknown[] | undefined {
  if (!Array.isArray(raw)) {
    ctx.error('invalid-type', field, 'must be a list');
    return undefined;
  }
  if (raw.length < min) {
    ctx.error('too-few-items', field, `must have at least ${min} item${min === 1 ? '' : 's'}`);
    return undefined;
  }
  if (raw.length > max) {
    ctx.error('too-many-items', field, `has ${raw.length} items; at most ${max} are allowed`);
    return undefined;
  }
  return raw;
}

/** Exactly one of `keys` set (MinProperties/MaxProperties 1); returns it. */
function exactlyOne(ctx: Ctx, o: Json, keys: readonly string[], field: string, what: string, codes: [none: string, both: string]): string | undefined {
  const set = keys.filter((k) => present(o, k));
  if (set.length === 1) return set[0];
  ctx.error(set.length === 0 ? codes[0] : codes[1], field, `${what} sets exactly one of ${keys.join(', ')}${set.length === 0 ? '; none is set' : `; ${set.join(' and ')} are both set`}`);
  return undefined;
}

function readPodSelection(ctx: Ctx, raw: Json, key: 'namespaces' | 'pods', field: string): CnpPodSelection | undefined {
  const f = `${field}.${key}`;
  if (key === 'namespaces') {
    const s = readSelector(ctx, raw.namespaces, f);
    return s ? { form: 'namespaces', namespaceSelector: s } : undefined;
  }
  const pods = raw.pods;
  if (!isObj(pods)) {
    ctx.error('invalid-type', f, 'must be an object with namespaceSelector and podSelector');
    return undefined;
  }
  let ok = checkKnown(ctx, pods, ['namespaceSelector', 'podSelector'], f);
  if (!present(pods, 'podSelector')) {
    ctx.error('missing-field', `${f}.podSelector`, 'podSelector is required (use {} for every pod of the selected namespaces)');
    ok = false;
  }
  const ns = readSelector(ctx, pods.namespaceSelector, `${f}.namespaceSelector`);
  const pod = present(pods, 'podSelector') ? readSelector(ctx, pods.podSelector, `${f}.podSelector`) : undefined;
  return ok && ns && pod ? { form: 'pods', namespaceSelector: ns, podSelector: pod } : undefined;
}

function readNetworks(ctx: Ctx, raw: unknown, field: string): string[] | undefined {
  const list = readList(ctx, raw, field, 1, CNP_MAX_ITEMS);
  if (!list) return undefined;
  const out: string[] = [];
  let ok = true;
  list.forEach((c, i) => {
    const f = `${field}[${i}]`;
    if (typeof c !== 'string' || c.length > MAX_CIDR_LENGTH) {
      ctx.error('invalid-cidr', f, `${show(c)} is not a CIDR string (at most ${MAX_CIDR_LENGTH} characters)`);
      ok = false;
      return;
    }
    if (list.indexOf(c) !== i) {
      ctx.error('duplicate-value', f, `${show(c)} is listed twice`);
      ok = false;
      return;
    }
    const p = parseCIDR(c);
    if (!p.ok) {
      ctx.error('invalid-cidr', f, `${show(c)} is not a valid CIDR: ${p.reason}`);
      ok = false;
      return;
    }
    if (p.hostBitsSet) ctx.warn('cidr-host-bits', f, `${show(c)} has host bits set; it means ${formatCIDR(p.cidr)}`);
    const canon = formatCIDR(p.cidr);
    if (!out.includes(canon)) out.push(canon);
  });
  return ok ? out : undefined;
}

function readDomainNames(ctx: Ctx, raw: unknown, field: string): boolean {
  const list = readList(ctx, raw, field, 1, CNP_MAX_ITEMS);
  if (!list) return false;
  let ok = true;
  list.forEach((d, i) => {
    if (typeof d !== 'string' || !DOMAIN_NAME.test(d)) {
      ctx.error('invalid-domain-name', `${field}[${i}]`, `${show(d)} is not a domain name (a '*.' prefix is allowed)`);
      ok = false;
    } else if (list.indexOf(d) !== i) {
      ctx.error('duplicate-value', `${field}[${i}]`, `${show(d)} is listed twice`);
      ok = false;
    }
  });
  return ok;
}

const UNSUPPORTED_READING: Record<CnpAction, string> = {
  Accept: 'this Accept rule matches no traffic to it',
  Deny: 'this Deny rule is enforced as denying every destination (fail closed)',
  Pass: 'this Pass rule is enforced as a Deny of every destination (fail closed, as the API asks of implementations)',
};

function readPeer(ctx: Ctx, raw: unknown, field: string, direction: Direction, action: CnpAction | undefined): CnpPeer | undefined {
  const keys = direction === 'ingress' ? ['namespaces', 'pods'] : ['namespaces', 'pods', 'networks', 'nodes', 'domainNames'];
  if (!isObj(raw)) {
    ctx.error('invalid-peer', field, `must be an object with one of ${keys.join(', ')}`);
    return undefined;
  }
  if (direction === 'ingress' && (present(raw, 'networks') || present(raw, 'nodes') || present(raw, 'domainNames'))) {
    const k = ['networks', 'nodes', 'domainNames'].find((x) => present(raw, x))!;
    ctx.error('unknown-field', `${field}.${k}`, `unknown field ${show(k)}: ingress peers are namespaces or pods (${k} is an egress peer)`);
    return undefined;
  }
  if (!checkKnown(ctx, raw, keys, field)) return undefined;
  const key = exactlyOne(ctx, raw, keys, field, 'a peer', ['empty-peer', 'invalid-peer']);
  if (!key) return undefined;
  switch (key) {
    case 'namespaces':
    case 'pods': {
      const s = readPodSelection(ctx, raw, key, field);
      return s ? { kind: 'pods', ...s } : undefined;
    }
    case 'networks': {
      const n = readNetworks(ctx, raw.networks, `${field}.networks`);
      return n ? { kind: 'networks', networks: n } : undefined;
    }
    case 'nodes':
    case 'domainNames': {
      const ok = key === 'nodes' ? readSelector(ctx, raw.nodes, `${field}.nodes`) !== undefined : readDomainNames(ctx, raw.domainNames, `${field}.domainNames`);
      if (!ok) return undefined;
      if (key === 'domainNames' && action !== undefined && action !== 'Accept') {
        ctx.error('invalid-peer', `${field}.domainNames`, `domainNames peers are only allowed in Accept rules (this rule is ${action})`);
        return undefined;
      }
      const reading = action ? `; ${UNSUPPORTED_READING[action]}` : '';
      ctx.error(UNSUPPORTED_PEER, `${field}.${key}`, `${key} peers are experimental (network-policy-api experimental channel) and not supported by podwall${reading}`);
      return { kind: 'unsupported', field: key };
    }
  }
  return undefined;
}

const PROTOCOL_KEYS: Record<string, Protocol> = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP' };

function readProtocol(ctx: Ctx, raw: unknown, field: string): CnpPort | undefined {
  const keys = ['tcp', 'udp', 'sctp', 'destinationNamedPort'];
  if (!isObj(raw)) {
    ctx.error('invalid-port', field, `must be an object with one of ${keys.join(', ')}`);
    return undefined;
  }
  for (const k of Object.keys(raw)) {
    if (keys.includes(k)) continue;
    const lower = k.toLowerCase();
    if (lower in PROTOCOL_KEYS) ctx.error('unknown-field', `${field}.${k}`, `unknown field ${show(k)} (write ${lower})`);
    else if (/^(icmp|icmpv6|icmp6|ipv6-icmp|gre|esp|ah|ip|any|all|protocol)$/.test(lower)) ctx.error('unknown-protocol', `${field}.${k}`, `${show(k)} is not a supported protocol (tcp, udp, sctp)`);
    else ctx.error('unknown-field', `${field}.${k}`, `unknown field ${show(k)} (a protocols entry has tcp, udp, sctp or destinationNamedPort)`);
    return undefined;
  }
  const key = exactlyOne(ctx, raw, keys, field, 'a protocols entry', ['invalid-protocol', 'invalid-protocol']);
  if (!key) return undefined;
  if (key === 'destinationNamedPort') {
    const name = raw.destinationNamedPort;
    if (typeof name !== 'string' || name === '') {
      ctx.error('invalid-port-name', `${field}.destinationNamedPort`, `${show(name)} must be a non-empty port name`);
      return undefined;
    }
    const p = portNameProblem(name);
    if (p) ctx.warn('named-port-never-matches', `${field}.destinationNamedPort`, `${p}: no container port can carry this name, so this entry matches nothing`);
    return { kind: 'named', name };
  }
  const protocol = PROTOCOL_KEYS[key]!;
  const f = `${field}.${key}`;
  const body = raw[key];
  if (!isObj(body)) {
    ctx.error('invalid-type', f, 'must be an object with destinationPort');
    return undefined;
  }
  if (!checkKnown(ctx, body, ['destinationPort'], f)) return undefined;
  if (!present(body, 'destinationPort')) {
    ctx.error('missing-field', `${f}.destinationPort`, `destinationPort is required (for every ${protocol} port write range: {start: 1, end: 65535})`);
    return undefined;
  }
  const dp = body.destinationPort;
  const df = `${f}.destinationPort`;
  if (!isObj(dp)) {
    ctx.error('invalid-type', df, 'must be an object with number or range');
    return undefined;
  }
  if (!checkKnown(ctx, dp, ['number', 'range'], df)) return undefined;
  const which = exactlyOne(ctx, dp, ['number', 'range'], df, 'destinationPort', ['invalid-port', 'invalid-port']);
  if (!which) return undefined;
  if (which === 'number') {
    const n = readInt(ctx, dp.number, `${df}.number`, 1, 65535, 'a port');
    return n === undefined ? undefined : { kind: 'port', protocol, port: n };
  }
  const r = dp.range;
  const rf = `${df}.range`;
  if (!isObj(r)) {
    ctx.error('invalid-type', rf, 'must be an object with start and end');
    return undefined;
  }
  if (!checkKnown(ctx, r, ['start', 'end'], rf)) return undefined;
  for (const k of ['start', 'end']) if (!present(r, k)) ctx.error('missing-field', `${rf}.${k}`, `${k} is required`);
  if (!present(r, 'start') || !present(r, 'end')) return undefined;
  const start = readInt(ctx, r.start, `${rf}.start`, 1, 65535, 'a port');
  const end = readInt(ctx, r.end, `${rf}.end`, 1, 65535, 'a port');
  if (start === undefined || end === undefined) return undefined;
  if (start >= end) {
    ctx.error('invalid-port-range', rf, `start ${start} must be less than end ${end}${start === end ? ' (for one port use number)' : ''}`);
    return undefined;
  }
  return { kind: 'port', protocol, port: start, endPort: end };
}

function readRule(ctx: Ctx, raw: unknown, field: string, direction: Direction): CnpRule | undefined {
  const peerKey = direction === 'ingress' ? 'from' : 'to';
  if (!isObj(raw)) {
    ctx.error('invalid-rule', field, 'must be an object with action, from/to and protocols');
    return undefined;
  }
  const known = ['name', 'action', peerKey, 'protocols'];
  let ok = true;
  for (const k of Object.keys(raw)) {
    if (known.includes(k)) continue;
    ok = false;
    if (k === 'ports') ctx.error('unknown-field', `${field}.ports`, 'unknown field "ports": v1alpha2 matches ports with protocols (tcp/udp/sctp destinationPort, destinationNamedPort); ports was AdminNetworkPolicy v1alpha1');
    else if ((direction === 'ingress' && k === 'to') || (direction === 'egress' && k === 'from')) ctx.error('unknown-field', `${field}.${k}`, `unknown field ${show(k)}: ${direction} rules name their peers in ${peerKey}`);
    else checkKnown(ctx, { [k]: raw[k] }, known, field);
  }
  let name: string | undefined;
  if (present(raw, 'name')) {
    if (typeof raw.name !== 'string' || raw.name.length > MAX_RULE_NAME) {
      ctx.error('invalid-rule-name', `${field}.name`, `${show(raw.name)} must be a string of at most ${MAX_RULE_NAME} characters`);
      ok = false;
    } else if (raw.name !== '') name = raw.name;
  }
  let action: CnpAction | undefined;
  if (!present(raw, 'action')) {
    ctx.error('missing-field', `${field}.action`, 'action is required (Accept, Deny or Pass)');
    ok = false;
  } else if (typeof raw.action !== 'string' || !(CNP_ACTIONS as readonly string[]).includes(raw.action)) {
    const hint = raw.action === 'Allow' ? ' (v1alpha1 Allow is Accept in v1alpha2)' : '';
    ctx.error('invalid-action', `${field}.action`, `${show(raw.action)} is not an action (Accept, Deny or Pass)${hint}`);
    ok = false;
  } else action = raw.action as CnpAction;
  const peers: CnpPeer[] = [];
  if (!present(raw, peerKey)) {
    ctx.error('missing-field', `${field}.${peerKey}`, `${peerKey} is required: at least one peer`);
    ok = false;
  } else {
    const list = readList(ctx, raw[peerKey], `${field}.${peerKey}`, 1, CNP_MAX_ITEMS);
    if (!list) ok = false;
    else
      list.forEach((p, i) => {
        const peer = readPeer(ctx, p, `${field}.${peerKey}[${i}]`, direction, action);
        if (peer) peers.push(peer);
        else ok = false;
      });
  }
  const ports: CnpPort[] = [];
  if (present(raw, 'protocols')) {
    const list = readList(ctx, raw.protocols, `${field}.protocols`, 1, CNP_MAX_ITEMS);
    if (!list) ok = false;
    else
      list.forEach((p, i) => {
        const port = readProtocol(ctx, p, `${field}.protocols[${i}]`);
        if (port) ports.push(port);
        else ok = false;
      });
  }
  if (!ok || action === undefined) return undefined;
  if (ports.some((p) => p.kind === 'named') && peers.some((p) => p.kind === 'networks')) {
    ctx.warn('named-port-with-networks', `${field}.protocols`, 'named ports exist only on pods: for the networks peers this rule matches only pod addresses inside them that declare the name');
  }
  const rule: CnpRule = { action, peers, ports };
  if (name !== undefined) rule.name = name;
  return rule;
}

export function readClusterNetworkPolicy(ctx: Ctx, o: Json): ClusterNetworkPolicy | undefined {
  const start = ctx.findings.length;
  const rejecting = () => ctx.findings.slice(start).some((f) => f.severity === 'error' && f.code !== UNSUPPORTED_PEER);
  const meta = isObj(o.metadata) ? o.metadata : {};
  const name = readName(ctx, meta, 'metadata.name', DNS1123_SUBDOMAIN, 253);
  if (typeof meta.namespace === 'string' && meta.namespace !== '') {
    ctx.warn('cluster-scoped', 'metadata.namespace', `ClusterNetworkPolicy is cluster-scoped: namespace ${show(meta.namespace)} is ignored`);
  }
  const spec = o.spec;
  if (!isObj(spec)) {
    ctx.error('missing-field', 'spec', 'spec is required');
    return undefined;
  }
  checkKnown(ctx, spec, ['tier', 'priority', 'subject', 'ingress', 'egress'], 'spec');
  let tier: CnpTier | undefined;
  if (!present(spec, 'tier')) ctx.error('missing-field', 'spec.tier', 'tier is required (Admin or Baseline)');
  else if (typeof spec.tier !== 'string' || !(CNP_TIERS as readonly string[]).includes(spec.tier)) ctx.error('invalid-tier', 'spec.tier', `${show(spec.tier)} is not a tier (Admin or Baseline)`);
  else tier = spec.tier as CnpTier;
  let priority: number | undefined;
  if (!present(spec, 'priority')) ctx.error('missing-field', 'spec.priority', `priority is required (0-${CNP_MAX_PRIORITY}, lower first)`);
  else priority = readInt(ctx, spec.priority, 'spec.priority', 0, CNP_MAX_PRIORITY, 'priority');
  let subject: CnpPodSelection | undefined;
  if (!present(spec, 'subject')) ctx.error('missing-field', 'spec.subject', 'subject is required (namespaces or pods)');
  else if (!isObj(spec.subject)) ctx.error('invalid-type', 'spec.subject', 'must be an object with namespaces or pods');
  else if (checkKnown(ctx, spec.subject, ['namespaces', 'pods'], 'spec.subject')) {
    const key = exactlyOne(ctx, spec.subject, ['namespaces', 'pods'], 'spec.subject', 'subject', ['invalid-subject', 'invalid-subject']);
    if (key) subject = readPodSelection(ctx, spec.subject, key as 'namespaces' | 'pods', 'spec.subject');
  }
  const rules: Record<Direction, CnpRule[]> = { ingress: [], egress: [] };
  for (const direction of ['ingress', 'egress'] as const) {
    if (!present(spec, direction)) continue;
    const list = readList(ctx, spec[direction], `spec.${direction}`, 0, CNP_MAX_ITEMS);
    if (!list) continue;
    list.forEach((r, i) => {
      const rule = readRule(ctx, r, `spec.${direction}[${i}]`, direction);
      if (rule) rules[direction].push(rule);
    });
  }
  if (!name || tier === undefined || priority === undefined || !subject || rejecting()) return undefined;
  const cnp: ClusterNetworkPolicy = { kind: 'ClusterNetworkPolicy', name, tier, priority, subject, ingress: rules.ingress, egress: rules.egress };
  if (typeof meta.uid === 'string') cnp.uid = meta.uid;
  return cnp;
}

// ---------------------------------------------------------------- model → API form

function rawSelection(s: CnpPodSelection): Json {
  const sel = (l: { matchLabels: Record<string, string>; matchExpressions: { key: string; operator: string; values: string[] }[] }): Json => ({
    ...(Object.keys(l.matchLabels).length ? { matchLabels: { ...l.matchLabels } } : {}),
    ...(l.matchExpressions.length ? { matchExpressions: l.matchExpressions.map((e) => ({ key: e.key, operator: e.operator, ...(e.values.length ? { values: [...e.values] } : {}) })) } : {}),
  });
  return s.form === 'namespaces' ? { namespaces: sel(s.namespaceSelector) } : { pods: { namespaceSelector: sel(s.namespaceSelector), podSelector: sel(s.podSelector ?? { matchLabels: {}, matchExpressions: [] }) } };
}

function rawPort(p: CnpPort): Json {
  if (p.kind === 'named') return { destinationNamedPort: p.name };
  const dp = p.endPort !== undefined ? { range: { start: p.port ?? 1, end: p.endPort } } : p.port !== undefined ? { number: p.port } : { range: { start: 1, end: 65535 } };
  return { [p.protocol.toLowerCase()]: { destinationPort: dp } };
}

/**
 * The API form of a ClusterNetworkPolicy (for manifests written by tests, the bench and round trips).
 * Unsupported peers come back as an empty `nodes` selector.
 */
export function clusterNetworkPolicyToRaw(c: ClusterNetworkPolicy): Json {
  const rule = (r: CnpRule, direction: Direction): Json => ({
    ...(r.name !== undefined ? { name: r.name } : {}),
    action: r.action,
    [direction === 'ingress' ? 'from' : 'to']: r.peers.map((p) => (p.kind === 'pods' ? rawSelection(p) : p.kind === 'networks' ? { networks: [...p.networks] } : p.field === 'nodes' ? { nodes: {} } : { domainNames: ['example.com'] })),
    ...(r.ports.length ? { protocols: r.ports.map(rawPort) } : {}),
  });
  return {
    apiVersion: CNP_API_VERSION,
    kind: 'ClusterNetworkPolicy',
    metadata: { name: c.name },
    spec: {
      tier: c.tier,
      priority: c.priority,
      subject: rawSelection(c.subject),
      ...(c.ingress.length ? { ingress: c.ingress.map((r) => rule(r, 'ingress')) } : {}),
      ...(c.egress.length ? { egress: c.egress.map((r) => rule(r, 'egress')) } : {}),
    },
  };
}
