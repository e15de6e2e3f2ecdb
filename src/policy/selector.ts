// Label selector semantics (matchLabels AND matchExpressions; In, NotIn, Exists, DoesNotExist).
import type { LabelSelector, LabelSelectorRequirement, Labels } from '../cluster/model.js';

export function requirementMatches(r: LabelSelectorRequirement, labels: Labels): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  switch (r.operator) {
    case 'In':
      return has && r.values.includes(labels[r.key]!);
    case 'NotIn':
      // Kubernetes: NotIn also matches objects that lack the key.
      return !has || !r.values.includes(labels[r.key]!);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

const hasOwn = Object.prototype.hasOwnProperty;

export function selectorMatches(sel: LabelSelector, labels: Labels): boolean {
  // Hot (every pod and namespace against every distinct selector): no per-call allocation.
  const ml = sel.matchLabels;
  for (const k in ml) {
    if (!hasOwn.call(ml, k)) continue;
    if (!hasOwn.call(labels, k) || labels[k] !== ml[k]) return false;
  }
  for (const r of sel.matchExpressions) if (!requirementMatches(r, labels)) return false;
  return true;
}

export function isEmptySelector(sel: LabelSelector): boolean {
  return Object.keys(sel.matchLabels).length === 0 && sel.matchExpressions.length === 0;
}

/** `{app: web, tier In (a, b)}`; `{}` for the empty selector. */
export function describeSelector(sel: LabelSelector): string {
  const parts = Object.entries(sel.matchLabels).map(([k, v]) => `${k}: ${v}`);
  for (const r of sel.matchExpressions) {
    parts.push(r.operator === 'Exists' ? `${r.key} exists` : r.operator === 'DoesNotExist' ? `!${r.key}` : `${r.key} ${r.operator} (${r.values.join(', ')})`);
  }
  return `{${parts.join(', ')}}`;
}

/** The first requirement of `sel` that `labels` fails, in words; undefined when it matches. */
export function whySelectorMisses(sel: LabelSelector, labels: Labels): string | undefined {
  for (const [k, v] of Object.entries(sel.matchLabels)) {
    if (!Object.prototype.hasOwnProperty.call(labels, k)) return `has no label ${k} (wants ${k}: ${v})`;
    if (labels[k] !== v) return `has ${k}: ${labels[k]} (wants ${v})`;
  }
  for (const r of sel.matchExpressions) {
    if (requirementMatches(r, labels)) continue;
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    switch (r.operator) {
      case 'In':
        return has ? `has ${r.key}: ${labels[r.key]} (wants one of ${r.values.join(', ')})` : `has no label ${r.key} (wants ${r.key} In (${r.values.join(', ')}))`;
      case 'NotIn':
        return `has ${r.key}: ${labels[r.key]} (excluded by NotIn)`;
      case 'Exists':
        return `has no label ${r.key} (wants it to exist)`;
      case 'DoesNotExist':
        return `has label ${r.key} (wants it absent)`;
    }
  }
  return undefined;
}
