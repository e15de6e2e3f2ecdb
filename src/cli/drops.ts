// `podwall drops`: denied connections as they happen on this node, each with the policy and rule
// behind it (NFLOG through tcpdump, joined with the Plan by drops/join.ts), or the would-be denials of
// audited policies (--audit). Flags, sources and printing only; the stream is drops/stream.ts.
import type { Command } from 'commander';
import { readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { ClusterStore } from '../cluster/store.js';
import { ManifestSource } from '../cluster/manifest-source.js';
import { formatFinding } from '../cluster/findings.js';
import { parseDuration, FlagError } from '../controller/flags.js';
import { StorePlanSource } from '../drops/plan-source.js';
import { DropsError, joinCapture, streamDrops, type DropsFilter, type DropsSource } from '../drops/stream.js';
import { PcapError } from '../drops/nflog-pcap.js';
import { dropJson, dropText, suppressedJson, suppressedText } from '../report/drops.js';
import { collect, loadInput, UserError, writeOut } from './common.js';
import { outputFormat } from './matrix.js';

export interface DropsCliOptions {
  file?: string[];
  kubeconfig?: string;
  node?: string;
  namespace?: string;
  pod?: string;
  policy?: string;
  since?: string;
  audit?: boolean;
  output: string;
  read?: string;
  count?: string;
  countersInterval: string;
  netns?: string;
}

/** `--since 10m` (a duration back from now) or an RFC 3339 time. */
export function sinceOption(text: string | undefined, now = Date.now()): number | undefined {
  if (text === undefined) return undefined;
  if (/^\d{4}-\d{2}-\d{2}T/.test(text)) {
    const t = Date.parse(text);
    if (Number.isNaN(t)) throw new UserError(`--since ${JSON.stringify(text)}: not a time (e.g. 2026-01-31T12:00:00Z)`, 2);
    return t;
  }
  try {
    return now - parseDuration(text);
  } catch (e) {
    if (e instanceof FlagError) throw new UserError(`--since ${JSON.stringify(text)}: expected a duration (10m, 1h30m) or an RFC 3339 time`, 2);
    throw e;
  }
}

export function filterOptions(o: DropsCliOptions): DropsFilter {
  const f: DropsFilter = { audit: o.audit === true };
  if (o.namespace !== undefined) f.namespace = o.namespace;
  if (o.pod !== undefined) {
    const pod = o.pod.includes('/') ? o.pod : o.namespace !== undefined ? `${o.namespace}/${o.pod}` : undefined;
    if (pod === undefined || !/^[^/\s]+\/[^/\s]+$/.test(pod)) throw new UserError(`--pod ${JSON.stringify(o.pod)}: expected namespace/pod (or a name with --namespace)`, 2);
    f.pod = pod;
  }
  if (o.policy !== undefined) {
    // A ClusterNetworkPolicy has no namespace: `cnp:NAME`, as drops names it.
    const cnp = /^cnp:[^/\s:]+$/.test(o.policy);
    const p = cnp || o.policy.includes('/') ? o.policy : o.namespace !== undefined ? `${o.namespace}/${o.policy}` : undefined;
    if (p === undefined || !(cnp || /^[^/\s:]+\/[^/\s]+$/.test(p))) throw new UserError(`--policy ${JSON.stringify(o.policy)}: expected namespace/name (or a name with --namespace), or cnp:NAME for a ClusterNetworkPolicy`, 2);
    f.policy = p;
  }
  const since = sinceOption(o.since);
  if (since !== undefined) f.since = since;
  return f;
}

function countOption(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1) throw new UserError(`--count ${JSON.stringify(text)}: expected a whole number ≥ 1`, 2);
  return Number(text);
}

/** Keeps a store current from -f inputs (a single directory is watched) or the API server. */
async function clusterStore(o: DropsCliOptions): Promise<{ store: ClusterStore; stop: () => Promise<void> }> {
  const files = o.file ?? [];
  if (files.length === 1 && (await stat(files[0]!).catch(() => undefined))?.isDirectory()) {
    const store = new ClusterStore();
    const src = new ManifestSource(files[0]!, store, (r) => {
      for (const f of r.findings) if (f.severity === 'error') process.stderr.write(`${formatFinding(f)}\n`);
    });
    await src.start();
    return { store, stop: async () => src.stop() };
  }
  if (files.length > 0) {
    const { store } = await loadInput({ file: files }, { allowErrors: true });
    return { store, stop: async () => {} };
  }
  // The API server, as the agent reads it (in-cluster config, then ~/.kube/config).
  const { informerSource } = await import('../controller/informer-source.js');
  const pino = (await import('pino')).default;
  const store = new ClusterStore();
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const src = informerSource(store, { ...(o.kubeconfig ? { kubeconfig: o.kubeconfig } : {}), logger });
  try {
    await src.start();
  } catch (e) {
    throw new UserError(`cannot reach the API server: ${(e as Error).message} (give -f DIR with the cluster's manifests, or --kubeconfig)`);
  }
  if (!(await src.waitForSync(30_000))) {
    await src.stop();
    throw new UserError('the API server did not list pods, policies and namespaces within 30s (give -f DIR with the cluster\'s manifests, or --kubeconfig)');
  }
  return { store, stop: () => src.stop() };
}

