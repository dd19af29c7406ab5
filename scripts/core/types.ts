// The autopilot's vocabulary: what a tick observes, what it may do. Pure types, no I/O.

export type Role = 'primary' | 'replica' | 'unknown';
export type DataDirState = 'missing' | 'empty' | 'valid' | 'partial';
/** What pg_controldata says the data directory last was, when postgres is down. */
export type ControlRole = 'primary' | 'standby' | 'unknown';

export interface Endpoint {
  name: string;
  host: string;
  port: number;
}

/** A member as seen by another: from its pod's status annotation, or fresh from its HTTP API. */
export interface MemberView {
  name: string;
  host: string;
  port: number;
  apiUrl: string;
  role: Role;
  /** postgres accepts connections */
  healthy: boolean;
  inRecovery: boolean | null;
  streaming: boolean;
  timeline: number | null;
  /** replica: last WAL position flushed from the primary; primary: current WAL position */
  lsn: bigint | null;
  nofailover: boolean;
  /** true when read just now from the member's HTTP API (not from a possibly stale annotation) */
  fresh: boolean;
  /** the pod carries the primary label */
  labelledPrimary: boolean;
  /** an operator asked this member to re-clone (`autopilot reinit`) */
  reinitRequested: boolean;
  /** the StatefulSet revision of its pod (controller-revision-hash), null outside a StatefulSet */
  revision: string | null;
  /** the system identifier of its data directory (null = unknown, e.g. an old member or no data yet) */
  systemId: string | null;
  /** its pod is being deleted (metadata.deletionTimestamp): a scale-down, an eviction, a restart */
  leaving: boolean;
  /** the kubelet's Ready condition (the Services route only to Ready pods); null = no kubelet reports on it */
  ready: boolean | null;
  /** its postgres has parameters changed that apply only at a restart (pg_settings.pending_restart) */
  pendingRestart?: boolean;
  /** the standby-bounded parameters (restart.ts STANDBY_BOUNDED) its postgres will run with after a restart */
  nextBounds?: Record<string, number>;
  /** digest of the parameters it runs on (live-parameters.ts parametersDigest); absent = unknown */
  parametersDigest?: string;
  /** backup.fromStandby: its pgBackRest server is up, here (absent: not running) */
  backupServer?: import('./backup-standby.js').BackupServer;
  /** the member it is configured to stream from (primary_conninfo), published even before its
   *  postgres accepts connections (a rewound member needs its slot to become consistent); null = none or unknown */
  following?: string | null;
}

export interface LeaseView {
  holder: string | null;
  resourceVersion: string;
  /** Milliseconds, by OUR monotonic clock, since we last saw this lease change. Never the holder's timestamps. */
  unchangedForMs: number;
  /** leaseDurationSeconds as written by the holder, in ms (null when absent): expiry waits for the longer of it and ours */
  durationMs: number | null;
  switchoverTo: string | null;
  paused: boolean;
  failovers: number;
  timeline: number | null;
  /** Sync mode: the members a commit may have been acknowledged by (the quorum set), and n. null = not recorded */
  syncStandbys: string[] | null;
  syncCount: number;
  /** the cluster's system identifier (pg_control), recorded by its primary; null = not recorded yet */
  systemId: string | null;
  /** fields that failed validation (a hand edit, another writer): non-empty means "never fail over on this lease" */
  problems: string[];
}

export interface InitView {
  holder: string | null;
  initialized: boolean;
  unchangedForMs: number;
}

export interface PgView {
  running: boolean;
  /** postmaster.pid's status line: 'ready' = normal operation (a writable primary), 'standby' = hot standby; null = unknown */
  serverState: 'starting' | 'stopping' | 'ready' | 'standby' | null;
  accepting: boolean;
  inRecovery: boolean | null;
  timeline: number | null;
  /** primary: current WAL LSN; replica: flushed-received LSN (falls back to replayed) */
  lsn: bigint | null;
  streaming: boolean;
  /** the member this replica is configured to follow (set when we render primary_conninfo) */
  following: string | null;
  /** Current synchronous_standby_names member list and n (primary only; [] = async) */
  syncNames: string[];
  syncCount: number;
  /** replicas streaming from us right now (primary only): application_name */
  streamingReplicas: string[];
  /** primary only: how far each streaming replica has flushed our WAL */
  replicaFlush: { name: string; lsn: bigint | null }[];
  /** primary only: the physical replication slots that exist (null = could not be read) */
  slots: string[] | null;
  /** our data directory's system identifier (from the server, or pg_control when it is down) */
  systemId: string | null;
}

