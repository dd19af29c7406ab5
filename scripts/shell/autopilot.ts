// The autopilot's shell: observes postgres, the Lease and the member pods, asks the pure core
// (core/decide.ts) what to do, and does it. One tick at a time; a tick runs every loop interval
// and at once when the Lease or a member pod changes. A watchdog timer, independent of the tick,
// stops a primary whose lease renewals stopped succeeding before the renew deadline passes.
import { decide } from '../core/decide.js';
import type { Action, Decision, LeaseView, MemberView, Observation, PgView, Role, InitView, ControlRole, DataDirState } from '../core/types.js';
import type { Config } from '../core/config.js';
import { memberSlotName, type DynamicConf } from '../core/render.js';
import { parseLsn, formatLsn } from '../core/lsn.js';
import type { Logger } from './log.js';
import type { Postgres, PgStatus } from './postgres.js';
import { KubeError, type Kube, type Lease, type Pod, type StatefulSet } from './kube.js';
import { readControlData } from './controldata.js';

export const ROLE_LABEL = 'pg-autopilot.io/role';
/** How often a member republishes its annotation when only its WAL position moved. */
const LSN_PUBLISH_MS = 120_000;
export const STATUS_ANNOTATION = 'pg-autopilot.io/status';
export const REINIT_ANNOTATION = 'pg-autopilot.io/reinit';
const A = {
  switchoverTo: 'pg-autopilot.io/switchover-to',
  paused: 'pg-autopilot.io/paused',
  failovers: 'pg-autopilot.io/failovers',
  timeline: 'pg-autopilot.io/timeline',
  syncStandbys: 'pg-autopilot.io/sync-standbys',
  syncCount: 'pg-autopilot.io/sync-count',
  initialized: 'pg-autopilot.io/initialized',
};

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
  updatedAt: string;
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
}

export interface Autopilot {
  start(): void;
  /** SIGTERM: hand the lease over if we are primary, stop postgres, resolve when done. */
  terminate(): Promise<void>;
  snapshot(): StatusSnapshot;
  /** snapshot with postgres' WAL positions read now (peers judging a failover or hand-off need them fresh) */
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
  /** failsafe: a primary that cannot reach the API asks us not to take over; true = promised */
  failsafeAck(leader: string, release?: boolean): { status: number; message: string };
}

export interface AutopilotOptions {
  clock?: () => number;
  fetchStatus?: (apiUrl: string, timeoutMs: number) => Promise<MemberStatus | null>;
}

/** Lease times are MicroTime: RFC 3339 with exactly six fractional digits. */
export const microTime = (d = new Date()) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

const monotonic = () => Number(process.hrtime.bigint() / 1_000_000n);

async function defaultFetchStatus(apiUrl: string, timeoutMs: number): Promise<MemberStatus | null> {
  try {
    const r = await fetch(`${apiUrl}/status`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!r.ok) return null;
    const body = (await r.json()) as StatusSnapshot;
    return body.member ?? null;
  } catch {
    return null;
  }
}

/** The kubelet's Ready condition; null when no kubelet reports on the pod (no conditions at all). */
function podReady(pod: Pod | undefined): boolean | null {
  const c = pod?.status?.conditions?.find((x) => x.type === 'Ready');
  return c ? c.status === 'True' : null;
}

