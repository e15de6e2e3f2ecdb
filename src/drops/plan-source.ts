// The Plan `podwall drops` joins with: the whole cluster's (every pod, so a peer on another node is
// named too), compiled from a store that a source keeps current, again only when the store changed.
import type { ClusterStore } from '../cluster/store.js';
import { compile } from '../policy/compile.js';
import type { Plan } from '../policy/plan.js';
import type { PlanSource } from './stream.js';

export interface StorePlanSourceOptions {
  /** Clock in ms (tests drive it; the rate limits below are judged on it, never on the wall clock). */
  now?: () => number;
  /** Compiler (tests: one whose duration the test's clock decides). */
  compile?: (store: ClusterStore) => Plan;
}

export class StorePlanSource implements PlanSource {
  private current: Plan | undefined;
  private version = -1;
  private at = 0;
  private compileMs = 0;
  private readonly now: () => number;
  private readonly compile: (store: ClusterStore) => Plan;

  /** `minAgeMs`: a busy cluster is compiled at most this often, unless a lookup asks for a fresh Plan. */
  constructor(
    private readonly store: ClusterStore,
    private readonly minAgeMs = 1000,
    opts: StorePlanSourceOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.compile = opts.compile ?? ((s) => compile(s));
  }

  plan(opts: { fresh?: boolean } = {}): Plan {
    const stale = this.store.version !== this.version;
    const now = this.now();
    const age = now - this.at;
    // A big cluster that keeps changing is compiled at most a fifth of the time (50,000 pods: ~4 s
    // per compile here), even when an entry asks for a fresh Plan.
    const floor = 5 * this.compileMs;
    if (!this.current || (stale && age >= floor && (opts.fresh || age >= this.minAgeMs))) {
      this.version = this.store.version;
      this.current = this.compile(this.store);
      this.at = this.now();
      this.compileMs = this.at - now;
    }
    return this.current;
  }
}
