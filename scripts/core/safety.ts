// The highest-stakes answers, each a small pure function called from every place that needs it
// and re-implemented nowhere: may this member keep accepting writes, must the watchdog stop
// postgres now, may we promise a primary (failsafe) not to take its lease.
import type { Memory, Settings } from './types.js';

export interface Verdict {
  ok: boolean;
  reason: string;
}

/**
 * May a (possibly) writable postgres stay writable? Only while we proved, within the renew
 * deadline, that the lease is ours (a write of ours that named us, or a failsafe round every
 * member confirmed), or — before any lease exists — for one deadline while we take it; and only
 * while postgres itself answers: a member that cannot learn its own state for the deadline is
 * treated as unhealthy. The deadline is shorter than the lease, and the others judge expiry by
 * their own clocks from the moment they SAW our last write, so we stop first.
 */
export function mayStayWritable(m: Memory, s: Pick<Settings, 'renewDeadlineMs'>, nowMs: number): Verdict {
  const d = s.renewDeadlineMs;
  if (m.pgUnknownSinceMs !== null && nowMs - m.pgUnknownSinceMs >= d) {
    return { ok: false, reason: `postgres has not told us whether it is writable for ${nowMs - m.pgUnknownSinceMs} ms (deadline ${d} ms)` };
  }
  if (m.confirmedAtMs !== null && nowMs - m.confirmedAtMs < d) return { ok: true, reason: `lease confirmed ${nowMs - m.confirmedAtMs} ms ago` };
  if (m.confirmedAtMs === null && m.writableWithoutLeaseSinceMs !== null && nowMs - m.writableWithoutLeaseSinceMs < d) {
    return { ok: true, reason: `writable without the lease for ${nowMs - m.writableWithoutLeaseSinceMs} ms, taking it` };
  }
  return { ok: false, reason: m.confirmedAtMs === null ? 'the lease was never confirmed as ours' : `last confirmed the lease ${nowMs - m.confirmedAtMs} ms ago, past the ${d} ms deadline` };
}

export type WatchdogVerdict = { stop: true; reason: string } | { stop: false; checkAgainInMs: number | null };

/**
 * The watchdog: a timer independent of the tick (which may be blocked on I/O) that stops a
 * postgres which may be writable once `mayStayWritable` says no. Paused or not: pausing stops
 * the autopilot from changing the topology, never from stopping a primary that lost its lease.
 */
export function watchdog(m: Memory, pgRunning: boolean, s: Pick<Settings, 'renewDeadlineMs'>, nowMs: number): WatchdogVerdict {
  if (!pgRunning) return { stop: false, checkAgainInMs: null };
  const mayBeWritable = m.lastKnownWritable !== false || m.pgUnknownSinceMs !== null;
  if (!mayBeWritable) return { stop: false, checkAgainInMs: null };
  const v = mayStayWritable(m, s, nowMs);
  if (!v.ok) return { stop: true, reason: v.reason };
  const due = [
    m.confirmedAtMs !== null ? m.confirmedAtMs + s.renewDeadlineMs : null,
    m.confirmedAtMs === null && m.writableWithoutLeaseSinceMs !== null ? m.writableWithoutLeaseSinceMs + s.renewDeadlineMs : null,
    m.pgUnknownSinceMs !== null ? m.pgUnknownSinceMs + s.renewDeadlineMs : null,
  ].filter((x): x is number => x !== null);
  return { stop: false, checkAgainInMs: due.length ? Math.max(0, Math.min(...due) - nowMs) : null };
}

export interface FailsafeRequest {
  leader: string;
  release: boolean;
}

export interface FailsafeFacts {
  self: string;
  failsafe: boolean;
  /** the holder of the lease as we last saw it */
  leaseHolder: string | null;
  /** our postgres is (or may be) writable */
  writable: boolean;
  /** a take-over write of ours is on the wire right now */
  takeoverInFlight: boolean;
}

/** A primary cut off from the API asks us to confirm it. Our answer, and the memory it leaves. */
export function answerFailsafe(m: Memory, req: FailsafeRequest, f: FailsafeFacts, nowMs: number): { status: 200 | 409; message: string; memory: Memory } {
  const no = (message: string) => ({ status: 409 as const, message, memory: m });
  if (!f.failsafe) return no(`failsafe mode is off on ${f.self}: it confirms no primary (turn it on for every member: autopilot.failsafe, PGA_FAILSAFE=true)`);
  if (req.release) {
    const memory = m.failsafePromise?.to === req.leader ? { ...m, failsafePromise: null } : m;
    return { status: 200, message: `${f.self} released its promise to ${req.leader}`, memory };
  }
  if (req.leader === f.self) return no('that is us');
  if (f.takeoverInFlight) return no(`${f.self} is taking the lease over right now`);
  if (m.takeoverInDoubtRv !== null) return no(`a take-over by ${f.self} may have committed (its reply was lost): not confirming ${req.leader}`);
  if (f.leaseHolder === f.self) return no(`the lease we see names ${f.self}`);
  if (f.writable) return no(`${f.self} is writable itself`);
  if (f.leaseHolder !== null && f.leaseHolder !== req.leader) return no(`the lease we see is held by ${f.leaseHolder}, not ${req.leader}`);
  return { status: 200, message: `${f.self} will not take the lease from ${req.leader} for a lease duration`, memory: { ...m, failsafePromise: { to: req.leader, atMs: nowMs } } };
}
