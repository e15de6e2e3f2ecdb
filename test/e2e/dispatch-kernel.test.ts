// Kernel test of the dispatch trees with real packets (root): one node namespace with a bridge, a
// client pod and two server pods, plus ~300 isolated pods that exist only as IPs in the rules (a long
// dispatch). A pod added at the end of the dispatch is enforced both ways; removing pods, the last
// one in its leaf or half of all, leaves every other pod enforced; a removed pod's IP fails closed.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterStore } from '../../src/cluster/store.js';
import { compile } from '../../src/policy/compile.js';
import { render } from '../../src/dataplane/render.js';
import { Dataplane } from '../../src/dataplane/apply.js';
import { podChainName } from '../../src/dataplane/names.js';
import { NodeNetns } from '../../src/bench/datapath-node.js';
import { spawnUntilReady } from '../../src/lab/netns.js';
import { SERVER_MAIN } from '../../src/lab/servers.js';
import { probeAllDetailed, type ProbePair } from '../../src/lab/probe.js';
import { formatIP } from '../../src/net/ip.js';
import { parseIptablesSave } from '../../src/iptables/parse.js';
import { sh } from '../support/kernel.js';
import { applyObjects } from '../support/expectations.js';
import { policy, type Raw } from '../support/conformance.js';

let node: NodeNetns | undefined;
const servers: number[] = [];
const logDir = mkdtempSync(join(tmpdir(), 'podwall-dispatch-'));
test.after.always(async () => {
  for (const pid of servers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await node?.destroy();
  rmSync(logDir, { recursive: true, force: true });
});

const NODE = 'n1';
const ip = (n: number) => formatIP('ipv4', 0x0af40000n + BigInt(n)); // 10.244.0.0 + n
const CLIENT = ip(2);
const A = ip(150); // in the middle of the fill pods
const B = ip(304); // the highest address (10.244.1.48): the last rule of the last leaf of the last branch
const FILL = Array.from({ length: 301 }, (_, i) => ip(i + 3)).filter((x) => x !== A);

const pod = (ns: string, name: string, podIP: string, labels: Record<string, string>): Raw => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: ns, labels },
  spec: { nodeName: NODE, containers: [{ name: 's', image: 'x' }] },
  status: { phase: 'Running', podIP, podIPs: [{ ip: podIP }] },
});

const BASE: Raw[] = [
  { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE }, spec: { podCIDRs: ['10.244.0.0/22'] }, status: { addresses: [{ type: 'InternalIP', address: '172.18.0.2' }] } },
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'app' } },
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'cli' } },
  pod('cli', 'client', CLIENT, { role: 'client' }),
  pod('app', 'a', A, { role: 'real' }),
  ...FILL.map((x, i) => pod('app', `fill-${i}`, x, { role: 'fill' })),
  // every app pod isolated for ingress; only TCP 80 from the cli namespace is allowed
  policy('app', 'ingress-80-from-cli', { podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'cli' } } }], ports: [{ port: 80, protocol: 'TCP' }] }] }),
  // the real pods isolated for egress too: only TCP 80 to the cli namespace
  policy('app', 'egress-80-to-cli', { podSelector: { matchLabels: { role: 'real' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'cli' } } }], ports: [{ port: 80, protocol: 'TCP' }] }] }),
];

function desired(store: ClusterStore) {
  return [render(compile(store, { node: NODE }), { family: 'ipv4', node: NODE, serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] })];
}

