// Declarative roles and databases on a real member: a user added, altered, its password rotated
// (the new one logs in, the old one no longer does), a database created and dropped, the user
// removed — all by rewriting roles.json and the password file as the kubelet does (a new file
// renamed over the old), with postgres never restarted (pg_postmaster_start_time() unchanged).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, writeFileSync, chownSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { Cluster } from './cluster-harness.js';
import { isRoot, scenarioFile } from './scenario.js';

const { kube, fig } = scenarioFile('roles.json');
const pgIds = isRoot ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) } : null;

/** Replace a member's config file the way the kubelet updates a mounted ConfigMap/Secret. */
function replaceFile(dir: string, rel: string, text: string) {
  const f = join(dir, 'config', rel);
  const tmp = `${f}.tmp-${Date.now()}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  if (pgIds) chownSync(tmp, pgIds.uid, pgIds.gid);
  renameSync(tmp, f);
}

async function canLogin(port: number, user: string, password: string, database = 'postgres'): Promise<boolean | string> {
  const c = new pg.Client({ host: '127.0.0.1', port, user, password, database, connectionTimeoutMillis: 3_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await c.end().catch(() => undefined);
  }
}

const roles = (users: unknown[], databases: unknown[] = []) => JSON.stringify({ users, databases });

test('roles: add, alter, rotate the password, remove a user (and a database) with no restart', { timeout: 240_000 }, async (t) => {
  const c = await Cluster.start(kube(), {
    members: 1,
    files: { 'roles.json': roles([]), 'alice-password': 'first-pw\n' },
  });
  try {
    const m0 = await c.waitForPrimary(90_000);
    const m = c.member(m0);
    const started = (await c.sql(m0, 'SELECT pg_postmaster_start_time()::text AS t'))[0].t as string;
    const role = async () => (await c.sql(m0, `SELECT rolcanlogin, rolcreatedb, rolconnlimit,
        ARRAY(SELECT g.rolname::text FROM pg_auth_members x JOIN pg_roles g ON g.oid = x.roleid WHERE x.member = r.oid ORDER BY 1) AS member_of
      FROM pg_roles r WHERE rolname = 'alice'`))[0] as { rolcanlogin: boolean; rolcreatedb: boolean; rolconnlimit: number; member_of: string[] } | undefined;

    // 1. add: a user with a password, a membership, and a database it owns
    let t0 = Date.now();
    replaceFile(m.dir, 'roles.json', roles([{ name: 'alice', passwordKey: 'alice-password', options: ['LOGIN'], inRoles: ['pg_read_all_data'] }], [{ name: 'alicedb', owner: 'alice' }]));
    await c.waitFor('alice can log in to alicedb', async () => (await canLogin(m.pgPort, 'alice', 'first-pw', 'alicedb')) === true, 30_000, 100);
    fig(t, 'roles_add_ms', Date.now() - t0);
    assert.deepEqual((await role())?.member_of, ['pg_read_all_data']);

    // 2. alter: CREATEDB, a connection limit, the membership removed
    t0 = Date.now();
    replaceFile(m.dir, 'roles.json', roles([{ name: 'alice', passwordKey: 'alice-password', options: ['LOGIN', 'CREATEDB'], connectionLimit: 5 }], [{ name: 'alicedb', owner: 'alice' }]));
    await c.waitFor('alice altered', async () => { const r = await role(); return r?.rolcreatedb === true && r.rolconnlimit === 5 && r.member_of.length === 0; }, 30_000, 100);
    fig(t, 'roles_alter_ms', Date.now() - t0);

    // 3. rotate: the new password logs in, the old one no longer does
    t0 = Date.now();
    replaceFile(m.dir, 'alice-password', 'second-pw\n');
    await c.waitFor('the new password logs in', async () => (await canLogin(m.pgPort, 'alice', 'second-pw')) === true, 30_000, 100);
    fig(t, 'roles_rotate_ms', Date.now() - t0);
    assert.match(String(await canLogin(m.pgPort, 'alice', 'first-pw')), /password authentication failed/);

    // 4. remove: alice still owns alicedb, so she is disabled first, and said so
    // (alicedb no longer declared: left alone, so alice still owns it)
    replaceFile(m.dir, 'roles.json', roles([{ name: 'alice', ensure: 'absent' }]));
    await c.waitFor('alice disabled (owns a database)', async () => (await role())?.rolcanlogin === false, 30_000, 100);
    assert.ok(c.grep(m0, 'owns database(s) alicedb: not dropped').length > 0, 'the refusal to drop is logged with its reason');
    // then the database is dropped and the role with it
    t0 = Date.now();
    replaceFile(m.dir, 'roles.json', roles([{ name: 'alice', ensure: 'absent' }], [{ name: 'alicedb', ensure: 'absent' }]));
    await c.waitFor('alice and alicedb dropped', async () => (await role()) === undefined
      && (await c.sql(m0, `SELECT 1 FROM pg_database WHERE datname = 'alicedb'`)).length === 0, 30_000, 100);
    fig(t, 'roles_remove_ms', Date.now() - t0);

    // 5. a wrong declaration changes nothing and says why
    replaceFile(m.dir, 'roles.json', roles([{ name: 'bob', ensure: 'maybe' }]));
    await c.waitFor('the refusal logged', async () => c.grep(m0, 'ensure got \\"maybe\\"').length > 0 || c.grep(m0, 'ensure got "maybe"').length > 0, 30_000, 200);
    assert.equal((await c.sql(m0, `SELECT 1 FROM pg_roles WHERE rolname = 'bob'`)).length, 0);

    const after = (await c.sql(m0, 'SELECT pg_postmaster_start_time()::text AS t'))[0].t as string;
    assert.equal(after, started, 'postgres was never restarted');
    for (const w of ['RoleCreated', 'RolePasswordSet', 'RoleDropped', 'DatabaseDropped']) {
      const ev = await kube().request('GET', `/api/v1/namespaces/${c.ns}/events`);
      assert.ok(((ev.body as { items: { reason: string }[] }).items ?? []).some((e) => e.reason === w), `an Event ${w} was recorded`);
    }
  } finally {
    await c.stop();
  }
});

/** Run `fn` logged in as `user` over TCP loopback (as the exporter does) or the unix socket. */
async function asUser<T>(host: string, port: number, user: string, password: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ host, port, user, password, database: 'postgres', connectionTimeoutMillis: 3_000 });
  c.on('error', () => undefined);
  await c.connect();
  try { return await fn(c); } finally { await c.end().catch(() => undefined); }
}

test("roles: the exporter's own role: pg_monitor and nothing else, loopback only, reserved, drift undone, password rotated", { timeout: 240_000 }, async (t) => {
  const c = await Cluster.start(kube(), {
    members: 2,
    files: { 'roles.json': roles([]), 'monitor-password': 'mon-pw-1\n' },
    env: { PGA_MONITOR_USER: 'pga_monitor' },
    fileEnv: { PGA_MONITOR_PASSWORD_FILE: 'monitor-password' },
  });
  try {
    const m0 = await c.waitForPrimary(90_000);
    await c.waitForReplicas(m0, 1);
    const m = c.member(m0);
    const started = (await c.sql(m0, 'SELECT pg_postmaster_start_time()::text AS t'))[0].t as string;
    const role = async () => (await c.sql(m0, `SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolconnlimit,
        ARRAY(SELECT g.rolname::text FROM pg_auth_members x JOIN pg_roles g ON g.oid = x.roleid WHERE x.member = r.oid ORDER BY 1) AS member_of
      FROM pg_roles r WHERE rolname = 'pga_monitor'`))[0] as Record<string, unknown> | undefined;
    const exact = { rolcanlogin: true, rolsuper: false, rolcreatedb: false, rolcreaterole: false, rolreplication: false, rolbypassrls: false, rolconnlimit: 5, member_of: ['pg_monitor'] };

    // 1. made at bootstrap: LOGIN, pg_monitor, nothing else
    assert.deepEqual(await role(), exact);
    // 2. it reads what the exporter reads: pg_stat_replication with its columns (pg_monitor shows
    // other roles' rows whole; without it they read as NULL)
    const rep = await asUser('127.0.0.1', m.pgPort, 'pga_monitor', 'mon-pw-1', (cl) => cl.query('SELECT state, sent_lsn::text AS sent FROM pg_stat_replication'));
    assert.equal(rep.rows.length, 1);
    assert.equal(rep.rows[0].state, 'streaming');
    assert.ok(rep.rows[0].sent, 'sent_lsn is visible to pg_monitor');
    // 3. it cannot write
    await assert.rejects(asUser('127.0.0.1', m.pgPort, 'pga_monitor', 'mon-pw-1', (cl) => cl.query('CREATE TABLE public.mon_t (x int)')), /permission denied/);
    await assert.rejects(asUser('127.0.0.1', m.pgPort, 'pga_monitor', 'mon-pw-1', (cl) => cl.query('CREATE DATABASE mon_db')), /permission denied/);
    // 4. loopback only: the unix socket is rejected by pg_hba (the network likewise, by the same rules)
    await assert.rejects(asUser(join(m.dir, 'run'), m.pgPort, 'pga_monitor', 'mon-pw-1', (cl) => cl.query('SELECT 1')), /pg_hba\.conf rejects connection .*"pga_monitor"/);

    // 5. declaring it in users is refused, and changes nothing
    replaceFile(m.dir, 'roles.json', roles([{ name: 'pga_monitor', options: ['LOGIN', 'SUPERUSER'] }]));
    await c.waitFor('the refusal logged', async () => c.grep(m0, 'users entry \\"pga_monitor\\" is a role the entrypoint manages').length > 0, 30_000, 200);
    assert.deepEqual(await role(), exact);
    replaceFile(m.dir, 'roles.json', roles([]));

    // 6. rights given by hand are taken back, and a rotated password is set (old one refused)
    await c.sql(m0, 'ALTER ROLE pga_monitor WITH CREATEDB CONNECTION LIMIT -1');
    await c.sql(m0, 'GRANT pg_write_all_data TO pga_monitor');
    const t0 = Date.now();
    replaceFile(m.dir, 'monitor-password', 'mon-pw-2\n');
    await c.waitFor('the new password logs in', async () => (await canLogin(m.pgPort, 'pga_monitor', 'mon-pw-2')) === true, 30_000, 100);
    fig(t, 'monitor_rotate_ms', Date.now() - t0);
    assert.match(String(await canLogin(m.pgPort, 'pga_monitor', 'mon-pw-1')), /password authentication failed/);
    await c.waitFor('the drift undone', async () => JSON.stringify(await role()) === JSON.stringify(exact), 30_000, 100);
    assert.ok(c.grep(m0, "pga_monitor (the exporter's role)").length > 0, 'the actions name the role and what it is for');

    assert.equal((await c.sql(m0, 'SELECT pg_postmaster_start_time()::text AS t'))[0].t, started, 'postgres was never restarted');
  } finally {
    await c.stop();
  }
});
