// The commands on ClusterNetworkPolicy, as a user runs them (bin/podwall.js on the policies/ recipes):
// `render` prints the tier chains and the pod chains' jumps to them, `trace` walks a packet through
// them and agrees with the simulator, `explain` names the deciding rule, tier and priority and the
// tier rules that missed, `lint` reports an invalid CNP on one line with file, object and field.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));
const RECIPES = fileURLToPath(new URL('../../../policies/', import.meta.url));
const GUARD = join(RECIPES, 'cnp-kube-system-guard');
const BASELINE = join(RECIPES, 'cnp-baseline-default-deny');
const MONITORING = join(RECIPES, 'cnp-admin-allow-monitoring');

function podwall(...args: string[]): { out: string; err: string; code: number | null } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { out: r.stdout, err: r.stderr, code: r.status };
}
const CHAIN = '[A-Z2-7]{16}';

test('render: Admin and Baseline tier chains, the pod chains jump to them (Baseline guarded by the accept mark), Deny logs then rejects', (t) => {
  const admin = podwall('render', '-f', GUARD, '--node', 'node-1');
  t.is(admin.code, 0, admin.err);
  t.regex(admin.out, new RegExp(`^:PODWALL-ADM-${CHAIN} - \\[0:0\\]$`, 'm'), 'the Admin chain is declared');
  t.regex(admin.out, new RegExp(`^-A KUBE-POD-FW-${CHAIN} -d 10\\.244\\.1\\.2/32 -m comment --comment "kube-system/coredns: ingress admin tier kube-system-guard" -j PODWALL-ADM-${CHAIN}$`, 'm'));
  t.regex(admin.out, new RegExp(`^-A PODWALL-ADM-${CHAIN} .*-j NFLOG --nflog-prefix "podwall/1 cnp in ${CHAIN} cnp/kube-system-guard" --nflog-group 100 --nflog-threshold 1$`, 'm'));
  t.regex(admin.out, new RegExp(`^-A PODWALL-ADM-${CHAIN} .*rule deny-kube-system Deny.* -j REJECT --reject-with icmp-port-unreachable$`, 'm'));
  t.notRegex(admin.out, /PODWALL-BSL-/, 'no Baseline policy, no Baseline chain');
  const baseline = podwall('render', '-f', BASELINE, '--node', 'node-1');
  t.is(baseline.code, 0, baseline.err);
  t.regex(baseline.out, new RegExp(`^-A KUBE-POD-FW-${CHAIN} -d 10\\.244\\.1\\.20/32 -m mark ! --mark 0x10000/0x10000 -m comment --comment "blog/app: ingress baseline tier default-deny-ingress" -j PODWALL-BSL-${CHAIN}$`, 'm'));
  // shop's pods are isolated by shop's NetworkPolicies: no Baseline jump in their chains.
  t.notRegex(baseline.out, /comment "shop\/[a-z]+: ingress baseline tier/);
});

test('trace: an Admin Deny rejects in the Admin chain, a Baseline Deny in the Baseline chain; the simulator agrees', (t) => {
  const deny = podwall('trace', '-f', GUARD, '--from', 'shop/web', '--to', 'kube-system/coredns', '--port', '9153/TCP');
  t.is(deny.code, 0, deny.err);
  t.regex(deny.out, new RegExp(`JUMP PODWALL-ADM-${CHAIN} .*ingress admin tier kube-system-guard`));
  t.regex(deny.out, new RegExp(`verdict: DENIED \\(REJECT on node node-1 at PODWALL-ADM-${CHAIN} #\\d+\\)`));
  t.regex(deny.out, /simulator \(whole cluster\): DENIED: .*denied by rule 'deny-kube-system' \(Deny\) of ClusterNetworkPolicy kube-system-guard, Admin tier, priority 10/);
  t.regex(deny.out, /simulator and rendered rules agree/);
  const dns = podwall('trace', '-f', GUARD, '--from', 'shop/web', '--to', 'kube-system/coredns', '--port', '53/UDP', '-o', 'json');
  const j = JSON.parse(dns.out) as { verdict: string; agree: boolean; hops: { steps: { chain: string; action: string }[] }[] };
  t.is(j.verdict, 'ACCEPT');
  t.true(j.agree);
  t.regex(j.hops.flatMap((h) => h.steps).find((s) => s.action === 'MARK 0x10000')?.chain ?? '', /^PODWALL-ADM-/, 'the Admin Accept of DNS marks it');
  const baseline = podwall('trace', '-f', BASELINE, '--from', 'shop/web', '--to', 'blog/app', '--port', '80/TCP');
  t.regex(baseline.out, new RegExp(`verdict: DENIED \\(REJECT on node node-1 at PODWALL-BSL-${CHAIN} #\\d+\\)`));
  t.regex(baseline.out, /ClusterNetworkPolicy default-deny-ingress, Baseline tier, priority 100/);
  t.regex(baseline.out, /simulator and rendered rules agree/);
});

test('explain: the deciding rule with tier and priority, NetworkPolicy cannot change it, the tier rules that missed and why', (t) => {
  const r = podwall('explain', '-f', GUARD, '--from', 'shop/web', '--to', 'kube-system/coredns', '--port', '9153/TCP');
  t.regex(r.out, /^DENIED {2}shop\/web → kube-system\/coredns {2}9153\/TCP/);
  t.regex(r.out, /ingress of kube-system\/coredns: denied by rule 'deny-kube-system' \(Deny\) of ClusterNetworkPolicy kube-system-guard, Admin tier, priority 10 .*\(NetworkPolicy cannot allow it\)/);
  t.regex(r.out, /Admin rule 'allow-dns' \(Accept, named port dns, named port dns-tcp\) of kube-system-guard: no match — 9153\/TCP is not among them/);
  const m = podwall('explain', '-f', MONITORING, '--from', 'monitoring/prometheus', '--to', 'shop/web', '--port', '9090/TCP');
  t.regex(m.out, /^ALLOWED/);
  t.regex(m.out, /allowed by rule 'scrape-metrics' \(Accept\) of ClusterNetworkPolicy allow-prometheus-scrape, Admin tier, priority 20 .*\(NetworkPolicy cannot deny it\)/);
});

test('lint and the analysis commands: an invalid ClusterNetworkPolicy is one line naming file, object and field', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podwall-cnp-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(GUARD, dir, { recursive: true });
  writeFileSync(
    join(dir, 'open.yaml'),
    'apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: open-kube-system}\nspec:\n  tier: Admin\n  priority: 1\n  subject: {namespaces: {}}\n  ingress:\n  - {action: Accept, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {range: {start: 9000, end: 4000}}}}]}\n',
  );
  const lint = podwall('lint', '-f', dir);
  t.is(lint.code, 1);
  const line = `${join(dir, 'open.yaml')}: ClusterNetworkPolicy open-kube-system: spec.ingress[0].protocols[0].tcp.destinationPort.range: start 9000 must be less than end 4000 [invalid-port-range]`;
  t.true(lint.out.split('\n').some((l) => l.endsWith(line)), lint.out);
  t.notRegex(lint.out + lint.err, /undefined|\bat .*\.js:\d+/);
  // The analysis commands refuse the input rather than answer about a cluster without the object.
  const explain = podwall('explain', '-f', dir, '--from', 'shop/web', '--to', 'kube-system/coredns', '--port', '9153/TCP');
  t.not(explain.code, 0);
  t.true(explain.err.includes(line), explain.err);
  t.notRegex(explain.out, /ALLOWED/);
});
