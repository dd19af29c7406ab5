// Parameters changed live (README "Parameters changed live"): whole members (real entrypoints,
// PostgreSQL 15, a kube-apiserver) whose parameters.json is rewritten in place, as the kubelet
// updates a ConfigMap volume after `helm upgrade`. A reload-only change applies with no postgres
// restart; a refused file changes nothing and is published; a restart-requiring change rolls the
// members' postgres in place, replicas first and the primary last, while a client keeps writing.
// Timings are figures; the assertions are about correctness.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster, TOKEN, Writer, sleep } from './cluster-harness.js';
import { scenarioFile, healthy, missing, watchSplitBrain } from './scenario.js';

const { kube, fig } = scenarioFile('reload-figures.json');

/** What the kubelet does to a ConfigMap volume: the new content replaces the file atomically. */
function setParameters(c: Cluster, params: Record<string, string | number>) {
  for (const m of c.members) {
    const f = join(m.dir, 'config', 'parameters.json');
    writeFileSync(`${f}.new`, JSON.stringify(params), { mode: 0o644 });
    renameSync(`${f}.new`, f);
  }
}

async function show(c: Cluster, name: string, param: string): Promise<string> {
  return (await c.sql(name, `select current_setting($1) as v`, [param]))[0].v;
}

async function startTimes(c: Cluster): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of c.members) out[m.name] = Number((await c.sql(m.name, 'select extract(epoch from pg_postmaster_start_time())::float8 as t'))[0].t);
  return out;
}

/** Read as a scraper does: from the member's metrics-only port, which serves /metrics alone. */
async function metric(c: Cluster, name: string, metricName: string): Promise<number | null> {
  const r = await fetch(`http://127.0.0.1:${c.member(name).metricsPort}/metrics`, { signal: AbortSignal.timeout(5_000) });
  assert.equal(r.status, 200, `${name}: GET /metrics on the metrics port`);
  const line = (await r.text()).split('\n').find((l) => l.startsWith(`${metricName} `));
  return line ? Number(line.split(' ')[1]) : null;
}

test('a reload-only change (work_mem) applies on every member with no postgres restart; a refused file changes nothing and says why', async (t) => {
  const c = await Cluster.start(kube(), { members: 2, parameters: { work_mem: '4MB' } });
  try {
    const p = await healthy(c, 2);
    const before = await startTimes(c);
    const pids = Object.fromEntries(c.members.map((m) => [m.name, c.postmasterPid(m.name)]));
    const t0 = Date.now();
    setParameters(c, { work_mem: '64MB' });
    for (const m of c.members) await c.waitFor(`${m.name}: work_mem 64MB`, async () => (await show(c, m.name, 'work_mem')) === '64MB', 30_000, 100);
    fig(t, 'reload: file rewritten to applied on every member', Date.now() - t0);
    assert.deepEqual(await startTimes(c), before, 'no postgres restarted (pg_postmaster_start_time)');
    for (const m of c.members) {
      assert.equal(c.postmasterPid(m.name), pids[m.name], `${m.name}: same postmaster`);
      // postgres applies the reload before the autopilot reads its outcome (the next tick)
      await c.waitFor(`${m.name} logs the reload`, async () => c.grep(m.name, 'parameters applied by reload').length >= 1, 10_000, 100);
      const s = await c.status(m.name);
      assert.deepEqual(s.parameters.pendingRestart, [], `${m.name}: nothing pending`);
      assert.deepEqual(s.parameters.problems, []);
      assert.equal(s.member.pendingRestart, false);
      assert.equal(await metric(c, m.name, 'pga_pending_restart'), 0);
    }
    // the metrics port a scraper is admitted to refuses the control endpoints, even with the token
    const pause = await fetch(`http://127.0.0.1:${c.member(p).metricsPort}/pause`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(5_000) });
    assert.equal(pause.status, 405, 'POST /pause on the metrics port');
    assert.equal((await fetch(`http://127.0.0.1:${c.member(p).metricsPort}/status`, { signal: AbortSignal.timeout(5_000) })).status, 404);
    assert.equal((await c.status(p)).paused, false, 'nothing was paused');

    // a parameter the autopilot owns: refused, the member runs on and says why
    setParameters(c, { work_mem: '32MB', port: 5433 });
    for (const m of c.members) {
      const s = await c.waitFor(`${m.name}: refusal published`, async () => { const x = await c.status(m.name); return x?.parameters.problems.length ? x : null; }, 30_000, 200);
      assert.match(s.parameters.problems.join('\n'), /postgresql\.parameters\.port = "5433" is refused/);
      assert.equal(await metric(c, m.name, 'pga_parameters_refused'), 1);
      assert.equal(await show(c, m.name, 'work_mem'), '64MB', `${m.name}: the previous parameters stay`);
    }
    // a value postgres itself refuses: written back at once, so no later restart fails on it
    setParameters(c, { work_mem: 'lots' });
    for (const m of c.members) {
      const s = await c.waitFor(`${m.name}: postgres refusal published`, async () => { const x = await c.status(m.name); return x && /postgres refuses work_mem/.test(x.parameters.problems.join('\n')) ? x : null; }, 30_000, 200);
      assert.ok(s);
      assert.doesNotMatch(readFileSync(join(m.dataDir, 'postgresql.conf'), 'utf8'), /work_mem = 'lots'/, `${m.name}: postgresql.conf holds the previous value again`);
      assert.equal(await show(c, m.name, 'work_mem'), '64MB');
    }
    // fixed: applied, the problem cleared
    setParameters(c, { work_mem: '16MB' });
    for (const m of c.members) {
      await c.waitFor(`${m.name}: work_mem 16MB`, async () => (await show(c, m.name, 'work_mem')) === '16MB', 30_000, 100);
      await c.waitFor(`${m.name}: problems cleared`, async () => (await c.status(m.name))?.parameters.problems.length === 0, 10_000, 100);
    }
    assert.deepEqual(await startTimes(c), before, 'still no postgres restarted');
    assert.equal(await c.waitForPrimary(10_000), p, 'the primary never changed');
  } finally {
    await c.stop();
  }
});

