// What the analysis commands (matrix, explain, diff, test) share: the pod network flag, the
// analysis plan, and the notes about what the input holds but analysis leaves out.
import type { ClusterStore } from '../cluster/store.js';
import { formatInputNotes, inputNotes } from '../cluster/workloads.js';
import { formatCIDR, parseCIDR } from '../net/ip.js';
import { compile } from '../policy/compile.js';
import type { Plan } from '../policy/plan.js';
import { UserError } from './common.js';
import { parseEndpointPattern, PatternError, type EndpointPattern } from '../sim/endpoint-pattern.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** kubectl's `-n NS`: a namespace name. */
export function namespaceOption(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (v.length > 63 || !DNS1123_LABEL.test(v)) throw new UserError(`--namespace ${JSON.stringify(v)}: not a namespace name`, 2);
  return v;
}

/** `--from`/`--to` patterns. */
export function patternsOption(flag: string, values: readonly string[] | undefined, defaultNamespace: string | undefined): EndpointPattern[] | undefined {
  if (!values || values.length === 0) return undefined;
  return values.map((v) => {
    try {
      return parseEndpointPattern(v, defaultNamespace);
    } catch (e) {
      if (e instanceof PatternError) throw new UserError(`${flag} ${e.message}`, 2);
      throw e;
    }
  });
}

export const POD_CIDR_HELP = 'CIDR the pod network takes addresses from (repeatable; default: every address); decides ipBlocks for workloads and planned pods, which have no IP';

/** `--pod-cidr` values → canonical CIDRs (undefined: the default, every address). */
export function podCidrOption(values: readonly string[] | undefined): string[] | undefined {
  if (!values || values.length === 0) return undefined;
  return values.map((v) => {
    const r = parseCIDR(v.trim());
    if (!r.ok) throw new UserError(`--pod-cidr ${JSON.stringify(v)}: not a CIDR (${r.reason})`, 2);
    return formatCIDR(r.cidr);
  });
}

/** The plan analysis judges: every pod with an IP, every workload and planned pod. */
export function analysisPlan(store: ClusterStore, podCidr: readonly string[] | undefined): Plan {
  return compile(store, { ipless: true, ...(podCidr ? { podNetwork: podCidr } : {}) });
}

/** Prints, on stderr, what the input holds that analysis leaves out or reads differently. */
export function printInputNotes(store: ClusterStore): void {
  for (const line of formatInputNotes(inputNotes(store))) process.stderr.write(`${line}\n`);
}
