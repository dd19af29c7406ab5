// The primary's tick (a postgres that is, or may be, writable), the rolling update it drives and
// the choice of a hand-off target. Pure.
import { byName } from './order.js';
import type { Action, Decision, Memory, MemberView, Observation } from './types.js';
import { mayStayWritable } from './safety.js';
import { planSync } from './sync.js';
import { backupActions } from './backup.js';
import { memberSlotName } from './render.js';
import { everyMemberSettled, restartRoll } from './restart.js';

const act = (memory: Memory, reason: string, ...actions: Action[]): Decision => ({ actions, reason, memory });

/** The members that take the primary label off (all but us). */
export function labelledOthers(o: Observation): string[] {
  return o.members.filter((m) => m.labelledPrimary).map((m) => m.name).sort();
}

const ordinal = (name: string) => Number(name.match(/(\d+)$/)?.[1] ?? -1);

/**
 * `unknown`: postgres runs and may be writable but does not answer us (every connection slot
 * taken, a hung server). The lease rules apply as to any primary; nothing else is done, and
 * mayStayWritable stops it once it stayed silent for the renew deadline.
 */
export function primaryTick(o: Observation, m: Memory, unknown = false): Decision {
  const s = o.settings;
  const lease = o.lease;
  const paused = !!lease?.paused;
  const now = o.nowMs;
  const v = mayStayWritable(m, s, now);
  const ago = m.confirmedAtMs === null ? null : now - m.confirmedAtMs;
  const silent = unknown ? `postgres does not answer (it may be writable), ` : '';

  if (lease === undefined) {
    if (!v.ok) return act(m, `${silent}cannot read the lease and ${v.reason}${s.failsafe ? ', and not every member confirmed us' : ''}: demoting`, { type: 'demote', why: 'lease unreachable' });
    if (s.failsafe && !unknown) {
      return act(m, `cannot read the lease; ${v.reason}: asking every member to confirm us (failsafe)`, { type: 'failsafe' });
    }
    const last = o.lastKnownLease;
    if (!last || last.holder !== o.self) return act(m, `${silent}cannot read the lease and never saw it ours: waiting for the deadline`);
    return act(m, `${silent}cannot read the lease; ${v.reason}, retrying before the ${s.renewDeadlineMs} ms deadline`, { type: 'renew_lease', ifResourceVersion: last.resourceVersion });
  }
  if (lease !== null && lease.holder !== null && lease.holder !== o.self) {
    return act(m, `${silent}the lease is held by ${lease.holder}: demoting`, { type: 'demote', why: `lease held by ${lease.holder}` });
  }
  if (lease === null || lease.holder === null) {
    if (!v.ok) return act(m, `${silent}writable without the lease and ${v.reason}: demoting`, { type: 'demote', why: 'could not take the lease' });
    return act(m, `${silent}writable without the lease: taking it`, { type: 'take_lease', failover: false, ifResourceVersion: lease?.resourceVersion ?? null });
  }
  // We hold it.
  if (!v.ok) return act(m, `${silent}${v.reason}: demoting`, { type: 'demote', why: 'renew deadline passed' });
  const due = ago === null || ago >= s.renewMs;
  const renew: Action = { type: 'renew_lease', ifResourceVersion: lease.resourceVersion, ...(s.failsafe && !unknown ? { onFailure: 'failsafe' as const } : {}) };
  if (unknown) {
    return act(m, `${silent}holding the lease while we find out (${v.reason})`, ...(due ? [renew] : []));
  }

  if (o.terminating) {
    const target = handoffTarget(o, null);
    if (target) return act(m, `shutting down: handing the lease to ${target}`, handoff(o, m, target));
    return act(m, 'shutting down with no healthy replica to hand over to', { type: 'stop' });
  }

  if (lease.switchoverTo && !paused) {
    const wanted = lease.switchoverTo === '*' ? null : lease.switchoverTo;
    const clear: Action = { type: 'clear_switchover', ifResourceVersion: lease.resourceVersion };
    if (wanted === o.self) return act(m, 'switchover to ourselves requested: nothing to do', clear);
    const target = handoffTarget(o, wanted);
    if (!target) return act(m, `switchover to ${wanted ?? 'any member'} refused: no healthy streaming replica${wanted ? ` named ${wanted}` : ''}`, clear);
    return act(m, `switchover requested: handing the lease to ${target}`, handoff(o, m, target));
  }

  // A rolling update restarts every member anyway; parameters pending a restart roll after it.
  const update = paused ? null : rollingUpdate(o, m) ?? restartRoll(o, m, { target: handoffTarget(o, null), handoff: (to) => handoff(o, m, to) });
  if (update && update.actions.length) {
    return { actions: [...(due ? [renew] : []), ...update.actions], reason: update.reason, memory: m };
  }

  const actions: Action[] = [];
  const reasons: string[] = [];
  let memory = m;
  let record: { syncStandbys: string[]; syncCount: number } | undefined;
  if (!paused) {
    const plan = planSync(o, m);
    actions.push(...plan.actions);
    if (plan.reason) reasons.push(plan.reason);
    record = plan.record;
    memory = plan.memory;
  }
  // A rolling update that waits still lets the primary keep its synchronous set up to date.
  if (update) reasons.push(update.reason);
  const others = labelledOthers(o);
  if (others.length) {
    actions.unshift({ type: 'unlabel', pods: others });
    reasons.push(`taking the primary label off ${others.join(', ')}`);
  }
  const stamp: { timeline?: number; systemId?: string } = {};
  if (o.pg.timeline !== null && lease.timeline !== o.pg.timeline) stamp.timeline = o.pg.timeline;
  if (o.pg.systemId !== null && lease.systemId === null) stamp.systemId = o.pg.systemId;
  const stamped = Object.keys(stamp).length > 0;
  if (due || record || stamped) {
    actions.unshift({ ...renew, ...(record ? { record } : {}), ...(stamped ? { stamp } : {}) });
  }
  const keep = slotsToKeep(o);
  if (!paused && o.pg.slots !== null && !sameNames(keep, o.pg.slots)) actions.push({ type: 'manage_slots', keep });
  // Backups go on while paused (pause stops topology changes, not the archive and its backups).
  if (o.backup) {
    const b = backupActions(o.backup, o.self, lease.resourceVersion, o.pg, o.members);
    actions.push(...b.actions);
    if (b.reason) reasons.push(b.reason);
  }
  return { actions, reason: reasons.length ? reasons.join('; ') : `primary, lease held${paused ? ' (paused)' : ''}`, memory };
}

