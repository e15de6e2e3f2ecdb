// ClusterNetworkPolicy cases on network-policy-api's conformance model (npapi-conformance.ts),
// written from the v1alpha2 API documentation (apis/v1alpha2/clusternetworkpolicy_types.go and the
// site's API overview), one per behaviour the upstream suite exercises: rule order per protocol and
// direction in both tiers, priority, Pass, the Admin → NetworkPolicy → Baseline integration, inline
// CIDRs, named ports, port ranges, pod subjects and peers. Each case is a whole state (the policies
// added to the base model) and the whole matrix expected of it, as a predicate over (from, to,
// port). test/unit/cnp-conformance.test.ts checks every case on the simulator and on the interpreter
// running the rendered rules; test/e2e/lab-cnp-conformance.test.ts runs the `lab` ones on the kernel.
import { policy, type Raw } from './conformance.js';
import { HOUSE_PODS, houseNs, type House, type HousePod, type ProbePort } from './npapi-conformance.js';

type Rule = Record<string, unknown>;
export type Expect = (from: HousePod, to: HousePod, p: ProbePort) => boolean;
export interface NpapiCase {
  name: string;
  objects: Raw[];
  expect: Expect;
  /** Also run on the kernel (lab); SCTP is never probed there. */
  lab: boolean;
}

export const NPAPI_CASES: NpapiCase[] = [];
/** Cases run in the lab as well (by name, before any ` (n)` suffix). */
const LAB = new Set([
  'integration: Admin Deny, then Pass to the NetworkPolicy, then without it the Baseline, then a Baseline Accept',
  'Admin Pass hands the traffic to NetworkPolicy; the rest of the Admin tier is skipped for it',
  'priority: the lower value is checked first; changing it changes who decides',
  'named ports: resolved on the destination pod with the protocol it declares; undeclared ports have no name',
  'port ranges: start and end included, per protocol',
  'networks: egress CIDRs match pods by address; a Pass before them keeps pod traffic out',
  'subject pods: namespaceSelector AND podSelector (one replica of one house)',
]);
function add(name: string, objects: Raw[], expect: Expect, opts: { lab?: boolean } = {}): void {
  const n = NPAPI_CASES.filter((c) => c.name === name || c.name.startsWith(`${name} (`)).length;
  NPAPI_CASES.push({ name: n === 0 ? name : `${name} (${n + 1})`, objects, expect, lab: opts.lab ?? LAB.has(name) });
}

// --- building blocks, in the API's own words --------------------------------------------------
const house = (h: House) => ({ namespaces: { matchLabels: { 'conformance-house': h } } });
/** Upstream selects namespaces by the label the API server sets on every namespace. */
const byName = (h: House) => ({ namespaces: { matchLabels: { 'kubernetes.io/metadata.name': houseNs(h) } } });
const everyNamespace = { namespaces: {} };
const replica = (h: House, i: 0 | 1) => ({ pods: { namespaceSelector: { matchLabels: { 'conformance-house': h } }, podSelector: { matchLabels: { 'apps.kubernetes.io/pod-index': String(i) } } } });
const port = (protocol: ProbePort['protocol'], n: number) => ({ [protocol.toLowerCase()]: { destinationPort: { number: n } } });
const range = (protocol: ProbePort['protocol'], start: number, end: number) => ({ [protocol.toLowerCase()]: { destinationPort: { range: { start, end } } } });

function cnp(name: string, tier: 'Admin' | 'Baseline', priority: number, subject: Rule, rules: { ingress?: Rule[]; egress?: Rule[] }): Raw {
  return { apiVersion: 'policy.networking.k8s.io/v1alpha2', kind: 'ClusterNetworkPolicy', metadata: { name }, spec: { tier, priority, subject, ...rules } };
}
const is = (p: ProbePort, protocol: string, n: number) => p.protocol === protocol && p.port === n;
const between = (from: HousePod, to: HousePod, a: House, b: House) => from.house === a && to.house === b;

