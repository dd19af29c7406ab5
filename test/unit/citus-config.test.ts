// citus.json (core/citus-config.ts): what a Citus member reads, the refusals, and the parameters
// it adds to postgresql.conf.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { citusParameters, loadCitus, defaultNodeConninfo } from '../../scripts/core/citus-config.js';
import { memFiles } from './mem-files.js';

const load = (json: unknown, tls: { caFile: string | null } | null = null) => {
  const problems: string[] = [];
  const c = loadCitus('/cfg', 'db', tls, memFiles({ '/cfg/citus.json': JSON.stringify(json) }), problems);
  return { c, problems };
};

test('citus.json absent: not a Citus member', () => {
  const problems: string[] = [];
  assert.equal(loadCitus('/cfg', 'db', null, memFiles({}), problems), null);
  assert.deepEqual(problems, []);
});

test('citus.json: a coordinator with two worker groups, defaults filled in', () => {
  const { c, problems } = load({ role: 'coordinator', workers: [
    { group: 1, lease: 'pg-w1-leader', selector: 'app=pg-w1' },
    { group: 2, lease: 'pg-leader', namespace: 'other', selector: 'app.kubernetes.io/instance=w2,app=x' },
  ] });
  assert.deepEqual(problems, []);
  assert.equal(c!.group, 0);
  assert.deepEqual(c!.workers, [
    { group: 1, lease: 'pg-w1-leader', namespace: 'db', selector: 'app=pg-w1' },
    { group: 2, lease: 'pg-leader', namespace: 'other', selector: 'app.kubernetes.io/instance=w2,app=x' },
  ]);
  assert.equal(c!.nodeConninfo, 'sslmode=prefer');
  assert.equal(c!.lockCooldownMs, 10_000);
});

test('citus.json: with TLS the nodes verify each other against the CA', () => {
  assert.equal(load({ role: 'worker', group: 3 }, { caFile: '/tls/ca.crt' }).c!.nodeConninfo, 'sslmode=verify-ca sslrootcert=/tls/ca.crt');
  assert.equal(defaultNodeConninfo({ caFile: null }), 'sslmode=require');
});

