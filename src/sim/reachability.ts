// Reachability over many pairs: the matrix, diff and test ask millions of cells. A cell is its two
// sides combined: egress (the source's isolating egress policies and tiers, judged against what the
// destination is to their peers and named ports) and ingress (the reverse). Endpoints that no rule
// can tell apart share classes: a member class (memberships in every peer and named-port target of
// NetworkPolicies and ClusterNetworkPolicies, ipBlocks, address families) and a side class per
// direction (isolating policies, tiers, families). Each side is decided once per pair of its classes
// and port, on a real pair of endpoints, by the same code every other verdict comes from — so 1,000
// endpoints cost a few thousand side decisions, not millions. A property test holds the result to
// deciding every pair on its own.
import type { Direction, Family } from '../cluster/model.js';
import { familyOf } from '../cluster/model.js';
import { blockCoverage, cidrContainsIP, mustCIDR, parseIP, type Cidr } from '../net/ip.js';
import type { Plan, PlanPeer, PlanPod } from '../policy/plan.js';
import type { ProbePort } from '../policy/ports.js';
import { decideFlow, decideSide, evaluateFlow, flowBetween, podNetworkFamilies, podNetworkOf, type Verdict } from './evaluate.js';

interface Block {
  id: number;
  family: Family;
  cidr: Cidr;
  except: Cidr[];
  text: { cidr: string; except: readonly string[] };
}

export interface EndpointClasses {
  /** Whole class of each endpoint key: endpoints of one class are interchangeable to every rule. */
  classOf: Map<string, number>;
  count: number;
  /** Keys whose class is shared safely (not a shared IP). */
  unique: Set<string>;
  /**
   * Per-side classes by plan index (-1: decided pair by pair — a shared IP, an address that is a
   * node's). A side of a cell depends only on its subject's side class and on what the far end is
   * to that class's rules: egress on (egress[from], member[to]), ingress on (ingress[to],
   * member[from]), each member class seen through the side class's own rules (SideProjection).
   */
  member: Int32Array;
  egress: Int32Array;
  ingress: Int32Array;
  egressProjection: SideProjection;
  ingressProjection: SideProjection;
}

/** Interns signatures as small integers. */
class Interner {
  private readonly ids = new Map<string, number>();
  id(sig: string): number {
    let id = this.ids.get(sig);
    if (id === undefined) this.ids.set(sig, (id = this.ids.size));
    return id;
  }
  get size(): number {
    return this.ids.size;
  }
}

/**
 * A member class as one side class's rules see it: only the tokens of peers (and, for egress,
 * named-port targets) those rules hold, and the address families. Endpoints of other namespaces
 * that none of a policy's peers name all look the same to it, so a side class meets a handful of
 * projections, not every member class. Projection ids are per side class, computed on first use.
 */
export class SideProjection {
  /** (side class × member class) → projection id + 1 (0: not computed yet). */
  private readonly table: Int32Array | Map<number, number>;
  private readonly interners: Interner[];
  constructor(
    /** Relevant token ids per side class. */
    private readonly relevant: readonly Set<number>[],
    /** Member class → its tokens (negative ids: family markers, always kept, positional). */
    private readonly memberTokens: readonly Int32Array[],
  ) {
    const size = relevant.length * memberTokens.length;
    this.table = size <= 16_000_000 ? new Int32Array(size) : new Map();
    this.interners = relevant.map(() => new Interner());
  }

  get sideCount(): number {
    return this.relevant.length;
  }

  /** Projections of one side class so far (at most the member classes). */
  projectionsOf(side: number): number {
    return this.interners[side]!.size;
  }

  /** The (side × member) table when it is dense: projection id + 1, 0 where not computed yet. */
  get dense(): Int32Array | undefined {
    return this.table instanceof Int32Array ? this.table : undefined;
  }

  /** Upper bound on projection ids of any side class: the member class count. */
  get width(): number {
    return this.memberTokens.length;
  }

  of(side: number, member: number): number {
    const slot = side * this.memberTokens.length + member;
    const t = this.table;
    const v = t instanceof Int32Array ? t[slot]! : (t.get(slot) ?? 0);
    if (v !== 0) return v - 1;
    const keep = this.relevant[side]!;
    let sig = '';
    for (const tok of this.memberTokens[member]!) if (tok < 0 || keep.has(tok)) sig += `${tok},`;
    const id = this.interners[side]!.id(sig);
    if (t instanceof Int32Array) t[slot] = id + 1;
    else t.set(slot, id + 1);
    return id;
  }
}

