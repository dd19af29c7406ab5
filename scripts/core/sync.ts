// Synchronous replication on the primary: which standbys postgres waits for, and what the lease
// records about them. Pure.
//
// The record (set R, n) on the lease is a promise to the next election: "every acknowledged
// commit is on at least n members of R". A candidate that sees |R| - n + 1 members of R knows one
// of them has every commit. So the record may only ever claim what is true:
//   - it may grow (a superset, with n no larger) at once: the claim stays true;
//   - postgres may switch to (T, nT) only when T ⊆ R and nT ≥ n: new commits keep the claim;
//   - it may shrink, or raise n, only after every member of the new set has flushed past the WAL
//     position at which postgres switched: then every older commit is on all of them;
//   - an empty record claims nothing and forbids automatic failover; recording it is always safe.
// Without a streaming standby, mode `on` goes asynchronous (recorded empty: no automatic
// failover until a standby catches up), mode `strict` keeps waiting for one (writes block).
import type { Action, Memory, Observation } from './types.js';

export interface SyncPlan {
  actions: Action[];
  record?: { syncStandbys: string[]; syncCount: number };
  memory: Memory;
  reason: string | null;
}

const sorted = (a: string[]) => [...a].sort();
const sameSet = (a: string[], b: string[]) => a.length === b.length && sorted(a).every((x, i) => x === sorted(b)[i]);
const subset = (a: string[], b: string[]) => a.every((x) => b.includes(x));

/** The standbys the primary should wait for: its healthy streaming replicas, except those on their
 *  way out (a pod being deleted: it waits to leave the record before it stops, see decide.ts). */
export function desiredSync(o: Observation): string[] {
  const streaming = new Set(o.pg.streamingReplicas);
  return o.members.filter((m) => streaming.has(m.name) && !m.reinitRequested && !m.leaving).map((m) => m.name).sort();
}

/** What synchronous_standby_names should be, as (names, n). */
export function syncTarget(o: Observation): { names: string[]; count: number } {
  let names = desiredSync(o);
  if (names.length === 0 && o.settings.syncMode === 'strict') {
    // Strict: never stop waiting. Keep the set postgres uses, or wait for any member at all.
    names = o.pg.syncNames.length ? o.pg.syncNames : o.members.map((m) => m.name).sort();
  }
  return { names: sorted(names), count: Math.min(o.settings.syncCount, Math.max(names.length, 1)) };
}

/** Has every member of `names` flushed our WAL past `lsn`? */
function caughtUp(o: Observation, names: string[], lsn: bigint): boolean {
  return names.every((n) => {
    const f = o.pg.replicaFlush.find((r) => r.name === n)?.lsn ?? null;
    return f !== null && f >= lsn;
  });
}

export function planSync(o: Observation, m: Memory): SyncPlan {
  const lease = o.lease;
  if (o.settings.syncMode === 'off' || !lease) return { actions: [], memory: m, reason: null };
  const T = syncTarget(o);
  const P = { names: sorted(o.pg.syncNames), count: o.pg.syncCount };
  const R = { names: sorted(lease.syncStandbys ?? []), count: lease.syncCount };
  const recordedEmpty = R.names.length === 0;

  if (!sameSet(T.names, P.names) || (T.names.length > 0 && T.count !== P.count)) {
    // Going asynchronous: first take back every claim (an empty record), then stop waiting.
    if (T.names.length === 0 && !recordedEmpty) {
      return { actions: [], record: { syncStandbys: [], syncCount: 1 }, memory: m, reason: 'no standby streams: recording an empty synchronous set before going asynchronous (no automatic failover until one catches up)' };
    }
    // postgres must change. First make the record cover the new set, with an n no larger.
    if (!recordedEmpty && T.names.length > 0 && (!subset(T.names, R.names) || R.count > T.count)) {
      const grown = sorted([...new Set([...R.names, ...T.names])]);
      const n = Math.min(R.count, T.count);
      return { actions: [], record: { syncStandbys: grown, syncCount: n }, memory: m, reason: `recording synchronous set [${grown.join(', ')}] (n=${n}) before postgres uses it` };
    }
    return {
      actions: [{ type: 'set_sync', names: T.names, count: T.count }],
      memory: m,
      reason: T.names.length ? `synchronous_standby_names → ANY ${T.count} (${T.names.join(', ')})` : 'no standby streams: synchronous_standby_names → none (asynchronous; no automatic failover until one catches up)',
    };
  }
  // postgres runs the target. Bring the record to it.
  if (sameSet(R.names, T.names) && (T.names.length === 0 || R.count === T.count)) return { actions: [], memory: m, reason: null };
  if (T.names.length === 0) {
    return { actions: [], record: { syncStandbys: [], syncCount: 1 }, memory: m, reason: 'recording an empty synchronous set: no member is sure to hold every commit, so none may take over automatically' };
  }
  if (!recordedEmpty && subset(T.names, R.names) === false) {
    const grown = sorted([...new Set([...R.names, ...T.names])]);
    return { actions: [], record: { syncStandbys: grown, syncCount: Math.min(R.count, T.count) }, memory: m, reason: `recording synchronous set [${grown.join(', ')}]` };
  }
  // Shrinking the set, raising n or leaving the empty record: only once the new set holds every
  // older commit. Without a known switch position (e.g. after our restart) take the current one.
  let mem = m;
  let change = m.syncChange && sameSet(m.syncChange.names, T.names) ? m.syncChange : null;
  if (!change || change.lsn === null) {
    if (change === null) {
      if (o.pg.lsn === null) return { actions: [], memory: m, reason: 'waiting for our WAL position before recording the synchronous set' };
      change = { names: T.names, count: T.count, lsn: o.pg.lsn };
      mem = { ...m, syncChange: change };
    } else {
      return { actions: [], memory: m, reason: `waiting a tick before recording synchronous set [${T.names.join(', ')}]` };
    }
  }
  if (!caughtUp(o, T.names, change.lsn!)) {
    return { actions: [], memory: mem, reason: `waiting for [${T.names.join(', ')}] to flush past ${change.lsn} before recording them as the synchronous set` };
  }
  return { actions: [], record: { syncStandbys: T.names, syncCount: T.count }, memory: { ...mem, syncChange: null }, reason: `recording synchronous set [${T.names.join(', ')}] (n=${T.count}): it holds every acknowledged commit` };
}
