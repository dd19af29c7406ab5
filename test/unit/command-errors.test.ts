// A failed program's error message: the line that says what went wrong, not the last lines of
// whatever it printed after it (pgBackRest prints an S3 reply's headers after its ERROR line).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gist, PgCommandError } from '../../scripts/shell/pg/commands.js';

test('pgBackRest: the ERROR line and the S3 error code, not the reply headers', () => {
  const out = [
    '2026-11-29 07:24:39.058 P00  ERROR: [039]: HTTP request failed with 403 (Forbidden):',
    '                                    *** Path/File ***:',
    '                                    content-type: application/xml',
    '                                    date: Sun, 29 Nov 2026 07:23:55 GMT',
    '                                    <Error><Code>SignatureDoesNotMatch</Code><Message>…</Message></Error>',
    '                                    x-amz-request-id: 18EC7337D9869851E9AED41C',
  ].join('\n');
  assert.equal(gist(out), '2026-11-29 07:24:39.058 P00  ERROR: [039]: HTTP request failed with 403 (Forbidden): | S3 error code SignatureDoesNotMatch');
  assert.match(new PgCommandError('/usr/bin/pgbackrest', 39, null, out).message, /^\/usr\/bin\/pgbackrest failed \(exit 39\): .*ERROR: \[039\]: HTTP request failed with 403/);
});

test('initdb-style "error:" lines are found; without one the last five lines are kept', () => {
  assert.equal(gist('The files belonging to this database system will be owned by user "postgres".\ninitdb: error: directory "/x" exists but is not empty\nhint: remove it'), 'initdb: error: directory "/x" exists but is not empty');
  assert.equal(gist('a\nb\nc\nd\ne\nf\n'), 'b | c | d | e | f');
  assert.equal(new PgCommandError('x', 1, null, '').message, 'x failed (exit 1): no output');
});