/** Family markers in member tokens (negative: never filtered out). */
const FAMILY_TOKEN: Record<Family | 'ipless', number> = { ipv4: -1, ipv6: -2, ipless: -3 };

/** The classes of every endpoint of a plan (see EndpointClasses). */
export function endpointClasses(plan: Plan): EndpointClasses {
  // Every peer, ipBlock and named-port target gets a token id; memberships become tokens.
  const byIP = new Map<string, number[]>();
  const byKey = new Map<string, number[]>();
  // Named-port targets apart: the ingress side reads its own endpoint's named ports.
  const namedByIP = new Map<string, number[]>();
  const namedByKey = new Map<string, number[]>();
  const add = (m: Map<string, number[]>, k: string, token: number) => {
    let l = m.get(k);
    if (!l) m.set(k, (l = []));
    l.push(token);
  };
  const blocks = new Map<string, Block>();
  const peerToken = new Map<PlanPeer, number>();
  const namedToken = new Map<object, number>();
  let n = 0;
  type AnyRule = { peers: 'all' | PlanPeer[]; ports: 'all' | readonly { namedTargets?: { ips: readonly string[]; pods: readonly string[] } }[] };
  const rulesOf = new Map<string, { ingress: readonly AnyRule[]; egress: readonly AnyRule[] }>();
  for (const pol of [...plan.policies, ...(plan.clusterPolicies ?? [])]) {
    rulesOf.set(`${'priority' in pol ? 'C' : 'N'}${pol.id}`, { ingress: pol.ingress, egress: pol.egress });
    for (const rule of [...pol.ingress, ...pol.egress]) {
      if (rule.peers !== 'all') {
        for (const peer of rule.peers) {
          if (peerToken.has(peer)) continue;
          if (peer.kind === 'cidr') {
            const text = `${peer.block.cidr}|${peer.block.except.join(',')}`;
            let b = blocks.get(text);
            if (!b) blocks.set(text, (b = { id: n++, family: peer.family, cidr: mustCIDR(peer.block.cidr), except: peer.block.except.map(mustCIDR), text: peer.block }));
            peerToken.set(peer, b.id);
            continue;
          }
          const token = n++;
          peerToken.set(peer, token);
          for (const ip of peer.ips) add(byIP, ip, token);
          for (const k of peer.pods) add(byKey, k, token);
        }
      }
      if (rule.ports !== 'all') {
        for (const port of rule.ports) {
          if (!port.namedTargets || namedToken.has(port)) continue;
          const token = n++;
          namedToken.set(port, token);
          for (const ip of port.namedTargets.ips) (add(byIP, ip, token), add(namedByIP, ip, token));
          for (const k of port.namedTargets.pods) (add(byKey, k, token), add(namedByKey, k, token));
        }
      }
    }
  }
  // A partial block's token for an IP-less endpoint differs from a whole one's: offset by n.
  const partial = n;
  const blockList = [...blocks.values()];
  const region = podNetworkOf(plan);
  const coverage = blockList.map((b) => blockCoverage(b.text, region));
  const families = podNetworkFamilies(plan);
  const nodeOf = new Map(plan.nodes.flatMap((nd) => nd.addresses.map((a) => [a, nd.name] as const)));
  // An IP claimed twice makes its endpoints special (same-ip verdicts): each is a class of its own.
  const ipCount = new Map<string, number>();
  for (const p of plan.pods) for (const ip of p.ips) ipCount.set(ip, (ipCount.get(ip) ?? 0) + 1);
  // The own-node exception needs a node address as source: only then does a pod's node matter.
  const podOnNodeAddress = plan.pods.some((p) => p.ips.some((ip) => nodeOf.has(ip)));
  const unique = new Set<string>();
  const classOf = new Map<string, number>();
  const whole = new Interner();
  const members = new Interner();
  const memberTokens: Int32Array[] = [];
  const egressSides = new Interner();
  const ingressSides = new Interner();
  const egressRelevant: Set<number>[] = [];
  const ingressRelevant: Set<number>[] = [];
  /** Tokens the rules of these policies (N…) and tiers (C…) can match on the far end. */
  const relevantOf = (ids: readonly string[], direction: 'ingress' | 'egress'): Set<number> => {
    const out = new Set<number>();
    for (const id of ids) {
      for (const rule of rulesOf.get(id)?.[direction] ?? []) {
        if (rule.peers !== 'all') for (const peer of rule.peers) {
          const t = peerToken.get(peer)!;
          out.add(t);
          out.add(t + partial);
        }
        // Egress: the destination's named ports are the far end's; ingress reads its own.
        if (direction === 'egress' && rule.ports !== 'all') for (const port of rule.ports) if (port.namedTargets) out.add(namedToken.get(port)!);
      }
    }
    return out;
  };
  const count = plan.pods.length;
  const member = new Int32Array(count);
  const egress = new Int32Array(count);
  const ingress = new Int32Array(count);
  plan.pods.forEach((p, idx) => {
    const tiers = p.tiers ? [p.tiers.admin.egress, p.tiers.baseline.egress, p.tiers.admin.ingress, p.tiers.baseline.ingress] : undefined;
    const shared = p.ips.some((ip) => (ipCount.get(ip) ?? 0) > 1);
    // What the far end's rules see of this endpoint: identity tokens, blocks, families (positional).
    const toks: number[] = [];
    const fams: string[] = [];
    const named: number[] = [];
    const extra: string[] = [];
    if (p.ips.length === 0) {
      toks.push(FAMILY_TOKEN.ipless);
      fams.push('L');
      for (const t of byKey.get(p.key) ?? []) toks.push(t);
      for (const t of namedByKey.get(p.key) ?? []) named.push(t);
      for (const f of families) blockList.forEach((b, i) => b.family === f && coverage[i] !== 'none' && toks.push(coverage[i] === 'all' ? b.id : b.id + partial));
    } else {
      for (const ip of p.ips) {
        const parsed = parseIP(ip)!;
        const fam = familyOf(ip);
        toks.push(FAMILY_TOKEN[fam]);
        fams.push(fam);
        named.push(FAMILY_TOKEN[fam]);
        for (const t of byIP.get(ip) ?? []) toks.push(t);
        for (const t of namedByIP.get(ip) ?? []) named.push(t);
        for (const b of blockList) if (b.family === parsed.family && cidrContainsIP(b.cidr, parsed) && !b.except.some((e) => cidrContainsIP(e, parsed))) toks.push(b.id);
        const node = nodeOf.get(ip);
        if (node !== undefined) extra.push(`N${node}`);
      }
    }
    // Only a node address as source meets the own-node exception; a pod's node matters then.
    if (podOnNodeAddress && p.nodeName !== undefined) extra.push(`O${p.nodeName}`);
    const memberSig = toks.join(',');
    const tierText = tiers ? tiers.map((l) => l.join(',')).join('|') : '';
    const wholeSig = `E${p.egressPolicies.join(',')} I${p.ingressPolicies.join(',')} T${tierText} ${shared ? `K${p.key}` : ''} ${memberSig} ${extra.join(' ')}`;
    const id = whole.id(wholeSig);
    if (!shared) unique.add(p.key);
    classOf.set(p.key, id);
    // Pair by pair: a shared IP (same-ip verdicts), an address that is a node's (the own-node exception).
    if (shared || p.ips.some((ip) => nodeOf.has(ip))) {
      member[idx] = egress[idx] = ingress[idx] = -1;
      return;
    }
    const m = members.id(memberSig);
    if (m === memberTokens.length) memberTokens.push(Int32Array.from(toks));
    member[idx] = m;
    const eIds = [...p.egressPolicies.map((x) => `N${x}`), ...(tiers ? [...tiers[0]!, ...tiers[1]!].map((x) => `C${x}`) : [])];
    const e = egressSides.id(`E${p.egressPolicies.join(',')} T${tiers ? `${tiers[0]!.join(',')}|${tiers[1]!.join(',')}` : ''} F${fams.join(',')}`);
    if (e === egressRelevant.length) egressRelevant.push(relevantOf(eIds, 'egress'));
    egress[idx] = e;
    const iIds = [...p.ingressPolicies.map((x) => `N${x}`), ...(tiers ? [...tiers[2]!, ...tiers[3]!].map((x) => `C${x}`) : [])];
    const g = ingressSides.id(`I${p.ingressPolicies.join(',')} T${tiers ? `${tiers[2]!.join(',')}|${tiers[3]!.join(',')}` : ''} F${fams.join(',')} ${named.join(',')}`);
    if (g === ingressRelevant.length) ingressRelevant.push(relevantOf(iIds, 'ingress'));
    ingress[idx] = g;
  });
  return { classOf, count: whole.size, unique, member, egress, ingress, egressProjection: new SideProjection(egressRelevant, memberTokens), ingressProjection: new SideProjection(ingressRelevant, memberTokens) };
}

