import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, findBinDir, loadCliConfig, loadConfig, trimSecret, type FileReader } from '../../scripts/core/config.js';
import { memFiles } from './mem-files.js';

const BASE_FILES: Record<string, string> = {
  '/usr/lib/postgresql/15/bin/postgres': 'ELF',
  '/usr/lib/postgresql/15/bin/initdb': 'ELF',
  '/s/su': 'supw\n',
  '/s/repl': 'replpw\n',
  '/s/app': 'apppw\n',
  '/s/token': 'tok\n',
};

const BASE_ENV: Record<string, string> = {
  PGA_CLUSTER_NAME: 'pg',
  PGA_NAMESPACE: 'db',
  PGA_POD_NAME: 'pg-postgres-0',
  PGA_POD_IP: '10.0.0.5',
  PGA_MEMBER_SELECTOR: 'app.kubernetes.io/instance=pg,app.kubernetes.io/name=postgres',
  PGA_SUPERUSER_PASSWORD_FILE: '/s/su',
  PGA_REPLICATION_PASSWORD_FILE: '/s/repl',
  PGA_APP_PASSWORD_FILE: '/s/app',
  PGA_API_TOKEN_FILE: '/s/token',
};

const load = (env: Record<string, string | undefined> = {}, files: Record<string, string> = {}) =>
  loadConfig({ ...BASE_ENV, ...env }, memFiles({ ...BASE_FILES, ...files }));

/** Expect a ConfigError one of whose problems matches every regexp. */
function expectProblem(fn: () => unknown, ...res: RegExp[]): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    const hit = e.problems.find((p) => res.every((r) => r.test(p)));
    assert.ok(hit, `no problem matching ${res.join(' & ')} in:\n${e.message}`);
    assert.ok(e.message.includes(hit));
    return e;
  }
  assert.fail(`expected a ConfigError matching ${res.join(' & ')}`);
}

