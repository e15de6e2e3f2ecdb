// Long-lived flows for kernel tests, run inside a pod namespace (`ip netns exec NS node echo-flows.js`):
//   server tcp:80 udp:81 ...          echo servers; prints `ready`
//   connect IP:PORT                    one new TCP connection: prints `open`, or `closed <error code>`
//   client tcp:IP:PORT udp:IP:PORT ... one flow each, a message every 50 ms; prints `E <flow index>` per
//                                      echo received and `ready` once every flow has had one echo
// Both stop when stdin closes, and after 120 s whatever happens.
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';

const [mode, ...specs] = process.argv.slice(2);
setTimeout(() => process.exit(3), 120_000).unref();
process.stdin.on('end', () => process.exit(0)).resume();
const print = (s: string) => process.stdout.write(`${s}\n`);

if (mode === 'connect') {
  const [host, port] = specs[0]!.split(':');
  const s = connect({ host: host!, port: Number(port) });
  s.setTimeout(2000, () => (print('closed ETIMEDOUT'), process.exit(0)));
  s.on('connect', () => (print('open'), process.exit(0)));
  s.on('error', (e: NodeJS.ErrnoException) => (print(`closed ${e.code ?? e.message}`), process.exit(0)));
} else if (mode === 'server') {
  let pending = specs.length;
  const up = () => --pending === 0 && print('ready');
  for (const spec of specs) {
    const [proto, port] = spec.split(':');
    if (proto === 'tcp') {
      createServer((s) => {
        s.on('error', () => undefined);
        s.pipe(s);
      }).listen(Number(port), '0.0.0.0', up);
    } else {
      const u = createSocket('udp4');
      u.on('message', (m, from) => u.send(m, from.port, from.address));
      u.bind(Number(port), '0.0.0.0', up);
    }
  }
} else {
  const seen = new Set<number>();
  const echo = (i: number) => {
    print(`E ${i}`);
    if (!seen.has(i)) {
      seen.add(i);
      if (seen.size === specs.length) print('ready');
    }
  };
  specs.forEach((spec, i) => {
    const [proto, host, port] = spec.split(':');
    if (proto === 'tcp') {
      const s = connect({ host: host!, port: Number(port) });
      s.on('error', () => undefined);
      s.on('data', () => echo(i));
      s.on('connect', () => setInterval(() => s.writable && s.write('x\n'), 50));
    } else {
      const u = createSocket('udp4');
      u.on('error', () => undefined);
      u.on('message', () => echo(i));
      u.connect(Number(port), host!, () => setInterval(() => u.send('x'), 50));
    }
  });
}
