// The lab's one-shot prober, one process per source pod namespace:
//   ip netns exec NS node dist/src/lab/prober-main.js
// Prints `ready`, then serves one probe session (probe-session.ts) on stdin/stdout; exits when stdin
// closes (after answering what is in flight). Pods with a server are probed through the server's
// control socket instead (no process to start); this is for the others and for namespaces that are
// not a lab's pods.
import { serveProbeSession } from './probe-session.js';


process.stdout.on('error', () => process.exit(0));
serveProbeSession(process.stdin, process.stdout, () => process.exit(0));
process.stdout.write('ready\n');
