// parameters.json read again while the member runs (core/live-parameters.ts): validated as at
// start, a refusal names why, `-c` values stay on top, and the change is named parameter by parameter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { changedParameters, readLiveParameters, refusedSettings, restartNeeded, NOT_APPLIED } from '../../scripts/core/live-parameters.js';

const P = '/etc/pg-autopilot/parameters.json';
interface Row { name: string; text: string | null; backupOn?: boolean; overrides?: Record<string, string>; params?: Record<string, string>; problem?: RegExp }
const rows: Row[] = [
  { name: 'a valid file: its values, stringified as at start', text: '{"work_mem":"64MB","max_connections":200,"jit":false}', params: { work_mem: '64MB', max_connections: '200', jit: 'off' } },
  { name: 'an empty object: no parameters', text: '{}', params: {} },
  { name: 'the file gone: no parameters', text: null, params: {} },
  { name: '-c values stay on top', text: '{"work_mem":"64MB"}', overrides: { work_mem: '8MB', jit: 'off' }, params: { work_mem: '8MB', jit: 'off' } },
  { name: 'not JSON: refused, saying so', text: '{"work_mem":', problem: /not valid JSON/ },
  { name: 'not an object: refused', text: '["work_mem"]', problem: /accepted: a JSON object/ },
  { name: 'a parameter the autopilot owns: refused with why and what instead', text: '{"port":5433}', problem: /postgresql\.parameters\.port = "5433" is refused: the autopilot owns port.*Instead: remove it/ },
  { name: 'a value replication cannot live with: refused', text: '{"wal_level":"minimal"}', problem: /wal_level = "minimal" is refused/ },
  { name: 'archive settings while backups are on: refused', text: '{"archive_command":"/bin/true"}', backupOn: true, problem: /backup\.enabled is true/ },
  { name: 'archive settings while backups are off: accepted', text: '{"archive_mode":"on","archive_command":"/bin/true"}', params: { archive_mode: 'on', archive_command: '/bin/true' } },
  { name: 'one name in two spellings: refused', text: '{"TimeZone":"UTC","timezone":"CET"}', problem: /same parameter as TimeZone/ },
];

for (const r of rows) {
  test(`live parameters: ${r.name}`, () => {
    const got = readLiveParameters(P, r.text, r.backupOn ?? false, r.overrides);
    if (r.params) assert.deepEqual(got, { ok: true, params: r.params });
    else {
      assert.equal(got.ok, false);
      assert.ok(!got.ok && got.problems.every((p) => p.startsWith(P)), 'each problem names the file');
      assert.match(!got.ok ? got.problems.join('\n') : '', r.problem!);
    }
  });
}

test('live parameters: the change, named parameter by parameter (added, changed, removed)', () => {
  assert.deepEqual(changedParameters({ work_mem: '4MB', jit: 'off', a: '1' }, { work_mem: '64MB', a: '1', shared_buffers: '1GB' }), ['jit', 'shared_buffers', 'work_mem']);
  assert.deepEqual(changedParameters({ a: '1' }, { a: '1' }), []);
});

test('live parameters: after a reload, what postgres refused is told from what waits for a restart', () => {
  const rows: { name: string; errors: { name: string | null; error: string }[]; pending: string[]; changed: string[]; refused: (string | null)[] }[] = [
    { name: 'a restart-only change waits, not refused', errors: [{ name: 'max_connections', error: NOT_APPLIED }], pending: ['max_connections'], changed: ['max_connections'], refused: [] },
    { name: 'an invalid value: not applied and not pending', errors: [{ name: 'work_mem', error: NOT_APPLIED }], pending: [], changed: ['work_mem'], refused: ['work_mem'] },
    { name: 'names compared as PostgreSQL does (any case)', errors: [{ name: 'Work_Mem', error: NOT_APPLIED }], pending: [], changed: ['work_mem'], refused: ['Work_Mem'] },
    { name: 'an unknown name', errors: [{ name: 'work_memm', error: 'unrecognized configuration parameter' }], pending: [], changed: ['work_memm'], refused: ['work_memm'] },
    { name: 'a restart-only parameter removed from the file waits', errors: [{ name: null, error: 'parameter "shared_buffers" cannot be changed without restarting the server' }], pending: ['shared_buffers'], changed: ['shared_buffers'], refused: [] },
    { name: 'an error on a parameter we did not change is not ours to undo', errors: [{ name: 'jit', error: NOT_APPLIED }], pending: [], changed: ['work_mem'], refused: [] },
    { name: 'an unnamed error of another kind refuses', errors: [{ name: null, error: 'syntax error' }], pending: [], changed: ['work_mem'], refused: [null] },
  ];
  for (const r of rows) assert.deepEqual(refusedSettings(r.errors, r.pending, r.changed).map((f) => f.name), r.refused, r.name);
});

test('restartNeeded: recovery targets left from a restore never call for a restart; everything else does', () => {
  assert.deepEqual(restartNeeded(['recovery_target_action', 'recovery_target_time', 'shared_buffers', 'Recovery_Target_LSN', 'max_connections']), ['shared_buffers', 'max_connections']);
  assert.deepEqual(restartNeeded([]), []);
});
