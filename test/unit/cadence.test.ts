import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextTickInMs, RETRY_MS } from '../../scripts/core/cadence.js';
import { initialMemory, remember } from '../../scripts/core/memory.js';

const s = { renewMs: 2_000 };
const LOOP = 1_000;

test('not a primary: the loop interval', () => {
  assert.equal(nextTickInMs(initialMemory(), s, LOOP, 5_000), LOOP);
});

test('a primary ticks when its renewal falls due, never a loop later', () => {
  const m = { ...initialMemory(), confirmedAtMs: 10_000 };
  assert.equal(nextTickInMs(m, s, LOOP, 10_050), LOOP, 'due in 1950 ms: the loop first');
  assert.equal(nextTickInMs(m, s, LOOP, 11_020), 980, 'due in 980 ms: exactly then (the old loop looked at 12_020 - ε and slipped to 13_020)');
  assert.equal(nextTickInMs(m, s, LOOP, 11_999.5), 1);
});

test('a failed lease write, or an overdue renewal, is retried after RETRY_MS', () => {
  const m = remember({ ...initialMemory(), confirmedAtMs: 10_000 }, { type: 'lease_write_failed', takeover: false, ifResourceVersion: '7', inDoubt: true }, 'm0');
  assert.equal(m.leaseWriteFailed, true);
  assert.equal(nextTickInMs(m, s, LOOP, 10_100), RETRY_MS);
  assert.equal(nextTickInMs({ ...initialMemory(), confirmedAtMs: 10_000 }, s, LOOP, 12_500), RETRY_MS);
  const ok = remember(m, { type: 'lease_written', sentAtMs: 12_600, holder: 'm0', resourceVersion: '8' }, 'm0');
  assert.equal(ok.leaseWriteFailed, false);
  assert.equal(nextTickInMs(ok, s, LOOP, 12_700), LOOP);
});
