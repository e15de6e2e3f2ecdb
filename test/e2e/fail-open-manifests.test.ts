// The manifests source under faults, judged by real packets (see test/support/fail-open.ts): broken,
// truncated and half-written files, an empty file, the directory deleted or unreadable, invalid
// objects of every class, alias bombs, duplicates across files, and restarts — while denied and
// allowed pairs are probed every 20 ms. Zero denied connections may get through.
import test from 'ava';
import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { FailOpenHarness, basePolicies } from '../support/fail-open.js';
import { conformanceObjects, policy, type Raw } from '../support/conformance.js';

let h: FailOpenHarness | undefined;
test.after.always(async () => {
  if (h) chmodSync(h.dir, 0o755);
  await h?.close();
});

const yaml = (objects: Raw[]) => objects.map((o) => stringify(o)).join('---\n');
const GOOD = yaml(basePolicies());
/** The policies with x/deny-ingress (what denies y/a → x/a and y/c → x/b) replaced by `denyIngress`. */
const withDeny = (denyIngress: Raw | string) => (typeof denyIngress === 'string' ? `${denyIngress}---\n${yaml(basePolicies().slice(1))}` : yaml([denyIngress, ...basePolicies().slice(1)]));
const deny = (spec: Raw) => policy('x', 'deny-ingress', spec);
const available = (s: ReturnType<FailOpenHarness['status']>) => s.source?.available === true;
const rejected = (id: string) => (s: ReturnType<FailOpenHarness['status']>) => (s.source?.rejected ?? []).includes(id);

