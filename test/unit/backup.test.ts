import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCron, previousRun, nextRun, CronError } from '../../scripts/core/cron.js';
import { loadBackup } from '../../scripts/core/backup-config.js';
import { renderPgBackRest, archiveParameters, dueBackup, recordRun, parseBackupRecord } from '../../scripts/core/backup.js';

const T = (s: string) => Date.parse(s);

test('cron: fields, lists, ranges, steps, macros; previous and next run in UTC', () => {
  const c = parseCron('30 2 * * 0');
  assert.equal(new Date(previousRun(c, T('2026-11-29T03:00:00Z'))!).toISOString(), '2026-11-29T02:30:00.000Z');
  assert.equal(new Date(previousRun(c, T('2026-11-29T02:29:59Z'))!).toISOString(), '2026-11-22T02:30:00.000Z');
  assert.equal(new Date(nextRun(c, T('2026-11-29T02:30:00Z'))!).toISOString(), '2026-12-06T02:30:00.000Z');
  const h = parseCron('*/15 8-10 * * 1-5');
  assert.equal(new Date(previousRun(h, T('2026-11-30T09:44:00Z'))!).toISOString(), '2026-11-30T09:30:00.000Z');
  assert.equal(new Date(previousRun(parseCron('@daily'), T('2026-11-29T03:00:00Z'))!).toISOString(), '2026-11-29T00:00:00.000Z');
  // both day fields restricted: either matches (1st of the month OR a Sunday)
  const e = parseCron('0 0 1 * 0');
  assert.equal(new Date(previousRun(e, T('2026-12-02T00:00:00Z'))!).toISOString(), '2026-12-01T00:00:00.000Z');
  assert.equal(new Date(previousRun(e, T('2026-11-30T00:00:00Z'))!).toISOString(), '2026-11-29T00:00:00.000Z');
  assert.deepEqual([...parseCron('0 0 * * 7').dow], [0]);
});

test('cron: every bad expression names the field and what is accepted', () => {
  for (const [expr, want] of [['* * * *', /expected five fields/], ['61 * * * *', /minute "61" is out of range/], ['* 5-2 * * *', /hour "5-2" is a range that runs backwards/], ['* * * * mon', /day of week "mon" is not understood/], ['*/0 * * * *', /step below 1/]] as const) {
    assert.throws(() => parseCron(expr), (e: Error) => e instanceof CronError && want.test(e.message), expr);
  }
});

const files = (m: Record<string, string>) => ({ readFile: (p: string) => m[p] ?? null, listDir: () => null });
const good = { stanza: 'pg', s3: { endpoint: 'minio.local:9000', bucket: 'backups', region: 'eu-west-1', path: '/pg/prod', uriStyle: 'path' }, schedule: { full: '0 1 * * 0', incremental: '0 1 * * 1-6' }, retention: { full: 3 } };
const secrets = { '/s/backup/s3-key': 'AK\n', '/s/backup/s3-key-secret': 'SK\n' };

test('backup.json: absent = off; a good one parses; secrets come from files', () => {
  const p: string[] = [];
  assert.equal(loadBackup('/c', '/s', 'pg', files({}), p), null);
  const b = loadBackup('/c', '/s', 'pg', files({ '/c/backup.json': JSON.stringify(good), ...secrets }), p)!;
  assert.deepEqual(p, []);
  assert.equal(b.repo.endpoint, 'minio.local'); assert.equal(b.repo.port, 9000);
  assert.equal(b.repo.key, 'AK'); assert.equal(b.retention.full, 3);
  assert.ok(b.schedule.full && b.schedule.incr && !b.schedule.diff);
});

