// `podwall trace` output: the walk of each hop as aligned columns, the verdict, and the simulator's view.
import type { TraceStep } from '../iptables/interpret.js';
import type { TraceReport } from '../dataplane/trace.js';

const whereOf = (s: TraceStep): string => (s.index === 0 ? `${s.chain} policy` : `${s.chain} #${s.index}`);

/** One hop's steps as aligned columns: where (chain #rule), what it did, the rule. */
function stepLines(steps: TraceStep[]): string[] {
  const w = Math.max(0, ...steps.map((s) => whereOf(s).length));
  const a = Math.max(0, ...steps.map((s) => s.action.length));
  return steps.map((s) => `    ${whereOf(s).padEnd(w)}  ${s.action.padEnd(a)}  ${s.line}`);
}

export function formatTrace(r: TraceReport & { backend?: string }): string {
  const out: string[] = [];
  const head = `${r.from.label} -> ${r.to.label} ${r.port}/${r.protocol}`;
  out.push(`trace ${head}${r.mode === 'live' ? ` (live${r.backend ? `, ${r.backend}` : ''})` : ' (rendered rules)'}`);
  if (r.src !== r.from.ip || r.dst !== r.to.ip) out.push(`  traced as ${r.src} -> ${r.dst}`);
  for (const h of r.hops) {
    out.push('');
    out.push(`node ${h.node}: ${h.describe}`);
    out.push(...stepLines(h.steps));
    const d = h.decidedBy;
    out.push(`  => ${h.verdict}${h.rejectWith ? ` (${h.rejectWith})` : ''} at ${whereOf(d)}`);
  }
  out.push('');
  const verdictWord = r.verdict === 'ACCEPT' ? 'ALLOWED' : 'DENIED';
  const d = r.decidedBy;
  // No filter table sees the packet: nothing here decides it, so never print ALLOWED.
  if (r.hops.length === 0) out.push(`verdict: NOT SEEN — no filter table ${r.mode === 'live' ? 'of this node' : 'on the path'} sees this packet; podwall does not decide it here`);
  else out.push(`verdict: ${verdictWord}${d ? ` (${r.verdict} on node ${d.node} at ${whereOf(d)})` : ''}`);
  if (d && r.verdict !== 'ACCEPT') out.push(`  deciding rule: ${d.line}`);
  for (const n of r.notes) out.push(`note: ${n}`);
  for (const s of r.simulator ?? []) out.push(`simulator (${s.scope === 'node' ? 'this node only' : 'whole cluster'}): ${s.summary}`);
  if (r.agree === true) out.push('simulator and rendered rules agree');
  if (r.agree === false) {
    const bug = r.disagreement?.startsWith('BUG') ?? true;
    out.push(bug ? `!!! DISAGREEMENT: the rendered rules say ${verdictWord}, the simulator does not — ${r.disagreement}` : `difference from the simulator: ${r.disagreement}`);
  }
  return out.join('\n');
}

export function traceJson(r: TraceReport): unknown {
  return {
    ...r,
    // false: no filter table on the path (live: of this node) sees the packet; `verdict` then decides nothing.
    seen: r.hops.length > 0,
    hops: r.hops.map((h) => ({ ...h, steps: h.steps.map(({ chain, index, line, action }) => ({ chain, index, line, action })) })),
  };
}
