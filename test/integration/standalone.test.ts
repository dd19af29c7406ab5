// The image outside Kubernetes (issue 14): the entrypoint started as the image starts it
// (images/postgres/autopilot run, env only, no Kubernetes API, as the postgres OS user) against
// Debian's PostgreSQL binaries. Single postgres instances (a primary, and in the last test a
// replica of it); no kube-apiserver.
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { freePort } from './kube-harness.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const LAUNCHER = join(ROOT, 'images/postgres/autopilot');
const isRoot = process.getuid?.() === 0;
const ids = isRoot ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) } : null;
const BIN = execFileSync('sh', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1']).toString().trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'pga-standalone-'));
const own = (p: string) => { if (ids) chownSync(p, ids.uid, ids.gid); };
own(dir);
const running = new Set<ChildProcess>();
after(async () => {
  for (const p of running) p.kill('SIGKILL');
  await sleep(300);
  if (!process.env.PGA_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
});

function mk(path: string): string {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  own(path);
  return path;
}
function put(path: string, content: string | Buffer, mode = 0o644): void {
  writeFileSync(path, content, { mode });
  chmodSync(path, mode);
  own(path);
}

interface Instance {
  proc: ChildProcess;
  lines: string[];
  exit: Promise<{ code: number | null; ms: number }>;
  stderr: () => string;
}

/** `autopilot <args>` as the image runs it: only the given env (and PATH with PostgreSQL's bin). */
function launch(env: Record<string, string>, args = ['run']): Instance {
  const prefix = ids ? ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--'] : [];
  const full = { PATH: `${BIN}:/usr/bin:/bin`, AUTOPILOT_NODE: process.execPath, AUTOPILOT_HOME: ROOT, ...env };
  const proc = spawn(prefix[0] ?? '/bin/sh', [...prefix.slice(1), ...(prefix.length ? ['/bin/sh'] : []), LAUNCHER, ...args], { env: full, stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
  running.add(proc);
  const lines: string[] = [];
  let err = '';
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    const parts = (buf + d.toString()).split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts.filter((l) => l));
    if (process.env.PGA_TEST_VERBOSE === '1') process.stderr.write(d);
  });
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  let killedAt = 0;
  const origKill = proc.kill.bind(proc);
  proc.kill = (sig?: NodeJS.Signals | number) => { killedAt = Date.now(); return origKill(sig); };
  const exit = new Promise<{ code: number | null; ms: number }>((r) => proc.on('exit', (code) => { running.delete(proc); r({ code, ms: killedAt ? Date.now() - killedAt : 0 }); }));
  return { proc, lines, exit, stderr: () => err };
}

async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, inst?: Instance, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (inst && inst.proc.exitCode !== null) throw new Error(`exited (${inst.proc.exitCode}) while waiting for ${what}: ${inst.stderr()}\n${inst.lines.slice(-15).join('\n')}`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}\n${inst?.lines.slice(-15).join('\n') ?? ''}`);
    await sleep(200);
  }
}
const http = async (port: number, path: string) => {
  const { peerRequest } = await import('../../scripts/shell/peers.js');
  return peerRequest(`http://127.0.0.1:${port}${path}`, { method: 'GET', headers: {}, timeoutMs: 2000 });
};
async function query(port: number, user: string, password: string, database: string, sql: string): Promise<Record<string, unknown>[]> {
  const c = new pg.Client({ host: '127.0.0.1', port, user, password, database, connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined);
  await c.connect();
  try { return (await c.query(sql)).rows as Record<string, unknown>[]; } finally { await c.end().catch(() => undefined); }
}
const json = (inst: Instance) => inst.lines.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return null; } }).filter((x): x is Record<string, unknown> => !!x);

// Values with spaces and quotes, as the official image accepts them (PostgreSQL itself refuses a
// bootstrap superuser name with quotes, there as here).
const USER = 'my app user';
const DB = `my "db" 'x'`;
const PASSWORD = `pa ss'w"rd \\ $x`;

