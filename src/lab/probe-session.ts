// Probing from inside a pod namespace, shared by the two processes that do it: the one-shot prober
// (prober-main.js, started per source pod) and each pod's server (server-main.js), which also answers
// probe sessions on a unix socket so a probe round starts no process at all.
//
// A session reads JSON lines {"id", "ip", "port", "protocol": "TCP"|"UDP", "timeoutMs", "retries"} and
// answers JSON lines {"id", "ok", "error"?}, probes running concurrently. When its input ends it
// answers what is in flight, then calls `onIdleEnd`.
//   TCP ok  = connected within timeoutMs and the server's `pwl ...` line arrived within timeoutMs more.
//   UDP ok  = the datagram echoed back within timeoutMs (sent again `retries` times on silence);
//             an ICMP error (REJECT, unreachable) is a definite no.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect, isIP } from 'node:net';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

export interface ProbeRequest {
  id: number;
  ip: string;
  port: number;
  protocol: 'TCP' | 'UDP';
  timeoutMs?: number;
  retries?: number;
}

export interface ProbeAnswer {
  id: number;
  ok: boolean;
  error?: string;
}

function probeTcp(ip: string, port: number, timeoutMs: number): Promise<string | true> {
  return new Promise((resolve) => {
    let done = false;
    let buf = '';
    const sock = connect({ host: ip, port });
    const finish = (r: string | true) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    let timer = setTimeout(() => finish('connect timeout'), timeoutMs);
    sock.on('connect', () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish('no answer after connect'), timeoutMs);
    });
    sock.on('data', (b: Buffer) => {
      buf += b.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) finish(buf.startsWith('pwl ') ? true : `unexpected answer ${JSON.stringify(buf.slice(0, 40))}`);
    });
    sock.on('end', () => finish(buf.startsWith('pwl ') ? true : 'closed without an answer'));
    sock.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
  });
}

function probeUdp(ip: string, port: number, timeoutMs: number, retries: number): Promise<string | true> {
  return new Promise((resolve) => {
    const sock = createSocket(isIP(ip) === 6 ? 'udp6' : 'udp4');
    const nonce = randomBytes(12);
    let done = false;
    let sends = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = (r: string | true) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      try {
        sock.close();
      } catch {
        /* closed */
      }
      resolve(r);
    };
    const send = () => {
      sends++;
      sock.send(nonce, (err) => {
        if (err) finish((err as NodeJS.ErrnoException).code ?? err.message);
      });
      timer = setTimeout(() => (sends <= retries ? send() : finish('timeout')), timeoutMs);
    };
    sock.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
    sock.on('message', (msg) => {
      if (msg.equals(nonce)) finish(true);
    });
    // A connected socket gets ICMP errors (port unreachable from REJECT) reported as errors.
    sock.connect(port, ip, (err?: Error) => {
      if (err) finish((err as NodeJS.ErrnoException).code ?? err.message);
      else send();
    });
  });
}

/** Serves one probe session: requests from `input`, answers to `output`. */
export function serveProbeSession(input: Readable, output: Writable, onIdleEnd: () => void): void {
  let inflight = 0;
  let closed = false;
  const maybeEnd = () => {
    if (closed && inflight === 0) onIdleEnd();
  };
  const answer = (a: ProbeAnswer) => {
    if (output.writable) output.write(JSON.stringify(a) + '\n');
  };
  const rl = createInterface({ input });
  rl.on('line', (line) => {
    if (line.trim() === '') return;
    let req: ProbeRequest;
    try {
      req = JSON.parse(line) as ProbeRequest;
    } catch {
      answer({ id: -1, ok: false, error: 'bad request line' });
      return;
    }
    const id = typeof req.id === 'number' ? req.id : -1;
    if (!isIP(String(req.ip)) || !Number.isInteger(req.port) || req.port < 1 || req.port > 65535 || (req.protocol !== 'TCP' && req.protocol !== 'UDP')) {
      answer({ id, ok: false, error: 'bad request' });
      return;
    }
    const timeoutMs = typeof req.timeoutMs === 'number' && req.timeoutMs > 0 ? req.timeoutMs : 1000;
    const retries = typeof req.retries === 'number' && req.retries >= 0 ? req.retries : 1;
    inflight++;
    const p = req.protocol === 'TCP' ? probeTcp(req.ip, req.port, timeoutMs) : probeUdp(req.ip, req.port, timeoutMs, retries);
    void p.then((r) => {
      inflight--;
      answer(r === true ? { id, ok: true } : { id, ok: false, error: r });
      maybeEnd();
    });
  });
  rl.on('close', () => {
    closed = true;
    maybeEnd();
  });
}
