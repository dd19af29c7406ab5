// replication.bootstrapFrom: how a member with an empty data directory gets its data (core/clone.ts),
// as a table through decide(): restore from the repository only on evidence it can work, otherwise
// (or once a restore failed here) pg_basebackup, each with its reason; and the memory of a failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { remember, initialMemory } from '../../scripts/core/memory.js';
import type { Action } from '../../scripts/core/types.js';
import type { ReplicaSourceView } from '../../scripts/core/clone.js';
import { lease, pgDown, obs, decide } from './fixtures.js';
import { ConfigError, loadConfig } from '../../scripts/core/config.js';
import { memFiles } from './mem-files.js';

const SYS = '7300000000000000001';
const fromBackup = (repo?: ReplicaSourceView['repo']): ReplicaSourceView => ({ from: 'backup', ...(repo ? { repo } : {}) });
const empty = (replicaSource: ReplicaSourceView | undefined, over: Parameters<typeof obs>[1] = {}) =>
  obs('m1', { pg: pgDown, dataDir: 'empty', lease: lease({ systemId: SYS }), ...(replicaSource ? { replicaSource } : {}), ...over });

interface Row { name: string; c: ReturnType<typeof obs>; method: 'basebackup' | 'restore' | null; reason: RegExp }
const rows: Row[] = [
  { name: 'no replicaSource (simulation, older shells): pg_basebackup', c: empty(undefined), method: 'basebackup', reason: /^empty data directory: cloning from m0$/ },
  { name: 'bootstrapFrom basebackup: pg_basebackup', c: empty({ from: 'basebackup' }), method: 'basebackup', reason: /cloning from m0/ },
  { name: 'backup, a backup of this cluster: restore', c: empty(fromBackup({ ok: true, backups: 2, systemIds: [SYS] })), method: 'restore', reason: /restoring the latest of 2 backup\(s\) from the repository as a standby, then streaming from m0/ },
  { name: 'backup, repository not read yet: wait', c: empty(fromBackup()), method: null, reason: /reading the backup repository/ },
  { name: 'backup, repository unreadable: pg_basebackup with the error', c: empty(fromBackup({ ok: false, error: 'S3 connection refused' })), method: 'basebackup', reason: /cannot be read \(S3 connection refused\): cloning from m0 with pg_basebackup/ },
  { name: 'backup, no backup yet: pg_basebackup', c: empty(fromBackup({ ok: true, backups: 0, systemIds: [] })), method: 'basebackup', reason: /holds no backup of this cluster yet: cloning from m0 with pg_basebackup/ },
  { name: 'backup, the backups are of another cluster: pg_basebackup, never a foreign restore', c: empty(fromBackup({ ok: true, backups: 1, systemIds: ['123'] })), method: 'basebackup', reason: /another cluster \(system identifier 123, ours 7300000000000000001\)/ },
  { name: 'backup, the lease records no system identifier: pg_basebackup', c: empty(fromBackup({ ok: true, backups: 1, systemIds: [SYS] }), { lease: lease({ systemId: null }) }), method: 'basebackup', reason: /no system identifier/ },
  { name: 'backup, a restore failed here before: pg_basebackup, not again', c: empty(fromBackup({ ok: true, backups: 1, systemIds: [SYS] }), { mem: { restoreFailed: 'pgbackrest exited 56' } }), method: 'basebackup', reason: /restore from the backup repository failed on this member \(pgbackrest exited 56\); not trying it again/ },
  { name: 'backup, half-restored directory: wipe it first (not a clone)', c: empty(fromBackup({ ok: true, backups: 1, systemIds: [SYS] }), { dataDir: 'partial', mem: { restoreFailed: 'x' } }), method: null, reason: /half-made/ },
  { name: 'backup, no healthy primary: wait, whatever the repository holds', c: empty(fromBackup({ ok: true, backups: 1, systemIds: [SYS] }), { lease: lease({ holder: null, systemId: SYS }) }), method: null, reason: /./ },
];

for (const r of rows) {
  test(`clone: ${r.name}`, () => {
    const d = decide(r.c);
    const clone = d.actions.find((a): a is Extract<Action, { type: 'clone' }> => a.type === 'clone');
    assert.equal(clone?.method ?? null, r.method, `${d.reason} ${JSON.stringify(d.actions)}`);
    assert.match(d.reason, r.reason);
    if (clone) assert.equal(clone.why, d.reason, 'the action carries the reason the shell shows in /status');
    if (r.method === null && r.reason.source === 'half-made') assert.deepEqual(d.actions.map((a) => a.type), ['wipe']);
  });
}

