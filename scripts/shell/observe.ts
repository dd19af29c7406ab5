// Observation: postgres, the Lease, the member pods → one immutable snapshot for the core.
// Everything read from outside passes the core's validators (core/wire.ts) here, once.
import { backupRecordOf } from './backup-jobs.js';
import type { BackupView } from '../core/types.js';
import type { ReplicaSourceView } from '../core/clone.js';
import { byName } from '../core/order.js';
import { promises as fsp } from 'node:fs';
import type { ControlRole, DataDirState, InitView, LeaseView, MemberView, Observation, PgView } from '../core/types.js';
import { parseLease, parseMemberStatus, LEASE_ANNOTATIONS as A, type MemberStatus } from '../core/wire.js';
import { parseLsn } from '../core/lsn.js';
import { appliedParametersDigest } from './live-parameters.js';
import type { Pod } from './kube.js';
import type { PgStatus } from './postgres.js';
import { readControlData } from './controldata.js';
import { ROLE_LABEL, REINIT_ANNOTATION, STATUS_ANNOTATION, setInit, setLease, type State } from './state.js';

/** The kubelet's Ready condition; null when no kubelet reports on the pod (no conditions at all). */
function podReady(pod: Pod | undefined): boolean | null {
  const c = pod?.status?.conditions?.find((x) => x.type === 'Ready');
  return c ? c.status === 'True' : null;
}

export function leaseView(st: State, l: typeof st.lease = st.lease): LeaseView | null | undefined {
  if (l === undefined) return undefined;
  if (l === null) return null;
  return parseLease(l, st.now() - st.leaseChangedAt);
}

function initView(st: State): InitView | null | undefined {
  if (st.init === undefined) return undefined;
  if (st.init === null) return null;
  return { holder: st.init.spec.holderIdentity || null, initialized: st.init.metadata.annotations?.[A.initialized] === 'true', unchangedForMs: st.now() - st.initChangedAt };
}

export function viewFromStatus(s: MemberStatus, pod: Pod | undefined, fresh: boolean): MemberView {
  return {
    name: s.name, host: s.host, port: s.port, apiUrl: s.apiUrl, role: s.role, healthy: s.healthy,
    inRecovery: s.inRecovery, streaming: s.streaming, timeline: s.timeline,
    lsn: s.lsn ? parseLsn(s.lsn) : null,
    nofailover: s.nofailover, fresh,
    labelledPrimary: pod?.metadata.labels?.[ROLE_LABEL] === 'primary',
    reinitRequested: !!pod?.metadata.annotations?.[REINIT_ANNOTATION],
    revision: pod?.metadata.labels?.['controller-revision-hash'] ?? null,
    systemId: s.systemId ?? null,
    leaving: !!pod?.metadata.deletionTimestamp,
    ready: podReady(pod),
    pendingRestart: s.pendingRestart === true,
    ...(s.nextBounds ? { nextBounds: s.nextBounds } : {}),
    ...(s.parametersDigest ? { parametersDigest: s.parametersDigest } : {}),
    ...(s.backupServer ? { backupServer: s.backupServer } : {}),
    following: s.following ?? null,
  };
}

/** A member's published status from its pod annotation (validated), or null. */
export function publishedStatus(pod: Pod | undefined): MemberStatus | null {
  const raw = pod?.metadata.annotations?.[STATUS_ANNOTATION];
  if (!raw) return null;
  try { return parseMemberStatus(JSON.parse(raw)); } catch { return null; }
}

export function membersFromPods(st: State): MemberView[] {
  const out: MemberView[] = [];
  for (const [name, pod] of st.pods) {
    if (name === st.cfg.podName) continue;
    const s = publishedStatus(pod);
    const host = s?.host ?? pod.status?.podIP ?? '';
    const base: MemberStatus = s ?? {
      name, role: 'unknown', host, port: st.cfg.pgPort, apiUrl: `http://${host}:${st.cfg.apiPort}`, timeline: null, lsn: null,
      receivedLsn: null, replayedLsn: null, lagBytes: null, healthy: false, inRecovery: null, streaming: false,
      nofailover: false, syncStandby: false, systemId: null, updatedAt: '',
    };
    const view = viewFromStatus({ ...base, name }, pod, false);
    // A pod being deleted is on its way out, whatever its last annotation said.
    out.push(pod.metadata.deletionTimestamp ? { ...view, healthy: false } : view);
  }
  return out.sort((a, b) => byName(a.name, b.name));
}

