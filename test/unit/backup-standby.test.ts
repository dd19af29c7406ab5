// backup.fromStandby, pure: which replica a backup reads from (or the primary, and why), and the
// pgBackRest command lines for the primary's backup and every member's server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadBackup, type BackupConfig } from '../../scripts/core/backup-config.js';
import { backupSource, standbyBackupArgs, serverArgs, serverHost } from '../../scripts/core/backup-standby.js';
import { backupActions } from '../../scripts/core/backup.js';
import { member, pgPrimary } from './fixtures.js';

const files = (m: Record<string, string>) => ({ readFile: (p: string) => m[p] ?? null, listDir: () => null });
const tls = { caFile: '/t/ca.crt', certFile: '/t/tls.crt', keyFile: '/t/tls.key' };
function config(fromStandby: boolean, extra: Record<string, unknown> = {}): BackupConfig {
  const p: string[] = [];
  const b = loadBackup('/c', '/s', 'pg', files({
    '/c/backup.json': JSON.stringify({ stanza: 'pg', s3: { endpoint: 's3.local', bucket: 'backups' }, schedule: { full: '0 1 * * *' }, fromStandby, standbyTls: tls, ...extra }),
    '/s/backup/s3-key': 'AK', '/s/backup/s3-key-secret': 'SK', '/t/ca.crt': 'CA', '/t/tls.crt': 'C', '/t/tls.key': 'K',
  }), p);
  assert.deepEqual(p, []);
  return b!;
}
const server = (name: string) => ({ host: `${name}.pg-headless.db.svc`, port: 8432, pgPath: '/var/lib/postgresql/data/pgdata', pgSocketPath: '/run/postgresql' });
const replica = (name: string, over = {}) => member(name, { backupServer: server(name), ...over });
const pg = { ...pgPrimary, lsn: 10_000n, streamingReplicas: ['m1', 'm2'], replicaFlush: [{ name: 'm1', lsn: 9_000n }, { name: 'm2', lsn: 9_990n }] };

test('the standby: streams from us, healthy, its server up, least lag first', () => {
  const s = backupSource(config(true), pg, [replica('m1'), replica('m2')]);
  assert.equal(s.standby?.name, 'm2');
  assert.equal(s.reason, 'backing up from standby m2: streams from us, healthy, lag 10 B (least of 2), pgBackRest server at m2.pg-headless.db.svc:8432');
  assert.deepEqual(s.standby, { name: 'm2', pgPort: 5432, ...server('m2') });
  // equal lag: by name, so the choice is stable from tick to tick
  const even = { ...pg, replicaFlush: [{ name: 'm1', lsn: 9_000n }, { name: 'm2', lsn: 9_000n }] };
  assert.equal(backupSource(config(true), even, [replica('m2'), replica('m1')]).standby?.name, 'm1');
});

test('no replica eligible: the primary, with each replica\'s reason', () => {
  const cases: [Parameters<typeof replica>[1], string, string[]?][] = [
    [{ backupServer: undefined }, 'm1: its pgBackRest server is not up'],
    [{ healthy: false }, 'm1: not a healthy replica'],
    [{ inRecovery: false }, 'm1: not a healthy replica'],
    [{ leaving: true }, 'm1: its pod is being deleted'],
    [{ timeline: 2 }, 'm1: on timeline 2, not ours (1)'],
    [{}, 'm1: not streaming from us', []],
  ];
  for (const [over, why, streaming] of cases) {
    const s = backupSource(config(true), { ...pg, streamingReplicas: streaming ?? ['m1'] }, [replica('m1', over)]);
    assert.equal(s.standby, null, why);
    assert.equal(s.reason, `backing up from the primary: no replica can serve it (${why})`);
  }
  assert.equal(backupSource(config(true), pg, []).reason, 'backing up from the primary: no replica can serve it (no replicas)');
  assert.equal(backupSource(config(false), pg, [replica('m1')]).reason, 'backing up from the primary (backup.fromStandby is off)');
  // one down, the other chosen despite more lag
  assert.equal(backupSource(config(true), pg, [replica('m1'), replica('m2', { backupServer: undefined })]).standby?.name, 'm1');
});

test('a due backup carries the source and its reason', () => {
  const b = config(true);
  const v = { config: b, wallNowMs: Date.parse('2026-11-29T01:00:30Z'), stanzaReady: true, busy: false, record: {} };
  const r = backupActions(v, 'm0', '42', pg, [replica('m1')]);
  const a = r.actions[0]!;
  assert.equal(a.type, 'run_backup');
  assert.equal(a.type === 'run_backup' && a.source.standby?.name, 'm1');
  assert.match(r.reason!, /^full backup scheduled at 2026-11-29T01:00:00.000Z .*; backing up from standby m1: /);
  const none = backupActions(v, 'm0', '42', pg, []);
  assert.match(none.reason!, /; backing up from the primary: no replica can serve it \(no replicas\)$/);
});

test('command lines: the primary reads pg2 through the standby\'s server over TLS; the server authenticates the client CN for the stanza', () => {
  const b = config(true, { serverPort: 9000 });
  const t = { name: 'm1', pgPort: 5433, ...server('m1'), port: 9000 };
  assert.deepEqual(standbyBackupArgs(b, t, 'postgres'), [
    '--backup-standby', '--pg2-host=m1.pg-headless.db.svc', '--pg2-host-type=tls', '--pg2-host-port=9000',
    '--pg2-host-ca-file=/t/ca.crt', '--pg2-host-cert-file=/t/tls.crt', '--pg2-host-key-file=/t/tls.key',
    '--pg2-path=/var/lib/postgresql/data/pgdata', '--pg2-port=5433', '--pg2-socket-path=/run/postgresql', '--pg2-user=postgres',
  ]);
  assert.deepEqual(serverArgs(b, '10.0.0.7', '/run/pg/pgbackrest.conf', '/run/pg/conf.d'), [
    '--config=/run/pg/pgbackrest.conf', '--config-include-path=/run/pg/conf.d',
    '--tls-server-address=10.0.0.7', '--tls-server-port=9000',
    '--tls-server-ca-file=/t/ca.crt', '--tls-server-cert-file=/t/tls.crt', '--tls-server-key-file=/t/tls.key',
    '--tls-server-auth=pg-autopilot-backup=pg', '--log-level-console=info', '--log-level-stderr=off', 'server',
  ]);
  assert.equal(serverHost(config(true, { serverHost: '{pod}.pg-headless.db.svc' }), 'pg-1', '10.0.0.7'), 'pg-1.pg-headless.db.svc');
  assert.equal(serverHost(b, 'pg-1', '10.0.0.7'), '10.0.0.7', 'no serverHost: the pod address');
  assert.throws(() => standbyBackupArgs(config(false), t, 'postgres'), /fromStandby is off/);
});

import { parseMemberStatus } from '../../scripts/core/wire.js';

test('a published server is read only when whole: anything malformed reads as "not up"', () => {
  const base = { name: 'm1', host: '10.0.0.1', port: 5432, apiUrl: 'http://10.0.0.1:8008', role: 'replica' };
  assert.deepEqual(parseMemberStatus({ ...base, backupServer: server('m1') })?.backupServer, server('m1'));
  for (const bad of [{ ...server('m1'), port: 0 }, { ...server('m1'), pgPath: 'relative' }, { ...server('m1'), host: 'a b' }, 'm1:8432', null]) {
    assert.equal(parseMemberStatus({ ...base, backupServer: bad })?.backupServer, undefined, JSON.stringify(bad));
  }
});
