// parameters.json read again while the member runs (core/live-parameters.ts): validated as at
// start, a refusal names why, `-c` values stay on top, and the change is named parameter by parameter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { changedParameters, readLiveParameters } from '../../scripts/core/live-parameters.js';

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