test('backup.json: every bad value is refused by name', () => {
  const cases: [unknown, RegExp][] = [
    [{ ...good, extra: 1 }, /unknown key\(s\) extra/],
    [{ ...good, s3: { ...good.s3, endpoint: 'http://x' } }, /s3.endpoint got "http:\/\/x"/],
    [{ ...good, s3: { ...good.s3, bucket: 'UP' } }, /s3.bucket got "UP"/],
    [{ ...good, s3: { ...good.s3, path: '../x' } }, /s3.path/],
    [{ ...good, schedule: { incremental: '0 1 * * *' } }, /no full one/],
    [{ ...good, schedule: { full: '0 25 * * *' } }, /schedule.full: cron "0 25 \* \* \*": hour "25" is out of range/],
    [{ ...good, retention: { full: 2, fullDays: 7 } }, /both full \(a count\) and fullDays/],
    [{ ...good, options: { 'repo1-path': '/x' } }, /options.repo1-path: the autopilot sets this/],
    [{ ...good, options: { 'made-up': 1 } }, /options.made-up: not a pgBackRest option the pass-through accepts/],
    [{ ...good, encryption: true }, /cipher-pass: missing or empty while encryption is on/],
  ];
  for (const [json, want] of cases) {
    const p: string[] = [];
    loadBackup('/c', '/s', 'pg', files({ '/c/backup.json': JSON.stringify(json), ...secrets }), p);
    assert.ok(p.some((l) => want.test(l)), `${JSON.stringify(json)}: ${p.join(' | ')}`);
  }
  const p: string[] = [];
  loadBackup('/c', '/s', 'pg', files({ '/c/backup.json': JSON.stringify(good) }), p);
  assert.ok(p.some((l) => /s3-key: missing or empty.*existingSecret/.test(l)), p.join(' | '));
});

test('pgbackrest.conf holds no secret; the secrets file does; archive_command names config and stanza', () => {
  const p: string[] = [];
  const b = loadBackup('/c', '/s', 'pg', files({ '/c/backup.json': JSON.stringify({ ...good, encryption: true }), ...secrets, '/s/backup/cipher-pass': 'pass' }), p)!;
  const r = renderPgBackRest(b, { dataDir: '/d', pgPort: 5432, runDir: '/run/pg', spoolDir: '/d/../spool', lockDir: '/tmp/l', superuser: 'postgres' });
  assert.ok(!/AK|SK|pass$/m.test(r.conf), r.conf);
  assert.match(r.conf, /^repo1-storage-port=9000$/m);
  assert.match(r.conf, /^repo1-cipher-type=aes-256-cbc$/m);
  assert.match(r.conf, /^\[pg\]\npg1-path=\/d$/m);
  assert.match(r.secrets, /^repo1-s3-key=AK$/m);
  assert.match(r.secrets, /^repo1-cipher-pass=pass$/m);
  assert.match(r.conf, /^\[global:archive-push\]\narchive-timeout=10$/m, 'a failing archive is reported after 10 s, not 60');
  assert.match(r.conf, /^\[global:backup\]\narchive-timeout=600$/m, 'a backup waits for its last segment behind an archive backlog');
  assert.equal(r.conf.match(/^archive-timeout=.*$/gm)?.length, 2, 'in no other section');
  const own = renderPgBackRest({ ...b, options: { 'archive-timeout': '45' } }, { dataDir: '/d', pgPort: 5432, runDir: '/run/pg', spoolDir: '/s', lockDir: '/l', superuser: 'postgres' });
  assert.equal(own.conf.match(/^archive-timeout=.*$/gm)?.join(), 'archive-timeout=45', 'backup.options overrides it, once');
  const a = archiveParameters('/etc/pgbr.conf', '/run/pgbr', 'pg');
  assert.equal(a.archive_command, "pgbackrest '--config=/etc/pgbr.conf' '--config-include-path=/run/pgbr' '--stanza=pg' archive-push %p");
});

test('schedule: due once per scheduled time, full before the lesser types, a run a former primary left running runs again', () => {
  const p: string[] = [];
  const b = loadBackup('/c', '/s', 'pg', files({ '/c/backup.json': JSON.stringify(good), ...secrets }), p)!;
  const sunday = T('2026-11-29T01:00:00Z');
  const now = sunday + 5 * 60_000;
  const d = dueBackup(b, {}, now, 'm0')!;
  assert.equal(d.type, 'full'); assert.equal(d.at, sunday);
  assert.equal(dueBackup(b, {}, sunday + 2 * 3_600_000, 'm0'), null, 'no backlog from before any run was recorded');
  let rec = recordRun({}, b, 'full', sunday, 'm0', 'running', now);
  assert.equal(dueBackup(b, rec, now, 'm0'), null, 'our own run in progress: not again');
  assert.equal(dueBackup(b, rec, now, 'm1')?.type, 'full', 'm1 is primary now: the run m0 left running runs again');
  rec = recordRun(rec, b, 'full', sunday, 'm0', 'done', now);
  assert.equal(dueBackup(b, rec, now, 'm0'), null);
  const monday = T('2026-11-30T01:00:00Z');
  assert.deepEqual(dueBackup(b, rec, monday + 1_000, 'm0')?.type, 'incr');
  assert.deepEqual(parseBackupRecord(JSON.stringify(rec)), rec);
  assert.deepEqual(parseBackupRecord('{bad'), {});
});