// --- rule order, per protocol, per direction, per tier ------------------------------------------
// "Rules are evaluated in order; the first rule that matches the traffic decides." For each protocol
// the policy holds, on gryffindor: Accept everything with ravenclaw, then Deny everything with
// ravenclaw (never reached); Deny slytherin on the protocol's first port only; Accept hufflepuff on
// that port, then Deny the rest of hufflepuff. With no NetworkPolicy, unmatched traffic is allowed —
// in the Baseline tier too, which decides here because no NetworkPolicy isolates the pods.
const PROTOCOLS: [ProbePort['protocol'], number][] = [
  ['TCP', 80],
  ['UDP', 53],
  ['SCTP', 9003],
];
for (const tier of ['Admin', 'Baseline'] as const)
  for (const direction of ['ingress', 'egress'] as const)
    for (const [protocol, first] of PROTOCOLS) {
      {
        const peers = direction === 'ingress' ? 'from' : 'to';
        const rules: Rule[] = [
          { name: 'accept-ravenclaw', action: 'Accept', [peers]: [house('ravenclaw')] },
          { name: 'deny-ravenclaw', action: 'Deny', [peers]: [house('ravenclaw')] },
          { name: `deny-slytherin-${first}`, action: 'Deny', [peers]: [house('slytherin')], protocols: [port(protocol, first)] },
          { name: `accept-hufflepuff-${first}`, action: 'Accept', [peers]: [house('hufflepuff')], protocols: [port(protocol, first)] },
          { name: 'deny-hufflepuff', action: 'Deny', [peers]: [house('hufflepuff')] },
        ];
        add(`${tier} ${direction} ${protocol}: the first matching rule decides, the port narrows it`, [cnp(`${direction}-${protocol.toLowerCase()}`, tier, 3, byName('gryffindor'), { [direction]: rules })], (from, to, p) => {
          const [subject, other] = direction === 'ingress' ? [to, from] : [from, to];
          if (subject.house !== 'gryffindor') return true;
          if (other.house === 'slytherin') return !is(p, protocol, first);
          if (other.house === 'hufflepuff') return is(p, protocol, first);
          return true;
        }, { lab: protocol !== 'SCTP' && ((tier === 'Admin' && direction === 'ingress') || (tier === 'Baseline' && direction === 'egress')) });
      }
      if (protocol === 'TCP')
        {
          const peers = direction === 'ingress' ? 'from' : 'to';
          add(
            `${tier} ${direction}: rules swapped, the Deny now comes first and decides`,
            [cnp('swapped', tier, 3, byName('gryffindor'), { [direction]: [{ action: 'Deny', [peers]: [house('ravenclaw')] }, { action: 'Accept', [peers]: [house('ravenclaw')] }] })],
            (from, to) => !(direction === 'ingress' ? between(from, to, 'ravenclaw', 'gryffindor') : between(from, to, 'gryffindor', 'ravenclaw')),
          );
        }
    }

add(
  'both directions in one policy: ingress rules judge what enters the subject, egress rules what leaves it',
    [cnp('gress', 'Admin', 4, house('gryffindor'), { ingress: [{ action: 'Deny', from: [house('slytherin')], protocols: [port('TCP', 8080)] }], egress: [{ action: 'Deny', to: [house('hufflepuff')], protocols: [port('UDP', 5353), port('SCTP', 9005)] }] })],
    (from, to, p) => {
      if (between(from, to, 'slytherin', 'gryffindor')) return !is(p, 'TCP', 8080);
      if (between(from, to, 'gryffindor', 'hufflepuff')) return !(is(p, 'UDP', 5353) || is(p, 'SCTP', 9005));
      return true; // hufflepuff → gryffindor is ingress, and no ingress rule names hufflepuff
    },
  );

