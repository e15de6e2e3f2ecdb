// What the kernel refused, and the Desired state without it — never wider than the render.
//
// A refusal is contained to the object involved; the rest of the node is programmed:
//   - a set member (`ipset add` refused): left out of every desired set of that type and family that
//     holds it. podwall's sets are allow lists (pod peers, ipBlocks, named-port targets, Service
//     exemptions) or podwall-programmed, whose missing member is rejected by the fail-closed rules:
//     leaving a member out only narrows. A `nomatch` member (an except of an ipBlock) cannot be
//     left out — that would widen — so its whole set is refused instead. Nor can a member of a set a
//     ClusterNetworkPolicy tier chain uses (its Deny and Pass rules are deny lists): not containable;
//   - a set (create refused, or a nomatch member refused): the policy chains using it are left out,
//     and a top-level RETURN rule matching it (the Service whitelist) is dropped (fewer exemptions);
//   - a policy chain: left out with the rules jumping to it; the pods it selects keep their pod
//     chain without its allowances (closed);
//   - a pod chain: replaced by a closed chain (established flows and COMMON, then REJECT).
// Anything else (a top-level chain, a jump, the fail-closed rules, a set a pod or top-level chain
// needs otherwise) cannot be contained: the apply fails and the previous state stays in the kernel.
//
// A refusal is remembered with a fingerprint of what was refused (a chain's rules and the members of
// the sets it uses; a set's type and members; the member itself) and applied again without another
// failed restore while that stays the same. When the object changes or goes away it is forgotten
// (the next apply tries it afresh): the agent recovers by itself. `retryAll()` forgets everything
// (the periodic resync), so a transient refusal does not outlive one resync period.
import type { Family } from '../cluster/model.js';
import type { Ipset, IptChain, IptRule } from '../iptables/model.js';
import type { IpsetOp } from '../iptables/write.js';
import { canonicalMember } from './ipset.js';
import { memberKeys } from './diff.js';
import { ADMIN_CHAIN_PREFIX, BASELINE_CHAIN_PREFIX, COMMON_CHAIN, isPolicyChain, POD_CHAIN_PREFIX, TOP_CHAINS } from './names.js';
import { referencedSets, type Desired } from './render.js';

export type RefusalKind = 'policy-chain' | 'pod-chain' | 'set' | 'member';

export interface Refusal {
  kind: RefusalKind;
  family: Family;
  /** Chain or set name. */
  object: string;
  /** The member, for kind `member` (canonical). */
  member?: string;
  /** What it renders: `policy x/deny ingress`, `pod x/a`, `set KUBE-SRC-... (policy x/a ingress)`. */
  origin: string;
  /** The kernel's words. */
  error: string;
}

/** A restore failure, attributed: which tool, which object (chain or set), which payload line / op. */
export interface AttributedFailure {
  kind: 'ipset' | 'iptables';
  /** Chain (iptables) or set (ipset) the failing line belongs to. */
  object?: string;
  family?: Family;
  /** ipset: the op on the failing line. */
  op?: IpsetOp;
  message: string;
}

const TOP = new Set<string>(Object.values(TOP_CHAINS));

function jumpTarget(rule: IptRule): string | undefined {
  const a = rule.args;
  for (let i = 0; i < a.length - 1; i++) if (a[i] === '-j' || a[i] === '-g') return a[i + 1];
  return undefined;
}

/** Whether a rule matches this set positively (not after `!`). */
function matchesSetPositively(rule: IptRule, set: string): boolean {
  const a = rule.args;
  for (let i = 0; i < a.length - 1; i++) if (a[i] === '--match-set' && a[i + 1] === set) return a[i - 1] !== '!';
  return false;
}

const usesSet = (rule: IptRule, set: string): boolean => rule.args.some((x, i) => x === '--match-set' && rule.args[i + 1] === set);

function setFingerprint(s: Ipset | undefined): string {
  if (!s) return '-';
  return `${s.type}/${s.family}/${[...memberKeys(s)].sort().join(',')}`;
}

function chainFingerprint(c: IptChain, sets: ReadonlyMap<string, Ipset>): string {
  return `${JSON.stringify(c.rules.map((r) => r.args))}\u0000${referencedSets(c)
    .map((n) => `${n}=${setFingerprint(sets.get(n))}`)
    .join('|')}`;
}

