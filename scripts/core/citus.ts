// Citus: keep the coordinator's worker registry (pg_dist_node) in step with each group's Lease.
// Pure: the coordinator group's primary observes its own standing, every worker group's Lease and
// the holder's address, and the current pg_dist_node rows; this decides the ONE next action with a
// one-line reason. The shell runs it and observes again (one step per loop: each is one catalog
// change, idempotent when repeated, and the next observation shows whether it took).
//
// Groups are numbered as Citus numbers them: 0 is the coordinator, 1..N the worker groups, and a
// worker group is registered with its own number as its Citus groupid (citus_add_node(..., groupid
// => n)), so a row names its group by itself: after a failover the row of group n is re-pointed to
// the new holder, never guessed from an address.
//
// Safety, decided here once:
//   1. Only a coordinator that holds its own group's Lease and runs a writable postgres writes the
//      registry (a deposed coordinator must not re-point anything).
//   2. A worker group is acted on only while its Lease is valid by OUR clock (held, unchanged for
//      less than the lease duration, no validation problems) and its holder's address is known.
//      Expired, unknown (unreadable) or invalid Leases are left alone and said so: the row keeps
//      pointing where it did, because a guess could route writes to a member that is not primary.
//   3. Nothing is removed: a row for a group we do not know about is reported, not deleted (it may
//      hold shards; removing it is an operator's decision).
//   4. Repairs (a row pointing at a former primary) go before additions: a stale row fails every
//      query that touches that group's shards, a missing one only leaves capacity unused.

export interface CitusAddress {
  host: string;
  port: number;
}

/** What the coordinator knows of one group's Lease. */
export interface CitusLeaseView {
  holder: string | null;
  /** by OUR monotonic clock, since we last saw the Lease change */
  unchangedForMs: number;
  /** leaseDurationSeconds as written by the holder, in ms (null when absent) */
  durationMs: number | null;
  /** validation problems (wire.ts parseLease): non-empty means "do not act on it" */
  problems: string[];
  /** a switchover was asked for on this Lease (the member it goes to, or '*'); absent = none */
  switchoverTo?: string | null;
}

export interface CitusGroupView {
  /** Citus groupid: 1..N for worker groups */
  groupId: number;
  /** the group's name (its StatefulSet / Lease), for reasons and status */
  name: string;
  /** null: no Lease exists yet; undefined: it could not be read */
  lease: CitusLeaseView | null | undefined;
  /** where the Lease holder's postgres listens (from its pod); null = unknown */
  holderAddress: CitusAddress | null;
  /** the holder says (on its pod) it is a writable primary; absent = not known */
  holderPrimary?: boolean;
  /** the holder says (on its pod) it is handing the group over (switchover, SIGTERM, rolling update) */
  holderHandingOff?: boolean;
}

/** A row of pg_dist_node, as read on the coordinator. */
export interface DistNode {
  nodeId: number;
  groupId: number;
  host: string;
  port: number;
  role: 'primary' | 'secondary' | 'unavailable';
  isActive: boolean;
}

export interface CitusObservation {
  /** our own lease duration setting, ms: a Lease expires after the longer of it and the holder's */
  leaseMs: number;
  /** we hold the coordinator group's Lease (valid) and our postgres is a writable primary */
  coordinatorPrimary: boolean;
  /** our own address, as the workers reach us */
  self: CitusAddress;
  /** the citus extension exists in the application database; null = could not be read */
  extension: boolean | null;
  /** pg_dist_node; null = could not be read */
  nodes: DistNode[] | null;
  workers: CitusGroupView[];
}

export type CitusAction =
  | { type: 'create_extension' }
  /** citus_set_coordinator_host: registers group 0, or moves it to the new coordinator primary */
  | { type: 'set_coordinator'; host: string; port: number }
  | { type: 'add_node'; groupId: number; host: string; port: number }
  | { type: 'update_node'; nodeId: number; groupId: number; host: string; port: number };

export interface CitusDecision {
  action: CitusAction | null;
  reason: string;
  /** groups left alone this time, each with why (status, logs) */
  waiting: string[];
}

