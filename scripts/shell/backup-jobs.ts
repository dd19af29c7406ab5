// Runs the primary's backup duties the core decided (stanza_create, run_backup) in the background,
// so the loop keeps renewing while a backup takes hours; records each scheduled run on the lease
// (conditional writes) so that it runs once per scheduled time across failovers.
import { parseBackupRecord, recordRun, type BackupRecord } from '../core/backup.js';
import type { BackupType } from '../core/backup-config.js';
import { backupSource, type BackupSource } from '../core/backup-standby.js';
import type { Action } from '../core/types.js';
import { LEASE_ANNOTATIONS as A } from '../core/wire.js';
import { writeLease } from './lease.js';
import { errMsg, type State } from './state.js';

type RunBackup = Extract<Action, { type: 'run_backup' }>;

export const backupRecordOf = (st: State): BackupRecord => parseBackupRecord(st.lease?.metadata.annotations?.[A.backups]);

/** Create (or verify) the stanza in the background; the core asks again until it is ready. */
export function startStanzaCreate(st: State, wake: () => void): void {
  const b = st.backup;
  if (b.job) return;
  b.job = { kind: 'stanza', type: null, startedAt: new Date() };
  void st.pg.backups.stanzaCreate()
    .then(() => { b.stanzaReady = true; })
    .catch((e) => { b.lastError = { at: new Date(), message: errMsg(e) }; st.log.warn('pgBackRest stanza-create failed; retrying next loop', { error: errMsg(e) }); })
    .finally(() => { b.job = null; wake(); });
}

/** Write the record: the lease as we see it now (our own write may have moved it), retried on conflicts. */
async function writeRecord(st: State, change: (r: BackupRecord) => BackupRecord, ifResourceVersion?: string): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const base = st.lease;
    if (!base) return false;
    if (ifResourceVersion !== undefined && attempt === 0 && base.metadata.resourceVersion !== ifResourceVersion && base.metadata.resourceVersion !== st.memory.lastWrittenRv) return false;
    const next = change(backupRecordOf(st));
    const holder = base.spec.holderIdentity ?? null;
    if (await writeLease(st, base, { holder, transition: false, annotations: { [A.backups]: JSON.stringify(next) } }, base.metadata.resourceVersion ?? '')) return true;
    if (ifResourceVersion !== undefined) return false; // the claim is only valid on the version the decision saw
    await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
  }
  return false;
}

/** Claim the scheduled run on the lease, then run it in the background and record how it ended. */
export async function startScheduledBackup(st: State, a: RunBackup, wake: () => void): Promise<void> {
  const b = st.backup, cfg = st.cfg;
  if (b.job || !cfg.backup) return;
  const claimed = await writeRecord(st, (r) => recordRun(r, cfg.backup!, a.backupType, a.at, cfg.podName, 'running', Date.now()), a.ifResourceVersion);
  if (!claimed) { st.log.info('backup not started: the lease changed since the decision', { type: a.backupType }); return; }
  st.log.info('scheduled backup starting', { type: a.backupType, scheduledAt: new Date(a.at).toISOString(), source: a.source.standby?.name ?? 'primary', why: a.source.reason });
  runJob(st, a.backupType, a.source, wake, async (ok) => {
    await writeRecord(st, (r) => recordRun(r, cfg.backup!, a.backupType, a.at, cfg.podName, ok ? 'done' : 'failed', Date.now()));
  });
}

/** An on-demand backup (POST /backup, `autopilot backup`): not part of any schedule. */
export function startOnDemandBackup(st: State, type: BackupType, wake: () => void): { status: number; message: string } {
  if (!st.cfg.backup) return { status: 409, message: 'backups are off on this member (backup.enabled in the chart)' };
  if (st.lastPg?.inRecovery !== false || st.lease?.spec.holderIdentity !== st.cfg.podName) return { status: 409, message: `${st.cfg.podName} is not the primary: ask the primary (autopilot status names it)` };
  if (!st.backup.stanzaReady) {
    const last = st.backup.lastError;
    return { status: 409, message: last
      ? `the pgBackRest stanza is not created yet: the last attempt (${last.at.toISOString()}) failed: ${last.message}. Fix the repository settings or credentials (backup.s3.*, its Secret or Vault file); the member retries on its own`
      : 'the pgBackRest stanza is not created yet; try again in a few seconds' };
  }
  if (st.backup.job) return { status: 409, message: `a ${st.backup.job.kind} job is already running since ${st.backup.job.startedAt.toISOString()}` };
  // the core picks the source, from the last tick's observation (the scheduled path asks it in decide)
  const o = st.lastObservation;
  const source: BackupSource = o ? backupSource(st.cfg.backup, o.pg, o.members) : { standby: null, reason: 'backing up from the primary: no observation of the replicas yet' };
  st.log.info('on-demand backup starting', { type, source: source.standby?.name ?? 'primary', why: source.reason });
  runJob(st, type, source, wake, async () => undefined);
  return { status: 202, message: `${type} backup started on ${st.cfg.podName}, ${source.reason}` };
}

function runJob(st: State, type: BackupType, source: BackupSource, wake: () => void, done: (ok: boolean) => Promise<void>): void {
  const b = st.backup;
  b.job = { kind: 'backup', type, startedAt: new Date() };
  b.lastSource = { at: new Date(), standby: source.standby?.name ?? null, reason: source.reason };
  // backup.fromStandby with no replica to read from: the primary does the work, and says so
  if (st.cfg.backup?.fromStandby && !source.standby) {
    st.log.warn('backup from the primary instead of a standby', { type, why: source.reason });
    void st.kube.event('Pod', st.cfg.podName, 'BackupFromPrimary', `${type} backup ${source.reason}`.slice(0, 1000), 'Warning');
  }
  const from = source.standby ? ` from standby ${source.standby.name}` : '';
  void st.pg.backups.backup(type, source.standby)
    .then(async ({ ms }) => {
      b.lastSuccess[type] = { at: new Date(), ms };
      st.log.info('backup done', { type, ms, source: source.standby?.name ?? 'primary' });
      void st.kube.event('Pod', st.cfg.podName, 'BackupDone', `${type} backup${from} done in ${(ms / 1000).toFixed(1)} s`);
      await done(true);
    })
    .catch(async (e) => {
      b.lastError = { at: new Date(), message: errMsg(e) };
      st.log.error('backup failed', { type, error: errMsg(e) });
      void st.kube.event('Pod', st.cfg.podName, 'BackupFailed', `${type} backup failed: ${errMsg(e).slice(0, 300)}`, 'Warning');
      await done(false);
    })
    .finally(() => { b.job = null; wake(); });
}
