// The lab's per-pod server, run inside a pod namespace:
//   node dist/src/lab/server-main.js [--lab N] [--id I] --tcp 80,81 --udp 80 [--control PATH]
// Listens on every given port on `::` (dual stack); TCP: writes one line `pwl <id> <port>` and
// closes; UDP: echoes each datagram to its sender. With --control, also listens on the unix socket
// PATH, where each connection is a probe session (probe-session.ts): probes from this pod, without
// starting a process per probe round. Prints `ready` on stdout once everything listens; on a listen
// error prints one line on stderr and exits 1. Writes nothing after `ready`.
import { createSocket } from 'node:dgram';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { serveProbeSession } from './probe-session.js';

function parsePorts(flag: string, text: string | undefined): number[] {
  if (text === undefined || text === '') return [];
  return text.split(',').map((w) => {
    const n = Number(w);
    if (!/^\d+$/.test(w) || n < 1 || n > 65535) {
      process.stderr.write(`server-main: ${flag}: invalid port ${JSON.stringify(w)}\n`);
      process.exit(2);
    }
    return n;
  });
}

function main(): void {
  const args = process.argv.slice(2);
  const opt: Record<string, string> = {};
  for (let i = 0; i < args.length; i += 2) {
    const k = args[i]!;
    if (!['--tcp', '--udp', '--lab', '--id', '--control'].includes(k) || args[i + 1] === undefined) {
      process.stderr.write(`server-main: unknown or incomplete argument ${JSON.stringify(k)}\n`);
      process.exit(2);
    }
    opt[k] = args[i + 1]!;
  }
  const tcp = [...new Set(parsePorts('--tcp', opt['--tcp']))];
  const udp = [...new Set(parsePorts('--udp', opt['--udp']))];
  const id = opt['--id'] ?? '-';
  // Never die of a closed stdout/stderr (the lab closes its end after `ready`).
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);
  process.on('SIGPIPE', () => undefined);

  const control = opt['--control'];
  let pending = tcp.length + udp.length + (control !== undefined ? 1 : 0);
  const fail = (what: string, e: Error) => {
    process.stderr.write(`server-main: cannot listen on ${what}: ${e.message}\n`);
    process.exit(1);
  };
  const listening = () => {
    if (--pending === 0) process.stdout.write('ready\n');
  };
  if (pending === 0) process.stdout.write('ready\n');

  for (const port of tcp) {
    const server = createServer((sock) => {
      sock.on('error', () => undefined);
      sock.setTimeout(5_000, () => sock.destroy());
      sock.end(`pwl ${id} ${port}\n`);
    });
    server.once('error', (e) => fail(`${port}/TCP`, e));
    server.listen({ port, host: '::', ipv6Only: false, backlog: 1024 }, () => {
      server.removeAllListeners('error');
      server.on('error', () => undefined);
      listening();
    });
  }
  if (control !== undefined) {
    // A socket file left by a killed server of the same pod would make listen fail.
    rmSync(control, { force: true });
    // Half-open: the client ends its side when it has sent its last request; answers still go back.
    const server = createServer({ allowHalfOpen: true }, (sock) => {
      sock.on('error', () => undefined);
      serveProbeSession(sock, sock, () => sock.end());
    });
    server.once('error', (e) => fail(`control socket ${control}`, e));
    server.listen(control, () => {
      server.removeAllListeners('error');
      server.on('error', () => undefined);
      listening();
    });
  }
  for (const port of udp) {
    const sock = createSocket({ type: 'udp6', ipv6Only: false });
    sock.once('error', (e) => fail(`${port}/UDP`, e));
    sock.on('message', (msg, rinfo) => {
      sock.send(msg, rinfo.port, rinfo.address, () => undefined);
    });
    sock.bind({ port, address: '::' }, () => {
      sock.removeAllListeners('error');
      sock.on('error', () => undefined);
      listening();
    });
  }
}

main();
