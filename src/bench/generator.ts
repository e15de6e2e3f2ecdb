// Deterministic, seeded cluster generator for `npm run bench`, and event generators that change a
// generated cluster in ways that matter to the local node's firewall.
//
// The generator builds podwall's model objects directly (no YAML: L has 50,000 pods, XL 150,000) and
// shares immutable pieces between objects (one label object per app and version, one container-port
// list per app kind, shared selectors), so generating L takes well under a second and little memory.
// Same profile + seed (+ options) → byte-identical JSON; nothing here reads the clock or Math.random.
//
// Address plan (IPv4 always, IPv6 with dualStack):
//   node k: pod CIDR 10.(1 + k>>8).(k & 255).0/24 (and fd00:<k+1>::/64), address 172.16.(k/250).(k%250+1)
//           (and fd01::<k+1>); node 0 is the local node (the node the benchmark runs as).
//   pods:   .2 upwards in their node's /24 (a node holds at most 250 pods, so each /24 keeps free slots
//           for the pod-add events);
//   services: cluster IPs from 10.96.0.0/12 (kube-dns 10.96.0.10), load-balancer IPs from 100.64.0.0/16,
//           external IPs from 100.65.0.0/16.
//
// Events (makeEvents) are each valid against the base cluster and carry their own `undo`: the benchmark
// applies an event, measures, then applies its undo, so every event starts from the same state.

import type { ClusterObject, ContainerPort, LabelSelector, Labels, Namespace, NetworkPolicy, Node, Pod, PolicyPeer, PolicyPort, PolicyRule, Service } from '../cluster/model.js';
import { objectKey } from '../cluster/model.js';
import { ClusterStore } from '../cluster/store.js';
import { selectorMatches } from '../policy/selector.js';
import { clusterNetworkPolicyToRaw } from '../cluster/normalize-cnp.js';

// ---------------------------------------------------------------- profiles

export type ProfileName = 'S' | 'M' | 'L' | 'XL';

export interface CustomProfile {
  /** Shown in reports; defaults to `custom`. */
  name?: string;
  pods: number;
  policies: number;
  namespaces: number;
  /** Pods on the local node (the node the benchmark runs as). At most 250. */
  localPods: number;
}

export type Profile = Required<CustomProfile>;

export const PROFILES: Readonly<Record<ProfileName, Profile>> = {
  S: { name: 'S', pods: 1_000, policies: 100, namespaces: 50, localPods: 30 },
  M: { name: 'M', pods: 10_000, policies: 1_000, namespaces: 500, localPods: 110 },
  L: { name: 'L', pods: 50_000, policies: 5_000, namespaces: 2_000, localPods: 250 },
  XL: { name: 'XL', pods: 150_000, policies: 10_000, namespaces: 5_000, localPods: 250 },
};

export interface GenerateOptions {
  /** Pods get an IPv6 address too, nodes an IPv6 pod CIDR and address. */
  dualStack?: boolean;
}

export interface GeneratedCluster {
  profile: Profile;
  seed: number;
  dualStack: boolean;
  namespaces: Namespace[];
  pods: Pod[];
  policies: NetworkPolicy[];
  nodes: Node[];
  services: Service[];
  /** Name of the node the benchmark runs as; it holds exactly `profile.localPods` pods. */
  localNode: string;
}

/** Namespaces that exist in every generated cluster (they count towards `namespaces`). */
export const SYSTEM_NAMESPACES = ['kube-system', 'monitoring', 'ingress-nginx'] as const;
const SYSTEM_PODS = 8; // 3 kube-dns, 2 prometheus, 3 ingress-nginx
const MAX_PODS_PER_NODE = 250;

export class GeneratorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GeneratorError';
  }
}

function resolveProfile(p: ProfileName | CustomProfile): Profile {
  if (typeof p === 'string') {
    const found = PROFILES[p];
    if (!found) throw new GeneratorError(`unknown profile ${JSON.stringify(p)}: use S, M, L or XL`);
    return found;
  }
  const prof: Profile = { name: p.name ?? 'custom', pods: p.pods, policies: p.policies, namespaces: p.namespaces, localPods: p.localPods };
  for (const k of ['pods', 'policies', 'namespaces', 'localPods'] as const) {
    if (!Number.isSafeInteger(prof[k]) || prof[k] < 0) throw new GeneratorError(`profile ${prof.name}: ${k} must be a non-negative integer, got ${String(prof[k])}`);
  }
  if (prof.namespaces < SYSTEM_NAMESPACES.length + 1) throw new GeneratorError(`profile ${prof.name}: namespaces must be at least ${SYSTEM_NAMESPACES.length + 1}, got ${prof.namespaces}`);
  const minPods = SYSTEM_PODS + prof.namespaces - SYSTEM_NAMESPACES.length;
  if (prof.pods < minPods) throw new GeneratorError(`profile ${prof.name}: pods must be at least ${minPods} (8 system pods + one per namespace), got ${prof.pods}`);
  if (prof.localPods < 1 || prof.localPods > MAX_PODS_PER_NODE) throw new GeneratorError(`profile ${prof.name}: localPods must be 1-${MAX_PODS_PER_NODE}, got ${prof.localPods}`);
  if (prof.localPods > prof.pods) throw new GeneratorError(`profile ${prof.name}: localPods (${prof.localPods}) exceeds pods (${prof.pods})`);
  const nodes = Math.ceil(prof.pods / prof.localPods);
  if (nodes > 95 * 256) throw new GeneratorError(`profile ${prof.name}: ${nodes} nodes do not fit the address plan (at most ${95 * 256})`);
  return prof;
}

// ---------------------------------------------------------------- PRNG