export interface Settings {
  leaseMs: number;
  renewMs: number;
  renewDeadlineMs: number;
  maxLagBytes: number;
  /** on: synchronous while a standby streams, asynchronous (and no automatic failover) without one; strict: writes wait for a standby */
  syncMode: 'off' | 'on' | 'strict';
  syncCount: number;
  nofailover: boolean;
  failsafe: boolean;
}

export interface Observation {
  nowMs: number;
  self: string;
  settings: Settings;
  dataDir: DataDirState;
  /** from pg_controldata when postgres is down and the data dir is valid */
  controlRole: ControlRole;
  pg: PgView;
  /** undefined: we could not read the Lease at all recently (API unreachable) */
  lease: LeaseView | null | undefined;
  /** when `lease` is undefined: the last version we did read (a renewal is conditional on it) */
  lastKnownLease?: LeaseView | null;
  init: InitView | null | undefined;
  /** other members (not self), from the pod cache, refreshed with HTTP when a failover is judged */
  members: MemberView[];
  /** we are shutting down (SIGTERM); only a hand-off or a stop is left to do */
  terminating: boolean;
  /** our own pod carries the reinit annotation */
  reinitRequested: boolean;
  /** The StatefulSet's update revision when it differs from some member's (an update waits for us: OnDelete). */
  updateRevision: string | null;
  /** the StatefulSet's desired replicas (null outside a StatefulSet): a rolling update waits until that many members exist */
  expectedMembers: number | null;
  /** our pod's StatefulSet revision; during a rolling update a hand-off prefers members already updated */
  revision: string | null;
  /** backups (null: off) */
  backup?: BackupView | null;
  /** parameters of our running postgres that apply only at a restart (pg_settings.pending_restart) */
  pendingRestart?: string[];
  /** the standby-bounded parameters (restart.ts STANDBY_BOUNDED): what our postgres runs with, and
   *  what it will run with after a restart (unknown: absent) */
  runningBounds?: Record<string, number>;
  nextBounds?: Record<string, number>;
  /** digest of the parameters we run on (live-parameters.ts parametersDigest) */
  parametersDigest?: string;
  /** the member that asked us (POST /restart) since the last tick to restart postgres for them; null = nobody */
  restartRequestedBy?: string | null;
  /** replication.bootstrapFrom, and the repository's catalogue when a clone may restore from it (absent: basebackup) */
  replicaSource?: import('./clone.js').ReplicaSourceView;
}

/** What the primary needs to decide about backups. */
export interface BackupView {
  config: import('./backup-config.js').BackupConfig;
  /** wall clock (schedules are civil time, UTC) */
  wallNowMs: number;
  /** the stanza was created (or verified) by this member since it became primary */
  stanzaReady: boolean;
  /** a pgBackRest job (stanza-create, backup) of ours is running */
  busy: boolean;
  /** the last scheduled run of each type, from the lease */
  record: import('./backup.js').BackupRecord;
}

/**
 * What the autopilot remembers between ticks. Owned by the core: `decide` and `remember` return
 * the next memory, the shell only stores it. Times are the member's own monotonic milliseconds.
 */
export interface Memory {
  /** send time of our last lease write that named us, or of a failsafe round every member confirmed */
  confirmedAtMs: number | null;
  /** since when postgres is writable while the lease is not ours */
  writableWithoutLeaseSinceMs: number | null;
  /** since when postgres runs but does not tell us whether it is writable */
  pgUnknownSinceMs: number | null;
  /** since when postgres runs but is starting (not accepting connections, not writable) */
  pgStartingSinceMs: number | null;
  /** the last answer postgres gave: writable (true), read-only (false), never answered (null) */
  lastKnownWritable: boolean | null;
  /** since when this replica is not streaming while a leader exists */
  notStreamingSinceMs: number | null;
  /** pg_rewind runs that reached a live source and failed (an unreachable source does not count) */
  rewindFailures: number;
  /** postgres starts that failed since the last successful one, and since when */
  startFailures: number;
  startFailingSinceMs: number | null;
  /** failsafe: we promised this primary not to take the lease, at this time */
  failsafePromise: { to: string; atMs: number } | null;
  /** a take-over write conditioned on this resourceVersion got no answer: it may have committed */
  takeoverInDoubtRv: string | null;
  /** sync: postgres' synchronous set changed; the WAL position at the first observation after it
   * (every commit acknowledged under the old set is at or before it). null = nothing pending */
  syncChange: { names: string[]; count: number; lsn: bigint | null } | null;
  /** the lease version our own last successful write produced (a promote may follow it) */
  lastWrittenRv: string | null;
  /** our last lease write failed (no answer, or refused): a primary retries soon */
  leaseWriteFailed: boolean;
  /** since when we are shutting down while the recorded synchronous set still names us */
  leavingSinceMs: number | null;
  /** a restore from the backup repository failed on this member (why): it clones with pg_basebackup from then on */
  restoreFailed: string | null;
}

