// The mode decision (core/mode.ts) and standalone mode's settings (core/standalone.ts): pure,
// from env + an in-memory FileReader.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig, type FileReader } from '../../scripts/core/config.js';
import { decideMode, SA_TOKEN_PATH } from '../../scripts/core/mode.js';
import { renderPgHba } from '../../scripts/core/render.js';
import { classifyInitScripts, NO_PASSWORD_MESSAGE, shellWords, standaloneSettings } from '../../scripts/core/standalone.js';
import { memFiles } from './mem-files.js';

const problemsOf = (fn: () => unknown): string[] => {
  try {
    const r = fn() as { problems?: string[] };
    if (r?.problems?.length) return r.problems;
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  assert.fail('expected a ConfigError');
};

describe('decideMode', () => {
  const no = { tokenMounted: false };
  test('auto: kubernetes with a token or KUBECONFIG, replica with a primary host, else standalone', () => {
    assert.equal(decideMode({}, { tokenMounted: true }).mode, 'kubernetes');
    assert.match(decideMode({}, { tokenMounted: true }).reason, new RegExp(SA_TOKEN_PATH));
    assert.equal(decideMode({ KUBECONFIG: '/k' }, no).mode, 'kubernetes');
    assert.equal(decideMode({ PGA_PRIMARY_HOST: 'db1' }, no).mode, 'replica');
    assert.equal(decideMode({}, no).mode, 'standalone');
    assert.equal(decideMode({ PGA_MODE: 'auto', KUBECONFIG: '' }, no).mode, 'standalone');
  });
  test('PGA_MODE overrides the detection', () => {
    assert.equal(decideMode({ PGA_MODE: 'standalone' }, { tokenMounted: true }).mode, 'standalone');
    assert.equal(decideMode({ PGA_MODE: 'kubernetes', KUBECONFIG: '/k' }, no).mode, 'kubernetes');
    assert.equal(decideMode({ PGA_MODE: 'replica', PGA_PRIMARY_HOST: 'db1' }, { tokenMounted: true }).mode, 'replica');
  });
  test('a half-configured environment names the variable and the fix', () => {
    const [k] = problemsOf(() => decideMode({ PGA_MODE: 'kubernetes' }, no));
    assert.match(k!, /PGA_MODE is "kubernetes" but no ServiceAccount token .* KUBECONFIG is not set\. Fix: /);
    const [r] = problemsOf(() => decideMode({ PGA_MODE: 'replica' }, no));
    assert.match(r!, /PGA_MODE is "replica" but PGA_PRIMARY_HOST is not set\. Fix: set PGA_PRIMARY_HOST/);
    const [s] = problemsOf(() => decideMode({ PGA_MODE: 'standalone', PGA_PRIMARY_HOST: 'x' }, no));
    assert.match(s!, /PGA_PRIMARY_HOST is set .*Fix: set PGA_MODE=replica/);
    const [b] = problemsOf(() => decideMode({ PGA_MODE: 'cluster' }, no));
    assert.match(b!, /^PGA_MODE: got "cluster"; accepted: "auto" \(or unset\), "kubernetes", "standalone", "replica"/);
  });
});

describe('shellWords and init scripts', () => {
  test('splits as a shell would', () => {
    assert.deepEqual(shellWords(`--data-checksums  -E UTF8 --locale='de_DE.UTF-8' "--lc-messages=C" a\\ b`), ['--data-checksums', '-E', 'UTF8', '--locale=de_DE.UTF-8', '--lc-messages=C', 'a b']);
    assert.deepEqual(shellWords(''), []);
    assert.deepEqual(shellWords(`''`), ['']);
    assert.throws(() => shellWords(`'open`), /unterminated single quote/);
  });
  test('init scripts in byte order of their names; others ignored', () => {
    const r = classifyInitScripts(['b.sql', '10.sh', 'a.sql.gz', 'README', '.hidden.sql', 'B.sh', 'x.sql.bz2']);
    assert.deepEqual(r.scripts.map((s) => s.name), ['10.sh', 'B.sh', 'a.sql.gz', 'b.sql']);
    assert.deepEqual(r.scripts.map((s) => s.kind), ['sh', 'sh', 'sql.gz', 'sql']);
    assert.deepEqual(r.ignored, ['README', 'x.sql.bz2']);
  });
});

describe('standaloneSettings', () => {
  const BIN = { '/usr/lib/postgresql/15/bin/postgres': 'ELF' };
  const facts = { hostname: 'db-1', randomSecret: () => 'random' };
  const settings = (env: Record<string, string>, files: Record<string, string> = {}, mode: 'standalone' | 'replica' = 'standalone') =>
    standaloneSettings(mode, env, memFiles({ ...BIN, ...files }), facts);
  const ok = (s: ReturnType<typeof settings>) => (assert.deepEqual(s.problems, []), s);

  test('the official variables, with the values the official image accepts', () => {
    const s = ok(settings({ POSTGRES_USER: 'my user', POSTGRES_PASSWORD: "p'w \"x", POSTGRES_DB: 'my "db\'', POSTGRES_INITDB_ARGS: '--locale-provider=icu --icu-locale="en US"', PGDATA: '/d/' },
      { '/docker-entrypoint-initdb.d/1.sql': 'x', '/docker-entrypoint-initdb.d/2.sh': 'x' }));
    assert.equal(s.env.PGA_SUPERUSER, 'my user');
    assert.equal(s.env.PGA_SUPERUSER_PASSWORD, "p'w \"x");
    assert.equal(s.dataDir, '/d');
    assert.equal(s.database, 'my "db\'');
    assert.deepEqual(s.initdbArgs, ['--locale-provider=icu', '--icu-locale=en US']);
    assert.equal(s.firstStart, true);
    assert.deepEqual(s.scripts.map((x) => x.name), ['1.sql', '2.sh']);
    assert.deepEqual(s.generated, ['PGA_REPLICATION_PASSWORD', 'PGA_API_TOKEN']);
    assert.equal(s.env.PGA_POD_NAME, 'db-1');
    const cfg = loadConfig(s.env, memFiles(BIN), { standalone: { hostAuthMethod: s.hostAuthMethod, database: s.database, initdbArgs: s.initdbArgs } });
    assert.equal(cfg.superuser, 'my user');
    assert.equal(cfg.appUser, null);
    assert.deepEqual(cfg.bootstrap.databases, [{ name: 'my "db\'', owner: 'my user', ensure: 'present', connectionLimit: -1 }]);
    assert.deepEqual(cfg.bootstrap.initdb.args.slice(-2), s.initdbArgs);
    const hba = renderPgHba(cfg);
    assert.match(hba, /^local\s+all\s+all\s+trust$/m);
    assert.match(hba, /^host\s+all\s+all\s+all\s+scram-sha-256$/m);
    assert.doesNotMatch(hba, /my user/);
  });
  test('*_FILE variants; the user is the database by default', () => {
    const s = ok(settings({ POSTGRES_USER_FILE: '/run/secrets/u', POSTGRES_PASSWORD_FILE: '/run/secrets/p' }, { '/run/secrets/u': 'alice\n', '/run/secrets/p': 'secret\n' }));
    assert.equal(s.env.PGA_SUPERUSER, 'alice');
    assert.equal(s.env.PGA_SUPERUSER_PASSWORD, 'secret');
    assert.equal(s.database, 'alice');
    const [p] = problemsOf(() => settings({ POSTGRES_PASSWORD_FILE: '/run/secrets/none' }));
    assert.match(p!, /^POSTGRES_PASSWORD_FILE: the file "\/run\/secrets\/none" does not exist/);
  });
  test('no password on first start is refused, as the official image does; trust or a later start need none', () => {
    assert.deepEqual(problemsOf(() => settings({})), [NO_PASSWORD_MESSAGE]);
    assert.equal(ok(settings({ POSTGRES_HOST_AUTH_METHOD: 'trust' })).hostAuthMethod, 'trust');
    assert.equal(ok(settings({}, { '/var/lib/postgresql/data/pgdata/PG_VERSION': '15' })).firstStart, false);
    assert.equal(settings({ PGA_SUPERUSER_PASSWORD: 'x' }).env.PGA_SUPERUSER_PASSWORD, 'x');
  });
  test('bad values name the variable and the fix', () => {
    const ps = problemsOf(() => settings({ POSTGRES_PASSWORD: 'x', POSTGRES_HOST_AUTH_METHOD: 'ident', POSTGRES_INITDB_ARGS: '-U bob', PGA_SUPERUSER: 'a', POSTGRES_USER: 'b' }));
    assert.equal(ps.length, 3);
    assert.match(ps[0]!, /^POSTGRES_USER \("b"\) and PGA_SUPERUSER \("a"\) are both set and differ.*Fix: /);
    assert.match(ps[1]!, /^POSTGRES_HOST_AUTH_METHOD: got "ident"; accepted: scram-sha-256, md5, password, trust, reject/);
    assert.match(ps[2]!, /^POSTGRES_INITDB_ARGS: "-U" is set by the entrypoint .*Fix: use those variables/);
  });
  test('the project\'s own variables keep working: an application user, trust in pg_hba', () => {
    const s = ok(settings({ POSTGRES_HOST_AUTH_METHOD: 'trust', PGA_APP_USER: 'app', PGA_APP_PASSWORD: 'a', PGA_LOG_FORMAT: 'text' }));
    const cfg = loadConfig(s.env, memFiles(BIN), { standalone: { hostAuthMethod: s.hostAuthMethod, database: s.database, initdbArgs: s.initdbArgs } });
    assert.equal(cfg.appUser, 'app');
    assert.equal(cfg.logFormat, 'text');
    assert.equal(cfg.secrets.superuserPassword, '');
    assert.deepEqual(cfg.bootstrap.databases, [], 'POSTGRES_DB defaults to the user, postgres: nothing to create');
    assert.match(renderPgHba(cfg), /^host\s+all\s+all\s+all\s+trust$/m);
    assert.match(renderPgHba(cfg), /^host\s+replication\s+"replicator"\s+all\s+trust$/m);
    assert.throws(() => loadConfig({ ...s.env, PGA_SUPERUSER_PASSWORD: undefined }, memFiles(BIN)), /PGA_SUPERUSER_PASSWORD is required/, 'kubernetes mode still requires it');
  });
  test('replica mode needs the replication password and a valid port', () => {
    const ps = problemsOf(() => settings({ PGA_PRIMARY_HOST: 'db1', PGA_PRIMARY_PORT: 'x' }, {}, 'replica'));
    assert.match(ps.join('\n'), /PGA_PRIMARY_PORT: got "x"/);
    assert.match(ps.join('\n'), /replica mode needs the replication password/);
    const s = ok(settings({ PGA_PRIMARY_HOST: 'db1', PGA_REPLICATION_PASSWORD: 'r' }, {}, 'replica'));
    assert.deepEqual(s.primary, { host: 'db1', port: 5432 });
    assert.deepEqual(s.scripts, []);
  });
});