/** mulberry32: small, fast, good enough for test data; deterministic across platforms. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

// ---------------------------------------------------------------- vocabularies

export const TEAMS = ['payments', 'checkout', 'search', 'identity', 'catalog', 'shipping', 'growth', 'data', 'ml', 'mobile', 'web', 'risk', 'ads', 'billing', 'support', 'media', 'infra', 'security', 'analytics', 'platform-apps', 'partners', 'marketplace', 'notifications', 'reporting'] as const;
export const ENVS = ['prod', 'prod', 'prod', 'prod', 'prod', 'staging', 'staging', 'staging', 'dev', 'dev'] as const;
const NS_WORDS = ['api', 'core', 'svc', 'apps', 'jobs', 'edge', 'internal', 'public', 'batch', 'stream'];

type AppKind = 'frontend' | 'backend' | 'data' | 'worker';
const APP_NAMES: Record<AppKind, readonly string[]> = {
  frontend: ['web', 'frontend', 'ui', 'storefront', 'portal', 'admin-ui', 'docs'],
  backend: ['api', 'orders', 'payments', 'users', 'auth', 'search', 'catalog', 'cart', 'checkout', 'inventory', 'billing', 'gateway', 'pricing', 'profile', 'reviews'],
  data: ['cache', 'postgres', 'redis', 'kafka', 'elasticsearch', 'mongo'],
  worker: ['worker', 'scheduler', 'cron', 'consumer', 'indexer', 'mailer'],
};
const KIND_WEIGHTS: readonly AppKind[] = ['frontend', 'frontend', 'backend', 'backend', 'backend', 'backend', 'data', 'data', 'worker', 'worker'];
const TIER: Record<AppKind, string> = { frontend: 'frontend', backend: 'backend', data: 'data', worker: 'backend' };
const REPLICAS = [1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 6, 8, 10, 12];

const P = (name: string, port: number, protocol: 'TCP' | 'UDP' = 'TCP'): ContainerPort => Object.freeze({ name, port, protocol });
const PORTS_HTTP = P('http', 8080);
const PORTS_METRICS = P('metrics', 9090);
const PORTS_GRPC = P('grpc', 50051);
const DATA_PORTS: Record<string, ContainerPort> = {
  cache: P('redis', 6379),
  redis: P('redis', 6379),
  postgres: P('postgres', 5432),
  kafka: P('kafka', 9092),
  elasticsearch: P('es', 9200),
  mongo: P('mongo', 27017),
};
const KIND_PORTS: Record<Exclude<AppKind, 'data'>, readonly ContainerPort[]> = {
  frontend: Object.freeze([PORTS_HTTP, PORTS_METRICS]),
  backend: Object.freeze([PORTS_HTTP, PORTS_GRPC, PORTS_METRICS]),
  worker: Object.freeze([PORTS_METRICS]),
};
const DATA_PORT_LISTS = new Map<string, readonly ContainerPort[]>(Object.entries(DATA_PORTS).map(([k, p]) => [k, Object.freeze([p, PORTS_METRICS])]));
const DNS_PORTS: readonly ContainerPort[] = Object.freeze([P('dns', 53, 'UDP'), P('dns-tcp', 53, 'TCP'), P('metrics', 9153)]);
const PROM_PORTS: readonly ContainerPort[] = Object.freeze([P('web', 9090)]);
const INGRESS_PORTS: readonly ContainerPort[] = Object.freeze([P('http', 80), P('https', 443), P('metrics', 10254)]);

export const METADATA_NAME = 'kubernetes.io/metadata.name';
const sel = (matchLabels: Record<string, string>, matchExpressions: LabelSelector['matchExpressions'] = []): LabelSelector => ({ matchLabels, matchExpressions });
const EMPTY = (): LabelSelector => sel({});
const DNS_PEER = (): PolicyPeer => ({ namespaceSelector: sel({ [METADATA_NAME]: 'kube-system' }), podSelector: sel({ 'k8s-app': 'kube-dns' }) });
const DNS_PORTS_RULE = (): PolicyPort[] => [
  { protocol: 'UDP', port: 53 },
  { protocol: 'TCP', port: 53 },
];
const PRIVATE_EXCEPT = ['10.0.0.0/8', '100.64.0.0/10', '169.254.169.254/32', '172.16.0.0/12', '192.168.0.0/16'];
const LB_RANGES: readonly { cidr: string; except: string[] }[] = [
  { cidr: '203.0.113.0/24', except: ['203.0.113.128/25'] },
  { cidr: '198.51.100.0/24', except: ['198.51.100.0/28'] },
  { cidr: '192.168.0.0/16', except: ['192.168.13.0/24', '192.168.250.0/24'] },
];

// ---------------------------------------------------------------- address helpers

function ipv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
const IP_10_96_0_0 = (10 << 24) | (96 << 16);
const IP_100_64_0_0 = ((100 << 24) | (64 << 16)) >>> 0;
const IP_100_65_0_0 = ((100 << 24) | (65 << 16)) >>> 0;

export function nodeName(k: number): string {
  return `node-${String(k).padStart(5, '0')}`;
}
function nodePodPrefix(k: number): string {
  return `10.${1 + (k >> 8)}.${k & 255}.`;
}
function podIPv4(k: number, slot: number): string {
  return `${nodePodPrefix(k)}${slot + 2}`;
}
function podIPv6(k: number, slot: number): string {
  return `fd00:${(k + 1).toString(16)}::${(slot + 2).toString(16)}`;
}

function makeNode(k: number, dualStack: boolean): Node {
  const name = nodeName(k);
  const podCIDRs = [`${nodePodPrefix(k)}0/24`];
  const addresses = [`172.16.${Math.floor(k / 250)}.${(k % 250) + 1}`];
  if (dualStack) {
    podCIDRs.push(`fd00:${(k + 1).toString(16)}::/64`);
    addresses.push(`fd01::${(k + 1).toString(16)}`);
  }
  return {
    kind: 'Node',
    name,
    labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'topology.kubernetes.io/zone': `zone-${'abc'[k % 3]}` },
    podCIDRs,
    addresses,
  };
}

/** Splits `total` into integer parts proportional to `weights`, each at least `min` (largest remainder). */
function allocate(total: number, weights: readonly number[], min: number): number[] {
  const n = weights.length;
  const out = new Array<number>(n).fill(min);
  let left = total - min * n;
  if (left < 0) throw new GeneratorError(`cannot split ${total} into ${n} parts of at least ${min}`);
  const sum = weights.reduce((a, b) => a + b, 0);
  const rema: { i: number; r: number }[] = [];
  const base = left;
  for (let i = 0; i < n; i++) {
    const exact = sum > 0 ? (base * weights[i]!) / sum : 0;
    const whole = Math.floor(exact);
    out[i]! += whole;
    left -= whole;
    rema.push({ i, r: exact - whole });
  }
  rema.sort((a, b) => b.r - a.r || a.i - b.i);
  for (let j = 0; left > 0; j = (j + 1) % n, left--) out[rema[j]!.i]! += 1;
  return out;
}

// ---------------------------------------------------------------- generation

interface AppInfo {
  name: string;
  kind: AppKind;
  labels: Labels;
  ports: readonly ContainerPort[];
}

interface NsInfo {
  ns: Namespace;
  team: string;
  env: string;
  apps: AppInfo[];
}

