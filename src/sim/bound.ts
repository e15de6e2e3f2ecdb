// How big a matrix will be, from the store alone (before any policy is compiled), so `matrix` can
// stop with a suggestion instead of running out of memory on 100,000 pods.
import type { ClusterStore } from '../cluster/store.js';
import { objectKey } from '../cluster/model.js';
import { analysisEndpoints } from '../policy/compile.js';
import type { PlanPod } from '../policy/plan.js';
import { matchesAny, type EndpointPattern } from './endpoint-pattern.js';
import type { MatrixOptions } from './matrix.js';

export interface MatrixScope {
  /** kubectl's -n: only this namespace's endpoints, on both axes. */
  namespace?: string;
  from?: EndpointPattern[];
  to?: EndpointPattern[];
}

export interface MatrixSize {
  endpoints: number;
  rows: number;
  cols: number;
  rowNamespaces: number;
  colNamespaces: number;
  /** The scope as row/column predicates over plan endpoints. */
  filters: MatrixOptions;
}

export function matrixSize(store: ClusterStore, scope: MatrixScope): MatrixSize {
  const nsLabels = (ns: string) => store.namespaceLabels(ns);
  const inScope = (patterns: EndpointPattern[] | undefined) => (e: { key: string; namespace: string; labels: Readonly<Record<string, string>> }) =>
    (scope.namespace === undefined || e.namespace === scope.namespace) && (!patterns || matchesAny(patterns, e, nsLabels));
  const rowOk = inScope(scope.from);
  const colOk = inScope(scope.to);
  const eps = analysisEndpoints(store).map((e) => ({ key: objectKey(e), namespace: e.namespace, labels: e.labels }));
  const rows = eps.filter(rowOk);
  const cols = eps.filter(colOk);
  const filters: MatrixOptions = {};
  if (scope.namespace !== undefined || scope.from) filters.from = (p: PlanPod) => rowOk(p);
  if (scope.namespace !== undefined || scope.to) filters.to = (p: PlanPod) => colOk(p);
  return {
    endpoints: eps.length,
    rows: rows.length,
    cols: cols.length,
    rowNamespaces: new Set(rows.map((e) => e.namespace)).size,
    colNamespaces: new Set(cols.map((e) => e.namespace)).size,
    filters,
  };
}
