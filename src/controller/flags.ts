// The agent's configuration from kube-router compatible flags. Pure: argv in, RunConfig or an error out.
import { hostname } from 'node:os';
import { formatCIDR, parseCIDR } from '../net/ip.js';
import type { Family } from '../cluster/model.js';
import { parseLogBurst, parseLogRate, type LogLimit } from '../dataplane/nflog.js';
import type { RenderOptions } from '../dataplane/render.js';

export interface RunConfig {
  kubeconfig?: string;
  master?: string;
  manifests?: string;
  /** A manifest file is read once its content has been unchanged this long (a writer may be mid-file before). */
  manifestsSettleMs: number;
  /** Where the manifests source keeps the last accepted version of each policy, namespace and node across restarts. */
  manifestsStateFile?: string;
  nodeName: string;
  syncPeriodMs: number;
  /** Period of the drift watcher's cheap checks (0: off; nft monitor events still count). */
  driftCheckPeriodMs: number;
  serviceClusterIPRanges: string[];
  serviceExternalIPRanges: string[];
  loadBalancerIPRanges: string[];
  nodePortRange: [number, number];
  enableIPv4: boolean;
  enableIPv6: boolean;
  defaultDeny: boolean;
  metricsPort: number;
  metricsPath: string;
  metricsAddr: string;
  healthPort: number;
  healthAddr: string;
  cacheSyncTimeoutMs: number;
  cleanupConfig: boolean;
  logLevel: string;
  backend: 'auto' | 'nft' | 'legacy';
  statusFile?: string;
  /** Rate limit of the NFLOG rules (per pod and direction). */
  logLimit: LogLimit;
  /** --netpol-strict: cut established connections a change denies (conntrack). */
  strict: boolean;
}

export class FlagError extends Error {}

type Kind = 'string' | 'strings' | 'bool' | 'duration' | 'port' | 'int';
interface Spec {
  kind: Kind;
  help: string;
  default?: string;
}

/** kube-router's flags that podwall understands, with kube-router's defaults. */
export const FLAGS: Record<string, Spec> = {
  'run-firewall': { kind: 'bool', help: 'run the network policy firewall (podwall only does this)', default: 'true' },
  'run-router': { kind: 'bool', help: 'kube-router routing: not provided by podwall; only false is accepted', default: 'false' },
  'run-service-proxy': { kind: 'bool', help: 'kube-router service proxy: not provided by podwall; only false is accepted', default: 'false' },
  kubeconfig: { kind: 'string', help: 'path to a kubeconfig (default: in-cluster config, then ~/.kube/config)' },
  master: { kind: 'string', help: 'Kubernetes API server address (overrides the kubeconfig)' },
  manifests: { kind: 'string', help: 'watch a directory of manifests instead of the API server' },
  'manifests-settle': { kind: 'duration', help: 'with --manifests: read a file once its content has been unchanged this long (a writer may be mid-file before)', default: '500ms' },
  'manifests-state-file': { kind: 'string', help: 'with --manifests: keep the last accepted version of each policy, namespace and node here across restarts (default /run/podwall/manifests-<hash of DIR>.json)' },
  'hostname-override': { kind: 'string', help: 'node name (default: $NODE_NAME, else the hostname)' },
  'iptables-sync-period': { kind: 'duration', help: 'period of the full resync that repairs drift', default: '5m0s' },
  'drift-check-period': { kind: 'duration', help: 'period of the cheap check of podwall\'s own chains and sets (set headers; the tables too without nft monitor) that repairs drift within about a second; 0 turns it off', default: '500ms' },
  'service-cluster-ip-range': { kind: 'strings', help: 'service cluster IP range(s), at most one per family', default: '10.96.0.0/12' },
  'service-external-ip-range': { kind: 'strings', help: 'service external IP range(s)' },
  'loadbalancer-ip-range': { kind: 'strings', help: 'load balancer IP range(s)' },
  'service-node-port-range': { kind: 'string', help: 'NodePort range, a-b or a:b', default: '30000-32767' },
  'enable-ipv4': { kind: 'bool', help: 'enforce IPv4', default: 'true' },
  'enable-ipv6': { kind: 'bool', help: 'enforce IPv6', default: 'false' },
  'netpol-default-deny': { kind: 'bool', help: 'deny traffic of local pods until their policies are programmed (podwall always does for pods it knows)', default: 'false' },
  'netpol-strict': { kind: 'bool', help: 'when a change removes access, remove the established connections the new rules deny from conntrack (needs the conntrack tool)', default: 'false' },
  'metrics-port': { kind: 'port', help: 'Prometheus metrics port (0 disables)', default: '0' },
  'metrics-path': { kind: 'string', help: 'Prometheus metrics path', default: '/metrics' },
  'metrics-addr': { kind: 'string', help: 'Prometheus metrics listen address', default: '' },
  'health-port': { kind: 'port', help: 'health port (/healthz, /readyz, /status); 0 disables', default: '20244' },
  'health-addr': { kind: 'string', help: 'health listen address', default: '' },
  'cache-sync-timeout': { kind: 'duration', help: 'how long the first sync waits for the informers', default: '1m0s' },
  'cleanup-config': { kind: 'bool', help: 'remove every chain, rule and set podwall (or kube-router\'s firewall) created, then exit', default: 'false' },
  'log-level': { kind: 'string', help: 'trace, debug, info, warn, error', default: 'info' },
  v: { kind: 'int', help: 'klog-style verbosity: 0 info, 1-2 debug, 3+ trace', default: '0' },
  'iptables-backend': { kind: 'string', help: 'auto (detect like kube-proxy), nft or legacy', default: 'auto' },
  'status-file': { kind: 'string', help: 'write the applied generation as JSON to this file after every sync' },
  'netpol-log-limit': { kind: 'string', help: 'NFLOG rate limit per pod and direction, N/second|minute|hour|day, or 0 for every denial (kube-router: 10/minute)', default: '10/minute' },
  'netpol-log-burst': { kind: 'int', help: 'NFLOG burst per pod and direction before the limit applies', default: '10' },
};

