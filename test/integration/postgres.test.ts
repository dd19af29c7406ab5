// The PostgreSQL layer against real PostgreSQL binaries (Debian's, /usr/lib/postgresql/*/bin):
// bootstrap, clone, streaming, promotion, pg_rewind after a divergence, interrupted clones and
// half-initialized directories, crash restart by the supervisor. Sequential: each step builds on
// the previous one.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, readlinkSync, renameSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { parseLsn } from '../../scripts/core/lsn.js';
import { memberSlotName } from '../../scripts/core/render.js';
import { PASSWORDS, PgHarness, waitFor, type Member } from './pg-harness.js';
import { readControlData, readControlFile } from '../../scripts/shell/controldata.js';

const h = PgHarness.create();
let m0: Member, m1: Member, m2: Member;
const timings: Record<string, number> = {};

const dyn = (self: Member, primary: Member | null, sync = '') => ({
  primary: primary ? { host: '127.0.0.1', port: primary.port } : null,
  slotName: primary ? memberSlotName(self.name) : null,
  syncStandbyNames: sync,
  applicationName: self.name,
});

const bootstrapFiles = {
  'parameters.json': JSON.stringify({ shared_buffers: '16MB', max_connections: 40, log_min_messages: 'info', wal_keep_size: '64MB' }),
  'pg_hba.conf': '# user rule\nhost all reporter 10.99.0.0/16 reject\n',
  'bootstrap.json': JSON.stringify({
    initdb: { encoding: 'UTF8', locale: 'C.UTF-8', dataChecksums: true, args: [] },
    users: [
      { name: 'reporter', passwordKey: 'reporter-password', options: ['LOGIN', 'CONNECTION LIMIT 5'] },
      { name: 'nologin_role', options: ['NOLOGIN'] },
    ],
    databases: [{ name: 'reports', owner: 'reporter' }],
  }),
  'initdb.d/01-schema.sql': 'CREATE TABLE public.init_log (n int primary key, at timestamptz default now());\nINSERT INTO public.init_log VALUES (1);\n',
  'initdb.d/02-more.sql': '\\connect reports\nCREATE TABLE report (id int);\n',
};

async function rows(m: Member, sql: string): Promise<Record<string, unknown>[]> {
  return (await m.pg.query(sql)) as Record<string, unknown>[];
}

