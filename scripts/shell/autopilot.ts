// The autopilot's loop: observe (observe.ts) → decide (core/decide.ts, pure) → act (act.ts). One
// tick at a time; a tick runs every loop interval and at once when the Lease or a member pod
// changes. A watchdog timer (state.ts, rule in core/safety.ts), independent of the tick, stops a
// postgres that may be writable once its hold on the lease can no longer be proven.
import { decide } from '../core/decide.js';
import type { BackupType } from '../core/backup-config.js';
import { startOnDemandBackup } from './backup-jobs.js';
import { nextTickInMs } from '../core/cadence.js';
import { updateKnownMembers } from '../core/memory.js';
import type { Decision } from '../core/types.js';
import { LEASE_ANNOTATIONS as A } from '../core/wire.js';
import { fetchMemberStatus } from './peers.js';
import type { Config } from '../core/config.js';
import type { Logger } from './log.js';
import type { Postgres } from './postgres.js';
import { KubeError, type Kube, type Lease } from './kube.js';
import { observe, probeMembers, membersFromPods } from './observe.js';
import { perform, demote, Stale } from './act.js';
import { publish, snapshot, metrics, myRole, myStatus, type StatusSnapshot } from './publish.js';
import { answer } from './failsafe.js';
import { createRolesSync } from './roles.js';
import { createCitusSync } from './citus-loop.js';
import { checkParameters } from './live-parameters.js';
import { armWatchdog, createState, errMsg, setLease, type FetchStatus } from './state.js';

export { ROLE_LABEL, STATUS_ANNOTATION, REINIT_ANNOTATION } from './state.js';
export { microTime } from './lease.js';
export type { MemberStatus } from '../core/wire.js';
export type { StatusSnapshot } from './publish.js';

export interface Autopilot {
  start(): void;
  /** SIGTERM: hand the lease over if we are primary, stop postgres, resolve when done. */
  terminate(): Promise<void>;
  /** the last observation and decision */
  snapshot(): StatusSnapshot;
  /** the snapshot with postgres' WAL positions at most 50 ms old (peers judging a failover or a
   * hand-off need them fresh): read through the autopilot's own connection, one read at a time
   * however many clients ask */
  statusNow(): Promise<StatusSnapshot>;
  alive(): boolean;
  ready(): boolean;
  isPrimary(): boolean;
  isReplica(): boolean;
  metrics(): string;
  requestSwitchover(to: string | null): Promise<{ status: number; message: string }>;
  setPaused(paused: boolean): Promise<{ status: number; message: string }>;
  /** resolves with the decision of the next completed tick (tests, CLI) */
  nextTick(): Promise<Decision>;
  /** failsafe: a primary that cannot reach the API asks us not to take over */
  failsafeAck(leader: string, release?: boolean): { status: number; message: string };
  /** an on-demand backup on this member (the primary) */
  requestBackup(type: BackupType): { status: number; message: string };
  /** the repository's catalogue (pgbackrest info) */
  backups(): Promise<{ status: number; body: unknown }>;
  /** the primary (`from`) asks us to restart postgres for parameters pending a restart; the next tick decides (core/restart.ts) */
  requestRestart(from: string): { status: number; message: string };
  /** Citus: start the shard rebalance (start) or read its state; the coordinator group's primary only */
  citusRebalance(start: boolean, mode?: import('../core/citus.js').ShardTransferMode | null): Promise<{ status: number; body: unknown }>;
}

export interface AutopilotOptions {
  clock?: () => number;
  fetchStatus?: FetchStatus;
  /** a client of the same API server for another namespace (Citus: worker groups elsewhere) */
  kubeFor?: (namespace: string) => Kube;
}

const monotonic = () => Number(process.hrtime.bigint() / 1_000_000n);

