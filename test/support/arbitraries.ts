// fast-check building blocks shared by the property tests.
import fc from 'fast-check';
import type { LabelSelector, NetworkPolicy, PolicyRule } from '../../src/cluster/model.js';

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