/** A closed chain for a pod whose own chain the kernel refused: replies pass, every new connection is rejected. */
export function closedPodChain(name: string, origin: string, family: Family): IptChain {
  return {
    name,
    policy: '-',
    rules: [
      { args: ['-m', 'comment', '--comment', `${origin}: common netpol rules`, '-j', COMMON_CHAIN] },
      {
        args: ['-m', 'comment', '--comment', `${origin}: the kernel refused this pod's chain; closed`, '-j', 'REJECT', '--reject-with', family === 'ipv6' ? 'icmp6-port-unreachable' : 'icmp-port-unreachable'],
      },
    ],
  };
}

interface Remembered {
  refusal: Refusal;
  fingerprint: string;
}

export class Refusals {
  /** `family/chain` → refused chain; `family/set` → refused set; `family/set/member` → refused member. */
  private readonly known = new Map<string, Remembered>();

  /** Every refusal currently applied, for reports, /status and metrics. */
  list(): Refusal[] {
    return [...this.known.values()].map((r) => r.refusal);
  }

  /** Forget everything: the next apply tries every object afresh (the periodic resync). */
  retryAll(): void {
    this.known.clear();
  }

  /**
   * Forgets refusals whose object changed or went away (its fingerprint differs from the render):
   * returns them, so the caller can log that they are tried again.
   */
  prune(desired: readonly Desired[]): Refusal[] {
    const gone: Refusal[] = [];
    for (const [key, r] of this.known) {
      const d = desired.find((x) => x.family === r.refusal.family);
      const now = d ? this.fingerprintOf(r.refusal, d) : undefined;
      if (now !== r.fingerprint) {
        this.known.delete(key);
        gone.push(r.refusal);
      }
    }
    return gone;
  }

  private fingerprintOf(r: Refusal, d: Desired): string | undefined {
    const sets = new Map(d.sets.map((s) => [s.name, s]));
    if (r.kind === 'member') {
      const s = sets.get(r.object);
      return s && memberKeys(s).has(r.member!) ? r.member : undefined;
    }
    if (r.kind === 'set') return sets.has(r.object) ? setFingerprint(sets.get(r.object)) : undefined;
    const c = d.chains.find((x) => x.name === r.object);
    return c ? chainFingerprint(c, sets) : undefined;
  }

  /** The render without what the kernel refused. Pure; returns `d` itself when nothing applies. */
  applyTo(d: Desired): Desired {
    const mine = [...this.known.values()].map((r) => r.refusal).filter((r) => r.family === d.family);
    if (mine.length === 0) return d;
    const badSets = new Set(mine.filter((r) => r.kind === 'set').map((r) => r.object));
    const badChains = new Set(mine.filter((r) => r.kind === 'policy-chain').map((r) => r.object));
    // Policy chains using a refused set go too.
    for (const c of d.chains) if (isPolicyChain(c.name) && referencedSets(c).some((n) => badSets.has(n))) badChains.add(c.name);
    const closedPods = new Map(mine.filter((r) => r.kind === 'pod-chain').map((r) => [r.object, r.origin]));
    const badMembers = new Map<string, Set<string>>();
    for (const r of mine) if (r.kind === 'member') (badMembers.get(r.object) ?? badMembers.set(r.object, new Set()).get(r.object)!).add(r.member!);

    const chains: IptChain[] = [];
    for (const c of d.chains) {
      if (badChains.has(c.name)) continue;
      if (closedPods.has(c.name)) {
        chains.push(closedPodChain(c.name, closedPods.get(c.name)!, d.family));
        continue;
      }
      const keep = c.rules.filter((r) => !badChains.has(jumpTarget(r) ?? '') && !(TOP.has(c.name) && jumpTarget(r) === 'RETURN' && [...badSets].some((s) => matchesSetPositively(r, s))));
      chains.push(keep.length === c.rules.length ? c : { ...c, rules: keep });
    }
    const used = new Set(chains.flatMap(referencedSets));
    const sets: Ipset[] = [];
    for (const s of d.sets) {
      // A refused set, and peer sets only left-out chains used.
      if (badSets.has(s.name) || (isPeerSetName(s.name) && !used.has(s.name))) continue;
      const drop = badMembers.get(s.name);
      if (!drop) {
        sets.push(s);
        continue;
      }
      sets.push({ ...s, members: s.members.filter((m) => !drop.has(canonicalMember(m, s.type, s.family))) });
    }
    const origins = { ...d.origins };
    for (const b of badChains) delete origins[b];
    return { ...d, chains, sets, origins };
  }

