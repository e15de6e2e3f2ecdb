// Manifests as they are at a git revision (`podwall diff --base REF -f PATH...`): the same paths,
// read from the repository's objects with git itself — the working tree is never touched. Files are
// named `REF:path/in/repo` in findings, so a problem in the old version says so.
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import type { Finding } from './findings.js';
import type { ManifestReader } from './manifests.js';

const run = promisify(execFile);
const EXTENSIONS = /\.(ya?ml|json)$/i;

export class GitSourceError extends Error {}

interface Repo {
  top: string;
  commit: string;
}

async function git(cwd: string, args: string[]): Promise<string> {
  try {
    const r = await run('git', ['-C', cwd, ...args], { maxBuffer: 512 * 1024 * 1024, encoding: 'utf8' });
    return r.stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new GitSourceError('git is not installed (needed to read --base)');
    throw new GitSourceError((err.stderr ?? err.message).trim().split('\n')[0] ?? 'git failed');
  }
}

/** The nearest existing directory at or above `p` (a path deleted in the working tree may exist at REF). */
function existingDir(p: string): string {
  let d = p;
  while (!existsSync(d) || !statSync(d).isDirectory()) {
    const up = dirname(d);
    if (up === d) return d;
    d = up;
  }
  return d;
}

/**
 * A reader of the paths (relative to `cwd`) as they are at `ref`. A path that does not exist at
 * `ref` gives no files (the old state had nothing there) and a warning.
 */
export function gitReader(ref: string, cwd = process.cwd()): ManifestReader {
  const repos = new Map<string, Repo>();
  const where = new Map<string, { repo: Repo; path: string }>();
  async function repoOf(abs: string): Promise<Repo> {
    const dir = existingDir(abs);
    let top: string;
    try {
      top = (await git(dir, ['rev-parse', '--show-toplevel'])).trim();
    } catch (e) {
      throw new GitSourceError(`--base: ${relative(cwd, abs) || '.'} is not in a git repository (${(e as Error).message})`);
    }
    let repo = repos.get(top);
    if (!repo) {
      let commit: string;
      try {
        commit = (await git(top, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`])).trim();
      } catch {
        commit = '';
      }
      if (!/^[0-9a-f]{40,64}$/.test(commit)) throw new GitSourceError(`--base ${JSON.stringify(ref)}: not a commit in ${top}`);
      repos.set(top, (repo = { top, commit }));
    }
    return repo;
  }
  return {
    async list(paths) {
      const files: string[] = [];
      const inFolder = new Set<string>();
      const findings: Finding[] = [];
      for (const p of paths) {
        const abs = resolve(cwd, p);
        const repo = await repoOf(abs);
        const rel = relative(repo.top, abs).split(sep).join('/');
        if (rel.startsWith('..')) throw new GitSourceError(`--base: ${p} is outside the repository ${repo.top}`);
        const listed = (await git(repo.top, ['ls-tree', '-r', '-z', '--name-only', repo.commit, '--', rel === '' ? '.' : rel])).split('\0').filter((x) => x !== '');
        if (listed.length === 0) {
          findings.push({ severity: 'warning', code: 'not-at-base', file: `${ref}:${rel}`, message: `does not exist at ${ref}: the old state has nothing there` });
          continue;
        }
        for (const f of listed.sort()) {
          const below = rel === '' ? f : f.slice(rel.length + 1);
          const explicit = f === rel;
          if (!explicit && (!EXTENSIONS.test(f) || below.split('/').some((seg) => seg.startsWith('.')))) continue;
          const name = `${ref}:${f}`;
          if (!where.has(name)) files.push(name);
          if (!explicit) inFolder.add(name);
          where.set(name, { repo, path: f });
        }
      }
      return { files, inFolder, findings };
    },
    async read(file) {
      const w = where.get(file);
      if (!w) throw Object.assign(new Error(`not listed: ${file}`), { code: 'ENOENT' });
      return git(w.repo.top, ['cat-file', 'blob', `${w.repo.commit}:${w.path}`]);
    },
  };
}
