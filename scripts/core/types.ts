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
  /** the kubelet's Ready condition (the Services route only to Ready pods); null = no kubelet reports on it */
  ready: boolean | null;
}

export interface LeaseView {
  holder: string | null;
  resourceVersion: string;
  /** Milliseconds, by OUR monotonic clock, since we last saw this lease change. Never the holder's timestamps. */
  unchangedForMs: number;
  switchoverTo: string | null;
  paused: boolean;
  failovers: number;
  timeline: number | null;
  /** Sync mode: the members a commit may have been acknowledged by (the quorum set), and n. null = not recorded */
  syncStandbys: string[] | null;
  syncCount: number;
}

export interface InitView {
  holder: string | null;
  initialized: boolean;
  unchangedForMs: number;
}

export interface PgView {
  running: boolean;
  accepting: boolean;
  inRecovery: boolean | null;
  timeline: number | null;
  /** primary: current WAL LSN; replica: flushed-received LSN (falls back to replayed) */
  lsn: bigint | null;
  streaming: boolean;
  /** the member this replica is configured to follow (set when we render primary_conninfo) */
  following: string | null;
  /** seconds-since-start of the current "not streaming while a leader exists" spell, ms; 0 when streaming */
  notStreamingForMs: number;
  /** Current synchronous_standby_names member list (primary only; [] = async) */
  syncNames: string[];
  /** replicas streaming from us right now (primary only): application_name */
  streamingReplicas: string[];
}

export interface Settings {
  leaseMs: number;
  renewMs: number;
  renewDeadlineMs: number;
  maxLagBytes: number;
  syncMode: 'off' | 'on';
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
  init: InitView | null | undefined;
  /** other members (not self), from the pod cache, refreshed with HTTP when a failover is judged */
  members: MemberView[];
  /** ms since the send time of our last successful lease write; null = never */
  renewedAgoMs: number | null;
  /** ms we have been a writable primary without holding the lease; 0 = not in that state */
  primaryWithoutLeaseMs: number;
  /** rewind attempts that failed since the last success (the shell counts) */
  rewindFailures: number;
  /** we are shutting down (SIGTERM); only a hand-off or a stop is left to do */
  terminating: boolean;
  /** our own pod carries the reinit annotation */
  reinitRequested: boolean;
  /** The StatefulSet's update revision when it differs from some member's (an update waits for us: OnDelete). */
  updateRevision: string | null;
  /** ms since we promised the primary (failsafe) not to take the lease; null = no promise */
  failsafeAckAgoMs: number | null;
  /** our pod's StatefulSet revision; during a rolling update a hand-off prefers members already updated */
  revision: string | null;
}

export type Action =
  | { type: 'wipe' }
  | { type: 'acquire_init' }
  | { type: 'bootstrap' }
  | { type: 'clone'; from: Endpoint }
  | { type: 'start'; as: 'primary' | 'replica'; follow: Endpoint | null }
  | { type: 'follow'; from: Endpoint | null }
  | { type: 'rewind'; from: Endpoint }
  | { type: 'reinit' }
  | { type: 'take_lease'; failover: boolean }
  | { type: 'renew_lease'; syncStandbys?: string[] }
  | { type: 'clear_switchover' }
  | { type: 'handoff'; to: string }
  | { type: 'demote'; why: string }
  | { type: 'unlabel'; pods: string[] }
  | { type: 'promote' }
  | { type: 'set_sync'; names: string[]; count: number }
  | { type: 'manage_slots' }
  | { type: 'probe_members' }
  | { type: 'failsafe' }
  | { type: 'delete_pod'; pod: string }
  | { type: 'stop' };

export interface Decision {
  actions: Action[];
  reason: string;
}
