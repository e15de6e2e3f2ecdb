import type { Command } from 'commander';
import { collect, loadInput, nothingRead, nothingToAnalyse, UserError, writeOut } from './common.js';
import { ranges } from './dataplane.js';
import { lintServices } from '../cluster/service-lint.js';
import type { ServiceRanges } from '../cluster/service-exemptions.js';
import { FlagError, parseNodePortRange } from '../controller/flags.js';
import { formatFinding, hasErrors } from '../cluster/findings.js';
import { lint } from '../policy/lint.js';
import { outputFormat } from './matrix.js';
import { namespaceOption } from './analysis.js';

interface LintFlags {
  file?: string[];
  output: string;
  verbose?: boolean;
  namespace?: string;
  serviceClusterIpRange?: string[];
  serviceExternalIpRange?: string[];
  loadbalancerIpRange?: string[];
  serviceNodePortRange?: string;
}

/** The agent's range flags, for the Service address warnings (service-lint.ts). */
function serviceRanges(o: LintFlags): ServiceRanges {
  let nodePort: [number, number] = [30000, 32767];
  if (o.serviceNodePortRange !== undefined) {
    try {
      nodePort = parseNodePortRange(o.serviceNodePortRange);
    } catch (e) {
      if (e instanceof FlagError) throw new UserError(e.message, 2);
      throw e;
    }
  }
  return {
    clusterIP: ranges('service-cluster-ip-range', o.serviceClusterIpRange),
    externalIP: ranges('service-external-ip-range', o.serviceExternalIpRange),
    loadBalancerIP: ranges('loadbalancer-ip-range', o.loadbalancerIpRange),
    nodePort,
  };
}

export function register(program: Command): void {
  program
    .command('lint')
    .description('report invalid objects (errors, exit 1) and what reviewers miss (warnings)')
    .option('-f, --file <path>', 'manifest file or folder (repeatable)', collect)
    .option('-o, --output <format>', 'text | json', 'text')
    .option('-v, --verbose', 'report what was read and skipped')
    .option('-n, --namespace <ns>', 'as kubectl: objects without a namespace go to NS (default: default)')
    .option('--service-cluster-ip-range <cidr>', 'the agent\'s service cluster IP range (repeatable): warn about cluster IPs outside it', collect)
    .option('--service-external-ip-range <cidr>', 'the agent\'s service external IP range (repeatable): warn about external IPs outside it (none given: every one)', collect)
    .option('--loadbalancer-ip-range <cidr>', 'the agent\'s load balancer IP range (repeatable): warn about load-balancer IPs outside it (none given: every one)', collect)
    .option('--service-node-port-range <a-b>', 'the agent\'s NodePort range: warn about node ports outside it')
    .action(async (opts: LintFlags) => {
      const format = outputFormat(opts.output, ['text', 'json']);
      // lint prints every finding itself, once (on stdout): loadInput stays quiet.
      const namespace = namespaceOption(opts.namespace);
      const r = await loadInput({ ...(opts.file ? { file: opts.file } : {}), ...(opts.verbose ? { verbose: true } : {}), ...(namespace !== undefined ? { namespace } : {}) }, { allowErrors: true, quiet: true });
      if (nothingRead(r) && !hasErrors(r.findings)) throw new UserError(nothingToAnalyse(r, 'nothing to lint'));
      const findings = [...r.findings, ...lint(r.store), ...lintServices(r.store, serviceRanges(opts), { clusterIPRangeGiven: opts.serviceClusterIpRange !== undefined, nodePortRangeGiven: opts.serviceNodePortRange !== undefined })];
      if (format === 'json') writeOut(JSON.stringify({ findings }, null, 2));
      else {
        for (const f of findings) writeOut(formatFinding(f));
        const e = findings.filter((f) => f.severity === 'error').length;
        writeOut(`${e} error(s), ${findings.length - e} warning(s)`);
      }
      if (hasErrors(findings)) process.exitCode = 1;
    });
}
