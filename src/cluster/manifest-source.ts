// A watched directory of manifests as a cluster source (`podwall run --manifests DIR`): the same
// agent without an API server. Changes are diffed into the store object by object. A file that
// stops parsing keeps its last good objects (a half-written file must not delete a policy and so
// widen access); a deleted file removes its objects.
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import type { ClusterObject } from './model.js';
import { objectKey } from './model.js';
import type { ClusterStore } from './store.js';
import { type Finding, hasErrors } from './findings.js';
import { listManifestFiles, parseManifestText } from './manifests.js';
import { normalizeObject } from './normalize.js';

export interface LoadReport {
  /** Digest of the directory's contents that this load reflects. */
  digest: string;
  findings: Finding[];
  changed: number;
}

/** sha256 over the sorted (relative path, content) of every manifest file: what "the contents of DIR" means. */
export async function digestDir(dir: string): Promise<string> {
  const { files } = await listManifestFiles([dir]);
  const h = createHash('sha256');
  for (const f of files) {
    const text = await readFile(f).catch(() => Buffer.alloc(0));
    h.update(relative(dir, f)).update('\0').update(text).update('\0');
  }
  return h.digest('hex');
}

export class ManifestSource {
  private readonly lastGood = new Map<string, ClusterObject[]>();
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  private loading: Promise<LoadReport> | undefined;
  private again = false;
  private lastDigest = '';
  digest = '';

  constructor(
    private readonly dir: string,
    private readonly store: ClusterStore,
    private readonly onLoad: (r: LoadReport) => void = () => {},
    private readonly pollMs = 1000,
  ) {}

  async start(): Promise<LoadReport> {
    const first = await this.load();
    try {
      this.watcher = watch(this.dir, { recursive: true }, () => this.schedule());
      this.watcher.on('error', () => this.schedule());
    } catch {
      // Recursive watch unsupported: polling below still sees every change.
    }
    // Polling as a safety net: editors that replace files, watchers that miss events, network filesystems.
    this.poll = setInterval(() => {
      digestDir(this.dir)
        .then((d) => {
          if (d !== this.lastDigest) this.schedule();
        })
        .catch(() => {});
    }, this.pollMs);
    this.poll.unref();
    return first;
  }

  stop(): void {
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.load().catch(() => {});
    }, 30);
  }

  /** Reloads the directory (one load at a time; a request during a load runs once more after it). */
  load(): Promise<LoadReport> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = this.loadOnce().finally(() => {
      this.loading = undefined;
      if (this.again) {
        this.again = false;
        this.schedule();
      }
    });
    return this.loading;
  }

  private async loadOnce(): Promise<LoadReport> {
    const digest = await digestDir(this.dir);
    const { files, findings } = await listManifestFiles([this.dir]);
    const next = new Map<string, ClusterObject[]>();
    for (const file of files) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch {
        continue; // vanished between listing and reading: treated as deleted
      }
      const parsed = parseManifestText(text, file);
      const fileFindings = [...parsed.findings];
      const objects: ClusterObject[] = [];
      for (const { raw, doc } of parsed.docs) {
        const r = normalizeObject(raw, { file, doc });
        fileFindings.push(...r.findings);
        if (r.object) objects.push(r.object);
      }
      findings.push(...fileFindings);
      // A file that no longer parses keeps what it last defined.
      const unparseable = parsed.findings.some((f) => f.severity === 'error');
      next.set(file, unparseable && this.lastGood.has(file) ? this.lastGood.get(file)! : objects);
    }
    let changed = 0;
    const wanted = new Map<string, ClusterObject>();
    for (const objs of next.values()) for (const o of objs) wanted.set(`${o.kind}\u0000${objectKey(o)}`, o);
    for (const objs of this.lastGood.values()) {
      for (const o of objs) {
        const id = `${o.kind}\u0000${objectKey(o)}`;
        if (!wanted.has(id) && this.store.remove(o.kind, objectKey(o))) changed++;
      }
    }
    for (const o of wanted.values()) if (this.store.upsert(o)) changed++;
    this.lastGood.clear();
    for (const [f, objs] of next) this.lastGood.set(f, objs);
    this.lastDigest = digest;
    this.digest = digest;
    const report = { digest, findings, changed };
    this.onLoad(report);
    return report;
  }
}

export { hasErrors };