const sameNames = (a: string[], b: string[]) => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);

/**
 * Replication slots: one per member that is up as a replica (it publishes itself healthy and in
 * recovery), streams from us, or publishes that it follows us: a rewound former primary accepts no
 * connection until streamed WAL makes it consistent, and without its slot it never gets that WAL.
 * A member stuck Pending or never started gets none (its slot would keep WAL for nothing); a slot
 * stays while its member is listed, and the WAL it may hold is bounded by max_slot_wal_keep_size.
 */
export function slotsToKeep(o: Observation): string[] {
  const listed = new Map(o.members.map((x) => [memberSlotName(x.name), x.name]));
  const keep = new Set<string>();
  for (const slot of o.pg.slots ?? []) if (listed.has(slot)) keep.add(slot);
  for (const x of o.members) {
    if ((x.healthy && x.inRecovery === true) || o.pg.streamingReplicas.includes(x.name) || x.following === o.self) keep.add(memberSlotName(x.name));
  }
  return [...keep].sort();
}

/**
 * The rolling update, driven by the primary (the StatefulSet uses OnDelete): one outdated replica
 * at a time, highest ordinal first, each only when every member exists, is healthy and streams;
 * then a switchover to an updated replica; the new primary then restarts the old one. The primary
 * is restarted last, and by a switchover, never a failover. Restarts go through the Eviction API,
 * so the PodDisruptionBudget is honoured.
 */