/** Streams until interrupted (or --count records); shared by `podwall drops` and `podwall lab drops`. */
export async function runDrops(o: DropsCliOptions, sources: DropsSource[], input: () => Promise<{ store: ClusterStore; stop: () => Promise<void> }>): Promise<void> {
  const format = outputFormat(o.output, ['text', 'json']);
  const filter = filterOptions(o);
  const max = countOption(o.count);
  let interval: number;
  try {
    interval = parseDuration(o.countersInterval);
  } catch {
    throw new UserError(`--counters-interval ${JSON.stringify(o.countersInterval)}: expected a duration (5s, 1m) or 0`, 2);
  }
  const { store, stop: stopInput } = await input();
  const plans = new StorePlanSource(store);

  if (o.read !== undefined) {
    let bytes: Buffer;
    try {
      bytes = await readFile(o.read);
    } catch (e) {
      throw new UserError(`-r ${o.read}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    try {
      let n = 0;
      for (const r of joinCapture(bytes, plans.plan(), filter, sources[0]?.node)) {
        if (max !== undefined && n++ >= max) break;
        writeOut(format === 'json' ? dropJson(r) : dropText(r));
      }
    } catch (e) {
      if (e instanceof PcapError) throw new UserError(`-r ${o.read}: ${e.message} (write one with tcpdump -i nflog:100 -w FILE)`);
      throw e;
    } finally {
      await stopInput();
    }
    return;
  }

  let printed = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((r) => (finish = r));
  let stream;
  try {
    stream = await streamDrops({
      sources,
      plan: plans,
      filter,
      counterIntervalMs: interval,
      onRecord: (r) => {
        if (max !== undefined && printed >= max) return;
        writeOut(format === 'json' ? dropJson(r) : dropText(r));
        if (max !== undefined && ++printed >= max) finish();
      },
      onSuppressed: (s) => writeOut(format === 'json' ? suppressedJson(s) : suppressedText(s)),
      onNotice: (t) => process.stderr.write(`podwall drops: ${t}\n`),
    });
  } catch (e) {
    await stopInput();
    if (e instanceof DropsError) throw new UserError(e.message);
    throw e;
  }
  process.stderr.write(`podwall drops: reading NFLOG group 100 on ${sources.map((s) => s.node ?? s.netns ?? 'this node').join(', ')}${filter.audit ? ' (audited policies: would-be denials)' : ''}; Ctrl-C stops\n`);
  const onSignal = () => finish();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const ended = await Promise.race([finished.then(() => undefined), stream.done]);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  await stream.stop();
  await stopInput();
  if (ended?.error) throw new UserError(ended.error);
}

export function register(program: Command): void {
  program
    .command('drops')
    .description('stream denied connections on this node as they happen, each with the policy and rule behind it (--audit: what audited policies would deny)')
    .option('-f, --file <path>', 'the cluster\'s manifests (repeatable; a single directory is followed as it changes); default: the API server', collect)
    .option('--kubeconfig <path>', 'kubeconfig for the API server (default: in-cluster, then ~/.kube/config)')
    .option('--node <name>', 'this node\'s name, for the output (default $NODE_NAME, else the hostname)')
    .option('--namespace <ns>', 'only connections from or to this namespace')
    .option('--pod <ns/name>', 'only connections from or to this pod')
    .option('--policy <ns/name>', 'only denials this policy takes part in (cnp:NAME: a ClusterNetworkPolicy)')
    .option('--since <when>', 'with -r: only entries since a duration ago (10m) or an RFC 3339 time')
    .option('--audit', 'show what audited policies would deny (the connections were let through) instead of denials')
    .option('-o, --output <format>', 'text | json (one object per line)', 'text')
    .option('-r, --read <file>', 'join a saved capture (tcpdump -i nflog:100 -w FILE) instead of streaming')
    .option('-c, --count <n>', 'stop after n entries')
    .option('--counters-interval <duration>', 'how often the kernel counters are read to report entries the rate limit suppressed (0: never)', '5s')
    .option('--netns <name>', 'read inside network namespace NAME (ip netns exec)')
    .action(async (o: DropsCliOptions) => {
      if (o.since !== undefined && o.read === undefined) {
        throw new UserError('--since needs -r FILE: NFLOG keeps no history (record one with tcpdump -i nflog:100 -w FILE); live entries are always new', 2);
      }
      const node = o.node ?? process.env.NODE_NAME ?? hostname();
      await runDrops(o, [{ node, ...(o.netns !== undefined ? { netns: o.netns } : {}) }], () => clusterStore(o));
    });
}
