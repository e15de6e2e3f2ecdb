// Printing `podwall drops`: one line of text per denial, or one JSON object per line.
import type { DropEndpoint, DropRecord } from '../drops/join.js';
import type { SuppressedRecord } from '../drops/stream.js';

const iso = (ms: number): string => new Date(ms).toISOString();

function end(e: DropEndpoint): string {
  return e.pod ?? e.ip;
}

function service(r: DropRecord): string {
  return r.dst.port !== undefined ? `${r.dst.port}/${r.protocol}` : r.protocol;
}

const VERDICT: Record<DropRecord['verdict'], string> = { denied: 'DENIED', 'would-deny': 'WOULD DENY' };

/** `2026-11-26T08:35:12.123Z node-1 DENIED x/a → y/b 80/TCP  ingress of y/b: isolated by ...` */
export function dropText(r: DropRecord): string {
  const node = r.node !== undefined ? ` ${r.node}` : '';
  const note = r.note !== undefined ? `  [${r.note}]` : '';
  return `${iso(r.time)}${node} ${VERDICT[r.verdict]}  ${end(r.src)} → ${end(r.dst)} ${service(r)}  ${r.why}${note}`;
}

export function dropJson(r: DropRecord): string {
  const o = {
    type: 'drop',
    time: iso(r.time),
    ...(r.node !== undefined ? { node: r.node } : {}),
    kind: r.kind,
    verdict: r.verdict,
    ...(r.direction !== undefined ? { direction: r.direction } : {}),
    src: r.src,
    dst: r.dst,
    protocol: r.protocol,
    ...(r.pod !== undefined ? { pod: r.pod } : {}),
    policies: r.policies,
    why: r.why,
    ...(r.rules !== undefined ? { rules: r.rules } : {}),
    ...(r.note !== undefined ? { note: r.note } : {}),
    prefix: r.prefix,
  };
  return JSON.stringify(o);
}

const KIND_WORD: Record<SuppressedRecord['kind'], string> = { deny: 'denials', audit: '"would deny" entries', unprogrammed: 'fail-closed denials', cnp: 'ClusterNetworkPolicy denials' };

/** `... SUPPRESSED  37 more denials of ingress of y/b were not logged in the last 5s (rate limit 10/min, burst 10 per pod and direction; --netpol-log-limit)` */
export function suppressedText(s: SuppressedRecord): string {
  const node = s.node !== undefined ? ` ${s.node}` : '';
  const whose = s.pod !== undefined ? `${s.direction} of ${s.pod}` : s.kind === 'unprogrammed' ? `${s.direction === 'ingress' ? 'connections to' : 'connections from'} unprogrammed pod addresses` : `${s.direction} (a pod no longer in the Plan)`;
  const secs = Math.max(1, Math.round(s.windowMs / 1000));
  const limit = s.limit ? `rate limit ${s.limit} per pod and direction` : 'rate limit';
  return `${iso(s.time)}${node} SUPPRESSED  ${s.count} more ${KIND_WORD[s.kind]} of ${whose} were not logged in the last ${secs}s (${limit}; the agent's --netpol-log-limit)`;
}

export function suppressedJson(s: SuppressedRecord): string {
  return JSON.stringify({ type: 'suppressed', ...s, time: iso(s.time) });
}
