import assert from 'node:assert/strict';
import { test } from 'node:test';
import { basebackupPercent, pmStatusOf, queryErrorKind, rewindConnectionFailure } from '../../scripts/core/pgoutput.js';

test('pmStatusOf: line 8 of postmaster.pid, null before postgres wrote it', () => {
  const pid = (status: string) => `4242\n/var/lib/postgresql/data\n1700000000\n5432\n/run/pga\n*\n  5432001    32768\n${status}\n`;
  assert.equal(pmStatusOf(pid('ready   ')), 'ready');
  assert.equal(pmStatusOf(pid('standby ')), 'standby');
  assert.equal(pmStatusOf(pid('starting')), 'starting');
  assert.equal(pmStatusOf(pid('stopping')), 'stopping');
  assert.equal(pmStatusOf('4242\n/data\n1700000000\n5432\n'), null, 'written in two steps: no status line yet');
  assert.equal(pmStatusOf(''), null);
});

test('basebackupPercent: the percentage of a --progress line, null for any other line', () => {
  assert.equal(basebackupPercent('   12345/67890 kB (18%), 0/1 tablespace'), 18);
  assert.equal(basebackupPercent('67890/67890 kB (100%), 1/1 tablespace'), 100);
  assert.equal(basebackupPercent('0/23456 kB (0%), 0/1 tablespace (...a/pgdata/base/1/1259)'), 0);
  assert.equal(basebackupPercent('pg_basebackup: initiating base backup, waiting for checkpoint to complete'), null);
  assert.equal(basebackupPercent('pg_basebackup: write-ahead log start point: 0/2000028 on timeline 1'), null);
  assert.equal(basebackupPercent(''), null);
});

test('rewindConnectionFailure: could not connect (target untouched) vs connection lost vs a real failure', () => {
  const connect = [
    'pg_rewind: error: connection to server at "10.1.2.3", port 5432 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?',
    'pg_rewind: error: connection to server at "10.1.2.3", port 5432 failed: timeout expired',
    'pg_rewind: error: could not translate host name "pg-postgres-1.pg-postgres" to address: Name or service not known',
    'pg_rewind: error: connection to server on socket "/run/pga/.s.PGSQL.5432" failed: No such file or directory',
    'pg_rewind: fatal: could not connect to server: Connection refused', // libpq before 14
    'pg_rewind: error: connection to server at "10.1.2.3", port 5432 failed: FATAL:  sorry, too many clients already',
  ];
  for (const s of connect) assert.equal(rewindConnectionFailure(s), 'connect', s);
  const lost = [
    'pg_rewind: error: could not fetch remote file "global/pg_control": server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally',
    'pg_rewind: error: unexpected result while fetching remote files: SSL SYSCALL error: EOF detected',
    'pg_rewind: error: could not receive data from server: Connection reset by peer',
  ];
  for (const s of lost) assert.equal(rewindConnectionFailure(s), 'lost', s);
  const failed = [
    'pg_rewind: error: source and target clusters are from different systems',
    'pg_rewind: error: could not find common ancestor of the source and target cluster\'s timelines',
    'pg_rewind: error: could not open file "/data/pg_wal/000000010000000000000003": No such file or directory\npg_rewind: error: could not find previous WAL record at 0/3000028',
    'pg_rewind: error: target server must be shut down cleanly',
    'pg_rewind: error: could not write file "/data/base/1/1259": No space left on device',
    '',
  ];
  for (const s of failed) assert.equal(rewindConnectionFailure(s), null, s);
});

test('queryErrorKind: a statement error keeps the session; a client timeout or a broken connection drops it', () => {
  const server = (code: string, severity: string, message = 'x') => Object.assign(new Error(message), { code, severity });
  assert.equal(queryErrorKind(server('42P01', 'ERROR', 'relation "nope" does not exist')), 'statement');
  assert.equal(queryErrorKind(server('57014', 'ERROR', 'canceling statement due to statement timeout')), 'statement', 'statement_timeout: the session goes on');
  assert.equal(queryErrorKind(server('42710', 'ERROR')), 'statement');
  assert.equal(queryErrorKind(server('57P01', 'FATAL', 'terminating connection due to administrator command')), 'broken');
  assert.equal(queryErrorKind(server('53300', 'FATAL', 'sorry, too many clients already')), 'broken');
  assert.equal(queryErrorKind(server('08006', 'ERROR')), 'broken', 'connection exception class');
  assert.equal(queryErrorKind(new Error('Query read timeout')), 'timeout');
  assert.equal(queryErrorKind(new Error('Connection terminated unexpectedly')), 'broken');
  assert.equal(queryErrorKind(new Error('Client has encountered a connection error and is not queryable')), 'broken');
  assert.equal(queryErrorKind(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })), 'broken');
  assert.equal(queryErrorKind(undefined), 'broken');
  assert.equal(queryErrorKind('a string'), 'broken');
});