/** The result of an action, reported by the shell; folded into memory by `remember`. */
export type Outcome =
  | { type: 'lease_written'; sentAtMs: number; holder: string | null; resourceVersion: string }
  | { type: 'lease_write_failed'; takeover: boolean; ifResourceVersion: string | null; inDoubt: boolean }
  | { type: 'failsafe_round'; sentAtMs: number; allConfirmed: boolean }
  | { type: 'started'; as: 'primary' | 'replica' }
  | { type: 'promoted' }
  | { type: 'start_failed'; atMs: number }
  | { type: 'rewound'; outcome: 'done' | 'unreachable' | 'failed' }
  | { type: 'wiped' }
  | { type: 'restore_failed'; detail: string }
  | { type: 'demoted' }
  /** a hand-off's stop wrote the shutdown checkpoint: postgres takes no more writes while it drains and exits */
  | { type: 'writes_stopped' }
  | { type: 'handed_off' }
  | { type: 'sync_applied'; names: string[]; count: number };

export type Action =
  | { type: 'wipe' }
  | { type: 'acquire_init' }
  | { type: 'bootstrap' }
  /** method restore: pgBackRest restores the repository's latest backup as a standby (core/clone.ts); why: the decision's reason */
  | { type: 'clone'; from: Endpoint; method: import('./clone.js').CloneMethod; why: string }
  | { type: 'start'; as: 'primary' | 'replica'; follow: Endpoint | null }
  | { type: 'follow'; from: Endpoint | null }
  | { type: 'rewind'; from: Endpoint }
  | { type: 'reinit' }
  /** write conditional on the version the decision saw; null = create (no lease existed) */
  | { type: 'take_lease'; failover: boolean; ifResourceVersion: string | null }
  /** onFailure 'failsafe': a writable primary in failsafe mode asks every member at once when the renewal fails (its deadline is near) */
  | { type: 'renew_lease'; ifResourceVersion: string; record?: { syncStandbys: string[]; syncCount: number }; stamp?: { timeline?: number; systemId?: string }; onFailure?: 'failsafe' }
  | { type: 'release_lease'; ifResourceVersion: string; why: string }
  | { type: 'clear_switchover'; ifResourceVersion: string }
  /** checkpointMs: run a checkpoint first, for at most this long, while postgres still takes writes (0 = none) */
  | { type: 'handoff'; to: string; ifResourceVersion: string; checkpointMs: number }
  | { type: 'demote'; why: string }
  | { type: 'unlabel'; pods: string[] }
  /** promote only while the lease is still the version this decision saw (or the one our renew just wrote) */
  | { type: 'promote'; leaseVersion: string; sync?: { names: string[]; count: number } }
  | { type: 'set_sync'; names: string[]; count: number }
  | { type: 'manage_slots'; keep: string[] }
  | { type: 'probe_members' }
  | { type: 'failsafe' }
  | { type: 'evict_pod'; pod: string }
  /** ask a replica (POST /restart on its API) to restart its own postgres: parameters pending a restart */
  | { type: 'restart_member'; pod: string; apiUrl: string }
  /** stop postgres (fast) and start it again: as a replica following `follow`; null (a lone
   *  primary) = leave it stopped, the next tick starts it read-only and promotes on a confirmed lease */
  | { type: 'restart_postgres'; follow: Endpoint | null; parameters: string[] }
  /** create (or verify) the pgBackRest stanza; runs in the background */
  | { type: 'stanza_create' }
  /** record the scheduled run on the lease (conditional), then run the backup in the background */
  | { type: 'run_backup'; backupType: 'full' | 'diff' | 'incr'; at: number; ifResourceVersion: string; source: import('./backup-standby.js').BackupSource }
  | { type: 'stop' };

export interface Decision {
  actions: Action[];
  reason: string;
  memory: Memory;
}
