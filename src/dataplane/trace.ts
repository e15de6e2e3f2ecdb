// The packet walk behind `podwall trace`: the first packet of a connection through the filter table
// of every node that sees it, rule by rule, with the iptables interpreter (iptables/interpret.ts).
//
//   rendered: compiles and renders the manifests for each node on the path (or only one node) and
//             traces the rules podwall would install; also asks the simulator and flags any disagreement.
//   live:     reads THIS node's filter table, ipsets, addresses and routes (read-only: *-save, ipset
//             save, ip -j addr/route) and traces the packet through what is really installed.
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import type { ClusterStore } from '../cluster/store.js';
import type { Family, Protocol } from '../cluster/model.js';
import { compile } from '../policy/compile.js';
import type { Plan } from '../policy/plan.js';
import { evaluate } from '../sim/evaluate.js';
import { EndpointError, resolveEndpoint, type Endpoint } from '../sim/explain.js';
import { pairAddresses } from '../sim/matrix.js';
import { render, RenderError, type Desired, type RenderOptions } from './render.js';
import { clusterNodeViews, clusterPaths, combinedVerdict, packetPaths, PathError, type HopKind, type NodeView, type PathHop } from './path.js';
import { detectBackend, toolsFor, type Backend } from './backend.js';
import { makeRunner, onPath, type Runner } from './exec.js';
import { interpret, InterpretError, UnsupportedRuleError, type Packet, type Trace, type TraceStep, type Verdict } from '../iptables/interpret.js';
import type { Ipset, IptChain, IptTable } from '../iptables/model.js';
import { IptablesParseError, parseIpsetSave, parseIptablesSave } from '../iptables/parse.js';
import { netContains, parseIp, parseNet } from '../iptables/addr.js';
import { familySetName, ISOLATED_SET, PROGRAMMED_SET } from './names.js';

/** A trace that cannot be made, in one line; `exitCode` 2 for bad arguments, 1 otherwise. */
export class TraceError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'TraceError';
  }
}

// ---------------------------------------------------------------------------------------------
// Results

export interface HopResult {
  node: string;
  kind: HopKind;
  describe: string;
  packet: Packet;
  verdict: Verdict;
  rejectWith?: string;
  /** Every rule the packet matched (jumps, marks, logs, the verdict), in order. */
  steps: TraceStep[];
  logged: { group: number; prefix: string }[];
  /** The step that decided: the verdict rule or the hook chain's policy. */
  decidedBy: TraceStep;
}

export interface SimulatorView {
  /** `cluster`: the whole cluster's plan; `node`: only what --node enforces (its own pods). */
  scope: 'cluster' | 'node';
  allowed: boolean;
  summary: string;
}

export interface TraceReport {
  mode: 'rendered' | 'live';
  from: Endpoint;
  to: Endpoint;
  /** Addresses actually traced (two dual-stack pods talk over a common family). */
  src: string;
  dst: string;
  family: Family;
  protocol: Protocol;
  port: number;
  /** The nodes whose filter tables were consulted. */
  nodes: string[];
  hops: HopResult[];
  /** ACCEPT only when every hop accepts; otherwise the first refusal on the path. */
  verdict: Verdict;
  /** The hop and rule that refused the packet (or, when accepted, that accepted it last). */
  decidedBy?: { node: string } & TraceStep;
  notes: string[];
  /** Rendered mode: what the simulator says for the same packet. */
  simulator?: SimulatorView[];
  /** Rendered mode: whether the interpreter on the rendered rules and the simulator agree. */
  agree?: boolean;
  /** When they disagree: why, or `BUG` when nothing explains it. */
  disagreement?: string;
}

export interface TraceQuery {
  from: string;
  to: string;
  protocol: Protocol;
  port: number;
}

// ---------------------------------------------------------------------------------------------
// Interpreting one hop

/** The filter table podwall's render would leave on a fresh node: built-ins (policy ACCEPT) holding the jumps, then the chains. */
export function filterTableFor(desired: Desired): IptTable {
  const hooks: IptChain[] = (['INPUT', 'FORWARD', 'OUTPUT'] as const).map((h) => ({
    name: h,
    policy: 'ACCEPT',
    rules: desired.jumps.filter((j) => j.chain === h).map((j) => j.rule),
  }));
  return { name: 'filter', chains: [...hooks, ...desired.chains] };
}

