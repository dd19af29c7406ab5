// Backups from a standby (backup.fromStandby), pure: which streaming replica a backup reads from,
// the pgBackRest server every member runs for it, and the options the primary's `pgbackrest
// backup` gets to reach that replica (pg2) through the server over mutual TLS. The primary stays
// the scheduler and record keeper (core/backup.ts); only where the files are read changes.
import type { BackupConfig } from './backup-config.js';
import type { MemberView, PgView } from './types.js';

/** Where a member's pgBackRest server answers and what it serves (published in its status). */
export interface BackupServer {
  host: string;
  port: number;
  /** the member's data directory and postgres socket directory (pg2-path, pg2-socket-path) */
  pgPath: string;
  pgSocketPath: string;
}

export interface StandbyTarget extends BackupServer {
  name: string;
  /** the replica's postgres port (pg2-port) */
  pgPort: number;
}

/** The core's choice for one backup: a standby, or the primary (null) and why. */
export interface BackupSource {
  standby: StandbyTarget | null;
  reason: string;
}

const fmtBytes = (n: number) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} kB` : `${(n / 1048576).toFixed(1)} MB`);

/**
 * The replica a backup reads from: one that streams from us (pg_stat_replication), is healthy, in
 * recovery on our timeline, not leaving, and publishes that its pgBackRest server is up; the least
 * lag (our WAL position minus its flushed one) first, then the name. None: the primary, and why.
 */
export function backupSource(b: BackupConfig, pg: Pick<PgView, 'lsn' | 'timeline' | 'streamingReplicas' | 'replicaFlush'>, members: MemberView[]): BackupSource {
  if (!b.fromStandby) return { standby: null, reason: 'backing up from the primary (backup.fromStandby is off)' };
  const why: string[] = [];
  const eligible: { m: MemberView; server: BackupServer; lag: number }[] = [];
  for (const m of [...members].sort((x, y) => x.name.localeCompare(y.name))) {
    const no = (r: string) => why.push(`${m.name}: ${r}`);
    if (!pg.streamingReplicas.includes(m.name)) { no('not streaming from us'); continue; }
    if (!m.healthy || m.inRecovery !== true) { no('not a healthy replica'); continue; }
    if (m.leaving) { no('its pod is being deleted'); continue; }
    if (m.timeline !== null && pg.timeline !== null && m.timeline !== pg.timeline) { no(`on timeline ${m.timeline}, not ours (${pg.timeline})`); continue; }
    if (!m.backupServer) { no('its pgBackRest server is not up'); continue; }
    const flushed = pg.replicaFlush.find((r) => r.name === m.name)?.lsn ?? null;
    const lag = pg.lsn !== null && flushed !== null ? Math.max(0, Number(pg.lsn - flushed)) : Number.MAX_SAFE_INTEGER;
    eligible.push({ m, server: m.backupServer, lag });
  }
  if (!eligible.length) {
    return { standby: null, reason: `backing up from the primary: no replica can serve it (${why.length ? why.join('; ') : 'no replicas'})` };
  }
  eligible.sort((x, y) => x.lag - y.lag || x.m.name.localeCompare(y.m.name));
  const best = eligible[0]!;
  const lag = best.lag === Number.MAX_SAFE_INTEGER ? 'lag unknown' : `lag ${fmtBytes(best.lag)}`;
  return {
    standby: { name: best.m.name, pgPort: best.m.port, ...best.server },
    reason: `backing up from standby ${best.m.name}: streams from us, healthy, ${lag}${eligible.length > 1 ? ` (least of ${eligible.length})` : ''}, pgBackRest server at ${best.server.host}:${best.server.port}`,
  };
}

/** Options of the primary's `pgbackrest backup` that read from the standby through its server. */
export function standbyBackupArgs(b: BackupConfig, t: StandbyTarget, superuser: string): string[] {
  const s = b.standby;
  if (!s) throw new Error('standbyBackupArgs: backup.fromStandby is off');
  return [
    '--backup-standby',
    `--pg2-host=${t.host}`, '--pg2-host-type=tls', `--pg2-host-port=${t.port}`,
    `--pg2-host-ca-file=${s.tls.caFile}`, `--pg2-host-cert-file=${s.tls.certFile}`, `--pg2-host-key-file=${s.tls.keyFile}`,
    `--pg2-path=${t.pgPath}`, `--pg2-port=${t.pgPort}`, `--pg2-socket-path=${t.pgSocketPath}`, `--pg2-user=${superuser}`,
  ];
}

/** The command line of this member's `pgbackrest server` (TLS, clients authenticated by certificate CN). */
export function serverArgs(b: BackupConfig, listen: string, confPath: string, includeDir: string): string[] {
  const s = b.standby;
  if (!s) throw new Error('serverArgs: backup.fromStandby is off');
  return [
    `--config=${confPath}`, `--config-include-path=${includeDir}`,
    `--tls-server-address=${listen}`, `--tls-server-port=${s.serverPort}`,
    `--tls-server-ca-file=${s.tls.caFile}`, `--tls-server-cert-file=${s.tls.certFile}`, `--tls-server-key-file=${s.tls.keyFile}`,
    `--tls-server-auth=${s.clientCN}=${b.stanza}`,
    '--log-level-console=info', '--log-level-stderr=off',
    'server',
  ];
}

/** The address this member publishes for its server: serverHost with {pod} replaced, else its pod address. */
export function serverHost(b: BackupConfig, podName: string, podIp: string): string {
  return b.standby?.serverHost ? b.standby.serverHost.replaceAll('{pod}', podName) : podIp;
}