const SHORT: Record<string, string> = { v: 'v' };

/** Go-style duration: 5m0s, 1h, 300ms, 1.5s, 2m30s. */
export function parseDuration(text: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (/^\d+$/.test(text) && text === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * units[m[2]!]!;
    pos = re.lastIndex;
  }
  if (pos !== text.length || text === '') throw new FlagError(`invalid duration ${JSON.stringify(text)} (e.g. 5m0s, 30s, 1h)`);
  return total;
}

function parseBool(flag: string, text: string): boolean {
  if (/^(true|1|t|T|TRUE|True)$/.test(text)) return true;
  if (/^(false|0|f|F|FALSE|False)$/.test(text)) return false;
  throw new FlagError(`--${flag}=${JSON.stringify(text)}: expected true or false`);
}

/** Raw parse: `--flag value`, `--flag=value`, booleans bare or `=true|false`, repeatable lists (comma-separated too). */
export function parseFlags(argv: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--?([A-Za-z0-9_-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new FlagError(`unexpected argument ${JSON.stringify(arg)}`);
    const name = SHORT[m[1]!] ?? m[1]!;
    const spec = FLAGS[name];
    if (!spec) throw new FlagError(`unknown flag --${m[1]}${suggestFlag(m[1]!)}`);
    let value = m[2];
    if (value === undefined) {
      if (spec.kind === 'bool') value = 'true';
      else {
        value = argv[++i];
        if (value === undefined) throw new FlagError(`--${name} needs a value`);
      }
    }
    const prev = out.get(name) ?? [];
    if (spec.kind === 'strings') prev.push(...value.split(',').map((s) => s.trim()).filter((s) => s !== ''));
    else prev.splice(0, prev.length, value);
    out.set(name, prev);
  }
  return out;
}

function suggestFlag(name: string): string {
  const hit = Object.keys(FLAGS).find((f) => f.replace(/-/g, '') === name.replace(/[-_]/g, '') || (f.length > 5 && (f.startsWith(name) || name.startsWith(f))));
  return hit ? ` (did you mean --${hit}?)` : '';
}

function validRange(flag: string, text: string, enabled: Record<Family, boolean>): string {
  const r = parseCIDR(text);
  if (!r.ok) throw new FlagError(`--${flag}=${JSON.stringify(text)}: not a CIDR: ${r.reason}`);
  if (r.hostBitsSet) throw new FlagError(`--${flag}=${JSON.stringify(text)}: host bits set (did you mean ${formatCIDR(r.cidr)}?)`);
  if (!enabled[r.cidr.family]) throw new FlagError(`--${flag}=${JSON.stringify(text)}: ${r.cidr.family === 'ipv6' ? 'IPv6 range while --enable-ipv6 is false' : 'IPv4 range while --enable-ipv4 is false'}`);
  return formatCIDR(r.cidr);
}

export function parseNodePortRange(text: string): [number, number] {
  const m = /^\s*(\d{1,5})\s*[-:]\s*(\d{1,5})\s*$/.exec(text);
  if (!m) throw new FlagError(`--service-node-port-range=${JSON.stringify(text)}: expected a-b or a:b`);
  const a = Number(m[1]);
  const b = Number(m[2]);
  if (a < 1 || b > 65535 || a > 65535) throw new FlagError(`--service-node-port-range=${JSON.stringify(text)}: ports must be 1-65535`);
  if (a > b) throw new FlagError(`--service-node-port-range=${JSON.stringify(text)}: start ${a} is above end ${b}`);
  return [a, b];
}

export function buildConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): RunConfig {
  const raw = parseFlags(argv);
  const get = (name: string): string | undefined => raw.get(name)?.[0] ?? FLAGS[name]!.default;
  const list = (name: string): string[] => raw.get(name) ?? (FLAGS[name]!.default ? [FLAGS[name]!.default!] : []);
  const bool = (name: string): boolean => parseBool(name, get(name) ?? 'false');

  if (!bool('run-firewall')) throw new FlagError('--run-firewall=false: podwall is the firewall; there is nothing else to run');
  for (const f of ['run-router', 'run-service-proxy']) {
    if (bool(f)) throw new FlagError(`--${f}=true: podwall is kube-router's firewall only; run kube-router for routing/service proxy with --run-firewall=false next to podwall`);
  }
  const enableIPv4 = bool('enable-ipv4');
  const enableIPv6 = bool('enable-ipv6');
  if (!enableIPv4 && !enableIPv6) throw new FlagError('--enable-ipv4=false and --enable-ipv6=false: nothing to enforce');
  const enabled = { ipv4: enableIPv4, ipv6: enableIPv6 };

  const clusterRanges = list('service-cluster-ip-range').map((r) => validRange('service-cluster-ip-range', r, enabled));
  if (clusterRanges.length > 2) throw new FlagError(`--service-cluster-ip-range: at most two ranges (one per family), got ${clusterRanges.length}`);
  if (clusterRanges.length === 2 && clusterRanges[0]!.includes(':') === clusterRanges[1]!.includes(':')) {
    throw new FlagError('--service-cluster-ip-range: two ranges must be one IPv4 and one IPv6');
  }
  const durations: Record<string, number> = {};
  for (const d of ['iptables-sync-period', 'cache-sync-timeout', 'manifests-settle', 'drift-check-period']) {
    try {
      durations[d] = parseDuration(get(d)!);
    } catch (e) {
      throw new FlagError(`--${d}: ${(e as Error).message}`);
    }
  }
  if (durations['iptables-sync-period']! < 1000) throw new FlagError(`--iptables-sync-period=${get('iptables-sync-period')}: must be at least 1s`);
  const dcp = durations['drift-check-period']!;
  if (dcp !== 0 && dcp < 50) throw new FlagError(`--drift-check-period=${get('drift-check-period')}: must be 0 (off) or at least 50ms`);
  const port = (name: string): number => {
    const v = get(name)!;
    if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) throw new FlagError(`--${name}=${JSON.stringify(v)}: expected a port number 0-65535`);
    return Number(v);
  };
  const verbosity = get('v')!;
  if (!/^\d+$/.test(verbosity)) throw new FlagError(`-v=${JSON.stringify(verbosity)}: expected a number`);
  let logLevel = get('log-level')!;
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel)) throw new FlagError(`--log-level=${JSON.stringify(logLevel)}: expected trace, debug, info, warn or error`);
  if (!raw.has('log-level') && Number(verbosity) > 0) logLevel = Number(verbosity) >= 3 ? 'trace' : 'debug';
  else if (!raw.has('log-level') && env.LOG_LEVEL) logLevel = env.LOG_LEVEL;
  const backend = get('iptables-backend')!;
  if (!['auto', 'nft', 'legacy'].includes(backend)) throw new FlagError(`--iptables-backend=${JSON.stringify(backend)}: expected auto, nft or legacy`);
  const metricsPath = get('metrics-path')!;
  if (!metricsPath.startsWith('/')) throw new FlagError(`--metrics-path=${JSON.stringify(metricsPath)}: must start with /`);
  const nodeName = get('hostname-override') || env.NODE_NAME || hostname();
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(nodeName)) throw new FlagError(`node name ${JSON.stringify(nodeName)} is not a valid Kubernetes node name (set --hostname-override)`);
  if (raw.has('manifests') && (raw.has('kubeconfig') || raw.has('master'))) throw new FlagError('--manifests cannot be combined with --kubeconfig or --master');
  for (const f of ['manifests-settle', 'manifests-state-file']) if (raw.has(f) && !raw.has('manifests')) throw new FlagError(`--${f} needs --manifests`);

  let logLimit: LogLimit;
  try {
    const rate = parseLogRate(get('netpol-log-limit')!);
    logLimit = rate === undefined ? { burst: 1 } : { rate, burst: parseLogBurst(get('netpol-log-burst')!) };
  } catch (e) {
    const which = /burst/.test((e as Error).message) ? 'netpol-log-burst' : 'netpol-log-limit';
    throw new FlagError(`--${which}: ${(e as Error).message}`);
  }

  const cfg: RunConfig = {
    nodeName,
    logLimit,
    syncPeriodMs: durations['iptables-sync-period']!,
    manifestsSettleMs: durations['manifests-settle']!,
    driftCheckPeriodMs: durations['drift-check-period']!,
    serviceClusterIPRanges: clusterRanges,
    serviceExternalIPRanges: list('service-external-ip-range').map((r) => validRange('service-external-ip-range', r, enabled)),
    loadBalancerIPRanges: list('loadbalancer-ip-range').map((r) => validRange('loadbalancer-ip-range', r, enabled)),
    nodePortRange: parseNodePortRange(get('service-node-port-range')!),
    enableIPv4,
    enableIPv6,
    defaultDeny: bool('netpol-default-deny'),
    strict: bool('netpol-strict'),
    metricsPort: port('metrics-port'),
    metricsPath,
    metricsAddr: get('metrics-addr')!,
    healthPort: port('health-port'),
    healthAddr: get('health-addr')!,
    cacheSyncTimeoutMs: durations['cache-sync-timeout']!,
    cleanupConfig: bool('cleanup-config'),
    logLevel,
    backend: backend as RunConfig['backend'],
  };
  for (const [k, f] of [
    ['kubeconfig', 'kubeconfig'],
    ['master', 'master'],
    ['manifests', 'manifests'],
    ['statusFile', 'status-file'],
    ['manifestsStateFile', 'manifests-state-file'],
  ] as const) {
    const v = raw.get(f)?.[0];
    if (v !== undefined) cfg[k] = v;
  }
  return cfg;
}

