// The harness itself, against the real API server: members get exactly the chart's RBAC, and a
// cut proxy behaves like a partition.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as https from 'node:https';
import { readFileSync } from 'node:fs';
import { startKube, MEMBER_TOKEN, type Kube } from './kube-harness.js';

let kube: Kube;
before(async () => { kube = await startKube(); });
after(async () => { await kube?.stop(); });

function asMember(server: string, method: string, path: string, body?: unknown, timeoutMs = 3000): Promise<number> {
  return new Promise((res, rej) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(`${server}${path}`, {
      method, ca: readFileSync(kube.caFile), timeout: timeoutMs,
      headers: { authorization: `Bearer ${MEMBER_TOKEN}`, ...(data ? { 'content-type': 'application/json' } : {}) },
    }, (r) => { r.resume(); r.on('end', () => res(r.statusCode ?? 0)); });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    if (data) req.write(data);
    req.end();
  });
}

test('a member may manage leases and patch pods in its namespace, and nothing else', async () => {
  const ns = await kube.namespace('rbac');
  const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'x-leader' }, spec: { holderIdentity: 'm0' } };
  assert.equal(await asMember(kube.server, 'POST', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`, lease), 201);
  assert.equal(await asMember(kube.server, 'GET', `/api/v1/namespaces/${ns}/pods`), 200);
  assert.equal(await asMember(kube.server, 'GET', `/api/v1/namespaces/${ns}/secrets`), 403);
  assert.equal(await asMember(kube.server, 'DELETE', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/x-leader`), 403);
  assert.equal(await asMember(kube.server, 'GET', `/api/v1/namespaces/default/pods`), 403);
});

test('a cut proxy hangs like a partition, a restored one answers again', async () => {
  const p = await kube.proxy('m0');
  const via = `https://127.0.0.1:${p.port}`;
  assert.equal(await asMember(via, 'GET', '/readyz'), 200);
  p.cut('blackhole');
  await assert.rejects(asMember(via, 'GET', '/readyz', undefined, 800), /timeout/);
  p.cut('refuse');
  await assert.rejects(asMember(via, 'GET', '/readyz', undefined, 800), /socket hang up|ECONNRESET|disconnected before secure TLS/);
  p.restore();
  assert.equal(await asMember(via, 'GET', '/readyz'), 200);
});

test('with { audit: true } every request is in the audit log, once, with its user', async () => {
  const k2 = await startKube({ audit: true });
  try {
    const ns = await k2.namespace('audit');
    assert.equal(await asMemberOf(k2, 'GET', `/api/v1/namespaces/${ns}/pods`), 200);
    await new Promise((r) => setTimeout(r, 1500)); // the audit backend writes asynchronously
    const events = readFileSync(k2.auditLog!, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const mine = events.filter((e) => e.user?.username === 'pga-member' && e.requestURI === `/api/v1/namespaces/${ns}/pods`);
    assert.equal(new Set(mine.map((e) => e.auditID)).size, 1);
  } finally {
    await k2.stop();
  }
});

function asMemberOf(k: Kube, method: string, path: string): Promise<number> {
  return new Promise((res, rej) => {
    const req = https.request(`${k.server}${path}`, { method, ca: readFileSync(k.caFile), headers: { authorization: `Bearer ${MEMBER_TOKEN}` } },
      (r) => { r.resume(); r.on('end', () => res(r.statusCode ?? 0)); });
    req.on('error', rej);
    req.end();
  });
}

test('the HTTP fault layer: unchanged when idle, a lost reply still commits, a late watch delivers every change late', async () => {
  const ns = await kube.namespace('faults');
  const p = await kube.proxy('m1', 'member', { faults: true });
  const via = `https://127.0.0.1:${p.port}`;
  const leases = `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`;
  try {
    assert.equal(await asMember(via, 'GET', leases), 200);
    p.http!.faults.lostReplies = { method: 'POST', path: /\/leases/ };
    const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'lost' }, spec: { holderIdentity: 'm1' } };
    await assert.rejects(asMember(via, 'POST', leases, lease, 1_000), /timeout/);
    assert.equal((await kube.request('GET', `${leases}/lost`)).body.spec.holderIdentity, 'm1', 'the write committed');
    assert.deepEqual(p.http!.lost.map((l) => [l.method, l.status]), [['POST', 201]]);
    p.http!.faults.lostReplies = null;
    p.http!.faults.watchDelayMs = 1_500;
    const rv = (await kube.request('GET', `${leases}/lost`)).body.metadata.resourceVersion;
    const seen = new Promise<number>((res, rej) => {
      const req = https.request(`${via}${leases}?watch=1&resourceVersion=${rv}`, { ca: readFileSync(kube.caFile), headers: { authorization: `Bearer ${MEMBER_TOKEN}` } }, (r) => {
        r.on('data', () => { res(Date.now()); req.destroy(); });
      });
      req.on('error', (e) => { if (!/aborted|socket hang up/.test(e.message)) rej(e); });
      req.end();
    });
    await new Promise((r) => setTimeout(r, 300));
    const at = Date.now();
    await kube.request('PUT', `${leases}/lost`, { ...lease, metadata: { name: 'lost', resourceVersion: rv }, spec: { holderIdentity: 'm2' } });
    const late = (await seen) - at;
    assert.ok(late >= 1_400, `the change arrived ${late} ms after it was made, expected ≥ 1500 ms`);
  } finally {
    await p.close();
  }
});
