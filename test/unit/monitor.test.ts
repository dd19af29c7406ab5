// The exporter's own role (PGA_MONITOR_USER): configured and refused as the other system roles
// are, planned by the roles planner as a system role (LOGIN, pg_monitor and nothing else, a
// connection limit, its password read again on each pass), reserved against declarations, and
// admitted by pg_hba over TCP loopback only.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../scripts/core/config.js';
import { renderPgHba } from '../../scripts/core/render.js';
import { FLAG_DEFAULTS, MONITOR_CONNECTION_LIMIT, systemUsers, type DesiredUser } from '../../scripts/core/roles-config.js';
import { planRoles, type ActualRole } from '../../scripts/core/roles.js';
import { memFiles } from './mem-files.js';

const FILES: Record<string, string> = {
  '/usr/lib/postgresql/15/bin/postgres': 'ELF',
  '/s/su': 'supw\n', '/s/repl': 'replpw\n', '/s/app': 'apppw\n', '/s/token': 'tok\n', '/s/monitor': 'monpw\n',
};
const ENV: Record<string, string> = {
  PGA_CLUSTER_NAME: 'pg', PGA_NAMESPACE: 'db', PGA_POD_NAME: 'pg-postgres-0', PGA_POD_IP: '10.0.0.5', PGA_MEMBER_SELECTOR: 'app=pg',
  PGA_SUPERUSER_PASSWORD_FILE: '/s/su', PGA_REPLICATION_PASSWORD_FILE: '/s/repl', PGA_APP_PASSWORD_FILE: '/s/app', PGA_API_TOKEN_FILE: '/s/token',
  PGA_MONITOR_USER: 'pga_monitor', PGA_MONITOR_PASSWORD_FILE: '/s/monitor',
};
const load = (env: Record<string, string | undefined> = {}, files: Record<string, string> = {}) => loadConfig({ ...ENV, ...env }, memFiles({ ...FILES, ...files }));

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('config: PGA_MONITOR_USER', () => {
  test('the role and its password file', () => {
    const c = load();
    assert.equal(c.monitorUser, 'pga_monitor');
    assert.equal(c.monitorPasswordFile, '/s/monitor');
    assert.equal(c.secrets.monitorPassword, 'monpw');
  });
  test('the password is required with the role, and says which file to set', () => {
    const p = problemsOf(() => load({ PGA_MONITOR_PASSWORD_FILE: undefined }));
    assert.ok(p.some((x) => /PGA_MONITOR_PASSWORD is required .*exporter's role.*PGA_MONITOR_PASSWORD_FILE/.test(x)), p.join('\n'));
  });
  test('a name already used by another system role, or a pg_ name, is refused', () => {
    assert.ok(problemsOf(() => load({ PGA_MONITOR_USER: 'replicator' })).some((x) => /PGA_MONITOR_USER is "replicator".*choose another name/.test(x)));
    assert.ok(problemsOf(() => load({ PGA_MONITOR_USER: 'pg_monitor' })).some((x) => /^PGA_MONITOR_USER: .*not starting with "pg_"/.test(x)));
  });
  test('roles.json may not declare it', () => {
    const p = problemsOf(() => load({}, { '/etc/pg-autopilot/roles.json': JSON.stringify({ users: [{ name: 'pga_monitor', options: ['LOGIN'] }] }) }));
    assert.ok(p.some((x) => /users entry "pga_monitor" is a role the entrypoint manages .*exporter/.test(x)), p.join('\n'));
  });
});

describe('systemUsers', () => {
  test('none without PGA_MONITOR_USER', () => {
    assert.deepEqual(systemUsers({ monitorUser: null, monitorPasswordFile: null, secrets: { monitorPassword: null } }, memFiles({}), []), []);
  });
  test('LOGIN, pg_monitor only, a connection limit; the password read again from its file', () => {
    const cfg = load();
    const problems: string[] = [];
    const [u, ...rest] = systemUsers(cfg, memFiles({ '/s/monitor': 'rotated\n' }), problems);
    assert.equal(rest.length, 0);
    assert.deepEqual(problems, []);
    assert.equal(u!.name, 'pga_monitor');
    assert.equal(u!.password, 'rotated', 'the file as it is now, not as it was at start');
    assert.deepEqual(u!.flags, { ...FLAG_DEFAULTS, LOGIN: true });
    assert.deepEqual(u!.inRoles, ['pg_monitor']);
    assert.equal(u!.connectionLimit, MONITOR_CONNECTION_LIMIT);
  });
  test('a missing or empty file: said so, and the stored password is kept (not managed this pass)', () => {
    const cfg = load();
    for (const files of [{}, { '/s/monitor': '\n' }] as Record<string, string>[]) {
      const problems: string[] = [];
      const [u] = systemUsers(cfg, memFiles(files), problems);
      assert.equal(u!.password, null);
      assert.match(problems.join('\n'), /PGA_MONITOR_PASSWORD_FILE: "\/s\/monitor" (does not exist|is empty); the stored password of pga_monitor is kept\. Fix:/);
    }
  });
});

describe('planRoles with the exporter role', () => {
  const mon = (): DesiredUser => systemUsers(load(), memFiles(FILES), [])[0]!;
  const role = (o: Partial<ActualRole> = {}): ActualRole => ({
    name: 'pga_monitor', flags: { ...FLAG_DEFAULTS, LOGIN: true }, connectionLimit: MONITOR_CONNECTION_LIMIT, memberOf: ['pg_monitor'], passwordMatches: true, ownsDatabases: [], dependencies: 0, ...o,
  });
  const pgMonitor: ActualRole = { ...role(), name: 'pg_monitor', flags: { ...FLAG_DEFAULTS }, memberOf: [], connectionLimit: -1 };
  const RESERVED = ['postgres', 'replicator', 'app', 'pga_monitor'];
  const sqls = (users: DesiredUser[], roles: ActualRole[]) => planRoles(users, [], { roles, databases: [] }, RESERVED, [mon()]);

  test('missing: created with its password and granted pg_monitor, the reason naming it', () => {
    const p = planRoles([], [], { roles: [pgMonitor], databases: [] }, RESERVED, [mon()]);
    assert.deepEqual(p.actions.map((a) => a.sql), [`CREATE ROLE "pga_monitor" WITH LOGIN CONNECTION LIMIT ${MONITOR_CONNECTION_LIMIT} <password>`, 'GRANT "pg_monitor" TO "pga_monitor"']);
    assert.match(p.actions[0]!.reason, /role pga_monitor \(the exporter's role\) .*create it with its password/);
    assert.equal(p.actions[0]!.passwordOf, 'pga_monitor');
  });
  test('in sync: nothing', () => {
    assert.deepEqual(sqls([], [role(), pgMonitor]).actions, []);
  });
  test('drift made by hand is undone: rights added, membership added, password changed', () => {
    const p = sqls([], [role({ flags: { ...FLAG_DEFAULTS, LOGIN: true, SUPERUSER: true, CREATEDB: true }, memberOf: ['pg_monitor', 'pg_write_all_data'], passwordMatches: false, connectionLimit: -1 }), pgMonitor]);
    assert.deepEqual(p.actions.map((a) => a.sql), [
      `ALTER ROLE "pga_monitor" WITH NOSUPERUSER NOCREATEDB CONNECTION LIMIT ${MONITOR_CONNECTION_LIMIT}`,
      'ALTER ROLE "pga_monitor" WITH <password>',
      'REVOKE "pg_write_all_data" FROM "pga_monitor"',
    ]);
    assert.match(p.actions[1]!.reason, /not the one in \/s\/monitor: set it/);
  });
  test('a user declaring the same name is left alone and warned; the system role is still kept', () => {
    const declared: DesiredUser = { ...mon(), system: undefined, flags: { ...FLAG_DEFAULTS, LOGIN: true, SUPERUSER: true }, inRoles: [] };
    const p = sqls([declared], [role(), pgMonitor]);
    assert.deepEqual(p.actions, []);
    assert.match(p.warnings.join('\n'), /role pga_monitor: left alone, a role the autopilot manages/);
  });
});

describe('pg_hba: the exporter role over loopback only', () => {
  const rules = (hba: string) => hba.split('\n').filter((l) => l.trim() && !l.startsWith('#')).map((l) => l.trim().split(/\s+/));
  test('loopback scram, then rejected over the socket and the network, before the user rules', () => {
    const r = rules(renderPgHba(load({}, { '/etc/pg-autopilot/pg_hba.conf': 'host all all 0.0.0.0/0 trust\n' })));
    const mine = r.filter((x) => x[2] === '"pga_monitor"');
    assert.deepEqual(mine, [
      ['host', 'all', '"pga_monitor"', '127.0.0.1/32', 'scram-sha-256'],
      ['host', 'all', '"pga_monitor"', '::1/128', 'scram-sha-256'],
      ['local', 'all', '"pga_monitor"', 'reject'],
      ['host', 'all', '"pga_monitor"', 'all', 'reject'],
    ]);
    const userRule = r.findIndex((x) => x[4] === 'trust');
    assert.ok(r.indexOf(mine[3]!) < userRule, 'a user rule cannot admit the exporter role from elsewhere');
    assert.ok(r.findIndex((x) => x[0] === 'local' && x[2] === 'all') > r.indexOf(mine[2]!), 'rejected over the socket before local all all');
  });
  test('with TLS the loopback rules are hostssl', () => {
    const r = rules(renderPgHba(load({ PGA_TLS_CERT_FILE: '/t/crt', PGA_TLS_KEY_FILE: '/t/key' }, { '/t/crt': 'C', '/t/key': 'K' })));
    assert.deepEqual(r.filter((x) => x[2] === '"pga_monitor"').map((x) => x[0]), ['hostssl', 'hostssl', 'local', 'host']);
  });
  test('standalone mode too: ahead of its trusted socket and POSTGRES_HOST_AUTH_METHOD', () => {
    const c = loadConfig(ENV, memFiles(FILES), { standalone: { hostAuthMethod: 'trust', database: 'postgres', initdbArgs: [] } });
    const r = rules(renderPgHba(c));
    const first = r.findIndex((x) => x[2] === '"pga_monitor"');
    assert.deepEqual(r.slice(first, first + 4).map((x) => `${x[0]} ${x[3]} ${x[4] ?? ''}`.trim()), ['host 127.0.0.1/32 scram-sha-256', 'host ::1/128 scram-sha-256', 'local reject', 'host all reject']);
    assert.ok(first < r.findIndex((x) => x[0] === 'local' && x[2] === 'all'), 'before local all all trust');
    assert.ok(first < r.findIndex((x) => x.join(' ') === 'host all all all trust'), 'before the host auth method');
  });
  test('no rule without PGA_MONITOR_USER', () => {
    assert.doesNotMatch(renderPgHba(load({ PGA_MONITOR_USER: undefined, PGA_MONITOR_PASSWORD_FILE: undefined })), /pga_monitor/);
  });
});
