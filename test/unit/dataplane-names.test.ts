import test from 'ava';
import fc from 'fast-check';
import {
  base32,
  familySetName,
  hash16,
  isOwnedChain,
  isOwnedSet,
  isPolicyChain,
  kubeRouterRuleUuid,
  peerSetName,
  podChainName,
  policyChainName,
  tmpSetName,
} from '../../src/dataplane/names.js';
import { topLevelJump } from '../../src/dataplane/render.js';
import { MAX_CHAIN_NAME, MAX_SET_NAME } from '../../src/iptables/write.js';

test('base32 follows RFC 4648 (test vectors)', (t) => {
  const enc = (s: string) => base32(Buffer.from(s, 'utf8'));
  t.is(enc(''), '');
  t.is(enc('f'), 'MY======');
  t.is(enc('fo'), 'MZXQ====');
  t.is(enc('foo'), 'MZXW6===');
  t.is(enc('foob'), 'MZXW6YQ=');
  t.is(enc('fooba'), 'MZXW6YTB');
  t.is(enc('foobar'), 'MZXW6YTBOI======');
});

test('hash16 is 16 base32 characters and stable', (t) => {
  fc.assert(
    fc.property(fc.string(), (s) => {
      const h = hash16(s);
      return /^[A-Z2-7]{16}$/.test(h) && hash16(s) === h;
    }),
  );
  // pinned: a change of the hashing scheme would rename every chain on upgrade
  t.is(hash16('pod\u0000shop\u0000web-1'), podChainName('shop', 'web-1').slice('KUBE-POD-FW-'.length));
  t.is(podChainName('shop', 'web-1'), 'KUBE-POD-FW-QGCW76RTGGELONLI');
});

test('kube-router rule uuids match what kube-router writes (jump comment from INPUT)', (t) => {
  // `-A INPUT -m comment --comment "kube-router netpol - 4IA2OSFRMVNDXBVV" -j KUBE-ROUTER-INPUT` is on every kube-router node.
  t.is(kubeRouterRuleUuid('INPUT', ['-m', 'comment', '--comment', 'kube-router netpol', '-j', 'KUBE-ROUTER-INPUT']), '4IA2OSFRMVNDXBVV');
  t.deepEqual(topLevelJump('INPUT').args, ['-m', 'comment', '--comment', 'kube-router netpol - 4IA2OSFRMVNDXBVV', '-j', 'KUBE-ROUTER-INPUT']);
});

test('chain and set names fit the kernel limits and charset', (t) => {
  fc.assert(
    fc.property(fc.string(), fc.string(), fc.constantFrom('ingress' as const, 'egress' as const), fc.constantFrom('ipv4' as const, 'ipv6' as const), (a, b, dir, fam) => {
      const pc = podChainName(a, b);
      const nc = policyChainName(`${a}/${b}`, dir);
      const s1 = peerSetName('KUBE-SRC-', a, fam);
      const s2 = peerSetName('KUBE-DST-', b, fam);
      const tmp = tmpSetName(s1);
      return (
        pc.length === MAX_CHAIN_NAME &&
        nc.length === MAX_CHAIN_NAME &&
        /^KUBE-POD-FW-[A-Z2-7]{16}$/.test(pc) &&
        /^KUBE-NWPLCY-[A-Z2-7]{16}$/.test(nc) &&
        [s1, s2, tmp].every((s) => s.length <= MAX_SET_NAME && /^[A-Za-z0-9:-]+$/.test(s)) &&
        (fam === 'ipv6') === s1.startsWith('inet6:')
      );
    }),
  );
  t.is(familySetName('kube-router-pod-subnets', 'ipv6'), 'inet6:kube-router-pod-subnets');
  t.is(familySetName('kube-router-pod-subnets', 'ipv4'), 'kube-router-pod-subnets');
});

test('names depend on identity only: direction, family and namespace/name separate them', (t) => {
  t.not(policyChainName('a/b', 'ingress'), policyChainName('a/b', 'egress'));
  t.not(peerSetName('KUBE-SRC-', 'x', 'ipv4').replace(/^inet6:/, ''), peerSetName('KUBE-SRC-', 'x', 'ipv6').replace(/^inet6:/, ''));
  // the NUL separator: "ab"/"c" and "a"/"bc" are different pods
  t.not(podChainName('ab', 'c'), podChainName('a', 'bc'));
});

test('ownership: podwall and kube-router firewall objects only', (t) => {
  for (const c of ['KUBE-ROUTER-INPUT', 'KUBE-ROUTER-FORWARD', 'KUBE-ROUTER-OUTPUT', 'KUBE-POD-FW-ABC', 'KUBE-NWPLCY-DEFAULT', 'KUBE-NWPLCY-TAIL', 'PODWALL-DST-PODS', 'PODWALL-SRC-ABCDEFGHIJKLMNOP']) t.true(isOwnedChain(c), c);
  for (const c of ['INPUT', 'KUBE-SERVICES', 'KUBE-FIREWALL', 'KUBE-ROUTER-SOMETHING', 'DOCKER']) t.false(isOwnedChain(c), c);
  for (const s of ['KUBE-SRC-X', 'inet6:KUBE-DST-X', 'podwall-programmed', 'podwall-isolated', 'kube-router-pod-subnets', 'inet6:kube-router-node-ips', 'kube-router-local-pods']) t.true(isOwnedSet(s), s);
  for (const s of ['kube-router-svip', 'kube-router-svip-prt', 'kube-router-local-ips', 'KUBE-CLUSTER-IP', 'foreign']) t.false(isOwnedSet(s), s);
  t.true(isPolicyChain('KUBE-NWPLCY-ABCDEFGHIJKLMNOP'));
  t.false(isPolicyChain('KUBE-NWPLCY-COMMON'));
  t.false(isPolicyChain('KUBE-NWPLCY-DEFAULT'));
});