/**
 * Cells of one plan over some probe ports. Each side of a cell is decided once per pair of its
 * classes (egress: the source's egress class × the destination's member class; ingress: the
 * destination's ingress class × the source's member class), by the same code every other verdict
 * comes from; a cell combines its two sides. Endpoints with a shared IP or a node's address are
 * decided pair by pair.
 */
export class Reachability {
  readonly endpoints: readonly PlanPod[];
  private readonly byKey: Map<string, PlanPod>;
  private readonly index: Map<string, number>;
  /** Whole class of endpoints[i], or -1 when it has a class of its own (a shared IP). */
  private readonly classAt: Int32Array;
  private readonly member: Int32Array;
  private readonly egressAt: Int32Array;
  private readonly ingressAt: Int32Array;
  private readonly egressProjection: SideProjection;
  private readonly ingressProjection: SideProjection;
  /** Side outcomes by (side class × member class × port): 0 unknown, 1 denied, 2 depends, 3 passes, 4 no common family. */
  private readonly egressCache: Uint8Array | Map<number, number>;
  private readonly ingressCache: Uint8Array | Map<number, number>;
  /** How many sides (or, pair by pair, whole pairs) were decided by evaluation; the rest came from the caches. */
  evaluated = 0;

  constructor(
    readonly plan: Plan,
    readonly ports: readonly ProbePort[],
  ) {
    this.endpoints = plan.pods;
    this.byKey = new Map(plan.pods.map((p) => [p.key, p]));
    this.index = new Map(plan.pods.map((p, i) => [p.key, i]));
    const c = endpointClasses(plan);
    this.classAt = Int32Array.from(plan.pods, (p) => (c.unique.has(p.key) ? c.classOf.get(p.key)! : -1));
    this.member = c.member;
    this.egressAt = c.egress;
    this.ingressAt = c.ingress;
    this.egressProjection = c.egressProjection;
    this.ingressProjection = c.ingressProjection;
    const cache = (p: SideProjection) => {
      const size = p.sideCount * p.width * Math.max(1, ports.length);
      return size <= 64_000_000 ? new Uint8Array(size) : new Map<number, number>();
    };
    this.egressCache = cache(c.egressProjection);
    this.ingressCache = cache(c.ingressProjection);
  }