const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
function podSuffix(rng: Rng, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) s += SUFFIX_ALPHABET[rng.int(SUFFIX_ALPHABET.length)];
  return s;
}
/** Unique per replica index: base-27 digits of `offset + j`, 5 characters. */
function replicaSuffix(offset: number, j: number): string {
  let v = (offset + j) % 14_348_907; // 27^5
  let s = '';
  for (let i = 0; i < 5; i++) {
    s = SUFFIX_ALPHABET[v % 27] + s;
    v = Math.floor(v / 27);
  }
  return s;
}

export function generateCluster(profile: ProfileName | CustomProfile, seed: number, opts: GenerateOptions = {}): GeneratedCluster {
  const prof = resolveProfile(profile);
  if (!Number.isFinite(seed)) throw new GeneratorError(`seed must be a finite number, got ${String(seed)}`);
  const dualStack = opts.dualStack === true;
  const rng = new Rng(seed);
  const nodeCount = Math.ceil(prof.pods / prof.localPods);

  // --- namespaces
  const nsInfos: NsInfo[] = [];
  const mkNs = (name: string, team: string, env: string, extra: Record<string, string> = {}): NsInfo => {
    const ns: Namespace = { kind: 'Namespace', name, labels: { [METADATA_NAME]: name, team, env, ...extra } };
    return { ns, team, env, apps: [] };
  };
  nsInfos.push(mkNs('kube-system', 'platform', 'prod'));
  nsInfos.push(mkNs('monitoring', 'platform', 'prod', { purpose: 'monitoring' }));
  nsInfos.push(mkNs('ingress-nginx', 'platform', 'prod', { purpose: 'ingress' }));
  const userNs = prof.namespaces - SYSTEM_NAMESPACES.length;
  for (let i = 0; i < userNs; i++) {
    const team = rng.pick(TEAMS);
    const env = rng.pick(ENVS);
    nsInfos.push(mkNs(`${team}-${rng.pick(NS_WORDS)}-${i}`, team, env));
  }

  // --- pods per namespace: system fixed, users skewed (Zipf-like, exponent 0.5, shuffled order)
  const weights = new Array<number>(userNs);
  for (let i = 0; i < userNs; i++) weights[i] = 1 / Math.sqrt(i + 1);
  for (let i = userNs - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = weights[i]!;
    weights[i] = weights[j]!;
    weights[j] = t;
  }
  const userPods = allocate(prof.pods - SYSTEM_PODS, weights, 1);

  // --- apps per namespace (labels and ports shared by all replicas)
  type Planned = { info: NsInfo; app: AppInfo; replicas: number; canary: Labels | undefined };
  const planned: Planned[] = [];
  const sysApp = (info: NsInfo, name: string, labels: Labels, ports: readonly ContainerPort[], replicas: number) => {
    const app: AppInfo = { name, kind: 'backend', labels, ports };
    info.apps.push(app);
    planned.push({ info, app, replicas, canary: undefined });
  };
  sysApp(nsInfos[0]!, 'coredns', { 'k8s-app': 'kube-dns', app: 'coredns', tier: 'system', team: 'platform', version: 'v1' }, DNS_PORTS, 3);
  sysApp(nsInfos[1]!, 'prometheus', { app: 'prometheus', tier: 'monitoring', team: 'platform', version: 'v1' }, PROM_PORTS, 2);
  sysApp(nsInfos[2]!, 'ingress-nginx', { app: 'ingress-nginx', tier: 'edge', team: 'platform', version: 'v1' }, INGRESS_PORTS, 3);
  for (let i = 0; i < userNs; i++) {
    const info = nsInfos[SYSTEM_NAMESPACES.length + i]!;
    let left = userPods[i]!;
    const used = new Map<string, number>();
    while (left > 0) {
      const kind = rng.pick(KIND_WEIGHTS);
      const base = rng.pick(APP_NAMES[kind]);
      const n = (used.get(base) ?? 0) + 1;
      used.set(base, n);
      const name = n === 1 ? base : `${base}-${n}`;
      const replicas = Math.min(left, rng.pick(REPLICAS));
      left -= replicas;
      const labels: Labels = Object.freeze({ app: name, tier: TIER[kind], team: info.team, version: 'v1' });
      const ports = kind === 'data' ? DATA_PORT_LISTS.get(base)! : KIND_PORTS[kind];
      const app: AppInfo = { name, kind, labels, ports };
      info.apps.push(app);
      const canary = replicas >= 3 && rng.chance(0.15) ? Object.freeze({ ...labels, version: 'v2' }) : undefined;
      planned.push({ info, app, replicas, canary });
    }
  }

  // --- pods: local node gets exactly localPods, spread evenly over the pod sequence; the others go
  //     round-robin over the remote nodes.
  const slots = new Int32Array(nodeCount);
  const pods: Pod[] = new Array(prof.pods);
  const L = prof.localPods;
  const total = prof.pods;
  let gi = 0;
  let rr = 0;
  for (const pl of planned) {
    const rsHash = podSuffix(rng, 9);
    const offset = rng.int(14_348_907);
    for (let j = 0; j < pl.replicas; j++) {
      const local = Math.floor(((gi + 1) * L) / total) > Math.floor((gi * L) / total);
      let node = 0;
      if (!local) {
        node = 1 + (rr % (nodeCount - 1));
        rr++;
      }
      const slot = slots[node]!++;
      const ips = dualStack ? [podIPv4(node, slot), podIPv6(node, slot)] : [podIPv4(node, slot)];
      const labels = pl.canary && j === pl.replicas - 1 ? pl.canary : pl.app.labels;
      pods[gi] = {
        kind: 'Pod',
        namespace: pl.info.ns.name,
        name: `${pl.app.name}-${rsHash}-${replicaSuffix(offset, j)}`,
        labels,
        nodeName: nodeName(node),
        hostNetwork: false,
        phase: 'Running',
        ips,
        ports: pl.app.ports as ContainerPort[],
      };
      gi++;
    }
  }
  if (gi !== total) throw new GeneratorError(`internal: generated ${gi} pods, expected ${total}`);

  const nodes: Node[] = new Array(nodeCount);
  for (let k = 0; k < nodeCount; k++) nodes[k] = makeNode(k, dualStack);

  // --- services: one per app; some LoadBalancer, some with externalIPs
  const services: Service[] = [];
  let clusterIP = IP_10_96_0_0 + 11;
  let lb = 0;
  let ext = 0;
  for (const pl of planned) {
    const isDns = pl.app.name === 'coredns';
    const svc: Service = {
      kind: 'Service',
      namespace: pl.info.ns.name,
      name: isDns ? 'kube-dns' : pl.app.name,
      type: 'ClusterIP',
      clusterIPs: [ipv4(isDns ? IP_10_96_0_0 + 10 : clusterIP++)],
      externalIPs: [],
      loadBalancerIPs: [],
      ports: [{ port: 80, protocol: 'TCP' }],
      nodePorts: [],
    };
    if (pl.app.name === 'ingress-nginx' || (pl.app.kind === 'frontend' && rng.chance(0.15))) {
      svc.type = 'LoadBalancer';
      svc.loadBalancerIPs.push(ipv4(IP_100_64_0_0 + 1 + lb));
      svc.nodePorts.push({ port: 30000 + (lb % 2768), protocol: 'TCP', index: 0 });
      lb++;
    } else if (pl.app.kind === 'backend' && rng.chance(0.02)) {
      svc.externalIPs.push(ipv4(IP_100_65_0_0 + 1 + ext++));
    }
    services.push(svc);
  }

  // --- policies
  const policies = generatePolicies(rng, prof, nsInfos);

  return {
    profile: prof,
    seed,
    dualStack,
    namespaces: nsInfos.map((i) => i.ns),
    pods,
    policies,
    nodes,
    services,
    localNode: nodeName(0),
  };
}

