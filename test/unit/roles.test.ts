// The roles and databases planner, as a table: a declaration, a catalog, the statements expected
// (in order) and a word of the warnings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planRoles, rolesPassDue, type ActualDatabase, type ActualRole } from '../../scripts/core/roles.js';
import { createHash } from 'node:crypto';
import { passwordMatches } from '../../scripts/shell/pg/roles-sql.js';
import { scramVerifier } from '../../scripts/shell/pg/scram.js';
import { FLAG_DEFAULTS, type DesiredDatabase, type DesiredUser } from '../../scripts/core/roles-config.js';

const user = (name: string, o: Partial<DesiredUser> = {}): DesiredUser => ({
  name, ensure: 'present', password: null, passwordKey: null, flags: { ...FLAG_DEFAULTS, LOGIN: true }, connectionLimit: -1, inRoles: [], createOnly: [], options: [], ...o,
});
const role = (name: string, o: Partial<ActualRole> = {}): ActualRole => ({
  name, flags: { ...FLAG_DEFAULTS, LOGIN: true }, connectionLimit: -1, memberOf: [], passwordMatches: null, ownsDatabases: [], dependencies: 0, ...o,
});
const db = (name: string, owner: string, o: Partial<DesiredDatabase> = {}): DesiredDatabase => ({ name, owner, ensure: 'present', connectionLimit: -1, ...o });
const have = (name: string, owner: string, connectionLimit = -1): ActualDatabase => ({ name, owner, connectionLimit });

interface Row {
  name: string;
  users?: DesiredUser[];
  dbs?: DesiredDatabase[];
  roles?: ActualRole[];
  databases?: ActualDatabase[];
  want: string[];
  warn?: RegExp;
  reason?: RegExp;
}