const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function createAutopilot(cfg: Config, log: Logger, kube: Kube, pg: Postgres, opts: AutopilotOptions = {}): Autopilot {
  const now = opts.clock ?? monotonic;
  const fetchStatus = opts.fetchStatus ?? defaultFetchStatus;
  const leaseName = `${cfg.clusterName}-leader`;
  const initName = `${cfg.clusterName}-init`;
  const apiUrl = `http://${cfg.podIp.includes(':') ? `[${cfg.podIp}]` : cfg.podIp}:${cfg.apiPort}`;

  // ---- memory (everything the shell remembers between ticks) ----
  let lease: Lease | null | undefined = undefined;
  let leaseKey = '';
  let leaseChangedAt = now();
  let leaseInformerOk = false;
  /** the last direct read failed: decide() sees the lease as unknown; `lease` keeps what we last knew */
  let leaseUnreadable = false;
  let init: Lease | null | undefined = undefined;
  let initKey = '';
  let initChangedAt = now();
  let pods = new Map<string, Pod>();
  /** our StatefulSet (from our pod's owner), informed once known: its update revision drives the rolling update */
  let sts: StatefulSet | null = null;
  let stsInformed = false;
  let lastRenewOkSentAt: number | null = null;
  /** failsafe: send time of the last round in which every member confirmed us */
  let lastFailsafeOkSentAt: number | null = null;
  /** failsafe: when we promised a primary not to take over */
  let failsafeAckedAt: number | null = null;
  /** a take-over write is in flight: no failsafe promise may be given meanwhile */
  let takingLease = false;
  /** Our hold on the primary role dates from the later of a successful renew and a failsafe round. */
  const confirmedAt = (): number | null =>
    lastRenewOkSentAt === null ? lastFailsafeOkSentAt : lastFailsafeOkSentAt === null ? lastRenewOkSentAt : Math.max(lastRenewOkSentAt, lastFailsafeOkSentAt);
  let primaryWithoutLeaseSince: number | null = null;
  let notStreamingSince: number | null = null;
  let rewindFailures = 0;
  let following: string | null = null;
  let currentSyncNames: string[] = [];
  let terminating = false;
  let terminated = false;
  let lastTickAt = now();
  let lastDecision: Decision = { actions: [], reason: 'starting' };
  let lastDecisionAt = new Date();
  let lastPg: PgStatus | null = null;
  let lastPublished = '';
  let lastPublishedAt = 0;
  let lastLabel: Role | null = null;
  let lastSlotsAt = 0;
  let lastSlotMembers = '';
  let watchdog: NodeJS.Timeout | null = null;
  let timer: NodeJS.Timeout | null = null;
  let ticking = false;
  let again = false;
  const waiters: ((d: Decision) => void)[] = [];
  const stops: (() => void)[] = [];

  const setLease = (l: Lease | null) => {
    leaseUnreadable = false;
    const key = l ? `${l.spec.holderIdentity ?? ''}|${l.spec.renewTime ?? ''}|${l.metadata.resourceVersion ?? ''}` : 'none';
    if (key !== leaseKey) { leaseKey = key; leaseChangedAt = now(); }
    lease = l;
  };
  const setInit = (l: Lease | null) => {
    const key = l ? `${l.spec.holderIdentity ?? ''}|${l.metadata.annotations?.[A.initialized] ?? ''}|${l.metadata.resourceVersion ?? ''}` : 'none';
    if (key !== initKey) { initKey = key; initChangedAt = now(); }
    init = l;
  };

  // ---- observation ----
  function leaseView(): LeaseView | null | undefined {
    if (lease === undefined || leaseUnreadable) return undefined;
    if (lease === null) return null;
    const an = lease.metadata.annotations ?? {};
    return {
      holder: lease.spec.holderIdentity || null,
      resourceVersion: lease.metadata.resourceVersion ?? '',
      unchangedForMs: now() - leaseChangedAt,
      switchoverTo: an[A.switchoverTo] || null,
      paused: an[A.paused] === 'true',
      failovers: Number(an[A.failovers] ?? 0) || 0,
      timeline: an[A.timeline] ? Number(an[A.timeline]) : null,
      syncStandbys: an[A.syncStandbys] !== undefined ? (an[A.syncStandbys] ?? '').split(',').filter(Boolean) : null,
      syncCount: Number(an[A.syncCount] ?? cfg.syncCount) || 1,
    };
  }

  function initView(): InitView | null | undefined {
    if (init === undefined) return undefined;
    if (init === null) return null;
    return { holder: init.spec.holderIdentity || null, initialized: init.metadata.annotations?.[A.initialized] === 'true', unchangedForMs: now() - initChangedAt };
  }

  function viewFromStatus(s: MemberStatus, pod: Pod | undefined, fresh: boolean): MemberView {
    return {
      name: s.name,
      host: s.host,
      port: s.port,
      apiUrl: s.apiUrl,
      role: s.role,
      healthy: s.healthy,
      inRecovery: s.inRecovery,
      streaming: s.streaming,
      timeline: s.timeline,
      lsn: s.lsn ? parseLsn(s.lsn) : null,
      nofailover: s.nofailover,
      fresh,
      labelledPrimary: pod?.metadata.labels?.[ROLE_LABEL] === 'primary',
      reinitRequested: !!pod?.metadata.annotations?.[REINIT_ANNOTATION],
      revision: pod?.metadata.labels?.['controller-revision-hash'] ?? null,
      ready: podReady(pod),
    };
  }

  function membersFromPods(): MemberView[] {
    const out: MemberView[] = [];
    for (const [name, pod] of pods) {
      if (name === cfg.podName) continue;
      const raw = pod.metadata.annotations?.[STATUS_ANNOTATION];
      let s: MemberStatus | null = null;
      if (raw) { try { s = JSON.parse(raw) as MemberStatus; } catch { s = null; } }
      const host = s?.host ?? pod.status?.podIP ?? '';
      const base: MemberStatus = s ?? {
        name, role: 'unknown', host, port: cfg.pgPort, apiUrl: `http://${host}:${cfg.apiPort}`, timeline: null, lsn: null,
        receivedLsn: null, replayedLsn: null, lagBytes: null, healthy: false, inRecovery: null, streaming: false,
        nofailover: false, syncStandby: false, updatedAt: '',
      };
      const view = viewFromStatus({ ...base, name }, pod, false);
      // A pod being deleted is on its way out, whatever its last annotation said.
      out.push(pod.metadata.deletionTimestamp ? { ...view, healthy: false } : view);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  function pgView(st: PgStatus | null): PgView {
    const lsnStr = st ? (st.inRecovery ? st.receivedLsn ?? st.replayedLsn : st.currentLsn) : null;
    return {
      running: !!st?.running,
      accepting: !!st?.accepting,
      inRecovery: st?.inRecovery ?? null,
      timeline: st?.timeline ?? null,
      lsn: lsnStr ? parseLsn(lsnStr) : null,
      streaming: !!st?.streaming,
      following,
      notStreamingForMs: notStreamingSince === null ? 0 : now() - notStreamingSince,
      syncNames: currentSyncNames,
      streamingReplicas: (st?.replicas ?? []).filter((r) => r.state === 'streaming').map((r) => r.applicationName),
    };
  }

  async function observe(): Promise<Observation> {
    const st = await pg.status();
    lastPg = st;
    const running = pg.isRunning() || st.running;
    let dataDir: DataDirState = 'valid';
    let controlRole: ControlRole = 'unknown';
    if (!running) {
      dataDir = await pg.dataDirState();
      if (dataDir === 'valid') controlRole = (await readControlData(cfg.binDir, cfg.dataDir)).role;
    }
    if (st.running && st.inRecovery && !st.streaming) { notStreamingSince ??= now(); } else notStreamingSince = null;
    if (st.running && st.inRecovery === false && lease?.spec.holderIdentity !== cfg.podName) primaryWithoutLeaseSince ??= now();
    else primaryWithoutLeaseSince = null;
    // Without a working watch, read the lease directly (bounded) so decisions never rest on a stale view.
    if (!leaseInformerOk) {
      try { setLease(await kube.getLease(leaseName, 1_000)); leaseUnreadable = false; } catch { leaseUnreadable = true; }
    }
    // The init lease matters only until the cluster is initialized: read it while it is not.
    if (!running && dataDir !== 'valid' && init?.metadata.annotations?.[A.initialized] !== 'true') {
      try { setInit(await kube.getLease(initName, 1_000)); } catch { init = undefined; }
    }
    return {
      nowMs: now(),
      self: cfg.podName,
      settings: { leaseMs: cfg.leaseMs, renewMs: cfg.renewMs, renewDeadlineMs: cfg.renewDeadlineMs, maxLagBytes: cfg.maxLagBytes, syncMode: cfg.syncMode, syncCount: cfg.syncCount, nofailover: cfg.nofailover, failsafe: cfg.failsafe },
      dataDir,
      controlRole,
      pg: { ...pgView(st), running },
      lease: leaseView(),
      init: initView(),
      members: membersFromPods(),
      renewedAgoMs: confirmedAt() === null ? null : now() - confirmedAt()!,
      failsafeAckAgoMs: failsafeAckedAt === null ? null : now() - failsafeAckedAt,
      primaryWithoutLeaseMs: primaryWithoutLeaseSince === null ? 0 : now() - primaryWithoutLeaseSince,
      rewindFailures,
      terminating,
      reinitRequested: !!pods.get(cfg.podName)?.metadata.annotations?.[REINIT_ANNOTATION],
      revision: pods.get(cfg.podName)?.metadata.labels?.['controller-revision-hash'] ?? null,
      updateRevision: pendingUpdate(),
    };
  }

  /** The update revision, when our StatefulSet updates OnDelete and some member is not on it yet. */
  function pendingUpdate(): string | null {
    const target = sts?.status?.updateRevision;
    if (!target || sts?.spec?.updateStrategy?.type !== 'OnDelete') return null;
    const revisions = [...pods.values()].map((p) => p.metadata.labels?.['controller-revision-hash'] ?? null);
    return revisions.some((r) => r !== null && r !== target) ? target : null;
  }

  function ensureStatefulSetInformer() {
    if (stsInformed) return;
    const owner = pods.get(cfg.podName)?.metadata.ownerReferences?.find((r) => r.kind === 'StatefulSet');
    if (!owner) return;
    stsInformed = true;
    stops.push(kube.informStatefulSet(owner.name, (s) => { sts = s; wake(); }));
  }

  async function probeMembers(o: Observation): Promise<Observation> {
    const fresh = await Promise.all(o.members.map(async (m) => {
      const s = await fetchStatus(m.apiUrl, 400);
      if (!s) return { ...m, fresh: false, healthy: false };
      return viewFromStatus({ ...s, name: m.name }, pods.get(m.name), true);
    }));
    // Unreachable members stay, marked not fresh and unhealthy: the core ignores them.
    return { ...o, members: fresh.map((m) => (m.fresh ? m : { ...m, fresh: true, healthy: false, inRecovery: null, lsn: null })) };
  }

  // ---- the lease ----
  function leaseBody(base: Lease | null, changes: { holder: string; transition: boolean; annotations?: Record<string, string | null> }): Lease {
    const t = microTime();
    const annotations: Record<string, string> = { ...(base?.metadata.annotations ?? {}) };
    for (const [k, v] of Object.entries(changes.annotations ?? {})) { if (v === null) delete annotations[k]; else annotations[k] = v; }
    return {
      metadata: { name: leaseName, resourceVersion: base?.metadata.resourceVersion, annotations, labels: base?.metadata.labels },
      spec: {
        holderIdentity: changes.holder,
        leaseDurationSeconds: Math.ceil(cfg.leaseMs / 1000),
        acquireTime: changes.transition || !base?.spec.acquireTime ? t : base.spec.acquireTime,
        renewTime: t,
        leaseTransitions: (base?.spec.leaseTransitions ?? 0) + (changes.transition && base ? 1 : 0),
      },
    };
  }

  function armWatchdog() {
    if (watchdog) clearTimeout(watchdog);
    const since = confirmedAt();
    if (since === null) return;
    const due = since + cfg.renewDeadlineMs - now();
    watchdog = setTimeout(() => {
      watchdog = null;
      if (lastPg?.inRecovery === false && pg.isRunning() && !(lease?.metadata.annotations?.[A.paused] === 'true')) {
        const c = confirmedAt();
        const ago = c === null ? 'never' : `${now() - c} ms ago`;
        if (c !== null && now() - c < cfg.renewDeadlineMs) return armWatchdog();
        log.warn('watchdog: renew deadline passed, stopping postgres now', { lastRenew: ago });
        void demote(`renew deadline passed (last success ${ago})`);
      }
    }, Math.max(0, due));
  }

  /** Every member we know must confirm us; one silent or refusing member and we demote at the deadline. */
  /** Every member we know must confirm us; one silent or refusing member and we demote at the deadline. */
  async function failsafeRound(): Promise<void> {
    const sent = now();
    const others = membersFromPods();
    const answers = await Promise.all(others.map((m) => sendFailsafe(m.apiUrl)));
    const ok = answers.filter(Boolean).length;
    if (ok === others.length) {
      lastFailsafeOkSentAt = sent;
      armWatchdog();
      log.warn('failsafe: the API is unreachable, every member confirmed us; staying primary', { members: others.map((m) => m.name) });
    } else {
      log.warn('failsafe: not every member confirmed us', { confirmed: ok, members: others.length });
    }
    startFailsafeTimer();
  }

  /** While the API stays unreachable, confirm ourselves every loop on a timer of its own, whatever the tick is waiting on. */
  let failsafeTimer: NodeJS.Timeout | null = null;
  function startFailsafeTimer() {
    if (failsafeTimer || !cfg.failsafe) return;
    failsafeTimer = setInterval(() => {
      const stillPrimary = lastPg?.inRecovery === false && pg.isRunning() && lease?.spec.holderIdentity === cfg.podName;
      const renewing = lastRenewOkSentAt !== null && now() - lastRenewOkSentAt < cfg.renewMs;
      if (!stillPrimary || renewing || terminated) { if (failsafeTimer) clearInterval(failsafeTimer); failsafeTimer = null; return; }
      void failsafeRound();
    }, cfg.loopMs);
  }

  async function sendFailsafe(peerApiUrl: string, release = false): Promise<boolean> {
    try {
      const r = await fetch(`${peerApiUrl}/failsafe`, {
        method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${cfg.secrets.apiToken}` },
        body: JSON.stringify({ leader: cfg.podName, release }), signal: AbortSignal.timeout(700),
      });
      return r.status === 200;
    } catch {
      return false;
    }
  }

  async function writeLease(body: Lease, create: boolean): Promise<boolean> {
    const sent = now();
    const c = confirmedAt();
    const timeout = Math.max(200, Math.min(1_500, c === null ? 1_500 : c + cfg.renewDeadlineMs - sent));
    try {
      const got = create ? await kube.createLease(body, timeout) : await kube.updateLease(body, timeout);
      setLease(got);
      if (got.spec.holderIdentity === cfg.podName) { lastRenewOkSentAt = sent; armWatchdog(); }
      return true;
    } catch (e) {
      if (e instanceof KubeError && (e.conflict || e.notFound)) {
        log.info('lease changed under us; re-reading', { status: e.status });
        kube.resync();
        try { setLease(await kube.getLease(leaseName, 1_000)); } catch { /* next tick */ }
        return false;
      }
      log.warn('lease write failed', { error: errMsg(e) });
      // The watch may be as dead as this request: read directly until it re-lists.
      leaseInformerOk = false;
      kube.resync();
      return false;
    }
  }

  // ---- actions ----
  const dyn = (primary: { host: string; port: number } | null, sync: string[] = [], count = 1): DynamicConf => ({
    primary,
    slotName: primary ? memberSlotName(cfg.podName) : null,
    syncStandbyNames: sync.length ? `ANY ${count} (${sync.map((n) => `"${n}"`).join(', ')})` : '',
    applicationName: cfg.podName,
  });

  async function demote(why: string) {
    log.warn('demoting: stopping postgres immediately', { why });
    try { await pg.stop('immediate'); } catch (e) { log.error('stop failed', { error: errMsg(e) }); }
    following = null;
    currentSyncNames = [];
    // Members that promised us (failsafe) may take over now rather than a lease later.
    if (cfg.failsafe) {
      lastFailsafeOkSentAt = null;
      if (failsafeTimer) { clearInterval(failsafeTimer); failsafeTimer = null; }
      void Promise.all(membersFromPods().map((m) => sendFailsafe(m.apiUrl, true)));
    }
    void publish(true);
    void kube.event('Pod', cfg.podName, 'Demoted', `${cfg.podName} stopped being primary: ${why}`, 'Warning');
  }

  async function startAs(as: 'primary' | 'replica', follow: { name: string; host: string; port: number } | null) {
    await pg.writeConfig(dyn(as === 'replica' ? follow : null));
    following = as === 'replica' ? follow?.name ?? null : null;
    currentSyncNames = [];
    await pg.setStandby(as === 'replica');
    await pg.start();
  }

  async function handoff(to: string) {
    const target = pods.get(to);
    const member = membersFromPods().find((m) => m.name === to);
    if (!target || !member) throw new Error(`hand-off target ${to} is not a member`);
    const t0 = now();
    log.info('hand-off: stopping postgres for a final checkpoint', { to });
    await pg.stop('fast');
    const cd = await readControlData(cfg.binDir, cfg.dataDir);
    const want = cd.checkpointLsn ? parseLsn(cd.checkpointLsn) : null;
    // Wait (bounded) until the target has received our shutdown checkpoint: nothing is lost.
    let caughtUp = false;
    while (now() - t0 < 5_000) {
      const s = await fetchStatus(member.apiUrl, 500);
      const got = s?.receivedLsn ? parseLsn(s.receivedLsn) : null;
      if (want !== null && got !== null && got > want) { caughtUp = true; break; }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (!caughtUp) {
      log.warn('hand-off aborted: target did not receive the final checkpoint in time; staying primary', { to, checkpoint: cd.checkpointLsn });
      await writeLease(leaseBody(lease ?? null, { holder: cfg.podName, transition: false, annotations: { [A.switchoverTo]: null } }), false);
      await startAs('primary', null);
      return;
    }
    const ok = await writeLease(leaseBody(lease ?? null, { holder: to, transition: true, annotations: { [A.switchoverTo]: null, [A.syncStandbys]: null, [A.syncCount]: null } }), false);
    if (!ok) {
      log.warn('hand-off aborted: lease write failed; restarting as primary', { to });
      await startAs('primary', null);
      return;
    }
    lastRenewOkSentAt = null;
    lastFailsafeOkSentAt = null;
    if (watchdog) clearTimeout(watchdog);
    log.info('hand-off: lease given', { to, ms: now() - t0 });
    void kube.event('Lease', leaseName, 'Switchover', `${cfg.podName} handed the primary role to ${to} in ${now() - t0} ms`);
    // Next ticks: the lease is the target's; we rejoin as its replica (rewind is a no-op after a clean hand-off).
    void publish(true);
  }

  async function perform(a: Action, o: Observation): Promise<void> {
    switch (a.type) {
      case 'wipe':
        await pg.wipe();
        return;
      case 'acquire_init':
        try {
          if (init) {
            // take-over of an abandoned claim: conditional on the resourceVersion we saw
            setInit(await kube.updateLease({ ...init, spec: { ...init.spec, holderIdentity: cfg.podName, acquireTime: microTime() } }));
            log.warn('took over the init lease from a member that is gone', { previous: init.spec.holderIdentity });
          } else {
            setInit(await kube.createLease({ metadata: { name: initName }, spec: { holderIdentity: cfg.podName, leaseDurationSeconds: Math.ceil(cfg.leaseMs / 1000), acquireTime: microTime() } }));
            log.info('won the init lease: this member bootstraps the cluster');
          }
        } catch (e) {
          if (e instanceof KubeError && e.conflict) { setInit(await kube.getLease(initName)); return; }
          throw e;
        }
        return;
      case 'bootstrap': {
        log.info('bootstrap: initdb');
        await pg.initdb();
        await startAs('primary', null);
        await pg.bootstrapSql();
        const cur = init ?? (await kube.getLease(initName));
        if (!cur) throw new Error('init lease vanished during bootstrap');
        setInit(await kube.updateLease({ ...cur, metadata: { ...cur.metadata, annotations: { ...(cur.metadata.annotations ?? {}), [A.initialized]: 'true' } } }));
        log.info('bootstrap done');
        void kube.event('Lease', initName, 'Initialized', `${cfg.podName} initialized the cluster`);
        return;
      }
      case 'clone':
        log.info('cloning with pg_basebackup', { from: a.from.name });
        await pg.basebackup(a.from, (pct) => log.info('basebackup progress', { percent: pct }));
        await startAs('replica', a.from);
        return;
      case 'start':
        await startAs(a.as, a.follow);
        return;
      case 'follow':
        if (await pg.writeConfig(dyn(a.from))) await pg.reload();
        following = a.from?.name ?? null;
        notStreamingSince = null;
        return;
      case 'rewind': {
        if (pg.isRunning()) await pg.stop('fast');
        const r = await pg.rewind(a.from);
        if (r.outcome !== 'done') { if (r.outcome === 'failed') rewindFailures++; log.warn(`pg_rewind ${r.outcome}`, { detail: r.detail, failures: rewindFailures }); return; }
        rewindFailures = 0;
        await startAs('replica', a.from);
        void kube.event('Pod', cfg.podName, 'Rejoined', `${cfg.podName} rewound and follows ${a.from.name}`);
        return;
      }
      case 'reinit':
        if (pg.isRunning()) await pg.stop('immediate');
        await pg.wipe();
        rewindFailures = 0;
        if (pods.get(cfg.podName)?.metadata.annotations?.[REINIT_ANNOTATION]) await kube.patchPod(cfg.podName, { annotations: { [REINIT_ANNOTATION]: null } });
        return;
      case 'take_lease': {
        const base = lease ?? null;
        // A promise given to the primary (failsafe) after this tick observed wins over the take-over.
        if (a.failover && failsafeAckedAt !== null && now() - failsafeAckedAt < cfg.leaseMs) {
          log.info('not taking the lease: we just confirmed the primary (failsafe)');
          return;
        }
        takingLease = true;
        const ann: Record<string, string | null> = { [A.switchoverTo]: null };
        if (a.failover) {
          ann[A.failovers] = String((Number(base?.metadata.annotations?.[A.failovers] ?? 0) || 0) + 1);
          ann[A.syncStandbys] = cfg.syncMode === 'on' ? '' : null;
          ann[A.syncCount] = null;
        }
        let ok = false;
        try { ok = await writeLease(leaseBody(base, { holder: cfg.podName, transition: true, annotations: ann }), base === null); } finally { takingLease = false; }
        if (ok) {
          log.info(a.failover ? 'took the lease (failover)' : 'took the lease', { previous: base?.spec.holderIdentity ?? null });
          if (a.failover) void kube.event('Lease', leaseName, 'Failover', `${cfg.podName} took the lease from ${base?.spec.holderIdentity ?? 'nobody'}`, 'Warning');
        }
        return;
      }
      case 'renew_lease': {
        const ann: Record<string, string | null> = {};
        if (a.syncStandbys) { ann[A.syncStandbys] = a.syncStandbys.join(','); ann[A.syncCount] = String(Math.min(cfg.syncCount, Math.max(a.syncStandbys.length, 1))); }
        if (lease && lease.spec.holderIdentity === cfg.podName && o.pg.timeline !== null && lease.metadata.annotations?.[A.timeline] !== String(o.pg.timeline) && o.pg.inRecovery === false) ann[A.timeline] = String(o.pg.timeline);
        if (!lease) throw new Error('no lease to renew');
        // Throws on failure: actions after a renew (start as primary, promote) must not run.
        if (!(await writeLease(leaseBody(lease, { holder: cfg.podName, transition: false, annotations: ann }), false))) {
          // A writable primary in failsafe mode asks the members at once: the deadline is near.
          if (cfg.failsafe && o.pg.inRecovery === false && lease?.spec.holderIdentity === cfg.podName) await failsafeRound();
          throw new Error('lease renew failed');
        }
        return;
      }
      case 'clear_switchover':
        if (lease) await writeLease(leaseBody(lease, { holder: lease.spec.holderIdentity ?? cfg.podName, transition: false, annotations: { [A.switchoverTo]: null } }), false);
        return;
      case 'handoff':
        await handoff(a.to);
        return;
      case 'demote':
        await demote(a.why);
        return;
      case 'unlabel':
        for (const p of a.pods) {
          await kube.patchPod(p, { labels: { [ROLE_LABEL]: 'unknown' } }, 1_000);
          log.info('took the primary label off', { pod: p });
        }
        return;
      case 'promote': {
        const t0 = now();
        await pg.promote();
        following = null;
        currentSyncNames = [];
        log.info('promoted', { ms: now() - t0 });
        await publish(true);
        void kube.event('Pod', cfg.podName, 'Promoted', `${cfg.podName} is the primary`);
        return;
      }
      case 'set_sync':
        if (await pg.writeConfig(dyn(null, a.names, a.count))) await pg.reload();
        currentSyncNames = a.names;
        log.info('synchronous standbys set', { names: a.names, count: a.count });
        return;
      case 'manage_slots': {
        const names = o.members.map((m) => m.name).sort();
        const key = names.join(',');
        if (key === lastSlotMembers && now() - lastSlotsAt < 30_000) return;
        const slots = names.map(memberSlotName);
        await pg.ensureSlots(slots);
        await pg.dropSlotsExcept(slots);
        lastSlotMembers = key;
        lastSlotsAt = now();
        return;
      }
      case 'probe_members':
        return;
      case 'delete_pod':
        log.info('rolling update: deleting a pod so its StatefulSet recreates it on the new revision', { pod: a.pod });
        void kube.event('Pod', a.pod, 'RollingUpdate', `${cfg.podName} restarts ${a.pod} on revision ${o.updateRevision}`);
        await kube.deletePod(a.pod, 2_000);
        return;
      case 'failsafe':
        await failsafeRound();
        return;
      case 'stop':
        if (pg.isRunning()) await pg.stop('fast');
        terminated = true;
        return;
    }
  }

  // ---- publishing our state (label + annotation on our own pod) ----
  function myRole(): Role {
    const st = lastPg;
    if (!st?.running || !st.accepting) return 'unknown';
    if (st.inRecovery === false) return lease?.spec.holderIdentity === cfg.podName && lastRenewOkSentAt !== null ? 'primary' : 'unknown';
    if (st.inRecovery === true) return 'replica';
    return 'unknown';
  }

  function myStatus(): MemberStatus {
    const st = lastPg;
    const lsn = st ? (st.inRecovery ? st.receivedLsn ?? st.replayedLsn : st.currentLsn) : null;
    let lag: number | null = null;
    if (st?.inRecovery && st.receivedLsn && st.replayedLsn) lag = Number(parseLsn(st.receivedLsn) - parseLsn(st.replayedLsn));
    if (st?.inRecovery) {
      // Behind the primary: its WAL end as our sender last reported it; without a stream, its published position.
      const holder = membersFromPods().find((m) => m.name === lease?.spec.holderIdentity);
      const upstream = st.streaming && st.upstreamLsn ? parseLsn(st.upstreamLsn) : holder?.lsn ?? null;
      const mine = st.replayedLsn ?? lsn;
      if (upstream !== null && mine) lag = Math.max(0, Number(upstream - parseLsn(mine)));
    }
    return {
      name: cfg.podName,
      role: myRole(),
      host: cfg.podIp,
      port: cfg.pgPort,
      apiUrl,
      timeline: st?.timeline ?? null,
      lsn: lsn ? formatLsn(parseLsn(lsn)) : null,
      receivedLsn: st?.receivedLsn ?? null,
      replayedLsn: st?.replayedLsn ?? null,
      lagBytes: lag,
      healthy: !!st?.accepting,
      inRecovery: st?.inRecovery ?? null,
      streaming: !!st?.streaming,
      nofailover: cfg.nofailover,
      syncStandby: (lease?.metadata.annotations?.[A.syncStandbys] ?? '').split(',').includes(cfg.podName),
      updatedAt: new Date().toISOString(),
    };
  }

  async function publish(force = false) {
    const s = myStatus();
    const { updatedAt: _u, lsn: _l, receivedLsn: _r, replayedLsn: _p, lagBytes: _g, ...stable } = s;
    const key = JSON.stringify(stable);
    const lsnMoved = s.lsn !== lastPublishedLsn;
    // Stable fields change → publish now; only the WAL position moved → at most every 2 minutes
    // (it is informational: failover candidates ask each other's /status for fresh positions).
    if (!force && key === lastPublished && !(lsnMoved && Date.now() - lastPublishedAt > LSN_PUBLISH_MS) && lastLabel === s.role) return;
    try {
      await kube.patchPod(cfg.podName, { labels: { [ROLE_LABEL]: s.role }, annotations: { [STATUS_ANNOTATION]: JSON.stringify(s) } }, 1_000);
      lastPublished = key;
      lastPublishedLsn = s.lsn;
      lastPublishedAt = Date.now();
      if (lastLabel !== s.role) log.info('role label set', { role: s.role });
      lastLabel = s.role;
    } catch (e) {
      log.warn('could not publish our state on our pod', { error: errMsg(e) });
    }
  }
  let lastPublishedLsn: string | null = null;

  // ---- the loop ----
  async function tick(): Promise<void> {
    if (ticking) { again = true; return; }
    ticking = true;
    try {
      do {
        again = false;
        let o = await observe();
        let d = decide(o);
        if (d.actions.some((a) => a.type === 'probe_members')) {
          o = await probeMembers(o);
          d = decide(o);
        }
        if (d.reason !== lastDecision.reason || d.actions.length) {
          const level = d.reason !== lastDecision.reason || d.actions.some((a) => a.type !== 'renew_lease' && a.type !== 'manage_slots') ? 'info' : 'debug';
          log[level]('decision', { reason: d.reason, actions: d.actions.map((a) => a.type) });
        }
        lastDecision = d;
        lastDecisionAt = new Date();
        for (const a of d.actions) {
          try {
            await perform(a, o);
          } catch (e) {
            log.error(`action ${a.type} failed`, { error: errMsg(e) });
            break; // never run later actions (e.g. promote) after an earlier one (e.g. unlabel) failed
          }
        }
        if (d.actions.length) lastPg = await pg.status();
        if (!terminated) await publish();
        lastTickAt = now();
        for (const w of waiters.splice(0)) w(d);
      } while (again && !terminated);
    } catch (e) {
      log.error('tick failed', { error: errMsg(e) });
    } finally {
      ticking = false;
    }
  }

  function schedule() {
    if (timer) clearTimeout(timer);
    if (terminated) return;
    timer = setTimeout(async () => {
      await tick();
      schedule();
    }, cfg.loopMs);
  }
  const wake = () => { if (!terminated) void tick(); };


  return {
    start() {
      stops.push(kube.informLease(leaseName, (l) => { const prev = leaseKey; setLease(l); if (leaseKey !== prev) wake(); }, (ok) => { leaseInformerOk = ok; }));
      stops.push(kube.informPods(cfg.memberSelector, (p) => { pods = p; ensureStatefulSetInformer(); wake(); }));
      pg.onExit((code, signal) => {
        log.warn('postgres exited', { code, signal });
        wake();
      });
      schedule();
      void tick();
    },
    async terminate() {
      terminating = true;
      const deadline = now() + 30_000;
      while (!terminated && now() < deadline) {
        await tick();
        if (!terminated) await new Promise((r) => setTimeout(r, 100));
      }
      if (pg.isRunning()) await pg.stop('fast');
      terminated = true;
      if (timer) clearTimeout(timer);
      if (watchdog) clearTimeout(watchdog);
      for (const s of stops) s();
      await publish(true);
    },
    snapshot(): StatusSnapshot {
      const lv = leaseView();
      return {
        member: myStatus(),
        leader: lv?.holder && lv.unchangedForMs < cfg.leaseMs ? lv.holder : null,
        leaseHolder: lv?.holder ?? null,
        leaseAgeMs: lv ? lv.unchangedForMs : null,
        paused: !!lv?.paused,
        failovers: lv?.failovers ?? 0,
        syncStandbys: lv?.syncStandbys ?? null,
        reason: lastDecision.reason,
        actions: lastDecision.actions.map((a) => a.type),
        decidedAt: lastDecisionAt.toISOString(),
        members: membersFromPods().map((m) => {
          const raw = pods.get(m.name)?.metadata.annotations?.[STATUS_ANNOTATION];
          try { return raw ? (JSON.parse(raw) as MemberStatus) : null; } catch { return null; }
        }).filter((m): m is MemberStatus => !!m),
        kubeRequests: { ...kube.counts },
      };
    },
    async statusNow() {
      try { lastPg = await pg.status(); } catch { /* keep the last one */ }
      return this.snapshot();
    },
    alive: () => now() - lastTickAt < 3 * cfg.loopMs + cfg.leaseMs || ticking,
    ready() {
      const st = lastPg;
      if (!st?.accepting) return false;
      if (st.inRecovery === false) return myRole() === 'primary';
      const s = myStatus();
      return st.inRecovery === true && (s.lagBytes === null || s.lagBytes <= cfg.maxLagBytes);
    },
    isPrimary: () => myRole() === 'primary',
    isReplica: () => myRole() === 'replica' && !!lastPg?.streaming,
    metrics() {
      const s = myStatus();
      const lv = leaseView();
      const lines = [
        '# HELP pga_role Role of this member (1 for the current role).', '# TYPE pga_role gauge',
        ...(['primary', 'replica', 'unknown'] as const).map((r) => `pga_role{role="${r}"} ${s.role === r ? 1 : 0}`),
        '# HELP pga_lag_bytes Replication lag of this member in bytes (0 on the primary).', '# TYPE pga_lag_bytes gauge',
        `pga_lag_bytes ${s.role === 'primary' ? 0 : s.lagBytes ?? -1}`,
        '# HELP pga_lease_holder 1 when this member holds the leader lease.', '# TYPE pga_lease_holder gauge',
        `pga_lease_holder ${lv?.holder === cfg.podName ? 1 : 0}`,
        '# HELP pga_failovers_total Failovers recorded on the leader lease.', '# TYPE pga_failovers_total counter',
        `pga_failovers_total ${lv?.failovers ?? 0}`,
        '# HELP pga_timeline Timeline of this member.', '# TYPE pga_timeline gauge',
        `pga_timeline ${s.timeline ?? 0}`,
        '# HELP pga_postgres_up 1 when postgres accepts connections.', '# TYPE pga_postgres_up gauge',
        `pga_postgres_up ${s.healthy ? 1 : 0}`,
        '# HELP pga_kube_requests_total Requests this member sent to the Kubernetes API.', '# TYPE pga_kube_requests_total counter',
        ...Object.entries(kube.counts).map(([v, n]) => `pga_kube_requests_total{verb="${v}"} ${n}`),
      ];
      return lines.join('\n') + '\n';
    },
    async requestSwitchover(to) {
      if (to !== null && !pods.has(to)) return { status: 400, message: `unknown member "${to}"; members: ${[...pods.keys()].join(', ')}` };
      if (to !== null && to !== cfg.podName) {
        const m = membersFromPods().find((x) => x.name === to);
        if (!m || m.role !== 'replica' || !m.healthy) return { status: 409, message: `${to} is not a healthy replica (role ${m?.role ?? 'unknown'}); pick one that is, or omit "to"` };
      }
      // The holder renews every few seconds: on a lost race (409), read again and retry.
      for (let attempt = 0; attempt < 4; attempt++) {
        const l = attempt === 0 && lease ? lease : await kube.getLease(leaseName).catch(() => undefined);
        if (!l || !l.spec.holderIdentity) return { status: 409, message: 'no primary holds the lease: nothing to switch over' };
        if (to === l.spec.holderIdentity) return { status: 409, message: `${to} is already the primary` };
        try {
          const body: Lease = { ...l, metadata: { ...l.metadata, annotations: { ...(l.metadata.annotations ?? {}), [A.switchoverTo]: to ?? '*' } } };
          setLease(await kube.updateLease(body, 2_000));
          wake();
          return { status: 202, message: `switchover from ${l.spec.holderIdentity} to ${to ?? 'the best replica'} requested` };
        } catch (e) {
          if (!(e instanceof KubeError && e.conflict)) return { status: 503, message: `could not record the switchover request: ${errMsg(e)}` };
        }
      }
      return { status: 409, message: 'the lease kept changing while recording the switchover; try again' };
    },
    async setPaused(paused) {
      for (let i = 0; i < 3; i++) {
        const l = await kube.getLease(leaseName).catch(() => undefined);
        if (!l) return { status: 409, message: 'no leader lease yet: nothing to pause' };
        const ann = { ...(l.metadata.annotations ?? {}) };
        if (paused) ann[A.paused] = 'true'; else delete ann[A.paused];
        try {
          setLease(await kube.updateLease({ ...l, metadata: { ...l.metadata, annotations: ann } }, 2_000));
          wake();
          return { status: 200, message: paused ? 'paused: the autopilot acts on nothing until resume' : 'resumed' };
        } catch (e) {
          if (!(e instanceof KubeError && e.conflict)) return { status: 503, message: errMsg(e) };
        }
      }
      return { status: 409, message: 'the lease kept changing; try again' };
    },
    nextTick: () => new Promise<Decision>((r) => waiters.push(r)),
    failsafeAck(leader, release = false) {
      const holder = lease?.spec.holderIdentity ?? null;
      if (release) {
        if (holder === leader || holder === null) failsafeAckedAt = null;
        wake();
        return { status: 200, message: `${cfg.podName} released its promise to ${leader}` };
      }
      if (leader === cfg.podName) return { status: 409, message: 'that is us' };
      if (takingLease) return { status: 409, message: `${cfg.podName} is taking the lease over right now` };
      if (lastPg?.inRecovery === false) return { status: 409, message: `${cfg.podName} is writable itself` };
      if (holder !== null && holder !== leader) return { status: 409, message: `the lease we see is held by ${holder}, not ${leader}` };
      failsafeAckedAt = now();
      return { status: 200, message: `${cfg.podName} will not take the lease from ${leader} for ${cfg.leaseMs} ms` };
    },
  };
}
