// The PostgreSQL layer's interface and the context its modules share. Re-exported by
// shell/postgres.ts, which is what the rest of the entrypoint imports.

import type { Config } from '../../core/config.js';
import type { confPaths, DynamicConf } from '../../core/render.js';
import type { Logger } from '../log.js';
import type { StopMode } from '../supervisor.js';

export type DataDirState = 'missing' | 'empty' | 'valid' | 'partial';

export interface Endpoint {
  host: string;
  port: number;
}

/**
 * The result of rewind():
 *  - 'done': the data directory follows the source's timeline; start it as a standby.
 *  - 'unreachable': no usable source — it could not be contacted (refused, timeout, DNS, the
 *    CHECKPOINT pre-check could not connect, pg_rewind could not connect or lost its connection)
 *    or it is not a primary. Says nothing about this member's data: never a reason to wipe it.
 *    The directory is unchanged, except after a connection lost mid-rewind, when it is 'partial'.
 *  - 'failed': pg_rewind ran against a reachable source and failed (different systems, missing
 *    WAL, …), or the data directory is not a valid one. The directory is 'partial'.
 */
export type RewindOutcome = { outcome: 'done' } | { outcome: 'unreachable'; detail: string } | { outcome: 'failed'; detail: string };

export interface SlotHealth {
  name: string;
  active: boolean;
  /** pg_replication_slots.wal_status: 'reserved', 'extended', 'unreserved' or 'lost' (invalidated) */
  walStatus: string | null;
}

export interface PgStatus {
  running: boolean;
  accepting: boolean;
  inRecovery: boolean | null;
  timeline: number | null;
  /** primary: pg_current_wal_lsn */
  currentLsn: string | null;
  receivedLsn: string | null;
  /** replica: the primary's WAL end as its sender last reported it (pg_stat_wal_receiver.latest_end_lsn) */
  upstreamLsn?: string | null;
  replayedLsn: string | null;
  /** wal receiver status = streaming */
  streaming: boolean;
  upstreamHost: string | null;
  replicas: { applicationName: string; state: string; syncState: string; flushLsn: string | null; replayLsn: string | null }[];
  /** primary only (empty on a replica): its replication slots; walStatus 'lost' = invalidated */
  slots: SlotHealth[];
  systemIdentifier: string | null;
  error: string | null;
}

export interface SettingsState {
  loadedAt: string;
  pendingRestart: { name: string; context: string }[];
  fileErrors: { name: string | null; error: string }[];
  /** the standby-bounded parameters (core/restart.ts): pg_settings now, and the configuration files' (else the built-in default) after a restart */
  bounds: { running: Record<string, number>; next: Record<string, number> };
}

export interface Postgres {
  /** pgBackRest for this member (enabled: false when backups are off) */
  backups: import('./backup.js').Backups;
  dataDirState(): Promise<DataDirState>;
  wipe(): Promise<void>;
  initdb(): Promise<void>;
  /** bootstrap.fromBackup: pgBackRest restores the source's backup with its recovery target */
  restore(r: import('../../core/restore-config.js').RestoreConfig): Promise<void>;
  /** `after` runs while the bootstrap marker is still set (standalone mode's init scripts) */
  bootstrapSql(after?: () => Promise<void>): Promise<void>;
  basebackup(from: Endpoint, onProgress?: (pct: number) => void): Promise<void>;
  /** replication.bootstrapFrom: backup: the cluster's latest backup restored as a standby (pg/datadir.ts) */
  restoreStandby(): Promise<void>;
  rewind(from: Endpoint): Promise<RewindOutcome>;
  writeConfig(dyn: DynamicConf): Promise<boolean>;
  setStandby(on: boolean): Promise<void>;
  start(): Promise<void>;
  stop(mode: 'smart' | 'fast' | 'immediate'): Promise<void>;
  isRunning(): boolean;
  /** postgres crashed and the supervisor restarts it (after its backoff): not running, but no one must start it */
  restarting(): boolean;
  /** Never throws. Asks postgres over the member's own persistent connection. */
  status(): Promise<PgStatus>;
  promote(): Promise<void>;
  /** CHECKPOINT on a connection of its own; timeoutMs bounds the statement (default 120 s) */
  checkpoint(timeoutMs?: number): Promise<void>;
  reload(): Promise<void>;
  /** postgresql.conf rendered again with the current Config and the last dynamic settings (live
   *  parameters); false when it did not change or was never written by this process */
  rewriteConfig(): Promise<boolean>;
  /** Over the member's own session: pg_conf_load_time() of that session (it moves once the
   *  session has processed a reload), pg_settings rows pending a restart (name, context), and
   *  pg_file_settings errors (core/live-parameters.ts refusedSettings tells a refusal from a pending restart) */
  settingsState(): Promise<SettingsState>;
  query(sql: string, params?: unknown[]): Promise<unknown[]>;
  ensureSlots(names: string[]): Promise<void>;
  dropSlotsExcept(keep: string[]): Promise<void>;
  onExit(cb: (code: number | null, signal: string | null) => void): void;
  /** Turn the automatic restart after a crash on or off (default on). */
  setAutoRestart(on: boolean): void;
  /** pid of the postmaster child, null when not running. */
  pid(): number | null;
  /** Number of automatic restarts after crashes so far. */
  restarts(): number;
}

export interface PostgresOptions {
  /** Run the binaries as this OS user through setpriv (tests that run as root). */
  runAs?: 'postgres' | string;
  /** How long start() waits for connections (default 600 s: crash recovery can be long). */
  startTimeoutMs?: number;
  /** Supervisor tuning (tests). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  resetAfterMs?: number;
  stopTimeoutsMs?: Partial<Record<StopMode | 'kill', number>>;
}

/** What every module of the layer needs: the configuration, its logger, the file paths and the
 *  OS user the programs run as. */
export interface PgContext {
  cfg: Config;
  /** the layer's logger (component: postgres) */
  log: Logger;
  /** the logger it was made from (the supervisor adds its own component) */
  root: Logger;
  paths: ReturnType<typeof confPaths>;
  runAs: string | undefined;
}
