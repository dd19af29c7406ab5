// The autopilot's decision: observation and memory in; actions, a one-line reason and the next
// memory out. Pure: no I/O, time enters as numbers (the member's monotonic milliseconds), so
// every case is a row in a table test and the simulation (test/sim) runs this very code.
//
// Safety rules, each decided here once:
//   1. A postgres that is or may be writable stays so only while `mayStayWritable` (safety.ts):
//      the lease proven ours within the renew deadline, and postgres answering us. The deadline
//      is shorter than the lease, and the others judge expiry by their own clocks from the moment
//      they SAW the last renewal, so the old primary is read-only before anyone may take over.
//   2. Only the lease holder promotes, and it takes the primary label off every other pod first.
//   3. The lease changes hands only by a write conditional on the resourceVersion this decision
//      saw (the action carries it).
//   4. In sync mode only a member of the recorded quorum set may take over, and only when it has
//      seen enough of that set to be sure it holds every acknowledged commit (candidacy.ts); the
//      record never claims more than is true (sync.ts).
//   5. Data is wiped only on evidence: a half-made directory, a re-clone asked for, or rewinds that
//      reached a live primary holding the lease and failed. An unreachable source proves nothing.
//   6. A primary whose postgres cannot start gives the lease up instead of holding it forever.
//   7. Pause stops the autopilot from changing the topology (failover, switchover, rolling update,
//      rewind, re-clone, synchronous set); it never suspends rule 1.
import type { Action, Decision, Endpoint, Memory, MemberView, Observation } from './types.js';
import { observeInto, effectiveLeaseMs, maybeWritable } from './memory.js';
export { maybeWritable } from './memory.js';
import { candidacy, sameCluster } from './candidacy.js';
import { primaryTick, labelledOthers } from './primary.js';
import { replicaRestart } from './restart.js';
import { cloneDecision } from './clone.js';

export { candidacy } from './candidacy.js';
export { handoffTarget, rollingUpdate, slotsToKeep } from './primary.js';
export { restartRoll, replicaRestart } from './restart.js';
export { desiredSync } from './sync.js';

const act = (memory: Memory, reason: string, ...actions: Action[]): Decision => ({ actions, reason, memory });

/** Streaming for this long without success makes a replica rewind (or re-clone) against the leader. */
export const REWIND_AFTER_MS = 15_000;
/** An init lease claimed by a member whose pod is gone is taken over after this long unchanged. */
export const INIT_TAKEOVER_MS = 60_000;
/** After this many rewinds that reached the leader and failed, a replica wipes its data and clones again. */
export const MAX_REWIND_FAILURES = 2;
/** A primary whose postgres failed to start this many times in a row gives the lease up. */
export const MAX_START_FAILURES = 2;

export function leaseValid(o: Observation): boolean {
  return !!o.lease && o.lease.holder !== null && o.lease.unchangedForMs < effectiveLeaseMs(o);
}

function endpointOf(m: MemberView): Endpoint {
  return { name: m.name, host: m.host, port: m.port };
}

export function leader(o: Observation): MemberView | undefined {
  if (!o.lease || !leaseValid(o) || o.lease.holder === o.self) return undefined;
  return o.members.find((m) => m.name === o.lease!.holder && sameCluster(o, m));
}

function foreign(o: Observation): string | null {
  const id = o.lease?.systemId ?? null;
  if (id === null || o.pg.systemId === null || o.pg.systemId === id) return null;
  return `our data directory belongs to another cluster (system identifier ${o.pg.systemId}, the cluster's is ${id})`;
}

/**
 * A synchronous standby whose pod is being deleted (a scale-down, an eviction) may hold the only
 * copy, besides the primary's, of acknowledged commits; once it is gone for good (a scale-down
 * keeps its volume but no pod will run it) a record still naming it would block every failover.
 * So it stops only after the primary recorded a set without it, or after a lease duration (the
 * primary gone, or strict mode keeping it), whichever comes first.
 */
function leaveSyncSetFirst(o: Observation, m: Memory): Decision {
  const lease = o.lease;
  const named = o.settings.syncMode !== 'off' && !!lease && leaseValid(o) && lease.holder !== o.self && (lease.syncStandbys ?? []).includes(o.self);
  if (!named) return act({ ...m, leavingSinceMs: null }, 'shutting down', { type: 'stop' });
  const since = m.leavingSinceMs ?? o.nowMs;
  const waited = o.nowMs - since;
  const mem = { ...m, leavingSinceMs: since };
  if (waited >= o.settings.leaseMs) {
    return act(mem, `shutting down although ${lease!.holder} still records us in the synchronous set after ${waited} ms`, { type: 'stop' });
  }
  return act(mem, `shutting down once ${lease!.holder} records a synchronous set without us (waited ${waited} ms)`);
}

