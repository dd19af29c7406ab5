// The executor: performs one action the core decided, checks the precondition the action carries
// (never re-decides), and reports the outcome to the core's memory.
import { startScheduledBackup, startStanzaCreate } from './backup-jobs.js';
import type { Action, Observation } from '../core/types.js';
import { memberSlotName, syncStandbyNamesFor, type DynamicConf } from '../core/render.js';
import { KubeError } from './kube.js';
import { microTime, leaseAt, writeLease, LEASE_ANNOTATIONS as A } from './lease.js';
import { failsafeRound, releaseFailsafe } from './failsafe.js';
import { peerRequest } from './peers.js';
import { publish } from './publish.js';
import { ROLE_LABEL, REINIT_ANNOTATION, Stale, errMsg, record, setInit, type State } from './state.js';
import { handoff } from './handoff.js';

export { Stale };

export const dyn = (st: State, primary: { host: string; port: number } | null, sync: { names: string[]; count: number } = { names: [], count: 1 }): DynamicConf => ({
  primary,
  slotName: primary ? memberSlotName(st.cfg.podName) : null,
  syncStandbyNames: syncStandbyNamesFor(sync.count, sync.names),
  applicationName: st.cfg.podName,
});

export async function demote(st: State, why: string): Promise<void> {
  if (st.demoting) return;
  st.demoting = true;
  st.log.warn('demoting: stopping postgres immediately', { why });
  try { await st.pg.stop('immediate'); } catch (e) { st.log.error('stop failed', { error: errMsg(e) }); } finally { st.demoting = false; }
  st.lastPg = await st.pg.status().catch(() => null);
  st.following = null;
  st.sync = { names: [], count: 1 };
  record(st, { type: 'demoted' });
  releaseFailsafe(st);
  void publish(st, true);
  void st.kube.event('Pod', st.cfg.podName, 'Demoted', `${st.cfg.podName} stopped being primary: ${why}`, 'Warning');
}

/** `bootstrap`: the very first start of a new cluster (no lease exists yet, no other member has
 * data): its outcome is not recorded, so the watchdog's clock starts at the next observation,
 * from which the member has the renew deadline to take the lease (core: writableWithoutLease). */
async function startAs(st: State, as: 'primary' | 'replica', follow: { name: string; host: string; port: number } | null, sync = { names: [] as string[], count: 1 }, bootstrap = false) {
  await st.pg.writeConfig(dyn(st, as === 'replica' ? follow : null, as === 'primary' ? sync : undefined));
  st.following = as === 'replica' ? follow?.name ?? null : null;
  st.sync = as === 'primary' ? sync : { names: [], count: 1 };
  // Whom we follow, published before the start (which waits until postgres accepts connections):
  // the primary makes our slot from it, and a rewound member needs that slot to become consistent.
  if (as === 'replica') void publish(st, true);
  await st.pg.setStandby(as === 'replica');
  try {
    await st.pg.start();
  } catch (e) {
    if (!bootstrap) record(st, { type: 'start_failed', atMs: st.now() });
    throw e;
  }
  if (!bootstrap) record(st, { type: 'started', as });
}

/**
 * A restored member replays the source's WAL up to its target, then promotes (pgBackRest's
 * target-action). Then the recovery settings pgBackRest wrote into postgresql.auto.conf are reset:
 * on a later start as a replica they would fetch the SOURCE's archive.
 */
async function untilPromoted(st: State): Promise<void> {
  const t0 = Date.now();
  let logged = t0;
  for (;;) {
    const s = await st.pg.status();
    if (s.running && s.inRecovery === false) break;
    if (!st.pg.isRunning() && !st.pg.restarting()) throw new Error('postgres stopped while replaying the restored backup (see its log lines above)');
    if (Date.now() - logged >= 30_000) { logged = Date.now(); st.log.info('replaying the restored backup up to its target', { ms: Date.now() - t0, replayedLsn: s.replayedLsn }); }
    await new Promise((r) => setTimeout(r, 500));
  }
  const reset = ['restore_command', 'recovery_target', 'recovery_target_time', 'recovery_target_lsn', 'recovery_target_name', 'recovery_target_xid', 'recovery_target_action', 'recovery_target_inclusive', 'recovery_target_timeline'];
  for (const k of reset) await st.pg.query(`ALTER SYSTEM RESET ${k}`);
  await st.pg.reload();
  st.log.info('restored cluster promoted at its target', { ms: Date.now() - t0 });
}

