// Which definitions are in force: the rule an API server with strict field validation applies,
// for a directory of manifests read again and again (the agent) or once (the commands, with no
// history). Pure.
//
// - A valid definition is accepted.
// - An invalid one is rejected whole: the object's last accepted version stays in force; if none
//   was ever accepted, the object does not exist — except a Namespace, which exists whatever its
//   labels say (its pods do): it stays with labels no namespace selector matches.
// - An object defined more than once (in several files, or twice in one): the definition from the
//   file its accepted version came from wins; with none, the first in file order. The others are
//   rejected. So a copy of a file never overrides what is in force, and the order is deterministic.
// - An object no file defines any more is deleted — unless the file it came from does not read
//   cleanly (documents that could not be identified, or rejected definitions): a truncated or
//   half-edited file never deletes anything; what it no longer defines stays until it is fixed.
import type { Finding } from './findings.js';
import type { ClusterObject } from './model.js';
import type { Definition, FileRead } from './manifests.js';

export interface Accepted {
  /** `Kind namespace/name` as written. */
  id: string;
  /** The kind as written (Pod, Deployment, NetworkPolicy, ...). */
  kind: string;
  object: ClusterObject;
  /** The file the accepted definition came from. */
  file: string;
  /** The raw object it was read from (absent for `unknown` readings). */
  raw?: Record<string, unknown>;
  /** Stands in for an object never accepted (a Namespace whose labels are unknown). */
  unknown?: boolean;
}

export interface AcceptResult {
  next: Map<string, Accepted>;
  /** Duplicates always; with `history`, also what happened to each rejected definition. */
  findings: Finding[];
  /** Ids of the objects whose definition was rejected this time. */
  rejected: string[];
}

const NO_DEFINITIONS: readonly Definition[] = [];
const kindOf = (id: string) => id.slice(0, id.indexOf(' '));

function where(d: Definition): string {
  return `${d.file} (document ${d.doc}${d.item !== undefined ? ` item ${d.item}` : ''})`;
}

/**
 * Decides the objects in force from the files read now (in file order) and those in force before.
 * `history`: the caller keeps state across reads (the agent) — say what stays in force for each rejection.
 */
export function accept(prev: ReadonlyMap<string, Accepted>, files: readonly FileRead[], o: { history?: boolean } = {}): AcceptResult {
  const next = new Map<string, Accepted>();
  const findings: Finding[] = [];
  const rejected: string[] = [];
  // An object's definitions: the one, or (rarely) a list (100,000 one-element arrays fewer).
  const byId = new Map<string, Definition | Definition[]>();
  const present = new Set<string>();
  const unclean = new Set<string>();
  for (const f of files) {
    present.add(f.file);
    if (f.unidentified > 0 || f.defs.some((d) => d.object === undefined)) unclean.add(f.file);
    for (const d of f.defs) {
      const held = byId.get(d.id);
      if (held === undefined) byId.set(d.id, d);
      else if (Array.isArray(held)) held.push(d);
      else byId.set(d.id, [held, d]);
    }
  }
  for (const [id, held] of byId) {
    const before = prev.get(id);
    const chosen = !Array.isArray(held) ? held : ((before && held.find((d) => d.file === before.file)) ?? held[0]!);
    for (const d of Array.isArray(held) ? held : NO_DEFINITIONS) {
      if (d === chosen) continue;
      const why = before && chosen.file === before.file ? 'where its accepted version comes from' : 'first in file order';
      findings.push({ severity: 'error', code: 'duplicate-object', file: d.file, object: id, message: `also defined in ${where(chosen)}, ${why}: that definition is the one in force, this one is rejected` });
    }
    if (chosen.object) {
      const a: Accepted = { id, kind: kindOf(id), object: chosen.object, file: chosen.file };
      if (chosen.raw) a.raw = chosen.raw;
      next.set(id, a);
      continue;
    }
    rejected.push(id);
    if (before && !before.unknown) {
      next.set(id, before);
      if (o.history) findings.push({ severity: 'warning', code: 'kept-last-accepted', file: chosen.file, object: id, message: `rejected: its last accepted version (from ${before.file}) stays in force until it is fixed` });
    } else if (chosen.unknown) {
      next.set(id, { id, kind: kindOf(id), object: chosen.unknown, file: chosen.file, unknown: true });
      findings.push({ severity: 'warning', code: 'labels-unknown', file: chosen.file, object: id, message: 'rejected: the namespace exists but its labels are unknown, so no namespace selector matches it (In or NotIn) until it is fixed' });
    } else if (o.history) {
      findings.push({ severity: 'warning', code: 'not-in-force', file: chosen.file, object: id, message: 'rejected: it is not in force (no earlier version of it was accepted)' });
    }
  }
  for (const [id, a] of prev) {
    if (byId.has(id)) continue;
    // Not defined any more: deleted, unless its file does not read cleanly (truncated, half edited).
    if (present.has(a.file) && unclean.has(a.file)) {
      next.set(id, a);
      if (o.history) findings.push({ severity: 'warning', code: 'kept-last-accepted', file: a.file, object: id, message: 'kept: this file has errors, and a file with errors deletes nothing; it goes once the file reads cleanly without it' });
    }
  }
  return { next, findings, rejected };
}