// --- priority -------------------------------------------------------------------------------------
// "Policies with lower priority values have higher precedence, and are checked before policies
// with higher priority values." Whole tiers keep their order whatever the numbers.
{
  const name = 'priority: the lower value is checked first; changing it changes who decides';
  const accept = (priority: number) => cnp('accept-ravenclaw', 'Admin', priority, house('gryffindor'), { ingress: [{ action: 'Accept', from: [house('ravenclaw')] }] });
  const deny = (priority: number) => cnp('deny-ravenclaw', 'Admin', priority, house('gryffindor'), { ingress: [{ action: 'Deny', from: [house('ravenclaw'), house('slytherin')] }] });
  const denied = (from: HousePod, to: HousePod) => to.house === 'gryffindor' && from.house === 'slytherin';
  add(name, [accept(5), deny(6)], (f, to) => !denied(f, to));
  add(name, [accept(5), deny(4)], (f, to) => !(denied(f, to) || between(f, to, 'ravenclaw', 'gryffindor')));
  add(name, [accept(1000), deny(0)], (f, to) => !(denied(f, to) || between(f, to, 'ravenclaw', 'gryffindor')));
  add(name, [accept(0), deny(1000)], (f, to) => !denied(f, to));
}

add(
  'priority: the Admin tier decides before NetworkPolicy and Baseline whatever their numbers',
    [
      cnp('baseline-accept', 'Baseline', 0, house('gryffindor'), { ingress: [{ action: 'Accept', from: [everyNamespace] }] }),
      cnp('admin-deny', 'Admin', 1000, house('gryffindor'), { ingress: [{ action: 'Deny', from: [house('slytherin')] }] }),
    ],
    (f, to) => !between(f, to, 'slytherin', 'gryffindor'),
  );

{
  const name = 'priority within the Baseline tier: the lower value decides first';
  const b = (name: string, priority: number, action: string) => cnp(name, 'Baseline', priority, house('hufflepuff'), { egress: [{ action, to: [house('ravenclaw')] }] });
  add(name, [b('b-accept', 1, 'Accept'), b('b-deny', 2, 'Deny')], () => true);
  add(name, [b('b-accept', 3, 'Accept'), b('b-deny', 2, 'Deny')], (f, to) => !between(f, to, 'hufflepuff', 'ravenclaw'));
}

// --- Pass ------------------------------------------------------------------------------------------
// "Pass: skips all further ClusterNetworkPolicy rules in the current tier for the selected traffic,
// and passes evaluation to the next tier" — for the Admin tier, NetworkPolicy.
add(
  'Admin Pass hands the traffic to NetworkPolicy; the rest of the Admin tier is skipped for it',
    [
      cnp('pass-slytherin', 'Admin', 5, house('gryffindor'), { ingress: [{ action: 'Pass', from: [house('slytherin')] }] }),
      cnp('deny-everyone', 'Admin', 20, house('gryffindor'), { ingress: [{ action: 'Deny', from: [everyNamespace] }] }),
      policy(houseNs('gryffindor'), 'web-from-slytherin', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'conformance-house': 'slytherin' } } }], ports: [{ port: 'web' }] }] }),
    ],
    (f, to, p) => {
      if (to.house !== 'gryffindor') return true;
      if (f.house === 'slytherin') return is(p, 'TCP', 80); // the NetworkPolicy's named port `web`
      return false; // everyone else, gryffindor's other replica included: the Admin Deny
    },
  );

{
  const name = 'Admin Pass with no NetworkPolicy: the Baseline tier decides, else the traffic is allowed';
  const pass = cnp('pass', 'Admin', 5, house('gryffindor'), { egress: [{ action: 'Pass', to: [everyNamespace] }] });
  add(name, [pass, cnp('deny-all', 'Admin', 6, house('gryffindor'), { egress: [{ action: 'Deny', to: [everyNamespace] }] })], () => true);
  add(name, [pass, cnp('default', 'Baseline', 5, house('gryffindor'), { egress: [{ action: 'Deny', to: [house('ravenclaw')] }] })], (f, to) => !between(f, to, 'gryffindor', 'ravenclaw'));
}

