// A watched directory of manifests as a cluster source (`podwall run --manifests DIR`): the same
// agent without an API server, and as strict as an API server with strict field validation.
//
// - Each file is read once its content has been unchanged for the settle time (a writer may be
//   mid-file before: empty for a moment, or cut after `- from:`); until then its previous reading
//   holds. A file that disappears counts as deleted once it has been gone for the settle time (a
//   tree restored file by file lists them one by one). Files whose size, times and inode did not
//   change are not read again.
// - Definitions are decided by accept.ts: an invalid object is rejected whole and its last accepted
//   version stays in force; a duplicate never overrides what is in force.
// - A directory that is gone or cannot be read, a file that cannot be read, and a file that is
//   empty mean "source unavailable": nothing changes in the store (the last good state stays
//   enforced) and the state says why — never "cluster empty".
// - The last accepted version of every NetworkPolicy, ClusterNetworkPolicy, Namespace and Node
//   (the objects whose absence could widen access) is saved in the state file, so a restart keeps
//   them too.
// - Every directory is watched on its own (Node's recursive watcher on Linux follows files, not
//   names, and misses writes to a file replaced by rename); a poll of names, sizes and times every
//   second is the safety net and notices the directory coming back.
import { createHash } from 'node:crypto';
import { watch, type FSWatcher, type Stats } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { ClusterObject } from './model.js';
import { objectKey } from './model.js';
import type { ClusterStore } from './store.js';
import { type Finding, formatFinding, hasErrors, rejectsObject } from './findings.js';
import { readManifestText, readRawObjects, type FileRead } from './manifests.js';
import { accept, type Accepted } from './accept.js';

export interface SourceState {
  /** False while the directory (or a file in it) cannot be read, or a file is empty: the last good state stays. */
  available: boolean;
  /** Why the source is unavailable. */
  reason?: string;
  unavailableSince?: string;
  /** Files changed less than the settle time ago (not read yet). */
  settling: string[];
  /** When the last load finished. */
  loadedAt?: string;
  /** Error findings of the last load, and the first few of them as text. */
  errors: number;
  firstErrors: string[];
  /** Objects whose definition was rejected in the last load (their last accepted version stays, if any). */
  rejected: string[];
  /** A load that failed unexpectedly (a bug, not bad input). */
  lastFailure?: string;
}

export interface LoadReport {
  /** Digest of the contents this load's store reflects (`digestDir` of the directory once every file is read). */
  digest: string;
  /** Errors of every file (each load: a rejected object stays rejected until fixed), warnings of the files read this time. */
  findings: Finding[];
  /** Store changes made by this load. */
  changed: number;
  state: SourceState;
  /** Every file was read (none settling) and the source was available. */
  complete: boolean;
}

export interface ManifestSourceOptions {
  /** Poll period of the safety net (default 1 s). */
  pollMs?: number;
  /** A file is read once unchanged this long (default 500 ms). */
  settleMs?: number;
  /** Where the last accepted policies, namespaces and nodes are kept across restarts. */
  stateFile?: string;
}

/** The kinds whose last accepted version is saved: without them a restart could widen access (a ClusterNetworkPolicy can deny). */
const SAVED_KINDS = new Set(['NetworkPolicy', 'ClusterNetworkPolicy', 'Namespace', 'Node']);
const EXTENSIONS = /\.(ya?ml|json)$/i;

class Unavailable extends Error {}

