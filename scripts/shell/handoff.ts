// The planned hand-off (switchover, SIGTERM, the last step of a rolling update): stop postgres
// cleanly, wait until the target received the final checkpoint, then give it the lease. Any
// doubt aborts and leaves postgres stopped: the next tick decides (it restarts us as primary only
// after confirming the lease with a conditional write).
//
// Where the time goes, and why the lease moves before postgres has exited: a fast shutdown ends
// every session, writes the shutdown checkpoint, then lets its walsenders send that last record
// and wait for every replica to confirm it, then exits. The shutdown checkpoint is the last WAL
// record this server writes: once pg_control says "shut down", no backend is left, new
// connections are refused and the walsenders only drain what is written. From there on postgres
// takes no write, so the catch-up check and the lease write run while it drains and exits.
// Before the stop, a checkpoint while postgres still takes writes leaves the shutdown checkpoint
// little to flush (the time writes are refused is the time to the shutdown checkpoint and after).
import { parseLsn, formatLsn } from '../core/lsn.js';
import { readControlData, readControlFile } from './controldata.js';
import { leaseAt, writeLease, LEASE_ANNOTATIONS as A } from './lease.js';
import { releaseFailsafe } from './failsafe.js';
import { membersFromPods } from './observe.js';
import { publish } from './publish.js';
import { awaitCoordinatorHold, endHandoffAnnouncement } from './citus-handoff.js';
import { Stale, errMsg, record, type State } from './state.js';

/** How often pg_control is read while postgres shuts down, and the target asked whether it has the checkpoint. */
const CONTROL_POLL_MS = 5;
const TARGET_POLL_MS = 10;
/** How long the target may take to confirm the final checkpoint, from the moment it was written. */
const CATCH_UP_MS = 5_000;
/** A checkpoint before the stop is not attempted in less time than this. */
const MIN_CHECKPOINT_BUDGET_MS = 100;

type FinalCheckpoint = { lsn: bigint; early: boolean } | { lsn: null; why: string };

/**
 * The shutdown checkpoint of the stop under way: seen in pg_control while postgres drains (early),
 * or, when the file cannot be read or trusted, from pg_controldata once postgres has exited.
 * Only a clean shutdown writes one; after an escalation (the watchdog, a timeout) the last
 * checkpoint is an older one, and comparing against it would let a lagging target pass.
 */
async function finalCheckpoint(st: State, stop: { done: boolean; error: string | null }, exited: Promise<void>): Promise<FinalCheckpoint> {
  let unreadable: Error | null = null;
  while (!stop.done) {
    const cf = await readControlFile(st.cfg.dataDir);
    if (cf instanceof Error) unreadable = cf;
    else if (cf.shutDown) return { lsn: cf.checkpointLsn, early: true };
    await new Promise((r) => setTimeout(r, CONTROL_POLL_MS));
  }
  await exited;
  if (stop.error !== null) return { lsn: null, why: `stopping postgres failed: ${stop.error}` };
  if (unreadable) st.log.info('hand-off: pg_control could not be read while postgres stopped; asked pg_controldata after the exit', { why: unreadable.message });
  const cd = await readControlData(st.cfg.binDir, st.cfg.dataDir);
  if (cd.state !== 'shut down' || !cd.checkpointLsn) return { lsn: null, why: `postgres did not shut down cleanly (${cd.state})` };
  return { lsn: parseLsn(cd.checkpointLsn), early: false };
}

/** Has the target flushed WAL past `want` (the final checkpoint record's start)? Asked until `untilMs`. */
async function targetHas(st: State, apiUrl: string, want: bigint, untilMs: number): Promise<boolean> {
  for (;;) {
    const s = await st.fetchStatus(apiUrl, 500);
    const got = s?.receivedLsn ? parseLsn(s.receivedLsn) : null;
    if (got !== null && got > want) return true;
    if (st.now() >= untilMs) return false;
    await new Promise((r) => setTimeout(r, TARGET_POLL_MS));
  }
}

/**
 * A checkpoint while postgres still takes writes, for at most `budgetMs` (the core's
 * handoffCheckpointMs: inside the renew deadline): the shutdown checkpoint then has little left
 * to flush. Past the budget the stop goes ahead; the fast shutdown ends the CHECKPOINT's session
 * and the checkpointer finishes what it started before its shutdown checkpoint.
 */
