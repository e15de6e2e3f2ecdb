// `podwall trace`: "which rule drops my packet?" — flags, then the walk in dataplane/trace.ts, printed
// by report/trace.ts.
//
//   rendered: podwall trace -f PATH... [--node NAME] --from EP --to EP --port 80/TCP [-o text|json]
//   live:     podwall trace --live --from IP --to IP --port 80/TCP [--netns NAME]
import type { Command } from 'commander';
import { collect, loadInput, UserError, writeOut } from './common.js';
import { outputFormat, portsOption } from './matrix.js';
import { TraceError, traceLive, traceRendered, type TraceQuery, type TraceReport } from '../dataplane/trace.js';
import { formatTrace, traceJson } from '../report/trace.js';

function nodePortRange(text: string): [number, number] {
  const m = /^(\d{1,5})[-:](\d{1,5})$/.exec(text);
  const lo = m ? Number(m[1]) : NaN;
  const hi = m ? Number(m[2]) : NaN;
  if (!m || lo < 1 || hi > 65535 || lo > hi) throw new UserError(`--service-node-port-range ${JSON.stringify(text)}: expected a-b within 1-65535, e.g. 30000-32767`, 2);
  return [lo, hi];
}

interface CliOptions {
  file?: string[];
  node?: string;
  from: string;
  to: string;
  port: string;
  output: string;
  live?: boolean;
  netns?: string;
  bridge?: string;
  uplink: string;
  serviceClusterIpRange?: string[];
  serviceExternalIpRange?: string[];
  loadbalancerIpRange?: string[];
  serviceNodePortRange: string;
  verbose?: boolean;
}

/** Registers `podwall trace` (main.ts: `import { register as trace } from './trace.js'`). */
export function register(program: Command): void {
  program
    .command('trace')
    .description('which rule drops my packet? walk a packet through the filter table rule by rule (rendered from manifests, or --live on this node)')
    .option('-f, --file <path>', 'manifest file or folder (repeatable); not with --live', collect)
    .option('--node <name>', 'trace only this node\'s rules (default: every node the packet passes)')
    .requiredOption('--from <endpoint>', 'source: namespace/pod or an IP (--live: an IP)')
    .requiredOption('--to <endpoint>', 'destination: namespace/pod or an IP (--live: an IP)')
    .requiredOption('--port <port>', 'destination port and protocol, e.g. 80/TCP')
    .option('-o, --output <format>', 'text | json', 'text')
    .option('--live', 'trace through this node\'s installed rules (iptables-save, ipset save; read-only)')
    .option('--netns <name>', 'with --live: read inside network namespace NAME (ip netns exec)')
    .option('--bridge <name>', 'the pod bridge (rendered: default kube-bridge; --live: default the bridge holding an address of podwall\'s pod CIDRs, pods behind host routes counting as routed)')
    .option('--uplink <name>', 'rendered mode: the interface towards other nodes', 'eth0')
    .option('--service-cluster-ip-range <cidr>', 'rendered mode: service cluster IP range (repeatable; default 10.96.0.0/12)', collect)
    .option('--service-external-ip-range <cidr>', 'rendered mode: service external IP range (repeatable)', collect)
    .option('--loadbalancer-ip-range <cidr>', 'rendered mode: load balancer IP range (repeatable)', collect)
    .option('--service-node-port-range <a-b>', 'rendered mode: NodePort range', '30000-32767')
    .option('-v, --verbose', 'report what was read')
    .action(async (opts: CliOptions) => {
      const format = outputFormat(opts.output, ['text', 'json']);
      const ports = portsOption(opts.port)!;
      if (ports.length !== 1) throw new UserError('--port takes one port, e.g. 80/TCP', 2);
      const q: TraceQuery = { from: opts.from, to: opts.to, protocol: ports[0]!.protocol, port: ports[0]!.port };
      let report: TraceReport;
      try {
        if (opts.live) {
          if (opts.file?.length) throw new UserError('--live reads this node\'s rules: it takes no -f manifests', 2);
          report = await traceLive(q, { ...(opts.netns !== undefined ? { netns: opts.netns } : {}), ...(opts.bridge !== undefined ? { bridge: opts.bridge } : {}), ...(opts.node !== undefined ? { node: opts.node } : {}) });
        } else {
          if (opts.netns !== undefined) throw new UserError('--netns goes with --live', 2);
          const { store } = await loadInput(opts);
          report = traceRendered(store, q, {
            ...(opts.node !== undefined ? { node: opts.node } : {}),
            bridge: opts.bridge ?? 'kube-bridge',
            uplink: opts.uplink,
            render: {
              serviceClusterIPRanges: opts.serviceClusterIpRange ?? ['10.96.0.0/12'],
              serviceExternalIPRanges: opts.serviceExternalIpRange ?? [],
              loadBalancerIPRanges: opts.loadbalancerIpRange ?? [],
              nodePortRange: nodePortRange(opts.serviceNodePortRange),
            },
          });
        }
      } catch (e) {
        if (e instanceof TraceError) throw new UserError(e.message, e.exitCode);
        throw e;
      }
      writeOut(format === 'json' ? JSON.stringify(traceJson(report), null, 2) : formatTrace(report));
      // A disagreement nobody explains is a bug: make scripts notice.
      if (report.agree === false && report.disagreement?.startsWith('BUG')) process.exitCode = 3;
    });
}

/** The same as `register`, under a name that says what it registers. */
export const registerTrace = register;
