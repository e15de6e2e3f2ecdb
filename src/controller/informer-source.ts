// The API server as the agent's cluster source: supervised informers filling the store.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterStore } from '../cluster/store.js';
import { createInformers } from '../cluster/informers.js';
import type { Source } from './agent.js';
import type { Metrics } from './metrics.js';

export interface InformerSourceOptions {
  kubeconfig?: string;
  master?: string;
  logger: Logger;
  metrics?: Metrics;
  backoff?: { initialMs: number; maxMs: number };
  /** How often a ClusterNetworkPolicy CRD that is absent (or unreadable) is checked again (default 60 s). */
  crdRecheckMs?: number;
}

export function loadKubeConfig(o: { kubeconfig?: string; master?: string }): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
  else kc.loadFromDefault();
  if (o.master) {
    const cur = kc.getCurrentCluster();
    if (cur) kc.clusters = kc.clusters.map((c) => (c.name === cur.name ? { ...c, server: o.master! } : c));
    else kc.loadFromClusterAndUser({ name: 'master', server: o.master, skipTLSVerify: false }, { name: 'anonymous' });
  }
  return kc;
}

export function informerSource(store: ClusterStore, o: InformerSourceOptions): Source {
  const set = createInformers(loadKubeConfig(o), { upsert: (obj) => void store.upsert(obj), remove: (kind, key) => void store.remove(kind, key) }, { logger: o.logger, ...(o.backoff ? { backoff: o.backoff } : {}), ...(o.crdRecheckMs !== undefined ? { crdRecheckMs: o.crdRecheckMs } : {}) });
  set.on('restart', (i) => o.metrics?.informerRestarts.inc({ resource: i.kind }));
  return {
    start: () => set.start(),
    stop: () => set.stop(),
    synced: () => set.synced(),
    waitForSync: (ms) => set.waitForSync(ms),
    unavailable: () => set.unavailableKinds(),
  };
}