test.serial('no denied connection gets through while the manifests directory is damaged', async (t) => {
  h = await FailOpenHarness.start(t);
  const H = h;
  const restore = async () => {
    H.write('policies.yaml', GOOD);
    await H.applied();
    await H.waitStatus('no errors left', (s) => s.source?.errors === 0);
  };
  /** Writes a damaged policies.yaml, waits until every agent read it and rejected `id`, restores. */
  const invalid = async (text: string, id?: string) => {
    H.write('policies.yaml', text);
    await H.applied();
    await H.waitStatus('the damage reported', (s) => (s.source?.errors ?? 0) > 0 && (id === undefined || rejected(id)(s)));
    await H.probesRan(5);
    await restore();
  };

  // A new revision each time (a comment), so that `applied()` waits for the agents to read it.
  let rev = 0;

  // How long a change takes to be enforced: settle time + read + compile + kernel (reported, not asserted).
  await h.fault('five changes applied one after another (settle time measured)', async () => {
    const ms: number[] = [];
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      H.write('policies.yaml', `${GOOD}# revision ${++rev}\n`);
      await H.applied();
      ms.push(Math.round(performance.now() - start));
    }
    t.log(`write → applied by both agents: ${ms.join(', ')} ms (median ${[...ms].sort((a, b) => a - b)[2]} ms; --manifests-settle 500ms)`);
  });

  // ---- files being written
  await h.fault('half-written file (a writer pausing after "- from:")', async () => {
    await H.writeSlowly('policies.yaml', `${GOOD}# revision ${++rev}\n`, '- from:', 150);
    await H.applied();
  });
  await h.fault('file emptied, then written (O_TRUNC, a pause, the content)', async () => {
    await H.writeSlowly('policies.yaml', `${GOOD}# revision ${++rev}\n`, 0, 150);
    await H.applied();
  });
  await h.fault('file cut inside a flow mapping (does not parse)', async () => {
    await invalid(`${GOOD}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: late, namespace: x`);
  });
  await h.fault('file truncated inside a rule (parses, invalid, later documents gone)', async () => {
    await invalid(GOOD.slice(0, GOOD.indexOf('namespaceSelector') + 12), 'NetworkPolicy x/allow-from-z');
  });
  await h.fault('file left empty', async () => {
    H.write('policies.yaml', '');
    await H.waitStatus('the source reported unavailable', (s) => s.source?.available === false && /empty/.test(s.source.reason ?? ''));
    await H.probesRan(5);
    await restore();
  });

  // ---- the directory
  await h.fault('directory deleted (agents with --health-port 0 keep running)', async () => {
    rmSync(H.dir, { recursive: true, force: true });
    await H.waitStatus('the source reported unavailable', (s) => s.source?.available === false && /gone/.test(s.source.reason ?? ''));
    await H.probesRan(50); // a second of probing with the directory gone; the agents must still be there
    for (const n of ['node-1', 'node-2']) t.is(H.agentExit(n), undefined, `the agent of ${n} is still running`);
    mkdirSync(H.dir);
    H.write('cluster.yaml', yaml(conformanceObjects()));
    H.write('policies.yaml', GOOD);
    await H.applied();
    await H.waitStatus('available again', available);
  });
  await h.fault('directory unreadable (agent without CAP_DAC_OVERRIDE)', async () => {
    await H.restartAgent('node-1', ['setpriv', '--bounding-set=-dac_override,-dac_read_search', '--']);
    await H.applied();
    chmodSync(H.dir, 0o000);
    await H.waitStatus('the source reported unavailable', (s) => s.source?.available === false && /cannot be read/.test(s.source.reason ?? ''), ['node-1']);
    await H.probesRan(10);
    chmodSync(H.dir, 0o755);
    await H.waitStatus('available again', available, ['node-1']);
    await H.applied();
  });
  await h.fault('directory replaced by rename (write elsewhere, then rename)', async () => {
    const next = `${H.dir}.next`;
    rmSync(next, { recursive: true, force: true });
    mkdirSync(next);
    writeFileSync(join(next, 'cluster.yaml'), yaml(conformanceObjects()));
    writeFileSync(join(next, 'policies.yaml'), GOOD);
    writeFileSync(join(next, 'extra.yaml'), yaml([policy('z', 'noop', { podSelector: { matchLabels: { pod: 'none' } }, policyTypes: ['Ingress'] })]));
    rmSync(H.dir, { recursive: true, force: true });
    renameSync(next, H.dir);
    await H.applied();
    H.remove('extra.yaml');
    await H.applied();
  });

  // ---- invalid objects, each class: rejected whole, the last accepted version stays
  await h.fault('unknown field (podselector)', async () => {
    await invalid(withDeny(deny({ podselector: {}, policyTypes: ['Ingress'] })), 'NetworkPolicy x/deny-ingress');
  });
  await h.fault('unknown field inside a rule (an allow-all that would widen)', async () => {
    await invalid(withDeny(deny({ podSelector: {}, policyTypes: ['Ingress'], ingress: [{ form: [{ podSelector: {} }] }] })), 'NetworkPolicy x/deny-ingress');
  });
  await h.fault('duplicate key', async () => {
    await invalid(withDeny('apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-ingress, namespace: x}\nspec:\n  podSelector: {}\n  podSelector: {matchLabels: {pod: none}}\n  policyTypes: [Ingress]\n'));
  });
  await h.fault('YAML merge key', async () => {
    await invalid(withDeny('apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-ingress, namespace: x}\nspec:\n  <<: {podSelector: {matchLabels: {pod: none}}}\n  policyTypes: [Ingress]\n'), 'NetworkPolicy x/deny-ingress');
  });
  await h.fault('three policyTypes', async () => {
    await invalid(withDeny(deny({ podSelector: {}, policyTypes: ['Ingress', 'Egress', 'Ingress'], ingress: [{}] })), 'NetworkPolicy x/deny-ingress');
  });
  await h.fault('wrong type (podSelector: "all")', async () => {
    await invalid(withDeny(deny({ podSelector: 'all', policyTypes: ['Ingress'] })), 'NetworkPolicy x/deny-ingress');
  });
  await h.fault('missing required field (ipBlock without cidr)', async () => {
    await invalid(withDeny(deny({ podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from: [{ ipBlock: { except: ['10.0.0.0/8'] } }] }] })), 'NetworkPolicy x/deny-ingress');
  });
  await h.fault('invalid name (the document cannot be identified)', async () => {
    await invalid(withDeny(policy('x', 'Deny Ingress', { podSelector: {}, policyTypes: ['Ingress'], ingress: [{}] })));
  });
  await h.fault('spec: null (API defaulting: deny all ingress — the allowed pair into x is denied meanwhile)', async () => {
    H.write('policies.yaml', yaml([basePolicies()[0]!, { ...policy('x', 'allow-from-z', {}), spec: null }, basePolicies()[2]!]));
    await H.applied();
    await H.probesRan(10);
    await restore();
  }, { allowedDenied: true });
  await h.fault('invalid namespace label (the last accepted namespace z stays)', async () => {
    const objects = conformanceObjects().map((o) => (o.kind === 'Namespace' && (o.metadata as { name: string }).name === 'z' ? { ...o, metadata: { name: 'z', labels: { ns: 'z', team: 'not a label value' } } } : o));
    H.write('cluster.yaml', yaml(objects));
    await H.applied();
    await H.waitStatus('the namespace rejected', rejected('Namespace z'));
    await H.probesRan(5);
    H.write('cluster.yaml', yaml(conformanceObjects()));
    await H.applied();
  });
  await h.fault('missing required field of a pod (x/a without containers stays as accepted)', async () => {
    const objects = conformanceObjects().map((o) => (o.kind === 'Pod' && (o.metadata as { name: string; namespace: string }).namespace === 'x' && (o.metadata as { name: string }).name === 'a' ? { ...o, spec: { nodeName: 'node-1' } } : o));
    H.write('cluster.yaml', yaml(objects));
    await H.applied();
    await H.waitStatus('the pod rejected', rejected('Pod x/a'));
    await H.probesRan(5);
    H.write('cluster.yaml', yaml(conformanceObjects()));
    await H.applied();
  });

  // ---- alias bombs and duplicates
  await h.fault('alias bomb (nested aliases) in place of x/deny-ingress', async () => {
    const levels = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const bomb = levels.map((l, i) => `    ${l}: &${l} [${i === 0 ? Array(10).fill('x').join(',') : Array(10).fill(`*${levels[i - 1]}`).join(',')}]`).join('\n');
    await invalid(withDeny(`apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny-ingress\n  namespace: x\n  labels:\n${bomb}\nspec: {podSelector: {}, ingress: [{}]}\n`));
    // Reloads keep working after it: a change is applied.
    H.write('late.yaml', yaml([policy('z', 'late', { podSelector: { matchLabels: { pod: 'none' } }, policyTypes: ['Ingress'] })]));
    await H.applied();
    H.remove('late.yaml');
    await H.applied();
  });
  await h.fault('101 aliases in one document (an allow-all policy built of aliases)', async () => {
    const aliases = Array.from({ length: 101 }, (_, i) => `    a${i}: *v`).join('\n');
    H.write('aliases.yaml', `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny-ingress\n  namespace: x\n  annotations:\n    base: &v x\n${aliases}\nspec: {podSelector: {}, ingress: [{}]}\n`);
    await H.applied();
    await H.waitStatus('the aliases reported', (s) => (s.source?.firstErrors ?? []).some((e) => /alias/.test(e)));
    H.remove('aliases.yaml');
    await H.applied();
  });
  await h.fault('duplicate object in a file sorted first (an allow-all copy of x/deny-ingress)', async () => {
    H.write('aaa-copy.yaml', yaml([deny({ podSelector: {}, policyTypes: ['Ingress'], ingress: [{}] })]));
    await H.applied();
    await H.waitStatus('the duplicate reported', (s) => (s.source?.firstErrors ?? []).some((e) => /duplicate-object/.test(e)));
    await H.probesRan(5);
    H.remove('aaa-copy.yaml');
    await H.applied();
  });

  // ---- restarts with an invalid object in force
  await h.fault('agents restarted while x/deny-ingress is invalid (its last accepted version survives)', async () => {
    H.write('policies.yaml', withDeny(deny({ podselector: {}, policyTypes: ['Ingress'], ingress: [{}] })));
    await H.applied();
    await H.waitStatus('rejected', rejected('NetworkPolicy x/deny-ingress'));
    await H.restartAgent('node-1');
    await H.restartAgent('node-2');
    await H.applied();
    await H.waitStatus('rejected after the restart', rejected('NetworkPolicy x/deny-ingress'));
    await H.probesRan(10);
    await restore();
  });

  h.assertNoneOpen(t);
});