  /**
   * Records the refusal a failed restore reveals, when it can be contained (see the top of this
   * file); returns what was recorded, or undefined when the failure is not containable.
   * `effective` is what the failed attempt tried to write, `desired` the full render.
   */
  record(f: AttributedFailure, effective: readonly Desired[], desired: readonly Desired[]): Refusal[] | undefined {
    if (f.object === undefined) return undefined;
    const out: Refusal[] = [];
    const remember = (r: Refusal, d: Desired): void => {
      const fp = this.fingerprintOf(r, d);
      if (fp === undefined) return;
      this.known.set(`${r.family}/${r.object}${r.member !== undefined ? `/${r.member}` : ''}`, { refusal: r, fingerprint: fp });
      out.push(r);
    };
    if (f.kind === 'iptables') {
      const scope = effective.filter((d) => f.family === undefined || d.family === f.family);
      for (const d of scope) {
        const full = desired.find((x) => x.family === d.family)!;
        if (isPolicyChain(f.object) && d.chains.some((c) => c.name === f.object)) {
          remember({ kind: 'policy-chain', family: d.family, object: f.object, origin: d.origins[f.object] ?? f.object, error: f.message }, full);
        } else if (f.object.startsWith(POD_CHAIN_PREFIX) && d.chains.some((c) => c.name === f.object) && !this.known.has(`${d.family}/${f.object}`)) {
          remember({ kind: 'pod-chain', family: d.family, object: f.object, origin: (d.origins[f.object] ?? f.object).replace(/^pod /, ''), error: f.message }, full);
        }
      }
      return out.length ? out : undefined;
    }
    // ipset: the owner is the set being written (a temporary set's owner is the set it replaces).
    const set = f.object;
    const d = effective.find((x) => x.sets.some((s) => s.name === set));
    if (!d) return undefined;
    const full = desired.find((x) => x.family === d.family)!;
    const target = d.sets.find((s) => s.name === set)!;
    if (f.op?.op === 'add' && !f.op.nomatch) {
      const key = canonicalMember({ entry: f.op.entry }, target.type, target.family);
      const holding = d.sets.filter((s) => s.type === target.type && s.family === target.family && memberKeys(s).has(key));
      // A ClusterNetworkPolicy tier chain's Deny or Pass rule would lose the member: that widens.
      const tierSets = new Set(d.chains.filter((c) => c.name.startsWith(ADMIN_CHAIN_PREFIX) || c.name.startsWith(BASELINE_CHAIN_PREFIX)).flatMap(referencedSets));
      if (holding.some((s) => tierSets.has(s.name))) return undefined;
      // The kernel refuses the same entry in every set of the same type and family: leave it out of all at once.
      for (const s of d.sets) {
        if (s.type !== target.type || s.family !== target.family || !memberKeys(s).has(key)) continue;
        remember({ kind: 'member', family: d.family, object: s.name, member: key, origin: setOrigin(s.name, d), error: f.message }, full);
      }
      return out.length ? out : undefined;
    }
    // The whole set: containable only when every rule using it is in a policy chain, or a top-level RETURN matching it.
    for (const c of d.chains) {
      for (const r of c.rules) {
        if (!usesSet(r, set)) continue;
        if (isPolicyChain(c.name)) continue;
        if (TOP.has(c.name) && jumpTarget(r) === 'RETURN' && matchesSetPositively(r, set)) continue;
        return undefined;
      }
    }
    remember({ kind: 'set', family: d.family, object: set, origin: setOrigin(set, d), error: f.message }, full);
    return out.length ? out : undefined;
  }
}

function isPeerSetName(name: string): boolean {
  const base = name.startsWith('inet6:') ? name.slice(6) : name;
  return base.startsWith('KUBE-SRC-') || base.startsWith('KUBE-DST-');
}

/** `set NAME (used by policy x/a ingress, ...)`. */
function setOrigin(set: string, d: Desired): string {
  const users = d.chains.filter((c) => referencedSets(c).includes(set)).map((c) => d.origins[c.name] ?? c.name);
  return `set ${set}${users.length ? ` (used by ${[...new Set(users)].join(', ')})` : ''}`;
}

/** One line per refusal: what, where, the kernel's words, and what that means for the pods. */
export function describeRefusal(r: Refusal): string {
  switch (r.kind) {
    case 'policy-chain':
      return `${r.family} ${r.origin} (${r.object}): ${r.error} — left out; the pods it selects stay closed`;
    case 'pod-chain':
      return `${r.family} pod ${r.origin} (${r.object}): ${r.error} — its chain is replaced by a closed one`;
    case 'set':
      return `${r.family} ${r.origin}: ${r.error} — left out with the rules using it; nothing is widened`;
    case 'member':
      return `${r.family} ${r.origin}: member ${r.member}: ${r.error} — left out (an address in an allow list, or an unprogrammed pod: narrower, never wider)`;
  }
}
