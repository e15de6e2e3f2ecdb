// Names of everything the dataplane creates: chains, ipsets, marks, and the rules that mark
// "podwall/kube-router firewall owns this". Pure.
//
// Hashed names are the first 16 characters of base32(sha256(identity)) (RFC 4648 alphabet A-Z2-7,
// as kube-router uses), where the identity is made of stable inputs only (namespace/name, policy and
// direction, peer set id and family) — never members or a sync version — so the same cluster always
// renders the same names and the apply step can diff against what is already in the kernel.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Direction, Family } from '../cluster/model.js';

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 with padding, as Go's base32.StdEncoding prints it. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const b of bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += B32[(buffer << (5 - bits)) & 31];
  while (out.length % 8 !== 0) out += '=';
  return out;
}

/** Names are pure functions of stable identities: compute each once. */
// Bounded by count without preallocating 200,000 slots (see canonical in ipset.ts).
const hashes = new LRUCache<string, string>({ maxSize: 200_000, sizeCalculation: () => 1 });

/** First 16 characters of base32(sha256(identity)): [A-Z2-7]{16}. */
export function hash16(identity: string): string {
  let h = hashes.get(identity);
  if (h === undefined) {
    // 16 base32 characters are the first 80 bits: encode just those 10 bytes.
    h = base32(createHash('sha256').update(identity, 'utf8').digest().subarray(0, 10));
    hashes.set(identity, h);
  }
  return h;
}

// Top-level chains (kube-router's names) and the built-in chains that jump to them.
export const KUBE_ROUTER_INPUT = 'KUBE-ROUTER-INPUT';
export const KUBE_ROUTER_FORWARD = 'KUBE-ROUTER-FORWARD';
export const KUBE_ROUTER_OUTPUT = 'KUBE-ROUTER-OUTPUT';
export const TOP_CHAINS: Readonly<Record<'INPUT' | 'FORWARD' | 'OUTPUT', string>> = {
  INPUT: KUBE_ROUTER_INPUT,
  FORWARD: KUBE_ROUTER_FORWARD,
  OUTPUT: KUBE_ROUTER_OUTPUT,
};
export const BUILTIN_HOOKS = ['INPUT', 'FORWARD', 'OUTPUT'] as const;
export type BuiltinHook = (typeof BUILTIN_HOOKS)[number];

export const COMMON_CHAIN = 'KUBE-NWPLCY-COMMON';
export const DEFAULT_CHAIN = 'KUBE-NWPLCY-DEFAULT';
/** kube-router ≥ 2.6 tail chain: never rendered by podwall, but owned (cleanup removes it). */
export const TAIL_CHAIN = 'KUBE-NWPLCY-TAIL';
export const POD_CHAIN_PREFIX = 'KUBE-POD-FW-';
export const POLICY_CHAIN_PREFIX = 'KUBE-NWPLCY-';
/** ClusterNetworkPolicy tier chains (podwall's own: kube-router has no such tiers). 28 characters with the hash. */
export const ADMIN_CHAIN_PREFIX = 'PODWALL-ADM-';
export const BASELINE_CHAIN_PREFIX = 'PODWALL-BSL-';

export const SRC_SET_PREFIX = 'KUBE-SRC-';
export const DST_SET_PREFIX = 'KUBE-DST-';
export const POD_SUBNETS_SET = 'kube-router-pod-subnets';
export const NODE_IPS_SET = 'kube-router-node-ips';
/** kube-router's --netpol-default-deny set: not rendered by podwall, owned for cleanup. */
export const KUBE_ROUTER_LOCAL_PODS_SET = 'kube-router-local-pods';
/**
 * Service address,proto:port pairs KUBE-ROUTER-INPUT lets through (podwall's own name: kube-router's
 * proxy owns kube-router-svip). Earlier podwall versions had a hash:ip `podwall-service-ips`; as a
 * stale podwall-* set it is destroyed once nothing references it.
 */
export const SERVICE_PORTS_SET = 'podwall-service-ports';
/** Local pods podwall has programmed; traffic of other IPs of the node's pod CIDR is rejected. */
export const PROGRAMMED_SET = 'podwall-programmed';
/**
 * Local pods that some policy isolates (they have a pod chain): established and related packets to or
 * from them are accepted with one lookup at the top of KUBE-ROUTER-*, before any dispatch.
 */
export const ISOLATED_SET = 'podwall-isolated';
/** Prefix of temporary sets used to swap in new members (stale ones are garbage-collected). */
export const TMP_SET_PREFIX = 'podwall-tmp-';

/**
 * Dispatch trees (dispatch.ts): from KUBE-ROUTER-* to a pod chain by destination (ingress) or source
 * (egress) IP. podwall's own helper chains: kube-router has no equivalent.
 */
export type DispatchDirection = 'dst' | 'src';
export const DISPATCH_ROOT: Readonly<Record<DispatchDirection, string>> = { dst: 'PODWALL-DST-PODS', src: 'PODWALL-SRC-PODS' };
const DISPATCH_PREFIX: Readonly<Record<DispatchDirection, string>> = { dst: 'PODWALL-DST-', src: 'PODWALL-SRC-' };
/** Every chain podwall adds beyond kube-router's names starts with this. */
export const PODWALL_CHAIN_PREFIX = 'PODWALL-';

/** A dispatch sub-chain, named after the direction and the CIDR it covers (28 characters). */
export function dispatchChainName(direction: DispatchDirection, cidr: string): string {
  return DISPATCH_PREFIX[direction] + hash16(`dispatch\u0000${direction}\u0000${cidr}`);
}

