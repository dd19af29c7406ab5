// The autopilot's decision: observed state in, actions and a one-line reason out. Pure: no I/O,
// time enters as numbers (monotonic milliseconds), so every case is a row in a table test.
//
// Safety rules, in the order they are checked:
//   1. A writable primary that does not hold the lease, or has not renewed it within the renew
//      deadline, demotes at once. The deadline is shorter than the lease, and the others judge
//      expiry by their own clock from the moment they SAW the last renewal, so the old primary is
//      read-only before anyone else may take the lease.
//   2. Only the lease holder promotes, and it takes the primary label off every other pod first.
//   3. The lease changes hands only by a write conditional on the resourceVersion we read.
//   4. In sync mode only a member of the recorded quorum set may take over, and only when it has
//      seen enough of that set to be sure it holds every acknowledged commit.
import type { Action, Decision, Endpoint, MemberView, Observation } from './types.js';

const act = (reason: string, ...actions: Action[]): Decision => ({ actions, reason });

/** Streaming for this long without success makes a replica rewind (or re-clone) against the leader. */
export const REWIND_AFTER_MS = 15_000;
/** An init lease claimed by a member whose pod is gone is taken over after this long unchanged. */
export const INIT_TAKEOVER_MS = 60_000;
/** After this many failed rewinds a replica wipes its data and clones again. */
export const MAX_REWIND_FAILURES = 2;

export function leaseValid(o: Observation): boolean {
  return !!o.lease && o.lease.holder !== null && o.lease.unchangedForMs < o.settings.leaseMs;
}

function endpointOf(m: MemberView): Endpoint {
  return { name: m.name, host: m.host, port: m.port };
}

export function leader(o: Observation): MemberView | undefined {
  if (!o.lease || !leaseValid(o) || o.lease.holder === o.self) return undefined;
  return o.members.find((m) => m.name === o.lease!.holder);
}

/** The members that take the primary label off (all but us). */
function labelledOthers(o: Observation): string[] {
  return o.members.filter((m) => m.labelledPrimary).map((m) => m.name).sort();
}

export interface Candidacy {
  ok: boolean;
  reason: string;
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
  if (!o.pg.running || !o.pg.accepting) return { ok: false, reason: 'our postgres is not accepting connections' };
  if (o.pg.inRecovery !== true) return { ok: false, reason: 'we are not a replica' };
  if (o.pg.lsn === null) return { ok: false, reason: 'our WAL position is unknown' };
  const fresh = o.members.filter((m) => m.fresh && m.name !== oldHolder && m.healthy && m.inRecovery === true);
  const eligible = fresh.filter((m) => !m.nofailover && m.lsn !== null);
  const me = { name: o.self, lsn: o.pg.lsn, timeline: o.pg.timeline ?? 0 };

  if (s.syncMode === 'on') {
    const set = o.lease?.syncStandbys ?? [];
    if (!set.includes(o.self)) {
      return { ok: false, reason: `sync mode: we are not in the synchronous set [${set.join(', ')}]` };
    }
    // Every acknowledged commit is on at least n members of the set; seeing |set| - n + 1 of them
    // (ourselves included) guarantees one of those we see has it.
    const n = Math.max(1, o.lease?.syncCount ?? 1);
    const seen = new Set([o.self, ...fresh.filter((m) => set.includes(m.name)).map((m) => m.name)]);
    const need = set.length - n + 1;
    if (seen.size < need) {
      return { ok: false, reason: `sync mode: saw ${seen.size} of the synchronous set [${set.join(', ')}], need ${need} to be sure no acknowledged write is lost` };
    }
  }

