// `podwall demo` (the README's first command) with a lab: simulator and kernel agree, before and
// after the live change, and the lab is gone afterwards.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { listNetns } from '../../src/lab/netns.js';

const BIN = fileURLToPath(new URL('../../../bin/podwall.js', import.meta.url));

test('podwall demo: kernel and simulator agree on every measured pair; nothing is left behind', async (t) => {
  if (process.getuid?.() !== 0) t.fail('the demo e2e test needs root (CI runs as root)');
  const r = spawnSync(process.execPath, [BIN, 'demo'], { encoding: 'utf8', timeout: 170_000 });
  t.is(r.status, 0, r.stderr);
  const verdicts = r.stdout.split('\n').filter((l) => l.includes('→ kernel and simulator') || l.includes('DIFFER'));
  t.is(verdicts.length, 5, r.stdout);
  t.true(verdicts.every((l) => l.includes('agree on all')), verdicts.join('\n'));
  t.regex(r.stdout, /nearest miss: rule 0 of db\/allow-api allows 5432\/TCP but api\/orders does not match podSelector \{app: payments\}/);
  t.deepEqual((await listNetns()).filter((ns) => ns.startsWith('pwl-demo-')), []);
});