describe('loadConfig: defaults', () => {
  test('contract defaults, seconds → ms, secrets from *_FILE trimmed of the trailing newline', () => {
    const c = load();
    assert.equal(c.clusterName, 'pg');
    assert.equal(c.namespace, 'db');
    assert.equal(c.podName, 'pg-postgres-0');
    assert.equal(c.podIp, '10.0.0.5');
    assert.equal(c.dataDir, '/var/lib/postgresql/data/pgdata');
    assert.equal(c.walDir, null);
    assert.equal(c.binDir, '/usr/lib/postgresql/15/bin');
    assert.equal(c.runDir, '/var/run/postgresql');
    assert.equal(c.configDir, '/etc/pg-autopilot');
    assert.equal(c.secretsDir, '/etc/pg-autopilot/secrets');
    assert.equal(c.pgPort, 5432);
    assert.equal(c.apiPort, 8008);
    assert.equal(c.metricsPort, null, 'no metrics-only listener unless PGA_METRICS_PORT is set');
    assert.equal(c.loopMs, 1000);
    assert.equal(c.leaseMs, 6000);
    assert.equal(c.renewMs, 2000);
    assert.equal(c.renewDeadlineMs, 4500);
    assert.equal(c.maxLagBytes, 16777216);
    assert.equal(c.syncMode, 'off');
    assert.equal(c.syncCount, 1);
    assert.equal(c.nofailover, false);
    assert.equal(c.failsafe, true, 'failsafe is on by default (PGA_FAILSAFE)');
    assert.equal(c.maxSlotWalKeepSizeMb, 1024, 'max_slot_wal_keep_size defaults to 1GB without PGA_MAX_SLOT_WAL_KEEP_SIZE');
    assert.equal(c.logFormat, 'json');
    assert.equal(c.logLevel, 'info');
    assert.equal(c.superuser, 'postgres');
    assert.equal(c.replicationUser, 'replicator');
    assert.equal(c.appUser, 'app');
    assert.equal(c.appDatabase, 'app');
    assert.deepEqual(c.secrets, { superuserPassword: 'supw', replicationPassword: 'replpw', appPassword: 'apppw', apiToken: 'tok', monitorPassword: null });
    assert.equal(c.monitorUser, null, 'no exporter role unless PGA_MONITOR_USER is set');
    assert.deepEqual(c.parameters, {});
    assert.equal(c.pgHbaExtra, '');
    assert.deepEqual(c.bootstrap, { initdb: { encoding: 'UTF8', locale: 'C.UTF-8', dataChecksums: true, args: [] }, users: [], databases: [], scripts: [] });
    assert.equal(c.tls, null);
    assert.equal(c.kubeconfig, null);
  });

  test('every variable set', () => {
    const c = load(
      {
        PGA_DATA_DIR: '/data/pgdata/',
        PGA_WAL_DIR: '/wal/pg_wal',
        PGA_BIN_DIR: '/usr/lib/postgresql/15/bin',
        PGA_RUN_DIR: '/run/pg',
        PGA_CONFIG_DIR: '/cfg',
        PGA_SECRETS_DIR: '/vault/secrets',
        PGA_PG_PORT: '6543',
        PGA_API_PORT: '9008',
        PGA_METRICS_PORT: '9188',
        PGA_LOOP_SECONDS: '0.5',
        PGA_LEASE_SECONDS: '10',
        PGA_RENEW_SECONDS: '2.5',
        PGA_RENEW_DEADLINE_SECONDS: '7',
        PGA_MAX_LAG_BYTES: '0',
        PGA_SYNC_MODE: 'on',
        PGA_SYNC_COUNT: '2',
        PGA_MAX_SLOT_WAL_KEEP_SIZE: '2560MB',
        PGA_NOFAILOVER: 'true',
        PGA_FAILSAFE: 'false',
        PGA_LOG_FORMAT: 'text',
        PGA_LOG_LEVEL: 'debug',
        PGA_SUPERUSER: 'admin',
        PGA_REPLICATION_USER: 'standby',
        PGA_APP_USER: 'shop',
        PGA_APP_DATABASE: 'shopdb',
        PGA_TLS_CERT_FILE: '/tls/tls.crt',
        PGA_TLS_KEY_FILE: '/tls/tls.key',
        PGA_TLS_CA_FILE: '/tls/ca.crt',
        KUBECONFIG: '/kube/config',
      },
      { '/tls/tls.crt': 'C', '/tls/tls.key': 'K', '/tls/ca.crt': 'A' },
    );
    assert.equal(c.dataDir, '/data/pgdata');
    assert.equal(c.walDir, '/wal/pg_wal');
    assert.equal(c.runDir, '/run/pg');
    assert.equal(c.configDir, '/cfg');
    assert.equal(c.secretsDir, '/vault/secrets');
    assert.equal(c.pgPort, 6543);
    assert.equal(c.apiPort, 9008);
    assert.equal(c.metricsPort, 9188);
    assert.deepEqual([c.loopMs, c.leaseMs, c.renewMs, c.renewDeadlineMs], [500, 10000, 2500, 7000]);
    assert.equal(c.maxLagBytes, 0);
    assert.equal(c.syncMode, 'on');
    assert.equal(c.syncCount, 2);
    assert.equal(c.maxSlotWalKeepSizeMb, 2560);
    assert.equal(c.nofailover, true);
    assert.equal(c.failsafe, false);
    assert.equal(c.logFormat, 'text');
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.superuser, 'admin');
    assert.equal(c.replicationUser, 'standby');
    assert.equal(c.appUser, 'shop');
    assert.equal(c.appDatabase, 'shopdb');
    assert.deepEqual(c.tls, { certFile: '/tls/tls.crt', keyFile: '/tls/tls.key', caFile: '/tls/ca.crt' });
    assert.equal(c.kubeconfig, '/kube/config');
  });

  test('an empty variable falls back to its default; PGA_APP_USER="" means no application user', () => {
    const c = load({ PGA_PG_PORT: '', PGA_LOG_LEVEL: '', PGA_APP_USER: '', PGA_APP_PASSWORD_FILE: undefined });
    assert.equal(c.pgPort, 5432);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.appUser, null);
    assert.equal(c.secrets.appPassword, null);
  });

  test('PGA_SYNC_MODE accepts off, on and strict', () => {
    for (const mode of ['off', 'on', 'strict'] as const) assert.equal(load({ PGA_SYNC_MODE: mode }).syncMode, mode);
  });

  test('PGA_FAILSAFE: "false" turns failsafe off, an empty value keeps the default (on)', () => {
    assert.equal(load({ PGA_FAILSAFE: 'false' }).failsafe, false);
    assert.equal(load({ PGA_FAILSAFE: 'true' }).failsafe, true);
    assert.equal(load({ PGA_FAILSAFE: '' }).failsafe, true);
  });

  test('PGA_MAX_SLOT_WAL_KEEP_SIZE: MB, GB, TB → MB; -1 (unlimited) only when set so', () => {
    const cases: [string, number][] = [
      ['2560MB', 2560],
      ['1MB', 1],
      ['1GB', 1024],
      ['2TB', 2 * 1024 * 1024],
      [' 512MB ', 512],
      ['2147483647MB', 2147483647],
      ['-1', -1],
      ['', 1024],
    ];
    for (const [v, mb] of cases) assert.equal(load({ PGA_MAX_SLOT_WAL_KEEP_SIZE: v }).maxSlotWalKeepSizeMb, mb, JSON.stringify(v));
  });

  test('secrets given directly (no _FILE) work and lose one trailing newline only', () => {
    const c = load({ PGA_SUPERUSER_PASSWORD_FILE: undefined, PGA_SUPERUSER_PASSWORD: 'direct\n\n' });
    assert.equal(c.secrets.superuserPassword, 'direct\n');
    assert.equal(trimSecret('a\r\n'), 'a');
    assert.equal(trimSecret('a'), 'a');
    assert.equal(trimSecret(' a \n'), ' a ');
  });

  test('PGA_BIN_DIR default: the newest /usr/lib/postgresql/<major>/bin holding postgres', () => {
    const files = memFiles({
      '/usr/lib/postgresql/9.6/bin/postgres': '',
      '/usr/lib/postgresql/15/bin/postgres': '',
      '/usr/lib/postgresql/17/bin/postgres': '',
      '/usr/lib/postgresql/18/bin/psql': '', // client only
      '/usr/lib/postgresql/16/lib/x.so': '',
    });
    assert.equal(findBinDir(files), '/usr/lib/postgresql/17/bin');
    assert.equal(findBinDir(memFiles({})), null);
  });
});