  const all = [me, ...eligible.map((m) => ({ name: m.name, lsn: m.lsn as bigint, timeline: m.timeline ?? 0 }))];
  const inSet = s.syncMode === 'on' ? new Set(o.lease?.syncStandbys ?? []) : null;
  const allowed = inSet ? all.filter((c) => inSet.has(c.name)) : all;
  // The furthest WAL position anyone (allowed or not) reports bounds our lag.
  const maxLsn = all.reduce((a, c) => (c.lsn > a ? c.lsn : a), me.lsn);
  const furthest = fresh.reduce((a, m) => (m.lsn !== null && m.lsn > a ? m.lsn : a), maxLsn);
  const lag = furthest - me.lsn;
  if (lag > BigInt(s.maxLagBytes)) {
    return { ok: false, reason: `we are ${lag} bytes behind the furthest member, more than the ${s.maxLagBytes} allowed` };
  }
  const best = [...allowed].sort((a, b) => (b.timeline - a.timeline) || (a.lsn === b.lsn ? a.name.localeCompare(b.name) : (b.lsn > a.lsn ? 1 : -1)))[0];
  if (!best) return { ok: false, reason: 'no candidate' };
  if (best.name !== o.self) return { ok: false, reason: `${best.name} is a better candidate (timeline ${best.timeline}, lsn ${best.lsn})` };
  return { ok: true, reason: `we are the most advanced healthy candidate of ${allowed.length}` };
}

/** The synchronous set the primary should run with: its healthy streaming replicas. */
export function desiredSync(o: Observation): string[] {
  const streaming = new Set(o.pg.streamingReplicas);
  return o.members.filter((m) => streaming.has(m.name) && !m.reinitRequested).map((m) => m.name).sort();
}

const sameSet = (a: string[], b: string[]) => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
const subset = (a: string[], b: string[]) => a.every((x) => b.includes(x));

function primaryTick(o: Observation): Decision {
  const s = o.settings;
  const lease = o.lease;
  const paused = !!lease?.paused;

  if (lease === undefined) {
    // renewedAgoMs counts failsafe confirmations too: every member promised not to take over.
    if (o.renewedAgoMs === null || o.renewedAgoMs >= s.renewDeadlineMs) {
      return act(`cannot read the lease and last renewed ${o.renewedAgoMs ?? 'never'} ms ago (deadline ${s.renewDeadlineMs} ms)${s.failsafe ? ', and not every member confirmed us' : ''}: demoting`, { type: 'demote', why: 'lease unreachable' });
    }
    if (s.failsafe) {
      return act(`cannot read the lease; renewed or confirmed ${o.renewedAgoMs} ms ago: asking every member to confirm us (failsafe)`, { type: 'failsafe' });
    }
    return act(`cannot read the lease; renewed ${o.renewedAgoMs} ms ago, retrying before the ${s.renewDeadlineMs} ms deadline`, { type: 'renew_lease' });
  }
  if (lease !== null && lease.holder !== null && lease.holder !== o.self) {
    return act(`the lease is held by ${lease.holder}: demoting`, { type: 'demote', why: `lease held by ${lease.holder}` });
  }
  if (lease === null || lease.holder === null) {
    if (o.primaryWithoutLeaseMs >= s.renewDeadlineMs) {
      return act(`writable for ${o.primaryWithoutLeaseMs} ms without the lease: demoting`, { type: 'demote', why: 'could not take the lease' });
    }
    return act('writable without the lease: taking it', { type: 'take_lease', failover: false });
  }
  // We hold it.
  if (o.renewedAgoMs === null || o.renewedAgoMs >= s.renewDeadlineMs) {
    return act(`last successful renew ${o.renewedAgoMs ?? 'never'} ms ago, past the ${s.renewDeadlineMs} ms deadline: demoting`, { type: 'demote', why: 'renew deadline passed' });
  }

  if (o.terminating) {
    const target = handoffTarget(o, null);
    if (target) return act(`shutting down: handing the lease to ${target}`, { type: 'handoff', to: target });
    return act('shutting down with no healthy replica to hand over to', { type: 'stop' });
  }

  if (lease.switchoverTo && !paused) {
    const wanted = lease.switchoverTo === '*' ? null : lease.switchoverTo;
    if (wanted === o.self) return act('switchover to ourselves requested: nothing to do', { type: 'clear_switchover' });
    const target = handoffTarget(o, wanted);
    if (!target) {
      return act(`switchover to ${wanted ?? 'any member'} refused: no healthy streaming replica${wanted ? ` named ${wanted}` : ''}`, { type: 'clear_switchover' });
    }
    return act(`switchover requested: handing the lease to ${target}`, { type: 'handoff', to: target });
  }

  const update = paused ? null : rollingUpdate(o);
  if (update && update.actions.length) {
    const renew: Action[] = o.renewedAgoMs >= s.renewMs ? [{ type: 'renew_lease' }] : [];
    return { actions: [...renew, ...update.actions], reason: update.reason };
  }

  const actions: Action[] = [];
  const reasons: string[] = [];
  let syncAnnotation: string[] | undefined;
  if (s.syncMode === 'on' && !paused) {
    // Grow the recorded set before postgres may count on new members; shrink it only after
    // postgres stopped counting on the departed ones.
    const want = desiredSync(o);
    const recorded = lease.syncStandbys ?? [];
    if (!subset(want, recorded)) {
      syncAnnotation = [...new Set([...recorded, ...want])].sort();
      reasons.push(`recording synchronous set [${syncAnnotation.join(', ')}] before using it`);
    } else if (!sameSet(o.pg.syncNames, want)) {
      actions.push({ type: 'set_sync', names: want, count: Math.min(s.syncCount, Math.max(want.length, 1)) });
      reasons.push(`synchronous_standby_names → [${want.join(', ')}]`);
    } else if (!sameSet(recorded, want) || lease.syncCount !== Math.min(s.syncCount, Math.max(want.length, 1))) {
      syncAnnotation = want;
      reasons.push(`recording synchronous set [${want.join(', ')}]`);
    }
  }
  // A rolling update that waits still lets the primary keep its synchronous set up to date.
  if (update) reasons.push(update.reason);
  const others = labelledOthers(o);
  if (others.length) {
    actions.unshift({ type: 'unlabel', pods: others });
    reasons.push(`taking the primary label off ${others.join(', ')}`);
  }
  if (o.renewedAgoMs >= s.renewMs || syncAnnotation) {
    actions.unshift(syncAnnotation ? { type: 'renew_lease', syncStandbys: syncAnnotation } : { type: 'renew_lease' });
  }
  actions.push({ type: 'manage_slots' });
  return act(reasons.length ? reasons.join('; ') : `primary, lease held${paused ? ' (paused)' : ''}`, ...actions);
}