describe('standalone primary, the official image contract', () => {
  const base = mk(join(dir, 'primary'));
  const initdb = mk(join(base, 'initdb.d'));
  const secrets = mk(join(base, 'secrets'));
  put(join(secrets, 'pw'), PASSWORD + '\n', 0o600);
  put(join(secrets, 'user'), USER + '\n', 0o600);
  const env = (pgPort: number, apiPort: number): Record<string, string> => ({
    PGDATA: join(base, 'data'), PGA_RUN_DIR: join(base, 'run'), PGA_PG_PORT: String(pgPort), PGA_API_PORT: String(apiPort),
    PGA_INITDB_DIR: initdb, POSTGRES_USER_FILE: join(secrets, 'user'), POSTGRES_PASSWORD_FILE: join(secrets, 'pw'), POSTGRES_DB: DB,
    PGA_CONFIG_DIR: join(base, 'config'),
  });
  // one script of each kind; each records its name, so order and re-runs are visible
  // while the scripts run the server listens on its socket only (as the official image's temporary server)
  put(join(initdb, '05-tcp.sh'), `if pg_isready -q -h 127.0.0.1; then echo "TCP is open during init" >&2; exit 1; fi\npg_isready -q || { echo "the socket is not ready" >&2; exit 1; }\n`, 0o644);
  put(join(initdb, '10-schema.sql'), 'CREATE TABLE ran (n serial, script text, db text DEFAULT current_database());\nINSERT INTO ran (script) VALUES (\'10-schema.sql\');\n');
  put(join(initdb, '20-data.sql.gz'), gzipSync("INSERT INTO ran (script) VALUES ('20-data.sql.gz');\n"));
  put(join(initdb, '30-exec.sh'), '#!/bin/sh\nset -e\npsql -v ON_ERROR_STOP=1 -c "INSERT INTO ran (script) VALUES (\'30-exec.sh\')"\n', 0o755);
  put(join(initdb, '40-sourced.sh'), 'psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -c "INSERT INTO ran (script) VALUES (\'40-sourced.sh\')"\n', 0o644);
  put(join(initdb, 'README.txt'), 'not a script\n');
  let pgPort = 0, apiPort = 0;

  test('first start: initdb, the init scripts of each kind once in name order, health endpoints; SIGTERM is a fast clean stop', async () => {
    pgPort = await freePort(); apiPort = await freePort();
    const a = launch(env(pgPort, apiPort));
    await waitFor('ready', async () => (await http(apiPort, '/readyz')).status === 200, a);
    const first = json(a)[0]!;
    assert.equal(first.msg, 'mode selected');
    assert.equal(first.mode, 'standalone');
    assert.match(String(first.reason), /neither a ServiceAccount token/);
    assert.equal((await http(apiPort, '/healthz')).status, 200);
    assert.equal((await http(apiPort, '/primary')).status, 200);
    assert.equal((await http(apiPort, '/replica')).status, 503);
    const ready = launch({ PGA_API_URL: `http://127.0.0.1:${apiPort}` }, ['ready']);
    assert.equal((await ready.exit).code, 0, 'autopilot ready: the healthcheck command');
    const status = launch({ PGA_API_URL: `http://127.0.0.1:${apiPort}` }, ['status']);
    assert.equal((await status.exit).code, 0, status.stderr());
    assert.match(status.lines.join('\n'), /primary\s+yes/);
    const rows = await query(pgPort, USER, PASSWORD, DB, 'SELECT script, db FROM ran ORDER BY n');
    assert.deepEqual(rows.map((r) => r.script), ['10-schema.sql', '20-data.sql.gz', '30-exec.sh', '40-sourced.sh']);
    assert.ok(rows.every((r) => r.db === DB));
    assert.ok(json(a).some((l) => l.msg === 'init script ignored: accepted are *.sh, *.sql, *.sql.gz' && String(l.script).endsWith('README.txt')));
    assert.ok(json(a).some((l) => l.source === 'postgres'), 'postgres\' own lines are JSON log lines');
    await assert.rejects(query(pgPort, USER, 'wrong', DB, 'SELECT 1'), /password authentication failed/);
    a.proc.kill('SIGTERM');
    const { code, ms } = await a.exit;
    assert.equal(code, 0);
    console.log(`# SIGTERM to exit: ${ms} ms`);
    assert.ok(json(a).some((l) => String(l.msg).includes('database system is shut down')));
  });

  test('second start: the init scripts do not run again', async () => {
    const b = launch(env(pgPort, apiPort));
    await waitFor('ready', async () => (await http(apiPort, '/readyz')).status === 200, b);
    assert.ok(json(b).some((l) => String(l.msg).startsWith('the data directory is initialised: initdb and the init scripts are skipped')));
    assert.ok(!json(b).some((l) => l.msg === 'running init script'));
    assert.equal((await query(pgPort, USER, PASSWORD, DB, 'SELECT count(*)::int AS n FROM ran'))[0]!.n, 4);
    b.proc.kill('SIGTERM');
    assert.equal((await b.exit).code, 0);
  });
});

