// Which iptables backend the node uses (nft or legacy), decided as kube-proxy's iptables-wrapper
// does: kubelet/kube-proxy leave a hint chain (KUBE-IPTABLES-HINT, or KUBE-KUBELET-CANARY) in the
// mangle table of the backend they use; without one, the backend holding more rules wins, nft on a
// tie. Then the matching binaries.
import type { Family } from '../cluster/model.js';
import { onPath, type Runner } from './exec.js';

export type Backend = 'nft' | 'legacy';

export interface Tools {
  backend: Backend;
  save: Record<Family, string>;
  restore: Record<Family, string>;
  ipset: string;
}

/** Binaries of a backend; falls back to the plain names when the suffixed ones are not installed. */
export function toolsFor(backend: Backend, exists: (name: string) => boolean = onPath): Tools {
  const pick = (prefix: 'iptables' | 'ip6tables', kind: 'save' | 'restore'): string => {
    const suffixed = `${prefix}-${backend}-${kind}`;
    if (exists(suffixed)) return suffixed;
    // Plain names: the distribution's default (nft on current iptables); only used when nothing better exists.
    return `${prefix}-${kind}`;
  };
  return {
    backend,
    save: { ipv4: pick('iptables', 'save'), ipv6: pick('ip6tables', 'save') },
    restore: { ipv4: pick('iptables', 'restore'), ipv6: pick('ip6tables', 'restore') },
    ipset: 'ipset',
  };
}

const HINT = /^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY)\s/m;

function ruleCount(text: string): number {
  let n = 0;
  for (const line of text.split('\n')) if (line.startsWith('-')) n++;
  return n;
}

export interface Detection {
  backend: Backend;
  reason: string;
}

/** Detects the backend in the runner's namespace (read-only: only *-save is run). */
export async function detectBackend(run: Runner, exists: (name: string) => boolean = onPath): Promise<Detection> {
  const have = { nft: exists('iptables-nft-save'), legacy: exists('iptables-legacy-save') };
  if (!have.nft && !have.legacy) return { backend: 'nft', reason: 'neither iptables-nft-save nor iptables-legacy-save is installed; using the default binaries' };
  if (!have.legacy) return { backend: 'nft', reason: 'only the nft backend is installed' };
  if (!have.nft) return { backend: 'legacy', reason: 'only the legacy backend is installed' };
  const save = async (bin: string, args: string[]): Promise<string> => {
    try {
      const r = await run(bin, args);
      return r.code === 0 ? r.stdout : '';
    } catch {
      return '';
    }
  };
  for (const b of ['nft', 'legacy'] as const) {
    const mangle = (await save(`iptables-${b}-save`, ['-t', 'mangle'])) + (await save(`ip6tables-${b}-save`, ['-t', 'mangle']));
    if (HINT.test(mangle)) return { backend: b, reason: `kubelet's hint chain is in the ${b} mangle table` };
  }
  const count = async (b: Backend): Promise<number> => ruleCount(await save(`iptables-${b}-save`, [])) + ruleCount(await save(`ip6tables-${b}-save`, []));
  const nft = await count('nft');
  const legacy = await count('legacy');
  if (legacy > nft) return { backend: 'legacy', reason: `legacy holds more rules (${legacy} vs ${nft})` };
  return { backend: 'nft', reason: `nft holds at least as many rules (${nft} vs ${legacy} legacy)` };
}