const RESERVED = ['postgres', 'replicator', 'app'];
const rows: Row[] = [
  { name: 'nothing declared: nothing', want: [] },
  { name: 'in sync: nothing', users: [user('a')], roles: [role('a')], want: [] },
  { name: 'new role with a password: created, the password as a token', users: [user('a', { password: 'pw', passwordKey: 'a-pw' })], want: ['CREATE ROLE "a" WITH LOGIN <password>'], reason: /does not exist: create it with its password/ },
  { name: 'new role without LOGIN: defaults are not spelled out', users: [user('a', { flags: { ...FLAG_DEFAULTS } })], want: ['CREATE ROLE "a"'] },
  { name: 'new role: connection limit and create-only options', users: [user('a', { connectionLimit: 4, createOnly: ["VALID UNTIL '2030-01-01'"] })], want: [`CREATE ROLE "a" WITH LOGIN CONNECTION LIMIT 4 VALID UNTIL '2030-01-01'`] },
  { name: 'options changed: only the differences', users: [user('a', { flags: { ...FLAG_DEFAULTS, LOGIN: true, CREATEDB: true } })], roles: [role('a', { flags: { ...FLAG_DEFAULTS, LOGIN: true, INHERIT: false } })], want: ['ALTER ROLE "a" WITH CREATEDB INHERIT'], reason: /options differ/ },
  { name: 'LOGIN removed from the declaration: NOLOGIN', users: [user('a', { flags: { ...FLAG_DEFAULTS } })], roles: [role('a')], want: ['ALTER ROLE "a" WITH NOLOGIN'] },
  { name: 'connection limit changed', users: [user('a', { connectionLimit: 2 })], roles: [role('a', { connectionLimit: 5 })], want: ['ALTER ROLE "a" WITH CONNECTION LIMIT 2'] },
  { name: 'password rotated (stored verifier differs): set', users: [user('a', { password: 'new', passwordKey: 'k' })], roles: [role('a', { passwordMatches: false })], want: ['ALTER ROLE "a" WITH <password>'], reason: /not the one in k/ },
  { name: 'password matches: nothing', users: [user('a', { password: 'same', passwordKey: 'k' })], roles: [role('a', { passwordMatches: true })], want: [] },
  { name: 'password cannot be compared: left alone', users: [user('a', { password: 'é', passwordKey: 'k' })], roles: [role('a', { passwordMatches: null })], want: [] },
  { name: 'no passwordKey: a password set by hand is kept', users: [user('a')], roles: [role('a', { passwordMatches: false })], want: [] },
  { name: 'membership added', users: [user('a', { inRoles: ['pg_read_all_data'] })], roles: [role('a'), role('pg_read_all_data')], want: ['GRANT "pg_read_all_data" TO "a"'] },
  { name: 'membership in a role that does not exist: warned, not granted', users: [user('a', { inRoles: ['ghost'] })], roles: [role('a')], want: [], warn: /cannot join ghost/ },
  { name: 'membership in a role declared in the same pass: created first, then granted', users: [user('a', { inRoles: ['readers'] }), user('readers', { flags: { ...FLAG_DEFAULTS } })], want: ['CREATE ROLE "a" WITH LOGIN', 'CREATE ROLE "readers"', 'GRANT "readers" TO "a"'] },
  { name: 'membership no longer declared: revoked', users: [user('a')], roles: [role('a', { memberOf: ['pg_read_all_data'] })], want: ['REVOKE "pg_read_all_data" FROM "a"'], reason: /does not list/ },
  { name: 'reserved role declared: never touched', users: [user('replicator', { flags: { ...FLAG_DEFAULTS } }), user('pg_monitor')], roles: [role('replicator')], want: [], warn: /replicator: left alone/ },
  { name: 'undeclared roles are never touched', users: [], roles: [role('someone')], want: [] },
  { name: 'absent role that owns nothing: dropped', users: [user('a', { ensure: 'absent' })], roles: [role('a')], want: ['DROP ROLE "a"'], reason: /owns nothing/ },
  { name: 'absent role already gone: nothing', users: [user('a', { ensure: 'absent' })], want: [] },
  { name: 'absent role owning a database: disabled, not dropped, and said so', users: [user('a', { ensure: 'absent' })], roles: [role('a', { ownsDatabases: ['adb'] })], want: ['ALTER ROLE "a" WITH NOLOGIN'], warn: /owns database\(s\) adb: not dropped\. Fix: REASSIGN OWNED BY a/ },
  { name: 'absent role owning objects, already NOLOGIN: nothing but the warning', users: [user('a', { ensure: 'absent' })], roles: [role('a', { flags: { ...FLAG_DEFAULTS }, dependencies: 3 })], want: [], warn: /3 object\(s\) or privilege\(s\) depend on it/ },
  { name: 'absent role whose database is re-owned in the same pass: re-owned, then dropped', users: [user('a', { ensure: 'absent' }), user('b')], dbs: [db('adb', 'b')], roles: [role('a', { ownsDatabases: ['adb'] }), role('b')], databases: [have('adb', 'a')], want: ['ALTER DATABASE "adb" OWNER TO "b"', 'DROP ROLE "a"'] },
  { name: 'absent role whose database is dropped in the same pass: both dropped, database first', users: [user('a', { ensure: 'absent' })], dbs: [db('adb', 'a', { ensure: 'absent' })], roles: [role('a', { ownsDatabases: ['adb'] })], databases: [have('adb', 'a')], want: ['DROP DATABASE "adb"', 'DROP ROLE "a"'] },
  { name: 'new database with a new owner: role first', users: [user('o')], dbs: [db('d', 'o', { connectionLimit: 7 })], want: ['CREATE ROLE "o" WITH LOGIN', 'CREATE DATABASE "d" OWNER "o" CONNECTION LIMIT 7'] },
  { name: 'database owner missing: warned, not created', dbs: [db('d', 'ghost')], want: [], warn: /owner ghost does not exist/ },
  { name: 'database owner and limit changed', dbs: [db('d', 'o', { connectionLimit: 3 })], roles: [role('o')], databases: [have('d', 'postgres')], want: ['ALTER DATABASE "d" OWNER TO "o"', 'ALTER DATABASE "d" WITH CONNECTION LIMIT 3'] },
  { name: 'absent database that does not exist: nothing', dbs: [db('d', 'postgres', { ensure: 'absent' })], want: [] },
  { name: 'database owned by a role declared absent: not re-owned, the role disabled, both said', users: [user('a', { ensure: 'absent' })], dbs: [db('d', 'a')], roles: [role('a', { ownsDatabases: ['d'] })], databases: [have('d', 'a')], want: ['ALTER ROLE "a" WITH NOLOGIN'], warn: /database d: its owner a does not exist[\s\S]*role a is declared ensure: absent but owns database\(s\) d/ },
  { name: 'names are quoted', users: [user('we"ird', { flags: { ...FLAG_DEFAULTS } })], want: ['CREATE ROLE "we""ird"'] },
];