describe('postgres layer with real PostgreSQL', { timeout: 600_000 }, () => {
  before(async () => {
    m0 = await h.member('m0', { configFiles: bootstrapFiles, secretFiles: { 'reporter-password': 'rep-pw\n' } });
    // every member gets the same configuration, as from the chart's ConfigMap (a standby with a
    // lower max_connections than its primary would refuse to start)
    m1 = await h.member('m1', { configFiles: bootstrapFiles, secretFiles: { 'reporter-password': 'rep-pw\n' } });
    m2 = await h.member('m2', { configFiles: bootstrapFiles, secretFiles: { 'reporter-password': 'rep-pw\n' } });
  });

  after(async () => {
    await h.cleanup();
    assert.deepEqual(h.strayPids(), [], 'no postgres process survives the tests');
    assert.equal(existsSync(h.root), false, 'temp dir removed');
    process.stderr.write(`# timings (ms): ${JSON.stringify(timings)}\n`);
  });

  test('a fresh member: missing data dir, status says not running', async () => {
    assert.equal(await m0.pg.dataDirState(), 'missing');
    const s = await m0.pg.status();
    assert.equal(s.running, false);
    assert.equal(s.accepting, false);
    assert.ok(s.error);
    await assert.rejects(m0.pg.start(), /missing/);
  });

  test('initdb → start → bootstrapSql → status (primary, timeline 1)', async () => {
    let t = Date.now();
    await m0.pg.initdb();
    timings.initdb = Date.now() - t;
    // half-initialized until bootstrapSql finished
    assert.equal(await m0.pg.dataDirState(), 'partial');
    assert.equal(statSync(m0.cfg.dataDir).mode & 0o777, 0o700);
    assert.equal(await m0.pg.writeConfig(dyn(m0, null)), true);
    assert.equal(await m0.pg.writeConfig(dyn(m0, null)), false, 'unchanged config reports false');
    await m0.pg.setStandby(false);
    t = Date.now();
    await m0.pg.start();
    timings.start = Date.now() - t;
    t = Date.now();
    await m0.pg.bootstrapSql();
    timings.bootstrapSql = Date.now() - t;
    assert.equal(await m0.pg.dataDirState(), 'valid');

    const s = await m0.pg.status();
    assert.equal(s.running, true);
    assert.equal(s.accepting, true);
    assert.equal(s.inRecovery, false);
    assert.equal(s.timeline, 1);
    assert.ok(s.currentLsn && parseLsn(s.currentLsn) > 0n);
    assert.match(s.systemIdentifier ?? '', /^\d+$/);
    assert.equal(s.error, null);
    // our own polling during startup did not make postgres log "starting up" errors
    assert.equal(m0.lines.some((l) => l.includes('the database system is starting up')), false);

    // checksums on, user parameters applied, managed ones in place
    const [cs] = await rows(m0, 'SHOW data_checksums');
    assert.equal(cs?.data_checksums, 'on');
    const [sb] = await rows(m0, 'SHOW shared_buffers');
    assert.equal(sb?.shared_buffers, '16MB');
    const [mc] = await rows(m0, 'SHOW max_connections');
    assert.equal(mc?.max_connections, '40');
    const [wl] = await rows(m0, 'SHOW wal_level');
    assert.equal(wl?.wal_level, 'replica');
    const [enc] = await rows(m0, "SELECT pg_encoding_to_char(encoding) AS e, datcollate FROM pg_database WHERE datname = 'postgres'");
    assert.equal(enc?.e, 'UTF8');
    assert.equal(enc?.datcollate, 'C.UTF-8');

    // roles and databases, with scram passwords, reachable over TCP with the hba rules
    const roles = await rows(m0, "SELECT rolname, rolreplication, rolcanlogin, rolconnlimit, rolpassword LIKE 'SCRAM-SHA-256$%' AS scram FROM pg_authid ORDER BY rolname");
    const byName = Object.fromEntries(roles.map((r) => [r.rolname, r]));
    assert.equal(byName.replicator?.rolreplication, true);
    assert.equal(byName.replicator?.scram, true);
    assert.equal(byName.app?.rolcanlogin, true);
    assert.equal(byName.reporter?.rolconnlimit, 5);
    assert.equal(byName.nologin_role?.rolcanlogin, false);
    assert.equal(byName.postgres?.scram, true);
    const [appdb] = await rows(m0, "SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = 'app'");
    assert.equal(appdb?.owner, 'app');
    const [repdb] = await rows(m0, "SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = 'reports'");
    assert.equal(repdb?.owner, 'reporter');
    assert.deepEqual(await h.tcpQuery(m0, 'app', PASSWORDS.app, 'SELECT current_user AS u', 'app'), [{ u: 'app' }]);
    assert.deepEqual(await h.tcpQuery(m0, 'reporter', 'rep-pw', "SELECT to_regclass('public.report') IS NOT NULL AS ok", 'reports'), [{ ok: true }]);
    assert.deepEqual(await h.tcpQuery(m0, 'postgres', PASSWORDS.superuser, 'SELECT 1 AS one'), [{ one: 1 }]);
    await assert.rejects(h.tcpQuery(m0, 'app', 'wrong', 'SELECT 1', 'app'), /password authentication failed/);
    // the replication role cannot open normal sessions to data it does not own? It can log in
    // (LOGIN) but a non-replication role cannot open a replication connection: checked by hba.
    const hba = readFileSync(`${m0.cfg.dataDir}/pg_hba.conf`, 'utf8');
    assert.match(hba, /host all reporter 10\.99\.0\.0\/16 reject/);

    // init scripts ran once, in order
    assert.deepEqual(await rows(m0, 'SELECT n FROM init_log'), [{ n: 1 }]);
    await m0.pg.bootstrapSql(); // re-run: idempotent, scripts not repeated
    assert.deepEqual(await rows(m0, 'SELECT n FROM init_log'), [{ n: 1 }]);

    // postgres' own lines reached the logger as JSON objects
    const pgLines = m0.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((o) => o.source === 'postgres');
    assert.ok(pgLines.some((o) => /database system is ready to accept connections/.test(String(o.msg))), 'postgres startup line logged as JSON');
    assert.ok(pgLines.every((o) => typeof o.ts === 'string' && typeof o.level === 'string'));
  });

  test('no secret in postgresql.conf; passfile is 0600', async () => {
    const conf = readFileSync(`${m0.cfg.dataDir}/postgresql.conf`, 'utf8');
    for (const pw of Object.values(PASSWORDS)) assert.equal(conf.includes(pw), false, `postgresql.conf must not contain ${pw}`);
    const pass = `${m0.cfg.runDir}/.pga-pgpass`;
    assert.equal(statSync(pass).mode & 0o777, 0o600);
  });

  test('status() keeps answering while every connection slot is taken by other clients', async () => {
    assert.equal((await m0.pg.status()).accepting, true);
    const { default: pg } = await import('pg');
    const [mc] = await rows(m0, 'SHOW max_connections');
    const max = Number(mc?.max_connections);
    const clients: InstanceType<typeof pg.Client>[] = [];
    let refused: Error | null = null;
    try {
      // the superuser may use the reserved slots too: open connections until postgres says no
      for (let i = 0; i <= max && !refused; i++) {
        const c = new pg.Client({ host: '127.0.0.1', port: m0.port, user: 'postgres', password: PASSWORDS.superuser, database: 'postgres', connectionTimeoutMillis: 5000 });
        c.on('error', () => undefined);
        try {
          await c.connect();
          clients.push(c);
        } catch (e) {
          refused = e as Error;
        }
      }
      assert.match(refused?.message ?? 'no refusal', /too many clients/, 'every slot is taken');
      assert.ok(clients.length >= max - 2, `${clients.length} of ${max} slots held by the clients`);
      for (let i = 0; i < 5; i++) {
        const t = Date.now();
        const s = await m0.pg.status();
        assert.equal(s.accepting, true, `status ${i}: ${s.error}`);
        assert.equal(s.inRecovery, false);
        assert.equal(s.error, null);
        assert.ok(Date.now() - t < 1000, 'answers at once');
        await new Promise((r) => setTimeout(r, 200));
      }
      // the session lost while every slot is taken: status() says so, at once, and never throws
      const [killer] = clients;
      await killer!.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pg-autopilot'");
      await waitFor('session gone', async () => (await killer!.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pg-autopilot'")).rows[0].n === 0);
      const extra = new pg.Client({ host: '127.0.0.1', port: m0.port, user: 'postgres', password: PASSWORDS.superuser, database: 'postgres' });
      extra.on('error', () => undefined);
      await extra.connect(); // takes the slot the session had
      clients.push(extra);
      const t = Date.now();
      const lost = await m0.pg.status();
      assert.equal(lost.running, true);
      assert.equal(lost.accepting, false);
      assert.equal(lost.inRecovery, null);
      assert.match(lost.error ?? '', /cannot connect to the local postgres: .*too many clients/);
      assert.ok(Date.now() - t < 2500, `bounded: ${Date.now() - t} ms`);
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    }
    const back = await waitFor('status answers again', async () => {
      const s = await m0.pg.status();
      return s.accepting ? s : null;
    });
    assert.equal(back.inRecovery, false);
  });

  test('clone: pg_basebackup from the primary → standby streaming through its slot', async () => {
    await m0.pg.ensureSlots([memberSlotName(m1.name)]);
    await m0.pg.ensureSlots([memberSlotName(m1.name)]); // idempotent
    const progress: number[] = [];
    let t = Date.now();
    await m1.pg.basebackup({ host: '127.0.0.1', port: m0.port }, (p) => progress.push(p));
    timings.basebackup = Date.now() - t;
    assert.equal(progress.at(-1), 100, `progress reported up to 100%: ${progress.join(',')}`);
    assert.equal(await m1.pg.dataDirState(), 'valid');
    await m1.pg.writeConfig(dyn(m1, m0));
    await m1.pg.setStandby(true);
    t = Date.now();
    await m1.pg.start();
    const st = await waitFor('m1 streaming', async () => {
      const s = await m1.pg.status();
      return s.streaming ? s : null;
    });
    timings.standbyStartToStreaming = Date.now() - t;
    assert.equal(st.inRecovery, true);
    assert.equal(st.timeline, 1);
    assert.equal(st.upstreamHost, '127.0.0.1');
    assert.ok(st.receivedLsn && st.replayedLsn);
    assert.equal(st.currentLsn, null);
    assert.equal(st.systemIdentifier, (await m0.pg.status()).systemIdentifier);

    const ps = await waitFor('m0 sees m1', async () => {
      const s = await m0.pg.status();
      return s.replicas.find((r) => r.applicationName === 'm1' && r.state === 'streaming') ? s : null;
    });
    const rep = ps.replicas.find((r) => r.applicationName === 'm1');
    assert.equal(rep?.syncState, 'async');
    assert.deepEqual(ps.slots, [{ name: memberSlotName('m1'), active: true, walStatus: 'reserved' }], 'the primary reports its slots');
    assert.deepEqual(st.slots, [], 'a replica reports none');
    const [slot] = await rows(m0, `SELECT active FROM pg_replication_slots WHERE slot_name = '${memberSlotName('m1')}'`);
    assert.equal(slot?.active, true, 'standby streams through its slot');

    // a write on the primary is replayed on the standby
    await m0.pg.query('CREATE TABLE t (id int primary key, v text)');
    await m0.pg.query("INSERT INTO t SELECT g, 'before' FROM generate_series(1, 1000) g");
    const target = (await m0.pg.status()).currentLsn as string;
    await waitFor('m1 replayed', async () => {
      const s = await m1.pg.status();
      return s.replayedLsn && parseLsn(s.replayedLsn) >= parseLsn(target);
    });
    assert.deepEqual(await rows(m1, 'SELECT count(*)::int AS n FROM t'), [{ n: 1000 }]);
    await assert.rejects(m1.pg.query('INSERT INTO t VALUES (0, \'x\')'), /read-only/);
  });

  test('synchronous_standby_names via writeConfig + reload', async () => {
    assert.equal(await m0.pg.writeConfig(dyn(m0, null, 'ANY 1 ("m1")')), true);
    await m0.pg.reload();
    await waitFor('m1 sync', async () => {
      const s = await m0.pg.status();
      return s.replicas.find((r) => r.applicationName === 'm1' && r.syncState === 'quorum');
    });
    await m0.pg.query("INSERT INTO t VALUES (1001, 'sync')"); // commits only with m1's ack
    await m0.pg.writeConfig(dyn(m0, null, ''));
    await m0.pg.reload();
    await waitFor('m1 async again', async () => {
      const s = await m0.pg.status();
      return s.replicas.find((r) => r.applicationName === 'm1' && r.syncState === 'async');
    });
  });

  test('promote the standby (timeline 2); the old primary diverges; pg_rewind brings it back as a standby', async () => {
    // split brain on purpose: m1 is promoted while m0 still accepts writes
    let t = Date.now();
    await m1.pg.promote();
    timings.promote = Date.now() - t;
    const s1 = await m1.pg.status();
    assert.equal(s1.inRecovery, false);
    assert.equal(s1.timeline, 2);
    assert.equal(existsSync(`${m1.cfg.dataDir}/standby.signal`), false);
    await m1.pg.writeConfig(dyn(m1, null));
    await m1.pg.query("INSERT INTO t VALUES (2001, 'on m1 after promotion')");
    await m0.pg.query("INSERT INTO t SELECT g, 'lost on m0' FROM generate_series(3001, 3500) g");
    await m0.pg.checkpoint();

    await m1.pg.ensureSlots([memberSlotName(m0.name)]);
    // as a demoting primary does: immediate stop (no shutdown checkpoint); pg_rewind has to run
    // crash recovery on it first
    await m0.pg.stop('immediate');
    assert.equal(m0.pg.isRunning(), false);
    await m0.pg.writeConfig(dyn(m0, m1));
    t = Date.now();
    assert.deepEqual(await m0.pg.rewind({ host: '127.0.0.1', port: m1.port }), { outcome: 'done' });
    timings.rewind = Date.now() - t;
    assert.equal(await m0.pg.dataDirState(), 'valid');
    // our configuration is back (pg_rewind copies the source's files)
    assert.match(readFileSync(`${m0.cfg.dataDir}/postgresql.conf`, 'utf8'), new RegExp(`port=${m1.port}`));
    await m0.pg.setStandby(true);
    await m0.pg.start();
    const s0 = await waitFor('m0 streams from m1', async () => {
      const s = await m0.pg.status();
      return s.streaming && s.timeline === 2 ? s : null;
    });
    assert.equal(s0.inRecovery, true);
    const target = (await m1.pg.status()).currentLsn as string;
    await waitFor('m0 replayed', async () => {
      const s = await m0.pg.status();
      return s.replayedLsn && parseLsn(s.replayedLsn) >= parseLsn(target);
    });
    assert.deepEqual(await rows(m0, "SELECT count(*)::int AS n FROM t WHERE v = 'lost on m0'"), [{ n: 0 }], 'the diverged writes are gone');
    assert.deepEqual(await rows(m0, 'SELECT v FROM t WHERE id = 2001'), [{ v: 'on m1 after promotion' }]);
  });

  test('rewind against a closed port is "unreachable", leaving the directory untouched', async () => {
    await m2.pg.basebackup({ host: '127.0.0.1', port: m1.port });
    await m2.pg.writeConfig(dyn(m2, m1));
    const before = readFileSync(`${m2.cfg.dataDir}/global/pg_control`);
    const dead = await (await import('./pg-harness.js')).freePort();
    const r = await m2.pg.rewind({ host: '127.0.0.1', port: dead });
    assert.equal(r.outcome, 'unreachable', JSON.stringify(r));
    assert.match(r.outcome === 'unreachable' ? r.detail : '', /ECONNREFUSED|connect/);
    assert.equal(await m2.pg.dataDirState(), 'valid', 'nothing was changed: still valid');
    assert.deepEqual(readFileSync(`${m2.cfg.dataDir}/global/pg_control`), before);
  });

  test('rewind against a reachable source of another cluster (different system identifier) is "failed"', async () => {
    const other = await h.member('other', { configFiles: bootstrapFiles, secretFiles: { 'reporter-password': 'rep-pw\n' } });
    await other.pg.initdb();
    await other.pg.writeConfig(dyn(other, null));
    await other.pg.start();
    await other.pg.bootstrapSql();
    assert.notEqual((await other.pg.status()).systemIdentifier, (await m1.pg.status()).systemIdentifier);
    const r = await m2.pg.rewind({ host: '127.0.0.1', port: other.port });
    assert.equal(r.outcome, 'failed', JSON.stringify(r));
    assert.match(r.outcome === 'failed' ? r.detail : '', /different systems/);
    await other.pg.stop('fast');
    await m2.pg.wipe();
    assert.equal(await m2.pg.dataDirState(), 'empty');
  });

  test('an interrupted clone leaves a partial directory that is never started, then is redone', async () => {
    // enough data that pg_basebackup reports progress before it finishes
    await m1.pg.query("CREATE TABLE bulk AS SELECT g AS id, repeat('x', 500) AS pad FROM generate_series(1, 120000) g");
    await m1.pg.checkpoint();
    let killed = false;
    const p = m2.pg.basebackup({ host: '127.0.0.1', port: m1.port });
    // kill pg_basebackup (and its WAL-streaming child) as soon as it has copied something
    await waitFor(
      'pg_basebackup copying',
      async () => {
        const pids = h.strayPids().filter((pid) => {
          try {
            const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
            return cmd.includes('pg_basebackup') && cmd.includes(m2.cfg.dataDir);
          } catch {
            return false;
          }
        });
        if (!pids.length || !existsSync(`${m2.cfg.dataDir}/base`)) return false;
        for (const pid of pids) process.kill(pid, 'SIGKILL');
        killed = true;
        return true;
      },
      30_000,
      5,
    );
    await assert.rejects(p, /pg_basebackup failed/);
    assert.equal(killed, true, 'pg_basebackup was killed mid-copy');
    const entries = readdirSync(m2.cfg.dataDir);
    assert.ok(entries.length > 0, 'some files were copied');
    assert.equal(await m2.pg.dataDirState(), 'partial');
    await assert.rejects(m2.pg.start(), /partial/);
    await assert.rejects(m2.pg.basebackup({ host: '127.0.0.1', port: m1.port }), /wipe it first/);
    await m2.pg.wipe();
    assert.equal(await m2.pg.dataDirState(), 'empty');
    await m2.pg.basebackup({ host: '127.0.0.1', port: m1.port });
    assert.equal(await m2.pg.dataDirState(), 'valid');
    await m2.pg.wipe();
  });

  test('half-initialized directories are partial: initdb without bootstrap, files without pg_control', async () => {
    await m2.pg.initdb();
    assert.equal(await m2.pg.dataDirState(), 'partial', 'initdb done, bootstrap not');
    await m2.pg.wipe();
    // a directory that looks like a data dir but has no pg_control (a torn copy)
    mkdirSync(m2.cfg.dataDir, { recursive: true });
    writeFileSync(`${m2.cfg.dataDir}/PG_VERSION`, '15\n');
    assert.equal(await m2.pg.dataDirState(), 'partial');
    await assert.rejects(m2.pg.initdb(), /wipe it first/);
    await m2.pg.wipe();
    assert.equal(await m2.pg.dataDirState(), 'empty');
  });

  test('SIGKILL of postgres: the supervisor restarts it with backoff and reports the crash', async () => {
    const exits: { code: number | null; signal: string | null }[] = [];
    m1.pg.onExit((code, signal) => exits.push({ code, signal }));
    const pid = m1.pg.pid();
    assert.ok(pid);
    const t = Date.now();
    process.kill(pid, 'SIGKILL');
    const s = await waitFor(
      'm1 back',
      async () => {
        const st = await m1.pg.status();
        return st.accepting && m1.pg.pid() !== pid ? st : null;
      },
      60_000,
    );
    timings.crashToAccepting = Date.now() - t;
    assert.deepEqual(exits[0], { code: null, signal: 'SIGKILL' });
    assert.ok(m1.pg.restarts() >= 1);
    assert.equal(s.inRecovery, false, 'still the primary after crash recovery');
    assert.deepEqual(await rows(m1, 'SELECT count(*)::int AS n FROM t WHERE id = 2001'), [{ n: 1 }]);
    // the standby reconnects by itself
    await waitFor('m0 streaming again', async () => (await m0.pg.status()).streaming, 60_000);

    // crashes in quick succession: the restart delay doubles (0.2 s, 0.4 s, 0.8 s …)
    const mark = m1.lines.length;
    let victim = m1.pg.pid() as number;
    for (let i = 0; i < 3; i++) {
      process.kill(victim, 'SIGKILL');
      victim = await waitFor(`restart ${i + 1}`, async () => {
        const p = m1.pg.pid();
        return p && p !== victim ? p : null;
      }, 30_000, 5);
    }
    await waitFor('m1 accepting after repeated crashes', async () => (await m1.pg.status()).accepting, 60_000);
    const delays = m1.lines
      .slice(mark)
      .map((l) => JSON.parse(l) as { msg: string; delayMs?: number })
      .filter((o) => o.msg === 'restarting postgres')
      .map((o) => o.delayMs);
    assert.deepEqual(delays, [400, 800, 1600], 'backoff doubles while the crashes keep coming (the first crash above used 200)');
  });

  test('no automatic restart when turned off; stop modes wait for the exit', async () => {
    m0.pg.setAutoRestart(false);
    const exits: string[] = [];
    m0.pg.onExit((_c, sig) => exits.push(String(sig)));
    const pid = m0.pg.pid();
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await waitFor('m0 down', async () => !m0.pg.isRunning());
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(m0.pg.isRunning(), false);
    assert.deepEqual(exits, ['SIGKILL']);
    m0.pg.setAutoRestart(true);
    await m0.pg.start(); // crash recovery of a standby, then streaming again
    await waitFor('m0 streaming', async () => (await m0.pg.status()).streaming, 60_000);
    await m0.pg.stop('smart');
    assert.equal(m0.pg.isRunning(), false);
    assert.equal((await m0.pg.status()).running, false);
  });

  test('pg_control read from the file agrees with pg_controldata; the shutdown checkpoint it shows during a fast stop is the final one', async () => {
    // m1 is the primary (promoted above): in production while it runs
    const running = await readControlFile(m1.cfg.dataDir);
    assert.ok(!(running instanceof Error), String(running));
    assert.equal(running.shutDown, false);
    const sysid = (await m1.pg.status()).systemIdentifier;
    assert.equal(running.systemId, sysid);
    await m1.pg.query("INSERT INTO t SELECT g, 'before the stop' FROM generate_series(5001, 5200) g");
    // read it as the hand-off does, every few milliseconds while postgres stops
    const seen: { shutDown: boolean; lsn: bigint }[] = [];
    let stopped = false;
    const stop = m1.pg.stop('fast').then(() => { stopped = true; });
    while (!stopped) {
      const cf = await readControlFile(m1.cfg.dataDir);
      if (!(cf instanceof Error)) seen.push({ shutDown: cf.shutDown, lsn: cf.checkpointLsn });
      await new Promise((r) => setTimeout(r, 2));
    }
    await stop;
    const cd = await readControlData(m1.cfg.binDir, m1.cfg.dataDir);
    assert.equal(cd.state, 'shut down');
    const file = await readControlFile(m1.cfg.dataDir);
    assert.ok(!(file instanceof Error), String(file));
    assert.equal(file.shutDown, true);
    assert.equal(file.checkpointLsn, parseLsn(cd.checkpointLsn!));
    assert.equal(file.systemId, cd.systemId);
    const early = seen.filter((x) => x.shutDown);
    timings.controlFileReadsDuringStop = seen.length;
    timings.controlFileShutDownBeforeExit = early.length;
    // every sighting of "shut down" before the exit names the checkpoint pg_controldata reports after it
    for (const x of early) assert.equal(x.lsn, file.checkpointLsn);
    await m1.pg.start();
    assert.equal((await m1.pg.status()).inRecovery, false);
  });

  test('separate WAL directory (PGA_WAL_DIR): clone with --waldir, stream, wipe both, dangling pg_wal is partial', async () => {
    const m5 = await h.member('m5', { configFiles: bootstrapFiles, secretFiles: { 'reporter-password': 'rep-pw\n' }, env: { PGA_WAL_DIR: `${h.root}/m5/wal/pg_wal` } });
    const walDir = m5.cfg.walDir as string;
    await m1.pg.ensureSlots([memberSlotName(m5.name)]);
    await m5.pg.basebackup({ host: '127.0.0.1', port: m1.port });
    assert.equal(readlinkSync(`${m5.cfg.dataDir}/pg_wal`), walDir);
    assert.ok(readdirSync(walDir).some((f) => /^[0-9A-F]{24}$/.test(f)), 'WAL segments live in the WAL directory');
    await m5.pg.writeConfig(dyn(m5, m1));
    await m5.pg.setStandby(true);
    await m5.pg.start();
    await waitFor('m5 streaming', async () => (await m5.pg.status()).streaming, 60_000);
    await m5.pg.stop('fast');
    // the WAL volume lost (e.g. a fresh PVC): the data directory must not be started
    renameSync(walDir, `${walDir}.moved`);
    assert.equal(await m5.pg.dataDirState(), 'partial');
    renameSync(`${walDir}.moved`, walDir);
    assert.equal(await m5.pg.dataDirState(), 'valid');
    await m5.pg.wipe();
    assert.equal(await m5.pg.dataDirState(), 'empty');
    assert.deepEqual(readdirSync(walDir), [], 'WAL directory emptied too');
  });

  test('TLS: ssl on with a world-readable mounted key (a private copy is used), network rules hostssl only; initdb --waldir', async () => {
    const tlsDir = `${h.root}/tls`;
    mkdirSync(tlsDir, { recursive: true });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', `${tlsDir}/tls.key`, '-out', `${tlsDir}/tls.crt`], { stdio: 'ignore' });
    chmodSync(`${tlsDir}/tls.key`, 0o644); // as a careless mount would present it
    chmodSync(tlsDir, 0o755);
    // (with a separate WAL directory too: initdb --waldir)
    const m3 = await h.member('m3', { env: { PGA_TLS_CERT_FILE: `${tlsDir}/tls.crt`, PGA_TLS_KEY_FILE: `${tlsDir}/tls.key`, PGA_WAL_DIR: `${h.root}/m3/wal/pg_wal` } });
    await m3.pg.initdb();
    assert.equal(readlinkSync(`${m3.cfg.dataDir}/pg_wal`), `${h.root}/m3/wal/pg_wal`);
    await m3.pg.writeConfig(dyn(m3, null));
    assert.equal(statSync(`${m3.cfg.runDir}/.pga-tls.key`).mode & 0o777, 0o600);
    await m3.pg.start();
    await m3.pg.bootstrapSql();
    const { default: pg } = await import('pg');
    const c = new pg.Client({ host: '127.0.0.1', port: m3.port, user: 'app', password: PASSWORDS.app, database: 'app', ssl: { rejectUnauthorized: false } });
    await c.connect();
    const r = await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    await c.end();
    assert.deepEqual(r.rows, [{ ssl: true }]);
    await assert.rejects(h.tcpQuery(m3, 'app', PASSWORDS.app, 'SELECT 1', 'app'), /no pg_hba.conf entry/);
    await m3.pg.stop('fast');
  });

  test('a frozen postgres: status() gives up within its bounds, never throws, and answers again once thawed', async () => {
    assert.equal((await m1.pg.status()).accepting, true);
    const pm = m1.pg.pid() as number;
    const tree = [pm, ...execFileSync('ps', ['-o', 'pid=', '--ppid', String(pm)]).toString().trim().split(/\s+/).map(Number)];
    const signal = (sig: NodeJS.Signals) => tree.forEach((p) => { try { process.kill(p, sig); } catch { /* exited */ } });
    signal('SIGSTOP');
    try {
      let t = Date.now();
      const a = await m1.pg.status();
      const first = Date.now() - t;
      assert.equal(a.accepting, false);
      assert.equal(a.inRecovery, null);
      assert.match(a.error ?? '', /timeout/i);
      assert.ok(first < 4500, `the question on the open session gives up after its timeout: ${first} ms`);
      t = Date.now();
      const b = await m1.pg.status();
      const second = Date.now() - t;
      assert.equal(b.accepting, false);
      assert.match(b.error ?? '', /cannot connect to the local postgres/);
      assert.ok(second < 2500, `one bounded reconnection attempt: ${second} ms`);
      timings.frozenStatus = first;
      timings.frozenReconnect = second;
    } finally {
      signal('SIGCONT');
    }
    const back = await waitFor('m1 answers again', async () => {
      const s = await m1.pg.status();
      return s.accepting ? s : null;
    });
    assert.equal(back.inRecovery, false);
  });

  test('slots: dropSlotsExcept drops inactive slots of gone members only', async () => {
    await m1.pg.ensureSlots(['gone_member', memberSlotName('m0'), memberSlotName('m2')]);
    await m1.pg.dropSlotsExcept([memberSlotName('m0'), memberSlotName('m2')]);
    const names = (await rows(m1, 'SELECT slot_name FROM pg_replication_slots ORDER BY 1')).map((r) => r.slot_name);
    assert.deepEqual(names, [memberSlotName('m0'), memberSlotName('m2')]);
    await assert.rejects(m1.pg.ensureSlots(['Bad-Name']), /invalid replication slot name/);
  });
});
