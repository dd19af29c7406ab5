// Helpers the backup integration tests share: pgbackrest as the members run it, and a PITR
// restore of the repository into a scratch directory, started on its own port, read back.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep, type Cluster } from './cluster-harness.js';
import { freePort } from './kube-harness.js';
import { asPostgres, isRoot } from './scenario.js';

export const PGBIN = '/usr/lib/postgresql/15/bin';

/** Run a program as the postgres OS user (as the members do). */
export const run = (cmd: string[], timeout = 300_000) => { const a = asPostgres(cmd); return spawnSync(a[0]!, a.slice(1), { encoding: 'utf8', timeout }); };

/** pgbackrest with a member's own configuration and the stanza. */
export const pgbr = (c: Cluster, name: string, stanza: string) => { const d = c.member(name).dir; return ['pgbackrest', `--config=${join(d, 'run/pgbackrest/pgbackrest.conf')}`, `--config-include-path=${join(d, 'run/pgbackrest/conf.d')}`, `--stanza=${stanza}`]; };

/** Restore the repository into a fresh directory with pgBackRest (as a user would), start it on its own port, return the ids of table t. */
export async function restoreAndCount(c: Cluster, via: string, stanza: string, target: string[]): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), 'pga-restore-'));
  chmodSync(dir, 0o755);
  const pgdata = join(dir, 'pgdata');
  if (isRoot) execFileSync('chown', ['postgres:postgres', dir]);
  const r = run([...pgbr(c, via, stanza), `--pg1-path=${pgdata}`, '--target-action=promote', ...target, 'restore']);
  assert.equal(r.status, 0, `pgbackrest restore failed: ${r.stderr}${r.stdout}`);
  const port = await freePort();
  const sock = join(dir, 'sock');
  run(['mkdir', '-p', sock]);
  // A restored copy never archives into the repository it came from.
  const opts = `-c port=${port} -c listen_addresses='' -c unix_socket_directories=${sock} -c archive_mode=off -c primary_conninfo='' -c synchronous_standby_names=''`;
  const start = run([`${PGBIN}/pg_ctl`, '-D', pgdata, '-w', '-t', '120', '-o', opts, '-l', join(dir, 'pg.log'), 'start']);
  assert.equal(start.status, 0, `restored postgres did not start: ${start.stderr}`);
  try {
    const psql = (sql: string) => { const r = run([`${PGBIN}/psql`, '-h', sock, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-Atc', sql], 30_000); if (r.status !== 0) throw new Error(`psql: ${r.stderr}`); return r.stdout.trim(); };
    // wait for the end of recovery (target-action=promote)
    for (let i = 0; i < 240 && psql('select pg_is_in_recovery()') === 't'; i++) await sleep(250);
    return psql('select id from t order by id').split('\n').filter(Boolean).map(Number);
  } finally {
    run([`${PGBIN}/pg_ctl`, '-D', pgdata, '-m', 'immediate', 'stop'], 60_000);
    if (!process.env.PGA_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
  }
}