test('citus.json: every refusal names the key and what is accepted', () => {
  const cases: [unknown, RegExp][] = [
    [{ role: 'leader' }, /role got "leader"; accepted: "coordinator" or "worker"/],
    [{ role: 'coordinator', group: 2 }, /group got 2; accepted: 0 for the coordinator group/],
    [{ role: 'worker' }, /group got undefined; accepted: a whole number ≥ 1/],
    [{ role: 'worker', group: 1, workers: [] }, /workers got \[\]; accepted: nothing on a worker group/],
    [{ role: 'coordinator', workers: [{ group: 0, lease: 'a', selector: 'a=b' }] }, /workers\[0\]\.group got 0; accepted: a whole number ≥ 1/],
    [{ role: 'coordinator', workers: [{ group: 1, lease: 'a', selector: 'a=b' }, { group: 1, lease: 'b', selector: 'a=b' }] }, /workers\[1\]\.group got 1; accepted: a number no other worker group has/],
    [{ role: 'coordinator', workers: [{ group: 1, lease: 'a', selector: 'a=b' }, { group: 2, lease: 'a', selector: 'a=c' }] }, /workers\[1\]\.lease got "a"; accepted: a Lease no other worker group names/],
    [{ role: 'coordinator', workers: [{ group: 1, lease: 'Bad_Name', selector: 'a=b' }] }, /workers\[0\]\.lease got "Bad_Name"/],
    [{ role: 'coordinator', workers: [{ group: 1, lease: 'a', selector: 'not a selector' }] }, /workers\[0\]\.selector got "not a selector"/],
    [{ role: 'coordinator', workers: [{ group: 1, lease: 'a', selector: 'a=b', port: 5432 }] }, /workers\[0\]: unknown key\(s\) port/],
    [{ role: 'worker', group: 1, nodeConninfo: 'sslmode=require host=x' }, /nodeConninfo got .*accepted: no host \(Citus sets/],
    [{ role: 'worker', group: 1, nodeConninfo: 'sslmode' }, /nodeConninfo got "sslmode"; accepted: libpq keyword=value pairs/],
    [{ role: 'worker', group: 1, lockCooldownMs: 5 }, /lockCooldownMs got 5; accepted: a whole number of milliseconds from 100/],
    [{ role: 'worker', group: 1, extra: true }, /unknown key\(s\) extra; accepted: role, group/],
  ];
  for (const [json, re] of cases) {
    const { problems } = load(json);
    assert.ok(problems.some((p) => re.test(p) && p.startsWith('/cfg/citus.json: ')), `${JSON.stringify(json)}: no problem matching ${re} in ${JSON.stringify(problems)}`);
  }
});

test('citus parameters: citus first in shared_preload_libraries, once; node_conninfo from citus.json', () => {
  const { c } = load({ role: 'worker', group: 1, nodeConninfo: "sslmode=verify-ca sslrootcert='/a b/ca.crt'" });
  assert.deepEqual(citusParameters(c!, { shared_preload_libraries: 'pg_stat_statements, citus' }), {
    shared_preload_libraries: 'citus,pg_stat_statements', 'citus.node_conninfo': "sslmode=verify-ca sslrootcert='/a b/ca.crt'",
  });
  assert.equal(citusParameters(c!, {}).shared_preload_libraries, 'citus');
});

test('citus: postgresql.conf of a Citus member has citus first in shared_preload_libraries (once) and node_conninfo from citus.json', async () => {
  const { loadConfig } = await import('../../scripts/core/config.js');
  const { renderPostgresqlConf } = await import('../../scripts/core/render.js');
  const env = {
    PGA_CLUSTER_NAME: 'pg', PGA_NAMESPACE: 'db', PGA_POD_NAME: 'pg-0', PGA_POD_IP: '10.0.0.6', PGA_MEMBER_SELECTOR: 'app=pg',
    PGA_RUN_DIR: '/run/pg', PGA_DATA_DIR: '/data/pgdata', PGA_CONFIG_DIR: '/cfg', PGA_SUPERUSER_PASSWORD: 'a', PGA_REPLICATION_PASSWORD: 'b', PGA_APP_PASSWORD: 'c', PGA_API_TOKEN: 'd',
  };
  const base = { '/usr/lib/postgresql/15/bin/postgres': '', '/cfg/parameters.json': JSON.stringify({ shared_preload_libraries: 'pg_stat_statements', work_mem: '8MB' }) };
  const c = loadConfig(env, memFiles({ ...base, '/cfg/citus.json': JSON.stringify({ role: 'worker', group: 2 }) }));
  const conf = renderPostgresqlConf(c, { primary: null, slotName: null, syncStandbyNames: '', applicationName: 'pg-0' });
  const lines = conf.split('\n');
  assert.deepEqual(lines.filter((l) => l.startsWith('shared_preload_libraries')), ["shared_preload_libraries = 'citus,pg_stat_statements'"]);
  assert.deepEqual(lines.filter((l) => l.startsWith('citus.node_conninfo')), ["citus.node_conninfo = 'sslmode=prefer'"]);
  // not a Citus member: parameters.json as it is
  const plain = renderPostgresqlConf(loadConfig(env, memFiles(base)), { primary: null, slotName: null, syncStandbyNames: '', applicationName: 'pg-0' });
  assert.deepEqual(plain.split('\n').filter((l) => l.startsWith('shared_preload_libraries') || l.startsWith('citus.')), ["shared_preload_libraries = 'pg_stat_statements'"]);
  // node_conninfo in both places is refused, naming where it belongs
  assert.throws(() => loadConfig(env, memFiles({ ...base, '/cfg/parameters.json': '{"citus.node_conninfo":"sslmode=disable"}', '/cfg/citus.json': '{"role":"worker","group":1}' })),
    /citus\.node_conninfo is set from citus\.json \(nodeConninfo\).*Fix: remove it from postgresql\.parameters/);
});

test('citus.json: a worker names where the coordinator is (for its hand-offs); refused on the coordinator', () => {
  assert.deepEqual(load({ role: 'worker', group: 1, coordinator: { selector: 'app=coord' } }).c!.coordinator, { namespace: 'db', selector: 'app=coord' });
  assert.equal(load({ role: 'worker', group: 1 }).c!.coordinator, null);
  assert.ok(load({ role: 'coordinator', coordinator: { selector: 'a=b' } }).problems.some((p) => /coordinator got .*accepted: nothing on the coordinator group/.test(p)));
  assert.ok(load({ role: 'worker', group: 1, coordinator: { selector: '' } }).problems.some((p) => /coordinator\.selector got ""/.test(p)));
});