/** Mark set by a policy rule that admits the packet (kube-router: 0x10000). */
export const MARK_MATCHED = '0x10000/0x10000';
/** Mark a pod chain sets once the packet complies with that pod's policies (kube-router: 0x20000). */
export const MARK_NETPOL_OK = '0x20000/0x20000';
export const MARK_RESET_MATCHED = '0x0/0x10000';
/**
 * Audited policies are judged inside a pod chain between two rules that set and clear this bit
 * (podwall's own; never left set outside the block): "in the audit block" (0x40000 set), "and no
 * audited rule matched" (0x40000 set, 0x10000 clear), and back to unmarked on the way out — so the
 * marks their chains set never reach the rules that enforce.
 */
export const MARK_AUDIT = '0x40000/0x40000';
export const MARK_AUDIT_UNMATCHED = '0x40000/0x50000';
export const MARK_AUDIT_CLEAR = '0x0/0x50000';
export const NFLOG_GROUP = '100';

/** `inet6:` prefix for IPv6 sets, as kube-router names them. */
export function familySetName(base: string, family: Family): string {
  return family === 'ipv6' ? `inet6:${base}` : base;
}

export function podChainName(namespace: string, name: string): string {
  return POD_CHAIN_PREFIX + hash16(`pod\u0000${namespace}\u0000${name}`);
}

/** Separate chains per direction: identity is the policy and the direction. */
export function policyChainName(policyId: string, direction: Direction): string {
  return POLICY_CHAIN_PREFIX + hash16(`policy\u0000${policyId}\u0000${direction}`);
}

/**
 * Peer / named-port set: KUBE-SRC- for ingress sources, KUBE-DST- for egress destinations and for
 * named-port destination sets; identity is a stable id (a peer's setId, a rule's pod-peer set id, a
 * named-port entry) plus the family; IPv6 sets get the `inet6:` prefix (at most 31 characters).
 */
export function peerSetName(prefix: typeof SRC_SET_PREFIX | typeof DST_SET_PREFIX, identity: string, family: Family): string {
  return familySetName(prefix + hash16(`set\u0000${identity}\u0000${family}`), family);
}

/**
 * A tier chain: the rules of the ClusterNetworkPolicies (in evaluation order) that select a set of
 * pods, for one direction. Identity: tier, direction and the ordered policy names — pods selected by
 * the same policies share the chain, and a rule change rewrites it in place.
 */
export function tierChainName(tier: 'admin' | 'baseline', direction: Direction, policyIds: readonly string[]): string {
  return (tier === 'admin' ? ADMIN_CHAIN_PREFIX : BASELINE_CHAIN_PREFIX) + hash16(`tier\u0000${tier}\u0000${direction}\u0000${policyIds.join('\u0000')}`);
}

/** The stable reference of a ClusterNetworkPolicy rule (its id `cnp:<name>/<direction>/<index>`) in NFLOG prefixes. */
export function cnpRuleRef(ruleId: string): string {
  return hash16(`cnp-rule\u0000${ruleId}`);
}

export function tmpSetName(forSet: string): string {
  return TMP_SET_PREFIX + hash16(`tmp\u0000${forSet}`);
}

/** kube-router's rule uuid: base32(sha256(chain + args joined without separator))[:16]. */
export function kubeRouterRuleUuid(chain: string, args: readonly string[]): string {
  return hash16(chain + args.join(''));
}

/** Chains podwall (or kube-router's firewall) owns in the filter table. */
export function isOwnedChain(name: string): boolean {
  return (
    name === KUBE_ROUTER_INPUT ||
    name === KUBE_ROUTER_FORWARD ||
    name === KUBE_ROUTER_OUTPUT ||
    name.startsWith(POD_CHAIN_PREFIX) ||
    name.startsWith(POLICY_CHAIN_PREFIX) ||
    name.startsWith(PODWALL_CHAIN_PREFIX)
  );
}

const OWNED_SET_NAMES = new Set([POD_SUBNETS_SET, NODE_IPS_SET, KUBE_ROUTER_LOCAL_PODS_SET]);

/**
 * Sets podwall (or kube-router's firewall) owns: KUBE-SRC-*, KUBE-DST-*, podwall-*, and the
 * kube-router-pod-subnets / -node-ips / -local-pods sets, each also with the `inet6:` prefix.
 * Other kube-router-* sets (the service proxy's kube-router-svip, ...) are not ours.
 */
export function isOwnedSet(name: string): boolean {
  const base = name.startsWith('inet6:') ? name.slice(6) : name;
  return base.startsWith(SRC_SET_PREFIX) || base.startsWith(DST_SET_PREFIX) || base.startsWith('podwall-') || OWNED_SET_NAMES.has(base);
}

/** Sets shared with kube-router's routing controller: cleanup leaves them when something else still uses them. */
export function isSharedSet(name: string): boolean {
  const base = name.startsWith('inet6:') ? name.slice(6) : name;
  return base === POD_SUBNETS_SET || base === NODE_IPS_SET;
}

/**
 * Whether a policy chain (not COMMON/DEFAULT/TAIL): the unit a kernel rejection can be isolated to
 * (left out, its pods stay denied). Tier chains are not: leaving one out would drop Admin/Baseline
 * denials, so a refused tier chain fails the whole apply and the last good state stays.
 */
export function isPolicyChain(name: string): boolean {
  return name.startsWith(POLICY_CHAIN_PREFIX) && name !== COMMON_CHAIN && name !== DEFAULT_CHAIN && name !== TAIL_CHAIN;
}