  /** The whole class of endpoints[i]; -1 when it is a class of its own (its cells are never shared). */
  classOfIndex(i: number): number {
    return this.classAt[i]!;
  }

  endpoint(key: string): PlanPod | undefined {
    return this.byKey.get(key);
  }

  /** The cell: true, false, or null (depends on an address the input does not give). */
  allowed(from: PlanPod, to: PlanPod, portIndex: number): boolean | null {
    return this.allowedAt(this.index.get(from.key)!, this.index.get(to.key)!, portIndex);
  }

  /** The cell between endpoints[i] and endpoints[j] (the fast way through the whole matrix). */
  allowedAt(i: number, j: number, portIndex: number): boolean | null {
    if (i === j) return true;
    const mi = this.member[i]!;
    const mj = this.member[j]!;
    if (mi < 0 || mj < 0) return this.decide(i, j, portIndex);
    const nPorts = this.ports.length;
    const width = this.egressProjection.width;
    const ei = this.egressAt[i]!;
    const es = (ei * width + this.egressProjection.of(ei, mj)) * nPorts + portIndex;
    let e = read(this.egressCache, es);
    if (e === 0) write(this.egressCache, es, (e = this.decideSide('egress', i, j, portIndex)));
    if (e === NO_FAMILY || e === DENIED) return false;
    const gj = this.ingressAt[j]!;
    const is = (gj * width + this.ingressProjection.of(gj, mi)) * nPorts + portIndex;
    let g = read(this.ingressCache, is);
    if (g === 0) write(this.ingressCache, is, (g = this.decideSide('ingress', i, j, portIndex)));
    if (g === DENIED) return false;
    return e === DEPENDS || g === DEPENDS ? null : true;
  }

