#!/usr/bin/env node
// Runs ava in TAP mode on the compiled tests, echoes its output and closes with the
// plain `N passed, N failed` line CI reads. The exit code is ava's.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const avaCli = fileURLToPath(new URL('../node_modules/ava/entrypoints/cli.mjs', import.meta.url));
const patterns = process.argv.slice(2).map((p) => (p.endsWith('.js') ? p : `${p.replace(/\/$/, '')}/**/*.test.js`));
const child = spawn(process.execPath, [avaCli, '--tap', ...patterns], { stdio: ['ignore', 'pipe', 'inherit'] });
let pass = 0;
let fail = 0;
let skip = 0;
let buf = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  buf += chunk.toString();
  let nl;
  while ((nl = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    let m;
    if ((m = /^# pass (\d+)/.exec(line))) pass = Number(m[1]);
    else if ((m = /^# fail (\d+)/.exec(line))) fail = Number(m[1]);
    else if ((m = /^# skip (\d+)/.exec(line))) skip = Number(m[1]);
  }
});
child.on('close', (code) => {
  console.log(`${pass} passed, ${fail} failed${skip ? `, ${skip} skipped` : ''}`);
  process.exit(code ?? 1);
});