const at = (a: CitusAddress): string => `${a.host}:${a.port}`;

/** Why a worker group cannot be acted on now, or null when its Lease is valid and its holder known. */
export function groupBlocked(g: CitusGroupView, leaseMs: number): string | null {
  const l = g.lease;
  if (l === undefined) return `group ${g.groupId} (${g.name}): its Lease could not be read, so its primary is unknown; leaving its registration as it is`;
  if (l === null) return `group ${g.groupId} (${g.name}): no Lease yet (the group has not elected a primary)`;
  if (l.problems.length > 0) return `group ${g.groupId} (${g.name}): its Lease is invalid (${l.problems.join('; ')}); leaving its registration as it is`;
  if (l.holder === null) return `group ${g.groupId} (${g.name}): its Lease has no holder (no primary now)`;
  const expiry = Math.max(leaseMs, l.durationMs ?? 0);
  if (l.unchangedForMs >= expiry) return `group ${g.groupId} (${g.name}): the Lease held by ${l.holder} expired (unchanged for ${l.unchangedForMs} ms ≥ ${expiry} ms); waiting for the group to elect a primary`;
  if (g.holderAddress === null) return `group ${g.groupId} (${g.name}): the address of its primary ${l.holder} is unknown (no pod address yet)`;
  return null;
}

const none = (reason: string, waiting: string[] = []): CitusDecision => ({ action: null, reason, waiting });

export function decideCitus(o: CitusObservation): CitusDecision {
  if (!o.coordinatorPrimary) return none('not the coordinator primary: the registry is written only by the holder of the coordinator Lease');
  if (o.extension === null) return none('cannot tell whether the citus extension exists (the query failed); trying again next loop');
  if (!o.extension) return { action: { type: 'create_extension' }, reason: 'the citus extension does not exist in the application database: creating it', waiting: [] };
  if (o.nodes === null) return none('cannot read pg_dist_node (the query failed); trying again next loop');

  const primaries = o.nodes.filter((n) => n.role === 'primary');
  const byGroup = new Map<number, DistNode[]>();
  for (const n of primaries) byGroup.set(n.groupId, [...(byGroup.get(n.groupId) ?? []), n]);
  const waiting: string[] = [];

  // The coordinator itself (group 0): after a coordinator failover this is what re-asserts it.
  const coord = byGroup.get(0) ?? [];
  if (coord.length === 0) {
    return { action: { type: 'set_coordinator', ...o.self }, reason: `the coordinator is not registered: registering ${at(o.self)} as group 0`, waiting };
  }
  if (coord.length === 1 && at(coord[0]!) !== at(o.self)) {
    return { action: { type: 'set_coordinator', ...o.self }, reason: `group 0 points at ${at(coord[0]!)}, a former coordinator: moving it to ${at(o.self)}`, waiting };
  }

  if (coord.length > 1) waiting.push(`group 0 (the coordinator) has ${coord.length} primary rows in pg_dist_node (${coord.map(at).join(', ')}); fix by hand, the autopilot does not guess which is right`);

  const ids = new Set<number>();
  type Step = { action: CitusAction; reason: string };
  const repairs: Step[] = [];
  const adds: Step[] = [];
  for (const g of [...o.workers].sort((a, b) => a.groupId - b.groupId)) {
    if (!Number.isInteger(g.groupId) || g.groupId < 1) { waiting.push(`group ${g.groupId} (${g.name}): a worker group number must be a whole number ≥ 1 (0 is the coordinator)`); continue; }
    if (ids.has(g.groupId)) { waiting.push(`group ${g.groupId} (${g.name}): another worker group has the same number; neither is acted on`); continue; }
    ids.add(g.groupId);
    const blocked = groupBlocked(g, o.leaseMs);
    if (blocked) { waiting.push(blocked); continue; }
    const want = g.holderAddress!;
    const holder = g.lease!.holder!;
    const rows = byGroup.get(g.groupId) ?? [];
    if (rows.length > 1) { waiting.push(`group ${g.groupId} (${g.name}): ${rows.length} primary rows in pg_dist_node (${rows.map(at).join(', ')}); fix by hand, the autopilot does not guess which is right`); continue; }
    const taken = primaries.find((n) => n.groupId !== g.groupId && at(n) === at(want));
    if (taken) { waiting.push(`group ${g.groupId} (${g.name}): its primary's address ${at(want)} is registered for group ${taken.groupId}; two groups cannot share an address`); continue; }
    const row = rows[0];
    // A new holder still promoting: pointing the row at it now would only turn the clients' errors
    // from "connection refused" into "read-only transaction"; the row moves once it says it is writable.
    if (g.holderPrimary === false && (!row || at(row) !== at(want))) { waiting.push(`group ${g.groupId} (${g.name}): its new primary ${holder} at ${at(want)} is not writable yet (promoting); the row moves once it is`); continue; }
    if (!row) {
      adds.push({ action: { type: 'add_node', groupId: g.groupId, ...want }, reason: `group ${g.groupId} (${g.name}) is not registered: adding its primary ${holder} at ${at(want)}` });
    } else if (at(row) !== at(want)) {
      repairs.push({ action: { type: 'update_node', nodeId: row.nodeId, groupId: g.groupId, ...want }, reason: `group ${g.groupId} (${g.name}) points at ${at(row)}, but its Lease is held by ${holder} at ${at(want)}: re-pointing node ${row.nodeId}` });
    }
  }
  for (const n of primaries) {
    if (n.groupId !== 0 && !o.workers.some((g) => g.groupId === n.groupId)) {
      waiting.push(`pg_dist_node has group ${n.groupId} at ${at(n)}, which no configured worker group has; left alone (it may hold shards: remove it with citus_remove_node after moving them)`);
    }
  }
  const next = repairs[0] ?? adds[0];
  if (next) return { ...next, waiting };
  const w = waiting.length > 0 ? `; ${waiting.length} group(s) waiting` : '';
  return none(`pg_dist_node matches every worker group's Lease${w}`, waiting);
}

