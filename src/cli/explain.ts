import type { Command } from 'commander';
import { collect, loadInput, UserError, writeOut } from './common.js';
import { analysisPlan, namespaceOption, podCidrOption, POD_CIDR_HELP, printInputNotes } from './analysis.js';
import { EndpointError, explain, formatExplanation, resolveEndpoint } from '../sim/explain.js';
import { outputFormat, portsOption } from './matrix.js';

export function register(program: Command): void {
  program
    .command('explain')
    .description('explain the verdict for one connection: which policy and rule allow it, or the nearest miss')
    .option('-f, --file <path>', 'manifest file or folder (repeatable)', collect)
    .requiredOption('--from <endpoint>', 'source: namespace/pod, namespace/name[Kind] or an IP')
    .requiredOption('--to <endpoint>', 'destination: namespace/pod, namespace/name[Kind] or an IP')
    .requiredOption('--port <port>', 'destination port and protocol, e.g. 80/TCP')
    .option('--pod-cidr <cidr>', POD_CIDR_HELP, collect)
    .option('-n, --namespace <ns>', 'as kubectl: objects without a namespace go to NS, and bare names in --from/--to are in NS')
    .option('-o, --output <format>', 'text | json', 'text')
    .action(async (opts: { file?: string[]; from: string; to: string; port: string; podCidr?: string[]; namespace?: string; output: string }) => {
      const format = outputFormat(opts.output, ['text', 'json']);
      const ports = portsOption(opts.port)!;
      if (ports.length !== 1) throw new UserError('--port takes one port, e.g. 80/TCP', 2);
      const podCidr = podCidrOption(opts.podCidr);
      const namespace = namespaceOption(opts.namespace);
      const { store } = await loadInput(opts);
      printInputNotes(store);
      const plan = analysisPlan(store, podCidr);
      let x;
      try {
        x = explain(plan, resolveEndpoint(plan, opts.from, 'from', namespace), resolveEndpoint(plan, opts.to, 'to', namespace), ports[0]!.protocol, ports[0]!.port);
      } catch (e) {
        if (e instanceof EndpointError) throw new UserError(e.message, 2);
        throw e;
      }
      if (format === 'json') {
        writeOut(
          JSON.stringify(
            {
              from: x.from,
              to: x.to,
              port: x.port,
              protocol: x.protocol,
              allowed: x.verdict.allowed,
              summary: x.verdict.summary,
              egress: { outcome: x.egress.verdict.outcome, decidedIn: x.egress.verdict.decidedIn, policies: x.egress.verdict.policies, allowedBy: x.egress.verdict.allowedBy, maybeBy: x.egress.verdict.maybeBy, clusterRule: x.egress.verdict.clusterRule, text: x.egress.text, rules: x.egress.rules, nearest: x.egress.nearest, tiers: x.egress.tiers },
              ingress: { outcome: x.ingress.verdict.outcome, decidedIn: x.ingress.verdict.decidedIn, policies: x.ingress.verdict.policies, allowedBy: x.ingress.verdict.allowedBy, maybeBy: x.ingress.verdict.maybeBy, clusterRule: x.ingress.verdict.clusterRule, text: x.ingress.text, rules: x.ingress.rules, nearest: x.ingress.nearest, tiers: x.ingress.tiers },
              // Audited policies: the same connection once they are enforced.
              ...(x.audit
                ? {
                    audit: {
                      allowed: x.audit.verdict.allowed,
                      change: x.audit.verdict.change,
                      policies: x.audit.verdict.policies,
                      text: x.audit.text,
                      egress: { outcome: x.audit.egress.verdict.outcome, policies: x.audit.egress.verdict.policies, text: x.audit.egress.text, rules: x.audit.egress.rules, nearest: x.audit.egress.nearest },
                      ingress: { outcome: x.audit.ingress.verdict.outcome, policies: x.audit.ingress.verdict.policies, text: x.audit.ingress.text, rules: x.audit.ingress.rules, nearest: x.audit.ingress.nearest },
                    },
                  }
                : {}),
            },
            null,
            2,
          ),
        );
      } else writeOut(formatExplanation(x));
    });
}