test('clone: a failed restore is remembered (first line, bounded) and never cleared by the wipe that follows', () => {
  let m = remember(initialMemory(), { type: 'restore_failed', detail: 'pgbackrest: [056]: unable to find a valid repository\nmore detail' }, 'm1');
  assert.equal(m.restoreFailed, 'pgbackrest: [056]: unable to find a valid repository');
  m = remember(m, { type: 'wiped' }, 'm1');
  assert.notEqual(m.restoreFailed, null, 'the wipe of the half-restored directory must not reset it: that would be a loop of failing restores');
  m = remember(m, { type: 'restore_failed', detail: 'x'.repeat(1000) }, 'm1');
  assert.equal(m.restoreFailed!.length, 300);
});

test('clone: restore → fails → wipe → pg_basebackup, each step decided by the core', () => {
  const repo = { ok: true as const, backups: 1, systemIds: [SYS] };
  const first = decide(empty(fromBackup(repo)));
  assert.equal((first.actions[0] as Extract<Action, { type: 'clone' }>).method, 'restore');
  const failed = remember(first.memory, { type: 'restore_failed', detail: 'boom' }, 'm1');
  const wipe = decide(empty(fromBackup(repo), { dataDir: 'partial', mem: failed }));
  assert.deepEqual(wipe.actions.map((a) => a.type), ['wipe']);
  const wiped = remember(wipe.memory, { type: 'wiped' }, 'm1');
  const next = decide(empty(fromBackup(repo), { mem: wiped }));
  assert.equal((next.actions[0] as Extract<Action, { type: 'clone' }>).method, 'basebackup');
  assert.match(next.reason, /failed on this member \(boom\)/);
});

// --- PGA_REPLICA_BOOTSTRAP_FROM, as the entrypoint validates it ---
const ENV: Record<string, string> = {
  PGA_CLUSTER_NAME: 'pg', PGA_NAMESPACE: 'db', PGA_POD_NAME: 'pg-postgres-0', PGA_POD_IP: '10.0.0.5',
  PGA_MEMBER_SELECTOR: 'app.kubernetes.io/instance=pg', PGA_SUPERUSER_PASSWORD_FILE: '/s/su', PGA_REPLICATION_PASSWORD_FILE: '/s/repl',
  PGA_APP_PASSWORD_FILE: '/s/app', PGA_API_TOKEN_FILE: '/s/token', PGA_CONFIG_DIR: '/c', PGA_SECRETS_DIR: '/s',
};
const FILES: Record<string, string> = { '/usr/lib/postgresql/15/bin/postgres': 'ELF', '/usr/lib/postgresql/15/bin/initdb': 'ELF', '/s/su': 'a', '/s/repl': 'b', '/s/app': 'c', '/s/token': 'd' };
const BACKUP = { '/c/backup.json': JSON.stringify({ s3: { endpoint: 's3.local:8333', bucket: 'backups', uriStyle: 'path' } }), '/s/backup/s3-key': 'AK', '/s/backup/s3-key-secret': 'SK' };
const problems = (env: Record<string, string>, files: Record<string, string> = {}): string[] => {
  try { loadConfig({ ...ENV, ...env }, memFiles({ ...FILES, ...files })); return []; } catch (e) { if (e instanceof ConfigError) return e.problems; throw e; }
};

test('PGA_REPLICA_BOOTSTRAP_FROM: basebackup by default, backup with backups on', () => {
  assert.equal(loadConfig(ENV, memFiles(FILES)).replicaBootstrapFrom, 'basebackup');
  assert.equal(loadConfig({ ...ENV, PGA_REPLICA_BOOTSTRAP_FROM: 'backup' }, memFiles({ ...FILES, ...BACKUP })).replicaBootstrapFrom, 'backup');
});

test('PGA_REPLICA_BOOTSTRAP_FROM: refused by name when malformed, without backups, or with a separate WAL directory', () => {
  assert.match(problems({ PGA_REPLICA_BOOTSTRAP_FROM: 'repo' }).join('\n'), /^PGA_REPLICA_BOOTSTRAP_FROM: got "repo"; accepted: "basebackup" \| "backup"/m);
  assert.match(problems({ PGA_REPLICA_BOOTSTRAP_FROM: 'backup' }).join('\n'), /PGA_REPLICA_BOOTSTRAP_FROM: got "backup" but backups are off .*Fix: set backup.enabled .* or set replication.bootstrapFrom to basebackup/);
  assert.match(problems({ PGA_REPLICA_BOOTSTRAP_FROM: 'backup', PGA_WAL_DIR: '/wal/pg_wal' }, BACKUP).join('\n'), /separate WAL directory .*Fix: set replication.bootstrapFrom to basebackup, or persistence.wal.enabled to false/);
  assert.deepEqual(problems({ PGA_REPLICA_BOOTSTRAP_FROM: 'basebackup', PGA_WAL_DIR: '/wal/pg_wal' }), []);
});
