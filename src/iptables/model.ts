// Data model shared by the iptables-save / ipset save parser, the restore writers, the interpreter
// and the dataplane renderer. Rules are kept as the ordered argument vector iptables itself uses
// (unquoted tokens, without the leading `-A CHAIN`), so what we render is what we parse back.

export interface IptRule {
  /** Tokens after `-A <chain>`, unquoted, in order: ['-p','tcp','-m','tcp','--dport','80','-j','ACCEPT']. */
  args: string[];
  /** `[packets:bytes]` prefix when the save had counters. */
  counters?: { packets: bigint; bytes: bigint };
}

export interface IptChain {
  name: string;
  /** Built-in chains: ACCEPT / DROP; user chains: '-'. */
  policy: string;
  counters?: { packets: bigint; bytes: bigint };
  rules: IptRule[];
}

export interface IptTable {
  name: string;
  /** In declaration order. */
  chains: IptChain[];
}

export interface IptRuleset {
  tables: IptTable[];
}

export type IpsetType = 'hash:ip' | 'hash:net' | string;

export interface IpsetMember {
  /** IP or CIDR in canonical text. */
  entry: string;
  /** hash:net `nomatch` (an exception carved out of a wider entry). */
  nomatch?: boolean;
  /** Any other per-entry options (timeout, comment, ...), kept verbatim. */
  extra?: string[];
}

export interface Ipset {
  name: string;
  type: IpsetType;
  /** `inet` or `inet6`. */
  family: 'inet' | 'inet6';
  /** Other create options (hashsize, maxelem, timeout, comment, ...), in order, verbatim. */
  options: string[];
  members: IpsetMember[];
}

export const FILTER = 'filter';