const ordinal = (name: string) => Number(name.match(/(\d+)$/)?.[1] ?? -1);

/**
 * The rolling update, driven by the primary (the StatefulSet uses OnDelete): one outdated replica
 * at a time, highest ordinal first, each only when every member is healthy and streaming; then a
 * switchover to an updated replica; the new primary then restarts the old one. The primary is
 * restarted last, and by a switchover, never a failover.
 */
export function rollingUpdate(o: Observation): Decision | null {
  const target = o.updateRevision;
  if (!target) return null;
  const outdated = (r: string | null) => r !== null && r !== target;
  const streaming = new Set(o.pg.streamingReplicas);
  // Ready too: the Services route only to Ready pods, and a restarted pod turns Ready a probe period after it streams.
  const settled = o.members.every((m) => m.healthy && m.inRecovery === true && streaming.has(m.name) && m.revision !== null && m.ready !== false);
  const staleReplicas = o.members.filter((m) => outdated(m.revision)).sort((a, b) => ordinal(b.name) - ordinal(a.name));
  if (staleReplicas.length) {
    if (!settled) return act(`rolling update to ${target}: waiting until every member is healthy and streaming`);
    return act(`rolling update to ${target}: restarting replica ${staleReplicas[0]!.name}`, { type: 'delete_pod', pod: staleReplicas[0]!.name }, { type: 'manage_slots' });
  }
  if (!outdated(o.revision)) return null;
  if (o.members.length === 0) return act(`rolling update to ${target}: no replica to hand over to, restarting ourselves`, { type: 'delete_pod', pod: o.self });
  if (!settled) return act(`rolling update to ${target}: replicas updated, waiting until they are all healthy and streaming`);
  const to = handoffTarget(o, null);
  if (!to) return act(`rolling update to ${target}: no healthy replica to hand over to yet`);
  return act(`rolling update to ${target}: every replica is updated, handing over to ${to} before our own restart`, { type: 'handoff', to });
}

