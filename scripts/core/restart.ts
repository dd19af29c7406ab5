// Parameters changed live that postgres applies only at a restart (pg_settings.pending_restart):
// the primary rolls them like a rolling update, without touching the pods. Pure.
//
// One pending replica at a time, highest ordinal first, each only when every member exists, is
// healthy, Ready and streams (one member down at a time, never while one is not streaming): the
// primary asks it to restart its own postgres in place (faster than a new pod, and the pod stays).
// Then, with every replica restarted, a hand-off to one of them; the old primary restarts as a
// replica. A lone primary restarts in place (its clients wait for it either way). Pause stops it.
//
// A hot standby refuses to start with a standby-bounded parameter (max_connections …) below the
// primary's value (FATAL "insufficient parameter settings"). So a replica is asked only when its
// next values are at least the primary's running ones; when the primary lowers one itself, it
// restarts first, in place (a hand-off would give the lead to a replica still on the higher
// value, which its own restart as a replica could not follow), and the replicas follow.
import type { Action, Decision, Endpoint, Memory, MemberView, Observation } from './types.js';

/** Parameters a hot standby must have at least as high as its primary (PostgreSQL: "Hot Standby", Administrator's Overview). */
export const STANDBY_BOUNDED = ['max_connections', 'max_locks_per_transaction', 'max_prepared_transactions', 'max_wal_senders', 'max_worker_processes'] as const;

/** The bounded parameters whose `next` value is below the `floor` one (either unknown: none). */
export function belowBounds(next: Record<string, number> | undefined, floor: Record<string, number> | undefined): string[] {
  if (!next || !floor) return [];
  return STANDBY_BOUNDED.filter((p) => next[p] !== undefined && floor[p] !== undefined && next[p]! < floor[p]!);
}

const act = (memory: Memory, reason: string, ...actions: Action[]): Decision => ({ actions, reason, memory });
const ordinal = (name: string) => Number(name.match(/(\d+)$/)?.[1] ?? -1);

/** Every member exists, is healthy, a replica, streams from us and is Ready: one may go down now. */
export function everyMemberSettled(o: Observation, needRevision: boolean): boolean {
  const streaming = new Set(o.pg.streamingReplicas);
  // Every member must exist: a deleted pod that vanished before its replacement is listed is not "settled".
  const allThere = o.expectedMembers === null || o.members.length + 1 >= o.expectedMembers;
  // Ready too: the Services route only to Ready pods, and a restarted member turns Ready a probe period after it streams.
  return allThere && o.members.every((x) => x.healthy && x.inRecovery === true && streaming.has(x.name) && (!needRevision || x.revision !== null) && x.ready !== false);
}

/**
 * The primary's side. `hand`: the hand-off target the primary would pick, and the hand-off action
 * to it (primary.ts). null when no member, us included, has a parameter pending a restart.
 */
export function restartRoll(o: Observation, m: Memory, hand: { target: string | null; handoff: (to: string) => Action }): Decision | null {
  const ours = o.pendingRestart ?? [];
  const replicas = o.members.filter((x) => x.pendingRestart === true).sort((a, b) => ordinal(b.name) - ordinal(a.name));
  if (!replicas.length && !ours.length) return null;
  const who = [...replicas.map((x) => x.name), ...(ours.length ? [o.self] : [])].join(', ');
  const what = `parameters pending a restart on ${who}`;
  const allThere = o.expectedMembers === null || o.members.length + 1 >= o.expectedMembers;
  const settled = everyMemberSettled(o, false);
  const lowered = ours.length ? belowBounds(o.nextBounds, o.runningBounds) : [];
  // The kubelet updates each pod's files at its own moment (up to a minute apart): our own restart
  // waits until every member runs on the parameters we do, else a hand-off could go to a replica
  // that has yet to restart for them (a second roll, a second hand-off).
  const behind = o.parametersDigest === undefined ? [] : o.members.filter((x) => x.parametersDigest !== undefined && x.parametersDigest !== o.parametersDigest).map((x) => x.name);
  // replicas that could start on their next values while we run on ours
  const ready = replicas.filter((x) => belowBounds(x.nextBounds, o.runningBounds).length === 0);
  if (ready.length && !lowered.length) {
    if (!settled) return act(m, `${what}: waiting until every member${allThere ? '' : ` (${o.expectedMembers})`} is there, healthy and streaming`);
    const r = ready[0]!;
    return act(m, `${what}: asking replica ${r.name} to restart its postgres`, { type: 'restart_member', pod: r.name, apiUrl: r.apiUrl });
  }
  if (ours.length && behind.length && !(ready.length && !lowered.length)) {
    return act(m, `${what} (${ours.join(', ')}): waiting until ${behind.join(', ')} run${behind.length === 1 ? 's' : ''} on the parameters we do (the kubelet updates each pod's files in turn)`);
  }
  if (lowered.length) {
    if (!settled) return act(m, `${what}: we lower ${lowered.join(', ')} and restart first; waiting until every member${allThere ? '' : ` (${o.expectedMembers})`} is there, healthy and streaming`);
    return act(m, `${what}: we lower ${lowered.join(', ')}, which a hot standby needs at least as high as its primary: restarting our postgres in place first`, { type: 'restart_postgres', follow: null, parameters: ours });
  }
  if (replicas.length) {
    const r = replicas[0]!;
    return act(m, `${what}: ${r.name} would start with ${belowBounds(r.nextBounds, o.runningBounds).join(', ')} below ours; waiting until we have the lower values too`);
  }
  if (o.members.length === 0 && (o.expectedMembers ?? 1) <= 1) {
    return act(m, `${what} (${ours.join(', ')}): no replica to hand over to, restarting our postgres in place`, { type: 'restart_postgres', follow: null, parameters: ours });
  }
  if (!settled) return act(m, `${what} (${ours.join(', ')}): replicas restarted, waiting until they are all there, healthy and streaming`);
  if (!hand.target) return act(m, `${what} (${ours.join(', ')}): no healthy replica to hand over to yet`);
  return act(m, `${what} (${ours.join(', ')}): every replica restarted, handing over to ${hand.target} before our own restart`, hand.handoff(hand.target));
}

/**
 * A replica's side: restart postgres in place when the lease holder we follow asked for it and a
 * parameter of ours is pending a restart; null otherwise (a request with nothing pending, e.g.
 * repeated while our new status was on its way, is dropped).
 */
export function replicaRestart(o: Observation, m: Memory, lead: MemberView, follow: Endpoint): Decision | null {
  const by = o.restartRequestedBy ?? null;
  const ours = o.pendingRestart ?? [];
  if (by === null || !ours.length || o.lease?.paused) return null;
  if (by !== lead.name || o.lease?.holder !== by) return null;
  return act(m, `${by} asked us to restart for ${ours.join(', ')} (pending a restart): restarting postgres in place`, { type: 'restart_postgres', follow, parameters: ours });
}