function replicaTick(o: Observation, m: Memory): Decision {
  const s = o.settings;
  const lease = o.lease;
  const paused = !!lease?.paused;
  const now = o.nowMs;
  if (o.terminating) return leaveSyncSetFirst(o, m);
  if (o.reinitRequested && !paused) return act(m, 'reinit requested: wiping and cloning again', { type: 'reinit' });
  if (lease && lease.holder === o.self && !paused) {
    const alien = foreign(o);
    if (alien) return act(m, `the lease names us but ${alien}: giving it up`, { type: 'release_lease', ifResourceVersion: lease.resourceVersion, why: alien });
    // A promise given to a primary cut off from the API (failsafe) outlives a lease that names us
    // (a take-over whose reply was lost): keep it, promote only once it ran out.
    const p = m.failsafePromise;
    if (p && p.to !== o.self && now - p.atMs < effectiveLeaseMs(o)) {
      return act(m, `the lease names us, but we promised ${p.to} ${now - p.atMs} ms ago not to take over (failsafe): not promoting yet`);
    }
    // Promote only on a lease we just wrote ourselves: a cached view saying "ours" may be stale
    // (a member cut off from the API keeps its last view), and the conditional write settles it.
    const confirmed = m.confirmedAtMs !== null && now - m.confirmedAtMs < s.renewMs && m.lastWrittenRv === lease.resourceVersion;
    const others = labelledOthers(o);
    // Under a synchronous record (we restart as the same primary), wait for the recorded set from
    // the first commit on: the record promises every acknowledged commit is on it. In strict mode
    // a new primary waits for its peers from the first commit on, too (never acknowledges alone).
    const set = s.syncMode !== 'off' ? lease.syncStandbys ?? [] : [];
    const peers = o.members.map((x) => x.name).sort();
    const sync = set.length ? { names: set, count: lease.syncCount }
      : s.syncMode === 'strict' && peers.length ? { names: peers, count: Math.min(s.syncCount, peers.length) } : undefined;
    return act(m,
      `${confirmed ? 'we hold the lease' : 'the lease names us: confirming it with a conditional write'}${others.length ? `, taking the primary label off ${others.join(', ')}` : ''}, then promoting`,
      ...(confirmed ? [] : [{ type: 'renew_lease', ifResourceVersion: lease.resourceVersion } as Action]),
      ...(others.length ? [{ type: 'unlabel', pods: others } as Action] : []),
      { type: 'promote', leaseVersion: lease.resourceVersion, ...(sync ? { sync } : {}) },
    );
  }
  const lead = leader(o);
  if (lead) {
    if (o.pg.following !== lead.name) return act(m, `following the new leader ${lead.name}`, { type: 'follow', from: endpointOf(lead) });
    const restart = replicaRestart(o, m, lead, endpointOf(lead));
    if (restart) return restart;
    const notStreamingMs = m.notStreamingSinceMs === null ? 0 : now - m.notStreamingSinceMs;
    if (!o.pg.streaming && lead.healthy && lead.role === 'primary' && notStreamingMs >= REWIND_AFTER_MS && !paused) {
      if (m.rewindFailures >= MAX_REWIND_FAILURES) return act(m, `not streaming from ${lead.name} and ${m.rewindFailures} rewinds against it failed: re-cloning`, { type: 'reinit' });
      return act(m, `not streaming from ${lead.name} for ${notStreamingMs} ms: rewinding`, { type: 'rewind', from: endpointOf(lead) });
    }
    return act(m, o.pg.streaming ? `replica streaming from ${lead.name}` : `replica of ${lead.name}, waiting for the stream`);
  }
  if (lease === undefined) return act(m, 'cannot read the lease: staying a replica');
  if (paused) return act(m, 'paused: no failover');
  if (lease !== null && lease.holder !== null && lease.unchangedForMs < effectiveLeaseMs(o)) {
    return act(m, `lease held by ${lease.holder}, who is not among the members we know: waiting`);
  }
  if (lease === null && o.init && !o.init.initialized) return act(m, 'cluster not initialized yet: waiting');
  // The primary cannot reach the API but reached us, and we promised not to take over for a lease.
  const p = m.failsafePromise;
  if (p && now - p.atMs < effectiveLeaseMs(o)) {
    return act(m, `lease looks expired, but ${p.to} confirmed itself with us ${now - p.atMs} ms ago (failsafe): not taking over`);
  }
  // The lease is expired (or missing): judge, with fresh views of the others.
  if (o.members.some((x) => !x.fresh)) return act(m, 'lease expired: asking the members for their state', { type: 'probe_members' });
  const c = candidacy(o);
  if (!c.ok) return act(m, `lease ${lease?.holder ? `of ${lease.holder} expired` : 'free'}, not taking it: ${c.reason}`);
  return act(m, `lease ${lease?.holder ? `of ${lease.holder} expired ${lease.unchangedForMs} ms unchanged` : 'free'}: taking it, ${c.reason}`,
    { type: 'take_lease', failover: true, ifResourceVersion: lease?.resourceVersion ?? null });
}