for (const r of rows) {
  test(`roles: ${r.name}`, () => {
    const p = planRoles(r.users ?? [], r.dbs ?? [], { roles: r.roles ?? [], databases: r.databases ?? [] }, RESERVED);
    assert.deepEqual(p.actions.map((a) => a.sql), r.want);
    if (r.warn) assert.match(p.warnings.join('\n'), r.warn);
    else assert.deepEqual(p.warnings, []);
    if (r.reason) assert.match(p.actions.map((a) => a.reason).join('\n'), r.reason);
    for (const a of p.actions) assert.ok(a.reason.length > 10 && !a.reason.includes('\n'), `one-line reason: ${a.reason}`);
    for (const a of p.actions) assert.equal(a.sql.includes('<password>'), a.passwordOf !== undefined, `passwordOf set exactly when the statement carries a password: ${a.sql}`);
  });
}

test('roles: CREATE/DROP DATABASE marked to run outside a transaction block', () => {
  const p = planRoles([], [db('n', 'postgres'), db('g', 'postgres', { ensure: 'absent' })], { roles: [role('postgres')], databases: [have('g', 'postgres')] }, []);
  assert.deepEqual(p.actions.map((a) => [a.kind, a.outsideTransaction]), [['create_database', true], ['drop_database', true]]);
});

test('roles: a stored password is compared by recomputing its verifier, never read back', () => {
  const stored = scramVerifier('right-pw')!;
  assert.equal(passwordMatches(stored, 'right-pw', 'a'), true, 'same password, same salt and iterations: same verifier');
  assert.equal(passwordMatches(stored, 'wrong-pw', 'a'), false);
  assert.equal(passwordMatches(scramVerifier('right-pw', Buffer.alloc(16, 7), 8192), 'right-pw', 'a'), true, 'its own iterations count');
  assert.equal(passwordMatches(null, 'x', 'a'), false, 'no password stored: set it');
  assert.equal(passwordMatches(`md5${createHash('md5').update('pwa').digest('hex')}`, 'pw', 'a'), true, 'md5 verifiers: md5(password || role name)');
  assert.equal(passwordMatches(`md5${createHash('md5').update('pwa').digest('hex')}`, 'pw', 'b'), false);
  assert.equal(passwordMatches(stored, 'pässword', 'a'), null, 'outside printable ASCII: cannot tell');
});

test('roles: when the primary runs a pass', () => {
  const base = { primary: true, wasPrimary: true, changed: false, sinceLastMs: 1_000, lastFailed: false };
  const cases: [string, Partial<typeof base>, RegExp | null][] = [
    ['a replica: never', { primary: false, wasPrimary: false, changed: true }, null],
    ['just promoted (or started): at once', { wasPrimary: false }, /became the primary/],
    ['files changed: at once', { changed: true }, /changed/],
    ['nothing changed, 1 s later: not now', {}, null],
    ['failed 10 s ago: not yet', { lastFailed: true, sinceLastMs: 10_000 }, null],
    ['failed 30 s ago: again', { lastFailed: true, sinceLastMs: 30_000 }, /failed 30 s ago/],
    ['60 s since the last good pass: a periodic check', { sinceLastMs: 60_000 }, /periodic/],
  ];
  for (const [name, o, want] of cases) {
    const got = rolesPassDue({ ...base, ...o });
    if (want === null) assert.equal(got, null, name);
    else assert.match(got ?? '', want, name);
  }
});
