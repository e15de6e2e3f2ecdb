// Helpers for root tests in network namespaces created by the test (never the host's tables).
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Family } from '../../src/cluster/model.js';
import type { Desired } from '../../src/dataplane/render.js';
import { familyStateFromSave, memberKeys, setStateFromSave } from '../../src/dataplane/diff.js';

export function sh(ns: string, cmd: string[], input?: string): string {
  try {
    return execFileSync('ip', ['netns', 'exec', ns, ...cmd], { input: input ?? '', encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

/** Namespaces made by this test file; delete them in test.after.always with `deleteNamespaces`. */
export const createdNamespaces: string[] = [];

export function newNamespace(prefix: string, tag: string): string {
  if (process.getuid?.() !== 0) throw new Error(`${prefix}: this kernel test needs root (it creates network namespaces)`);
  const ns = `${prefix}-${tag}-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  createdNamespaces.push(ns);
  return ns;
}

export function deleteNamespaces(): void {
  for (const ns of createdNamespaces.splice(0)) {
    try {
      execFileSync('ip', ['netns', 'del', ns]);
    } catch {
      /* already gone */
    }
  }
}

export function bins(backend: 'nft' | 'legacy') {
  return {
    save: { ipv4: `iptables-${backend}-save`, ipv6: `ip6tables-${backend}-save` } as Record<Family, string>,
    restore: { ipv4: `iptables-${backend}-restore`, ipv6: `ip6tables-${backend}-restore` } as Record<Family, string>,
  };
}

/** Differences between the live podwall-owned state and the desired state (empty when equal). */
export function liveDiff(ns: string, backend: 'nft' | 'legacy', desired: Desired[], families: Family[]): string[] {
  const b = bins(backend);
  const out: string[] = [];
  for (const d of desired) {
    const live = familyStateFromSave(sh(ns, [b.save[d.family], '-t', 'filter']));
    const have = [...live.chains.keys()].sort().join(',');
    const want = d.chains.map((c) => c.name).sort().join(',');
    if (have !== want) out.push(`${d.family} chains: live ${have} / desired ${want}`);
    for (const c of d.chains) {
      if (JSON.stringify(live.chains.get(c.name)?.rules.map((r) => r.args)) !== JSON.stringify(c.rules.map((r) => r.args))) out.push(`${d.family} ${c.name} (${d.origins[c.name]}) differs`);
    }
    for (const j of d.jumps) {
      const mine = live.jumps.filter((x) => x.chain === j.chain);
      if (mine.length !== 1 || mine[0]?.position !== 1) out.push(`${d.family} jump in ${j.chain}: ${mine.length} found, position ${mine[0]?.position}`);
    }
  }
  const sets = setStateFromSave(sh(ns, ['ipset', 'save']), families);
  const want = desired.flatMap((d) => d.sets);
  if ([...sets.keys()].sort().join(',') !== want.map((s) => s.name).sort().join(',')) out.push(`sets: live ${[...sets.keys()].sort().join(',')} / desired ${want.map((s) => s.name).sort().join(',')}`);
  for (const s of want) {
    const l = sets.get(s.name);
    if (l && [...memberKeys(l)].sort().join(',') !== [...memberKeys(s)].sort().join(',')) out.push(`members of ${s.name} differ`);
  }
  return out;
}

/** Asserts the live podwall-owned state equals the desired state. */
export function verify(t: ExecutionContext, ns: string, backend: 'nft' | 'legacy', desired: Desired[], families: Family[], label: string): void {
  t.deepEqual(liveDiff(ns, backend, desired, families), [], label);
}

export async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