function runHop(table: IptTable, sets: Ipset[] | Map<string, Ipset>, hop: PathHop, localAddresses: string[]): HopResult {
  const trace: Trace = interpret(table, sets, hop.packet, { localAddresses });
  const last = trace.steps[trace.steps.length - 1]!;
  return {
    node: hop.node,
    kind: hop.kind,
    describe: hop.describe,
    packet: hop.packet,
    verdict: trace.verdict,
    ...(trace.rejectWith ? { rejectWith: trace.rejectWith } : {}),
    steps: trace.steps,
    logged: trace.logged,
    decidedBy: last,
  };
}

function combine(hops: HopResult[]): Pick<TraceReport, 'verdict' | 'decidedBy'> {
  const verdict = combinedVerdict(hops.map((h) => h.verdict)) as Verdict;
  const decider = verdict === 'ACCEPT' ? hops[hops.length - 1] : hops.find((h) => h.verdict !== 'ACCEPT');
  return { verdict, ...(decider ? { decidedBy: { node: decider.node, ...decider.decidedBy } } : {}) };
}

function interpretFailure(e: unknown, where: string): never {
  if (e instanceof UnsupportedRuleError) {
    throw new TraceError(`${where}: ${e.message} — the interpreter does not model this rule, so the trace cannot go past it`);
  }
  if (e instanceof InterpretError || e instanceof PathError) throw new TraceError(`${where}: ${e.message}`);
  throw e;
}

const lowerProto = (p: Protocol): 'tcp' | 'udp' | 'sctp' => p.toLowerCase() as 'tcp' | 'udp' | 'sctp';

// ---------------------------------------------------------------------------------------------
// Rendered mode

export interface RenderedTraceOptions {
  /** Trace only this node's table; otherwise every node on the path. */
  node?: string;
  render: Omit<RenderOptions, 'family' | 'node'>;
  bridge?: string;
  uplink?: string;
}

/** Picks the two addresses to trace: a pod pair over a common family, else the endpoints' IPs. */
function addressesOf(plan: Plan, from: Endpoint, to: Endpoint, given: { from: boolean; to: boolean }): [string, string] {
  // An address given as an IP is traced as given; a pod given by name may use any of its addresses.
  const fp = from.pod && !given.from ? plan.pods.find((p) => p.key === from.pod) : undefined;
  const tp = to.pod && !given.to ? plan.pods.find((p) => p.key === to.pod) : undefined;
  if (fp && tp) {
    const pair = pairAddresses(fp, tp);
    if (!pair) throw new TraceError(`${from.label} and ${to.label} have no IP family in common`, 2);
    return pair;
  }
  if (from.ip === undefined || to.ip === undefined) throw new TraceError(`${from.ip === undefined ? from.label : to.label} has no IP: a trace follows addresses`, 2);
  let src = from.ip;
  let dst = to.ip;
  const fam = (ip: string) => parseIp(ip)!.family;
  // One pod, one IP: use the pod's address of the IP's family.
  if (fp && !tp) src = fp.ips.find((ip) => fam(ip) === fam(dst)) ?? src;
  if (tp && !fp) dst = tp.ips.find((ip) => fam(ip) === fam(src)) ?? dst;
  if (fam(src) !== fam(dst)) throw new TraceError(`--from ${from.label} and --to ${to.label} are different IP families`, 2);
  return [src, dst];
}