export function rollingUpdate(o: Observation, m: Memory): Decision | null {
  const target = o.updateRevision;
  if (!target) return null;
  const outdated = (r: string | null) => r !== null && r !== target;
  const allThere = o.expectedMembers === null || o.members.length + 1 >= o.expectedMembers;
  const settled = everyMemberSettled(o, true);
  const staleReplicas = o.members.filter((x) => outdated(x.revision)).sort((a, b) => ordinal(b.name) - ordinal(a.name));
  if (staleReplicas.length) {
    if (!settled) return act(m, `rolling update to ${target}: waiting until every member${allThere ? '' : ` (${o.expectedMembers})`} is there, healthy and streaming`);
    return act(m, `rolling update to ${target}: restarting replica ${staleReplicas[0]!.name}`, { type: 'evict_pod', pod: staleReplicas[0]!.name });
  }
  if (!outdated(o.revision)) return null;
  if (o.members.length === 0 && (o.expectedMembers ?? 1) <= 1) return act(m, `rolling update to ${target}: no replica to hand over to, restarting ourselves`, { type: 'evict_pod', pod: o.self });
  if (!settled) return act(m, `rolling update to ${target}: replicas updated, waiting until they are all there, healthy and streaming`);
  const to = handoffTarget(o, null);
  if (!to) return act(m, `rolling update to ${target}: no healthy replica to hand over to yet`);
  return act(m, `rolling update to ${target}: every replica is updated, handing over to ${to} before our own restart`, handoff(o, m, to));
}

/** The longest checkpoint a hand-off runs before it stops postgres. */
export const MAX_HANDOFF_CHECKPOINT_MS = 5_000;

/**
 * How long a hand-off may spend on a checkpoint while postgres still takes writes: the shutdown
 * checkpoint after it has little left to flush, so writes stop for less time. At most what is left
 * of the renew deadline once one renew interval is kept for the stop itself (the hand-off blocks
 * the tick, so nothing renews meanwhile), and at most MAX_HANDOFF_CHECKPOINT_MS; 0 = none.
 */
export function handoffCheckpointMs(m: Memory, s: Observation['settings'], nowMs: number): number {
  if (m.confirmedAtMs === null) return 0;
  return Math.max(0, Math.min(MAX_HANDOFF_CHECKPOINT_MS, m.confirmedAtMs + s.renewDeadlineMs - s.renewMs - nowMs));
}

function handoff(o: Observation, m: Memory, to: string): Action {
  return { type: 'handoff', to, ifResourceVersion: o.lease?.resourceVersion ?? '', checkpointMs: handoffCheckpointMs(m, o.settings, o.nowMs) };
}

/** The replica to hand the lease to: the named one, or the most advanced healthy streaming one. */
export function handoffTarget(o: Observation, wanted: string | null): string | null {
  const streaming = new Set(o.pg.streamingReplicas);
  const ok = o.members.filter((x) => x.healthy && x.inRecovery === true && streaming.has(x.name) && !x.nofailover);
  // A pod the kubelet does not (yet) report Ready would leave the read-write Service empty.
  const routable = ok.filter((x) => x.ready !== false);
  const pool = wanted ? ok.filter((x) => x.name === wanted) : routable.length ? routable : ok;
  const syncSet = o.settings.syncMode !== 'off' ? o.lease?.syncStandbys ?? [] : null;
  const inSet = syncSet ? pool.filter((x) => syncSet.includes(x.name)) : [];
  const allowed = syncSet && !wanted && inSet.length ? inSet : pool;
  // In a rolling update (SIGTERM from the StatefulSet controller) members on another revision
  // were already updated: handing over to one of them saves a second switchover later. The
  // hand-off waits for the target to receive the final checkpoint, so this costs no data.
  const updated = (x: MemberView) => (o.revision !== null && x.revision !== null && x.revision !== o.revision ? 0 : 1);
  const best = [...allowed].sort((a, b) => updated(a) - updated(b) || (a.lsn === b.lsn ? byName(a.name, b.name) : ((b.lsn ?? 0n) > (a.lsn ?? 0n) ? 1 : -1)))[0];
  return best ? best.name : null;
}