test('a pod added at the end of a long dispatch is enforced; removing pods leaves the others enforced', async (t) => {
  node = await NodeNetns.create('10.244.0.0/22');
  const ns: Record<string, string> = {};
  for (const [name, addr] of [['client', CLIENT], ['a', A], ['b', B]] as const) {
    const p = await node.addPod(addr);
    ns[name] = p.ns;
    servers.push(
      await spawnUntilReady('ip', ['netns', 'exec', p.ns, process.execPath, SERVER_MAIN, '--id', name, '--tcp', '80,81', '--udp', '80,81'], join(logDir, `${name}.log`), 20_000, {
        timeout: (tail) => new Error(`server ${name} not ready: ${tail}`),
        cannotStart: (m) => new Error(`server ${name}: ${m}`),
        exited: (why, tail) => new Error(`server ${name} exited (${why}): ${tail}`),
      }),
    );
  }
  const store = new ClusterStore();
  applyObjects(store, BASE);
  const dp = new Dataplane({ netns: node.ns, backend: 'nft', families: ['ipv4'] });
  await dp.init();
  await dp.apply(desired(store));

  type Check = [string, string, number, 'TCP' | 'UDP', boolean];
  const expect = async (label: string, checks: Check[]) => {
    const pairs: ProbePair[] = checks.map(([from, to, port, protocol]) => ({ fromNs: ns[from]!, toIp: to === 'client' ? CLIENT : to === 'a' ? A : B, port, protocol }));
    const got = await probeAllDetailed(pairs, { timeoutMs: 1500 });
    const wrong = checks.filter((c, i) => got[i]!.ok !== c[4]).map((c, i) => `${c[0]} -> ${c[1]} ${c[2]}/${c[3]}: want ${c[4] ? 'open' : 'closed'}, got ${got[i]!.ok ? 'open' : got[i]!.error}`);
    t.deepEqual(wrong, [], label);
  };
  const enforced = (who: 'a' | 'b'): Check[] => [
    ['client', who, 80, 'TCP', true],
    ['client', who, 81, 'TCP', false],
    ['client', who, 80, 'UDP', false],
    [who, 'client', 80, 'TCP', true],
    [who, 'client', 81, 'TCP', false],
    [who, 'client', 81, 'UDP', false],
  ];

  await expect('before b exists: a enforced, b (unprogrammed) fails closed', [...enforced('a'), ['client', 'b', 80, 'TCP', false], ['b', 'client', 80, 'TCP', false]]);

  // b joins at the end of the dispatch: the last rule of the last chain on its path, in both trees.
  applyObjects(store, [pod('app', 'b', B, { role: 'real' })]);
  const d = desired(store)[0]!;
  for (const root of ['PODWALL-DST-PODS', 'PODWALL-SRC-PODS']) {
    let chain = d.chains.find((c) => c.name === root)!;
    while (chain.rules.at(-1)!.args.at(-1)!.startsWith('PODWALL-')) chain = d.chains.find((c) => c.name === chain.rules.at(-1)!.args.at(-1))!;
    t.is(chain.rules.at(-1)!.args.at(-1), podChainName('app', 'b'), `${root}: b is the last leaf`);
    t.true(chain !== d.chains.find((c) => c.name === root), `${root}: more than one level`);
  }
  await dp.apply([d]);
  await expect('b added at the end of the dispatch', [...enforced('b'), ...enforced('a')]);

  // The kernel holds the same trees (read back).
  const live = parseIptablesSave(sh(node.ns, ['iptables-nft-save', '-t', 'filter'])).tables[0]!;
  t.is(live.chains.filter((c) => c.name.startsWith('PODWALL-DST-')).length, d.chains.filter((c) => c.name.startsWith('PODWALL-DST-')).length);

  // Remove a's neighbours (a is left alone in its leaf) and then half of all pods.
  const near = FILL.filter((x) => x.startsWith('10.244.0.') && Math.abs(Number(x.split('.')[3]) - 150) < 16);
  for (const x of near) store.remove('Pod', `app/fill-${FILL.indexOf(x)}`);
  await dp.apply(desired(store));
  await expect('neighbours of a removed', [...enforced('a'), ...enforced('b')]);
  FILL.forEach((_, i) => i % 2 === 0 && store.remove('Pod', `app/fill-${i}`));
  await dp.apply(desired(store));
  await expect('half of the pods removed', [...enforced('a'), ...enforced('b')]);

  // a deleted: its IP is no longer programmed and fails closed; b is still enforced.
  store.remove('Pod', 'app/a');
  await dp.apply(desired(store));
  await expect('a removed', [['client', 'a', 80, 'TCP', false], ['a', 'client', 80, 'TCP', false], ...enforced('b')]);
});
