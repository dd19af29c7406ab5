// What a member says about itself: its role label and status annotation on its own pod, GET
// /status and /metrics. Served from the last observation; nothing here opens a connection to
// postgres or decides anything.
import { backupRecordOf } from './backup-jobs.js';
import type { Role } from '../core/types.js';
import { parseLsn, formatLsn } from '../core/lsn.js';
import { appliedParametersDigest } from './live-parameters.js';
import { mayStayWritable } from '../core/safety.js';
import { LEASE_ANNOTATIONS as A, type MemberStatus } from '../core/wire.js';
import { leaseView, membersFromPods } from './observe.js';
import { ROLE_LABEL, STATUS_ANNOTATION, errMsg, type State } from './state.js';

/** How often a member republishes its annotation when only its WAL position moved. */
const LSN_PUBLISH_MS = 120_000;

export function myRole(st: State): Role {
  const s = st.lastPg;
  if (!s?.running || !s.accepting || !st.pg.isRunning() || st.demoting || st.stopping) return 'unknown';
  if (s.inRecovery === false) {
    const ours = st.lease?.spec.holderIdentity === st.cfg.podName;
    return ours && mayStayWritable(st.memory, st.cfg, st.now()).ok ? 'primary' : 'unknown';
  }
  if (s.inRecovery === true) return 'replica';
  return 'unknown';
}

export function myStatus(st: State): MemberStatus {
  const s = st.lastPg;
  const lsn = s ? (s.inRecovery ? s.receivedLsn ?? s.replayedLsn : s.currentLsn) : null;
  let lag: number | null = null;
  if (s?.inRecovery && s.receivedLsn && s.replayedLsn) lag = Number(parseLsn(s.receivedLsn) - parseLsn(s.replayedLsn));
  if (s?.inRecovery) {
    // Behind the primary: its WAL end as our sender last reported it; without a stream, its published position.
    const holder = membersFromPods(st).find((m) => m.name === st.lease?.spec.holderIdentity);
    const upstream = s.streaming && s.upstreamLsn ? parseLsn(s.upstreamLsn) : holder?.lsn ?? null;
    const mine = s.replayedLsn ?? lsn;
    if (upstream !== null && mine) lag = Math.max(0, Number(upstream - parseLsn(mine)));
  }
  return {
    name: st.cfg.podName,
    role: myRole(st),
    host: st.cfg.podIp,
    port: st.cfg.pgPort,
    apiUrl: st.apiUrl,
    timeline: s?.timeline ?? null,
    lsn: lsn ? formatLsn(parseLsn(lsn)) : null,
    receivedLsn: s?.receivedLsn ?? null,
    replayedLsn: s?.replayedLsn ?? null,
    lagBytes: lag,
    healthy: !!s?.accepting,
    inRecovery: s?.inRecovery ?? null,
    streaming: !!s?.streaming,
    nofailover: st.cfg.nofailover,
    syncStandby: (st.lease?.metadata.annotations?.[A.syncStandbys] ?? '').split(',').includes(st.cfg.podName),
    systemId: s?.systemIdentifier ?? null,
    pendingRestart: st.params.pending.length > 0,
    ...(st.params.bounds ? { nextBounds: st.params.bounds.next } : {}),
    parametersDigest: appliedParametersDigest(st),
    ...(st.pg.backups?.server?.published() ? { backupServer: st.pg.backups.server.published()! } : {}),
    following: st.following,
    updatedAt: new Date().toISOString(),
  };
}

/**
 * Publish our label and status annotation. One write at a time: a call while one is on the wire
 * is folded into a follow-up write (so a slow API server never stacks requests up, and the loop
 * need not wait for it).
 */
export async function publish(st: State, force = false): Promise<void> {
  if (st.publishing) { st.publishAgain = st.publishAgain || (force ? 'force' : 'yes'); return st.publishing; }
  st.publishing = publishOnce(st, force).finally(() => { st.publishing = null; });
  await st.publishing;
  const again = st.publishAgain;
  st.publishAgain = null;
  if (again) await publish(st, again === 'force');
}

async function publishOnce(st: State, force: boolean): Promise<void> {
  const s = myStatus(st);
  const { updatedAt: _u, lsn: _l, receivedLsn: _r, replayedLsn: _p, lagBytes: _g, ...stable } = s;
  const key = JSON.stringify(stable);
  const last = st.published;
  const lsnMoved = s.lsn !== last.lsn;
  // Stable fields change → publish now; only the WAL position moved → at most every 2 minutes
  // (it is informational: failover candidates ask each other's /status for fresh positions).
  if (!force && key === last.key && !(lsnMoved && Date.now() - last.at > LSN_PUBLISH_MS) && last.label === s.role) return;
  try {
    await st.kube.patchPod(st.cfg.podName, { labels: { [ROLE_LABEL]: s.role }, annotations: { [STATUS_ANNOTATION]: JSON.stringify(s) } }, 1_000);
    if (last.label !== s.role) st.log.info('role label set', { role: s.role });
    st.published = { key, at: Date.now(), lsn: s.lsn, label: s.role };
  } catch (e) {
    st.log.warn('could not publish our state on our pod', { error: errMsg(e) });
  }
}

