import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig, type Config, type FileReader } from '../../scripts/core/config.js';
import {
  confQuote,
  memberSlotName,
  renderPgHba,
  renderPgpass,
  renderPostgresqlConf,
  syncStandbyNamesFor,
  validateParameters,
  type DynamicConf,
} from '../../scripts/core/render.js';

const files = (m: Record<string, string>): FileReader => ({
  readFile: (p) => (Object.hasOwn(m, p) ? (m[p] as string) : null),
  listDir: (p) => {
    const names = Object.keys(m)
      .filter((f) => f.startsWith(p + '/'))
      .map((f) => f.slice(p.length + 1).split('/')[0] as string);
    return names.length ? [...new Set(names)] : null;
  },
});

function cfg(over: Partial<Config> = {}): Config {
  const c = loadConfig(
    {
      PGA_CLUSTER_NAME: 'pg',
      PGA_NAMESPACE: 'db',
      PGA_POD_NAME: 'pg-postgres-1',
      PGA_POD_IP: '10.0.0.6',
      PGA_MEMBER_SELECTOR: 'app=pg',
      PGA_RUN_DIR: '/run/pg',
      PGA_DATA_DIR: '/data/pgdata',
      PGA_SUPERUSER_PASSWORD: "su:pw\\'x",
      PGA_REPLICATION_PASSWORD: 'repl:pw',
      PGA_APP_PASSWORD: 'app-pw-Zq9',
      PGA_API_TOKEN: 'tok-Zq9',
    },
    files({ '/usr/lib/postgresql/15/bin/postgres': '' }),
  );
  return { ...c, ...over };
}

/** The effective value of a setting: PostgreSQL takes the last occurrence. */
function setting(conf: string, name: string): string | undefined {
  let v: string | undefined;
  for (const line of conf.split('\n')) {
    const m = new RegExp(`^${name}\\s*=\\s*(.*)$`).exec(line);
    if (m) v = m[1];
  }
  return v;
}

const replica: DynamicConf = { primary: { host: '10.0.0.5', port: 5432 }, slotName: 'pg_postgres_1', syncStandbyNames: '', applicationName: 'pg-postgres-1' };
const primary: DynamicConf = { primary: null, slotName: null, syncStandbyNames: 'ANY 1 ("pg-postgres-0", "pg-postgres-2")', applicationName: 'pg-postgres-1' };

describe('memberSlotName', () => {
  const cases: [string, string][] = [
    ['pg-postgres-0', 'pg_postgres_0'],
    ['PG.Postgres-1', 'pg_postgres_1'],
    ['a_b', 'a_b'],
    ['', 'member'],
  ];
  for (const [pod, slot] of cases) test(`${JSON.stringify(pod)} → ${slot}`, () => assert.equal(memberSlotName(pod), slot));
  test('long names: at most 63 characters, distinct for distinct pods', () => {
    const a = memberSlotName('x'.repeat(60) + '-member-0');
    const b = memberSlotName('x'.repeat(60) + '-member-1');
    assert.ok(a.length <= 63 && b.length <= 63);
    assert.notEqual(a, b);
    for (const s of [a, b]) assert.match(s, /^[a-z0-9_]{1,63}$/);
  });
});

describe('syncStandbyNamesFor', () => {
  const cases: [number, string[], string][] = [
    [1, [], ''],
    [0, ['a'], ''],
    [1, ['pg-1'], 'ANY 1 ("pg-1")'],
    [1, ['pg-2', 'pg-1', 'pg-2'], 'ANY 1 ("pg-1", "pg-2")'],
    [3, ['pg-1', 'pg-2'], 'ANY 2 ("pg-1", "pg-2")'],
  ];
  for (const [n, names, want] of cases) test(`${n} of ${JSON.stringify(names)}`, () => assert.equal(syncStandbyNamesFor(n, names), want));
});