add(
  'Baseline Pass ends the Baseline tier: the traffic is allowed',
    [
      cnp('b-pass', 'Baseline', 1, house('gryffindor'), { ingress: [{ action: 'Pass', from: [replica('slytherin', 0)] }] }),
      cnp('b-deny', 'Baseline', 2, house('gryffindor'), { ingress: [{ action: 'Deny', from: [house('slytherin')] }] }),
    ],
    (f, to) => !(between(f, to, 'slytherin', 'gryffindor') && f.replica === 1),
  );

// --- Admin → NetworkPolicy → Baseline --------------------------------------------------------------
// The upstream integration case, step by step: an Admin Deny, a namespace NetworkPolicy that allows
// the same traffic, and a Baseline Deny of it.
{
  const name = 'integration: Admin Deny, then Pass to the NetworkPolicy, then without it the Baseline, then a Baseline Accept';
  const admin = (action: string) =>
    cnp('pass-example', 'Admin', 10, house('gryffindor'), { ingress: [{ action, from: [house('slytherin')] }], egress: [{ action, to: [house('slytherin')] }] });
  const baseline = (action: string) =>
    cnp('default', 'Baseline', 10, house('gryffindor'), { ingress: [{ action, from: [house('slytherin')] }], egress: [{ action, to: [house('slytherin')] }] });
  const slytherin = { namespaceSelector: { matchLabels: { 'conformance-house': 'slytherin' } } };
  const np = policy(houseNs('gryffindor'), 'allow-gress-slytherin', { podSelector: {}, policyTypes: ['Ingress', 'Egress'], ingress: [{ from: [slytherin] }], egress: [{ to: [slytherin] }] });
  const withSlytherin = (f: HousePod, to: HousePod) => between(f, to, 'slytherin', 'gryffindor') || between(f, to, 'gryffindor', 'slytherin');
  const touchesGryffindor = (f: HousePod, to: HousePod) => f.house === 'gryffindor' || to.house === 'gryffindor';
  // The NetworkPolicy isolates gryffindor both ways and opens only slytherin; the Admin Deny closes that.
  add(name, [admin('Deny'), np, baseline('Deny')], (f, to) => !touchesGryffindor(f, to));
  add(name, [admin('Pass'), np, baseline('Deny')], (f, to) => !touchesGryffindor(f, to) || withSlytherin(f, to));
  add(name, [admin('Pass'), baseline('Deny')], (f, to) => !withSlytherin(f, to));
  add(name, [admin('Pass'), baseline('Accept')], () => true);
}

add(
  'Baseline only where NetworkPolicy does not isolate, per direction',
    [
      cnp('default', 'Baseline', 10, house('gryffindor'), { ingress: [{ action: 'Deny', from: [house('slytherin')] }], egress: [{ action: 'Deny', to: [house('slytherin')] }] }),
      policy(houseNs('gryffindor'), 'egress-open', { podSelector: {}, policyTypes: ['Egress'], egress: [{}] }),
    ],
    (f, to) => !between(f, to, 'slytherin', 'gryffindor'), // egress to slytherin: the NetworkPolicy's (open)
  );

add(
  'an Admin Accept cannot be blocked by NetworkPolicy, but an egress Accept does not open the destination',
    [
      cnp('monitoring', 'Admin', 1, house('ravenclaw'), { ingress: [{ action: 'Accept', from: [house('hufflepuff')], protocols: [port('TCP', 8080)] }], egress: [{ action: 'Accept', to: [house('gryffindor')] }] }),
      policy(houseNs('ravenclaw'), 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
      policy(houseNs('gryffindor'), 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] }),
    ],
    (f, to, p) => {
      if (to.house === 'gryffindor') return false; // gryffindor's own NetworkPolicy decides its ingress
      if (to.house === 'ravenclaw') return f.house === 'hufflepuff' && is(p, 'TCP', 8080);
      return f.house !== 'ravenclaw'; // ravenclaw's egress elsewhere: its NetworkPolicy denies
    },
  );

