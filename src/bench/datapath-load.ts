// The datapath benchmark's load generators: a small Python program (standard library only), run
// inside a pod namespace as `ip netns exec NS python3 -c LOAD_GENERATOR MODE HOST PORT SECONDS`.
// Python rather than Node: a blocking socket loop costs a few microseconds per connection or datagram,
// so the kernel's per-packet work (what the benchmark compares) dominates what is measured; Node's
// event loop and socket objects cost several times more per connection and would hide it.
//
// Bounded in time: a client stops after SECONDS, a server when its stdin closes or SECONDS + 10
// after it started, whichever comes first. Each prints one JSON line at the end; servers print
// `ready` first, once listening.
//   tcp-server  accepts connections and closes them                       → {"accepted": n}
//   tcp-client  connect, then close with SO_LINGER 0 (a reset: no TIME_WAIT, no conntrack entry left
//               behind), in a loop                                         → {"connections": n, "errors": e, "seconds": s}
//   udp-server  answers the first datagram (the flow becomes ESTABLISHED in conntrack), then counts
//                                                                          → {"received": n}
//   udp-client  sends `hello` until answered, then 64-byte datagrams as fast as it can
//                                                                          → {"sent": n, "seconds": s}
export const LOAD_GENERATOR = String.raw`
import json, select, socket, struct, sys, time
mode, host, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
hard_stop = time.monotonic() + seconds + 10
def out(d):
    sys.stdout.write(json.dumps(d) + "\n"); sys.stdout.flush()
if mode == "tcp-server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(4096); s.setblocking(False)
    sys.stdout.write("ready\n"); sys.stdout.flush()
    n = 0
    while time.monotonic() < hard_stop:
        r, _, _ = select.select([s, sys.stdin], [], [], 0.5)
        if sys.stdin in r and sys.stdin.read(1) == "": break
        if s in r:
            while True:
                try: c, _ = s.accept()
                except BlockingIOError: break
                c.close(); n += 1
    out({"accepted": n})
elif mode == "tcp-client":
    linger = struct.pack("ii", 1, 0)
    n = e = 0; t0 = time.monotonic(); end = t0 + seconds
    while time.monotonic() < end:
        c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        try: c.connect((host, port)); n += 1
        except OSError: e += 1
        c.close()
    out({"connections": n, "errors": e, "seconds": time.monotonic() - t0})
elif mode == "udp-server":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind((host, port)); s.setblocking(False)
    sys.stdout.write("ready\n"); sys.stdout.flush()
    n = 0; greeted = False
    while time.monotonic() < hard_stop:
        r, _, _ = select.select([s, sys.stdin], [], [], 0.5)
        if sys.stdin in r and sys.stdin.read(1) == "": break
        if s in r:
            while True:
                try: data, addr = s.recvfrom(2048)
                except BlockingIOError: break
                if not greeted: greeted = True; s.sendto(b"ok", addr)
                else: n += 1
    out({"received": n})
elif mode == "udp-client":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect((host, port)); s.settimeout(0.2)
    for _ in range(50):
        s.send(b"hello")
        try: s.recv(16); break
        except (socket.timeout, ConnectionRefusedError): pass
    else:
        sys.stderr.write("udp-client: no answer to hello\n"); sys.exit(1)
    payload = b"x" * 64; n = 0; t0 = time.monotonic(); end = t0 + seconds
    while True:
        for _ in range(256):
            try: s.send(payload)
            except (BlockingIOError, ConnectionRefusedError): pass
        n += 256
        if time.monotonic() >= end: break
    out({"sent": n, "seconds": time.monotonic() - t0})
else:
    sys.stderr.write("unknown mode %r\n" % mode); sys.exit(2)
`;

/** argv (after `ip netns exec NS`) running one generator. */
export function loadArgv(python: string, mode: 'tcp-server' | 'tcp-client' | 'udp-server' | 'udp-client', host: string, port: number, seconds: number): string[] {
  return [python, '-c', LOAD_GENERATOR, mode, host, String(port), String(seconds)];
}