describe('loadConfig: every bad value is a ConfigError naming the variable', () => {
  const cases: [string, Record<string, string | undefined>, RegExp[]][] = [
    ['cluster name required', { PGA_CLUSTER_NAME: undefined }, [/^PGA_CLUSTER_NAME is required/]],
    ['cluster name DNS label', { PGA_CLUSTER_NAME: 'My_Cluster' }, [/^PGA_CLUSTER_NAME: got "My_Cluster"/, /DNS label/]],
    ['namespace required', { PGA_NAMESPACE: undefined }, [/^PGA_NAMESPACE is required/]],
    ['namespace', { PGA_NAMESPACE: 'a'.repeat(64) }, [/^PGA_NAMESPACE: got/, /at most 63/]],
    ['pod name', { PGA_POD_NAME: 'Pod 0' }, [/^PGA_POD_NAME: got "Pod 0"/]],
    ['pod ip required', { PGA_POD_IP: undefined }, [/^PGA_POD_IP is required/]],
    ['pod ip', { PGA_POD_IP: '10.0.0.5:5432' }, [/^PGA_POD_IP: got "10.0.0.5:5432"/, /address/]],
    ['selector required', { PGA_MEMBER_SELECTOR: undefined }, [/^PGA_MEMBER_SELECTOR is required/]],
    ['selector', { PGA_MEMBER_SELECTOR: 'app=pg,,x' }, [/^PGA_MEMBER_SELECTOR: got/, /label selector/]],
    ['data dir relative', { PGA_DATA_DIR: 'data' }, [/^PGA_DATA_DIR: got "data"/, /absolute path/]],
    ['data dir /', { PGA_DATA_DIR: '/' }, [/^PGA_DATA_DIR: got "\/"/]],
    ['wal dir relative', { PGA_WAL_DIR: 'wal' }, [/^PGA_WAL_DIR: got "wal"/]],
    ['wal dir inside data dir', { PGA_DATA_DIR: '/d/pgdata', PGA_WAL_DIR: '/d/pgdata/pg_wal' }, [/^PGA_WAL_DIR: got "\/d\/pgdata\/pg_wal"/, /overlaps PGA_DATA_DIR/]],
    ['bin dir missing', { PGA_BIN_DIR: '/opt/pg/bin' }, [/^PGA_BIN_DIR: the directory "\/opt\/pg\/bin" does not exist/]],
    ['run dir', { PGA_RUN_DIR: 'run' }, [/^PGA_RUN_DIR: got "run"/]],
    ['config dir', { PGA_CONFIG_DIR: 'etc' }, [/^PGA_CONFIG_DIR: got "etc"/]],
    ['secrets dir', { PGA_SECRETS_DIR: 'vault' }, [/^PGA_SECRETS_DIR: got "vault"/]],
    ['pg port text', { PGA_PG_PORT: 'five' }, [/^PGA_PG_PORT: got "five"/, /1 to 65535/]],
    ['pg port range', { PGA_PG_PORT: '70000' }, [/^PGA_PG_PORT: got "70000"/]],
    ['api port 0', { PGA_API_PORT: '0' }, [/^PGA_API_PORT: got "0"/]],
    ['same ports', { PGA_API_PORT: '5432' }, [/PGA_PG_PORT and PGA_API_PORT are both 5432/]],
    ['metrics port text', { PGA_METRICS_PORT: 'metrics' }, [/^PGA_METRICS_PORT: got "metrics"/, /1 to 65535/]],
    ['metrics port = api port', { PGA_METRICS_PORT: '8008' }, [/PGA_METRICS_PORT and PGA_API_PORT are both 8008/, /Fix: change PGA_METRICS_PORT/]],
    ['metrics port = pg port', { PGA_METRICS_PORT: '5432' }, [/PGA_METRICS_PORT and PGA_PG_PORT are both 5432/]],
    ['loop 0', { PGA_LOOP_SECONDS: '0' }, [/^PGA_LOOP_SECONDS: got "0"/, /greater than 0/]],
    ['loop text', { PGA_LOOP_SECONDS: '1s' }, [/^PGA_LOOP_SECONDS: got "1s"/]],
    ['lease negative', { PGA_LEASE_SECONDS: '-6' }, [/^PGA_LEASE_SECONDS: got "-6"/]],
    ['renew', { PGA_RENEW_SECONDS: 'abc' }, [/^PGA_RENEW_SECONDS: got "abc"/]],
    ['renew deadline', { PGA_RENEW_DEADLINE_SECONDS: '' + 'x' }, [/^PGA_RENEW_DEADLINE_SECONDS: got "x"/]],
    ['max lag', { PGA_MAX_LAG_BYTES: '16MB' }, [/^PGA_MAX_LAG_BYTES: got "16MB"/, /whole number/]],
    ['sync mode', { PGA_SYNC_MODE: 'remote_apply' }, [/^PGA_SYNC_MODE: got "remote_apply"/, /accepted: "off" \| "on" \| "strict"/, /Fix: correct PGA_SYNC_MODE/]],
    ['sync mode case', { PGA_SYNC_MODE: 'Strict' }, [/^PGA_SYNC_MODE: got "Strict"/, /accepted: "off" \| "on" \| "strict"/]],
    ['sync mode boolean', { PGA_SYNC_MODE: 'true' }, [/^PGA_SYNC_MODE: got "true"/, /accepted: "off" \| "on" \| "strict"/]],
    ['failsafe', { PGA_FAILSAFE: 'sometimes' }, [/^PGA_FAILSAFE: got "sometimes"/, /"true" or "false"/, /Fix: correct PGA_FAILSAFE/]],
    ['slot wal size without unit', { PGA_MAX_SLOT_WAL_KEEP_SIZE: '2560' }, [/^PGA_MAX_SLOT_WAL_KEEP_SIZE: got "2560"/, /a WAL size with its unit/, /"-1" for unlimited/, /Fix: correct PGA_MAX_SLOT_WAL_KEEP_SIZE/]],
    ['slot wal size Kubernetes unit', { PGA_MAX_SLOT_WAL_KEEP_SIZE: '2Gi' }, [/^PGA_MAX_SLOT_WAL_KEEP_SIZE: got "2Gi"/, /e\.g\. "2560MB", "1GB"/]],
    ['slot wal size kB', { PGA_MAX_SLOT_WAL_KEEP_SIZE: '1024kB' }, [/^PGA_MAX_SLOT_WAL_KEEP_SIZE: got "1024kB"/]],
    ['slot wal size 0', { PGA_MAX_SLOT_WAL_KEEP_SIZE: '0MB' }, [/^PGA_MAX_SLOT_WAL_KEEP_SIZE: got "0MB"/, /from 1MB/]],
    ['slot wal size negative', { PGA_MAX_SLOT_WAL_KEEP_SIZE: '-2' }, [/^PGA_MAX_SLOT_WAL_KEEP_SIZE: got "-2"/]],
    ['slot wal size fraction', { PGA_MAX_SLOT_WAL_KEEP_SIZE: '1.5GB' }, [/^PGA_MAX_SLOT_WAL_KEEP_SIZE: got "1.5GB"/]],
    ['slot wal size above PostgreSQL\'s limit', { PGA_MAX_SLOT_WAL_KEEP_SIZE: '2048TB' }, [/^PGA_MAX_SLOT_WAL_KEEP_SIZE: got "2048TB"/, /to 2147483647MB/]],
    ['sync count 0', { PGA_SYNC_COUNT: '0' }, [/^PGA_SYNC_COUNT: got "0"/]],
    ['sync count text', { PGA_SYNC_COUNT: 'one' }, [/^PGA_SYNC_COUNT: got "one"/]],
    ['nofailover', { PGA_NOFAILOVER: 'maybe' }, [/^PGA_NOFAILOVER: got "maybe"/, /"true" or "false"/]],
    ['log format', { PGA_LOG_FORMAT: 'yaml' }, [/^PGA_LOG_FORMAT: got "yaml"/, /"json" \| "text"/]],
    ['log level', { PGA_LOG_LEVEL: 'verbose' }, [/^PGA_LOG_LEVEL: got "verbose"/, /"debug" \| "info" \| "warn" \| "error"/]],
    ['superuser', { PGA_SUPERUSER: 'bad-name' }, [/^PGA_SUPERUSER: got "bad-name"/, /role name/]],
    ['replication user pg_', { PGA_REPLICATION_USER: 'pg_repl' }, [/^PGA_REPLICATION_USER: got "pg_repl"/]],
    ['replication user = superuser', { PGA_REPLICATION_USER: 'postgres' }, [/PGA_REPLICATION_USER is "postgres", the same as PGA_SUPERUSER/]],
    ['app user = replication user', { PGA_APP_USER: 'replicator' }, [/PGA_APP_USER is "replicator"/]],
    ['app user', { PGA_APP_USER: 'app user' }, [/^PGA_APP_USER: got "app user"/]],
    ['app database', { PGA_APP_DATABASE: 'my-db' }, [/^PGA_APP_DATABASE: got "my-db"/]],
    ['superuser password missing', { PGA_SUPERUSER_PASSWORD_FILE: undefined }, [/^PGA_SUPERUSER_PASSWORD is required but neither/, /PGA_SUPERUSER_PASSWORD_FILE/]],
    ['replication password missing', { PGA_REPLICATION_PASSWORD_FILE: undefined }, [/^PGA_REPLICATION_PASSWORD is required/]],
    ['app password missing with app user', { PGA_APP_PASSWORD_FILE: undefined }, [/^PGA_APP_PASSWORD is required/, /PGA_APP_USER=app/]],
    ['api token missing', { PGA_API_TOKEN_FILE: undefined }, [/^PGA_API_TOKEN is required/]],
    ['X and X_FILE both set', { PGA_SUPERUSER_PASSWORD: 'x' }, [/PGA_SUPERUSER_PASSWORD and PGA_SUPERUSER_PASSWORD_FILE are both set/]],
    ['_FILE missing', { PGA_REPLICATION_PASSWORD_FILE: '/s/nope' }, [/^PGA_REPLICATION_PASSWORD_FILE: the file "\/s\/nope" does not exist/]],
    ['_FILE relative', { PGA_API_TOKEN_FILE: 's/token' }, [/^PGA_API_TOKEN_FILE: got "s\/token"/]],
    ['_FILE empty', { PGA_APP_PASSWORD_FILE: '/s/empty' }, [/^PGA_APP_PASSWORD_FILE: the file "\/s\/empty" is empty/]],
    ['token with spaces', { PGA_API_TOKEN_FILE: undefined, PGA_API_TOKEN: 'a b' }, [/^PGA_API_TOKEN: the token contains whitespace/]],
    ['tls cert without key', { PGA_TLS_CERT_FILE: '/tls/tls.crt' }, [/PGA_TLS_CERT_FILE .* and PGA_TLS_KEY_FILE .* must be set together/]],
    ['tls ca alone', { PGA_TLS_CA_FILE: '/tls/ca.crt' }, [/PGA_TLS_CA_FILE is set/]],
    ['tls files missing', { PGA_TLS_CERT_FILE: '/tls/x.crt', PGA_TLS_KEY_FILE: '/tls/x.key' }, [/^PGA_TLS_CERT_FILE: the file "\/tls\/x.crt" does not exist/]],
  ];
  for (const [name, env, res] of cases) {
    test(name, () => {
      expectProblem(() => load(env, { '/s/empty': '\n' }), ...res);
    });
  }

  test('cross-checks: renew deadline < lease, renew < deadline, loop <= renew', () => {
    expectProblem(() => load({ PGA_LEASE_SECONDS: '4', PGA_RENEW_DEADLINE_SECONDS: '4' }), /PGA_RENEW_DEADLINE_SECONDS \(4\) must be less than PGA_LEASE_SECONDS \(4\)/);
    expectProblem(() => load({ PGA_RENEW_SECONDS: '4.5' }), /PGA_RENEW_SECONDS \(4.5\) must be less than PGA_RENEW_DEADLINE_SECONDS \(4.5\)/);
    expectProblem(() => load({ PGA_LOOP_SECONDS: '3' }), /PGA_LOOP_SECONDS \(3\) must be at most PGA_RENEW_SECONDS \(2\)/);
    // boundary: loop == renew is fine
    assert.equal(load({ PGA_LOOP_SECONDS: '2' }).loopMs, 2000);
  });

  test('all problems are reported at once, one line each', () => {
    const e = expectProblem(
      () => load({ PGA_CLUSTER_NAME: undefined, PGA_PG_PORT: 'x', PGA_LOG_LEVEL: 'loud', PGA_API_TOKEN_FILE: undefined }),
      /PGA_CLUSTER_NAME/,
    );
    assert.equal(e.problems.length, 4, e.message);
    assert.match(e.message, /^invalid configuration \(4 problems\):\n  - /);
    for (const v of ['PGA_CLUSTER_NAME', 'PGA_PG_PORT', 'PGA_LOG_LEVEL', 'PGA_API_TOKEN']) assert.match(e.message, new RegExp(v));
    // every line says how to fix it
    for (const p of e.problems) assert.match(p, /Fix:/, p);
  });

  test('unreadable files are reported, not thrown', () => {
    const base = memFiles({ ...BASE_FILES, '/tls/c': 'c' });
    const denied = (p: string) => Object.assign(new Error(`EACCES: permission denied, open '${p}'`), { code: 'EACCES' });
    const reader: FileReader = {
      readFile: (p) => {
        if (p === '/s/su' || p === '/tls/k' || p === '/etc/pg-autopilot/initdb.d/01.sql') throw denied(p);
        return base.readFile(p);
      },
      listDir: (p) => (p === '/etc/pg-autopilot/initdb.d' ? ['01.sql'] : base.listDir(p)),
    };
    const e = expectProblem(() => loadConfig({ ...BASE_ENV, PGA_TLS_CERT_FILE: '/tls/c', PGA_TLS_KEY_FILE: '/tls/k' }, reader), /^PGA_SUPERUSER_PASSWORD_FILE: cannot read "\/s\/su"/);
    assert.ok(e.problems.some((p) => /^PGA_TLS_KEY_FILE: cannot read "\/tls\/k"/.test(p)), e.message);
    assert.ok(e.problems.some((p) => /initdb\.d\/01\.sql: cannot read/.test(p)), e.message);
  });

  test('no PostgreSQL server binaries found', () => {
    expectProblem(() => loadConfig(BASE_ENV, memFiles({ '/s/su': 'a', '/s/repl': 'b', '/s/app': 'c', '/s/token': 'd' })), /^PGA_BIN_DIR is not set and no \/usr\/lib\/postgresql/);
  });
});