export interface StatusSnapshot {
  member: MemberStatus;
  leader: string | null;
  leaseHolder: string | null;
  leaseAgeMs: number | null;
  paused: boolean;
  failovers: number;
  syncStandbys: string[] | null;
  reason: string;
  actions: string[];
  decidedAt: string;
  members: MemberStatus[];
  kubeRequests: Record<string, number>;
  /** values on the lease that failed validation (no failover while any is listed) */
  leaseProblems: string[];
  /** parameters changed live: those pending a restart here, why the last parameters.json was refused, when one was last applied */
  parameters: { pendingRestart: string[]; problems: string[]; appliedAt: string | null };
  /** how this member got its data by its last clone: method, the decision's reason, duration, a failed restore's error */
  clone?: { method: 'basebackup' | 'restore'; reason: string; startedAt: string; ms: number | null; restoreError: string | null };
  /** Citus (citus.json): this member's group, the registry's last step and reason, groups waiting */
  citus?: import('./citus-loop.js').CitusStatus;
  /** backups (absent when off): the job running here, the last results, the archiver (primary) */
  backup?: {
    stanza: string; job: string | null; lastSuccess: Record<string, { at: string; ms: number }>; lastError: { at: string; message: string } | null; archive: import('./postgres.js').ArchiverStatus | null; schedule: unknown;
    /** where the last backup started here read its files (backup.fromStandby), and why */
    lastSource: { at: string; standby: string | null; reason: string } | null;
    /** backup.fromStandby: this member's pgBackRest server (absent: off) */
    server?: import('./backup-server.js').BackupServerState;
  };
}

export function snapshot(st: State): StatusSnapshot {
  const lv = leaseView(st);
  return {
    member: myStatus(st),
    leader: lv?.holder && lv.unchangedForMs < Math.max(st.cfg.leaseMs, lv.durationMs ?? 0) ? lv.holder : null,
    leaseHolder: lv?.holder ?? null,
    leaseAgeMs: lv ? lv.unchangedForMs : null,
    paused: !!lv?.paused,
    failovers: lv?.failovers ?? 0,
    syncStandbys: lv?.syncStandbys ?? null,
    reason: st.lastDecision.reason,
    actions: st.lastDecision.actions.map((a) => a.type),
    decidedAt: st.lastDecisionAt.toISOString(),
    members: [...st.pods.entries()].filter(([n]) => n !== st.cfg.podName).map(([n, p]) => {
      const raw = p.metadata.annotations?.[STATUS_ANNOTATION];
      try { return raw ? ({ ...(JSON.parse(raw) as MemberStatus), name: n }) : null; } catch { return null; }
    }).filter((m): m is MemberStatus => !!m),
    kubeRequests: { ...st.kube.counts },
    leaseProblems: lv?.problems ?? [],
    parameters: { pendingRestart: [...st.params.pending], problems: [...st.params.problems], appliedAt: st.params.appliedAt?.toISOString() ?? null },
    ...(st.clone.last ? { clone: { method: st.clone.last.method, reason: st.clone.last.reason, startedAt: st.clone.last.startedAt.toISOString(), ms: st.clone.last.ms, restoreError: st.clone.last.error } } : {}),
    ...(st.cfg.backup ? {
      backup: {
        stanza: st.cfg.backup.stanza,
        job: st.backup.job ? `${st.backup.job.kind}${st.backup.job.type ? ` ${st.backup.job.type}` : ''} since ${st.backup.job.startedAt.toISOString()}` : null,
        lastSuccess: Object.fromEntries(Object.entries(st.backup.lastSuccess).map(([t, v]) => [t, { at: v!.at.toISOString(), ms: v!.ms }])),
        lastError: st.backup.lastError ? { at: st.backup.lastError.at.toISOString(), message: st.backup.lastError.message } : null,
        archive: st.backup.archiver,
        schedule: backupRecordOf(st),
        lastSource: st.backup.lastSource ? { ...st.backup.lastSource, at: st.backup.lastSource.at.toISOString() } : null,
        ...(st.pg.backups?.server ? { server: { ...st.pg.backups.server.state } } : {}),
      },
    } : {}),
  };
}