// ---------------------------------------------------------------- policies

function policy(namespace: string, name: string, podSelector: LabelSelector, types: ('ingress' | 'egress')[], ingress: PolicyRule[], egress: PolicyRule[]): NetworkPolicy {
  return { kind: 'NetworkPolicy', namespace, name, podSelector, policyTypes: types, ingress, egress };
}
const rule = (peers: PolicyPeer[], ports: PolicyPort[] = []): PolicyRule => ({ peers, ports });
const appSel = (app: AppInfo) => sel({ app: app.name });

type Template = (info: NsInfo, app: AppInfo, rng: Rng, all: NsInfo[]) => { suffix: string; p: Omit<NetworkPolicy, 'name' | 'namespace' | 'kind'> };
const spec = (podSelector: LabelSelector, policyTypes: ('ingress' | 'egress')[], ingress: PolicyRule[], egress: PolicyRule[] = []) => ({ podSelector, policyTypes, ingress, egress });

/** Ingress from the ingress controller (both selectors in one peer), named port http. */
const fromIngress: Template = (_i, app) => ({
  suffix: 'from-ingress',
  p: spec(appSel(app), ['ingress'], [rule([{ namespaceSelector: sel({ [METADATA_NAME]: 'ingress-nginx' }), podSelector: sel({ app: 'ingress-nginx' }) }], [{ protocol: 'TCP', port: 'http' }])]),
});
/** Ingress from load-balancer ranges (ipBlock with excepts). */
const fromLB: Template = (_i, app, rng) => {
  const r = LB_RANGES[rng.int(LB_RANGES.length)]!;
  return { suffix: 'from-lb', p: spec(appSel(app), ['ingress'], [rule([{ ipBlock: { cidr: r.cidr, except: [...r.except] } }], [{ protocol: 'TCP', port: 8080 }])]) };
};
/** Ingress from the frontend tier of the same namespace: named grpc + numeric http. */
const fromFrontend: Template = (_i, app) => ({
  suffix: 'from-frontend',
  p: spec(appSel(app), ['ingress'], [rule([{ podSelector: sel({ tier: 'frontend' }) }], [{ protocol: 'TCP', port: 'grpc' }, { protocol: 'TCP', port: 8080 }])]),
});
/** Ingress from the team's prod namespaces, frontend/backend tiers (namespaceSelector + matchExpressions). */
const fromTeam: Template = (info, app) => ({
  suffix: 'from-team',
  p: spec(appSel(app), ['ingress'], [rule([{ namespaceSelector: sel({ team: info.team, env: 'prod' }), podSelector: sel({}, [{ key: 'tier', operator: 'In', values: ['backend', 'frontend'] }]) }], [{ protocol: 'TCP', port: 'http' }])]),
});
/** Ingress from another app of the namespace on a port range (endPort). */
const portRange: Template = (info, app, rng) => {
  const other = info.apps[rng.int(info.apps.length)]!;
  return { suffix: 'port-range', p: spec(appSel(app), ['ingress'], [rule([{ podSelector: appSel(other) }], [{ protocol: 'TCP', port: 8000, endPort: 8100 }])]) };
};
/** Ingress from a few named namespaces (matchExpressions on the metadata.name label). */
const fromNamespaces: Template = (info, app, rng, all) => {
  const a = all[SYSTEM_NAMESPACES.length + rng.int(all.length - SYSTEM_NAMESPACES.length)]!.ns.name;
  const b = all[SYSTEM_NAMESPACES.length + rng.int(all.length - SYSTEM_NAMESPACES.length)]!.ns.name;
  const values = [...new Set([a, b, info.ns.name])].sort();
  return { suffix: 'from-namespaces', p: spec(appSel(app), ['ingress'], [rule([{ namespaceSelector: sel({}, [{ key: METADATA_NAME, operator: 'In', values }]) }], [{ protocol: 'TCP', port: 8080 }, { protocol: 'TCP', port: 'grpc' }])]) };
};
/** Data store reachable from the backend tier (named + numeric port). */
const fromBackend: Template = (_i, app) => ({
  suffix: 'from-backend',
  p: spec(appSel(app), ['ingress'], [rule([{ podSelector: sel({ tier: 'backend' }) }], [{ protocol: 'TCP', port: app.ports[0]!.name! }, { protocol: 'TCP', port: app.ports[0]!.port }])]),
});
/** Prometheus scrapes the metrics port (named). */
const allowMonitoring: Template = (_i, app) => ({
  suffix: 'allow-monitoring',
  p: spec(appSel(app), ['ingress'], [rule([{ namespaceSelector: sel({ purpose: 'monitoring' }), podSelector: sel({ app: 'prometheus' }) }], [{ protocol: 'TCP', port: 'metrics' }])]),
});
/** Egress to the internet except metadata and private ranges, plus DNS. */
const egressInternet: Template = (_i, app) => ({
  suffix: 'egress-internet',
  p: spec(appSel(app), ['egress'], [], [rule([{ ipBlock: { cidr: '0.0.0.0/0', except: [...PRIVATE_EXCEPT] } }], [{ protocol: 'TCP', port: 443 }]), rule([DNS_PEER()], DNS_PORTS_RULE())]),
});
/** Egress to the data stores of the namespace and DNS. */
const egressData: Template = (_i, app) => ({
  suffix: 'egress-data',
  p: spec(appSel(app), ['egress'], [], [rule([{ podSelector: sel({ tier: 'data' }) }]), rule([DNS_PEER()], DNS_PORTS_RULE())]),
});

