// What comes over the wire (the Lease, a peer's status annotation or HTTP answer), validated once
// into the core's views. Pure. A bad field never means "anything goes": a bad lease value is a
// problem that blocks failover, a bad peer status makes that peer unknown (unhealthy).
import type { LeaseView, MemberView, Role } from './types.js';
import { STANDBY_BOUNDED } from './restart.js';
import type { BackupServer } from './backup-standby.js';

export const LEASE_ANNOTATIONS = {
  switchoverTo: 'pg-autopilot.io/switchover-to',
  paused: 'pg-autopilot.io/paused',
  failovers: 'pg-autopilot.io/failovers',
  timeline: 'pg-autopilot.io/timeline',
  syncStandbys: 'pg-autopilot.io/sync-standbys',
  syncCount: 'pg-autopilot.io/sync-count',
  systemId: 'pg-autopilot.io/system-id',
  initialized: 'pg-autopilot.io/initialized',
  /** backups: the last scheduled run of each type (JSON, core/backup.ts BackupRecord) */
  backups: 'pg-autopilot.io/backups',
} as const;

/** The parts of a coordination.k8s.io/v1 Lease we read. */
export interface RawLease {
  metadata: { resourceVersion?: string; annotations?: Record<string, string> };
  spec: { holderIdentity?: string | null; leaseDurationSeconds?: number };
}

const MEMBER_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const SYSTEM_ID = /^\d{1,20}$/;

/**
 * May a lease version we just received replace the one we hold? Never an older one: a watch event
 * delayed behind our own write's answer would otherwise take our cache back in time (and a primary
 * would demote on a lease it already lost to... itself). resourceVersions of one object come from
 * etcd's revision counter; when either is not a number we cannot compare and accept the new one.
 */
export function newerOrSame(current: string | undefined, incoming: string | undefined): boolean {
  if (!current || !incoming || !/^\d+$/.test(current) || !/^\d+$/.test(incoming)) return true;
  return BigInt(incoming) >= BigInt(current);
}

export function parseLease(l: RawLease, unchangedForMs: number): LeaseView {
  const A = LEASE_ANNOTATIONS;
  const an = l.metadata.annotations ?? {};
  const problems: string[] = [];
  const holderRaw = l.spec.holderIdentity;
  let holder: string | null = null;
  if (typeof holderRaw === 'string' && holderRaw !== '') {
    if (MEMBER_NAME.test(holderRaw)) holder = holderRaw;
    else problems.push(`holderIdentity ${JSON.stringify(holderRaw).slice(0, 80)} is not a member name`);
  }
  const dur = l.spec.leaseDurationSeconds;
  let durationMs: number | null = null;
  if (dur !== undefined && dur !== null) {
    if (Number.isInteger(dur) && dur > 0 && dur <= 3600) durationMs = dur * 1000;
    else problems.push(`leaseDurationSeconds ${String(dur)} is not a whole number of seconds between 1 and 3600`);
  }
  const int = (key: string, min: number): number | null => {
    const v = an[key];
    if (v === undefined || v === '') return null;
    if (/^\d+$/.test(v) && Number(v) >= min && Number.isSafeInteger(Number(v))) return Number(v);
    problems.push(`${key}=${JSON.stringify(v).slice(0, 40)} is not a whole number ≥ ${min}`);
    return null;
  };
  let syncStandbys: string[] | null = null;
  if (an[A.syncStandbys] !== undefined) {
    const names = an[A.syncStandbys]!.split(',').filter(Boolean);
    const bad = names.filter((n) => !MEMBER_NAME.test(n));
    if (bad.length) problems.push(`${A.syncStandbys} names ${bad.map((b) => JSON.stringify(b).slice(0, 40)).join(', ')}, not members`);
    syncStandbys = names.filter((n) => MEMBER_NAME.test(n));
  }
  const syncCount = int(A.syncCount, 1) ?? 1;
  if (syncStandbys && syncStandbys.length && syncCount > syncStandbys.length) {
    problems.push(`${A.syncCount}=${syncCount} is larger than the ${syncStandbys.length} recorded synchronous standbys`);
  }
  const sysid = an[A.systemId];
  if (sysid !== undefined && !SYSTEM_ID.test(sysid)) problems.push(`${A.systemId}=${JSON.stringify(sysid).slice(0, 40)} is not a system identifier`);
  const paused = an[A.paused];
  if (paused !== undefined && paused !== 'true' && paused !== 'false') problems.push(`${A.paused}=${JSON.stringify(paused).slice(0, 20)} is neither "true" nor "false"`);
  const sw = an[A.switchoverTo] || null;
  if (sw !== null && sw !== '*' && !MEMBER_NAME.test(sw)) problems.push(`${A.switchoverTo}=${JSON.stringify(sw).slice(0, 40)} is not a member name or "*"`);
  return {
    holder,
    resourceVersion: l.metadata.resourceVersion ?? '',
    unchangedForMs,
    durationMs,
    switchoverTo: sw !== null && (sw === '*' || MEMBER_NAME.test(sw)) ? sw : null,
    // An unreadable pause flag reads as paused: it only ever holds the autopilot back.
    paused: paused !== undefined && paused !== 'false',
    failovers: int(A.failovers, 0) ?? 0,
    timeline: int(A.timeline, 1),
    syncStandbys,
    syncCount,
    systemId: sysid !== undefined && SYSTEM_ID.test(sysid) ? sysid : null,
    problems,
  };
}

