import test from 'ava';
import { buildConfig, FlagError, parseDuration, parseNodePortRange } from '../../src/controller/flags.js';

const env = { NODE_NAME: 'node-a' };

test('kube-router defaults', (t) => {
  const c = buildConfig([], env);
  t.is(c.nodeName, 'node-a');
  t.is(c.syncPeriodMs, 300_000);
  t.deepEqual(c.serviceClusterIPRanges, ['10.96.0.0/12']);
  t.deepEqual(c.nodePortRange, [30000, 32767]);
  t.true(c.enableIPv4);
  t.false(c.enableIPv6);
  t.is(c.healthPort, 20244);
  t.is(c.metricsPort, 0);
  t.is(c.metricsPath, '/metrics');
  t.is(c.cacheSyncTimeoutMs, 60_000);
  t.false(c.cleanupConfig);
});

test('kube-router spellings: --flag=value, --flag value, bare booleans, =true/false, repeated and comma lists', (t) => {
  const c = buildConfig(
    [
      '--run-firewall=true',
      '--run-router=false',
      '--run-service-proxy=false',
      '--hostname-override',
      'worker-7',
      '--iptables-sync-period=1m30s',
      '--enable-ipv6=true',
      '--service-cluster-ip-range=10.96.0.0/12',
      '--service-cluster-ip-range',
      'fd00:96::/108',
      '--service-external-ip-range=192.0.2.0/24,2001:db8::/64',
      '--service-node-port-range=31000:31999',
      '--netpol-default-deny',
      '--metrics-port=9100',
      '-v=2',
    ],
    env,
  );
  t.is(c.nodeName, 'worker-7');
  t.is(c.syncPeriodMs, 90_000);
  t.deepEqual(c.serviceClusterIPRanges, ['10.96.0.0/12', 'fd00:96::/108']);
  t.deepEqual(c.serviceExternalIPRanges, ['192.0.2.0/24', '2001:db8::/64']);
  t.deepEqual(c.nodePortRange, [31000, 31999]);
  t.true(c.defaultDeny);
  t.is(c.metricsPort, 9100);
  t.is(c.logLevel, 'debug');
});

const invalid: [string, string[], RegExp][] = [
  ['router refused', ['--run-router=true'], /podwall is kube-router's firewall only/],
  ['service proxy refused', ['--run-service-proxy'], /podwall is kube-router's firewall only/],
  ['more than two cluster ranges', ['--enable-ipv6', '--service-cluster-ip-range=10.96.0.0/12,fd00::/108,10.97.0.0/16'], /at most two ranges/],
  ['two ranges of one family', ['--service-cluster-ip-range=10.96.0.0/12,10.100.0.0/16'], /one IPv4 and one IPv6/],
  ['malformed range', ['--service-cluster-ip-range=10.96.0.0/40'], /not a CIDR/],
  ['host bits set', ['--loadbalancer-ip-range=10.96.0.1/12'], /host bits set \(did you mean 10\.96\.0\.0\/12\?\)/],
  ['IPv6 range while IPv6 disabled', ['--service-cluster-ip-range=fd00::/108'], /IPv6 range while --enable-ipv6 is false/],
  ['reversed node port range', ['--service-node-port-range=32767-30000'], /start 32767 is above end 30000/],
  ['garbage node port range', ['--service-node-port-range=lots'], /expected a-b or a:b/],
  ['bad duration', ['--iptables-sync-period=5 minutes'], /invalid duration/],
  ['too-short period', ['--iptables-sync-period=10ms'], /at least 1s/],
  ['bad boolean', ['--enable-ipv4=yes'], /expected true or false/],
  ['no family', ['--enable-ipv4=false'], /nothing to enforce/],
  ['unknown flag with a hint', ['--hostname_override=x'], /unknown flag --hostname_override \(did you mean --hostname-override\?\)/],
  ['missing value', ['--kubeconfig'], /--kubeconfig needs a value/],
  ['bad port', ['--health-port=70000'], /expected a port number/],
  ['bad log level', ['--log-level=loud'], /--log-level/],
  ['manifests with kubeconfig', ['--manifests=/x', '--kubeconfig=/y'], /cannot be combined/],
  ['bad node name', ['--hostname-override=Bad_Name'], /not a valid Kubernetes node name/],
];

for (const [name, argv, re] of invalid) {
  test(`invalid: ${name}`, (t) => {
    const e = t.throws(() => buildConfig(argv, env), { instanceOf: FlagError });
    t.regex(e!.message, re);
    t.false(e!.message.includes('\n'));
  });
}

test('durations and node port ranges', (t) => {
  t.is(parseDuration('5m0s'), 300_000);
  t.is(parseDuration('1h'), 3_600_000);
  t.is(parseDuration('250ms'), 250);
  t.is(parseDuration('1.5s'), 1500);
  t.throws(() => parseDuration('5'));
  t.deepEqual(parseNodePortRange('30000-32767'), [30000, 32767]);
  t.deepEqual(parseNodePortRange('80:90'), [80, 90]);
});

test('NFLOG rate limit: kube-router default, other rates, 0 for every denial, bad values named', (t) => {
  t.deepEqual(buildConfig([], env).logLimit, { rate: '10/min', burst: 10 });
  t.deepEqual(buildConfig(['--netpol-log-limit=100/second', '--netpol-log-burst', '50'], env).logLimit, { rate: '100/sec', burst: 50 });
  t.is(buildConfig(['--netpol-log-limit=0'], env).logLimit.rate, undefined);
  t.throws(() => buildConfig(['--netpol-log-limit=10/ms'], env), { instanceOf: FlagError, message: /^--netpol-log-limit: "10\/ms" is not a rate/ });
  t.throws(() => buildConfig(['--netpol-log-burst=0'], env), { instanceOf: FlagError, message: /^--netpol-log-burst: "0" is not a burst/ });
});