/** Lists the manifest files (sorted, recursive, hidden entries skipped) and the folders of DIR (path → inode); throws Unavailable when any cannot be read. */
async function walkDir(dir: string): Promise<{ files: string[]; dirs: Map<string, number> }> {
  const files: string[] = [];
  const dirs = new Map<string, number>();
  async function walk(d: string, ino: number): Promise<void> {
    dirs.set(d, ino);
    let entries: string[];
    try {
      entries = (await readdir(d)).sort();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new Unavailable(`${d}: ${code === 'ENOENT' ? 'the directory is gone' : code === 'ENOTDIR' ? 'not a directory' : `cannot be read (${code ?? String(e)})`}`);
    }
    for (const e of entries) {
      if (e.startsWith('.')) continue;
      const child = join(d, e);
      const st = await stat(child).catch(() => undefined);
      if (st?.isDirectory()) await walk(child, st.ino);
      else if (EXTENSIONS.test(e)) files.push(child);
    }
  }
  await walk(dir, (await stat(dir).catch(() => undefined))?.ino ?? -1);
  return { files, dirs };
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function digestOf(dir: string, files: readonly { file: string; hash: string }[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(relative(dir, f.file)).update('\0').update(f.hash).update('\0');
  return h.digest('hex');
}

/** sha256 over the sorted (relative path, content hash) of every manifest file: what "the contents of DIR" means. */
export async function digestDir(dir: string): Promise<string> {
  let files: string[] = [];
  try {
    files = (await walkDir(dir)).files;
  } catch {
    /* gone: the digest of nothing */
  }
  const out: { file: string; hash: string }[] = [];
  for (const f of files) out.push({ file: f, hash: sha256(await readFile(f).catch(() => Buffer.alloc(0))) });
  return digestOf(dir, out);
}

const signature = (s: Stats) => `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;

interface CachedFile {
  sig: string;
  hash: string;
  read: FileRead;
}

/** The default state file: under /run (root only, gone at reboot together with the kernel's rules). */
export function defaultStateFile(dir: string): string {
  return join('/run/podwall', `manifests-${sha256(resolve(dir)).slice(0, 16)}.json`);
}

export class ManifestSource {
  private accepted = new Map<string, Accepted>();
  /** Store key (`Kind\0key`) → object this source put there. */
  private inStore = new Map<string, ClusterObject>();
  private readonly cache = new Map<string, CachedFile>();
  /** When a file's current signature was first seen (for clocks that disagree with the file's times). */
  private readonly firstSeen = new Map<string, { sig: string; at: number }>();
  /** Files read before that are missing from the listing, and since when (a deletion settles too). */
  private readonly missingSince = new Map<string, number>();
  /** One watcher per folder, with the inode it watches (a folder replaced by rename needs a new one). */
  private readonly watchers = new Map<string, { w: FSWatcher; ino: number }>();
  /** The parent folder, for DIR itself being replaced (a symlink swapped by rename, a folder renamed over it). */
  private parentWatcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private loading: Promise<LoadReport> | undefined;
  private again = false;
  private stopped = false;
  private lastSignatures = '';
  /** What the state file holds: (id, file, raw) of each saved object. */
  private saved: { id: string; file: string; raw: unknown }[] = [];
  private readonly pollMs: number;
  private readonly settleMs: number;
  readonly dir: string;
  /** Digest of the contents the store reflects. */
  digest = '';
  /** At least one complete load happened. */
  loaded = false;
  readonly state: SourceState = { available: true, settling: [], errors: 0, firstErrors: [], rejected: [] };

  constructor(
    dir: string,
    private readonly store: ClusterStore,
    private readonly onLoad: (r: LoadReport) => void = () => {},
    private readonly opts: ManifestSourceOptions = {},
  ) {
    this.dir = resolve(dir);
    this.pollMs = opts.pollMs ?? 1000;
    this.settleMs = opts.settleMs ?? 500;
  }

  async start(): Promise<LoadReport> {
    await this.restoreState();
    const first = await this.load();
    try {
      const name = basename(this.dir);
      this.parentWatcher = watch(dirname(this.dir), (_event, file) => {
        if (file === null || file === name) this.schedule();
      });
      this.parentWatcher.on('error', () => {
        this.parentWatcher?.close();
        this.parentWatcher = undefined;
      });
    } catch {
      // The poll still notices DIR being replaced.
    }
    this.poll = setInterval(() => void this.check(), this.pollMs);
    this.poll.unref();
    return first;
  }

  stop(): void {
    this.stopped = true;
    for (const { w } of this.watchers.values()) w.close();
    this.watchers.clear();
    this.parentWatcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.timer) clearTimeout(this.timer);
  }

  /** Requests a load `delayMs` from now (the earliest request wins). */
  private schedule(delayMs = 30): void {
    if (this.stopped) return;
    const at = Date.now() + delayMs;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      void this.load();
    }, delayMs);
  }

  /** The safety net: names, sizes and times of every file; a load when they changed or the source is unavailable. */
  private async check(): Promise<void> {
    if (this.loading || this.stopped) return;
    try {
      const { files, dirs } = await walkDir(this.dir);
      const sigs: string[] = [...dirs].map(([d, ino]) => `${d}\0${ino}`);
      for (const f of files) {
        const st = await stat(f).catch(() => undefined);
        sigs.push(`${f}\0${st ? signature(st) : '-'}`);
      }
      const now = sigs.join('\n');
      if (now !== this.lastSignatures || !this.state.available || this.state.settling.length > 0) this.schedule(0);
    } catch {
      if (this.state.available) this.schedule(0);
    }
  }

  private watchDirs(dirs: ReadonlyMap<string, number>): void {
    for (const [d, { w, ino }] of this.watchers) {
      if (dirs.get(d) !== ino) {
        w.close();
        this.watchers.delete(d);
      }
    }
    for (const [d, ino] of dirs) {
      if (this.watchers.has(d)) continue;
      try {
        const w = watch(d, () => this.schedule());
        w.on('error', () => {
          w.close();
          if (this.watchers.get(d)?.w === w) this.watchers.delete(d);
          this.schedule();
        });
        this.watchers.set(d, { w, ino });
      } catch {
        // Cannot watch (gone again, or out of inotify watches): the poll still sees every change.
      }
    }
  }

  /** Reloads the directory (one load at a time; a request during a load runs once more after it). */
  load(): Promise<LoadReport> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = this.loadOnce()
      .catch((e: Error) => {
        // A bug, not bad input: say so every time, keep the last good state.
        this.state.lastFailure = `${new Date().toISOString()}: ${e.message}`;
        const report: LoadReport = { digest: this.digest, findings: [{ severity: 'error', code: 'load-failed', file: this.dir, message: `reading the directory failed: ${e.message}; the last good state stays` }], changed: 0, state: this.snapshot(), complete: false };
        this.onLoad(report);
        this.schedule(this.pollMs);
        return report;
      })
      .finally(() => {
        this.loading = undefined;
        if (this.again) {
          this.again = false;
          this.schedule();
        }
      });
    return this.loading;
  }

  private snapshot(): SourceState {
    return { ...this.state, settling: [...this.state.settling], firstErrors: [...this.state.firstErrors], rejected: [...this.state.rejected] };
  }

  private lastUnavailableReport = 0;

  private unavailable(reason: string): LoadReport {
    const news = this.state.available || this.state.reason !== reason;
    if (news) {
      this.state.available = false;
      this.state.reason = reason;
      this.state.unavailableSince ??= new Date().toISOString();
    }
    const report: LoadReport = {
      digest: this.digest,
      findings: [{ severity: 'error', code: 'source-unavailable', file: this.dir, message: `manifests unavailable (${reason}): the last good state stays enforced` }],
      changed: 0,
      state: this.snapshot(),
      complete: false,
    };
    // Retried every poll: reported when it starts or changes, then once a minute.
    if (news || Date.now() - this.lastUnavailableReport >= 60_000) {
      this.lastUnavailableReport = Date.now();
      this.onLoad(report);
    }
    return report;
  }

  private async loadOnce(): Promise<LoadReport> {
    delete this.state.lastFailure;
    let listing: { files: string[]; dirs: Map<string, number> };
    try {
      listing = await walkDir(this.dir);
    } catch (e) {
      if (!(e instanceof Unavailable)) throw e;
      this.watchDirs(new Map());
      return this.unavailable(e.message);
    }
    this.watchDirs(listing.dirs);
    const now = Date.now();
    const reads: FileRead[] = [];
    const used: { file: string; hash: string }[] = [];
    const settling: string[] = [];
    const sigs: string[] = [...listing.dirs].map(([d, ino]) => `${d}\0${ino}`);
    /** Files read (again) in this load: their warnings are reported; errors are reported every load. */
    const fresh = new Set<FileRead>();
    let nextSettle = Infinity;
    for (const file of listing.files) {
      const st = await stat(file).catch(() => undefined);
      sigs.push(`${file}\0${st ? signature(st) : '-'}`);
      const cached = this.cache.get(file);
      if (!st) {
        // Vanished since the listing: the next load sees the directory as it is then.
        settling.push(file);
        if (cached) {
          reads.push(cached.read);
          used.push({ file, hash: cached.hash });
        }
        continue;
      }
      // A FIFO or device would block the read (or never end): the directory cannot be read safely.
      if (!st.isFile()) return this.unavailable(`${file} is not a regular file`);
      const sig = signature(st);
      if (cached && cached.sig === sig) {
        reads.push(cached.read);
        used.push({ file, hash: cached.hash });
        continue;
      }
      const seen = this.firstSeen.get(file);
      if (!seen || seen.sig !== sig) this.firstSeen.set(file, { sig, at: now });
      const age = now - Math.max(st.mtimeMs, st.ctimeMs);
      const stableFor = now - this.firstSeen.get(file)!.at;
      if (age < this.settleMs && stableFor < this.settleMs) {
        settling.push(file);
        nextSettle = Math.min(nextSettle, this.settleMs - Math.max(age, stableFor));
        if (cached) {
          reads.push(cached.read);
          used.push({ file, hash: cached.hash });
        }
        continue;
      }
      let buf: Buffer;
      try {
        buf = await readFile(file);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          settling.push(file);
          continue;
        }
        return this.unavailable(`${file} cannot be read (${code ?? String(e)})`);
      }
      const after = await stat(file).catch(() => undefined);
      if (!after || signature(after) !== sig) {
        // Written while we read it.
        settling.push(file);
        nextSettle = Math.min(nextSettle, this.settleMs);
        if (cached) {
          reads.push(cached.read);
          used.push({ file, hash: cached.hash });
        }
        continue;
      }
      const text = buf.toString('utf8');
      if (text.trim() === '') return this.unavailable(`${file} is empty (being written?)`);
      // Only the saved kinds' raw objects are read again (the state file).
      const read = await readManifestText(text, file, { inFolder: true, keepRaw: (kind) => SAVED_KINDS.has(kind) });
      const hash = sha256(buf);
      this.cache.set(file, { sig, hash, read });
      fresh.add(read);
      this.firstSeen.delete(file);
      reads.push(read);
      used.push({ file, hash });
    }
    // A file gone from the listing is a deletion only once it has been gone for the settle time:
    // a tree restored or rewritten file by file (not by one rename) lists its files one by one,
    // and reading it in between would delete the policies of the files not written yet.
    const listed = new Set(listing.files);
    for (const f of listed) this.missingSince.delete(f);
    for (const [f, cached] of [...this.cache]) {
      if (listed.has(f)) continue;
      const since = this.missingSince.get(f) ?? now;
      this.missingSince.set(f, since);
      const goneFor = now - since;
      if (goneFor < this.settleMs) {
        settling.push(f);
        nextSettle = Math.min(nextSettle, this.settleMs - goneFor);
        reads.push(cached.read);
        used.push({ file: f, hash: cached.hash });
        continue;
      }
      this.cache.delete(f);
      this.missingSince.delete(f);
    }
    this.lastSignatures = sigs.join('\n');
    if (nextSettle !== Infinity) this.schedule(Math.max(10, Math.ceil(nextSettle) + 5));
    else if (settling.length > 0) this.schedule(this.pollMs);

    const decided = accept(this.accepted, reads, { history: true });
    const changed = this.apply(decided.next);
    this.accepted = decided.next;
    const notSaved = await this.saveState().then(
      () => undefined,
      (e: Error) => e.message,
    );

    const findings: Finding[] = [];
    for (const r of reads) {
      const all = fresh.has(r);
      for (const f of r.findings) if (all || f.severity === 'error') findings.push(f);
      for (const d of r.defs) for (const f of d.findings) if (all || f.severity === 'error') findings.push(f);
    }
    findings.push(...decided.findings);
    if (notSaved) findings.push({ severity: 'warning', code: 'state-not-saved', file: this.opts.stateFile!, message: `cannot save the last accepted objects (${notSaved}): after a restart, an invalid object would have no last accepted version` });
    const errors = findings.filter((f) => f.severity === 'error');
    this.state.available = true;
    delete this.state.reason;
    delete this.state.unavailableSince;
    this.state.settling = settling;
    this.state.loadedAt = new Date().toISOString();
    this.state.errors = errors.length;
    this.state.firstErrors = errors.slice(0, 5).map(formatFinding);
    this.state.rejected = decided.rejected.slice(0, 100);
    this.digest = digestOf(this.dir, used);
    const complete = settling.length === 0;
    if (complete) this.loaded = true;
    const report: LoadReport = { digest: this.digest, findings, changed, state: this.snapshot(), complete };
    this.onLoad(report);
    return report;
  }

  /** Makes the store hold exactly the accepted objects; returns how many changes that took. */
  private apply(next: ReadonlyMap<string, Accepted>): number {
    let changed = 0;
    const want = new Map<string, ClusterObject>();
    for (const a of next.values()) want.set(`${a.object.kind}\0${objectKey(a.object)}`, a.object);
    for (const [key, o] of this.inStore) {
      if (want.has(key)) continue;
      if (this.store.remove(o.kind, objectKey(o))) changed++;
      this.inStore.delete(key);
    }
    for (const [key, o] of want) {
      if (this.inStore.get(key) === o) continue;
      if (this.store.upsert(o)) changed++;
      this.inStore.set(key, o);
    }
    return changed;
  }

  // ---------------------------------------------------------------- the state file

  private async restoreState(): Promise<void> {
    const file = this.opts.stateFile;
    if (!file) return;
    let saved: { version?: number; dir?: string; objects?: { id: string; file: string; raw: unknown }[] };
    try {
      saved = JSON.parse(await readFile(file, 'utf8'));
    } catch {
      return; // none yet (or unreadable: then nothing is known from before)
    }
    if (saved.version !== 1 || saved.dir !== this.dir || !Array.isArray(saved.objects)) return;
    for (const o of saved.objects) {
      if (typeof o?.file !== 'string' || typeof o.id !== 'string') continue;
      const r = await readRawObjects([o.raw], o.file);
      const d = r.defs[0];
      if (!d || d.id !== o.id || !d.object || rejectsObject(d.findings)) continue;
      this.accepted.set(d.id, { id: d.id, kind: d.id.slice(0, d.id.indexOf(' ')), object: d.object, file: o.file, raw: d.raw });
    }
  }

  private async saveState(): Promise<void> {
    const file = this.opts.stateFile;
    if (!file) return;
    const objects = [...this.accepted.values()].filter((a) => !a.unknown && a.raw && SAVED_KINDS.has(a.kind)).map((a) => ({ id: a.id, file: a.file, raw: a.raw as unknown }));
    // Unchanged files keep their parsed objects: comparing references is enough.
    if (objects.length === this.saved.length && objects.every((o, i) => o.raw === this.saved[i]!.raw && o.file === this.saved[i]!.file && o.id === this.saved[i]!.id)) return;
    const tmp = `${file}.${process.pid}.tmp`;
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(tmp, `${JSON.stringify({ version: 1, dir: this.dir, objects })}\n`, { mode: 0o600 });
    await rename(tmp, file);
    this.saved = objects;
  }
}

export { hasErrors };