async function checkpointFirst(st: State, budgetMs: number): Promise<void> {
  if (budgetMs < MIN_CHECKPOINT_BUDGET_MS) return;
  const t0 = st.now();
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    st.pg.checkpoint(budgetMs).then(() => 'done', (e) => `failed: ${errMsg(e)}`),
    new Promise<string>((r) => { timer = setTimeout(() => r('over budget'), budgetMs); }),
  ]);
  clearTimeout(timer);
  st.log.info('hand-off: checkpoint while postgres still takes writes', { outcome, ms: st.now() - t0, budgetMs });
}

export async function handoff(st: State, to: string, ifResourceVersion: string, checkpointMs: number): Promise<void> {
  const { log } = st;
  const base = leaseAt(st, ifResourceVersion);
  const member = membersFromPods(st).find((m) => m.name === to);
  if (!base || !member) throw new Stale(`hand-off to ${to}: the lease changed or ${to} is gone since the decision`);
  // Citus worker: the coordinator holds our group's queries meanwhile (same budget, in parallel)
  try {
    await Promise.all([checkpointFirst(st, checkpointMs), awaitCoordinatorHold(st, to, checkpointMs)]);
  } catch (e) {
    endHandoffAnnouncement(st);
    throw e;
  }
  const t0 = st.now();
  log.info('hand-off: stopping postgres for a final checkpoint', { to });
  // From the shutdown request on postgres takes no new write: our primary label comes off now, in
  // parallel with the stop, so the target finds no other pod to unlabel before it promotes.
  st.stopping = true;
  void publish(st, true);
  const stop = { done: false, error: null as string | null };
  const exited = st.pg.stop('fast').then(
    () => { stop.done = true; },
    (e) => { stop.done = true; stop.error = errMsg(e); log.error('hand-off: stopping postgres failed', { error: stop.error }); },
  );
  try {
    const cp = await finalCheckpoint(st, stop, exited);
    const checkpointMs = st.now() - t0;
    let caughtUp = false;
    if (cp.lsn !== null) {
      // No write can happen any more: the watchdog has nothing left to guard while postgres drains.
      record(st, { type: 'writes_stopped' });
      caughtUp = await targetHas(st, member.apiUrl, cp.lsn, st.now() + CATCH_UP_MS);
    }
    const checkpoint = cp.lsn === null ? null : formatLsn(cp.lsn);
    const seen = cp.lsn !== null && cp.early ? 'in pg_control while postgres stopped' : 'by pg_controldata after the exit';
    if (!caughtUp) {
      log.warn(cp.lsn === null ? `hand-off aborted: ${cp.why}` : 'hand-off aborted: the target did not receive the final checkpoint in time', { to, checkpoint });
      await exited;
      const cur = st.lease;
      if (cur && cur.spec.holderIdentity === st.cfg.podName) {
        await writeLease(st, cur, { holder: st.cfg.podName, transition: false, annotations: { [A.switchoverTo]: null } }, cur.metadata.resourceVersion ?? '');
      }
      return;
    }
    const caughtUpMs = st.now() - t0;
    const cur = st.lease;
    const ok = cur ? await writeLease(st, cur, { holder: to, transition: true, annotations: { [A.switchoverTo]: null, [A.syncStandbys]: null, [A.syncCount]: null } }, cur.metadata.resourceVersion ?? '') : false;
    if (!ok) {
      log.warn('hand-off aborted: the lease write failed; postgres stays stopped until the next tick decides', { to });
      await exited;
      return;
    }
    const ms = st.now() - t0;
    record(st, { type: 'handed_off' });
    releaseFailsafe(st);
    log.info('hand-off: lease given', { to, ms, checkpoint, checkpointMs, caughtUpMs, checkpointSeen: seen });
    void st.kube.event('Lease', st.leaseName, 'Switchover', `${st.cfg.podName} handed the primary role to ${to} in ${ms} ms`);
    await exited;
    log.info('hand-off: postgres stopped', { to, ms: st.now() - t0 });
  } finally {
    st.stopping = false;
    void publish(st, true);
    endHandoffAnnouncement(st);
  }
}
