// ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2) → the Plan's tiers. The only place their
// semantics are compiled: subjects and peers resolved to pods, `networks` to CIDR peers, protocols to
// port entries (named ports resolved on each destination pod, any protocol the pod declares for the
// name), and unsupported peers read fail closed. Evaluation order and the first-match rule are
// documented on PlanClusterPolicy; the simulator and the renderer follow it.
import type { ClusterNetworkPolicy, CnpPodSelection, CnpPort, CnpRule, Direction, Endpoint } from '../cluster/model.js';
import { familyOf, objectKey } from '../cluster/model.js';
import { describeSelector, isEmptySelector, selectorMatches } from './selector.js';
import { destinationPods, type Selection } from './compile.js';
import type { CidrPeer, CnpRuleOrigin, PlanCnpRule, PlanClusterPolicy, PlanPeer, PlanPod, PlanPort, PodPeer } from './plan.js';
import { cnpOrder, cnpRuleId } from './plan.js';

/** `all pods in namespaces {team: a}`, `pods {app: web} in all namespaces`. */
export function describeSelection(s: CnpPodSelection): string {
  const nss = isEmptySelector(s.namespaceSelector) ? 'all namespaces' : `namespaces ${describeSelector(s.namespaceSelector)}`;
  if (s.form === 'namespaces' || !s.podSelector || isEmptySelector(s.podSelector)) return `all pods in ${nss}`;
  return `pods ${describeSelector(s.podSelector)} in ${nss}`;
}

/** Whether a pod (with its namespace's labels) is selected. */
export function selectionMatches(s: CnpPodSelection, namespaceLabels: Readonly<Record<string, string>>, pod: Endpoint): boolean {
  return selectorMatches(s.namespaceSelector, namespaceLabels) && (s.form === 'namespaces' || !s.podSelector || selectorMatches(s.podSelector, pod.labels));
}

function selectedPods(s: CnpPodSelection, sel: Selection): { pods: Endpoint[]; keys: string[]; ips: string[] } {
  return sel.peerPods(s.namespaceSelector, '', s.form === 'pods' ? s.podSelector : undefined);
}

function portSpec(p: CnpPort): string {
  if (p.kind === 'named') return `named port ${p.name}`;
  if (p.port === undefined) return `all/${p.protocol}`;
  return p.endPort !== undefined ? `${p.port}-${p.endPort}/${p.protocol}` : `${p.port}/${p.protocol}`;
}

const FAIL_CLOSED: Record<CnpRule['action'], string> = {
  Accept: 'its unsupported peers match nothing',
  Deny: 'it has an unsupported peer: enforced as denying every peer',
  Pass: 'it has an unsupported peer: enforced as a Deny of every peer (fail closed)',
};

function compileRule(cnp: ClusterNetworkPolicy, rule: CnpRule, direction: Direction, ruleIndex: number, targets: Endpoint[], sel: Selection, podNetwork: readonly string[] | undefined): PlanCnpRule {
  const origin: CnpRuleOrigin = { policy: cnp.name, tier: cnp.tier, priority: cnp.priority, direction, ruleIndex, action: rule.action };
  if (rule.name !== undefined) origin.ruleName = rule.name;
  const id = cnpRuleId(origin);
  const unsupported = rule.peers.some((p) => p.kind === 'unsupported');
  const out: PlanCnpRule = { id, origin, action: rule.action, peers: [], ports: 'all' };
  if (unsupported) out.failClosed = FAIL_CLOSED[rule.action];
  if (unsupported && rule.action !== 'Accept') {
    // The API's fail-closed reading for Deny and Pass: the rule denies every peer.
    out.action = 'Deny';
    out.peers = 'all';
  } else {
    const peers: PlanPeer[] = [];
    rule.peers.forEach((p, peerIndex) => {
      const setId = `${id}/${peerIndex}`;
      if (p.kind === 'pods') {
        const { keys, ips } = selectedPods(p, sel);
        const pp: PodPeer = { kind: 'pods', setId, peerIndex, describe: describeSelection(p), policyNamespace: '', namespaceSelector: p.namespaceSelector, pods: keys, ips };
        if (p.form === 'pods' && p.podSelector) pp.podSelector = p.podSelector;
        peers.push(pp);
      } else if (p.kind === 'networks') {
        p.networks.forEach((cidr, i) => {
          const c: CidrPeer = { kind: 'cidr', setId: `${setId}/${i}`, peerIndex, describe: `networks ${cidr}`, family: familyOf(cidr), block: { cidr, except: [] } };
          peers.push(c);
        });
      }
      // Unsupported peers of an Accept rule match nothing: no entry.
    });
    out.peers = peers;
  }
  if (rule.ports.length > 0) out.ports = compilePorts(rule.ports, direction === 'ingress' ? targets : destinationPods(out.peers, sel, podNetwork));
  return out;
}

