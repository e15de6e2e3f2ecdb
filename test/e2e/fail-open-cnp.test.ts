// Invalid ClusterNetworkPolicies through the agents' manifests directory, judged by real packets
// (test/support/fail-open.ts): each class of invalid CNP the issue names — bad action, priority out
// of range, more than 25 rules, a peer with both or neither selector, an unknown protocol, a port
// range with start > end — written as an Accept that WOULD open the denied pairs. Each must be
// reported (status and log: the object and the YAML field) and ignored whole: an update keeps the
// last accepted version in force, a new object is left out. Zero denied connections may get through.
import test from 'ava';
import { stringify } from 'yaml';
import { FailOpenHarness, basePolicies } from '../support/fail-open.js';
import type { Raw } from '../support/conformance.js';
import { until } from '../support/kernel.js';

let h: FailOpenHarness | undefined;
test.after.always(async () => {
  await h?.close();
});

const yaml = (objects: Raw[]) => objects.map((o) => stringify(o)).join('---\n');
type Rule = Record<string, unknown>;
const cnp = (name: string, spec: Rule): Raw => ({ apiVersion: 'policy.networking.k8s.io/v1alpha2', kind: 'ClusterNetworkPolicy', metadata: { name }, spec });
const ns = (n: string) => ({ namespaces: { matchLabels: { ns: n } } });
/** Valid: an Admin Deny of y → x (the harness's denied ingress pairs come from y). */
const GUARD = cnp('guard', { tier: 'Admin', priority: 10, subject: ns('x'), ingress: [{ name: 'deny-y', action: 'Deny', from: [ns('y')] }] });
/** `guard` turned into an Accept of y → x (which would open y/a → x/a and y/c → x/b), then broken by `mutate`. */
const openGuard = (mutate: (spec: Rule & { ingress: Rule[] }) => void): Raw => {
  const spec = { tier: 'Admin', priority: 10, subject: ns('x'), ingress: [{ name: 'accept-y', action: 'Accept', from: [ns('y')] }] as Rule[] };
  mutate(spec);
  return cnp('guard', spec);
};

test.serial('invalid ClusterNetworkPolicies are reported with object and field and never open anything', async (t) => {
  h = await FailOpenHarness.start(t, {});
  const H = h;
  H.write('policies.yaml', yaml(basePolicies()));
  H.write('cnp.yaml', yaml([GUARD]));
  await H.applied();
  const rejected = (id: string) => (s: ReturnType<FailOpenHarness['status']>) => (s.source?.rejected ?? []).includes(id);
  /** Both agents logged a line naming the object and the field. */
  const logged = async (object: string, field: string) => {
    for (const node of ['node-1', 'node-2']) {
      await until(`${node} logs ${object} ${field}`, () => H.log(node).split('\n').some((l) => l.includes(object) && l.includes(field)));
    }
  };
  let rev = 0;
  const restore = async () => {
    H.write('cnp.yaml', `${yaml([GUARD])}# revision ${++rev}\n`);
    await H.applied();
    await H.waitStatus('no errors left', (s) => s.source?.errors === 0);
  };

  // [fault, the broken Accept, the field the error names]
  const UPDATES: [string, Raw, string][] = [
    ['bad action (Allow)', openGuard((s) => (s.ingress[0]!.action = 'Allow')), 'spec.ingress[0].action'],
    ['priority out of range (1001)', openGuard((s) => (s.priority = 1001)), 'spec.priority'],
    ['more than 25 rules', openGuard((s) => (s.ingress = Array.from({ length: 26 }, () => s.ingress[0]!))), 'spec.ingress'],
    ['a peer with both selectors', openGuard((s) => (s.ingress[0]!.from = [{ namespaces: { matchLabels: { ns: 'y' } }, pods: { podSelector: {} } }])), 'spec.ingress[0].from[0]'],
    ['a peer with neither selector', openGuard((s) => (s.ingress[0]!.from = [{}])), 'spec.ingress[0].from[0]'],
    ['an unknown protocol', openGuard((s) => (s.ingress[0]!.protocols = [{ icmp: {} }])), 'spec.ingress[0].protocols[0].icmp'],
    ['a port range with start > end', openGuard((s) => (s.ingress[0]!.protocols = [{ tcp: { destinationPort: { range: { start: 9000, end: 80 } } } }])), 'spec.ingress[0].protocols[0].tcp.destinationPort.range'],
  ];
  for (const [name, broken, field] of UPDATES) {
    await H.fault(`guard updated to an invalid Accept: ${name} (the Deny stays)`, async () => {
      H.write('cnp.yaml', yaml([broken]));
      await H.applied();
      await H.waitStatus('the update rejected', rejected('ClusterNetworkPolicy guard'));
      await logged('ClusterNetworkPolicy guard', field);
      await H.probesRan(5);
      await restore();
    });
  }

  await H.fault('a new invalid CNP (an Admin Accept of everything, priority 0, with a bad range) is left out', async () => {
    H.write('open.yaml', yaml([cnp('open-all', { tier: 'Admin', priority: 0, subject: { namespaces: {} }, ingress: [{ action: 'Accept', from: [{ namespaces: {} }], protocols: [{ tcp: { destinationPort: { range: { start: 81, end: 80 } } } }] }] })]));
    await H.applied();
    await H.waitStatus('the object reported', (s) => (s.source?.firstErrors ?? []).some((e) => e.includes('ClusterNetworkPolicy open-all')));
    await logged('ClusterNetworkPolicy open-all', 'spec.ingress[0].protocols[0].tcp.destinationPort.range');
    await H.probesRan(5);
    H.remove('open.yaml');
    await H.applied();
  });

  await H.fault('an Accept to an unsupported nodes peer (experimental) matches nothing', async () => {
    H.write('open.yaml', yaml([cnp('nodes-accept', { tier: 'Admin', priority: 0, subject: ns('y'), egress: [{ action: 'Accept', to: [{ nodes: {} }] }] })]));
    await H.applied();
    await logged('ClusterNetworkPolicy nodes-accept', 'spec.egress[0].to[0].nodes');
    await H.probesRan(5);
    H.remove('open.yaml');
    await H.applied();
  });

  await H.fault('agents restarted while guard is invalid: its last accepted version (Deny) survives', async () => {
    H.write('cnp.yaml', yaml([openGuard((s) => (s.ingress[0]!.action = 'Allow'))]));
    await H.applied();
    await H.waitStatus('rejected', rejected('ClusterNetworkPolicy guard'));
    // Without x's NetworkPolicies the guard alone denies y → x: a restart that lost it would open it.
    H.write('policies.yaml', yaml(basePolicies().filter((p) => (p.metadata as { namespace: string }).namespace !== 'x')));
    await H.applied();
    await H.restartAgent('node-1');
    await H.restartAgent('node-2');
    await H.applied();
    await H.waitStatus('rejected after the restart', rejected('ClusterNetworkPolicy guard'));
    await H.probesRan(10);
    H.write('policies.yaml', yaml(basePolicies()));
    await restore();
  });

  H.assertNoneOpen(t);
});
