// What the autopilot remembers between ticks, and how it changes. Pure: the shell reports what
// happened (an Outcome) or what it saw (an Observation) and stores the memory it gets back.
import type { Memory, Observation, Outcome } from './types.js';

export function initialMemory(): Memory {
  return {
    confirmedAtMs: null,
    writableWithoutLeaseSinceMs: null,
    pgUnknownSinceMs: null,
    pgStartingSinceMs: null,
    lastKnownWritable: null,
    notStreamingSinceMs: null,
    rewindFailures: 0,
    startFailures: 0,
    startFailingSinceMs: null,
    failsafePromise: null,
    takeoverInDoubtRv: null,
    syncChange: null,
    lastWrittenRv: null,
    leaseWriteFailed: false,
    leavingSinceMs: null,
    restoreFailed: null,
  };
}

/** Fold the result of an action into memory. `nowMs` is the member's monotonic clock. */
export function remember(m: Memory, e: Outcome, self: string): Memory {
  switch (e.type) {
    case 'lease_written':
      return {
        ...m,
        // Our hold dates from the moment the write was SENT: the others may have seen it from then on.
        confirmedAtMs: e.holder === self ? Math.max(e.sentAtMs, m.confirmedAtMs ?? -Infinity) : null,
        lastWrittenRv: e.resourceVersion,
        takeoverInDoubtRv: null,
        leaseWriteFailed: false,
      };
    case 'lease_write_failed':
      // A take-over whose reply was lost may have committed: until we see the lease again we act
      // as if it had (no failsafe promise to the old holder), but never promote on it.
      return { ...m, leaseWriteFailed: true, ...(e.takeover && e.inDoubt ? { takeoverInDoubtRv: e.ifResourceVersion ?? '' } : {}) };
    case 'failsafe_round':
      return e.allConfirmed ? { ...m, confirmedAtMs: Math.max(e.sentAtMs, m.confirmedAtMs ?? -Infinity) } : m;
    case 'started':
      return { ...m, startFailures: 0, startFailingSinceMs: null, lastKnownWritable: e.as === 'primary' };
    case 'promoted':
      return { ...m, lastKnownWritable: true };
    case 'start_failed':
      return { ...m, startFailures: m.startFailures + 1, startFailingSinceMs: m.startFailingSinceMs ?? e.atMs };
    case 'rewound':
      if (e.outcome === 'done') return { ...m, rewindFailures: 0 };
      // An unreachable source proves nothing about our data: it never counts toward a wipe.
      return e.outcome === 'failed' ? { ...m, rewindFailures: m.rewindFailures + 1 } : m;
    case 'wiped':
      return { ...m, rewindFailures: 0, startFailures: 0, startFailingSinceMs: null, lastKnownWritable: null };
    case 'restore_failed':
      // sticky for this process: the next clone uses pg_basebackup (never a loop of failing restores)
      return { ...m, restoreFailed: e.detail.split('\n')[0]!.slice(0, 300) };
    case 'demoted':
      return { ...m, confirmedAtMs: null, syncChange: null };
    case 'writes_stopped':
      // pg_control records the shutdown checkpoint: no backend is left and none is admitted, so
      // postgres is known read-only until it exits (the watchdog has nothing to stop).
      return { ...m, lastKnownWritable: false, pgUnknownSinceMs: null };
    case 'handed_off':
      return { ...m, confirmedAtMs: null, syncChange: null };
    case 'sync_applied':
      // The WAL position is taken at the next observation, a tick later: by then every backend
      // has reloaded, so any commit acknowledged under the old set lies at or before it.
      return { ...m, syncChange: { names: [...e.names].sort(), count: e.count, lsn: null } };
  }
}

/** Time-driven memory: what this observation changes before anything is decided. */
export function observeInto(m: Memory, o: Observation): Memory {
  const now = o.nowMs;
  const next = { ...m };
  const pg = o.pg;
  // Only a silent postgres that may be writable is a danger; one that is starting is not.
  const unknown = pg.running && pg.inRecovery === null && maybeWritable(o, m);
  next.pgUnknownSinceMs = unknown ? m.pgUnknownSinceMs ?? now : null;
  const starting = pg.running && pg.inRecovery === null && !maybeWritable(o, m);
  next.pgStartingSinceMs = starting ? m.pgStartingSinceMs ?? now : null;
  if (pg.running && pg.inRecovery !== null) next.lastKnownWritable = pg.inRecovery === false;
  if (!pg.running) next.lastKnownWritable = false;
  const holder = o.lease?.holder ?? null;
  const ours = o.lease !== undefined && holder === o.self;
  const writable = maybeWritable(o, m);
  next.writableWithoutLeaseSinceMs = writable && !ours && o.lease !== undefined ? m.writableWithoutLeaseSinceMs ?? now : null;
  next.notStreamingSinceMs = pg.running && pg.inRecovery === true && !pg.streaming ? m.notStreamingSinceMs ?? now : null;
  // A lease version other than the one our lost take-over was conditioned on settles the doubt.
  if (m.takeoverInDoubtRv !== null && o.lease && o.lease.resourceVersion !== m.takeoverInDoubtRv) next.takeoverInDoubtRv = null;
  if (m.failsafePromise && now - m.failsafePromise.atMs >= effectiveLeaseMs(o)) next.failsafePromise = null;
  if (m.syncChange && m.syncChange.lsn === null && pg.inRecovery === false && pg.lsn !== null) next.syncChange = { ...m.syncChange, lsn: pg.lsn };
  if (pg.inRecovery === true || !pg.running) next.syncChange = null;
  return next;
}

/** A lease expires after the longer of our setting and the duration its holder wrote on it. */
export function effectiveLeaseMs(o: Pick<Observation, 'lease' | 'settings'>): number {
  const d = o.lease?.durationMs ?? 0;
  return Math.max(o.settings.leaseMs, d);
}

/** postgres is, or may be, writable: it says so, or it does not answer while its postmaster
 * reports normal operation (or, with no postmaster status, it was writable when it last answered). */
export function maybeWritable(o: Pick<Observation, 'pg'>, m: Memory): boolean {
  const pg = o.pg;
  if (!pg.running) return false;
  if (pg.inRecovery !== null) return pg.inRecovery === false;
  if (pg.serverState === 'ready') return true;
  if (pg.serverState !== null) return false;
  return m.lastKnownWritable !== false;
}

/** Every member we have seen listed, with the time since which a healthy pod list has lacked it (null: listed now). */
export type KnownMembers = Record<string, number | null>;

/**
 * Membership as failsafe needs it: a member counts until a healthy pod list has lacked it for
 * `forgetAfterMs`. Call it only with lists the API server just gave (while cut off from the API
 * nothing is forgotten): a pod deleted and recreated while we cannot see it keeps its name, and
 * could take the lease — a failsafe round that skipped it would be a promise from too few.
 */
export function updateKnownMembers(k: KnownMembers, listed: string[], self: string, nowMs: number, forgetAfterMs: number): KnownMembers {
  const next: KnownMembers = {};
  for (const n of listed) if (n !== self) next[n] = null;
  for (const [n, since] of Object.entries(k)) {
    if (n in next) continue;
    const absent = since ?? nowMs;
    if (nowMs - absent < forgetAfterMs) next[n] = absent;
  }
  return next;
}
