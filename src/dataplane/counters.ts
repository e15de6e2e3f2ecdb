// The kernel's packet counters of podwall's NFLOG rules and of the rule after each (its REJECT, or for
// audited policies a rule without target that only counts): every denial is counted there, logged or
// not, at no cost beyond what the kernel already does. `total - logged` is what the rate limit kept
// out of the log; `total` is what the denial metrics count.
//
// Why counters and not NFLOG in the agent: NFLOG is rate-limited (a flood would otherwise cost a
// netlink message per packet), so counting entries undercounts exactly when it matters; and an NFLOG
// group has a single reader per network namespace, so an agent holding group 100 would lock operators
// out of `tcpdump -i nflog:100` and `podwall drops`. The counters are exact, free to keep, and read
// with one `iptables-save -c` per family when someone asks (a scrape, `podwall drops`).
import type { Family } from '../cluster/model.js';
import type { IptTable } from '../iptables/model.js';
import { parseIptablesSave, IptablesParseError } from '../iptables/parse.js';
import type { Runner } from './exec.js';
import { decodePrefix, type LogLimit, type NflogTag } from './nflog.js';
import { KUBE_ROUTER_FORWARD } from './names.js';

export interface LogCounter {
  tag: NflogTag;
  /** `kind/direction/ref` (the hint for rules without ref): what sums across rules and families. */
  key: string;
  /** Packets that passed the NFLOG rule's rate limit (logged). */
  logged: bigint;
  /** Every packet of this kind: the following rule's counter (equal to `logged` when it is missing). */
  total: bigint;
  /** The NFLOG rule's rate limit, as written in the table. */
  limit: LogLimit;
}

export function counterKey(tag: NflogTag): string {
  return `${tag.kind}/${tag.direction}/${tag.ref ?? tag.hint ?? '-'}`;
}

function argAfter(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The NFLOG rules podwall wrote in a filter table (read with counters) and their totals, summed by key. */
export function logCounters(table: IptTable): LogCounter[] {
  const byKey = new Map<string, LogCounter>();
  for (const chain of table.chains) {
    chain.rules.forEach((rule, i) => {
      if (argAfter(rule.args, '-j') !== 'NFLOG') return;
      const tag = decodePrefix(argAfter(rule.args, '--nflog-prefix') ?? '');
      if (!tag) return;
      const logged = rule.counters?.packets ?? 0n;
      // The pair: the next rule repeats the NFLOG rule's matches (without the limit) and rejects or
      // only counts. Anything else (an edited table) counts as logged only.
      const next = chain.rules[i + 1];
      const target = next ? argAfter(next.args, '-j') : undefined;
      const paired = next !== undefined && (tag.kind === 'audit' ? target === undefined : target === 'REJECT');
      const total = paired ? (next.counters?.packets ?? 0n) : logged;
      const key = counterKey(tag);
      const cur = byKey.get(key);
      if (cur) {
        cur.logged += logged;
        cur.total += total;
      } else {
        const rate = argAfter(rule.args, '--limit');
        const burst = Number(argAfter(rule.args, '--limit-burst') ?? 5);
        byKey.set(key, { tag, key, logged, total, limit: rate === undefined ? { burst: 1 } : { rate, burst } });
      }
    });
  }
  return [...byKey.values()];
}

export interface CounterRead {
  family: Family;
  /** The save binary read. */
  bin: string;
  /** Whether the table holds podwall's (or kube-router's) top chains. */
  hasFirewall: boolean;
  counters: LogCounter[];
  /** The rate limit of podwall's NFLOG rules (of the first one), when there are any. */
  limit?: LogLimit;
}

export class CounterReadError extends Error {}

/**
 * Reads the counters of one family with `iptables-save -c -t filter` (ip6tables-save for IPv6) from
 * the given save binary, or from whichever backend holds KUBE-ROUTER-FORWARD when `bins` lists several.
 */
export async function readLogCounters(run: Runner, family: Family, bins: readonly string[]): Promise<CounterRead> {
  let first: CounterRead | undefined;
  const errors: string[] = [];
  for (const bin of bins) {
    let text: string;
    try {
      const r = await run(bin, ['-c', '-t', 'filter']);
      if (r.code !== 0) {
        errors.push(`${bin}: ${r.stderr.trim().split('\n')[0] || `exit ${r.code}`}`);
        continue;
      }
      text = r.stdout;
    } catch (e) {
      errors.push(`${bin}: ${(e as Error).message}`);
      continue;
    }
    let table: IptTable | undefined;
    try {
      table = parseIptablesSave(text).tables.find((t) => t.name === 'filter');
    } catch (e) {
      if (e instanceof IptablesParseError) throw new CounterReadError(`${bin} -c output: ${e.message}`);
      throw e;
    }
    const counters = table ? logCounters(table) : [];
    const read: CounterRead = { family, bin, hasFirewall: table?.chains.some((c) => c.name === KUBE_ROUTER_FORWARD) ?? false, counters };
    if (counters[0]) read.limit = counters[0].limit;
    if (read.hasFirewall) return read;
    first ??= read;
  }
  if (first) return first;
  throw new CounterReadError(`cannot read the ${family} filter table: ${errors.join('; ') || 'no iptables-save binary'}`);
}

/** The save binaries to try for a family: both backends' when installed, else the plain name. */
export function saveBinaries(family: Family, exists: (name: string) => boolean): string[] {
  const prefix = family === 'ipv4' ? 'iptables' : 'ip6tables';
  const both = [`${prefix}-nft-save`, `${prefix}-legacy-save`].filter(exists);
  return both.length > 0 ? both : [`${prefix}-save`];
}
