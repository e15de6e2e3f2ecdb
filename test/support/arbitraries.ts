// fast-check building blocks shared by the property tests.
import fc from 'fast-check';
import type { ClusterNetworkPolicy, CnpAction, CnpPeer, CnpPodSelection, CnpPort, CnpRule, CnpTier, LabelSelector, NetworkPolicy, PolicyRule } from '../../src/cluster/model.js';

/** A NetworkPolicy `p<i>` in one of `namespaces`, built from the caller's selector and rule vocabularies. */
export function networkPolicyArb(i: number, namespaces: readonly string[], selector: fc.Arbitrary<LabelSelector>, rule: fc.Arbitrary<PolicyRule>): fc.Arbitrary<NetworkPolicy> {
  return fc.record({
    kind: fc.constant('NetworkPolicy' as const),
    namespace: fc.constantFrom(...namespaces),
    name: fc.constant(`p${i}`),
    podSelector: selector,
    policyTypes: fc.subarray(['ingress', 'egress'] as ('ingress' | 'egress')[], { minLength: 1 }),
    ingress: fc.array(rule, { maxLength: 2 }),
    egress: fc.array(rule, { maxLength: 2 }),
  });
}

/**
 * A ClusterNetworkPolicy named from `names`, in either tier, with small priorities (ties happen), a
 * namespaces or pods subject, and up to three rules per direction built from the caller's selector,
 * network and port vocabularies (and, rarely, an unsupported `nodes` peer: read fail closed).
 */
export function clusterNetworkPolicyArb(
  names: readonly string[],
  selector: fc.Arbitrary<LabelSelector>,
  vocab: { networks: readonly string[]; ports: fc.Arbitrary<CnpPort> },
): fc.Arbitrary<ClusterNetworkPolicy> {
  const selection: fc.Arbitrary<CnpPodSelection> = fc.oneof(
    selector.map((s) => ({ form: 'namespaces' as const, namespaceSelector: s })),
    fc.tuple(selector, selector).map(([n, p]) => ({ form: 'pods' as const, namespaceSelector: n, podSelector: p })),
  );
  const podPeer: fc.Arbitrary<CnpPeer> = selection.map((s) => ({ kind: 'pods' as const, ...s }));
  const egressPeer: fc.Arbitrary<CnpPeer> = fc.oneof(
    { weight: 4, arbitrary: podPeer },
    { weight: 2, arbitrary: fc.subarray([...vocab.networks], { minLength: 1, maxLength: 2 }).map((networks) => ({ kind: 'networks' as const, networks })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'unsupported' as const, field: 'nodes' as const }) },
  );
  const rule = (peer: fc.Arbitrary<CnpPeer>): fc.Arbitrary<CnpRule> =>
    fc.record({ action: fc.constantFrom<CnpAction>('Accept', 'Deny', 'Pass'), peers: fc.array(peer, { minLength: 1, maxLength: 2 }), ports: fc.array(vocab.ports, { maxLength: 2 }) });
  return fc.record({
    kind: fc.constant('ClusterNetworkPolicy' as const),
    name: fc.constantFrom(...names),
    tier: fc.constantFrom<CnpTier>('Admin', 'Baseline'),
    priority: fc.constantFrom(1, 2, 2, 7),
    subject: selection,
    ingress: fc.array(rule(podPeer), { maxLength: 3 }),
    egress: fc.array(rule(egressPeer), { maxLength: 3 }),
  });
}