/** Traces a packet through the rules podwall renders for the nodes on its path. Pure. */
export function traceRendered(store: ClusterStore, q: TraceQuery, opts: RenderedTraceOptions): TraceReport {
  const clusterPlan = compile(store);
  let from: Endpoint;
  let to: Endpoint;
  try {
    from = resolveEndpoint(clusterPlan, q.from, 'from');
    to = resolveEndpoint(clusterPlan, q.to, 'to');
  } catch (e) {
    if (e instanceof EndpointError) throw new TraceError(e.message, 2);
    throw e;
  }
  const [src, dst] = addressesOf(clusterPlan, from, to, { from: parseIp(q.from) !== null, to: parseIp(q.to) !== null });
  const family: Family = parseIp(src)!.family === 4 ? 'ipv4' : 'ipv6';
  if (opts.node !== undefined && !clusterPlan.nodes.some((n) => n.name === opts.node) && !clusterPlan.pods.some((p) => p.nodeName === opts.node)) {
    throw new TraceError(`--node ${JSON.stringify(opts.node)}: no such node in the manifests (known: ${clusterPlan.nodes.map((n) => n.name).join(', ') || 'none'})`, 2);
  }
  let views = clusterNodeViews(clusterPlan, { ...(opts.bridge ? { bridge: opts.bridge } : {}), ...(opts.uplink ? { uplink: opts.uplink } : {}) });
  if (opts.node !== undefined) {
    views = views.filter((v) => v.node === opts.node);
    if (views.length === 0) {
      // A node known only from its pods' nodeName: no addresses or CIDRs, but its pods are known.
      views = clusterNodeViews({ ...clusterPlan, nodes: [{ name: opts.node, addresses: [], podCIDRs: [] }] }, opts);
    }
  }
  const proto = lowerProto(q.protocol);
  let hopsOnPath: PathHop[];
  try {
    hopsOnPath = clusterPaths(views, src, dst, proto, q.port);
  } catch (e) {
    interpretFailure(e, 'path');
  }
  const notes: string[] = [];
  const hops: HopResult[] = [];
  const perNode = new Map<string, Desired>();
  for (const hop of hopsOnPath) {
    let desired = perNode.get(hop.node);
    if (!desired) {
      try {
        desired = render(compile(store, { node: hop.node }), { ...opts.render, family, node: hop.node });
      } catch (e) {
        if (e instanceof RenderError) throw new TraceError(`render for node ${hop.node}: ${e.message}`, 2);
        throw e;
      }
      perNode.set(hop.node, desired);
    }
    const view = views.find((v) => v.node === hop.node)!;
    try {
      hops.push(runHop(filterTableFor(desired), desired.sets, hop, view.nodeAddresses));
    } catch (e) {
      interpretFailure(e, `node ${hop.node}`);
    }
  }
  if (hopsOnPath.length === 0) {
    notes.push(
      src === dst
        ? 'source and destination are the same address: the packet never reaches a filter table'
        : opts.node !== undefined
          ? `node ${opts.node} does not see this packet (neither end is one of its pods or addresses)`
          : 'no node on the path: neither end is a pod or node address of the cluster, so no podwall table sees it',
    );
  }
  const svc = clusterPlan.services.find((s) => s.ips.includes(dst));
  if (svc) notes.push(`${dst} is an IP of Service ${svc.key}: the filter table sees the packet after DNAT, addressed to a backend pod; trace to a backend pod instead`);

  const combined = combine(hops);
  const pkt = { src, dst, protocol: q.protocol, port: q.port };
  const simulator: SimulatorView[] = [];
  const cv = evaluate(clusterPlan, pkt);
  simulator.push({ scope: 'cluster', allowed: cv.allowed, summary: cv.summary });
  let compareTo = cv;
  if (opts.node !== undefined) {
    const nv = evaluate(compile(store, { node: opts.node }), pkt);
    simulator.unshift({ scope: 'node', allowed: nv.allowed, summary: nv.summary });
    compareTo = nv;
  }
  const agree = (combined.verdict === 'ACCEPT') === compareTo.allowed;
  const report: TraceReport = {
    mode: 'rendered',
    from,
    to,
    src,
    dst,
    family,
    protocol: q.protocol,
    port: q.port,
    nodes: [...new Set(hops.map((h) => h.node))],
    hops,
    ...combined,
    notes,
    simulator,
    agree,
  };
  if (!agree) report.disagreement = explainDisagreement(report, clusterPlan);
  return report;
}