  /**
   * A row at once: out[k] is the cell endpoints[i] → endpoints[cols[k]] as CELL_DENIED,
   * CELL_ALLOWED or CELL_DEPENDS (what the JSON writer and diff walk, millions of times).
   */
  rowAt(i: number, cols: readonly number[], portIndex: number, out: Uint8Array): Uint8Array {
    const code = (v: boolean | null) => (v === false ? CELL_DENIED : v === true ? CELL_ALLOWED : CELL_DEPENDS);
    const mi = this.member[i]!;
    const eCache = this.egressCache;
    const gCache = this.ingressCache;
    const eProj = this.egressProjection.dense;
    const gProj = this.ingressProjection.dense;
    if (mi < 0 || !(eCache instanceof Uint8Array) || !(gCache instanceof Uint8Array) || !eProj || !gProj) {
      for (let k = 0; k < cols.length; k++) out[k] = code(this.allowedAt(i, cols[k]!, portIndex));
      return out;
    }
    // allowedAt with what the row shares hoisted: the source's egress class and member class.
    const nPorts = this.ports.length;
    const width = this.egressProjection.width;
    const ei = this.egressAt[i]!;
    const eBase = ei * width;
    for (let k = 0; k < cols.length; k++) {
      const j = cols[k]!;
      const mj = this.member[j]!;
      if (j === i || mj < 0) {
        out[k] = code(this.allowedAt(i, j, portIndex));
        continue;
      }
      const ep = eProj[eBase + mj]! - 1;
      const es = (eBase + (ep >= 0 ? ep : this.egressProjection.of(ei, mj))) * nPorts + portIndex;
      let e = eCache[es]!;
      if (e === 0) eCache[es] = e = this.decideSide('egress', i, j, portIndex);
      if (e === NO_FAMILY || e === DENIED) {
        out[k] = CELL_DENIED;
        continue;
      }
      const gj = this.ingressAt[j]!;
      const gp = gProj[gj * width + mi]! - 1;
      const is = (gj * width + (gp >= 0 ? gp : this.ingressProjection.of(gj, mi))) * nPorts + portIndex;
      let g = gCache[is]!;
      if (g === 0) gCache[is] = g = this.decideSide('ingress', i, j, portIndex);
      out[k] = g === DENIED ? CELL_DENIED : e === DEPENDS || g === DEPENDS ? CELL_DEPENDS : CELL_ALLOWED;
    }
    return out;
  }

  /** One side of the cell i → j, as a cache code. */
  private decideSide(direction: Direction, i: number, j: number, portIndex: number): number {
    this.evaluated++;
    const port = this.ports[portIndex]!;
    const flow = flowBetween(this.plan, this.endpoints[i]!, this.endpoints[j]!, port.protocol, port.port);
    if (flow === undefined) return NO_FAMILY;
    const outcome = decideSide(this.plan, direction, flow).outcome;
    return outcome === 'denied' ? DENIED : outcome === 'depends' ? DEPENDS : PASSES;
  }

  private decide(i: number, j: number, portIndex: number): boolean | null {
    this.evaluated++;
    const port = this.ports[portIndex]!;
    const flow = flowBetween(this.plan, this.endpoints[i]!, this.endpoints[j]!, port.protocol, port.port);
    // No common address family: they cannot talk.
    return flow === undefined ? false : decideFlow(this.plan, flow).allowed;
  }

  /** The whole verdict of a cell, with its summary (undefined: no common address family). */
  verdict(from: PlanPod, to: PlanPod, portIndex: number): Verdict | undefined {
    const port = this.ports[portIndex]!;
    const flow = flowBetween(this.plan, from, to, port.protocol, port.port);
    return flow && evaluateFlow(this.plan, flow);
  }
}

const DENIED = 1;
const DEPENDS = 2;
const PASSES = 3;
const NO_FAMILY = 4;
const read = (c: Uint8Array | Map<number, number>, slot: number): number => (c instanceof Uint8Array ? c[slot]! : (c.get(slot) ?? 0));
const write = (c: Uint8Array | Map<number, number>, slot: number, v: number): void => void (c instanceof Uint8Array ? (c[slot] = v) : c.set(slot, v));

/** Cell codes of rowAt. */
export const CELL_DENIED = 0;
export const CELL_ALLOWED = 1;
export const CELL_DEPENDS = 2;