/** The replica to hand the lease to: the named one, or the most advanced healthy streaming one. */
export function handoffTarget(o: Observation, wanted: string | null): string | null {
  const streaming = new Set(o.pg.streamingReplicas);
  const ok = o.members.filter((m) => m.healthy && m.inRecovery === true && streaming.has(m.name) && !m.nofailover);
  // A pod the kubelet does not (yet) report Ready would leave the read-write Service empty.
  const routable = ok.filter((m) => m.ready !== false);
  const pool = wanted ? ok.filter((m) => m.name === wanted) : routable.length ? routable : ok;
  const syncSet = o.settings.syncMode === 'on' ? o.lease?.syncStandbys ?? [] : null;
  const allowed = syncSet && !wanted ? (pool.filter((m) => syncSet.includes(m.name)).length ? pool.filter((m) => syncSet.includes(m.name)) : pool) : pool;
  // In a rolling update (SIGTERM from the StatefulSet controller) members on another revision
  // were already updated: handing over to one of them saves a second switchover later. The
  // hand-off waits for the target to receive the final checkpoint, so this costs no data.
  const updated = (m: MemberView) => (o.revision !== null && m.revision !== null && m.revision !== o.revision ? 0 : 1);
  const best = [...allowed].sort((a, b) => updated(a) - updated(b) || (a.lsn === b.lsn ? a.name.localeCompare(b.name) : ((b.lsn ?? 0n) > (a.lsn ?? 0n) ? 1 : -1)))[0];
  return best ? best.name : null;
}

function replicaTick(o: Observation): Decision {
  const s = o.settings;
  const lease = o.lease;
  const paused = !!lease?.paused;
  if (o.terminating) return act('shutting down', { type: 'stop' });
  if (o.reinitRequested && !paused) return act('reinit requested: wiping and cloning again', { type: 'reinit' });
  if (lease && lease.holder === o.self && !paused) {
    // Promote only on a lease we just wrote ourselves: a cached view saying "ours" may be stale
    // (a member cut off from the API keeps its last view), and the conditional write settles it.
    const confirmed = o.renewedAgoMs !== null && o.renewedAgoMs < s.renewMs;
    const others = labelledOthers(o);
    return act(
      `${confirmed ? 'we hold the lease' : 'the lease names us: confirming it with a conditional write'}${others.length ? `, taking the primary label off ${others.join(', ')}` : ''}, then promoting`,
      ...(confirmed ? [] : [{ type: 'renew_lease' } as Action]),
      ...(others.length ? [{ type: 'unlabel', pods: others } as Action] : []),
      { type: 'promote' },
    );
  }
  const lead = leader(o);
  if (lead) {
    if (o.pg.following !== lead.name) return act(`following the new leader ${lead.name}`, { type: 'follow', from: endpointOf(lead) });
    if (!o.pg.streaming && lead.healthy && lead.role === 'primary' && o.pg.notStreamingForMs >= REWIND_AFTER_MS && !paused) {
      if (o.rewindFailures >= MAX_REWIND_FAILURES) return act(`not streaming from ${lead.name} and ${o.rewindFailures} rewinds failed: re-cloning`, { type: 'reinit' });
      return act(`not streaming from ${lead.name} for ${o.pg.notStreamingForMs} ms: rewinding`, { type: 'rewind', from: endpointOf(lead) });
    }
    return act(o.pg.streaming ? `replica streaming from ${lead.name}` : `replica of ${lead.name}, waiting for the stream`);
  }
  if (lease === undefined) return act('cannot read the lease: staying a replica');
  if (paused) return act('paused: no failover');
  if (lease !== null && lease.holder !== null && lease.unchangedForMs < s.leaseMs) {
    return act(`lease held by ${lease.holder}, who is not among the members we know: waiting`);
  }
  if (lease === null && o.init && !o.init.initialized) return act('cluster not initialized yet: waiting');
  // The primary cannot reach the API but reached us, and we promised not to take over for a lease.
  if (o.failsafeAckAgoMs !== null && o.failsafeAckAgoMs < s.leaseMs) {
    return act(`lease looks expired, but ${lease?.holder ?? 'the primary'} confirmed itself with us ${o.failsafeAckAgoMs} ms ago (failsafe): not taking over`);
  }
  // The lease is expired (or missing): judge, with fresh views of the others.
  const stale = o.members.some((m) => !m.fresh);
  if (stale) return act('lease expired: asking the members for their state', { type: 'probe_members' });
  const c = candidacy(o);
  if (!c.ok) return act(`lease ${lease?.holder ? `of ${lease.holder} expired` : 'free'}, not taking it: ${c.reason}`);
  return act(`lease ${lease?.holder ? `of ${lease.holder} expired ${lease.unchangedForMs} ms unchanged` : 'free'}: taking it, ${c.reason}`, { type: 'take_lease', failover: true });
}

