import test from 'ava';
import { conformanceObjects, policy, storeOf, podIP } from '../support/conformance.js';
import { compile } from '../../src/policy/compile.js';
import { explain, formatExplanation, resolveEndpoint } from '../../src/sim/explain.js';
import { lint } from '../../src/policy/lint.js';

function explainText(objects: Record<string, unknown>[], from: string, to: string, port = 80, protocol: 'TCP' | 'UDP' = 'TCP') {
  const plan = compile(storeOf([...conformanceObjects(), ...objects]));
  const x = explain(plan, resolveEndpoint(plan, from, 'from'), resolveEndpoint(plan, to, 'to'), protocol, port);
  return { x, text: formatExplanation(x) };
}

test('explain names the policy, direction and rule that allowed both sides', (t) => {
  const { x, text } = explainText(
    [
      policy('x', 'egress-web', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }] }] }),
      policy('y', 'allow-web', { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'z' } } }, { namespaceSelector: { matchLabels: { ns: 'x' } } }] }] }),
    ],
    'x/a',
    'y/b',
  );
  t.true(x.verdict.allowed);
  t.is(x.egress.verdict.allowedBy?.policy, 'x/egress-web');
  t.is(x.egress.verdict.allowedBy?.ruleIndex, 0);
  t.is(x.ingress.verdict.allowedBy?.policy, 'y/allow-web');
  t.is(x.ingress.verdict.allowedBy?.peerIndex, 1);
  t.regex(text, /^ALLOWED {2}x\/a → y\/b {2}80\/TCP/);
  t.regex(text, /egress of x\/a: isolated by x\/egress-web; allowed by rule 0 of x\/egress-web/);
  t.regex(text, /ingress of y\/b: isolated by y\/allow-web; allowed by rule 0 of y\/allow-web \(from all pods in namespaces \{ns: x\} \[peer 1\]/);
});

test('explain gives the nearest miss: right port, wrong namespace', (t) => {
  const { x, text } = explainText(
    [
      policy('x', 'allow-web', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'web' } } }], ports: [{ port: 80 }] }] }),
      policy('x', 'allow-81', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }], ports: [{ port: 81 }] }] }),
    ],
    'y/b',
    'x/a',
  );
  t.false(x.verdict.allowed);
  t.is(x.ingress.nearest?.policy, 'x/allow-web');
  t.regex(text, /nearest miss: rule 0 of x\/allow-web allows 80\/TCP but y\/b's namespace y does not match namespaceSelector \{team: web\}: it has no label team/);
  t.regex(text, /rule 0 of x\/allow-81 allows 81\/TCP but y\/b is in namespace y, and a peer without namespaceSelector only matches pods in x, and 80\/TCP is not among them/);
});

test('explain: isolated with no rules, invalid rules, IP endpoints and except', (t) => {
  const { text } = explainText([policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'] })], 'y/a', 'x/a');
  t.regex(text, /x\/deny has no ingress rules: it only isolates/);
  const r2 = explainText([policy('x', 'cidr', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.244.0.0/16', except: ['10.244.1.0/24'] } }] }] })], podIP('y', 'a'), 'x/a');
  t.regex(r2.text, /is in the except 10\.244\.1\.0\/24 of 10\.244\.0\.0\/16/);
  const r3 = explainText([policy('x', 'pods', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })], '192.0.2.1', 'x/a');
  t.regex(r3.text, /192\.0\.2\.1 is not a pod/);
});

test('explain rejects unknown endpoints with one line', (t) => {
  const plan = compile(storeOf(conformanceObjects()));
  t.throws(() => resolveEndpoint(plan, 'x/nope', 'from'), { message: /--from "x\/nope": no such pod/ });
  t.throws(() => resolveEndpoint(plan, 'not an endpoint', 'to'), { message: /expected namespace\/name, namespace\/name\[Kind\] or an IP/ });
});

test('lint warns about what reviewers miss', (t) => {
  const store = storeOf([
    ...conformanceObjects(),
    policy('x', 'nobody', { podSelector: { matchLabels: { pod: 'zzz' } }, policyTypes: ['Ingress'] }),
    policy('x', 'ghost-peer', { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'ghost' } } }] }] }),
    policy('y', 'bad-name', { podSelector: {}, ingress: [{ ports: [{ port: 'no-such-port' }] }] }),
    policy('y', 'cidr-pods', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.244.1.0/24' } }] }] }),
    policy('z', 'ignored', { podSelector: {}, policyTypes: ['Egress'], ingress: [{}], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 443 }] }] }),
  ]);
  const codes = lint(store).map((f) => `${f.object} ${f.field} ${f.code}`);
  t.deepEqual(codes.sort(), [
    'NetworkPolicy x/ghost-peer spec.ingress[0].from[0] peer-matches-nothing',
    'NetworkPolicy x/nobody spec.podSelector selects-no-pod',
    'NetworkPolicy y/bad-name spec.ingress[0].ports[0].port named-port-unresolved',
    'NetworkPolicy y/cidr-pods spec.ingress[0].from[0].ipBlock.cidr ipblock-overlaps-pods',
    'NetworkPolicy z/ignored spec.ingress rules-ignored',
    'NetworkPolicy z/ignored spec.policyTypes egress-blocks-dns',
  ]);
});

test('lint is quiet about an egress lockdown that allows DNS', (t) => {
  const store = storeOf([
    ...conformanceObjects(),
    policy('z', 'lockdown', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 53, protocol: 'UDP' }, { port: 53 }] }] }),
  ]);
  t.deepEqual(lint(store), []);
});