test('a restart-requiring change (max_connections) rolls every member in place, the primary last, while writes continue', async (t) => {
  const c = await Cluster.start(kube(), { members: 3, parameters: { max_connections: 100 } });
  try {
    const p = await healthy(c, 3);
    const before = await startTimes(c);
    const w = await Writer.start(c, p);
    await sleep(1_000);
    const t0 = Date.now();
    let np = p;
    const splits = await watchSplitBrain(c, async () => {
      setParameters(c, { max_connections: 150 });
      // published first: the primary's status says what waits for a restart
      await c.waitFor('a member reports max_connections pending a restart', async () => {
        for (const m of c.members) { const s = await c.status(m.name); if (s?.parameters.pendingRestart.includes('max_connections')) return true; }
        return false;
      }, 30_000, 100);
      await c.waitFor('every member runs max_connections 150', async () => {
        for (const m of c.members) if ((await show(c, m.name, 'max_connections').catch(() => '')) !== '150') return false;
        return true;
      }, 180_000, 250);
      np = await c.waitForPrimary(30_000);
      await c.waitForReplicas(np, 2, 60_000);
    });
    fig(t, 'restart roll: file rewritten to every member restarted and streaming', Date.now() - t0);
    const mid = Date.now();
    await c.waitFor('writes after the roll', async () => w.acked.some((a) => a.at > mid), 30_000, 50);
    await w.stop();
    assert.deepEqual(splits, [], 'never two writable members');
    assert.deepEqual(await missing(c, np, 'w', w.acked.map((a) => a.id)), [], 'no acknowledged write lost');
    fig(t, 'restart roll: longest write gap', w.longestGap(t0).ms);

    const after = await startTimes(c);
    for (const m of c.members) assert.ok(after[m.name]! > before[m.name]!, `${m.name}'s postgres restarted`);
    const replicas = c.members.map((m) => m.name).filter((n) => n !== p);
    for (const r of replicas) assert.ok(after[r]! < after[p]!, `replica ${r} restarted before the old primary ${p}`);
    assert.notEqual(np, p, 'the old primary handed over before its own restart');
    for (const m of c.members) {
      const s = await c.waitFor(`${m.name}: nothing pending`, async () => { const x = await c.status(m.name); return x && x.parameters.pendingRestart.length === 0 && x.member.pendingRestart === false ? x : null; }, 15_000, 200);
      assert.ok(s);
      assert.equal(await metric(c, m.name, 'pga_pending_restart'), 0);
    }
    // each replica restarted its own postgres in place (asked by the primary), none was evicted
    for (const r of replicas) assert.ok(c.grep(r, 'restarting postgres for parameters pending a restart').length >= 1, `${r} restarted in place`);
    assert.ok(c.grep(p, 'asked a replica to restart postgres').length >= 1, `${p} asked its replicas`);
    assert.equal(c.grep(p, 'evicting a pod').length, 0);
    t.diagnostic(`restart order: ${Object.entries(after).sort((a, b) => a[1] - b[1]).map(([n]) => n).join(' → ')} (primary was ${p}, now ${np})`);
  } finally {
    await c.stop();
  }
});
