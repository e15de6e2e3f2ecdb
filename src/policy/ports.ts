// Port specs: the `--ports` list of the CLI, and named-port resolution.
import type { ContainerPort, Protocol } from '../cluster/model.js';
import { PROTOCOLS } from '../cluster/model.js';

export interface ProbePort {
  port: number;
  protocol: Protocol;
}

export class PortListError extends Error {}

/** `80/TCP,81/udp,53` → ProbePorts (protocol defaults to TCP). Throws PortListError. */
export function parsePortList(text: string): ProbePort[] {
  const out: ProbePort[] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const m = /^(\d{1,5})(?:\/([A-Za-z]+))?$/.exec(item);
    if (!m) throw new PortListError(`invalid port ${JSON.stringify(item)}: expected PORT[/PROTOCOL], e.g. 80/TCP`);
    const port = Number(m[1]);
    if (port < 1 || port > 65535) throw new PortListError(`invalid port ${JSON.stringify(item)}: must be 1-65535`);
    const protocol = (m[2] ?? 'TCP').toUpperCase();
    if (!(PROTOCOLS as readonly string[]).includes(protocol)) throw new PortListError(`invalid port ${JSON.stringify(item)}: unknown protocol ${JSON.stringify(m[2])} (TCP, UDP, SCTP)`);
    if (!out.some((p) => p.port === port && p.protocol === protocol)) out.push({ port, protocol: protocol as Protocol });
  }
  if (out.length === 0) throw new PortListError('no ports given');
  return out;
}

export function formatProbePort(p: ProbePort): string {
  return `${p.port}/${p.protocol}`;
}

/** The number a named port resolves to on a pod for a protocol, if the pod declares it. */
export function resolveNamedPort(ports: readonly ContainerPort[], name: string, protocol: Protocol): number | undefined {
  return ports.find((p) => p.name === name && p.protocol === protocol)?.port;
}
