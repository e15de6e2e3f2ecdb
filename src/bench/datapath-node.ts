// One node made of network namespaces, for the datapath benchmark and the kernel tests that need real
// packets through a node's filter table without a whole lab:
//
//   pwdp-<id>-node   bridge `kube-bridge` with the gateway address (first host of the pod CIDR),
//                    forwarding and bridge netfilter on, ICMP error rate limits off (lab/topology.ts)
//   pwdp-<id>-p<i>   one per pod: `eth0` (peer of `vp<i>` on kube-bridge) with the pod IP, default
//                    route via the gateway
//
// Pod-to-pod traffic is bridged inside the node namespace, as kube-router's bridge CNI does, so the
// node's FORWARD chain sees it with `physdev-is-bridged`. Nothing is created outside these namespaces;
// destroy() removes them (and so every link, rule and set in them).
import { randomBytes } from 'node:crypto';
import { ipBatch, LabExecError, run } from '../lab/netns.js';
import { nodeSysctls } from '../lab/topology.js';
import { formatIP, parseCIDR } from '../net/ip.js';

export class NodeNetnsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NodeNetnsError';
  }
}

export interface PodNetns {
  ns: string;
  ip: string;
  /** The pod's veth on the bridge. */
  veth: string;
}

export const BRIDGE = 'kube-bridge';

export class NodeNetns {
  readonly pods = new Map<string, PodNetns>();
  private nextPod = 0;
  private destroyed = false;

  private constructor(
    readonly id: string,
    readonly ns: string,
    /** The pod CIDR (IPv4), e.g. 10.244.0.0/22. */
    readonly podCIDR: string,
    readonly gateway: string,
    private readonly prefix: number,
  ) {}

  /** Creates the node namespace with its bridge. Fails with one line when namespaces cannot be made. */
  static async create(podCIDR = '10.244.0.0/22'): Promise<NodeNetns> {
    if (process.getuid?.() !== 0) throw new NodeNetnsError('needs root: it creates network namespaces (never touches the host\'s own tables)');
    const c = parseCIDR(podCIDR);
    if (!c.ok || c.cidr.family !== 'ipv4' || c.cidr.prefix > 30) throw new NodeNetnsError(`pod CIDR ${JSON.stringify(podCIDR)} is not an IPv4 CIDR of /30 or larger`);
    const id = randomBytes(3).toString('hex');
    const ns = `pwdp-${id}-node`;
    const gateway = formatIP('ipv4', c.cidr.addr + 1n);
    const node = new NodeNetns(id, ns, podCIDR, gateway, c.cidr.prefix);
    try {
      await run('ip', ['netns', 'add', ns], { timeoutMs: 30_000 });
    } catch (e) {
      throw new NodeNetnsError(`cannot create network namespace ${ns}: ${oneLine(e)}`);
    }
    try {
      await ipBatch(
        [
          ['link', 'set', 'lo', 'up'],
          ['link', 'add', BRIDGE, 'type', 'bridge'],
          ['addr', 'add', `${gateway}/${c.cidr.prefix}`, 'dev', BRIDGE],
          ['link', 'set', BRIDGE, 'up'],
        ],
        { ns },
      );
      await nodeSysctls(ns);
    } catch (e) {
      await node.destroy();
      throw new NodeNetnsError(`cannot set up node namespace ${ns}: ${oneLine(e)}`);
    }
    return node;
  }

  /** Adds a pod namespace with this IP on the bridge. */
  async addPod(ip: string): Promise<PodNetns> {
    if (this.pods.has(ip)) throw new NodeNetnsError(`pod IP ${ip} is already attached`);
    const i = this.nextPod++;
    const pod: PodNetns = { ns: `pwdp-${this.id}-p${i}`, ip, veth: `vp${i}` };
    try {
      await run('ip', ['netns', 'add', pod.ns], { timeoutMs: 30_000 });
      this.pods.set(ip, pod);
      await ipBatch(
        [
          ['link', 'add', pod.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.ns],
          ['link', 'set', pod.veth, 'master', BRIDGE],
          ['link', 'set', pod.veth, 'up'],
        ],
        { ns: this.ns },
      );
      await ipBatch(
        [
          ['link', 'set', 'lo', 'up'],
          ['addr', 'add', `${ip}/${this.prefix}`, 'dev', 'eth0'],
          ['link', 'set', 'eth0', 'up'],
          ['route', 'add', 'default', 'via', this.gateway],
        ],
        { ns: pod.ns },
      );
    } catch (e) {
      throw new NodeNetnsError(`cannot attach pod ${ip}: ${oneLine(e)}`);
    }
    return pod;
  }

  /** Removes a pod namespace (its veth goes with it). */
  async removePod(ip: string): Promise<void> {
    const pod = this.pods.get(ip);
    if (!pod) return;
    this.pods.delete(ip);
    await run('ip', ['netns', 'del', pod.ns], { allowFail: true, timeoutMs: 30_000 });
  }

  /** Removes every namespace this node made (idempotent). */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const ip of [...this.pods.keys()]) await this.removePod(ip);
    await run('ip', ['netns', 'del', this.ns], { allowFail: true, timeoutMs: 30_000 });
  }

  /** The same, synchronously usable from a signal handler: the namespace names to delete. */
  namespaces(): string[] {
    return [...[...this.pods.values()].map((p) => p.ns), this.ns];
  }
}

function oneLine(e: unknown): string {
  const m = e instanceof LabExecError ? e.message : (e as Error).message;
  return m.split('\n')[0]!;
}