describe('validateParameters', () => {
  const refused: [Record<string, string>, RegExp][] = [
    [{ wal_level: 'minimal' }, /wal_level = "minimal" is refused: replication needs wal_level replica or logical/],
    [{ hot_standby: 'off' }, /hot_standby = "off" is refused: the autopilot owns hot_standby: it is always on/],
    [{ max_wal_senders: '3' }, /max_wal_senders = "3" is refused: .*at least 10/],
    [{ max_replication_slots: 'x' }, /max_replication_slots = "x" is refused/],
    [{ port: '5433' }, /port = "5433" is refused: the autopilot owns port: members listen on 5432.*Instead: remove it/],
    [{ listen_addresses: 'localhost' }, /listen_addresses .* is refused/],
    [{ data_directory: '/x' }, /data_directory .* is refused/],
    [{ hba_file: '/x' }, /hba_file .* is refused/],
    [{ primary_conninfo: 'host=x' }, /primary_conninfo .* is refused: the autopilot owns primary_conninfo/],
    [{ primary_slot_name: 'x' }, /primary_slot_name .* is refused/],
    [{ synchronous_standby_names: '*' }, /synchronous_standby_names .* is refused/],
    [{ archive_mode: 'on' }, /archive_mode = "on" is refused: archive_mode on without archive_command/],
    [{ archive_mode: 'always', archive_command: '  ' }, /archive_mode = "always" is refused/],
    [{ wal_log_hints: 'off' }, /wal_log_hints = "off" is refused: pg_rewind/],
    [{ full_page_writes: 'false' }, /full_page_writes = "false" is refused/],
    [{ password_encryption: 'md5' }, /password_encryption = "md5" is refused/],
    [{ logging_collector: 'on' }, /logging_collector .* is refused/],
    [{ log_destination: 'csvlog' }, /log_destination = "csvlog" is refused/],
    [{ ssl: 'on' }, /ssl .* is refused: the autopilot owns ssl: it follows tls.enabled. Instead: remove it and set tls.enabled/],
    [{ recovery_target_time: '2020-01-01' }, /recovery_target_time .* is refused/],
    [{ include: 'x.conf' }, /include .* is refused/],
    [{ WAL_LEVEL: 'minimal' }, /WAL_LEVEL = "minimal" is refused/],
    [{ work_mem: '4MB\nport = 1' }, /work_mem .* newlines/],
    [{ max_slot_wal_keep_size: 'lots' }, /max_slot_wal_keep_size = "lots" is refused: postgres would not start with it. Instead: set -1 \(unlimited\) or a size/],
    [{ max_slot_wal_keep_size: '2Gi' }, /max_slot_wal_keep_size = "2Gi" is refused/],
    [{ max_slot_wal_keep_size: '-5' }, /max_slot_wal_keep_size = "-5" is refused/],
  ];
  for (const [params, re] of refused) {
    test(`refused: ${JSON.stringify(params)}`, () => {
      assert.throws(
        () => validateParameters(params),
        (e: unknown) => e instanceof ConfigError && e.problems.some((p) => re.test(p)) && e.problems.every((p) => /^postgresql\.parameters\.\S+ = .* is refused: .+\. Instead: \S/s.test(p)),
      );
    });
  }
  const accepted: Record<string, string>[] = [
    {},
    { wal_level: 'logical', max_wal_senders: '20', max_replication_slots: '20' },
    { wal_level: 'REPLICA', wal_log_hints: 'on', full_page_writes: 'true' },
    { archive_mode: 'on', archive_command: 'cp %p /archive/%f' },
    { archive_mode: 'off' },
    { shared_buffers: '1GB', work_mem: "64MB", log_destination: 'stderr', password_encryption: 'scram-sha-256' },
    { hot_standby_feedback: 'off', synchronous_commit: 'remote_apply' },
    { max_slot_wal_keep_size: '-1' },
    { max_slot_wal_keep_size: '4GB' },
    { max_slot_wal_keep_size: '2560' },
    { max_slot_wal_keep_size: '512 MB' },
  ];
  for (const params of accepted) test(`accepted: ${JSON.stringify(params)}`, () => validateParameters(params));
  test('every problem listed', () => {
    assert.throws(
      () => validateParameters({ port: '1', wal_level: 'minimal', hot_standby: 'off' }),
      (e: unknown) => e instanceof ConfigError && e.problems.length === 3,
    );
  });
});

