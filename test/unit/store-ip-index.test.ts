// ClusterStore's index of pods by IP keeps one pod per address as the pod itself and a map only
// when several pods claim the address: podByIP answers the same through adds, replacements and
// removals (several pods on one IP: the first actionable by key).
import test from 'ava';
import { ClusterStore } from '../../src/cluster/store.js';
import type { Pod } from '../../src/cluster/model.js';

const pod = (name: string, ips: string[], phase: Pod['phase'] = 'Running'): Pod => ({ kind: 'Pod', namespace: 'ns', name, labels: {}, hostNetwork: false, phase, ips, ports: [] });

test('podByIP: one pod, several pods, replacements and removals', (t) => {
  const s = new ClusterStore();
  s.upsert(pod('b', ['10.0.0.1', 'fd00::1']));
  t.is(s.podByIP('10.0.0.1')?.name, 'b');
  t.is(s.podByIP('fd00::1')?.name, 'b');
  s.upsert(pod('a', ['10.0.0.1']));
  t.is(s.podByIP('10.0.0.1')?.name, 'a', 'the first by key');
  s.upsert(pod('a', ['10.0.0.1'], 'Succeeded'));
  t.is(s.podByIP('10.0.0.1')?.name, 'b', 'the first actionable');
  s.upsert(pod('c', ['10.0.0.1']));
  s.remove('Pod', 'ns/b');
  t.is(s.podByIP('10.0.0.1')?.name, 'c');
  t.is(s.podByIP('fd00::1'), undefined);
  s.remove('Pod', 'ns/c');
  t.is(s.podByIP('10.0.0.1'), undefined, 'only a finished pod left');
  s.upsert(pod('a', ['10.0.0.2']));
  t.is(s.podByIP('10.0.0.1'), undefined);
  t.is(s.podByIP('10.0.0.2')?.name, 'a');
  s.upsert(pod('a', ['10.0.0.2'], 'Failed'));
  t.is(s.podByIP('10.0.0.2'), undefined);
  s.remove('Pod', 'ns/a');
  t.is(s.podByIP('10.0.0.2'), undefined);
  s.upsert(pod('d', ['10.0.0.2']));
  t.is(s.podByIP('10.0.0.2')?.name, 'd');
});