const TEMPLATES: Record<AppKind, readonly Template[]> = {
  frontend: [fromIngress, fromLB, allowMonitoring, egressData],
  backend: [fromFrontend, fromTeam, portRange, allowMonitoring, fromNamespaces, egressInternet],
  data: [fromBackend, allowMonitoring, fromNamespaces],
  worker: [egressInternet, allowMonitoring, egressData],
};

function generatePolicies(rng: Rng, prof: Profile, nsInfos: NsInfo[]): NetworkPolicy[] {
  const users = nsInfos.slice(SYSTEM_NAMESPACES.length);
  const weights = users.map((u) => Math.sqrt(u.apps.length));
  const counts = allocate(prof.policies, weights, 0);
  const out: NetworkPolicy[] = [];
  users.forEach((info, idx) => {
    const c = counts[idx]!;
    const ns = info.ns.name;
    const denyEgress = rng.chance(0.3);
    const fixed: NetworkPolicy[] = [];
    if (denyEgress) {
      fixed.push(policy(ns, 'default-deny-all', EMPTY(), ['ingress', 'egress'], [], []));
      fixed.push(policy(ns, 'allow-dns', EMPTY(), ['egress'], [], [rule([DNS_PEER()], DNS_PORTS_RULE())]));
    } else fixed.push(policy(ns, 'default-deny-ingress', EMPTY(), ['ingress'], [], []));
    // A namespace-wide allowance in about half of the namespaces, app policies after that.
    const r = rng.next();
    if (r < 0.3) {
      if (denyEgress) fixed.push(policy(ns, 'allow-same-namespace', EMPTY(), ['ingress', 'egress'], [rule([{ podSelector: EMPTY() }])], [rule([{ podSelector: EMPTY() }])]));
      else fixed.push(policy(ns, 'allow-same-namespace', EMPTY(), ['ingress'], [rule([{ podSelector: EMPTY() }])], []));
    } else if (r < 0.45) fixed.push(policy(ns, 'allow-from-team', EMPTY(), ['ingress'], [rule([{ namespaceSelector: sel({ team: info.team }) }])], []));
    else if (r < 0.55) fixed.push(policy(ns, 'allow-from-team-prod', EMPTY(), ['ingress'], [rule([{ namespaceSelector: sel({ team: info.team, env: 'prod' }), podSelector: sel({ tier: 'frontend' }) }], [{ protocol: 'TCP', port: 'http' }])], []));
    const offset = rng.int(6);
    for (let j = 0; j < c; j++) {
      if (j < fixed.length) {
        out.push(fixed[j]!);
        continue;
      }
      const k = j - fixed.length;
      const appIdx = k % info.apps.length;
      const round = Math.floor(k / info.apps.length);
      const app = info.apps[appIdx]!;
      const tpls = TEMPLATES[app.kind];
      const t = tpls[(round + appIdx + offset) % tpls.length]!;
      const { suffix, p } = t(info, app, rng, nsInfos);
      const name = `${app.name}-${suffix}${round >= tpls.length ? `-${round}` : ''}`;
      out.push({ kind: 'NetworkPolicy', namespace: ns, name, ...p });
    }
  });
  if (out.length !== prof.policies) throw new GeneratorError(`internal: generated ${out.length} policies, expected ${prof.policies}`);
  return out;
}

// ---------------------------------------------------------------- loading, raw form

/** Every object of the cluster, namespaces and nodes first. */
export function* clusterObjects(c: GeneratedCluster): Generator<ClusterObject> {
  yield* c.namespaces;
  yield* c.nodes;
  yield* c.services;
  yield* c.pods;
  yield* c.policies;
}

/** Upserts every object into `store` (a new one by default) and returns it. */
export function loadIntoStore(c: GeneratedCluster, store: ClusterStore = new ClusterStore()): ClusterStore {
  for (const o of clusterObjects(c)) store.upsert(o);
  return store;
}

/** Objects the local node hosts. */
export function localPods(c: GeneratedCluster): Pod[] {
  return c.pods.filter((p) => p.nodeName === c.localNode);
}

function rawSelector(s: LabelSelector): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (Object.keys(s.matchLabels).length) out.matchLabels = { ...s.matchLabels };
  if (s.matchExpressions.length) out.matchExpressions = s.matchExpressions.map((e) => (e.values.length ? { key: e.key, operator: e.operator, values: [...e.values] } : { key: e.key, operator: e.operator }));
  return out;
}

function rawPeer(p: PolicyPeer): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (p.podSelector) out.podSelector = rawSelector(p.podSelector);
  if (p.namespaceSelector) out.namespaceSelector = rawSelector(p.namespaceSelector);
  if (p.ipBlock) out.ipBlock = p.ipBlock.except.length ? { cidr: p.ipBlock.cidr, except: [...p.ipBlock.except] } : { cidr: p.ipBlock.cidr };
  return out;
}

function rawRule(r: PolicyRule, dir: 'ingress' | 'egress'): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.peers.length) out[dir === 'ingress' ? 'from' : 'to'] = r.peers.map(rawPeer);
  if (r.ports.length) out.ports = r.ports.map((p) => ({ protocol: p.protocol, ...(p.port !== undefined ? { port: p.port } : {}), ...(p.endPort !== undefined ? { endPort: p.endPort } : {}) }));
  return out;
}