function stoppedTick(o: Observation, m: Memory): Decision {
  const lease = o.lease;
  const paused = !!lease?.paused;
  if (o.terminating) return act(m, 'shutting down', { type: 'stop' });
  if (o.dataDir === 'partial') return act(m, 'data directory is half-made (crash during initdb, clone or rewind): wiping it', { type: 'wipe' });
  if (o.dataDir === 'missing' || o.dataDir === 'empty') {
    if (o.init === undefined) return act(m, 'empty data directory, cannot read the init lease: waiting');
    if (o.init === null) return act(m, 'empty data directory, cluster never initialized: claiming the init lease', { type: 'acquire_init' });
    if (!o.init.initialized) {
      if (o.init.holder === o.self) return act(m, 'we hold the init lease: running initdb and bootstrapping', { type: 'bootstrap' });
      // The bootstrapping member's pod is gone (scaled away, deleted with its volume) and nothing
      // happened for a long while: take the init lease over (a conditional write, so only one does).
      if (o.init.unchangedForMs >= INIT_TAKEOVER_MS && !o.members.some((x) => x.name === o.init!.holder)) {
        return act(m, `${o.init.holder} claimed the bootstrap but its pod is gone: taking the init lease over`, { type: 'acquire_init' });
      }
      return act(m, `waiting for ${o.init.holder} to bootstrap the cluster`);
    }
    const lead = leader(o);
    if (lead && lead.healthy && lead.role === 'primary') return cloneDecision(o, m, endpointOf(lead));
    return act(m, 'empty data directory: waiting for a healthy primary to clone from');
  }
  if (o.reinitRequested && !paused) return act(m, 'reinit requested: wiping and cloning again', { type: 'reinit' });
  const alien = foreign(o);
  if (lease && lease.holder === o.self && leaseValid(o)) {
    // Our postgres cannot start: give the lease up so that a replica takes over, rather than
    // renewing it forever with no primary behind it.
    if (alien || m.startFailures >= MAX_START_FAILURES) {
      const why = alien ?? `postgres failed to start ${m.startFailures} times`;
      return act(m, `${why}: giving up the lease so another member takes over`, { type: 'release_lease', ifResourceVersion: lease.resourceVersion, why });
    }
    // Never start writable: start read-only, then promote on a lease confirmed just before (a
    // slow start would otherwise leave a writable postgres behind a lease nobody renewed).
    if (o.controlRole === 'primary') {
      return act(m, 'the lease names us and we were primary: confirming it, starting read-only, then promoting',
        { type: 'renew_lease', ifResourceVersion: lease.resourceVersion }, { type: 'start', as: 'replica', follow: null });
    }
    return act(m, 'the lease names us: starting as a replica, then promoting', { type: 'start', as: 'replica', follow: null });
  }
  if (alien) return act(m, `${alien}: not starting it (move the volume's data away, or run \`autopilot reinit\` on this member to clone it anew)`);
  const lead = leader(o);
  if (lead) {
    if (o.controlRole === 'primary' && !paused) {
      if (!lead.healthy || lead.role !== 'primary') return act(m, `former primary: waiting for ${lead.name} to run as primary before rewinding against it`);
      if (m.rewindFailures >= MAX_REWIND_FAILURES) return act(m, `former primary, ${m.rewindFailures} rewinds against ${lead.name} failed: re-cloning from it`, { type: 'reinit' });
      return act(m, `former primary: rewinding against ${lead.name} before following it`, { type: 'rewind', from: endpointOf(lead) });
    }
    return act(m, `starting as a replica of ${lead.name}`, { type: 'start', as: 'replica', follow: endpointOf(lead) });
  }
  return act(m, 'no valid leader: starting as a replica to take part in the election', { type: 'start', as: 'replica', follow: null });
}

export function decide(o: Observation, memory: Memory): Decision {
  const m = observeInto(memory, o);
  if (!o.pg.running) return stoppedTick(o, m);
  if (o.pg.inRecovery === false) return primaryTick(o, m);
  if (o.pg.inRecovery === true) return replicaTick(o, m);
  if (o.terminating) return act(m, 'shutting down while postgres does not answer', { type: 'stop' });
  if (maybeWritable(o, m)) return primaryTick(o, m, true);
  // Starting (crash recovery after the supervisor restarted it): not writable. A lease that names
  // us is kept while it starts, for at most one lease duration (then it lapses, and another member
  // takes over within a second one); a quick crash recovery then costs no failover.
  const lease = o.lease;
  const startingMs = m.pgStartingSinceMs === null ? 0 : o.nowMs - m.pgStartingSinceMs;
  if (lease && lease.holder === o.self && leaseValid(o) && startingMs < effectiveLeaseMs(o)) {
    const due = m.confirmedAtMs === null || o.nowMs - m.confirmedAtMs >= o.settings.renewMs;
    return act(m, `postgres is ${o.pg.serverState ?? 'starting'} (${startingMs} ms): keeping our lease while it starts`, ...(due ? [{ type: 'renew_lease', ifResourceVersion: lease.resourceVersion } as Action] : []));
  }
  return act(m, `postgres is ${o.pg.serverState ?? 'starting'}${startingMs ? ` (${startingMs} ms)` : ''}: waiting`);
}
