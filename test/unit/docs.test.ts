// Keeps docs/ true to what is built: every flag and metric the code defines is documented.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { FLAGS } from '../../src/controller/flags.js';
import { Metrics } from '../../src/controller/metrics.js';
import { buildProgram } from '../../src/cli/main.js';
import type { Command } from 'commander';

const doc = (name: string) => readFileSync(new URL(`../../../docs/${name}`, import.meta.url), 'utf8');

test('docs/flags.md lists every flag', (t) => {
  const text = doc('flags.md');
  for (const f of Object.keys(FLAGS)) t.true(text.includes(f === 'v' ? '`-v`' : `--${f}`), `--${f} missing from docs/flags.md`);
});

test('docs/metrics.md lists every metric', async (t) => {
  const text = doc('metrics.md');
  const m = new Metrics();
  for (const metric of await m.registry.getMetricsAsJSON()) {
    const name = metric.name;
    const short = name.replace(/^kube_router_controller_/, '').replace(/_v[46]_/, '_v4_');
    t.true(text.includes(name) || text.includes(`..._${short.split('_v4_')[1] ?? ''}`) || text.includes(name.replace('_v6_', '_v4_')), `${name} missing from docs/metrics.md`);
  }
});

test('docs/cli.md covers every command, its flags and its output formats', (t) => {
  const cli = doc('cli.md');
  // Sections by heading; a section that links to a page of its own (lab.md, trace.md, ...) is
  // documented together with that page.
  const sections = cli.split(/^## /m).slice(1);
  const missing: string[] = [];
  const linked = (section: string) => [...section.matchAll(/\]\(([a-z-]+\.md)(?:#[^)]*)?\)/g)].map((m) => doc(m[1]!));
  const walk = (cmd: Command, path: string[]) => {
    for (const sub of cmd.commands) {
      const p = [...path, sub.name()];
      const head = `podwall ${p.join(' ')}`;
      // `podwall lab up|probe|...`, `podwall render|apply ...` name several commands in one heading.
      const section = sections.find((s) => {
        const h = s.slice(0, s.indexOf('\n'));
        if (h.includes(`\`${head} `) || h.includes(`\`${head}\``) || h.includes(`${head} [`)) return true;
        const m = h.match(/`podwall ((?:[a-z-]+ )*)([a-z-]+(?:\|[a-z-]+)+)/g) ?? [];
        return m.some((x) => {
          const words = x.slice('`podwall '.length).split(' ');
          const alts = words.pop()!.split('|');
          return words.join(' ') === path.join(' ') && alts.includes(sub.name());
        });
      });
      if (!section) {
        missing.push(`${head}: no section in docs/cli.md`);
        continue;
      }
      const text = [section, ...linked(section)].join('\n');
      for (const o of sub.options) {
        if (o.long === '--help') continue;
        const short = o.short !== undefined && new RegExp(`(^|[\\s\\[(\`])${o.short}([\\s\\]\`]|$)`, 'm').test(text);
        if (!text.includes(o.long!) && !short) missing.push(`${head}: ${o.long} not documented in docs/cli.md (or the page its section links)`);
        if (o.long === '--output') {
          for (const f of o.description.split('(')[0]!.split('|').map((x) => x.trim()).filter(Boolean)) if (!new RegExp(`[\`|\\s]${f}[\`|\\]\\s,:)]`).test(text)) missing.push(`${head}: -o ${f} not documented`);
        }
      }
      walk(sub, p);
    }
  };
  walk(buildProgram(), []);
  t.deepEqual(missing, []);
});
