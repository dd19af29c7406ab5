// The one list of owned and refused postgresql.conf parameters (scripts/core/parameters.ts), which
// the entrypoint applies and the chart's _parameters-list.tpl copies (test/chart/parameters.mjs).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NO_NEWLINES, parameterProblems, RULES } from '../../scripts/core/parameters.js';

describe('RULES, the list', () => {
  test('every entry: a lowercase name, a reason and what to do instead, in words', () => {
    for (const r of RULES) {
      assert.match(r.name, /^[a-z_][a-z0-9_]*$/, `${r.name}: names are pg_settings names, lowercase`);
      assert.ok(r.because.length > 10 && !/[\^$\\[]/.test(r.because), `${r.name}: "because" is a sentence, no regex`);
      assert.ok(r.instead.length > 5 && !/[\^$\\[]/.test(r.instead), `${r.name}: "instead" is a sentence, no regex`);
      assert.equal(r.accepted !== undefined, r.kind === 'restricted', `${r.name}: accepted values exactly for restricted entries`);
      if (r.kind === 'owned') assert.match(r.because, new RegExp(`^the autopilot owns ${r.name}: `));
    }
    const keys = RULES.map((r) => `${r.kind === 'backup' ? 'backup' : 'always'}/${r.name}`);
    assert.equal(new Set(keys).size, keys.length, 'one entry per name (and one more for backups)');
  });

  test("every entry's example is refused, by that entry's words, and only with backups for backup entries", () => {
    for (const r of RULES) {
      const got = parameterProblems({ [r.name]: r.example }, r.kind === 'backup');
      assert.ok(got.some((p) => p.includes(`${r.because}. Instead: ${r.instead}`)), `${r.name} = ${r.example}: ${JSON.stringify(got)}`);
      if (r.kind === 'backup') {
        const others = RULES.filter((x) => x.name === r.name && x.kind !== 'backup');
        if (others.length === 0) assert.deepEqual(parameterProblems({ [r.name]: r.example }, false), [], `${r.name} is the user's without backups`);
      }
    }
  });

  test('the issue\'s cases: wal_level minimal, max_wal_senders 0, hot_standby off, port', () => {
    const got = parameterProblems({ wal_level: 'minimal', max_wal_senders: '0', hot_standby: 'off', port: '5433' }, false);
    assert.deepEqual(got, [
      'postgresql.parameters.wal_level = "minimal" is refused: replication needs wal_level replica or logical. Instead: set it to \'replica\' or \'logical\', or remove it (default: replica)',
      'postgresql.parameters.max_wal_senders = "0" is refused: every member streams from the primary and a clone needs two more senders. Instead: set an integer of at least 10, or remove it (default: 10)',
      'postgresql.parameters.hot_standby = "off" is refused: the autopilot owns hot_standby: it is always on, as replicas serve reads and the autopilot queries them. Instead: remove it',
      'postgresql.parameters.port = "5433" is refused: the autopilot owns port: members listen on 5432, the port the Services, probes and replicas use. Instead: remove it; clients reach the members through the read-write and read-only Services',
    ]);
  });
});

describe('names are matched as PostgreSQL matches them: case-insensitively', () => {
  test('mixed-case names of refused parameters are refused, named as written', () => {
    const got = parameterProblems({ Wal_Level: 'minimal', HOT_STANDBY: 'on', Port: '5432', Max_Wal_Senders: '3' }, false);
    assert.equal(got.length, 4, JSON.stringify(got));
    assert.match(got[0]!, /^postgresql\.parameters\.Wal_Level = "minimal" is refused: replication needs/);
    assert.match(got[1]!, /^postgresql\.parameters\.HOT_STANDBY = "on" is refused: the autopilot owns hot_standby/);
    assert.match(got[2]!, /^postgresql\.parameters\.Port = "5432" is refused: the autopilot owns port/);
    assert.match(got[3]!, /^postgresql\.parameters\.Max_Wal_Senders = "3" is refused/);
    assert.match(parameterProblems({ Archive_Command: '/bin/true' }, true)[0]!, /Archive_Command = "\/bin\/true" is refused: backup\.enabled is true/);
  });

  test('mixed-case names of other parameters are accepted (TimeZone, DateStyle; render.test.ts: written as given)', () => {
    assert.deepEqual(parameterProblems({ TimeZone: 'Europe/Paris', DateStyle: 'ISO, DMY', Wal_Level: 'Logical', Max_Wal_Senders: ' 12 ' }, false), []);
  });

  test('archive_mode counts archive_command under any case', () => {
    assert.deepEqual(parameterProblems({ ARCHIVE_MODE: 'on', Archive_Command: 'cp %p /a/%f' }, false), []);
    assert.equal(parameterProblems({ ARCHIVE_MODE: 'on' }, false).length, 1);
  });

  test('the same parameter twice under two spellings is refused: which one wins would be a guess', () => {
    const got = parameterProblems({ TimeZone: 'UTC', timezone: 'Europe/Paris' }, false);
    assert.deepEqual(got, ['postgresql.parameters.timezone = "Europe/Paris" is refused: it is the same parameter as TimeZone (PostgreSQL ignores case in parameter names). Instead: keep only one of them']);
  });

  test('newlines are refused in any value', () => {
    assert.ok(parameterProblems({ Work_Mem: '4MB\nport = 1' }, false)[0]!.includes(NO_NEWLINES));
  });
});