/**
 * A replica restored from the repository catches up through pgBackRest's restore_command (in
 * postgresql.auto.conf). Once it streams, the setting goes: running members stream only (see
 * render.ts), so a later start never waits on the object store.
 */
async function forgetRestoreCommand(st: State): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 1_000));
    if (st.terminating || !st.pg.isRunning()) return;
    const s = await st.pg.status().catch(() => null);
    if (!s?.streaming || s.inRecovery !== true) continue;
    try {
      await st.pg.query('ALTER SYSTEM RESET restore_command');
      await st.pg.reload();
      st.log.info('restored replica streams from the primary: restore_command reset', { ms: Date.now() - t0 });
    } catch (e) {
      st.log.warn('could not reset restore_command after the replica restore', { error: errMsg(e) });
    }
    return;
  }
}

export async function perform(st: State, a: Action, o: Observation): Promise<void> {
  const { cfg, log, kube, pg } = st;
  switch (a.type) {
    case 'wipe':
      await pg.wipe();
      record(st, { type: 'wiped' });
      return;
    case 'acquire_init':
      try {
        if (st.init) {
          // take-over of an abandoned claim: conditional on the resourceVersion we saw
          setInit(st, await kube.updateLease({ ...st.init, spec: { ...st.init.spec, holderIdentity: cfg.podName, acquireTime: microTime() } }));
          log.warn('took over the init lease from a member that is gone', { previous: st.init.spec.holderIdentity });
        } else {
          setInit(st, await kube.createLease({ metadata: { name: st.initName }, spec: { holderIdentity: cfg.podName, leaseDurationSeconds: Math.ceil(cfg.leaseMs / 1000), acquireTime: microTime() } }));
          log.info('won the init lease: this member bootstraps the cluster');
        }
      } catch (e) {
        if (e instanceof KubeError && e.conflict) { setInit(st, await kube.getLease(st.initName)); return; }
        throw e;
      }
      return;
    case 'bootstrap': {
      if (cfg.restore) {
        await pg.restore(cfg.restore);
        await startAs(st, 'primary', null, undefined, true);
        await untilPromoted(st);
      } else {
        log.info('bootstrap: initdb');
        await pg.initdb();
        await startAs(st, 'primary', null, undefined, true);
      }
      await pg.bootstrapSql();
      const cur = st.init ?? (await kube.getLease(st.initName));
      if (!cur) throw new Error('init lease vanished during bootstrap');
      setInit(st, await kube.updateLease({ ...cur, metadata: { ...cur.metadata, annotations: { ...(cur.metadata.annotations ?? {}), [A.initialized]: 'true' } } }));
      log.info('bootstrap done');
      void kube.event('Lease', st.initName, 'Initialized', `${cfg.podName} initialized the cluster`);
      return;
    }
    case 'clone': {
      const c = { method: a.method, reason: a.why, startedAt: new Date(), ms: null as number | null, error: st.memory.restoreFailed };
      st.clone.last = c;
      const t0 = Date.now();
      if (a.method === 'restore') {
        try {
          await pg.restoreStandby();
        } catch (e) {
          // the next tick wipes the half-restored directory (marked incomplete) and clones with pg_basebackup
          record(st, { type: 'restore_failed', detail: errMsg(e) });
          c.error = st.memory.restoreFailed;
          log.error('restore from the backup repository failed: falling back to pg_basebackup', { error: errMsg(e), ms: Date.now() - t0 });
          void kube.event('Pod', cfg.podName, 'RestoreFailed', `${cfg.podName} could not restore from the backup repository (${st.memory.restoreFailed}); it clones with pg_basebackup`, 'Warning');
          return;
        }
      } else {
        log.info('cloning with pg_basebackup', { from: a.from.name, why: a.why });
        await pg.basebackup(a.from, (pct) => log.info('basebackup progress', { percent: pct }));
      }
      c.ms = Date.now() - t0;
      log.info('clone done', { method: a.method, ms: c.ms });
      await startAs(st, 'replica', a.from);
      if (a.method === 'restore') void forgetRestoreCommand(st);
      return;
    }
    case 'start':
      await startAs(st, a.as, a.follow);
      return;
    case 'follow':
      if (await pg.writeConfig(dyn(st, a.from))) await pg.reload();
      st.following = a.from?.name ?? null;
      return;
    case 'rewind': {
      if (pg.isRunning()) await pg.stop('fast');
      const r = await pg.rewind(a.from);
      record(st, { type: 'rewound', outcome: r.outcome });
      if (r.outcome !== 'done') {
        log.warn(r.outcome === 'unreachable' ? 'pg_rewind could not use its source (does not count toward a re-clone)' : 'pg_rewind failed against a live source', { from: a.from.name, detail: r.detail, failures: st.memory.rewindFailures });
        return;
      }
      await startAs(st, 'replica', a.from);
      void kube.event('Pod', cfg.podName, 'Rejoined', `${cfg.podName} rewound and follows ${a.from.name}`);
      return;
    }
    case 'reinit':
      if (pg.isRunning()) await pg.stop('immediate');
      await pg.wipe();
      record(st, { type: 'wiped' });
      if (st.pods.get(cfg.podName)?.metadata.annotations?.[REINIT_ANNOTATION]) await kube.patchPod(cfg.podName, { annotations: { [REINIT_ANNOTATION]: null } });
      return;
    case 'take_lease': {
      const base = leaseAt(st, a.ifResourceVersion);
      if (base === undefined) throw new Stale('take-over: the lease changed since the decision');
      // A promise given to the primary (failsafe) after this tick observed wins over the take-over.
      if (a.failover && st.memory.failsafePromise) throw new Stale('not taking the lease: we just confirmed the primary (failsafe)');
      const ann: Record<string, string | null> = { [A.switchoverTo]: null };
      if (a.failover) {
        ann[A.failovers] = String((Number(base?.metadata.annotations?.[A.failovers] ?? 0) || 0) + 1);
        ann[A.syncStandbys] = cfg.syncMode !== 'off' ? '' : null;
        ann[A.syncCount] = null;
      }
      st.takeoverInFlight = true;
      let ok = false;
      try { ok = await writeLease(st, base, { holder: cfg.podName, transition: true, annotations: ann }, a.ifResourceVersion, a.failover); } finally { st.takeoverInFlight = false; }
      if (!ok) throw new Stale('the take-over write did not succeed');
      log.info(a.failover ? 'took the lease (failover)' : 'took the lease', { previous: base?.spec.holderIdentity ?? null });
      if (a.failover) void kube.event('Lease', st.leaseName, 'Failover', `${cfg.podName} took the lease from ${base?.spec.holderIdentity ?? 'nobody'}`, 'Warning');
      return;
    }
    case 'renew_lease': {
      const base = st.lease && st.lease.metadata.resourceVersion === a.ifResourceVersion ? st.lease : null;
      if (!base) throw new Stale('renew: the lease changed since the decision');
      const ann: Record<string, string | null> = {};
      if (a.record) { ann[A.syncStandbys] = a.record.syncStandbys.join(','); ann[A.syncCount] = String(a.record.syncCount); }
      if (a.stamp?.timeline !== undefined) ann[A.timeline] = String(a.stamp.timeline);
      if (a.stamp?.systemId !== undefined) ann[A.systemId] = a.stamp.systemId;
      // Throws on failure: actions after a renew (start as primary, promote) must not run.
      if (!(await writeLease(st, base, { holder: cfg.podName, transition: false, annotations: ann }, a.ifResourceVersion))) {
        if (a.onFailure === 'failsafe') await failsafeRound(st);
        throw new Stale('lease renew failed');
      }
      return;
    }
    case 'release_lease': {
      const base = leaseAt(st, a.ifResourceVersion);
      if (!base) throw new Stale('release: the lease changed since the decision');
      log.warn('giving up the lease', { why: a.why });
      if (await writeLease(st, base, { holder: null, transition: true, annotations: { [A.switchoverTo]: null } }, a.ifResourceVersion)) {
        void kube.event('Lease', st.leaseName, 'Released', `${cfg.podName} gave up the lease: ${a.why}`, 'Warning');
      }
      return;
    }
    case 'clear_switchover': {
      const base = leaseAt(st, a.ifResourceVersion);
      if (base) await writeLease(st, base, { holder: base.spec.holderIdentity ?? cfg.podName, transition: false, annotations: { [A.switchoverTo]: null } }, a.ifResourceVersion);
      return;
    }
    case 'handoff':
      await handoff(st, a.to, a.ifResourceVersion, a.checkpointMs);
      return;
    case 'demote':
      await demote(st, a.why);
      return;
    case 'unlabel':
      for (const p of a.pods) {
        await kube.patchPod(p, { labels: { [ROLE_LABEL]: 'unknown' } }, 1_000);
        log.info('took the primary label off', { pod: p });
      }
      return;
    case 'promote': {
      const rv = st.lease?.metadata.resourceVersion;
      if (st.lease?.spec.holderIdentity !== cfg.podName || (rv !== a.leaseVersion && rv !== st.memory.lastWrittenRv)) throw new Stale('promote: the lease is no longer the one we confirmed');
      const t0 = st.now();
      const sync = a.sync ?? { names: [], count: 1 };
      if (a.sync && (await pg.writeConfig(dyn(st, null, a.sync)))) await pg.reload();
      await pg.promote();
      st.following = null;
      st.sync = sync;
      record(st, { type: 'promoted' });
      log.info('promoted', { ms: st.now() - t0 });
      // The label follows what postgres says now (writable): one PATCH, straight away. Publishing
      // from the status read before the promotion would label us a replica first and the primary
      // only a tick later, a second PATCH on the path of every client routed by the label.
      st.lastPg = await pg.status();
      await publish(st, true);
      void kube.event('Pod', cfg.podName, 'Promoted', `${cfg.podName} is the primary`);
      return;
    }
    case 'set_sync':
      if (await pg.writeConfig(dyn(st, null, { names: a.names, count: a.count }))) await pg.reload();
      st.sync = { names: a.names, count: a.count };
      record(st, { type: 'sync_applied', names: a.names, count: a.count });
      log.info('synchronous standbys set', { names: a.names, count: a.count });
      return;
    case 'manage_slots':
      await pg.ensureSlots(a.keep);
      await pg.dropSlotsExcept(a.keep);
      log.info('replication slots', { keep: a.keep });
      return;
    case 'probe_members':
      return;
    case 'evict_pod':
      log.info('rolling update: evicting a pod so its StatefulSet recreates it on the new revision', { pod: a.pod });
      void kube.event('Pod', a.pod, 'RollingUpdate', `${cfg.podName} restarts ${a.pod} on revision ${o.updateRevision}`);
      await kube.evictPod(a.pod, 2_000);
      return;
    case 'restart_member': {
      const r = await peerRequest(`${a.apiUrl}/restart`, {
        method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${cfg.secrets.apiToken}` },
        body: JSON.stringify({ from: cfg.podName }), timeoutMs: 2_000,
      });
      if (r.status < 200 || r.status >= 300) throw new Error(`${a.pod} refused the restart request (HTTP ${r.status}): ${r.text.slice(0, 200)}`);
      log.info('asked a replica to restart postgres for parameters pending a restart', { pod: a.pod });
      void kube.event('Pod', a.pod, 'RestartForParameters', `${cfg.podName} asked ${a.pod} to restart postgres for parameters pending a restart`);
      return;
    }
    case 'restart_postgres': {
      const t0 = st.now();
      log.info('restarting postgres for parameters pending a restart', { parameters: a.parameters, follow: a.follow?.name ?? null });
      void kube.event('Pod', cfg.podName, 'RestartForParameters', `${cfg.podName} restarts postgres for ${a.parameters.join(', ')}`);
      st.stopping = a.follow === null;
      try { await pg.stop('fast'); } finally { st.stopping = false; }
      if (a.follow === null) {
        // a lone primary: the next tick confirms the lease, starts read-only and promotes
        record(st, { type: 'demoted' });
        return;
      }
      await startAs(st, 'replica', a.follow);
      log.info('postgres restarted', { ms: st.now() - t0 });
      return;
    }
    case 'failsafe':
      await failsafeRound(st);
      return;
    case 'stanza_create':
      startStanzaCreate(st, st.wake);
      return;
    case 'run_backup':
      await startScheduledBackup(st, a, st.wake);
      return;
    case 'stop':
      if (pg.isRunning()) await pg.stop('fast');
      st.terminated = true;
      return;
  }
}