/** What a member publishes about itself (pod annotation and GET /status). */
export interface MemberStatus {
  name: string;
  role: Role;
  host: string;
  port: number;
  apiUrl: string;
  timeline: number | null;
  lsn: string | null;
  receivedLsn: string | null;
  replayedLsn: string | null;
  lagBytes: number | null;
  healthy: boolean;
  inRecovery: boolean | null;
  streaming: boolean;
  nofailover: boolean;
  syncStandby: boolean;
  systemId?: string | null;
  /** its postgres has parameters changed that apply only at a restart (pg_settings.pending_restart) */
  pendingRestart?: boolean;
  /** the standby-bounded parameters (core/restart.ts) its postgres will run with after a restart */
  nextBounds?: Record<string, number>;
  /** digest of the parameters it runs on (core/live-parameters.ts parametersDigest) */
  parametersDigest?: string;
  /** backup.fromStandby: its pgBackRest server is up and serves its data directory (absent: not running) */
  backupServer?: BackupServer;
  /** the member it streams from or tries to (its primary_conninfo), whether or not its postgres answers */
  following?: string | null;
  updatedAt: string;
}

/** Only the standby-bounded names, each a whole number ≥ 0; anything else makes the whole map unknown. */
function bounds(x: unknown): Record<string, number> | null {
  if (!x || typeof x !== 'object' || Array.isArray(x)) return null;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(x as Record<string, unknown>)) {
    if (!(STANDBY_BOUNDED as readonly string[]).includes(k) || typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return null;
    out[k] = v;
  }
  return out;
}

/** A published pgBackRest server: host, port and absolute paths; anything else reads as "not up". */
function backupServer(x: unknown): BackupServer | null {
  if (!x || typeof x !== 'object' || Array.isArray(x)) return null;
  const s = x as Record<string, unknown>;
  const path = (v: unknown) => typeof v === 'string' && /^\/[^\s'"]*$/.test(v);
  if (typeof s.host !== 'string' || !/^[A-Za-z0-9.:-]{1,253}$/.test(s.host)) return null;
  if (typeof s.port !== 'number' || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535) return null;
  if (!path(s.pgPath) || !path(s.pgSocketPath)) return null;
  return { host: s.host, port: s.port, pgPath: s.pgPath as string, pgSocketPath: s.pgSocketPath as string };
}

const LSN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

/** A peer's published status, validated; null when it is not a status at all. */
export function parseMemberStatus(x: unknown): MemberStatus | null {
  if (!x || typeof x !== 'object') return null;
  const s = x as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const role = s.role === 'primary' || s.role === 'replica' ? s.role : 'unknown';
  const lsn = str(s.lsn);
  const port = typeof s.port === 'number' && Number.isInteger(s.port) && s.port > 0 && s.port < 65536 ? s.port : null;
  if (typeof s.name !== 'string' || !MEMBER_NAME.test(s.name) || typeof s.host !== 'string' || port === null || typeof s.apiUrl !== 'string') return null;
  const tl = typeof s.timeline === 'number' && Number.isInteger(s.timeline) && s.timeline > 0 ? s.timeline : null;
  const sysid = str(s.systemId);
  return {
    name: s.name, role, host: s.host, port, apiUrl: s.apiUrl, timeline: tl,
    lsn: lsn && LSN.test(lsn) ? lsn : null,
    receivedLsn: str(s.receivedLsn) && LSN.test(str(s.receivedLsn)!) ? str(s.receivedLsn) : null,
    replayedLsn: str(s.replayedLsn) && LSN.test(str(s.replayedLsn)!) ? str(s.replayedLsn) : null,
    lagBytes: typeof s.lagBytes === 'number' && Number.isFinite(s.lagBytes) ? s.lagBytes : null,
    healthy: s.healthy === true,
    inRecovery: typeof s.inRecovery === 'boolean' ? s.inRecovery : null,
    streaming: s.streaming === true,
    nofailover: s.nofailover === true,
    syncStandby: s.syncStandby === true,
    systemId: sysid && SYSTEM_ID.test(sysid) ? sysid : null,
    // anything but true reads as "nothing pending": a malformed flag never restarts a member
    pendingRestart: s.pendingRestart === true,
    ...(bounds(s.nextBounds) ? { nextBounds: bounds(s.nextBounds)! } : {}),
    ...(typeof s.parametersDigest === 'string' && /^[0-9a-f]{8}$/.test(s.parametersDigest) ? { parametersDigest: s.parametersDigest } : {}),
    ...(backupServer(s.backupServer) ? { backupServer: backupServer(s.backupServer)! } : {}),
    following: typeof s.following === 'string' && MEMBER_NAME.test(s.following) ? s.following : null,
    updatedAt: str(s.updatedAt) ?? '',
  };
}

export type { MemberView };
