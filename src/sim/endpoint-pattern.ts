// Which endpoints a user means: `ns/name`, `ns/name[Kind]`, `ns/*`, `*/*`, globs (`shop/web-*`), a
// bare name in the default namespace, or label selectors for namespace and pod. Used by matrix's
// --from/--to filters and by `podwall test` assertions.
import type { LabelSelector, Labels } from '../cluster/model.js';
import { describeSelector, selectorMatches } from '../policy/selector.js';

/** What a pattern sees of an endpoint. */
export interface EndpointFacts {
  key: string;
  namespace: string;
  labels: Labels;
}

export interface EndpointPattern {
  /** As written, for messages. */
  text: string;
  matches(e: EndpointFacts, namespaceLabels: (ns: string) => Labels): boolean;
}

export class PatternError extends Error {}

const NAME = /^[a-z0-9*]([-a-z0-9.*]*[a-z0-9*])?$/;
const KIND = /^[A-Z][A-Za-z]*$/;

function glob(p: string): (s: string) => boolean {
  if (p === '*') return () => true;
  if (!p.includes('*')) return (s) => s === p;
  const re = new RegExp(`^${p.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return (s) => re.test(s);
}

/**
 * `ns/name`, `ns/name[Kind]`, `ns/*` (every endpoint of ns), `*` or `*\/*` (every endpoint), `*`
 * inside a name as a glob, `name[Kind]`/`name` in `defaultNamespace`. `ns/name` names a pod only;
 * `ns/name[*]` any workload of that name.
 */
export function parseEndpointPattern(text: string, defaultNamespace = 'default'): EndpointPattern {
  const t = text.trim();
  if (t === '*' || t === '*/*') return { text, matches: () => true };
  const m = /^(?:([^/]*)\/)?([^/[\]]+)(?:\[([^\]]*)\])?$/.exec(t);
  if (!m) throw new PatternError(`${JSON.stringify(text)}: expected namespace/name, namespace/name[Kind], namespace/* or a name`);
  const [, nsText, nameText, kind] = m;
  const ns = nsText ?? defaultNamespace;
  if (!NAME.test(ns)) throw new PatternError(`${JSON.stringify(text)}: ${JSON.stringify(ns)} is not a namespace name or pattern`);
  if (!NAME.test(nameText!)) throw new PatternError(`${JSON.stringify(text)}: ${JSON.stringify(nameText)} is not a name or pattern`);
  if (kind !== undefined && kind !== '*' && !KIND.test(kind)) throw new PatternError(`${JSON.stringify(text)}: ${JSON.stringify(kind)} is not a kind (Deployment, StatefulSet, ...)`);
  const nsOk = glob(ns);
  const nameOk = glob(nameText!);
  // `ns/*` means every endpoint of ns, workloads included; `ns/web` only the pod web.
  const kindOk = nameText === '*' && kind === undefined ? () => true : kind === undefined ? (k: string | undefined) => k === undefined : kind === '*' ? (k: string | undefined) => k !== undefined : (k: string | undefined) => k === kind;
  return {
    text,
    matches: (e) => {
      const br = e.key.indexOf('[');
      const bare = br < 0 ? e.key : e.key.slice(0, br);
      const k = br < 0 ? undefined : e.key.slice(br + 1, -1);
      return nsOk(e.namespace) && nameOk(bare.slice(e.namespace.length + 1)) && kindOk(k);
    },
  };
}

/** Endpoints by label selectors: pods/workloads whose labels match `pod`, in namespaces matching `namespace`. */
export function selectorPattern(namespace: LabelSelector | undefined, pod: LabelSelector | undefined, namespaceName?: string): EndpointPattern {
  const parts = [pod ? `pods ${describeSelector(pod)}` : 'every endpoint', namespaceName !== undefined ? `in namespace ${namespaceName}` : namespace ? `in namespaces ${describeSelector(namespace)}` : 'in every namespace'];
  return {
    text: parts.join(' '),
    matches: (e, nsLabels) => (namespaceName === undefined || e.namespace === namespaceName) && (!namespace || selectorMatches(namespace, nsLabels(e.namespace))) && (!pod || selectorMatches(pod, e.labels)),
  };
}

export function matchesAny(patterns: readonly EndpointPattern[], e: EndpointFacts, nsLabels: (ns: string) => Labels): boolean {
  return patterns.some((p) => p.matches(e, nsLabels));
}