/** Line 8 of postmaster.pid: what the postmaster says it is doing, without a connection. */
async function serverState(dataDir: string): Promise<PgView['serverState']> {
  try {
    const line = (await fsp.readFile(`${dataDir}/postmaster.pid`, 'utf8')).split('\n')[7]?.trim();
    return line === 'starting' || line === 'stopping' || line === 'ready' || line === 'standby' ? line : null;
  } catch {
    return null;
  }
}

async function pgView(st: State, s: PgStatus, running: boolean, systemId: string | null): Promise<PgView> {
  const lsnStr = s.inRecovery ? s.receivedLsn ?? s.replayedLsn : s.currentLsn;
  // The primary's slots come with its status, read on the autopilot's own connection; the
  // temporary ones pg_basebackup makes while a member clones (pg_basebackup_<pid>) are not ours.
  const slots = running && s.inRecovery === false ? s.slots.map((x) => x.name).filter((n) => !n.startsWith('pg_basebackup_')) : null;
  return {
    running,
    serverState: running ? await serverState(st.cfg.dataDir) : null,
    accepting: s.accepting,
    inRecovery: s.inRecovery,
    timeline: s.timeline,
    lsn: lsnStr ? parseLsn(lsnStr) : null,
    streaming: s.streaming,
    following: st.following,
    syncNames: st.sync.names,
    syncCount: st.sync.count,
    streamingReplicas: s.replicas.filter((r) => r.state === 'streaming').map((r) => r.applicationName),
    replicaFlush: s.replicas.map((r) => ({ name: r.applicationName, lsn: r.flushLsn ? parseLsn(r.flushLsn) : null })),
    slots,
    systemId,
  };
}

/** The update revision, when our StatefulSet updates OnDelete and some member is not on it yet. */
function pendingUpdate(st: State): string | null {
  const target = st.sts?.status?.updateRevision;
  if (!target || st.sts?.spec?.updateStrategy?.type !== 'OnDelete') return null;
  const revisions = [...st.pods.values()].map((p) => p.metadata.labels?.['controller-revision-hash'] ?? null);
  return revisions.some((r) => r !== null && r !== target) ? target : null;
}

