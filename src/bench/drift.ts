// `npm run bench -- --drift [--profile S|M|L]`: what the drift watcher costs and how fast a repair is,
// per backend, on the profile's local node inside network namespaces made here:
//   - one check of each kind (the watcher's tick: set headers; without nft monitor also the tables;
//     every 20th tick everything), median of 20 — its cost per second at the default period;
//   - one repair (a resync after tampering: read back until two reads agree, write the difference)
//     for a flushed KUBE-ROUTER-FORWARD, podwall's jump pushed to FORWARD 2, a smuggled set member.
// Every command runs through `ip netns exec`, which the agent (already in its namespace) does not
// pay: that overhead is measured and reported apart.
import { execFileSync } from 'node:child_process';
import pino from 'pino';
import { Dataplane } from '../dataplane/apply.js';
import { render, type Desired } from '../dataplane/render.js';
import { IncrementalCompiler } from '../policy/incremental.js';
import { generateCluster, loadIntoStore, type ProfileName } from './generator.js';
import { percentile } from './stats.js';

export interface DriftBench {
  profile: string;
  localPods: number;
  chains: number;
  members: number;
  netnsExecMs: number;
  backends: {
    backend: 'nft' | 'legacy';
    checkMs: { setHeaders: number; withTables: number; everything: number };
    /** CPU-time share of one core at the default 500 ms period (the tick the backend runs). */
    tickCostAt500ms: number;
    repairMs: Record<string, number>;
  }[];
}

const round = (x: number) => Math.round(x * 10) / 10;

export async function runDrift(o: { profile: ProfileName; seed: number; newNamespace: (tag: string) => string; progress: (s: string) => void }): Promise<DriftBench> {
  const cluster = generateCluster(o.profile, o.seed);
  const store = loadIntoStore(cluster);
  const plan = new IncrementalCompiler(store, cluster.localNode).build();
  const desired: Desired[] = [render(plan, { family: 'ipv4', node: cluster.localNode, serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] })];
  const out: DriftBench = {
    profile: cluster.profile.name,
    localPods: plan.pods.length,
    chains: desired[0]!.chains.length,
    members: desired[0]!.sets.reduce((n, s) => n + s.members.length, 0),
    netnsExecMs: 0,
    backends: [],
  };
  for (const backend of ['nft', 'legacy'] as const) {
    const ns = o.newNamespace(`drift-${backend}`);
    const sh = (cmd: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (out.netnsExecMs === 0) {
      const t: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        sh(['true']);
        t.push(performance.now() - t0);
      }
      out.netnsExecMs = round(percentile(t, 50));
    }
    const dp = new Dataplane({ netns: ns, backend, families: ['ipv4'], logger: pino({ level: 'silent' }) });
    await dp.init();
    o.progress(`drift (${backend}): applying ${out.chains} chains, ${out.members} members`);
    await dp.apply(desired);
    const time = async (fn: () => Promise<unknown>, n: number): Promise<number> => {
      const t: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await fn();
        t.push(performance.now() - t0);
      }
      return round(percentile(t, 50));
    };
    o.progress(`drift (${backend}): checks`);
    const checkMs = {
      setHeaders: await time(() => dp.checkDrift({ tables: false, members: false }), 20),
      withTables: await time(() => dp.checkDrift({ tables: true, members: false }), 20),
      everything: await time(() => dp.checkDrift({ tables: true, members: true }), 20),
    };
    // The agent's tick: set headers with nft monitor running, the tables too on legacy; each 20th everything.
    const tick = backend === 'nft' ? checkMs.setHeaders : checkMs.withTables;
    const perTick = (19 * tick + checkMs.everything) / 20;
    const peer = desired[0]!.sets.find((s) => s.name.startsWith('KUBE-SRC-') && s.members.length > 0);
    const tampers: [string, () => void][] = [
      ['flushed KUBE-ROUTER-FORWARD', () => sh([`iptables-${backend}`, '-F', 'KUBE-ROUTER-FORWARD'])],
      ['jump pushed to FORWARD 2', () => sh([`iptables-${backend}`, '-I', 'FORWARD', '1', '-j', 'ACCEPT'])],
      ...(peer ? [['smuggled set member', () => sh(['ipset', 'add', peer.name, '198.51.100.77'])] as [string, () => void]] : []),
    ];
    const repairMs: Record<string, number> = {};
    for (const [name, tamper] of tampers) {
      o.progress(`drift (${backend}): repair of ${name}`);
      repairMs[name] = await time(async () => {
        tamper();
        const r = await dp.resync(desired);
        if (r.drift === 0) throw new Error(`bench: ${name}: the resync saw no drift`);
      }, 10);
      if (name.startsWith('jump')) sh([`iptables-${backend}`, '-D', 'FORWARD', '-j', 'ACCEPT']);
    }
    out.backends.push({ backend, checkMs, tickCostAt500ms: Math.round((perTick / 500) * 1000) / 1000, repairMs });
  }
  return out;
}

export function driftTable(r: DriftBench): string {
  const lines = [`drift watcher — profile ${r.profile}: ${r.localPods} local pods, ${r.chains} chains, ${r.members} set members (medians; every command through ip netns exec, ${r.netnsExecMs} ms each, which the agent does not pay)`];
  for (const b of r.backends) {
    lines.push(`  ${b.backend}: check — set headers ${b.checkMs.setHeaders} ms, + tables ${b.checkMs.withTables} ms, everything ${b.checkMs.everything} ms; tick cost at 500 ms ≈ ${Math.round(b.tickCostAt500ms * 1000) / 10}% of a core`);
    lines.push(`  ${b.backend}: repair (read until stable + write) — ${Object.entries(b.repairMs).map(([k, v]) => `${k} ${v} ms`).join(', ')}`);
  }
  return lines.join('\n');
}