export function createAutopilot(cfg: Config, log: Logger, kube: Kube, pg: Postgres, opts: AutopilotOptions = {}): Autopilot {
  const st = createState(cfg, log, kube, pg, opts.clock ?? monotonic, opts.fetchStatus ?? fetchMemberStatus);
  let timer: NodeJS.Timeout | null = null;
  let ticking = false;
  let again = false;
  let stsInformed = false;
  let statusRead: Promise<void> | null = null;
  let statusReadAt = -Infinity;
  const waiters: ((d: Decision) => void)[] = [];
  const roles = createRolesSync(cfg, log, kube);
  const stops: (() => void)[] = [];
  const co = cfg.citus?.role === 'worker' ? cfg.citus.coordinator : null;
  if (co) st.citusCoordinatorKube = co.namespace === kube.namespace ? kube : (opts.kubeFor ?? (() => kube))(co.namespace);
  const citus = cfg.citus ? createCitusSync(cfg, cfg.citus, log, kube, opts.kubeFor ?? (() => kube), st.now) : null;
  const withCitus = (s: StatusSnapshot): StatusSnapshot => (citus ? { ...s, citus: citus.status() } : s);

  st.wake = () => wake();
  st.onWatchdog = (reason) => {
    log.warn('watchdog: stopping postgres now', { reason });
    void demote(st, reason);
  };

  function ensureStatefulSetInformer() {
    if (stsInformed) return;
    const owner = st.pods.get(cfg.podName)?.metadata.ownerReferences?.find((r) => r.kind === 'StatefulSet');
    if (!owner) return;
    stsInformed = true;
    stops.push(kube.informStatefulSet(owner.name, (s) => { st.sts = s; wake(); }));
  }

  async function tick(): Promise<void> {
    if (ticking) { again = true; return; }
    ticking = true;
    try {
      do {
        again = false;
        await checkParameters(st);
        let o = await observe(st);
        let d = decide(o, st.memory);
        if (d.actions.some((a) => a.type === 'probe_members')) {
          st.memory = d.memory;
          o = await probeMembers(st, o);
          d = decide(o, st.memory);
        }
        st.lastObservation = o;
        st.memory = d.memory;
        armWatchdog(st);
        if (d.reason !== st.lastDecision.reason || d.actions.length) {
          const routine = d.actions.every((a) => a.type === 'renew_lease' && !a.record && !a.stamp);
          log[d.reason !== st.lastDecision.reason || !routine ? 'info' : 'debug']('decision', { reason: d.reason, actions: d.actions.map((a) => a.type) });
        }
        st.lastDecision = d;
        st.lastDecisionAt = new Date();
        for (const a of d.actions) {
          try {
            await perform(st, a, o);
          } catch (e) {
            if (e instanceof Stale) log.info(`action ${a.type} skipped`, { why: e.message });
            else log.error(`action ${a.type} failed`, { error: errMsg(e) });
            break; // never run later actions (e.g. promote) after an earlier one (e.g. renew) failed
          }
        }
        if (d.actions.length) st.lastPg = await pg.status();
        // declared users/databases: on the primary only, never awaited here (own connection)
        const writable = !st.terminating && !st.terminated && myRole(st) === 'primary' && st.lastPg?.inRecovery === false;
        roles.afterTick(writable, st.now());
        // Citus: this node's extension, and on the coordinator the registry; in the background too
        citus?.afterTick(writable, st.now());
        // Not awaited: a slow API server must not delay the next tick (and its renewal).
        if (!st.terminated) void publish(st);
        st.lastTickAt = st.now();
        for (const w of waiters.splice(0)) w(d);
      } while (again && !st.terminated);
    } catch (e) {
      log.error('tick failed', { error: errMsg(e) });
    } finally {
      ticking = false;
      schedule();
    }
  }

  /** The next tick, counted from the end of this one (timer or wake): when the core says it is due. */
  function schedule() {
    if (timer) clearTimeout(timer);
    if (st.terminated) return;
    timer = setTimeout(() => void tick(), nextTickInMs(st.memory, cfg, cfg.loopMs, st.now()));
  }
  const wake = () => { if (!st.terminated) void tick(); };

  /** Change the lease's annotations on behalf of an operator (switchover, pause), retrying lost races. */
  type Change = { set: Record<string, string | null> } | { refuse: { status: number; message: string } };
  async function annotate(change: (l: Lease) => Change, done: string): Promise<{ status: number; message: string }> {
    for (let attempt = 0; attempt < 4; attempt++) {
      const l = attempt === 0 && st.lease ? st.lease : await kube.getLease(st.leaseName).catch(() => undefined);
      if (!l) return { status: 409, message: 'no leader lease yet' };
      const c = change(l);
      if ('refuse' in c) return c.refuse;
      const ann = { ...(l.metadata.annotations ?? {}) };
      for (const [k, v] of Object.entries(c.set)) { if (v === null) delete ann[k]; else ann[k] = v; }
      try {
        setLease(st, await kube.updateLease({ ...l, metadata: { ...l.metadata, annotations: ann } }, 2_000));
        wake();
        return { status: attempt === 0 && done.startsWith('switchover') ? 202 : 200, message: done };
      } catch (e) {
        if (!(e instanceof KubeError && e.conflict)) return { status: 503, message: `could not write the lease: ${errMsg(e)}` };
      }
    }
    return { status: 409, message: 'the lease kept changing; try again' };
  }

  return {
    start() {
      stops.push(kube.informLease(st.leaseName, (l) => { const prev = st.leaseKey; setLease(st, l); if (st.leaseKey !== prev) wake(); }, (ok) => { st.leaseInformerOk = ok; }));
      stops.push(kube.informPods(cfg.memberSelector, (p) => {
        st.pods = p;
        // Only lists the API server just gave us: while cut off from it, nothing is forgotten.
        st.knownMembers = updateKnownMembers(st.knownMembers, [...p.keys()], cfg.podName, st.now(), 2 * cfg.leaseMs);
        for (const m of membersFromPods(st)) if (m.apiUrl) st.memberUrls.set(m.name, m.apiUrl);
        ensureStatefulSetInformer();
        wake();
      }));
      if (citus) stops.push(citus.start());
      pg.onExit((code, signal) => {
        log.warn('postgres exited', { code, signal });
        wake();
      });
      // backup.fromStandby: every member serves its data directory to the primary's backups
      const srv = pg.backups?.server;
      if (srv) {
        srv.onChange(() => { if (!st.terminated) void publish(st); });
        void pg.backups.prepare().then(() => srv.start(), (e) => log.error('pgBackRest configuration could not be written: its server does not start', { error: errMsg(e) }));
      }
      void tick();
    },
    async terminate() {
      st.terminating = true;
      const deadline = st.now() + 30_000;
      while (!st.terminated && st.now() < deadline) {
        await tick();
        if (!st.terminated) await new Promise((r) => setTimeout(r, 100));
      }
      if (pg.isRunning()) await pg.stop('fast');
      await pg.backups?.server?.stop();
      st.terminated = true;
      if (timer) clearTimeout(timer);
      if (st.watchdogTimer) clearTimeout(st.watchdogTimer);
      for (const s of stops) s();
      await publish(st, true);
    },
    snapshot: () => withCitus(snapshot(st)),
    requestBackup: (type) => startOnDemandBackup(st, type, wake),
    citusRebalance: async (start, mode) => citus ? citus.rebalance(start, mode) : { status: 409, body: { error: 'Citus is off on this member (no citus.json)' } },
    backups: async () => {
      if (!cfg.backup) return { status: 409, body: { error: 'backups are off on this member (backup.enabled in the chart)' } };
      try { return { status: 200, body: await pg.backups.info() }; } catch (e) { return { status: 503, body: { error: `pgbackrest info failed: ${errMsg(e)}` } }; }
    },
    async statusNow() {
      if (st.now() - statusReadAt > 50) {
        statusRead ??= pg.status().then((s) => { st.lastPg = s; statusReadAt = st.now(); }, () => undefined).finally(() => { statusRead = null; });
        await statusRead;
      }
      return withCitus(snapshot(st));
    },
    alive: () => st.now() - st.lastTickAt < 3 * cfg.loopMs + cfg.leaseMs || ticking,
    ready() {
      const s = st.lastPg;
      if (!s?.accepting) return false;
      if (s.inRecovery === false) return myRole(st) === 'primary';
      const me = myStatus(st);
      return s.inRecovery === true && (me.lagBytes === null || me.lagBytes <= cfg.maxLagBytes);
    },
    isPrimary: () => myRole(st) === 'primary',
    isReplica: () => myRole(st) === 'replica' && !!st.lastPg?.streaming,
    metrics: () => (citus ? metrics(st) + citus.metrics().join('\n') + '\n' : metrics(st)),
    async requestSwitchover(to) {
      if (to !== null && !st.pods.has(to)) return { status: 400, message: `unknown member "${to}"; members: ${[...st.pods.keys()].join(', ')}` };
      if (to !== null && to !== cfg.podName) {
        const m = membersFromPods(st).find((x) => x.name === to);
        if (!m || m.role !== 'replica' || !m.healthy) return { status: 409, message: `${to} is not a healthy replica (role ${m?.role ?? 'unknown'}); pick one that is, or omit "to"` };
      }
      let from = '';
      return annotate((l) => {
        if (!l.spec.holderIdentity) return { refuse: { status: 409, message: 'no primary holds the lease: nothing to switch over' } };
        if (to === l.spec.holderIdentity) return { refuse: { status: 409, message: `${to} is already the primary` } };
        from = l.spec.holderIdentity;
        return { set: { [A.switchoverTo]: to ?? '*' } };
      }, `switchover to ${to ?? 'the best replica'} requested`).then((r) => (r.status === 202 || r.status === 200 ? { status: 202, message: `switchover from ${from} to ${to ?? 'the best replica'} requested` } : r));
    },
    setPaused(paused) {
      return annotate(() => ({ set: { [A.paused]: paused ? 'true' : null } }),
        paused ? 'paused: no failover, switchover, rolling update, rewind or re-clone until resume (a primary that loses its lease still stops)' : 'resumed');
    },
    nextTick: () => new Promise<Decision>((r) => waiters.push(r)),
    requestRestart(from) {
      st.params.restartRequestedBy = from;
      wake();
      return { status: 202, message: st.params.pending.length ? `restart for ${st.params.pending.join(', ')} requested` : 'no parameter pending a restart here: nothing to do' };
    },
    failsafeAck(leader, release = false) {
      const r = answer(st, leader, release);
      if (release) wake();
      return r;
    },
  };
}