export async function observe(st: State): Promise<Observation> {
  const { cfg, pg, kube } = st;
  const s = await pg.status();
  st.lastPg = s;
  // A crashed postgres the supervisor is restarting counts as starting: nobody else starts it.
  const restarting = !pg.isRunning() && !s.running && pg.restarting();
  const running = pg.isRunning() || s.running || restarting;
  let dataDir: DataDirState = 'valid';
  let controlRole: ControlRole = 'unknown';
  let systemId = s.systemIdentifier;
  if (!running) {
    dataDir = await pg.dataDirState();
    if (dataDir === 'valid') {
      const cd = await readControlData(cfg.binDir, cfg.dataDir);
      controlRole = cd.role;
      systemId = cd.systemId;
    }
  }
  // Without a working watch, read the lease directly (bounded) so decisions never rest on a stale view.
  if (!st.leaseInformerOk) {
    // A failure counts only while the watch is still down: a re-list that completed while this
    // read was in flight holds the fresher view, and nothing would clear the flag until the lease changes.
    try { setLease(st, await kube.getLease(st.leaseName, 1_000)); } catch { if (!st.leaseInformerOk) st.leaseUnreadable = true; }
  }
  // The init lease matters only until the cluster is initialized: read it while it is not.
  if (!running && dataDir !== 'valid' && st.init?.metadata.annotations?.[A.initialized] !== 'true') {
    try { setInit(st, await kube.getLease(st.initName, 1_000)); } catch { st.init = undefined; }
  }
  const self = st.pods.get(cfg.podName);
  const lease = st.leaseUnreadable ? undefined : leaseView(st);
  return {
    nowMs: st.now(),
    self: cfg.podName,
    settings: { leaseMs: cfg.leaseMs, renewMs: cfg.renewMs, renewDeadlineMs: cfg.renewDeadlineMs, maxLagBytes: cfg.maxLagBytes, syncMode: cfg.syncMode, syncCount: cfg.syncCount, nofailover: cfg.nofailover, failsafe: cfg.failsafe },
    dataDir,
    controlRole,
    pg: restarting ? { ...(await pgView(st, s, running, systemId)), serverState: 'starting' } : await pgView(st, s, running, systemId),
    lease,
    ...(lease === undefined ? { lastKnownLease: leaseView(st) ?? null } : {}),
    init: initView(st),
    members: membersFromPods(st),
    terminating: st.terminating,
    reinitRequested: !!self?.metadata.annotations?.[REINIT_ANNOTATION],
    revision: self?.metadata.labels?.['controller-revision-hash'] ?? null,
    updateRevision: pendingUpdate(st),
    expectedMembers: st.sts?.spec?.replicas ?? null,
    backup: await backupView(st),
    pendingRestart: st.params.pending,
    ...(st.params.bounds ? { runningBounds: st.params.bounds.running, nextBounds: st.params.bounds.next } : {}),
    parametersDigest: appliedParametersDigest(st),
    restartRequestedBy: consumeRestartRequest(st),
    replicaSource: await replicaSource(st, !running && (dataDir === 'empty' || dataDir === 'missing')),
  };
}

/** A restart request (POST /restart) is decided on once, by the next observation. */
function consumeRestartRequest(st: State): string | null {
  const by = st.params.restartRequestedBy;
  st.params.restartRequestedBy = null;
  return by;
}

/** How often the repository's catalogue is read again while a member waits to clone. */
const REPO_READ_MS = 15_000;

/** replication.bootstrapFrom, and the repository's catalogue while a member with no data may restore from it. */
async function replicaSource(st: State, noData: boolean): Promise<ReplicaSourceView> {
  const from = st.cfg.replicaBootstrapFrom;
  const initialized = st.init?.metadata.annotations?.[A.initialized] === 'true';
  // after a failed restore the core clones with pg_basebackup: no need to read the repository again
  if (from !== 'backup' || !st.cfg.backup || !noData || !initialized || st.memory.restoreFailed !== null) return { from };
  const c = st.clone;
  if (!c.repo || st.now() - c.repo.at >= REPO_READ_MS) c.repo = { at: st.now(), view: await st.pg.backups.forClone() };
  return { from, repo: c.repo.view };
}

/** Backups as the primary decides them; a member that is not primary forgets its stanza check (a new term verifies it again). */
async function backupView(st: State): Promise<BackupView | null> {
  const b = st.cfg.backup;
  if (!b) return null;
  if (st.lastPg?.inRecovery !== false) { st.backup.stanzaReady = false; st.backup.archiver = null; }
  else if (st.now() - st.backup.archiverReadAt >= 5_000) {
    st.backup.archiverReadAt = st.now();
    try { st.backup.archiver = await st.pg.backups.archiver(); } catch { /* postgres busy: the next read */ }
  }
  return { config: b, wallNowMs: Date.now(), stanzaReady: st.backup.stanzaReady, busy: st.backup.job !== null, record: backupRecordOf(st) };
}

/** Fresh views of the other members from their HTTP API (a failover is judged on these, never on annotations). */
export async function probeMembers(st: State, o: Observation): Promise<Observation> {
  const fresh = await Promise.all(o.members.map(async (m) => {
    const s = await st.fetchStatus(m.apiUrl, 400);
    if (!s) return { ...m, fresh: true, healthy: false, inRecovery: null, lsn: null };
    return viewFromStatus({ ...s, name: m.name }, st.pods.get(m.name), true);
  }));
  return { ...o, members: fresh };
}