/** The Kubernetes API form of a model object (for manifests, `podwall matrix`, and round-trip tests). */
export function toRawObject(o: ClusterObject): Record<string, unknown> {
  switch (o.kind) {
    case 'ClusterNetworkPolicy':
      return clusterNetworkPolicyToRaw(o);
    case 'Namespace':
      return { apiVersion: 'v1', kind: 'Namespace', metadata: { name: o.name, labels: { ...o.labels } } };
    case 'Node':
      return {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: o.name, labels: { ...o.labels } },
        spec: { podCIDR: o.podCIDRs[0], podCIDRs: [...o.podCIDRs] },
        status: { addresses: o.addresses.map((address) => ({ type: 'InternalIP', address })) },
      };
    case 'Pod':
      return {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { namespace: o.namespace, name: o.name, labels: { ...o.labels } },
        spec: {
          ...(o.nodeName !== undefined ? { nodeName: o.nodeName } : {}),
          ...(o.hostNetwork ? { hostNetwork: true } : {}),
          containers: [{ name: 'main', image: 'registry.example/app:1', ports: o.ports.map((p) => ({ ...(p.name !== undefined ? { name: p.name } : {}), containerPort: p.port, protocol: p.protocol })) }],
        },
        status: { ...(o.phase ? { phase: o.phase } : {}), ...(o.ips.length ? { podIP: o.ips[0], podIPs: o.ips.map((ip) => ({ ip })) } : {}) },
      };
    case 'Workload': {
      const spec = {
        ...(o.hostNetwork ? { hostNetwork: true } : {}),
        containers: [{ name: 'main', image: 'registry.example/app:1', ports: o.ports.map((p) => ({ ...(p.name !== undefined ? { name: p.name } : {}), containerPort: p.port, protocol: p.protocol })) }],
      };
      const template = { metadata: { labels: { ...o.labels } }, spec };
      const apiVersion = o.workloadKind === 'ReplicationController' ? 'v1' : o.workloadKind === 'Job' || o.workloadKind === 'CronJob' ? 'batch/v1' : 'apps/v1';
      // A ReplicationController's selector is a plain label map (v1), the apps/v1 kinds' a LabelSelector.
      const selector = o.workloadKind === 'ReplicationController' ? { ...o.labels } : { matchLabels: { ...o.labels } };
      const body = o.workloadKind === 'CronJob' ? { schedule: '@hourly', jobTemplate: { spec: { template } } } : o.workloadKind === 'Job' ? { template } : { selector, template };
      return { apiVersion, kind: o.workloadKind, metadata: { namespace: o.namespace, name: o.name }, spec: body };
    }
    case 'Service':
      return {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { namespace: o.namespace, name: o.name },
        spec: {
          type: o.type,
          clusterIP: o.clusterIPs[0],
          clusterIPs: [...o.clusterIPs],
          ...(o.externalIPs.length ? { externalIPs: [...o.externalIPs] } : {}),
          ports: o.ports.map((p, i) => ({ port: p.port, protocol: p.protocol, ...(o.nodePorts[i] ? { nodePort: o.nodePorts[i]!.port } : {}) })),
        },
        status: o.loadBalancerIPs.length ? { loadBalancer: { ingress: o.loadBalancerIPs.map((ip) => ({ ip })) } } : {},
      };
    case 'NetworkPolicy':
      return {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { namespace: o.namespace, name: o.name },
        spec: {
          podSelector: rawSelector(o.podSelector),
          policyTypes: o.policyTypes.map((t) => (t === 'ingress' ? 'Ingress' : 'Egress')),
          ...(o.ingress.length ? { ingress: o.ingress.map((r) => rawRule(r, 'ingress')) } : {}),
          ...(o.egress.length ? { egress: o.egress.map((r) => rawRule(r, 'egress')) } : {}),
        },
      };
  }
}

// ---------------------------------------------------------------- events

