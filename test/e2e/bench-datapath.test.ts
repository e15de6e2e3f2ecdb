// The datapath benchmark (root): a short run measures every layout through the pods' chains, and a
// run that cannot create its namespaces fails with one line. Figures are never asserted here.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { datapathCluster, runDatapath } from '../../src/bench/datapath.js';
import { compile } from '../../src/policy/compile.js';
import { render } from '../../src/dataplane/render.js';
import { podChainName } from '../../src/dataplane/names.js';
import { kubeRouterFullSync } from '../../src/bench/kube-router-layout.js';

const MAIN = fileURLToPath(new URL('../../src/bench/main.js', import.meta.url));

test('the benchmark cluster: every pod isolated, the pair last in both layouts', (t) => {
  const store = datapathCluster(40);
  const plan = compile(store, { node: 'bench-node' });
  t.is(plan.pods.length, 40);
  t.true(plan.pods.every((p) => p.ingressPolicies.length > 0 && p.egressPolicies.length > 0));
  const d = render(plan, { family: 'ipv4', node: 'bench-node', serviceClusterIPRanges: [], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] });
  // podwall: the server is the last rule on every level of the destination tree
  let chain = d.chains.find((c) => c.name === 'PODWALL-DST-PODS')!;
  while (chain.rules.at(-1)!.args.at(-1)!.startsWith('PODWALL-')) chain = d.chains.find((c) => c.name === chain.rules.at(-1)!.args.at(-1))!;
  t.is(chain.rules.at(-1)!.args.at(-1), podChainName('bench', 'zz-server'));
  // kube-router: the pair's jumps end KUBE-ROUTER-FORWARD (before the two tail rules)
  const kr = kubeRouterFullSync(store, { node: 'bench-node', families: ['ipv4'] }).families[0]!.iptablesRestore.split('\n');
  const fwd = kr.filter((l) => l.startsWith('-A KUBE-ROUTER-FORWARD '));
  t.true(fwd.slice(-6, -2).every((l) => l.includes('bench/zz-server')), fwd.slice(-6).join('\n'));
  t.is(fwd.length, 4 * 40 + 2);
});

test('a short run measures every layout, and each connection went through the server pod chain', async (t) => {
  const r = await runDatapath({ pods: [3, 40], seconds: 1, repeat: 1 });
  t.deepEqual(r.points.map((p) => p.pods), [3, 40]);
  for (const p of r.points) {
    for (const l of p.layouts) {
      t.true(l.tcpMedian > 0 && l.udpMedian > 0, `${p.pods} ${l.layout}: ${l.tcpMedian} conn/s, ${l.udpMedian} dgram/s`);
      if (l.layout === 'podwall' || l.layout === 'kube-router') t.true(l.throughPodChain! >= 0.9, `${p.pods} ${l.layout}: ${l.throughPodChain} of the connections counted in the server's pod chain`);
    }
    // every ratio is paired with the no-rules run of its own round: none ÷ none is 1 in every round
    const none = p.layouts.find((l) => l.layout === 'none')!;
    t.deepEqual([none.tcpRatio, none.udpRatio, ...none.tcpRatioRange, ...none.udpRatioRange], [1, 1, 1, 1, 1, 1]);
    for (const l of p.layouts) t.true(l.tcpRatioRange[0] <= l.tcpRatio && l.tcpRatio <= l.tcpRatioRange[1] && l.udpRatioRange[0] <= l.udpRatio && l.udpRatio <= l.udpRatioRange[1]);
    t.is(p.layouts.find((l) => l.layout === 'kube-router')!.forwardRules, 4 * p.pods + 2);
    t.is(p.layouts.find((l) => l.layout === 'none')!.forwardRules, 0);
    // no rules leaves connection tracking off; the one kube-proxy rule and both layouts turn it on
    t.deepEqual(p.layouts.map((l) => [l.layout, l.tracked]), [['none', false], ['conntrack', true], ['podwall', true], ['kube-router', true]]);
  }
  // flatness pairs podwall at 40 pods with podwall at 3 pods in the same round
  const pw = (n: number) => r.points.find((p) => p.pods === n)!.layouts.find((l) => l.layout === 'podwall')!;
  // (the per-run rates are printed rounded to whole connections: compare to within rounding)
  t.true(Math.abs(r.targets.tcpFlatness! - pw(40).tcp[0]! / pw(3).tcp[0]!) < 0.002, `${r.targets.tcpFlatness} vs ${pw(40).tcp[0]} / ${pw(3).tcp[0]}`);
  t.log(JSON.stringify(r.targets));
});

test('a run that cannot create its namespaces fails with one line', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podwall-bench-'));
  try {
    // `ip` that cannot make namespaces (as in a container without CAP_SYS_ADMIN); python3 is the real one
    writeFileSync(join(dir, 'ip'), '#!/bin/sh\necho "mount --make-shared /run/netns failed: Operation not permitted" >&2\nexit 1\n');
    chmodSync(join(dir, 'ip'), 0o755);
    const python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
    symlinkSync(python, join(dir, 'python3'));
    const r = spawnSync(process.execPath, [MAIN, '--datapath', '--pods', '3', '--seconds', '1', '--repeat', '1'], { encoding: 'utf8', env: { ...process.env, PATH: dir } });
    const errLines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('bench: ') || !/round|pods,/.test(l));
    t.is(r.status, 1);
    t.is(errLines.length, 1, r.stderr);
    t.regex(errLines[0]!, /^bench: cannot build the benchmark's namespaces: .*Operation not permitted$/);
    t.is(r.stdout, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad --datapath arguments are one line, exit 2', (t) => {
  for (const args of [['--pods', '1'], ['--pods', 'ten'], ['--seconds', '0'], ['--nope']]) {
    const r = spawnSync(process.execPath, [MAIN, '--datapath', ...args], { encoding: 'utf8' });
    t.is(r.status, 2, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, /^bench: /);
  }
});
