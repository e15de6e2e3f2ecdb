// The Plan `podwall drops` joins with: the whole cluster's (every pod, so a peer on another node is
// named too), compiled from a store that a source keeps current, again only when the store changed.
import type { ClusterStore } from '../cluster/store.js';
import { compile } from '../policy/compile.js';
import type { Plan } from '../policy/plan.js';
import type { PlanSource } from './stream.js';

export class StorePlanSource implements PlanSource {
  private current: Plan | undefined;
  private version = -1;
  private at = 0;

  /** `minAgeMs`: a busy cluster is compiled at most this often, unless a lookup asks for a fresh Plan. */
  constructor(
    private readonly store: ClusterStore,
    private readonly minAgeMs = 1000,
  ) {}

  plan(opts: { fresh?: boolean } = {}): Plan {
    const stale = this.store.version !== this.version;
    if (!this.current || (stale && (opts.fresh || Date.now() - this.at >= this.minAgeMs))) {
      this.version = this.store.version;
      this.current = compile(this.store);
      this.at = Date.now();
    }
    return this.current;
  }
}
