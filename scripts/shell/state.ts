// The autopilot shell's state: caches of what it watches (Lease, pods, StatefulSet, postgres) and
// the core's memory, which only the core changes (`remember`, `decide`). One object, passed to the
// shell's modules (observe, act, lease, publish, failsafe) so that none of them hides state.
import type { Config } from '../core/config.js';
import type { Decision, Memory, Outcome, Role } from '../core/types.js';
import { initialMemory, remember, type KnownMembers } from '../core/memory.js';
import { watchdog } from '../core/safety.js';
import { newerOrSame, type MemberStatus } from '../core/wire.js';
import type { Logger } from './log.js';
import type { Postgres, PgStatus } from './postgres.js';
import type { Kube, Lease, Pod, StatefulSet } from './kube.js';

export const ROLE_LABEL = 'pg-autopilot.io/role';
export const STATUS_ANNOTATION = 'pg-autopilot.io/status';
export const REINIT_ANNOTATION = 'pg-autopilot.io/reinit';

export type FetchStatus = (apiUrl: string, timeoutMs: number) => Promise<MemberStatus | null>;

export interface State {
  readonly cfg: Config;
  readonly log: Logger;
  readonly kube: Kube;
  readonly pg: Postgres;
  readonly now: () => number;
  readonly fetchStatus: FetchStatus;
  readonly leaseName: string;
  readonly initName: string;
  readonly apiUrl: string;

  /** the leader Lease as last seen (undefined = never read); leaseUnreadable: the last direct read failed */
  lease: Lease | null | undefined;
  leaseKey: string;
  leaseChangedAt: number;
  leaseInformerOk: boolean;
  leaseUnreadable: boolean;
  init: Lease | null | undefined;
  initKey: string;
  initChangedAt: number;
  pods: Map<string, Pod>;
  sts: StatefulSet | null;

  memory: Memory;
  lastPg: PgStatus | null;
  /** what we rendered into postgresql.conf: whom we follow, which standbys we wait for */
  following: string | null;
  sync: { names: string[]; count: number };
  takeoverInFlight: boolean;
  /** a demotion (stop) is under way: the watchdog does not fire again meanwhile */
  demoting: boolean;
  /** a hand-off is stopping postgres: it takes no more writes, and our label says so at once */
  stopping: boolean;
  terminating: boolean;
  terminated: boolean;
  lastDecision: Decision;
  lastDecisionAt: Date;
  lastTickAt: number;
  watchdogTimer: NodeJS.Timeout | null;
  /** failsafe: every member a round must hear from (core: updateKnownMembers), and their last API URL */
  knownMembers: KnownMembers;
  memberUrls: Map<string, string>;
  /** the publish on the wire, and whether another is wanted after it */
  publishing: Promise<void> | null;
  publishAgain: 'yes' | 'force' | null;
  /** what we last published on our pod */
  published: { key: string; at: number; lsn: string | null; label: Role | null };
  /** set by the loop: stop postgres now (the watchdog) */
  onWatchdog: (reason: string) => void;
  /** set by the loop: tick again soon (a background job ended) */
  wake: () => void;
  /** backups (shell/backup-jobs.ts): the job running here, the stanza created this term, the last results */
  backup: BackupState;
  /** the last tick's observation (an on-demand backup asks the core for its source with it) */
  lastObservation: import('../core/types.js').Observation | null;
  /** parameters changed live (shell/live-parameters.ts) */
  params: ParamsState;
  /** Citus worker with a coordinator configured: the API client for the coordinator's namespace (hand-off waits for its hold) */
  citusCoordinatorKube?: Kube;
  /** how this member got its data by a clone (shown in /status), and the repository as last read for one */
  clone: CloneState;
}

export interface ParamsState {
  /** parameters.json as last read (null: not read yet) */
  text: string | null;
  /** `autopilot run -c` values, kept on top of every new parameters.json */
  overrides: Record<string, string> | null;
  /** why the last parameters.json was not applied (empty: it was) */
  problems: string[];
  /** parameters of the running postgres pending a restart, and the postmaster they were read from */
  pending: string[];
  pendingPid: number | null;
  /** the standby-bounded parameters (core/restart.ts): running now, and after a restart (null: not read) */
  bounds: { running: Record<string, number>; next: Record<string, number> } | null;
  appliedAt: Date | null;
  /** a reload sent and not yet confirmed by our session: what changed, and the parameters to write back if postgres refuses them */
  reloading: { before: string | null; sinceMs: number; changed: string[]; previous: Record<string, string> } | null;
  /** a member asked us (POST /restart) to restart postgres; consumed by the next observation */
  restartRequestedBy: string | null;
}

