// The autopilot's Kubernetes client against the real kube-apiserver, with the member's
// least-privilege RBAC: conditional lease writes, informers that resume a watch from the last
// version they saw (no re-list), and a resync after a broken stream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startKube, type Kube } from './kube-harness.js';
import { createKube, loadConnection, KubeError, type Lease } from '../../scripts/shell/kube.js';

let kube: Kube;
before(async () => { kube = await startKube(); });
after(async () => { await kube?.stop(); });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('lease writes are conditional on the resourceVersion', async () => {
  const ns = await kube.namespace('kc');
  const k = createKube(loadConnection(kube.kubeconfig('member')), ns);
  try {
    const created = await k.createLease({ metadata: { name: 'x-leader' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 6 } });
    const won = await k.updateLease({ ...created, spec: { ...created.spec, holderIdentity: 'b' } });
    assert.equal(won.spec.holderIdentity, 'b');
    // a second writer with the stale version loses with 409
    await assert.rejects(k.updateLease({ ...created, spec: { ...created.spec, holderIdentity: 'c' } }), (e: unknown) => e instanceof KubeError && e.conflict);
    await assert.rejects(k.createLease({ metadata: { name: 'x-leader' }, spec: { holderIdentity: 'd' } }), (e: unknown) => e instanceof KubeError && e.conflict);
    assert.equal((await k.getLease('x-leader'))?.spec.holderIdentity, 'b');
    assert.equal(await k.getLease('nope'), null);
    assert.throws(() => k.updateLease({ metadata: { name: 'x-leader' }, spec: {} }), /resourceVersion/);
  } finally {
    k.close();
  }
});

test('an informer resumes its watch from the last version after the stream ends, without listing again', async () => {
  const ns = await kube.namespace('kc');
  const k = createKube(loadConnection(kube.kubeconfig('member')), ns, undefined, { watchSeconds: 1 });
  const seen: (string | null)[] = [];
  const stop = k.informLease('y-leader', (l: Lease | null) => seen.push(l?.spec.holderIdentity ?? null));
  try {
    await sleep(500);
    const l = await k.createLease({ metadata: { name: 'y-leader' }, spec: { holderIdentity: 'a' } });
    await sleep(2_500); // the 1 s stream has ended and resumed at least once
    await k.updateLease({ ...l, spec: { ...l.spec, holderIdentity: 'b' } });
    for (let i = 0; i < 50 && seen[seen.length - 1] !== 'b'; i++) await sleep(100);
    assert.deepEqual(seen, [null, 'a', 'b']);
    assert.equal(k.counts.list, 1, `listed once, then only watched (counts: ${JSON.stringify(k.counts)})`);
    assert.ok((k.counts.watch ?? 0) >= 3, `the watch resumed (counts: ${JSON.stringify(k.counts)})`);
  } finally {
    stop();
    k.close();
  }
});

test('a broken watch (connection reset) lists again and catches up', async () => {
  const ns = await kube.namespace('kc');
  const p = await kube.proxy('kc', 'member');
  const k = createKube(loadConnection(p.kubeconfig), ns);
  const admin = createKube(loadConnection(kube.kubeconfig('admin')), ns);
  const seen: (string | null)[] = [];
  const stop = k.informLease('z-leader', (l) => seen.push(l?.spec.holderIdentity ?? null));
  try {
    await sleep(500);
    p.cut('refuse');
    const l = await admin.createLease({ metadata: { name: 'z-leader' }, spec: { holderIdentity: 'a' } });
    await sleep(500);
    p.restore();
    for (let i = 0; i < 80 && seen[seen.length - 1] !== 'a'; i++) await sleep(100);
    assert.equal(seen[seen.length - 1], 'a');
    assert.ok((k.counts.list ?? 0) >= 2, 'listed again after the break');
    void l;
  } finally {
    stop();
    k.close();
    admin.close();
    await p.close();
  }
});
