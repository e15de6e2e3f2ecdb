// A finding is something wrong (error) or suspicious (warning) about the input, always naming
// where: file, object and field. Errors make commands exit non-zero; the daemon logs them.

export interface Finding {
  severity: 'error' | 'warning';
  /** Stable machine code, e.g. `invalid-cidr`, `selects-no-pod`. */
  code: string;
  message: string;
  file?: string;
  /** `Kind ns/name` (or `Kind name`, or `document N` when unnamed). */
  object?: string;
  /** JSON-path-like field: `spec.ingress[0].from[1].ipBlock.cidr`. */
  field?: string;
}

/** Printable, single-line rendering of any user-provided text inside a message. */
export function show(value: unknown): string {
  let s: string;
  // Never a JavaScript word in a message: an absent value is said as such.
  if (value === undefined) return '(missing)';
  if (typeof value === 'string') s = JSON.stringify(value);
  else {
    try {
      s = JSON.stringify(value) ?? String(value);
    } catch {
      s = String(value);
    }
  }
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

export function formatFinding(f: Finding): string {
  const where = [f.file, f.object, f.field].filter((x) => x !== undefined && x !== '').join(': ');
  return `${f.severity}: ${where ? `${where}: ` : ''}${f.message} [${f.code}]`;
}

export function hasErrors(findings: readonly Finding[]): boolean {
  return findings.some((f) => f.severity === 'error');
}

/**
 * Errors in a value an API server accepts and podwall reads the safe way, so the object stays in
 * force: a `podwall.io/enforcement` annotation that is neither `audit` nor `enforce` (any string is
 * a valid annotation) enforces the policy — rejecting the policy whole would lift its isolation.
 */
const READ_SAFELY = new Set(['invalid-enforcement']);

/** Whether these findings reject the object whole (an error other than those read the safe way). */
export function rejectsObject(findings: readonly Finding[]): boolean {
  return findings.some((f) => f.severity === 'error' && !READ_SAFELY.has(f.code));
}

/** Names show() leaves as they are inside its quotes. */
const PLAIN_TEXT = /^[A-Za-z0-9._-]*$/;

/** show() without its quotes: a user-provided name inside a message or an object's description. */
export function showBare(value: string): string {
  // An ordinary name (most) is shown as it is, without JSON.stringify.
  return value.length <= 100 && PLAIN_TEXT.test(value) ? value : show(value).slice(1, -1);
}
