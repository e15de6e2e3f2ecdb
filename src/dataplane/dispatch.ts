// Per-packet dispatch: how a packet of an isolated local pod reaches that pod's chain without walking
// a list of every pod on the node. Pure.
//
// One tree per direction — by destination (`PODWALL-DST-PODS`: the pod's ingress) and by source
// (`PODWALL-SRC-PODS`: its egress) — over the pod IPs, a trie on the address bits with a fan-out of 16
// (4 bits per level, nibble aligned) and path compression:
//   a chain holding at most 16 pod IPs lists them:    -d 10.244.1.5/32 -m comment "ns/pod" -g KUBE-POD-FW-x
//   a larger one splits them on the next 4 bits where they differ, one rule per non-empty part:
//                                                      -d 10.244.1.16/28 -g PODWALL-DST-<16>
//   (a part with a single IP gets that IP's rule directly).
// A new connection therefore evaluates at most 16 rules per level, and the number of levels is
// log16 of the pods for densely allocated pod IPs (and never more than address bits / 4): 1,000 pods of
// a /22 are three levels. The jumps are gotos, so falling off a pod chain returns straight to the
// KUBE-ROUTER-* chain that entered the tree; an address the tree does not hold falls off a tree chain
// the same way. Two pods sharing an IP (a transient state) are both visited, in pod order: every pod
// but the last is entered with -j, as the old per-pod list did.
//
// The tree is a function of the set of (IP, pod chain) pairs only, and every sub-chain is named after
// the CIDR it covers, so adding or removing a pod rewrites the chains on its path (usually one leaf of
// at most 16 rules per tree), never the others.
import type { Family } from '../cluster/model.js';
import type { IptChain, IptRule } from '../iptables/model.js';
import { LRUCache } from 'lru-cache';
import { bitsOf, formatCIDR, parseIP, prefixMask } from '../net/ip.js';
import { dispatchChainName, DISPATCH_ROOT, type DispatchDirection } from './names.js';

/** Bits per tree level (fan-out 16). */
export const DISPATCH_STRIDE = 4;
/** A chain lists its IPs when it holds at most this many. */
export const DISPATCH_LEAF = 16;

export interface DispatchEntry {
  /** Canonical IP text of the pod's address in this family. */
  ip: string;
  /** The pod chain (KUBE-POD-FW-<16>). */
  chain: string;
  /** Rule comment (the pod key). */
  comment: string[];
}

interface Entry extends DispatchEntry {
  value: bigint;
}

/**
 * Tree chains are rebuilt per render; an unchanged chain (same name and same entries) is handed back
 * as the same object so the diff recognises it by identity.
 */
const chainCache = new LRUCache<string, IptChain>({ max: 16384 });

/**
 * Entries with their parsed address, per entry object (pod renders hand back the same entries while a
 * pod is unchanged: an event re-parses none of the other pods' IPs). Entries are never mutated.
 */
const parsed = new WeakMap<DispatchEntry, { family: Family; entry: Entry }>();

/** The dispatch chains of one direction, the root (`PODWALL-DST-PODS` / `PODWALL-SRC-PODS`) first. */
export function dispatchChains(family: Family, direction: DispatchDirection, entries: readonly DispatchEntry[]): IptChain[] {
  const list: Entry[] = [];
  for (const e of entries) {
    let hit = parsed.get(e);
    if (!hit) {
      const p = parseIP(e.ip);
      if (!p || p.family !== family) throw new Error(`dispatch: ${JSON.stringify(e.ip)} is not an ${family} address`);
      parsed.set(e, (hit = { family: p.family, entry: { ip: e.ip, chain: e.chain, comment: e.comment, value: p.value } }));
    } else if (hit.family !== family) throw new Error(`dispatch: ${JSON.stringify(e.ip)} is not an ${family} address`);
    list.push(hit.entry);
  }
  // By address, then by pod chain: deterministic whatever the input order.
  list.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : a.chain < b.chain ? -1 : a.chain > b.chain ? 1 : 0));
  const out: IptChain[] = [];
  build(family, direction, DISPATCH_ROOT[direction], 0, list, 0, list.length, out);
  return out;
}

function build(family: Family, direction: DispatchDirection, name: string, prefix: number, list: Entry[], from: number, to: number, out: IptChain[]): void {
  const bits = bitsOf(family);
  const sel = direction === 'dst' ? '-d' : '-s';
  const rules: IptRule[] = [];
  const children: [string, number, number, number][] = [];
  const keyParts: string[] = [name];
  const leafRules = (a: number, b: number): void => {
    for (let i = a; i < b; i++) {
      const e = list[i]!;
      // Another pod with the same IP follows: visit this one and come back (-j), as the old list did.
      const shared = i + 1 < b && list[i + 1]!.value === e.value;
      rules.push({ args: [sel, `${e.ip}/${bits}`, ...e.comment, shared ? '-j' : '-g', e.chain] });
      keyParts.push(`${e.ip}>${e.chain}${shared ? '+' : ''}|${e.comment.join(' ')}`);
    }
  };
  if (to - from <= DISPATCH_LEAF || list[from]!.value === list[to - 1]!.value) leafRules(from, to);
  else {
    // The first level below `prefix` at which the entries differ (they are sorted: compare the ends).
    let q = Math.min(bits, prefix + DISPATCH_STRIDE);
    while (q < bits && (list[from]!.value >> BigInt(bits - q)) === (list[to - 1]!.value >> BigInt(bits - q))) q = Math.min(bits, q + DISPATCH_STRIDE);
    const shift = BigInt(bits - q);
    for (let i = from; i < to; ) {
      const part = list[i]!.value >> shift;
      let j = i + 1;
      while (j < to && list[j]!.value >> shift === part) j++;
      if (list[i]!.value === list[j - 1]!.value) leafRules(i, j);
      else {
        const cidr = formatCIDR({ family, addr: list[i]!.value & prefixMask(family, q), prefix: q });
        const child = dispatchChainName(direction, cidr);
        rules.push({ args: [sel, cidr, '-g', child] });
        keyParts.push(`${cidr}>${child}`);
        children.push([child, q, i, j]);
      }
      i = j;
    }
  }
  const key = keyParts.join('\u0000');
  let chain = chainCache.get(key);
  if (!chain) chainCache.set(key, (chain = { name, policy: '-', rules }));
  out.push(chain);
  for (const [child, q, i, j] of children) build(family, direction, child, q, list, i, j, out);
}