describe('loadConfig: mounted files', () => {
  const cfgDir = '/etc/pg-autopilot';

  test('parameters.json: values stringified, booleans as on/off', () => {
    const c = load({}, { [`${cfgDir}/parameters.json`]: JSON.stringify({ shared_buffers: '1GB', max_connections: 200, jit: false, 'auto_explain.log_min_duration': '1s' }) });
    assert.deepEqual(c.parameters, { shared_buffers: '1GB', max_connections: '200', jit: 'off', 'auto_explain.log_min_duration': '1s' });
  });

  test('parameters.json problems: invalid JSON, not an object, bad value, refused parameter', () => {
    expectProblem(() => load({}, { [`${cfgDir}/parameters.json`]: '{"a":' }), /parameters\.json: not valid JSON/);
    expectProblem(() => load({}, { [`${cfgDir}/parameters.json`]: '[1]' }), /parameters\.json: got \[1\]/);
    expectProblem(() => load({}, { [`${cfgDir}/parameters.json`]: '{"work_mem":{"a":1}}' }), /parameter work_mem has value \{"a":1\}/);
    expectProblem(() => load({}, { [`${cfgDir}/parameters.json`]: '{"wal_level":"minimal"}' }), /parameters\.json: postgresql\.parameters\.wal_level = "minimal" is refused/);
    // names as PostgreSQL takes them: case-insensitive, refused or accepted alike
    expectProblem(() => load({}, { [`${cfgDir}/parameters.json`]: '{"Wal_Level":"minimal"}' }), /parameters\.json: postgresql\.parameters\.Wal_Level = "minimal" is refused: replication needs wal_level replica or logical/);
    expectProblem(() => load({}, { [`${cfgDir}/parameters.json`]: '{"HOT_STANDBY":false}' }), /postgresql\.parameters\.HOT_STANDBY = "off" is refused: the autopilot owns hot_standby/);
    expectProblem(() => load({}, { [`${cfgDir}/parameters.json`]: '{"TimeZone":"UTC","timezone":"UTC"}' }), /postgresql\.parameters\.timezone = "UTC" is refused: it is the same parameter as TimeZone/);
    expectProblem(() => load({}, { [`${cfgDir}/parameters.json`]: '{"bad name":"1"}' }), /"bad name" is not a valid PostgreSQL parameter name/);
  });

  test('pg_hba.conf extra rules are read verbatim', () => {
    assert.equal(load({}, { [`${cfgDir}/pg_hba.conf`]: 'host all all 10.0.0.0/8 reject\n' }).pgHbaExtra, 'host all all 10.0.0.0/8 reject\n');
  });

  test('bootstrap.json + initdb.d scripts in name order, user passwords from the secrets dir', () => {
    const c = load(
      { PGA_SECRETS_DIR: '/vault/secrets' },
      {
        [`${cfgDir}/bootstrap.json`]: JSON.stringify({
          initdb: { encoding: 'LATIN1', locale: 'en_US.UTF-8', dataChecksums: false, args: ['--no-instructions'] },
          users: [
            { name: 'reporter', passwordKey: 'reporter-password', options: ['LOGIN', 'CONNECTION LIMIT 5', 'IN ROLE pg_read_all_data'] },
            { name: 'nologin', options: [] },
          ],
          databases: [{ name: 'reports', owner: 'reporter' }, { name: 'misc' }],
        }),
        '/vault/secrets/reporter-password': 'rpw\n',
        [`${cfgDir}/initdb.d/10-b.sql`]: 'SELECT 2;',
        [`${cfgDir}/initdb.d/02-a.sql`]: 'SELECT 1;',
        [`${cfgDir}/initdb.d/..data/02-a.sql`]: 'hidden',
        [`${cfgDir}/initdb.d/..2026_11_25`]: 'hidden',
      },
    );
    assert.deepEqual(c.bootstrap.initdb, { encoding: 'LATIN1', locale: 'en_US.UTF-8', dataChecksums: false, args: ['--no-instructions'] });
    const flags = { SUPERUSER: false, CREATEDB: false, CREATEROLE: false, INHERIT: true, LOGIN: false, REPLICATION: false, BYPASSRLS: false };
    assert.deepEqual(c.bootstrap.users, [
      { name: 'reporter', ensure: 'present', password: 'rpw', passwordKey: 'reporter-password', flags: { ...flags, LOGIN: true }, connectionLimit: 5, inRoles: ['pg_read_all_data'], createOnly: [], options: ['LOGIN', 'CONNECTION LIMIT 5', 'IN ROLE pg_read_all_data'] },
      { name: 'nologin', ensure: 'present', password: null, passwordKey: null, flags, connectionLimit: -1, inRoles: [], createOnly: [], options: [] },
    ]);
    assert.deepEqual(c.bootstrap.databases, [
      { name: 'reports', owner: 'reporter', ensure: 'present', connectionLimit: -1 },
      { name: 'misc', owner: 'postgres', ensure: 'present', connectionLimit: -1 },
    ]);
    assert.deepEqual(c.bootstrap.scripts, [
      { name: '02-a.sql', sql: 'SELECT 1;' },
      { name: '10-b.sql', sql: 'SELECT 2;' },
    ]);
  });

  const bad = (doc: unknown, files: Record<string, string> = {}) => () =>
    load({}, { [`${cfgDir}/bootstrap.json`]: typeof doc === 'string' ? doc : JSON.stringify(doc), ...files });
  test('bootstrap.json problems name the file and the field', () => {
    expectProblem(bad('nope'), /bootstrap\.json: not valid JSON/);
    expectProblem(bad({ initdb: { encoding: 7 } }), /bootstrap\.json: initdb\.encoding got 7/);
    expectProblem(bad({ initdb: { locale: 'en US' } }), /initdb\.locale got "en US"/);
    expectProblem(bad({ initdb: { dataChecksums: 'yes' } }), /initdb\.dataChecksums got "yes"; accepted: true or false/);
    expectProblem(bad({ initdb: { args: ['--waldir=/x'] } }), /initdb\.args contains "--waldir=\/x", an option the entrypoint sets itself/);
    expectProblem(bad({ initdb: { args: ['-Ulolo'] } }), /initdb\.args contains "-Ulolo"/);
    expectProblem(bad({ users: [{ name: 'x', passwordKey: 'missing-key' }] }), /users\[0\]\.passwordKey: the file "\/etc\/pg-autopilot\/secrets\/missing-key" does not exist/);
    expectProblem(bad({ users: [{ name: 'x', passwordKey: '../etc/passwd' }] }), /users\[0\]\.passwordKey got "\.\.\/etc\/passwd"/);
    expectProblem(bad({ users: [{ name: 'x', options: ['LOGIN; DROP TABLE t'] }] }), /users\[0\]\.options: "LOGIN; DROP TABLE t" is not accepted/);
    expectProblem(bad({ users: [{ name: 'Robert"); --' }] }), /users\[0\]\.name got/);
    expectProblem(bad({ users: [{ name: 'replicator' }] }), /users entry "replicator" is a role the entrypoint manages/);
    expectProblem(bad({ users: [{ name: 'a' }, { name: 'a' }] }), /users\[1\]\.name "a" appears twice/);
    expectProblem(bad({ databases: [{ name: 'template1' }] }), /databases\[0\]\.name got "template1"/);
    expectProblem(bad({ databases: [{ name: 'app' }] }), /databases entry "app" is PGA_APP_DATABASE/);
    expectProblem(bad({ databases: [{ name: 'x', owner: 'no good' }] }), /databases\[0\]\.owner got "no good"/);
    expectProblem(bad({ extra: 1 }), /unknown key\(s\) extra/);
  });
  test('roles.json: users and databases of their own file, merged with bootstrap.json; refusals in words', () => {
    const c = load({}, {
      [`${cfgDir}/roles.json`]: JSON.stringify({
        users: [{ name: 'old', ensure: 'absent' }, { name: 'rw', options: ['LOGIN'], inRoles: ['pg_write_all_data'], connectionLimit: 3 }],
        databases: [{ name: 'gone', ensure: 'absent' }, { name: 'rwdb', owner: 'rw', connectionLimit: 10 }],
      }),
    });
    assert.deepEqual(c.bootstrap.users.map((u) => [u.name, u.ensure, u.inRoles, u.connectionLimit, u.flags.LOGIN]), [['old', 'absent', [], -1, false], ['rw', 'present', ['pg_write_all_data'], 3, true]]);
    assert.deepEqual(c.bootstrap.databases, [{ name: 'gone', owner: 'postgres', ensure: 'absent', connectionLimit: -1 }, { name: 'rwdb', owner: 'rw', ensure: 'present', connectionLimit: 10 }]);
    const badRoles = (doc: unknown) => () => load({}, { [`${cfgDir}/roles.json`]: JSON.stringify(doc) });
    expectProblem(badRoles({ users: [{ name: 'x', ensure: 'gone' }] }), /roles\.json: users\[0\]\.ensure got "gone"; accepted: "present" .* or "absent"/);
    expectProblem(badRoles({ users: [{ name: 'x', inRoles: ['no good'] }] }), /users\[0\]\.inRoles got \["no good"\]; accepted: an array of role names/);
    expectProblem(badRoles({ users: [{ name: 'x', inRoles: ['x'] }] }), /cannot be a member of itself/);
    expectProblem(badRoles({ users: [{ name: 'x', connectionLimit: -2 }] }), /users\[0\]\.connectionLimit got -2; accepted: an integer, -1 for no limit/);
    expectProblem(badRoles({ users: [{ name: 'x', password: 'p' }] }), /users\[0\]: unknown key\(s\) password; accepted: name, ensure, passwordKey/);
    expectProblem(badRoles({ databases: [{ name: 'd', ensure: 'maybe' }] }), /databases\[0\]\.ensure got "maybe"/);
    expectProblem(badRoles({ grants: [] }), /roles\.json: unknown key\(s\) grants; accepted: users, databases/);
    expectProblem(badRoles({ users: [{ name: 'postgres' }] }), /users entry "postgres" is a role the entrypoint manages/);
    expectProblem(() => load({}, {
      [`${cfgDir}/roles.json`]: JSON.stringify({ users: [{ name: 'a' }] }),
      [`${cfgDir}/bootstrap.json`]: JSON.stringify({ users: [{ name: 'a' }] }),
    }), /roles\.json: users entry "a" is in bootstrap\.json too/);
  });
});

