// `podwall lab up|probe|down|run|list`: the real kernel as the judge.
import { runFollower } from '../lab/follow.js';
import type { Command } from 'commander';
import { loadManifests } from '../cluster/manifests.js';
import { declaredPorts, type MatrixJson } from '../sim/matrix.js';
import { matrixTable } from '../report/table.js';
import { matrixHtml } from '../report/html.js';
import { labDown, labProbe, labUp, listLabs, LabError } from '../lab/lab.js';
import { requireRoot } from '../lab/topology.js';
import { readState, DEFAULT_LAB_NAME } from '../lab/state.js';
import { outputFormat, portsOption } from './matrix.js';
import { UserError, writeOut } from './common.js';
import { runDrops, type DropsCliOptions } from './drops.js';
import { ClusterStore } from '../cluster/store.js';
import { ManifestSource } from '../cluster/manifest-source.js';
import type { ProbePort } from '../policy/ports.js';

const progress = (s: string) => process.stderr.write(`${s}\n`);

async function wrap<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof LabError || (e instanceof Error && /needs root|lab name|already exists/.test(e.message))) throw new UserError(e.message);
    throw e;
  }
}

async function portsFor(name: string, text: string | undefined): Promise<ProbePort[]> {
  const given = portsOption(text);
  if (given) return given;
  const st = readState(name);
  if (!st.ok || !st.state.inputDir) throw new UserError(`lab ${JSON.stringify(name)} not found: \`podwall lab up -f DIR --name ${name}\` first`);
  return declaredPorts((await loadManifests([st.state.inputDir])).store);
}

function print(m: MatrixJson, format: string): void {
  if (format === 'json') writeOut(JSON.stringify(m, null, 2));
  else if (format === 'html') writeOut(matrixHtml(m, 'podwall lab: measured reachability'));
  else writeOut(matrixTable(m, { color: process.stdout.isTTY === true }));
}

export function register(program: Command): void {
  const lab = program.command('lab').description('a cluster of network namespaces enforced by podwall\'s agents, probed with real packets');
  lab
    .command('up')
    .description('build a lab from the Nodes and Pods in DIR; an agent per node follows DIR')
    .requiredOption('-f, --file <dir>', 'manifests directory')
    .option('--name <name>', 'lab name', DEFAULT_LAB_NAME)
    .action(async (o: { file: string; name: string }) => {
      const r = await wrap(() => labUp({ dir: o.file, name: o.name, progress }));
      for (const w of r.warnings) progress(`warning: ${w}`);
      for (const s of r.skippedPorts) progress(`skipped ${s.key} ${s.port}/${s.protocol}: ${s.reason}`);
      writeOut(`lab ${r.state.name} is up: ${r.state.nodes.length} node(s), ${r.state.pods.length} pod(s)`);
    });
  lab
    .command('probe')
    .description('wait until every agent applied DIR, then probe every ordered pair of pods (matrix JSON shape)')
    .option('--name <name>', 'lab name', DEFAULT_LAB_NAME)
    .option('--ports <list>', 'e.g. 80/TCP,81/UDP (default: every declared container port)')
    .option('-o, --output <format>', 'table | json | html', 'table')
    .action(async (o: { name: string; ports?: string; output: string }) => {
      const format = outputFormat(o.output, ['table', 'json', 'html']);
      const ports = await portsFor(o.name, o.ports);
      const r = await wrap(() => labProbe(o.name, ports));
      for (const w of r.warnings) progress(`warning: ${w}`);
      for (const s of r.skipped) progress(`skipped ${s}`);
      print(r.matrix, format);
    });
  lab
    .command('down')
    .description('remove every namespace, process and file of the lab')
    .option('--name <name>', 'lab name', DEFAULT_LAB_NAME)
    .action(async (o: { name: string }) => {
      const r = await wrap(() => labDown(o.name));
      writeOut(`lab ${o.name} removed: ${r.namespaces.length} namespace(s), ${r.killed.length} process(es)${r.problems.length ? `; problems: ${r.problems.join('; ')}` : ''}`);
      if (r.problems.length) process.exitCode = 1;
    });
  lab
    .command('run')
    .description('up + probe + down')
    .requiredOption('-f, --file <dir>', 'manifests directory')
    .option('--name <name>', 'lab name', 'run')
    .option('--ports <list>', 'e.g. 80/TCP,81/UDP (default: every declared container port)')
    .option('-o, --output <format>', 'table | json | html', 'table')
    .action(async (o: { file: string; name: string; ports?: string; output: string }) => {
      const format = outputFormat(o.output, ['table', 'json', 'html']);
      const ports = portsOption(o.ports) ?? declaredPorts((await loadManifests([o.file])).store);
      try {
        // Nothing changes DIR between up and down here: no follower needed.
        const up = await wrap(() => labUp({ dir: o.file, name: o.name, progress, follow: false }));
        for (const w of up.warnings) progress(`warning: ${w}`);
        const r = await wrap(() => labProbe(o.name, ports));
        for (const s of r.skipped) progress(`skipped ${s}`);
        print(r.matrix, format);
      } finally {
        await labDown(o.name).catch(() => {});
      }
    });
  lab
    .command('drops')
    .description('stream the lab\'s denied connections (every node), each with the policy and rule behind it; --audit: what audited policies would deny')
    .option('--name <name>', 'lab name', DEFAULT_LAB_NAME)
    .option('--namespace <ns>', 'only connections from or to this namespace')
    .option('--pod <ns/name>', 'only connections from or to this pod')
    .option('--policy <ns/name>', 'only denials this policy takes part in')
    .option('--audit', 'show what audited policies would deny (the connections were let through) instead of denials')
    .option('-o, --output <format>', 'text | json (one object per line)', 'text')
    .option('-c, --count <n>', 'stop after n entries')
    .option('--counters-interval <duration>', 'how often the kernel counters are read to report entries the rate limit suppressed (0: never)', '5s')
    .action(async (o: DropsCliOptions & { name: string }) => {
      await wrap(async () => requireRoot('podwall lab drops'));
      const st = readState(o.name);
      if (!st.ok) throw new UserError(`lab ${JSON.stringify(o.name)} not found: ${st.error}`);
      const dir = st.state.inputDir;
      if (!dir) throw new UserError(`lab ${JSON.stringify(o.name)} was not built from a directory`);
      // The lab's agents read DIR: so does the join, following it as it changes.
      await runDrops(o, st.state.nodes.map((n) => ({ node: n.name, netns: n.ns })), async () => {
        const store = new ClusterStore();
        const src = new ManifestSource(dir, store);
        await src.start();
        return { store, stop: async () => src.stop() };
      });
    });
  lab
    .command('follow', { hidden: true })
    .description('(internal) the process `lab up` starts: attaches and detaches pods as DIR changes')
    .option('--name <name>', 'lab name', DEFAULT_LAB_NAME)
    .action(async (o: { name: string }) => {
      await wrap(() => runFollower(o.name));
    });
  lab
    .command('list')
    .description('labs on this machine')
    .action(async () => {
      const labs = await listLabs();
      if (labs.length === 0) writeOut('no labs');
      for (const l of labs) writeOut(`${l.name}\t${l.namespaces.length} namespace(s)\t${l.state ? `${l.state.nodes.length} node(s), ${l.state.pods.length} pod(s), from ${l.state.inputDir ?? '?'}` : l.stateError ?? ''}`);
    });
}