/** Port entries; a named port becomes one entry per (protocol, number) it resolves to on `dests`. */
function compilePorts(ports: readonly CnpPort[], dests: readonly Endpoint[]): PlanPort[] {
  const out: PlanPort[] = [];
  ports.forEach((p, portIndex) => {
    const spec = portSpec(p);
    if (p.kind === 'port') {
      const pp: PlanPort = { protocol: p.protocol, portIndex, spec };
      if (p.port !== undefined) pp.port = p.port;
      if (p.endPort !== undefined) pp.endPort = p.endPort;
      out.push(pp);
      return;
    }
    const groups = new Map<string, { protocol: PlanPort['protocol']; port: number; pods: Endpoint[] }>();
    for (const d of dests) {
      for (const cp of d.ports) {
        if (cp.name !== p.name) continue;
        const k = `${cp.protocol}/${cp.port}`;
        let g = groups.get(k);
        if (!g) groups.set(k, (g = { protocol: cp.protocol, port: cp.port, pods: [] }));
        if (!g.pods.includes(d)) g.pods.push(d);
      }
    }
    const order = { TCP: 0, UDP: 1, SCTP: 2 };
    for (const g of [...groups.values()].sort((a, b) => order[a.protocol] - order[b.protocol] || a.port - b.port)) {
      out.push({ protocol: g.protocol, port: g.port, portIndex, spec, name: p.name, namedTargets: { pods: g.pods.map(objectKey).sort(), ips: g.pods.flatMap((x) => x.ips).sort() } });
    }
    // A name no destination declares resolves to nothing: the entry matches no packet.
  });
  return out;
}

/** Compiles one ClusterNetworkPolicy; undefined when its subject selects no pod in scope. */
export function compileClusterPolicy(cnp: ClusterNetworkPolicy, sel: Selection, inScope: (p: Endpoint) => boolean, podNetwork?: readonly string[]): PlanClusterPolicy | undefined {
  const targets = selectedPods(cnp.subject, sel).pods.filter(inScope);
  if (targets.length === 0) return undefined;
  return {
    id: cnp.name,
    tier: cnp.tier,
    priority: cnp.priority,
    subject: cnp.subject,
    describeSubject: describeSelection(cnp.subject),
    targets: targets.map(objectKey).sort(),
    ingress: cnp.ingress.map((r, i) => compileRule(cnp, r, 'ingress', i, targets, sel, podNetwork)),
    egress: cnp.egress.map((r, i) => compileRule(cnp, r, 'egress', i, targets, sel, podNetwork)),
  };
}

/** Every ClusterNetworkPolicy of the store selecting a pod in scope, in evaluation order. */
export function compileClusterPolicies(cnps: Iterable<ClusterNetworkPolicy>, sel: Selection, inScope: (p: Endpoint) => boolean, podNetwork?: readonly string[]): PlanClusterPolicy[] {
  const out: PlanClusterPolicy[] = [];
  for (const c of cnps) {
    const compiled = compileClusterPolicy(c, sel, inScope, podNetwork);
    if (compiled) out.push(compiled);
  }
  return out.sort(cnpOrder);
}

/** Fills each pod's `tiers` from the compiled ClusterNetworkPolicies (already in evaluation order). */
export function attachTiers(pods: ReadonlyMap<string, PlanPod>, clusterPolicies: readonly PlanClusterPolicy[]): void {
  for (const cp of clusterPolicies) {
    const tier = cp.tier === 'Admin' ? 'admin' : 'baseline';
    for (const t of cp.targets) {
      const pod = pods.get(t);
      if (!pod) continue;
      for (const d of ['ingress', 'egress'] as const) {
        if (cp[d].length === 0) continue;
        pod.tiers ??= { admin: { ingress: [], egress: [] }, baseline: { ingress: [], egress: [] } };
        pod.tiers[tier][d].push(cp.id);
      }
    }
  }
}