/** What the agent renders one family with, from its configuration (the agent and the tests share it). */
export function renderOptionsOf(cfg: RunConfig, family: Family): RenderOptions {
  return {
    family,
    node: cfg.nodeName,
    serviceClusterIPRanges: cfg.serviceClusterIPRanges,
    serviceExternalIPRanges: cfg.serviceExternalIPRanges,
    loadBalancerIPRanges: cfg.loadBalancerIPRanges,
    nodePortRange: cfg.nodePortRange,
    // podwall always fails closed for local pods it has not programmed (--netpol-default-deny is accepted for compatibility).
    defaultDeny: true,
    logLimit: cfg.logLimit,
  };
}

export function flagsHelp(): string {
  const lines = Object.entries(FLAGS).map(([name, s]) => {
    const arg = s.kind === 'bool' ? '[=true|false]' : s.kind === 'strings' ? ' RANGE[,RANGE]' : s.kind === 'duration' ? ' DURATION' : s.kind === 'port' || s.kind === 'int' ? ' N' : ' VALUE';
    return `  --${name}${arg}`.padEnd(44) + s.help + (s.default ? ` (default ${JSON.stringify(s.default)})` : '');
  });
  return `Usage: podwall run [flags]   (or: podwall --run-firewall[=true] [flags])\n\nFlags:\n${lines.join('\n')}\n`;
}
