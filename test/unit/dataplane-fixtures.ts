// Hand-built Plans and helpers shared by the dataplane tests (no compile: the render is tested on its own).
import type { Family } from '../../src/cluster/model.js';
import type { Ipset, IptTable } from '../../src/iptables/model.js';
import { writeIpsetSave, writeRestore } from '../../src/iptables/write.js';
import type { Desired, RenderOptions } from '../../src/dataplane/render.js';
import type { CidrPeer, Plan, PlanPod, PlanPolicy, PlanPort, PlanRule, PodPeer } from '../../src/policy/plan.js';

export const RO: Omit<RenderOptions, 'family'> = {
  node: 'n1',
  serviceClusterIPRanges: ['10.96.0.0/12', 'fd00:96::/108'],
  serviceExternalIPRanges: ['192.0.2.0/24'],
  loadBalancerIPRanges: [],
  nodePortRange: [30000, 32767],
};

export function pod(ns: string, name: string, ips: string[], opts: { node?: string; ingress?: string[]; egress?: string[]; labels?: Record<string, string> } = {}): PlanPod {
  return { key: `${ns}/${name}`, namespace: ns, name, nodeName: opts.node ?? 'n1', ips, labels: opts.labels ?? {}, ingressPolicies: opts.ingress ?? [], egressPolicies: opts.egress ?? [] };
}

export function podPeer(setId: string, peerIndex: number, ips: string[], describe = 'pods {app: fe} in namespace shop'): PodPeer {
  return { kind: 'pods', setId, peerIndex, describe, policyNamespace: setId.split('/')[0]!, pods: ips.map((ip) => `ns/${ip}`), ips };
}

export function cidrPeer(setId: string, peerIndex: number, family: Family, cidr: string, except: string[] = []): CidrPeer {
  return { kind: 'cidr', setId, peerIndex, describe: `ipBlock ${cidr}${except.length ? ` except ${except.join(', ')}` : ''}`, family, block: { cidr, except } };
}

export function port(protocol: 'TCP' | 'UDP' | 'SCTP', portIndex: number, p?: number, endPort?: number, named?: { name: string; ips: string[] }): PlanPort {
  const out: PlanPort = { protocol, portIndex, spec: p === undefined ? `all/${protocol}` : `${named ? named.name : endPort ? `${p}-${endPort}` : p}/${protocol}` };
  if (p !== undefined) out.port = p;
  if (endPort !== undefined) out.endPort = endPort;
  if (named) {
    out.name = named.name;
    out.namedTargets = { pods: named.ips.map((ip) => `ns/${ip}`), ips: named.ips };
  }
  return out;
}

export function rule(policyId: string, direction: 'ingress' | 'egress', ruleIndex: number, peers: PlanRule['peers'], ports: PlanRule['ports'], invalid?: string): PlanRule {
  const [namespace, policy] = policyId.split('/') as [string, string];
  const r: PlanRule = { id: `${policyId}/${direction}/${ruleIndex}`, origin: { namespace, policy, direction, ruleIndex }, peers, ports };
  if (invalid !== undefined) r.invalid = invalid;
  return r;
}

export function policy(id: string, types: ('ingress' | 'egress')[], targets: string[], ingress: PlanRule[] = [], egress: PlanRule[] = []): PlanPolicy {
  const [namespace, name] = id.split('/') as [string, string];
  return { id, namespace, name, types, podSelector: { matchLabels: {}, matchExpressions: [] }, targets, ingress, egress };
}

export function plan(pods: PlanPod[], policies: PlanPolicy[], extra: Partial<Plan> = {}): Plan {
  const podByIP = new Map<string, string>();
  for (const p of pods) for (const ip of p.ips) podByIP.set(ip, p.key);
  return {
    node: 'n1',
    pods,
    policies,
    clusterPolicies: [],
    nodes: [
      { name: 'n1', addresses: ['172.18.0.2', 'fc00::2'], podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'] },
      { name: 'n2', addresses: ['172.18.0.3', 'fc00::3'], podCIDRs: ['10.244.2.0/24', 'fd00:244:2::/64'] },
    ],
    services: [
      { key: 'shop/web', ips: ['10.96.0.10', 'fd00:96::10'], clusterIPs: ['10.96.0.10', 'fd00:96::10'], externalIPs: [], loadBalancerIPs: [], ports: [{ port: 443, protocol: 'TCP' }], nodePorts: [{ port: 30080, protocol: 'TCP' }] },
      // externalIPs inside --service-external-ip-range (192.0.2.0/24), outside it, and a node's address
      { key: 'shop/ext', ips: ['10.96.0.11', '192.0.2.10', '198.51.100.1', '172.18.0.2'], clusterIPs: ['10.96.0.11'], externalIPs: ['192.0.2.10', '198.51.100.1', '172.18.0.2'], loadBalancerIPs: [], ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }], nodePorts: [] },
    ],
    podByIP,
    namespaceLabels: {},
    ...extra,
  };
}

/** Sets and chains as text: `ipset save` then an iptables-restore payload (the golden-file format). */
export function desiredText(d: Desired): string {
  return [
    `# podwall render, family ${d.family}`,
    '# ---- ipset (as ipset save prints it)',
    writeIpsetSave(d.sets).trimEnd(),
    '# ---- iptables-restore --noflush',
    writeRestore([{ name: 'filter', chains: d.chains, insertRules: d.jumps.map((j) => ({ chain: j.chain, position: 1, rule: j.rule })) }]).trimEnd(),
    '',
  ].join('\n');
}

/** The filter table a fresh node would hold: built-in chains (ACCEPT) with the jumps, plus the render. */
export function tableOf(d: Desired): IptTable {
  return {
    name: 'filter',
    chains: [
      ...(['INPUT', 'FORWARD', 'OUTPUT'] as const).map((hook) => ({ name: hook, policy: 'ACCEPT', rules: d.jumps.filter((j) => j.chain === hook).map((j) => j.rule) })),
      ...d.chains,
    ],
  };
}

export function setMap(d: Desired): Map<string, Ipset> {
  return new Map(d.sets.map((s) => [s.name, s]));
}
