// The hand-off gives the lease away while postgres drains after its shutdown checkpoint: the
// watchdog must see a postgres that takes no more writes, not a primary without its lease.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialMemory, remember } from '../../scripts/core/memory.js';
import { watchdog } from '../../scripts/core/safety.js';

const s = { renewDeadlineMs: 4_500 };

function primaryHandingOff() {
  // a writable primary that renewed at 10 s, then wrote the lease to m1 at 11 s
  let m = remember({ ...initialMemory(), lastKnownWritable: true }, { type: 'lease_written', sentAtMs: 10_000, holder: 'm0', resourceVersion: '7' }, 'm0');
  assert.equal(watchdog(m, true, s, 10_500).stop, false);
  return m;
}

test('the lease given away while postgres still runs: without the checkpoint seen, the watchdog stops it', () => {
  const m = remember(primaryHandingOff(), { type: 'lease_written', sentAtMs: 11_000, holder: 'm1', resourceVersion: '8' }, 'm0');
  assert.equal(watchdog(m, true, s, 11_050).stop, true);
});

test('after the shutdown checkpoint (writes_stopped) the draining postgres is read-only: the watchdog leaves it to exit', () => {
  let m = remember(primaryHandingOff(), { type: 'writes_stopped' }, 'm0');
  assert.equal(m.lastKnownWritable, false);
  m = remember(m, { type: 'lease_written', sentAtMs: 11_000, holder: 'm1', resourceVersion: '8' }, 'm0');
  m = remember(m, { type: 'handed_off' }, 'm0');
  assert.deepEqual(watchdog(m, true, s, 11_050), { stop: false, checkAgainInMs: null });
  assert.deepEqual(watchdog(m, true, s, 60_000), { stop: false, checkAgainInMs: null });
});

test('writes_stopped also clears a "postgres does not answer" clock: it is known read-only now', () => {
  const m = remember({ ...initialMemory(), lastKnownWritable: true, pgUnknownSinceMs: 5_000 }, { type: 'writes_stopped' }, 'm0');
  assert.equal(m.pgUnknownSinceMs, null);
  assert.equal(watchdog(m, true, s, 20_000).stop, false);
});

test('the checkpoint before a hand-off stays inside the renew deadline, keeping one renew interval for the stop', async () => {
  const { handoffCheckpointMs, MAX_HANDOFF_CHECKPOINT_MS } = await import('../../scripts/core/primary.js');
  const st = { renewMs: 2_000, renewDeadlineMs: 4_500 } as Parameters<typeof handoffCheckpointMs>[1];
  const at = (ago: number | null) => handoffCheckpointMs({ ...initialMemory(), confirmedAtMs: ago === null ? null : 10_000 - ago }, st, 10_000);
  assert.equal(at(null), 0, 'never confirmed: no time to spend');
  assert.equal(at(0), 2_500);
  assert.equal(at(2_000), 500, 'a renewal due now: what is left');
  assert.equal(at(3_000), 0, 'past deadline minus one renew interval: straight to the stop');
  assert.equal(handoffCheckpointMs({ ...initialMemory(), confirmedAtMs: 10_000 }, { renewMs: 2_000, renewDeadlineMs: 20_000 } as typeof st, 10_000), MAX_HANDOFF_CHECKPOINT_MS);
});

test('a switchover decision carries the checkpoint budget to the executor', async () => {
  const { obs, decide, lease } = await import('./fixtures.js');
  const d = decide(obs('m0', { lease: lease({ switchoverTo: 'm2' }), renewedAgoMs: 500 }));
  assert.deepEqual(d.actions.map((a) => a.type), ['handoff']);
  const a = d.actions[0] as { checkpointMs: number; to: string };
  assert.equal(a.to, 'm2');
  assert.equal(a.checkpointMs, 2_000, '4.5 s deadline − 2 s renew interval − 0.5 s since the renewal');
});