// ---------------------------------------------------------------------------------------------
// Planned switchover of a worker group: the coordinator holds that group's distributed queries
// (citus_pause_node_within_txn in a transaction of its own: Citus' own fencing lock on the group's
// shards) from the moment it sees the switchover asked for on the group's Lease until the new
// holder says it is a writable primary; then it re-points the row in the same transaction and
// commits, and the waiting queries run on the new primary. Clients wait instead of failing.

export interface Hold {
  groupId: number;
  nodeId: number;
  /** where the row pointed when the hold began */
  from: CitusAddress;
  /** by our clock */
  forMs: number;
}

export interface HoldObservation {
  leaseMs: number;
  coordinatorPrimary: boolean;
  nodes: DistNode[] | null;
  workers: CitusGroupView[];
  holding: Hold | null;
  /** the longest a hold may last (citus.json switchoverHoldMs) */
  maxHoldMs: number;
  /** groups whose last hold ended without a move while their switchover is still asked for: not held again */
  spent: number[];
}

export type HoldDecision =
  | { type: 'none'; reason: string }
  | { type: 'hold'; groupId: number; nodeId: number; from: CitusAddress; reason: string }
  | { type: 'keep'; reason: string }
  /** end the hold; with `to`, re-point the row first (same transaction) */
  | { type: 'release'; to: CitusAddress | null; reason: string };