describe('refusals', () => {
  test('no password and no explicit trust on first start: refused as the official image does, nothing created', async () => {
    const base = mk(join(dir, 'nopw'));
    const r = launch({ PGDATA: join(base, 'data'), PGA_RUN_DIR: join(base, 'run'), PGA_PG_PORT: String(await freePort()), PGA_API_PORT: String(await freePort()), PGA_INITDB_DIR: join(base, 'none') });
    const { code } = await r.exit;
    assert.equal(code, 2);
    assert.match(r.stderr(), /Database is uninitialized and superuser password is not specified\.[\s\S]*POSTGRES_PASSWORD[\s\S]*POSTGRES_HOST_AUTH_METHOD=trust/);
    assert.equal(existsSync(join(base, 'data')), false);
  });

  test('POSTGRES_HOST_AUTH_METHOD=trust: no password needed, none asked', async () => {
    const base = mk(join(dir, 'trust'));
    const ports = { pg: await freePort(), api: await freePort() };
    const t = launch({ PGDATA: join(base, 'data'), PGA_RUN_DIR: join(base, 'run'), PGA_PG_PORT: String(ports.pg), PGA_API_PORT: String(ports.api), PGA_INITDB_DIR: join(base, 'none'), POSTGRES_HOST_AUTH_METHOD: 'trust', PGA_LOG_FORMAT: 'text' });
    await waitFor('ready', async () => (await http(ports.api, '/readyz')).status === 200, t);
    assert.deepEqual(await query(ports.pg, 'postgres', '', 'postgres', 'SELECT 1 AS one'), [{ one: 1 }]);
    assert.match(t.lines.find((l) => l.includes('POSTGRES_HOST_AUTH_METHOD=trust')) ?? '', /^\S+Z WARN /, 'plain text logs on request');
    t.proc.kill('SIGTERM');
    assert.equal((await t.exit).code, 0);
  });

  test('bad environment: every problem named with its fix, exit 2', async () => {
    const r = launch({ PGA_MODE: 'replica', PGA_RUN_DIR: join(dir, 'x') });
    assert.equal((await r.exit).code, 2);
    assert.match(r.stderr(), /PGA_MODE is "replica" but PGA_PRIMARY_HOST is not set\. Fix: set PGA_PRIMARY_HOST/);
    const k = launch({ PGA_MODE: 'kubernetes' });
    assert.equal((await k.exit).code, 2);
    assert.match(k.stderr(), /no ServiceAccount token is mounted at \/var\/run\/secrets\/kubernetes\.io\/serviceaccount\/token and KUBECONFIG is not set\. Fix:/);
    const base = mk(join(dir, 'badenv'));
    const b = launch({ PGDATA: join(base, 'data'), POSTGRES_PASSWORD: 'x', POSTGRES_HOST_AUTH_METHOD: 'ident', POSTGRES_INITDB_ARGS: '--pgdata=/elsewhere', PGA_LOOP_SECONDS: 'soon' });
    assert.equal((await b.exit).code, 2);
    assert.match(b.stderr(), /POSTGRES_HOST_AUTH_METHOD: got "ident"; accepted: scram-sha-256, md5, password, trust, reject/);
    assert.match(b.stderr(), /POSTGRES_INITDB_ARGS: "--pgdata=\/elsewhere" is set by the entrypoint/);
    assert.match(b.stderr(), /PGA_LOOP_SECONDS: got "soon"/);
  });

  test('a failing init script stops the first start; the next start refuses the incomplete directory', async () => {
    const base = mk(join(dir, 'failing'));
    const initdb = mk(join(base, 'initdb.d'));
    put(join(initdb, '01-bad.sql'), 'SELECT no_such_function();\n');
    const env = { PGDATA: join(base, 'data'), PGA_RUN_DIR: join(base, 'run'), PGA_PG_PORT: String(await freePort()), PGA_API_PORT: String(await freePort()), PGA_INITDB_DIR: initdb, POSTGRES_PASSWORD: 'x' };
    const a = launch(env);
    assert.equal((await a.exit).code, 1);
    assert.ok(json(a).some((l) => l.msg === 'start failed' && /no_such_function/.test(String(l.error))));
    const b = launch(env);
    assert.equal((await b.exit).code, 1);
    assert.ok(json(b).some((l) => l.msg === 'start failed' && /is incomplete: an earlier first start .* Fix: /.test(String(l.error))));
    assert.ok(existsSync(join(base, 'data', 'PG_VERSION')), 'nothing was removed');
  });
});

