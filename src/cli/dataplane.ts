// `podwall render`, `podwall apply` and `podwall cleanup`: the dataplane from the command line.
import type { Command } from 'commander';
import pino from 'pino';
import { collect, loadInput, UserError, writeOut } from './common.js';
import { compile } from '../policy/compile.js';
import { render, type Desired, type RenderOptions } from '../dataplane/render.js';
import { emptyFamilyState, planIptables, planIpset } from '../dataplane/diff.js';
import { writeIpsetRestore, writeRestore } from '../iptables/write.js';
import type { Family } from '../cluster/model.js';
import { parseNodePortRange, FlagError } from '../controller/flags.js';
import { parseCIDR, formatCIDR } from '../net/ip.js';

interface RenderFlags {
  file?: string[];
  node?: string;
  family: string;
  serviceClusterIpRange?: string[];
  serviceExternalIpRange?: string[];
  loadbalancerIpRange?: string[];
  serviceNodePortRange: string;
}

function families(text: string): Family[] {
  if (text === 'both') return ['ipv4', 'ipv6'];
  if (text === 'ipv4' || text === 'ipv6') return [text];
  throw new UserError(`--family ${JSON.stringify(text)}: expected ipv4, ipv6 or both`, 2);
}

/** A repeatable range flag (also comma-separated) as canonical CIDRs; a bad one is a usage error. */
export function ranges(flag: string, list: string[] | undefined, dflt: string[] = []): string[] {
  return (list ?? dflt).flatMap((v) => v.split(',')).map((r) => {
    const p = parseCIDR(r.trim());
    if (!p.ok) throw new UserError(`--${flag} ${JSON.stringify(r)}: not a CIDR: ${p.reason}`, 2);
    return formatCIDR(p.cidr);
  });
}

function renderOptions(o: RenderFlags, node: string): Omit<RenderOptions, 'family'> {
  let nodePortRange: [number, number];
  try {
    nodePortRange = parseNodePortRange(o.serviceNodePortRange);
  } catch (e) {
    if (e instanceof FlagError) throw new UserError(e.message, 2);
    throw e;
  }
  return {
    node,
    serviceClusterIPRanges: ranges('service-cluster-ip-range', o.serviceClusterIpRange, ['10.96.0.0/12']),
    serviceExternalIPRanges: ranges('service-external-ip-range', o.serviceExternalIpRange),
    loadBalancerIPRanges: ranges('loadbalancer-ip-range', o.loadbalancerIpRange),
    nodePortRange,
  };
}

async function desiredFor(o: RenderFlags): Promise<{ desired: Desired[]; node: string }> {
  if (!o.node) throw new UserError('--node NAME is required: only that node\'s pods get chains', 2);
  const { store } = await loadInput(o);
  if (!store.nodes.has(o.node) && store.podsOnNode(o.node).length === 0) throw new UserError(`--node ${JSON.stringify(o.node)}: no Node object and no pod on that node in the input`, 2);
  const plan = compile(store, { node: o.node });
  const opts = renderOptions(o, o.node);
  return { desired: families(o.family).map((family) => render(plan, { ...opts, family })), node: o.node };
}

function renderFlags(cmd: Command): Command {
  return cmd
    .option('-f, --file <path>', 'manifest file or folder (repeatable)', collect)
    .option('--node <name>', 'the node to render for')
    .option('--family <family>', 'ipv4 | ipv6 | both', 'ipv4')
    .option('--service-cluster-ip-range <cidr>', 'service cluster IP range (repeatable)', collect)
    .option('--service-external-ip-range <cidr>', 'service external IP range (repeatable)', collect)
    .option('--loadbalancer-ip-range <cidr>', 'load balancer IP range (repeatable)', collect)
    .option('--service-node-port-range <range>', 'NodePort range a-b', '30000-32767');
}

/** The payloads a fresh node gets: ipset restore, then iptables-restore --noflush per family. */
export function freshPayloads(desired: Desired[]): { ipset: string; iptables: { family: Family; payload: string }[] } {
  const sets = desired.flatMap((d) => d.sets);
  const ip = planIpset(sets, new Map());
  const ipset = writeIpsetRestore([...ip.early, ...ip.late].flatMap((g) => g.ops));
  const iptables = desired.map((d) => ({ family: d.family, payload: writeRestore([planIptables(d, emptyFamilyState()).table]) }));
  return { ipset, iptables };
}

export function register(program: Command): void {
  renderFlags(program.command('render').description('print the ipset and iptables-restore payloads a fresh node would get')).action(async (o: RenderFlags) => {
    const { desired, node } = await desiredFor(o);
    const p = freshPayloads(desired);
    writeOut(`# podwall render for node ${node}: ipset restore payload\n${p.ipset}`);
    for (const t of p.iptables) writeOut(`# ${t.family === 'ipv4' ? 'iptables' : 'ip6tables'}-restore --noflush payload (${t.family})\n${t.payload}`);
  });

  renderFlags(program.command('apply').description('reconcile this network namespace once (what the lab and tests use)'))
    .option('--netns <name>', 'run inside this network namespace (ip netns exec)')
    .option('--iptables-backend <backend>', 'auto | nft | legacy', 'auto')
    .action(async (o: RenderFlags & { netns?: string; iptablesBackend: string }) => {
      const { desired } = await desiredFor(o);
      const { Dataplane } = await import('../dataplane/apply.js');
      const dp = new Dataplane({ families: desired.map((d) => d.family), backend: o.iptablesBackend as 'auto', ...(o.netns ? { netns: o.netns } : {}), logger: pino({ level: 'warn' }) });
      await dp.init();
      const r = await dp.apply(desired);
      writeOut(
        `applied: ${r.chainsCreated} chains created, ${r.chainsUpdated} updated, ${r.chainsDeleted} deleted; ${r.setsCreated} sets created, ${r.setsUpdated} updated, ${r.setsDeleted} deleted; ${r.ipsetLines} ipset lines, ${r.iptablesLines} iptables lines${r.rejected?.length ? `; REJECTED by the kernel: ${r.rejected.join('; ')}` : ''}`,
      );
      if (r.rejected?.length) process.exitCode = 1;
    });

  program
    .command('cleanup')
    .description('remove every chain, jump and set podwall (or kube-router\'s firewall) created, nothing else')
    .option('--family <family>', 'ipv4 | ipv6 | both', 'both')
    .option('--netns <name>', 'run inside this network namespace (ip netns exec)')
    .option('--iptables-backend <backend>', 'auto | nft | legacy', 'auto')
    .action(async (o: { family: string; netns?: string; iptablesBackend: string }) => {
      const { Dataplane } = await import('../dataplane/apply.js');
      const dp = new Dataplane({ families: families(o.family), backend: o.iptablesBackend as 'auto', ...(o.netns ? { netns: o.netns } : {}), logger: pino({ level: 'warn' }) });
      await dp.init();
      await dp.cleanup();
      writeOut('removed every podwall / kube-router firewall chain, jump and set');
    });
}
