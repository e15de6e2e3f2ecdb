// How many rules a packet meets in podwall's rendered filter table (the interpreter counts every rule
// evaluated, matched or not): the per-packet cost the datapath benchmark measures in the kernel.
import test from 'ava';
import { datapathCluster } from '../../src/bench/datapath.js';
import { compile } from '../../src/policy/compile.js';
import { render } from '../../src/dataplane/render.js';
import { filterTableFor } from '../../src/dataplane/trace.js';
import { interpret, type CtState } from '../../src/iptables/interpret.js';

const NODE = 'bench-node';

function tableFor(n: number, extra: (s: ReturnType<typeof datapathCluster>) => void = () => undefined) {
  const store = datapathCluster(n);
  extra(store);
  const d = render(compile(store, { node: NODE }), { family: 'ipv4', node: NODE, serviceClusterIPRanges: ['10.96.0.0/12'], serviceExternalIPRanges: [], loadBalancerIPRanges: [], nodePortRange: [30000, 32767] });
  return { table: filterTableFor(d), sets: d.sets };
}

function walk(t: ReturnType<typeof tableFor>, src: string, dst: string, ctstate: CtState) {
  const tr = interpret(t.table, t.sets, { src, dst, protocol: 'tcp', sport: 40000, dport: 8080, hook: 'FORWARD', ctstate }, { includeNonMatching: true, localAddresses: ['172.18.0.2'] });
  return { verdict: tr.verdict, evaluated: tr.steps.filter((s) => s.index > 0).length };
}

/** Two pods no policy selects (another namespace), beside the benchmark's isolated ones. */
const open = (s: ReturnType<typeof datapathCluster>) => {
  s.upsert({ kind: 'Namespace', name: 'open', labels: { 'kubernetes.io/metadata.name': 'open' } });
  for (const [name, ip] of [['a', '10.244.3.240'], ['b', '10.244.3.241']] as const) {
    s.upsert({ kind: 'Pod', namespace: 'open', name, labels: {}, hostNetwork: false, phase: 'Running', nodeName: NODE, ips: [ip], ports: [] });
  }
};

test('an established packet meets the same few rules with 10 or 1,000 isolated pods, isolated or not', (t) => {
  for (const n of [10, 1000]) {
    const tb = tableFor(n, open);
    // isolated pair: FORWARD's jump and the first established rule
    t.deepEqual(walk(tb, '10.244.3.250', '10.244.3.251', 'ESTABLISHED'), { verdict: 'ACCEPT', evaluated: 2 }, `${n} pods, isolated`);
    // pods no policy isolates: the two established rules miss, the third returns — no tree walked
    t.deepEqual(walk(tb, '10.244.3.240', '10.244.3.241', 'ESTABLISHED'), { verdict: 'ACCEPT', evaluated: 4 }, `${n} pods, not isolated`);
  }
});

test('a new connection between isolated pods: the trees add at most three levels of 16 rules each way', (t) => {
  const few = walk(tableFor(10), '10.244.3.250', '10.244.3.251', 'NEW');
  const many = walk(tableFor(1000), '10.244.3.250', '10.244.3.251', 'NEW');
  t.is(few.verdict, 'ACCEPT');
  t.is(many.verdict, 'ACCEPT');
  t.true(many.evaluated - few.evaluated <= 2 * 3 * 16, `${few.evaluated} rules at 10 pods, ${many.evaluated} at 1,000`);
  t.log(`rules evaluated by the first packet: ${few.evaluated} at 10 pods, ${many.evaluated} at 1,000`);
});