describe('renderPostgresqlConf', () => {
  test('replica: defaults, managed settings, primary_conninfo with passfile and no password', () => {
    const c = cfg();
    const conf = renderPostgresqlConf(c, replica);
    const want: Record<string, string> = {
      listen_addresses: "'*'",
      port: '5432',
      unix_socket_directories: "'/run/pg'",
      unix_socket_permissions: '0700',
      wal_level: "'replica'",
      hot_standby: 'on',
      wal_log_hints: "'on'",
      max_wal_senders: "'10'",
      max_replication_slots: "'10'",
      wal_keep_size: "'256MB'",
      max_slot_wal_keep_size: "'1024MB'",
      hot_standby_feedback: "'on'",
      password_encryption: "'scram-sha-256'",
      logging_collector: 'off',
      log_destination: "'stderr'",
      ssl: 'off',
      hba_file: "'/data/pgdata/pg_hba.conf'",
      ident_file: "'/data/pgdata/pg_ident.conf'",
      primary_slot_name: "'pg_postgres_1'",
      synchronous_standby_names: "''",
      recovery_target_timeline: "'latest'",
      cluster_name: "'pg'",
    };
    for (const [k, v] of Object.entries(want)) assert.equal(setting(conf, k), v, k);
    const ci = setting(conf, 'primary_conninfo') ?? '';
    for (const part of ["host=''10.0.0.5''", 'port=5432', "user=''replicator''", "passfile=''/run/pg/.pga-pgpass''", "application_name=''pg-postgres-1''", 'sslmode=prefer'])
      assert.ok(ci.includes(part), `${part} in ${ci}`);
    for (const secret of Object.values(c.secrets)) if (secret) assert.equal(conf.includes(secret), false, 'no secret in postgresql.conf');
  });

  test('primary: empty conninfo and slot, synchronous_standby_names from the autopilot', () => {
    const conf = renderPostgresqlConf(cfg(), primary);
    assert.equal(setting(conf, 'primary_conninfo'), "''");
    assert.equal(setting(conf, 'primary_slot_name'), "''");
    assert.equal(setting(conf, 'synchronous_standby_names'), `'ANY 1 ("pg-postgres-0", "pg-postgres-2")'`);
  });

  test('mixed-case names (TimeZone, DateStyle) are written as given and win over the defaults, as postgres ignores case', () => {
    const conf = renderPostgresqlConf(cfg({ parameters: { TimeZone: 'Europe/Paris', DateStyle: 'ISO, DMY' } }), primary);
    assert.match(conf, /^TimeZone = 'Europe\/Paris'$/m);
    assert.match(conf, /^DateStyle = 'ISO, DMY'$/m);
    assert.ok(conf.indexOf("TimeZone = 'Europe/Paris'") > conf.indexOf("timezone = 'UTC'"), 'the user value comes after the default');
  });
  test('a mixed-case owned name is refused at render too', () => {
    assert.throws(() => renderPostgresqlConf(cfg({ parameters: { Hot_Standby: 'off' } }), primary), /Hot_Standby = "off" is refused: the autopilot owns hot_standby/);
  });
  test('user parameters override defaults but never managed settings; values are quoted', () => {
    const conf = renderPostgresqlConf(cfg({ parameters: { shared_buffers: '1GB', max_wal_senders: '20', wal_keep_size: '1GB', search_path: "\"$user\", public", log_line_prefix: "it's" } }), replica);
    assert.equal(setting(conf, 'shared_buffers'), "'1GB'");
    assert.equal(setting(conf, 'max_wal_senders'), "'20'");
    assert.equal(setting(conf, 'wal_keep_size'), "'1GB'");
    assert.equal(setting(conf, 'search_path'), `'"$user", public'`);
    assert.equal(setting(conf, 'log_line_prefix'), "'it''s'");
    assert.throws(() => renderPostgresqlConf(cfg({ parameters: { port: '1' } }), replica), ConfigError);
  });

  test('max_slot_wal_keep_size: PGA_MAX_SLOT_WAL_KEEP_SIZE (in MB) is the default, -1 only when set so; postgresql.parameters win', () => {
    assert.equal(setting(renderPostgresqlConf(cfg({ maxSlotWalKeepSizeMb: 2560 }), primary), 'max_slot_wal_keep_size'), "'2560MB'");
    assert.equal(setting(renderPostgresqlConf(cfg({ maxSlotWalKeepSizeMb: -1 }), primary), 'max_slot_wal_keep_size'), "'-1'");
    assert.equal(setting(renderPostgresqlConf(cfg({ maxSlotWalKeepSizeMb: 2560, parameters: { max_slot_wal_keep_size: '8GB' } }), primary), 'max_slot_wal_keep_size'), "'8GB'");
    assert.equal(setting(renderPostgresqlConf(cfg({ maxSlotWalKeepSizeMb: 2560, parameters: { max_slot_wal_keep_size: '-1' } }), primary), 'max_slot_wal_keep_size'), "'-1'");
  });

  test('TLS: ssl on with the files; hostssl rules', () => {
    const c = cfg({ tls: { certFile: '/tls/tls.crt', keyFile: '/tls/tls.key', caFile: '/tls/ca.crt' } });
    const conf = renderPostgresqlConf(c, replica);
    assert.equal(setting(conf, 'ssl'), 'on');
    assert.equal(setting(conf, 'ssl_cert_file'), "'/tls/tls.crt'");
    assert.equal(setting(conf, 'ssl_key_file'), "'/run/pg/.pga-tls.key'", 'a private 0600 copy of the key (written by writeConfig)');
    assert.equal(setting(conf, 'ssl_ca_file'), "'/tls/ca.crt'");
    const noCa = renderPostgresqlConf(cfg({ tls: { certFile: '/c', keyFile: '/k', caFile: null } }), replica);
    assert.equal(setting(noCa, 'ssl_ca_file'), undefined);
  });

  test('confQuote escapes quotes, backslashes and newlines', () => {
    assert.equal(confQuote("a'b"), "'a''b'");
    assert.equal(confQuote('a\\b'), "'a\\\\b'");
    assert.equal(confQuote('a\nb'), "'a\\nb'");
  });
});