// --- peers and subjects --------------------------------------------------------------------------
add(
  'subject pods: namespaceSelector AND podSelector (one replica of one house)',
    [cnp('guard-harry-0', 'Admin', 1, { pods: { namespaceSelector: { matchLabels: { 'conformance-house': 'gryffindor' } }, podSelector: { matchLabels: { 'statefulset.kubernetes.io/pod-name': 'harry-potter-0' } } } }, { ingress: [{ action: 'Deny', from: [everyNamespace] }] })],
    (_f, to) => to.name !== 'harry-potter-0',
  );

{
  const name = 'peer pods: namespaceSelector AND podSelector; every namespace with a pod selector';
  add(name, [cnp('deny-draco-1', 'Admin', 1, house('gryffindor'), { ingress: [{ action: 'Deny', from: [replica('slytherin', 1)] }] })], (f, to) => !(to.house === 'gryffindor' && f.name === 'draco-malfoy-1'));
  add(name, [cnp('deny-replica-1', 'Admin', 1, house('gryffindor'), { egress: [{ action: 'Deny', to: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { 'apps.kubernetes.io/pod-index': '1' } } } }] }] })], (f, to) => !(f.house === 'gryffindor' && to.replica === 1));
}

// --- ports -----------------------------------------------------------------------------------------
{
  const name = 'named ports: resolved on the destination pod with the protocol it declares; undeclared ports have no name';
  add(name, [cnp('deny-web', 'Admin', 1, house('gryffindor'), { ingress: [{ action: 'Deny', from: [everyNamespace], protocols: [{ destinationNamedPort: 'web' }] }] })], (_f, to, p) => !(to.house === 'gryffindor' && is(p, 'TCP', 80)));
  add(name, [cnp('deny-dns', 'Admin', 1, house('gryffindor'), { egress: [{ action: 'Deny', to: [house('hufflepuff')], protocols: [{ destinationNamedPort: 'dns' }] }] })], (f, to, p) => !(between(f, to, 'gryffindor', 'hufflepuff') && is(p, 'UDP', 53)));
  // 8080 is served but not declared: a name for it matches nothing, and a Deny of nothing denies nothing.
  add(name, [cnp('deny-undeclared', 'Admin', 1, house('gryffindor'), { ingress: [{ action: 'Deny', from: [everyNamespace], protocols: [{ destinationNamedPort: 'http-alt' }] }] })], () => true);
}

add(
  'port ranges: start and end included, per protocol',
    [cnp('ranges', 'Baseline', 1, house('gryffindor'), { ingress: [{ action: 'Deny', from: [everyNamespace], protocols: [range('TCP', 8000, 8080), range('UDP', 5000, 5353), range('SCTP', 9004, 9005)] }] })],
    (_f, to, p) => !(to.house === 'gryffindor' && (is(p, 'TCP', 8080) || is(p, 'UDP', 5353) || is(p, 'SCTP', 9005))),
  );

// --- networks ----------------------------------------------------------------------------------
// "networks ... match pod IPs too: to keep pod traffic out of a CIDR rule, add a rule that Passes all
// pod traffic before the Networks rule."
{
  const name = 'networks: egress CIDRs match pods by address; a Pass before them keeps pod traffic out';
  const np = policy(houseNs('gryffindor'), 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] });
  add(
    name,
    [cnp('cidr', 'Admin', 1, house('gryffindor'), { egress: [{ action: 'Deny', to: [{ networks: ['10.244.2.0/24'] }] }, { action: 'Accept', to: [{ networks: [`${HOUSE_PODS.find((p) => p.name === 'draco-malfoy-0')!.ip}/32`] }] }] }), np],
    (f, to) => f.house !== 'gryffindor' || to.name === 'draco-malfoy-0',
  );
  add(
    name,
    [cnp('cidr', 'Admin', 1, house('gryffindor'), { egress: [{ action: 'Pass', to: [house('hufflepuff')] }, { action: 'Deny', to: [{ networks: ['0.0.0.0/0'] }] }] })],
    (f, to) => f.house !== 'gryffindor' || to.house === 'hufflepuff',
  );
}
