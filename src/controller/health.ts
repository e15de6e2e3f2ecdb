// HTTP endpoints: /healthz and /readyz on the health port, /status (JSON, the applied generation),
// and the metrics path on the metrics port (may be the same server).
import { createServer, type Server } from 'node:http';
import type { Metrics } from './metrics.js';

export interface HealthSource {
  /** Informers synced (or manifests loaded) and the last reconcile succeeded within the sync period. */
  healthy(): { ok: boolean; reason: string };
  /** First sync applied. */
  ready(): { ok: boolean; reason: string };
  status(): unknown;
}

export interface Endpoints {
  close(): Promise<void>;
  healthPort?: number;
  metricsPort?: number;
}

function listen(server: Server, port: number, addr: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, addr || undefined, () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
}

export async function startEndpoints(opts: {
  health: HealthSource;
  metrics: Metrics;
  healthPort: number;
  healthAddr: string;
  metricsPort: number;
  metricsAddr: string;
  metricsPath: string;
}): Promise<Endpoints> {
  const servers: Server[] = [];
  const out: Endpoints = {
    close: async () => {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    },
  };
  const handler = (serveHealth: boolean, serveMetrics: boolean) =>
    createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const send = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
        res.writeHead(code, { 'content-type': type });
        res.end(body);
      };
      if (serveHealth && (path === '/healthz' || path === '/readyz')) {
        const s = path === '/healthz' ? opts.health.healthy() : opts.health.ready();
        return send(s.ok ? 200 : 503, `${s.ok ? 'ok' : 'not ok'}: ${s.reason}\n`);
      }
      if (serveHealth && path === '/status') return send(200, `${JSON.stringify(opts.health.status())}\n`, 'application/json');
      if (serveMetrics && path === opts.metricsPath) {
        opts.metrics.registry
          .metrics()
          .then((m) => send(200, m, opts.metrics.registry.contentType))
          .catch((e: Error) => send(500, e.message));
        return;
      }
      send(404, 'not found\n');
    });
  // Port 0 disables an endpoint (kube-router's convention); -1 asks for an ephemeral port (tests).
  const same = opts.metricsPort !== 0 && opts.metricsPort === opts.healthPort;
  if (opts.healthPort !== 0) {
    const s = handler(true, same);
    servers.push(s);
    out.healthPort = await listen(s, Math.max(0, opts.healthPort), opts.healthAddr);
  }
  if (opts.metricsPort !== 0 && !same) {
    const s = handler(false, true);
    servers.push(s);
    out.metricsPort = await listen(s, Math.max(0, opts.metricsPort), opts.metricsAddr);
  }
  return out;
}
