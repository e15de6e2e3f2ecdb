// JUnit XML for `podwall test --junit FILE`: the format CI systems (GitLab, Jenkins, GitHub
// annotations) render. One testsuite per expectations file, one testcase per assertion, a failure
// element with the failing pairs and their explanations.
import type { AssertionResult, TestReport } from '../sim/assertions.js';

function xml(s: string): string {
  // Only characters XML 1.0 allows, escaped.
  return s.replace(/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function failureText(r: AssertionResult): string {
  const lines: string[] = [];
  if (r.problem) lines.push(r.problem);
  for (const f of r.failures) {
    lines.push(`${f.from} → ${f.to} ${f.port}: expected ${f.expected ? 'ALLOWED' : 'DENIED'}, got ${f.got === null ? 'DEPENDS ON IP' : f.got ? 'ALLOWED' : 'DENIED'}`);
    lines.push(...f.why.split('\n').map((l) => `  ${l}`));
  }
  if (r.failed > r.failures.length) lines.push(`… and ${r.failed - r.failures.length} more`);
  return lines.join('\n');
}

export function junitXml(report: TestReport, opts: { timeSeconds?: number } = {}): string {
  const byFile = new Map<string, AssertionResult[]>();
  for (const r of report.results) {
    let l = byFile.get(r.assertion.file);
    if (!l) byFile.set(r.assertion.file, (l = []));
    l.push(r);
  }
  const time = (opts.timeSeconds ?? 0).toFixed(3);
  const out = [`<?xml version="1.0" encoding="UTF-8"?>`, `<testsuites name="podwall test" tests="${report.results.length}" failures="${report.failed}" errors="0" time="${time}">`];
  for (const [file, results] of byFile) {
    const failures = results.filter((r) => !r.passed).length;
    out.push(`  <testsuite name="${xml(file)}" tests="${results.length}" failures="${failures}" errors="0" skipped="0">`);
    for (const r of results) {
      const a = r.assertion;
      const head = `  <testcase classname="${xml(file)}" name="${xml(`[${a.index}] ${a.name}`)}" assertions="${r.checked}"`;
      if (r.passed) out.push(`  ${head}/>`);
      else {
        const msg = r.problem ?? `${r.failed} of ${r.checked} pair(s) and port(s) are not ${a.allow ? 'allowed' : 'denied'}`;
        out.push(`  ${head}>`, `      <failure message="${xml(msg)}" type="reachability">${xml(failureText(r))}</failure>`, '    </testcase>');
      }
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>', '');
  return out.join('\n');
}
