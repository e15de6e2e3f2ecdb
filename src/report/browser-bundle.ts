// podwall's own compiled modules, inlined into a report page: the page's script (html-client) and,
// through it, the simulator's explain and everything it imports — the same code `podwall explain`
// runs, so a clicked cell is explained exactly as the command line would. Each module becomes a
// data: URL in an import map (the page stays one self-contained file, no network); relative imports
// become `@podwall/<path>`; `node:net` (isIP, used by net/ip.ts) gets a small browser stand-in.
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../', import.meta.url));

/** What net/ip.ts needs from node:net: isIP for the addresses a plan holds. */
const NODE_NET = `
const V4 = /^(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}$/;
function isV6(s) {
  if (s.includes('%')) s = s.slice(0, s.indexOf('%'));
  let groups = 8;
  const tail = /:(\\d+\\.\\d+\\.\\d+\\.\\d+)$/.exec(s);
  if (tail) {
    if (!V4.test(tail[1])) return false;
    s = s.slice(0, -tail[1].length) + '0:0';
  }
  const parts = s.split('::');
  if (parts.length > 2) return false;
  const hex = (x) => x === '' ? [] : x.split(':');
  const all = parts.map(hex);
  if (all.some((g) => g.some((h) => !/^[0-9a-fA-F]{1,4}$/.test(h)))) return false;
  const n = all.reduce((a, g) => a + g.length, 0);
  return parts.length === 2 ? n < groups : n === groups;
}
export function isIP(s) { return V4.test(s) ? 4 : isV6(s) ? 6 : 0; }
`;

const IMPORT = /(\b(?:import|export)\b[^'"`;]*?\bfrom\s*|\bimport\s*)(['"])([^'"]+)\2/g;

function dataUrl(text: string): string {
  return `data:text/javascript;base64,${Buffer.from(text, 'utf8').toString('base64')}`;
}

/** Module path (relative to dist/src, posix) → text, with imports rewritten. */
function collect(entry: string): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (path: string) => {
    if (out.has(path)) return;
    out.set(path, '');
    let text = readFileSync(`${SRC}${path}`, 'utf8').replace(/\/\/# sourceMappingURL=.*$/m, '');
    text = text.replace(IMPORT, (_all, head: string, q: string, spec: string) => {
      if (spec === 'node:net') return `${head}${q}@podwall/shim/node-net.js${q}`;
      if (!spec.startsWith('.')) throw new Error(`report page: ${path} imports ${spec}, which cannot run in a browser`);
      const target = posix.normalize(posix.join(posix.dirname(path), spec));
      visit(target);
      return `${head}${q}@podwall/${target}${q}`;
    });
    out.set(path, text);
  };
  visit(entry);
  return out;
}

let cached: string | undefined;

/** The `<script type="importmap">` and the module script that starts the page. */
export function pageScripts(): string {
  if (!cached) {
    const modules = collect('report/html-client.js');
    const imports: Record<string, string> = { '@podwall/shim/node-net.js': dataUrl(NODE_NET) };
    for (const [path, text] of modules) imports[`@podwall/${path}`] = dataUrl(text);
    cached = `<script type="importmap">${JSON.stringify({ imports })}</script>\n<script type="module">import '@podwall/report/html-client.js';</script>`;
  }
  return cached;
}