/** Known, intended differences between the kernel rules and the simulator; otherwise a bug. */
function explainDisagreement(r: TraceReport, plan: Plan): string {
  const d = r.decidedBy;
  const comment = d?.line ?? '';
  const blocked = r.hops.find((h) => h.verdict !== 'ACCEPT');
  if (blocked && comment.includes('unprogrammed local pod') && !plan.podByIP.has(r.src) && !plan.podByIP.has(r.dst)) {
    return 'expected: the address is in a node\'s pod CIDR but is no known pod; the dataplane fails closed for it, the simulator has no pod to judge';
  }
  if (blocked && comment.includes('unprogrammed local pod')) {
    return 'expected: an address of the pod CIDR that is not a programmed pod is rejected (fail closed)';
  }
  const whitelisted = r.hops.some((h) => h.steps.some((s) => s.chain === 'KUBE-ROUTER-INPUT' && s.action === 'RETURN'));
  if (!blocked && whitelisted) {
    return 'expected: KUBE-ROUTER-INPUT lets traffic to a Service\'s own address and port (inside the service range flags) and to its LOCAL node ports through (an IPVS proxy hands it to a backend, where it is judged); the simulator judges the address as given';
  }
  return 'BUG: the rendered rules and the simulator disagree; please report it with this output';
}

// ---------------------------------------------------------------------------------------------
// Live mode

export interface LiveTraceOptions {
  /** Run every read inside `ip netns exec NAME`. */
  netns?: string;
  bridge?: string;
  /** Name shown for this node (default: the host name). */
  node?: string;
  /** Injected for tests; default: spawn (with the netns prefix). */
  runner?: Runner;
  exists?: (name: string) => boolean;
}

interface IpAddrJson {
  ifname?: string;
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
  /** With `ip -d`: the kind of link (bridge, veth, dummy, ...). */
  linkinfo?: { info_kind?: string };
}

interface IpRouteJson {
  dst?: string;
  dev?: string;
  gateway?: string;
}

/** What podwall's own rules and sets in the live table say about this node's pods. */
export interface PodwallFacts {
  /** The pod CIDRs of the fail-closed rules (`-s CIDR ... ! --match-set podwall-programmed`). */
  podCIDRs: string[];
  /** Members of podwall-programmed and podwall-isolated: this node's pods. */
  pods: string[];
}

/** Reads podwall's own knowledge of this node's pods from its live chains and sets. */
export function podwallFacts(table: IptTable, sets: readonly Ipset[], family: Family): PodwallFacts {
  const programmed = familySetName(PROGRAMMED_SET, family);
  const podCIDRs: string[] = [];
  for (const c of table.chains) {
    if (!TOP_LEVEL.has(c.name)) continue;
    for (const r of c.rules) {
      const a = r.args;
      const negated = a.some((x, i) => x === '--match-set' && a[i + 1] === programmed && a[i - 1] === '!');
      if (!negated) continue;
      for (let i = 0; i < a.length - 1; i++) if ((a[i] === '-s' || a[i] === '-d') && a[i - 1] !== '!' && parseNet(a[i + 1]!) && !podCIDRs.includes(a[i + 1]!)) podCIDRs.push(a[i + 1]!);
    }
  }
  const pods = new Set<string>();
  for (const name of [programmed, familySetName(ISOLATED_SET, family)]) for (const m of sets.find((x) => x.name === name)?.members ?? []) pods.add(m.entry);
  return { podCIDRs, pods: [...pods] };
}

const TOP_LEVEL = new Set(['KUBE-ROUTER-INPUT', 'KUBE-ROUTER-FORWARD', 'KUBE-ROUTER-OUTPUT']);

function isHostRoute(dst: string): boolean {
  if (!dst.includes('/')) return parseIp(dst) !== null;
  const n = parseNet(dst);
  return !!n && n.prefix === (n.family === 4 ? 32 : 128);
}

function asArray(x: unknown, what: string): unknown[] {
  if (!Array.isArray(x)) throw new TraceError(`${what}: expected a JSON array`);
  return x;
}