function stoppedTick(o: Observation): Decision {
  const lease = o.lease;
  const paused = !!lease?.paused;
  if (o.terminating) return act('shutting down', { type: 'stop' });
  if (o.dataDir === 'partial') return act('data directory is half-made (crash during initdb or clone): wiping it', { type: 'wipe' });
  if (o.dataDir === 'missing' || o.dataDir === 'empty') {
    if (o.init === undefined) return act('empty data directory, cannot read the init lease: waiting');
    if (o.init === null) return act('empty data directory, cluster never initialized: claiming the init lease', { type: 'acquire_init' });
    if (!o.init.initialized) {
      if (o.init.holder === o.self) return act('we hold the init lease: running initdb and bootstrapping', { type: 'bootstrap' });
      // The bootstrapping member's pod is gone (scaled away, deleted with its volume) and nothing
      // happened for a long while: take the init lease over (a conditional write, so only one does).
      if (o.init.unchangedForMs >= INIT_TAKEOVER_MS && !o.members.some((m) => m.name === o.init!.holder)) {
        return act(`${o.init.holder} claimed the bootstrap but its pod is gone: taking the init lease over`, { type: 'acquire_init' });
      }
      return act(`waiting for ${o.init.holder} to bootstrap the cluster`);
    }
    const lead = leader(o);
    if (lead && lead.healthy && lead.role === 'primary') return act(`empty data directory: cloning from ${lead.name}`, { type: 'clone', from: endpointOf(lead) });
    return act('empty data directory: waiting for a healthy primary to clone from');
  }
  if (o.reinitRequested && !paused) return act('reinit requested: wiping and cloning again', { type: 'reinit' });
  // A valid data directory with postgres down.
  if (lease && lease.holder === o.self && leaseValid(o)) {
    // Confirm with a conditional write first (a failed write skips the start): never writable on a stale view.
    if (o.controlRole === 'primary') return act('the lease names us and we were primary: confirming it, then starting as primary', { type: 'renew_lease' }, { type: 'start', as: 'primary', follow: null });
    return act('the lease names us: starting as a replica, then promoting', { type: 'start', as: 'replica', follow: null });
  }
  const lead = leader(o);
  if (lead) {
    if (o.controlRole === 'primary' && !paused) {
      if (o.rewindFailures >= MAX_REWIND_FAILURES) return act(`former primary, ${o.rewindFailures} rewinds failed: re-cloning from ${lead.name}`, { type: 'reinit' });
      if (lead.healthy) return act(`former primary: rewinding against ${lead.name} before following it`, { type: 'rewind', from: endpointOf(lead) });
      return act(`former primary: waiting for ${lead.name} to accept connections before rewinding`);
    }
    return act(`starting as a replica of ${lead.name}`, { type: 'start', as: 'replica', follow: endpointOf(lead) });
  }
  return act('no valid leader: starting as a replica to take part in the election', { type: 'start', as: 'replica', follow: null });
}

export function decide(o: Observation): Decision {
  if (!o.pg.running) return stoppedTick(o);
  if (o.pg.inRecovery === false) return primaryTick(o);
  if (o.pg.inRecovery === true) return replicaTick(o);
  return act('postgres is starting: waiting');
}