describe('renderPgHba', () => {
  const rules = (hba: string) =>
    hba
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'))
      .map((l) => l.trim().split(/\s+/));

  test('order: local superuser trust, replication only for the replication role, user rules, catch-all scram', () => {
    const hba = renderPgHba(cfg({ pgHbaExtra: 'host all all 10.99.0.0/16 reject\n' }));
    assert.deepEqual(rules(hba), [
      ['local', 'all', '"postgres"', 'trust'],
      ['local', 'replication', 'all', 'reject'],
      ['local', 'all', 'all', 'scram-sha-256'],
      ['host', 'replication', '"replicator"', 'all', 'scram-sha-256'],
      ['host', 'replication', 'all', 'all', 'reject'],
      ['host', 'all', 'all', '10.99.0.0/16', 'reject'],
      ['host', 'all', 'all', 'all', 'scram-sha-256'],
    ]);
    assert.equal(/\b(md5|password|trust)\b/.test(hba.split('\n').filter((l) => !l.startsWith('local') && !l.startsWith('#')).join('\n')), false, 'no weak method over the network');
  });

  test('with TLS every network rule is hostssl', () => {
    const hba = renderPgHba(cfg({ tls: { certFile: '/c', keyFile: '/k', caFile: null } }));
    const net = rules(hba).filter((r) => r[0] !== 'local');
    assert.deepEqual(net, [
      ['hostssl', 'replication', '"replicator"', 'all', 'scram-sha-256'],
      ['host', 'replication', 'all', 'all', 'reject'],
      ['hostssl', 'replication', 'all', 'all', 'reject'],
      ['hostssl', 'all', 'all', 'all', 'scram-sha-256'],
    ]);
  });
});

describe('renderPgpass', () => {
  test('replication role and superuser, with : and \\ escaped', () => {
    assert.equal(renderPgpass(cfg()), "*:*:*:replicator:repl\\:pw\n*:*:*:postgres:su\\:pw\\\\'x\n");
  });
});