export const EVENT_KINDS = ['local-pod-add', 'local-pod-delete', 'remote-pod-add', 'remote-pod-delete', 'pod-relabel', 'namespace-relabel', 'policy-add', 'policy-update', 'policy-delete', 'node-add'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

export interface ChangeSet {
  upserts: ClusterObject[];
  removes: { kind: ClusterObject['kind']; key: string }[];
}

export interface ClusterEvent extends ChangeSet {
  kind: EventKind;
  /** One line: what changes and why it matters. */
  description: string;
  /** Brings the store back to the base cluster. */
  undo: ChangeSet;
}

export function applyChanges(store: ClusterStore, cs: ChangeSet): void {
  for (const r of cs.removes) store.remove(r.kind, r.key);
  for (const o of cs.upserts) store.upsert(o);
}

const removal = (o: ClusterObject) => ({ kind: o.kind, key: objectKey(o) });

/**
 * What the local node's policies look at, computed from the base cluster with the selector code of
 * policy/: policies selecting a local pod, and the pod selectors of their peers.
 */
class Relevance {
  readonly nsLabels = new Map<string, Labels>();
  readonly localPolicies: NetworkPolicy[] = [];
  readonly localPodsList: Pod[];
  /** Pod peers of local policies: [namespace matcher, pod selector]. */
  readonly peers: { inNamespace: (ns: string, nsLabels: Labels) => boolean; pods?: LabelSelector }[] = [];
  private readonly byNs = new Map<string, Pod[]>();

  constructor(readonly c: GeneratedCluster) {
    for (const n of c.namespaces) this.nsLabels.set(n.name, n.labels);
    for (const p of c.pods) {
      let l = this.byNs.get(p.namespace);
      if (!l) this.byNs.set(p.namespace, (l = []));
      l.push(p);
    }
    this.localPodsList = c.pods.filter((p) => p.nodeName === c.localNode);
    const localByNs = new Map<string, Pod[]>();
    for (const p of this.localPodsList) {
      let l = localByNs.get(p.namespace);
      if (!l) localByNs.set(p.namespace, (l = []));
      l.push(p);
    }
    for (const pol of c.policies) {
      const locals = localByNs.get(pol.namespace) ?? [];
      if (!locals.some((p) => selectorMatches(pol.podSelector, p.labels))) continue;
      this.localPolicies.push(pol);
      for (const dir of ['ingress', 'egress'] as const) {
        if (!pol.policyTypes.includes(dir)) continue;
        for (const r of pol[dir]) {
          for (const peer of r.peers) {
            if (peer.ipBlock) continue;
            const nsSel = peer.namespaceSelector;
            const inNamespace = nsSel ? (_ns: string, labels: Labels) => selectorMatches(nsSel, labels) : (ns: string) => ns === pol.namespace;
            this.peers.push(peer.podSelector ? { inNamespace, pods: peer.podSelector } : { inNamespace });
          }
        }
      }
    }
  }

  podsIn(ns: string): Pod[] {
    return this.byNs.get(ns) ?? [];
  }

  private readonly peersByNs = new Map<string, Relevance['peers']>();

  /** Peers whose namespace part matches `ns` with its base labels (cached). */
  peersIn(ns: string): Relevance['peers'] {
    let l = this.peersByNs.get(ns);
    if (!l) {
      const nsl = this.nsLabels.get(ns) ?? {};
      l = this.peers.filter((p) => p.inNamespace(ns, nsl));
      this.peersByNs.set(ns, l);
    }
    return l;
  }

  /** A pod with these labels in `ns` is in some local policy's peer set. */
  isPeer(ns: string, labels: Labels): boolean {
    return this.peersIn(ns).some((p) => !p.pods || selectorMatches(p.pods, labels));
  }

  /** Local policies of a namespace select a pod with these labels. */
  isLocalTarget(ns: string, labels: Labels): boolean {
    return this.localPolicies.some((pol) => pol.namespace === ns && selectorMatches(pol.podSelector, labels));
  }

  /** Whether moving a pod from `before` to `after` labels changes a local policy's targets or peers. */
  relabelMatters(pod: Pod, after: Labels): boolean {
    const isLocal = pod.nodeName === this.c.localNode;
    for (const pol of this.localPolicies) {
      if (isLocal && pol.namespace === pod.namespace && selectorMatches(pol.podSelector, pod.labels) !== selectorMatches(pol.podSelector, after)) return true;
    }
    return this.peersIn(pod.namespace).some((p) => p.pods !== undefined && selectorMatches(p.pods, pod.labels) !== selectorMatches(p.pods, after));
  }

  /** Whether changing a namespace's labels changes a local policy's peers (the namespace has pods). */
  namespaceRelabelMatters(ns: string, after: Labels): boolean {
    const before = this.nsLabels.get(ns) ?? {};
    const pods = this.podsIn(ns);
    if (pods.length === 0) return false;
    return this.peers.some((p) => p.inNamespace(ns, before) !== p.inNamespace(ns, after) && pods.some((x) => !p.pods || selectorMatches(p.pods, x.labels)));
  }
}

/** The lowest free pod address of a node of the base cluster. */
function freeSlot(c: GeneratedCluster, node: string, cache: Map<string, Set<string>>): { ipv4: string; ipv6?: string } {
  const k = c.nodes.findIndex((n) => n.name === node);
  if (k < 0) throw new GeneratorError(`node ${node} not found`);
  if (cache.size === 0) {
    for (const p of c.pods) {
      if (!p.nodeName) continue;
      let s = cache.get(p.nodeName);
      if (!s) cache.set(p.nodeName, (s = new Set()));
      s.add(p.ips[0]!);
    }
  }
  const used = cache.get(node) ?? new Set<string>();
  let slot = 0;
  while (slot < 252 && used.has(podIPv4(k, slot))) slot++;
  if (slot >= 252) throw new GeneratorError(`node ${node} has no free pod address left`);
  return c.dualStack ? { ipv4: podIPv4(k, slot), ipv6: podIPv6(k, slot) } : { ipv4: podIPv4(k, slot) };
}

/**
 * `count` events of one kind, each valid against the base cluster `c` and chosen so that it changes
 * what the local node enforces (a pod that existing local policies select or list as a peer, a label
 * change that flips a selector of a local policy, a policy that selects local pods, a node whose pod
 * CIDR and address enter the node sets). Apply an event, then its `undo`, before the next one. When
 * fewer distinct targets exist than `count`, targets repeat (with fresh names for added objects).
 */
export function makeEvents(c: GeneratedCluster, kind: EventKind, count: number, seed: number): ClusterEvent[] {
  if (!(EVENT_KINDS as readonly string[]).includes(kind)) throw new GeneratorError(`unknown event kind ${JSON.stringify(kind)}: one of ${EVENT_KINDS.join(', ')}`);
  if (!Number.isSafeInteger(count) || count < 0) throw new GeneratorError(`event count must be a non-negative integer, got ${String(count)}`);
  if (count === 0) return [];
  const rng = new Rng(seed ^ 0x5bd1e995);
  const rel = new Relevance(c);
  const out: ClusterEvent[] = [];
  const cycle = <T>(items: T[], what: string): ((i: number) => T) => {
    if (items.length === 0) throw new GeneratorError(`no ${what} in profile ${c.profile.name} (seed ${c.seed}) for ${kind} events`);
    const order = shuffled(items, rng);
    return (i) => order[i % order.length]!;
  };

  switch (kind) {
    case 'local-pod-add':
    case 'remote-pod-add': {
      const local = kind === 'local-pod-add';
      // Replicas of apps whose pods local policies select (local add) or list as peers (remote add).
      const apps = dedupeBy(c.pods, (p) => `${p.namespace}/${p.labels.app}/${p.labels.version}`);
      const templates = apps.filter((p) => (local ? rel.isLocalTarget(p.namespace, p.labels) : rel.isPeer(p.namespace, p.labels)));
      const pickT = cycle(templates, local ? 'pods selected by local policies' : 'peer pods of local policies');
      const remoteNodes = c.nodes.filter((n) => n.name !== c.localNode);
      const usedCache = new Map<string, Set<string>>();
      for (let i = 0; i < count; i++) {
        const t = pickT(i);
        const node = local ? c.localNode : remoteNodes.length ? remoteNodes[rng.int(remoteNodes.length)]!.name : c.localNode;
        const ip = freeSlot(c, node, usedCache);
        const pod: Pod = { ...t, name: `${String(t.labels.app ?? 'pod')}-bench-${i}`, nodeName: node, ips: ip.ipv6 ? [ip.ipv4, ip.ipv6] : [ip.ipv4] };
        out.push({ kind, description: `add pod ${objectKey(pod)} on ${node} (${pod.ips[0]})`, upserts: [pod], removes: [], undo: { upserts: [], removes: [removal(pod)] } });
      }
      break;
    }
    case 'local-pod-delete':
    case 'remote-pod-delete': {
      const local = kind === 'local-pod-delete';
      const cands = local ? rel.localPodsList.filter((p) => rel.isLocalTarget(p.namespace, p.labels)) : c.pods.filter((p) => p.nodeName !== c.localNode && rel.isPeer(p.namespace, p.labels));
      const pick = cycle(cands, local ? 'local pods selected by a policy' : 'remote peer pods');
      for (let i = 0; i < count; i++) {
        const p = pick(i);
        out.push({ kind, description: `delete pod ${objectKey(p)} on ${p.nodeName} (${p.ips[0]})`, upserts: [], removes: [removal(p)], undo: { upserts: [p], removes: [] } });
      }
      break;
    }
    case 'pod-relabel': {
      // Local pods and remote peer pods, relabelled to another app of their namespace (or tier).
      const cands = c.pods.filter((p) => p.nodeName === c.localNode || rel.isPeer(p.namespace, p.labels));
      const order = shuffled(cands, rng);
      let found = 0;
      for (let i = 0; found < count && i < order.length * 4; i++) {
        const p = order[i % order.length]!;
        const after = relabelCandidate(p, rel, rng);
        if (!after) continue;
        const np: Pod = { ...p, labels: after };
        out.push({ kind, description: `relabel pod ${objectKey(p)}: ${labelDiff(p.labels, after)}`, upserts: [np], removes: [], undo: { upserts: [p], removes: [] } });
        found++;
      }
      if (found < count) {
        if (found === 0) throw new GeneratorError(`no pod relabel changes a local policy in profile ${c.profile.name} (seed ${c.seed})`);
        for (let i = found; i < count; i++) out.push(out[i % found]!);
      }
      break;
    }
    case 'namespace-relabel': {
      const order = shuffled(c.namespaces.filter((n) => !SYSTEM_NAMESPACES.includes(n.name as (typeof SYSTEM_NAMESPACES)[number])), rng);
      const found: ClusterEvent[] = [];
      for (const n of order) {
        if (found.length >= count) break;
        for (const after of namespaceLabelCandidates(n, rng)) {
          if (!rel.namespaceRelabelMatters(n.name, after)) continue;
          const nn: Namespace = { ...n, labels: after };
          found.push({ kind, description: `relabel namespace ${n.name}: ${labelDiff(n.labels, after)}`, upserts: [nn], removes: [], undo: { upserts: [n], removes: [] } });
          break;
        }
      }
      if (found.length === 0) throw new GeneratorError(`no namespace relabel changes a local policy in profile ${c.profile.name} (seed ${c.seed})`);
      for (let i = 0; i < count; i++) out.push(found[i % found.length]!);
      break;
    }
    case 'policy-add': {
      const pickPod = cycle(rel.localPodsList, 'local pods');
      for (let i = 0; i < count; i++) {
        const p = pickPod(i);
        const peerNs = c.namespaces[rng.int(c.namespaces.length)]!.name;
        const pol: NetworkPolicy = policy(
          p.namespace,
          `bench-add-${i}`,
          sel({ app: String(p.labels.app) }),
          ['ingress'],
          [rule([{ namespaceSelector: sel({ [METADATA_NAME]: peerNs }), podSelector: sel({ tier: rng.pick(['frontend', 'backend']) }) }], [{ protocol: 'TCP', port: 8080 }, { protocol: 'TCP', port: 'metrics' }])],
          [],
        );
        out.push({ kind, description: `add policy ${objectKey(pol)} selecting app=${p.labels.app} (local pod ${p.name})`, upserts: [pol], removes: [], undo: { upserts: [], removes: [removal(pol)] } });
      }
      break;
    }
    case 'policy-update': {
      const pick = cycle(rel.localPolicies, 'policies selecting local pods');
      for (let i = 0; i < count; i++) {
        const pol = pick(i);
        const updated = updatePolicy(pol, i, rng);
        out.push({ kind, description: `update policy ${objectKey(pol)}: ${updated.what}`, upserts: [updated.p], removes: [], undo: { upserts: [pol], removes: [] } });
      }
      break;
    }
    case 'policy-delete': {
      const pick = cycle(rel.localPolicies, 'policies selecting local pods');
      for (let i = 0; i < count; i++) {
        const pol = pick(i);
        out.push({ kind, description: `delete policy ${objectKey(pol)}`, upserts: [], removes: [removal(pol)], undo: { upserts: [pol], removes: [] } });
      }
      break;
    }
    case 'node-add': {
      for (let i = 0; i < count; i++) {
        // Fresh node numbers after the existing ones; each event alone, so they can share a number.
        const n = makeNode(c.nodes.length + (i % 64), c.dualStack);
        out.push({ kind, description: `add node ${n.name} (${n.podCIDRs.join(', ')}; ${n.addresses.join(', ')})`, upserts: [n], removes: [], undo: { upserts: [], removes: [removal(n)] } });
      }
      break;
    }
  }
  return out;
}

function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

function dedupeBy<T>(items: readonly T[], key: (t: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((t) => {
    const k = key(t);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function labelDiff(a: Labels, b: Labels): string {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys
    .filter((k) => a[k] !== b[k])
    .map((k) => `${k}: ${a[k] ?? '-'} → ${b[k] ?? '-'}`)
    .join(', ');
}

function relabelCandidate(p: Pod, rel: Relevance, rng: Rng): Labels | undefined {
  const siblings = dedupeBy(
    rel.podsIn(p.namespace).filter((x) => x.labels.app !== p.labels.app),
    (x) => String(x.labels.app),
  );
  const tries: Labels[] = [];
  for (const s of shuffled(siblings, rng).slice(0, 6)) tries.push({ ...p.labels, app: String(s.labels.app), tier: String(s.labels.tier) });
  for (const tier of ['frontend', 'backend', 'data']) if (p.labels.tier !== tier) tries.push({ ...p.labels, tier });
  return tries.find((after) => rel.relabelMatters(p, after));
}

function namespaceLabelCandidates(n: Namespace, rng: Rng): Labels[] {
  const out: Labels[] = [];
  for (const env of ['prod', 'staging', 'dev']) if (n.labels.env !== env) out.push({ ...n.labels, env });
  for (const team of shuffled(TEAMS, rng).slice(0, 4)) if (n.labels.team !== team) out.push({ ...n.labels, team });
  out.push({ ...n.labels, purpose: 'monitoring' });
  return out;
}

function updatePolicy(pol: NetworkPolicy, i: number, rng: Rng): { p: NetworkPolicy; what: string } {
  const variant = (i + rng.int(3)) % 3;
  const p: NetworkPolicy = { ...pol, ingress: [...pol.ingress], egress: [...pol.egress], policyTypes: [...pol.policyTypes] };
  if (variant === 0 && pol.policyTypes.includes('ingress')) {
    // Allow one more port on the first rule (or add a rule).
    if (p.ingress.length > 0 && p.ingress[0]!.ports.length > 0) {
      p.ingress[0] = { ...p.ingress[0]!, ports: [...p.ingress[0]!.ports, { protocol: 'TCP', port: 9443 + (i % 50) }] };
      return { p, what: `ingress[0] also allows ${9443 + (i % 50)}/TCP` };
    }
  }
  if (variant === 1) {
    // Add an ingress rule from the monitoring namespace.
    if (!p.policyTypes.includes('ingress')) p.policyTypes = ['ingress', ...p.policyTypes];
    p.ingress.push(rule([{ namespaceSelector: sel({ purpose: 'monitoring' }), podSelector: sel({ app: 'prometheus' }) }], [{ protocol: 'TCP', port: 9100 + (i % 50) }]));
    return { p, what: `new ingress rule from prometheus on ${9100 + (i % 50)}/TCP` };
  }
  // Add an egress rule to a CIDR (policy then also isolates egress).
  if (!p.policyTypes.includes('egress')) p.policyTypes = [...p.policyTypes, 'egress'];
  const third = 1 + (i % 200);
  p.egress.push(rule([{ ipBlock: { cidr: `100.${64 + (third % 60)}.${third}.0/24`, except: [`100.${64 + (third % 60)}.${third}.128/25`] } }], [{ protocol: 'TCP', port: 5432 }]));
  return { p, what: `new egress rule to 100.${64 + (third % 60)}.${third}.0/24 on 5432/TCP` };
}