import { loadRestore, restoreTargetArgs } from '../../scripts/core/restore-config.js';

test('restore.json: targets parsed into pgBackRest options; bad targets refused by name', () => {
  const src = { stanza: 'old', s3: { endpoint: 'minio.local:9000', bucket: 'backups', uriStyle: 'path' } };
  const rs = { '/s/restore/s3-key': 'AK', '/s/restore/s3-key-secret': 'SK' };
  const load = (target: unknown, extra: Record<string, string> = {}) => { const p: string[] = []; const r = loadRestore('/c', '/s', files({ '/c/restore.json': JSON.stringify({ ...src, target }), ...rs, ...extra }), p); return { r, p }; };
  assert.equal(loadRestore('/c', '/s', files({}), []), null);
  assert.deepEqual(restoreTargetArgs(load({ type: 'latest' }).r!.target), ['--type=default']);
  assert.deepEqual(restoreTargetArgs(load({ type: 'time', value: '2026-11-29 03:00:00+00' }).r!.target), ['--type=time', '--target=2026-11-29 03:00:00+00', '--target-action=promote']);
  assert.deepEqual(restoreTargetArgs(load({ type: 'lsn', value: '0/3000060' }).r!.target), ['--type=lsn', '--target=0/3000060', '--target-action=promote']);
  assert.deepEqual(restoreTargetArgs(load({ type: 'backup', value: '20261129-030000F' }).r!.target), ['--set=20261129-030000F', '--type=immediate', '--target-action=promote']);
  assert.match(load({ type: 'time', value: '2026-11-29 03:00:00' }).p.join('\n'), /target.value got "2026-11-29 03:00:00" for type time; accepted: a time with its zone/);
  assert.match(load({ type: 'lsn', value: 'x' }).p.join('\n'), /accepted: a WAL position/);
  assert.match(load({ type: 'soon' }).p.join('\n'), /target.type got "soon"; accepted: latest, time, lsn, name, backup/);
  assert.equal(load({ type: 'latest' }).r!.repo.path, '/old', 'default path: the stanza');
});

test('backup.json: fromStandby needs the TLS files, and says what to set', () => {
  const load = (extra: Record<string, unknown>, more: Record<string, string> = {}) => { const p: string[] = []; const b = loadBackup('/c', '/s', 'pg', files({ '/c/backup.json': JSON.stringify({ ...good, fromStandby: true, ...extra }), ...secrets, ...more }), p); return { b, p: p.join(' | ') }; };
  assert.match(load({}).p, /fromStandby is on but standbyTls is missing: .*Fix: leave backup.standbyTls.existingSecret empty \(the chart generates one\) or name a Secret with ca.crt, tls.crt and tls.key/);
  const tls = { caFile: '/t/ca.crt', certFile: '/t/tls.crt', keyFile: '/t/tls.key' };
  const pem = { '/t/ca.crt': 'CA', '/t/tls.crt': 'CRT', '/t/tls.key': 'KEY' };
  assert.match(load({ standbyTls: tls }).p, /standbyTls.caFile "\/t\/ca.crt" does not exist or is unreadable\. Fix: mount the TLS Secret's ca.crt there/);
  const ok = load({ standbyTls: tls, serverHost: '{pod}.pg-headless.db.svc' }, pem);
  assert.equal(ok.p, '');
  assert.deepEqual(ok.b!.standby, { serverPort: 8432, serverHost: '{pod}.pg-headless.db.svc', tls, clientCN: 'pg-autopilot-backup' });
  assert.match(load({ standbyTls: tls, serverPort: 70000 }, pem).p, /serverPort got 70000; accepted: a port 1-65535/);
  assert.match(load({ standbyTls: { ...tls, extra: 1 } }, pem).p, /standbyTls: unknown key\(s\) extra/);
  assert.equal(load({ fromStandby: false }).b!.standby, null, 'off: no TLS needed');
  assert.match(load({ standbyTls: tls, options: { 'pg2-host': 'x' } }, pem).p, /options.pg2-host: the autopilot sets this pgBackRest option itself/);
});