function networkOf(addr: string, prefix: number): string | undefined {
  const n = parseNet(`${addr}/${prefix}`);
  if (!n) return undefined;
  if (n.family === 4) {
    const v = n.base;
    return `${[24n, 16n, 8n, 0n].map((s) => ((v >> s) & 255n).toString()).join('.')}/${prefix}`;
  }
  const parts: string[] = [];
  for (let i = 7; i >= 0; i--) parts.push(((n.base >> BigInt(i * 16)) & 0xffffn).toString(16));
  return `${parts.join(':')}/${prefix}`;
}

/**
 * Builds this node's view from `ip -d -j addr` and `ip -j route` / `ip -6 -j route` output, and from
 * what podwall's own rules say (podwallFacts): node addresses are every local address; the pod
 * bridge is `--bridge` when given, else a bridge holding an address in podwall's pod CIDRs, else
 * `kube-bridge` when present; local
 * pods are the addresses in the bridge's subnets and routes, in podwall's pod CIDRs and sets, and
 * the destinations of host routes through a veth (routed pods, reached through their own interface,
 * no bridge); the uplink is the default route's device.
 */
export function nodeViewFromIp(addrs: unknown, routes: unknown, opts: { node: string; bridge?: string; podwall?: PodwallFacts }): NodeView {
  const nodeAddresses: string[] = [];
  const upIfaces: string[] = [];
  const kinds = new Map<string, string>();
  const onIface: { ifname: string; local: string; prefixlen?: number }[] = [];
  for (const raw of asArray(addrs, 'ip -j addr')) {
    const a = raw as IpAddrJson;
    if (typeof a?.ifname !== 'string') continue;
    if (a.ifname !== 'lo') upIfaces.push(a.ifname);
    if (typeof a.linkinfo?.info_kind === 'string') kinds.set(a.ifname, a.linkinfo.info_kind);
    for (const info of Array.isArray(a?.addr_info) ? a.addr_info : []) {
      if (typeof info?.local !== 'string' || !parseIp(info.local)) continue;
      nodeAddresses.push(info.local);
      onIface.push({ ifname: a.ifname, local: info.local, ...(typeof info.prefixlen === 'number' ? { prefixlen: info.prefixlen } : {}) });
    }
  }
  const facts = opts.podwall ?? { podCIDRs: [], pods: [] };
  const factNets = facts.podCIDRs.map((c) => parseNet(c)).filter((n): n is NonNullable<typeof n> => !!n);
  const inPodCIDR = (ip: string): boolean => {
    const x = parseIp(ip);
    return !!x && factNets.some((n) => netContains(n, x));
  };
  // The pod bridge: as given, else a bridge holding an address of podwall's pod CIDRs, else
  // kube-router's `kube-bridge` when there is one.
  const bridge = opts.bridge ?? onIface.find((x) => kinds.get(x.ifname) === 'bridge' && inPodCIDR(x.local))?.ifname ?? onIface.find((x) => x.ifname === 'kube-bridge')?.ifname;
  const cidrs: string[] = [];
  const addCidr = (c: string) => {
    if (!cidrs.includes(c)) cidrs.push(c);
  };
  for (const x of onIface) {
    if (x.ifname !== bridge || x.prefixlen === undefined) continue;
    const n = networkOf(x.local, x.prefixlen);
    if (n) addCidr(n);
  }
  const routeList: { dst: string; dev: string }[] = [];
  const hostRoutes: { ip: string; dev: string }[] = [];
  let uplink: string | undefined;
  for (const raw of asArray(routes, 'ip -j route')) {
    const r = raw as IpRouteJson;
    if (typeof r?.dst !== 'string' || typeof r.dev !== 'string') continue;
    routeList.push({ dst: r.dst, dev: r.dev });
    if (r.dst === 'default' && uplink === undefined) uplink = r.dev;
    if (r.dev === bridge && r.dst !== 'default' && parseNet(r.dst)) addCidr(r.dst);
    if (r.gateway === undefined && r.dst !== 'default' && isHostRoute(r.dst)) hostRoutes.push({ ip: r.dst.split('/')[0]!, dev: r.dev });
  }
  for (const c of facts.podCIDRs) addCidr(c);
  const up = uplink ?? upIfaces.find((i) => i !== bridge) ?? 'eth0';
  // Routed pods: a host route to a veth (or to any device but the uplink and the bridge for an
  // address podwall knows as this node's pod).
  const routedPods = new Map<string, string>();
  const localPods = new Map<string, string>();
  for (const h of hostRoutes) {
    if (h.dev === bridge || h.dev === up) continue;
    if (kinds.get(h.dev) === 'veth' || inPodCIDR(h.ip) || facts.pods.includes(h.ip)) {
      routedPods.set(h.ip, h.dev);
      localPods.set(h.ip, '');
    }
  }
  for (const ip of facts.pods) if (!localPods.has(ip)) localPods.set(ip, '');
  const view: NodeView = {
    node: opts.node,
    localPods,
    localPodCIDRs: cidrs,
    nodeAddresses,
    bridge: bridge ?? 'kube-bridge',
    uplink: up,
    routes: routeList,
  };
  if (routedPods.size) view.routedPods = routedPods;
  return view;
}