describe('loadCliConfig', () => {
  test('defaults and optional values', () => {
    assert.deepEqual(loadCliConfig({}, memFiles({})), { apiUrl: 'http://127.0.0.1:8008', apiToken: null, namespace: null, clusterName: null, kubeconfig: null });
    assert.deepEqual(
      loadCliConfig({ PGA_API_URL: 'http://10.0.0.5:8008/', PGA_API_TOKEN_FILE: '/t', PGA_NAMESPACE: 'db', PGA_CLUSTER_NAME: 'pg', KUBECONFIG: '/k' }, memFiles({ '/t': 'tok\n' })),
      { apiUrl: 'http://10.0.0.5:8008', apiToken: 'tok', namespace: 'db', clusterName: 'pg', kubeconfig: '/k' },
    );
  });
  test('bad values', () => {
    expectProblem(() => loadCliConfig({ PGA_API_URL: 'ftp://x' }, memFiles({})), /^PGA_API_URL: got "ftp:\/\/x"/);
    expectProblem(() => loadCliConfig({ PGA_API_TOKEN: 'a', PGA_API_TOKEN_FILE: '/t' }, memFiles({ '/t': 'b' })), /both set/);
    expectProblem(() => loadCliConfig({ PGA_API_TOKEN_FILE: '/t' }, memFiles({})), /PGA_API_TOKEN_FILE: the file "\/t" does not exist/);
  });
});