export interface CloneState {
  last: { method: 'basebackup' | 'restore'; reason: string; startedAt: Date; ms: number | null; error: string | null } | null;
  repo: { at: number; view: import('../core/clone.js').RepoView } | null;
}

export interface BackupState {
  job: { kind: 'stanza' | 'backup'; type: string | null; startedAt: Date } | null;
  stanzaReady: boolean;
  lastSuccess: Partial<Record<string, { at: Date; ms: number }>>;
  lastError: { at: Date; message: string } | null;
  /** pg_stat_archiver of our postgres while primary (read every few seconds), and when */
  archiver: import('./postgres.js').ArchiverStatus | null;
  archiverReadAt: number;
  /** where the last backup read its files (backup.fromStandby): the core's choice and why */
  lastSource: { at: Date; standby: string | null; reason: string } | null;
}

export function createState(cfg: Config, log: Logger, kube: Kube, pg: Postgres, now: () => number, fetchStatus: FetchStatus): State {
  return {
    cfg, log, kube, pg, now, fetchStatus,
    leaseName: `${cfg.clusterName}-leader`,
    initName: `${cfg.clusterName}-init`,
    apiUrl: `http://${cfg.podIp.includes(':') ? `[${cfg.podIp}]` : cfg.podIp}:${cfg.apiPort}`,
    lease: undefined, leaseKey: '', leaseChangedAt: now(), leaseInformerOk: false, leaseUnreadable: false,
    init: undefined, initKey: '', initChangedAt: now(),
    pods: new Map(), sts: null,
    memory: initialMemory(),
    lastPg: null, following: null, sync: { names: [], count: 1 },
    takeoverInFlight: false, demoting: false, stopping: false, terminating: false, terminated: false,
    lastDecision: { actions: [], reason: 'starting', memory: initialMemory() }, lastDecisionAt: new Date(), lastTickAt: now(),
    watchdogTimer: null,
    published: { key: '', at: 0, lsn: null, label: null },
    knownMembers: {},
    memberUrls: new Map(),
    publishing: null,
    publishAgain: null,
    onWatchdog: () => undefined,
    wake: () => undefined,
    backup: { job: null, stanzaReady: false, lastSuccess: {}, lastError: null, archiver: null, archiverReadAt: -Infinity, lastSource: null },
    params: { text: null, overrides: null, problems: [], pending: [], pendingPid: null, bounds: null, reloading: null, appliedAt: null, restartRequestedBy: null },
    clone: { last: null, repo: null },
    lastObservation: null,
  };
}

/** Every lease change we see, by OUR monotonic clock: expiry is judged from here, never from the holder's timestamps. */
export function setLease(st: State, l: Lease | null): void {
  st.leaseUnreadable = false;
  if (l && st.lease && !newerOrSame(st.lease.metadata.resourceVersion, l.metadata.resourceVersion)) return;
  const key = l ? `${l.spec.holderIdentity ?? ''}|${l.spec.renewTime ?? ''}|${l.metadata.resourceVersion ?? ''}` : 'none';
  if (key !== st.leaseKey) { st.leaseKey = key; st.leaseChangedAt = st.now(); }
  st.lease = l;
}

export function setInit(st: State, l: Lease | null): void {
  const key = l ? `${l.spec.holderIdentity ?? ''}|${l.metadata.annotations?.['pg-autopilot.io/initialized'] ?? ''}|${l.metadata.resourceVersion ?? ''}` : 'none';
  if (key !== st.initKey) { st.initKey = key; st.initChangedAt = st.now(); }
  st.init = l;
}

/** Fold an action's result into the core's memory, then re-arm the watchdog on the new memory. */
export function record(st: State, e: Outcome): void {
  st.memory = remember(st.memory, e, st.cfg.podName);
  armWatchdog(st);
}

/** The watchdog: a timer independent of the tick; the rule is the core's (safety.ts). */
export function armWatchdog(st: State): void {
  if (st.watchdogTimer) clearTimeout(st.watchdogTimer);
  st.watchdogTimer = null;
  if (st.terminated || st.demoting) return;
  const v = watchdog(st.memory, st.pg.isRunning(), st.cfg, st.now());
  if (v.stop) { st.onWatchdog(v.reason); return; }
  if (v.checkAgainInMs === null) return;
  st.watchdogTimer = setTimeout(() => { st.watchdogTimer = null; armWatchdog(st); }, v.checkAgainInMs + 1);
}

/** Thrown when an action's precondition no longer holds: later actions of the tick are skipped. */
export class Stale extends Error {}

export const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));