/** Backups and the WAL archive (only with backups on). */
function backupMetrics(st: State): string[] {
  if (!st.cfg.backup) return [];
  const b = st.backup, a = b.archiver, rec = backupRecordOf(st);
  const ts = (d: Date | string | null | undefined) => (d ? (new Date(d).getTime() / 1000).toFixed(3) : '0');
  return [
    '# HELP pga_backup_last_success_timestamp_seconds When the newest successful backup of each type finished: this member\'s own, or the scheduled time of the last one the lease records as done (0: none known).', '# TYPE pga_backup_last_success_timestamp_seconds gauge',
    ...(['full', 'diff', 'incr'] as const).map((t) => {
      const own = b.lastSuccess[t]?.at.getTime() ?? 0;
      const r = rec[t];
      const recorded = r?.state === 'done' ? r.at : 0;
      const best = Math.max(own, recorded);
      return `pga_backup_last_success_timestamp_seconds{type="${t}"} ${best ? (best / 1000).toFixed(3) : '0'}`;
    }),
    '# HELP pga_backup_last_duration_seconds How long the last successful backup of each type took.', '# TYPE pga_backup_last_duration_seconds gauge',
    ...(['full', 'diff', 'incr'] as const).map((t) => `pga_backup_last_duration_seconds{type="${t}"} ${((b.lastSuccess[t]?.ms ?? 0) / 1000).toFixed(3)}`),
    '# HELP pga_backup_running 1 while a backup runs on this member.', '# TYPE pga_backup_running gauge',
    `pga_backup_running ${b.job?.kind === 'backup' ? 1 : 0}`,
    ...(st.pg.backups?.server ? [
      '# HELP pga_backup_server_up 1 while this member\'s pgBackRest server accepts connections (backup.fromStandby).', '# TYPE pga_backup_server_up gauge',
      `pga_backup_server_up ${st.pg.backups.server.state.listening ? 1 : 0}`,
      '# HELP pga_backup_server_restarts_total Restarts of this member\'s pgBackRest server after it exited.', '# TYPE pga_backup_server_restarts_total counter',
      `pga_backup_server_restarts_total ${st.pg.backups.server.state.restarts}`,
    ] : []),
    '# HELP pga_backup_from_standby 1 when the last backup started here read from a standby, 0 from the primary (backup.fromStandby).', '# TYPE pga_backup_from_standby gauge',
    `pga_backup_from_standby ${b.lastSource?.standby ? 1 : 0}`,
    '# HELP pga_archive_failing 1 when the last WAL archive attempt failed (primary only).', '# TYPE pga_archive_failing gauge',
    `pga_archive_failing ${a?.failing ? 1 : 0}`,
    '# HELP pga_archive_failed_total Failed WAL archive attempts (pg_stat_archiver, primary only).', '# TYPE pga_archive_failed_total counter',
    `pga_archive_failed_total ${a?.failedCount ?? 0}`,
    '# HELP pga_archive_last_archived_timestamp_seconds When the last WAL segment was archived (primary only; 0: none).', '# TYPE pga_archive_last_archived_timestamp_seconds gauge',
    `pga_archive_last_archived_timestamp_seconds ${ts(a?.lastArchivedAt)}`,
  ];
}

export function metrics(st: State): string {
  const s = myStatus(st);
  const lv = leaseView(st);
  const slots = st.lastPg?.slots ?? [];
  const lines = [
    '# HELP pga_role Role of this member (1 for the current role).', '# TYPE pga_role gauge',
    ...(['primary', 'replica', 'unknown'] as const).map((r) => `pga_role{role="${r}"} ${s.role === r ? 1 : 0}`),
    '# HELP pga_lag_bytes Replication lag of this member in bytes (0 on the primary).', '# TYPE pga_lag_bytes gauge',
    `pga_lag_bytes ${s.role === 'primary' ? 0 : s.lagBytes ?? -1}`,
    '# HELP pga_lease_holder 1 when this member holds the leader lease.', '# TYPE pga_lease_holder gauge',
    `pga_lease_holder ${lv?.holder === st.cfg.podName ? 1 : 0}`,
    '# HELP pga_failovers_total Failovers recorded on the leader lease.', '# TYPE pga_failovers_total counter',
    `pga_failovers_total ${lv?.failovers ?? 0}`,
    '# HELP pga_timeline Timeline of this member.', '# TYPE pga_timeline gauge',
    `pga_timeline ${s.timeline ?? 0}`,
    '# HELP pga_postgres_up 1 when postgres accepts connections.', '# TYPE pga_postgres_up gauge',
    `pga_postgres_up ${s.healthy ? 1 : 0}`,
    '# HELP pga_lease_problems Values on the leader lease that failed validation (no failover while > 0).', '# TYPE pga_lease_problems gauge',
    `pga_lease_problems ${lv?.problems.length ?? 0}`,
    '# HELP pga_replication_slots_lost Replication slots invalidated by max_slot_wal_keep_size (their member must re-clone).', '# TYPE pga_replication_slots_lost gauge',
    `pga_replication_slots_lost ${slots.filter((x) => x.walStatus === 'lost').length}`,
    '# HELP pga_pending_restart 1 when parameters changed live wait for a postgres restart here (the primary rolls them; /status lists them).', '# TYPE pga_pending_restart gauge',
    `pga_pending_restart ${st.params.pending.length > 0 ? 1 : 0}`,
    '# HELP pga_parameters_refused 1 when the mounted parameters.json was refused and the member runs on the previous parameters (/status says why).', '# TYPE pga_parameters_refused gauge',
    `pga_parameters_refused ${st.params.problems.length > 0 ? 1 : 0}`,
    '# HELP pga_kube_requests_total Requests this member sent to the Kubernetes API.', '# TYPE pga_kube_requests_total counter',
    ...Object.entries(st.kube.counts).map(([v, n]) => `pga_kube_requests_total{verb="${v}"} ${n}`),
    ...backupMetrics(st),
  ];
  return lines.join('\n') + '\n';
}