describe('static replica', () => {
  test('clones with progress logged, streams, follows the primary across its restart, promotes on command and stays a primary', async () => {
    const P = mk(join(dir, 'rp')), R = mk(join(dir, 'rr'));
    const pPorts = { pg: await freePort(), api: await freePort() }, rPorts = { pg: await freePort(), api: await freePort() };
    const common = { POSTGRES_USER: USER, PGA_REPLICATION_PASSWORD: 'repl pw', PGA_LOOP_SECONDS: '0.5' };
    const pEnv = { ...common, PGDATA: join(P, 'data'), PGA_RUN_DIR: join(P, 'run'), PGA_PG_PORT: String(pPorts.pg), PGA_API_PORT: String(pPorts.api), POSTGRES_PASSWORD: PASSWORD, PGA_INITDB_DIR: join(P, 'none') };
    const rEnv = { ...common, PGDATA: join(R, 'data'), PGA_RUN_DIR: join(R, 'run'), PGA_PG_PORT: String(rPorts.pg), PGA_API_PORT: String(rPorts.api), PGA_PRIMARY_HOST: '127.0.0.1', PGA_PRIMARY_PORT: String(pPorts.pg) };
    let p = launch(pEnv);
    await waitFor('primary ready', async () => (await http(pPorts.api, '/primary')).status === 200, p);
    await query(pPorts.pg, USER, PASSWORD, USER, "CREATE TABLE t (v text); INSERT INTO t VALUES ('before')");

    // a replica whose superuser is not the primary's fails fast, naming the fix
    const W = mk(join(dir, 'rw'));
    const w = launch({ ...rEnv, POSTGRES_USER: 'postgres', PGDATA: join(W, 'data'), PGA_RUN_DIR: join(W, 'run'), PGA_PG_PORT: String(await freePort()), PGA_API_PORT: String(await freePort()) });
    const wExit = await w.exit;
    assert.equal(wExit.code, 1);
    assert.ok(json(w).some((l) => l.msg === 'start failed' && /role "postgres" does not exist: .*Fix: set POSTGRES_USER/.test(String(l.error))), w.lines.slice(-5).join('\n'));

    // as if an earlier clone had been interrupted: its marker beside the data directory, a partial copy in it
    mk(join(R, 'data'));
    put(join(R, 'data', 'base-partial'), 'x');
    put(join(R, '.data.pga-incomplete'), `pg_basebackup ${new Date().toISOString()}\n`, 0o600);
    const r = launch(rEnv);
    await waitFor('replica streaming', async () => (await http(rPorts.api, '/replica')).status === 200, r);
    assert.equal(json(r)[0]!.mode, 'replica');
    assert.ok(json(r).some((l) => l.msg === 'pg_basebackup progress' && l.percent === 100), 'clone progress logged');
    assert.ok(json(r).some((l) => l.msg === 'an earlier clone did not finish: cloning again'));
    assert.equal(existsSync(join(R, 'data', 'base-partial')), false);
    assert.equal((await http(rPorts.api, '/readyz')).status, 200);
    assert.equal((await http(rPorts.api, '/primary')).status, 503);
    const read = async () => (await query(rPorts.pg, USER, PASSWORD, USER, 'SELECT v FROM t ORDER BY v')).map((x) => x.v).join(',');
    await waitFor('row on the replica', async () => (await read()) === 'before', r);
    await assert.rejects(query(rPorts.pg, USER, PASSWORD, USER, "INSERT INTO t VALUES ('no')"), /read-only transaction/);

    // the primary restarts: the replica reconnects by itself
    p.proc.kill('SIGTERM');
    assert.equal((await p.exit).code, 0);
    p = launch(pEnv);
    await waitFor('primary back', async () => (await http(pPorts.api, '/primary')).status === 200, p);
    await query(pPorts.pg, USER, PASSWORD, USER, "INSERT INTO t VALUES ('after')");
    await waitFor('row written after the restart on the replica', async () => (await read()) === 'after,before', r);
    await waitFor('streaming again', async () => (await http(rPorts.api, '/replica')).status === 200, r);

    // promote on command (the CLI in the same container: the generated API token from the run directory)
    const c = launch({ PGA_API_URL: `http://127.0.0.1:${rPorts.api}`, PGA_RUN_DIR: join(R, 'run') }, ['promote']);
    assert.equal((await c.exit).code, 0, c.stderr());
    assert.match(c.lines.join('\n'), /promoted: it accepts writes/);
    assert.equal((await http(rPorts.api, '/primary')).status, 200);
    await query(rPorts.pg, USER, PASSWORD, USER, "INSERT INTO t VALUES ('on the promoted')");
    const again = launch({ PGA_API_URL: `http://127.0.0.1:${rPorts.api}`, PGA_RUN_DIR: join(R, 'run') }, ['promote']);
    assert.equal((await again.exit).code, 1);
    assert.match(again.stderr(), /already a primary/);

    // restarted in replica mode, a promoted replica stays a primary (never demoted on a guess)
    r.proc.kill('SIGTERM');
    assert.equal((await r.exit).code, 0);
    const r2 = launch(rEnv);
    await waitFor('still a primary', async () => (await http(rPorts.api, '/primary')).status === 200, r2);
    assert.ok(json(r2).some((l) => String(l.msg).startsWith('this replica was promoted earlier')));
    r2.proc.kill('SIGTERM');
    p.proc.kill('SIGTERM');
    assert.equal((await r2.exit).code, 0);
    assert.equal((await p.exit).code, 0);
  });
});
