// The manifests source under faults, judged by real packets (see test/support/fail-open.ts): broken
// and half-written files, and agent restarts, while denied and allowed pairs are probed every 20 ms.
import test from 'ava';
import { FailOpenHarness, basePolicies } from '../support/fail-open.js';
import { stringify } from 'yaml';

let h: FailOpenHarness | undefined;
test.after.always(async () => {
  await h?.close();
});

const policiesText = () => basePolicies().map((o) => stringify(o)).join('---\n');

test.serial('no denied connection gets through while the manifests directory is damaged', async (t) => {
  h = await FailOpenHarness.start(t);
  const good = policiesText();

  await h.fault('file cut inside a flow mapping (does not parse)', async () => {
    h!.write('policies.yaml', `${good}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: late, namespace: x`);
    await h!.applied();
    h!.write('policies.yaml', good);
    await h!.applied();
  });

  await h.fault('file truncated inside a rule (parses, invalid, later documents gone)', async () => {
    h!.write('policies.yaml', good.slice(0, good.indexOf('namespaceSelector') + 12));
    await h!.applied();
    h!.write('policies.yaml', good);
    await h!.applied();
  });

  await h.fault('agent restarted (SIGKILL)', async () => {
    await h!.restartAgent('node-1');
    await h!.applied();
  });

  h.assertNoneOpen(t);
});