const NOT_ROOT = /permission denied|must be root|operation not permitted|can't initialize|Could not fetch rule set/i;

async function read(run: Runner, cmd: string, args: string[], what: string): Promise<string> {
  let r;
  try {
    r = await run(cmd, args);
  } catch (e) {
    throw new TraceError(`cannot run ${cmd}: ${(e as Error).message} (is it installed?)`);
  }
  if (r.code !== 0) {
    const err = (r.stderr || r.stdout).trim().split('\n')[0] ?? '';
    const ns = /Cannot open network namespace "([^"]*)"/.exec(err);
    if (ns) throw new TraceError(`--netns: network namespace ${ns[1]} does not exist (${err})`, 2);
    if (NOT_ROOT.test(err)) throw new TraceError(`${cmd} ${args.join(' ')}: ${err} — reading ${what} needs root (CAP_NET_ADMIN)`);
    if (r.code === 127 || /No such file|not found/i.test(err)) throw new TraceError(`${cmd} is not installed or not on PATH (needed to read ${what})`);
    throw new TraceError(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${err}`);
  }
  return r.stdout;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new TraceError(`${what}: output is not JSON`);
  }
}

/** Which backend's save binary to read: the one holding KUBE-ROUTER chains, else kube-proxy's detection. */
async function pickSave(run: Runner, family: Family, exists: (n: string) => boolean): Promise<{ bin: string; backend: Backend | 'default'; text?: string }> {
  const prefix = family === 'ipv4' ? 'iptables' : 'ip6tables';
  const holding: { backend: Backend; bin: string; text: string }[] = [];
  for (const backend of ['nft', 'legacy'] as const) {
    const bin = `${prefix}-${backend}-save`;
    if (!exists(bin)) continue;
    const r = await run(bin, ['-t', 'filter']).catch(() => undefined);
    if (r && r.code === 0 && /^:KUBE-ROUTER-(INPUT|FORWARD|OUTPUT)\s/m.test(r.stdout)) holding.push({ backend, bin, text: r.stdout });
  }
  if (holding.length === 1) return holding[0]!;
  if (!exists(`${prefix}-nft-save`) && !exists(`${prefix}-legacy-save`)) return { bin: `${prefix}-save`, backend: 'default' };
  const d = await detectBackend(run, exists);
  const tools = toolsFor(d.backend, exists);
  return { bin: tools.save[family], backend: d.backend };
}

/** Traces a packet through THIS node's live filter table (read-only). */
export async function traceLive(q: TraceQuery, opts: LiveTraceOptions = {}): Promise<TraceReport & { backend: string }> {
  for (const [role, text] of [['from', q.from], ['to', q.to]] as const) {
    if (!parseIp(text)) throw new TraceError(`--${role} ${JSON.stringify(text)}: --live takes IP addresses (the node has no manifests to look pods up in)`, 2);
  }
  const family: Family = parseIp(q.from)!.family === 4 ? 'ipv4' : 'ipv6';
  if ((parseIp(q.to)!.family === 4 ? 'ipv4' : 'ipv6') !== family) throw new TraceError(`--from ${q.from} and --to ${q.to} are different IP families`, 2);
  let run: Runner;
  try {
    run = opts.runner ?? makeRunner(opts.netns);
  } catch (e) {
    throw new TraceError(`--netns: ${(e as Error).message}`, 2);
  }
  const exists = opts.exists ?? onPath;
  if (!opts.runner && opts.netns !== undefined && !exists('ip')) throw new TraceError('ip (iproute2) is not installed; --netns needs it');
  // `ip netns exec` looks names up in /run/netns: say so before any tool is blamed.
  if (!opts.runner && opts.netns !== undefined && !existsSync(`/run/netns/${opts.netns}`)) throw new TraceError(`--netns: network namespace ${opts.netns} does not exist (\`ip netns list\` names the existing ones)`, 2);
  const node = opts.node ?? hostname();

  const save = await pickSave(run, family, exists);
  const saveText = save.text ?? (await read(run, save.bin, ['-t', 'filter'], 'the filter table'));
  let table: IptTable | undefined;
  try {
    table = parseIptablesSave(saveText).tables.find((t) => t.name === 'filter');
  } catch (e) {
    if (e instanceof IptablesParseError) throw new TraceError(`${save.bin} output: ${e.message}`);
    throw e;
  }
  if (!table) throw new TraceError(`${save.bin} printed no filter table (is the iptables module loaded?)`);
  let sets: Ipset[] = [];
  if (exists('ipset') || opts.runner) {
    const text = await read(run, 'ipset', ['save'], 'the ipsets');
    try {
      sets = parseIpsetSave(text);
    } catch (e) {
      if (e instanceof IptablesParseError) throw new TraceError(`ipset save output: ${e.message}`);
      throw e;
    }
  }
  const addrs = parseJson(await read(run, 'ip', ['-d', '-j', 'addr', 'show'], 'the addresses'), 'ip -j addr');
  const routes = parseJson(await read(run, 'ip', [family === 'ipv4' ? '-4' : '-6', '-j', 'route', 'show'], 'the routes'), 'ip -j route');
  const view = nodeViewFromIp(addrs, routes, { node, ...(opts.bridge !== undefined ? { bridge: opts.bridge } : {}), podwall: podwallFacts(table, sets, family) });
  const bridge = view.bridge;

  let hopsOnPath: PathHop[];
  try {
    hopsOnPath = packetPaths(view, q.from, q.to, lowerProto(q.protocol), q.port);
  } catch (e) {
    interpretFailure(e, 'path');
  }
  const hops: HopResult[] = [];
  for (const hop of hopsOnPath) {
    try {
      hops.push(runHop(table, sets, hop, view.nodeAddresses));
    } catch (e) {
      interpretFailure(e, `node ${node}`);
    }
  }
  const notes: string[] = [];
  if (!table.chains.some((c) => c.name === 'KUBE-ROUTER-FORWARD')) notes.push(`no KUBE-ROUTER-FORWARD chain in the ${save.backend} filter table: podwall (or kube-router's firewall) is not running here`);
  if (view.localPodCIDRs.length === 0 && view.localPods.size === 0) notes.push(`no ${bridge} bridge address or route, no podwall pod CIDR and no routed pod: no address counts as a local pod`);
  if (view.routedPods?.size) notes.push(`routed pods (own interface, no bridge): ${[...view.routedPods].map(([ip, dev]) => `${ip} via ${dev}`).slice(0, 8).join(', ')}${view.routedPods.size > 8 ? ', ...' : ''}`);
  if (hopsOnPath.length === 0) notes.push(`this node does not see the packet: neither ${q.from} nor ${q.to} is a local pod (${view.localPodCIDRs.join(', ') || 'none'}) or a node address`);
  const ep = (ip: string): Endpoint => ({ ip, label: ip });
  return {
    mode: 'live',
    backend: `${save.backend} (${save.bin})`,
    from: ep(q.from),
    to: ep(q.to),
    src: q.from,
    dst: q.to,
    family,
    protocol: q.protocol,
    port: q.port,
    nodes: hops.length ? [node] : [],
    hops,
    ...combine(hops),
    notes,
  };
}
