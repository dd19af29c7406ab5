// Who may take an expired lease. Pure.
import { byName } from './order.js';
import type { MemberView, Observation } from './types.js';

export interface Candidacy {
  ok: boolean;
  reason: string;
}

/** The system identifier the cluster is known by: the lease's record, else ours. */
export function clusterSystemId(o: Observation): string | null {
  return o.lease?.systemId ?? null;
}

/** A member whose data directory belongs to another cluster (a foreign volume) never counts. */
export function sameCluster(o: Observation, m: MemberView): boolean {
  const id = clusterSystemId(o);
  return id === null || m.systemId === null || m.systemId === id;
}

/** Sync mode: the recorded quorum (set, n), validated; null with a reason when it cannot be trusted. */
export function recordedQuorum(o: Observation): { set: string[]; n: number } | { problem: string } {
  const set = o.lease?.syncStandbys ?? [];
  const n = o.lease?.syncCount ?? NaN;
  if (set.length === 0) return { set, n: 1 };
  if (!Number.isInteger(n) || n < 1 || n > set.length) {
    return { problem: `the recorded sync-count ${String(o.lease?.syncCount)} is not between 1 and the set's ${set.length} members` };
  }
  return { set, n };
}

/**
 * May we take an expired lease? We must be eligible, and no reachable eligible member may be
 * further ahead (ties go to the smaller name). Members not heard from just now are ignored: a
 * member we cannot reach cannot see us either, and the conditional write settles any race.
 */
export function candidacy(o: Observation): Candidacy {
  const s = o.settings;
  const oldHolder = o.lease?.holder ?? null;
  if (s.nofailover) return { ok: false, reason: 'this member is marked nofailover' };
  if (o.lease && o.lease.problems.length) return { ok: false, reason: `the lease has values we cannot trust (${o.lease.problems.join('; ')}): no failover until they are fixed` };
  if (!o.pg.running || !o.pg.accepting) return { ok: false, reason: 'our postgres is not accepting connections' };
  if (o.pg.inRecovery !== true) return { ok: false, reason: 'we are not a replica' };
  if (o.pg.lsn === null) return { ok: false, reason: 'our WAL position is unknown' };
  const id = clusterSystemId(o);
  if (id !== null && o.pg.systemId !== null && o.pg.systemId !== id) {
    return { ok: false, reason: `our data directory belongs to another cluster (system identifier ${o.pg.systemId}, the cluster's is ${id})` };
  }
  const fresh = o.members.filter((m) => m.fresh && m.name !== oldHolder && m.healthy && m.inRecovery === true && sameCluster(o, m));
  const eligible = fresh.filter((m) => !m.nofailover && m.lsn !== null);
  const me = { name: o.self, lsn: o.pg.lsn, timeline: o.pg.timeline ?? 0 };

  if (s.syncMode !== 'off') {
    const q = recordedQuorum(o);
    if ('problem' in q) return { ok: false, reason: `sync mode: ${q.problem}` };
    if (!q.set.includes(o.self)) {
      return { ok: false, reason: `sync mode: we are not in the synchronous set [${q.set.join(', ')}]` };
    }
    // Every acknowledged commit is on at least n members of the set; seeing |set| - n + 1 of them
    // (ourselves included) guarantees one of those we see has it.
    const seen = new Set([o.self, ...fresh.filter((m) => q.set.includes(m.name)).map((m) => m.name)]);
    const need = q.set.length - q.n + 1;
    if (seen.size < need) {
      return { ok: false, reason: `sync mode: saw ${seen.size} of the synchronous set [${q.set.join(', ')}], need ${need} to be sure no acknowledged write is lost` };
    }
  }

  const all = [me, ...eligible.map((m) => ({ name: m.name, lsn: m.lsn as bigint, timeline: m.timeline ?? 0 }))];
  const inSet = s.syncMode !== 'off' ? new Set(o.lease?.syncStandbys ?? []) : null;
  const allowed = inSet ? all.filter((c) => inSet.has(c.name)) : all;
  // The furthest WAL position anyone (allowed or not) reports bounds our lag.
  const furthest = fresh.reduce((a, m) => (m.lsn !== null && m.lsn > a ? m.lsn : a), all.reduce((a, c) => (c.lsn > a ? c.lsn : a), me.lsn));
  const lag = furthest - me.lsn;
  if (lag > BigInt(s.maxLagBytes)) {
    return { ok: false, reason: `we are ${lag} bytes behind the furthest member, more than the ${s.maxLagBytes} allowed` };
  }
  const best = [...allowed].sort((a, b) => (b.timeline - a.timeline) || (a.lsn === b.lsn ? byName(a.name, b.name) : (b.lsn > a.lsn ? 1 : -1)))[0];
  if (!best) return { ok: false, reason: 'no candidate' };
  if (best.name !== o.self) return { ok: false, reason: `${best.name} is a better candidate (timeline ${best.timeline}, lsn ${best.lsn})` };
  return { ok: true, reason: `we are the most advanced healthy candidate of ${allowed.length}` };
}