export function decideHold(o: HoldObservation): HoldDecision {
  const h = o.holding;
  if (h) {
    const g = o.workers.find((x) => x.groupId === h.groupId);
    const name = g ? `group ${h.groupId} (${g.name})` : `group ${h.groupId}`;
    if (!o.coordinatorPrimary) return { type: 'release', to: null, reason: `${name}: not the coordinator primary any more: releasing its queries` };
    const blocked = g ? groupBlocked(g, o.leaseMs) : `${name} is not configured any more`;
    if (g && !blocked && at(g.holderAddress!) !== at(h.from) && g.holderPrimary === true) {
      return { type: 'release', to: g.holderAddress, reason: `${name}: its new primary ${g.lease!.holder} at ${at(g.holderAddress!)} is writable: re-pointing node ${h.nodeId} and releasing its queries after ${h.forMs} ms` };
    }
    if (h.forMs >= o.maxHoldMs) return { type: 'release', to: null, reason: `${name}: the switchover did not complete within ${o.maxHoldMs} ms: releasing its queries (a failover re-points the row if one follows)` };
    if (g && !blocked && at(g.holderAddress!) === at(h.from) && !g.lease!.switchoverTo && !g.holderHandingOff) return { type: 'release', to: null, reason: `${name}: the switchover ended without a hand-off (refused or done with): releasing its queries` };
    return { type: 'keep', reason: `${name}: holding its queries for the switchover (${h.forMs} ms)${blocked ? `; ${blocked}` : ''}` };
  }
  if (!o.coordinatorPrimary || o.nodes === null) return { type: 'none', reason: 'no hold: not the coordinator primary, or pg_dist_node unreadable' };
  for (const g of [...o.workers].sort((a, b) => a.groupId - b.groupId)) {
    if (!(g.lease?.switchoverTo || g.holderHandingOff) || o.spent.includes(g.groupId) || groupBlocked(g, o.leaseMs)) continue;
    const rows = o.nodes.filter((n) => n.role === 'primary' && n.groupId === g.groupId);
    if (rows.length !== 1 || at(rows[0]!) !== at(g.holderAddress!)) continue;
    const what = g.lease!.switchoverTo ? `a switchover from ${g.lease!.holder} to ${g.lease!.switchoverTo === '*' ? 'the best replica' : g.lease!.switchoverTo} was asked for` : `its primary ${g.lease!.holder} is handing the group over`;
    return { type: 'hold', groupId: g.groupId, nodeId: rows[0]!.nodeId, from: g.holderAddress!, reason: `group ${g.groupId} (${g.name}): ${what}: holding its distributed queries for the hand-off` };
  }
  return { type: 'none', reason: 'no switchover asked for on any worker group' };
}

/**
 * A worker group's primary handing over (switchover, SIGTERM, rolling update) with a coordinator
 * configured: it stops postgres once the coordinator holds the group's queries, or when the time
 * it may spend before stopping (the hand-off's checkpoint budget, inside the renew deadline) is up.
 */
export function handoffMayStop(o: { held: boolean; waitedMs: number; budgetMs: number }): { stop: boolean; reason: string } {
  if (o.held) return { stop: true, reason: `the coordinator holds this group's queries (after ${o.waitedMs} ms): stopping postgres` };
  if (o.waitedMs >= o.budgetMs) return { stop: true, reason: `the coordinator did not hold this group's queries within ${o.budgetMs} ms (the hand-off's budget): stopping postgres anyway; clients may see errors until it re-points the group` };
  return { stop: false, reason: 'waiting for the coordinator to hold this group\'s queries' };
}

/** How `autopilot citus rebalance` moves shards (citus_rebalance_start's shard_transfer_mode). */
export type ShardTransferMode = 'auto' | 'force_logical' | 'block_writes';
export const SHARD_TRANSFER_MODES: readonly ShardTransferMode[] = ['auto', 'force_logical', 'block_writes'];

/**
 * The transfer mode of a rebalance: the one asked for, else logical replication where the members
 * can decode (wal_level logical: writes go on while a shard moves, Citus' 'auto'), else
 * block_writes (the chart's default wal_level replica cannot decode: 'auto' would fail on the first
 * table with a replica identity; writes to a shard wait while it is copied).
 */
export function rebalanceMode(requested: ShardTransferMode | null, walLevel: string): { mode: ShardTransferMode; reason: string } {
  if (requested) return { mode: requested, reason: `${requested}, as asked` };
  if (walLevel === 'logical') return { mode: 'auto', reason: 'auto: wal_level is logical, shards move by logical replication while writes go on' };
  return { mode: 'block_writes', reason: `block_writes: wal_level is ${walLevel}, not logical, so writes to a shard wait while it is copied (set wal_level: logical in postgresql.parameters to move shards under writes)` };
}
