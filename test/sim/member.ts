// One member's autopilot process: the REAL core (decide, remember, watchdog, answerFailsafe) driven
// by a small executor that mirrors scripts/shell/act.ts, lease.ts, failsafe.ts and state.ts where
// safety matters: every action's precondition is checked against this member's caches at the moment
// it runs (a Stale precondition or an error skips the rest of the tick), every outcome goes through
// `remember`, the watchdog timer re-arms on every outcome and obeys `watchdog()`'s verdict.
// Actions take simulated time (a write that times out, a start, a clone, a slow checkpoint); the
// world's other members keep moving meanwhile.
import { decide } from '../../scripts/core/decide.js';
import { nextTickInMs } from '../../scripts/core/cadence.js';
import { initialMemory, remember, maybeWritable, updateKnownMembers, type KnownMembers } from '../../scripts/core/memory.js';
import { watchdog, answerFailsafe, mayStayWritable } from '../../scripts/core/safety.js';
import { parseLease, newerOrSame, LEASE_ANNOTATIONS as A } from '../../scripts/core/wire.js';
import type { Action, Decision, Memory, MemberView, Observation, Outcome, PgView, Role, Settings } from '../../scripts/core/types.js';
import type { SimLease, SimPod, Snapshot, Status } from './api.js';
import type { Pg } from './pg.js';
import type { World } from './world.js';

export class Stale extends Error {}
type Step = void | { wait: number; then?: () => Step };
interface PgStatus { running: boolean; serverState: PgView['serverState']; accepting: boolean; inRecovery: boolean | null; lsn: bigint | null; timeline: number | null; streaming: boolean; systemId: string | null }

export const LOOP_MS = 1000;
const START_MS = 300, PROMOTE_MS = 100, CLONE_MS = 2000, REWIND_MS = 500, CHECKPOINT_MS = 100, SHUTDOWN_CHECKPOINT_MS = 20, DRAIN_MS = 50;

export class Member {
  mem: Memory = initialMemory();
  lease: SimLease | null | undefined = undefined;
  leaseKey = '';
  leaseChangedAt: number;
  informerOk = false;
  leaseUnreadable = false;
  pods: ReadonlyMap<string, SimPod> = new Map();
  watchQ: { at: number; snap: Snapshot }[] = [];
  takeoverInFlight = false;
  /** state.ts stopping: a hand-off stops postgres, our label says so at once */
  stopping = false;
  terminating = false;
  terminated = false;
  terminateDeadline = Infinity;
  lastStatus: PgStatus | null = null;
  published = '';
  publishedAt = 0;
  // the loop
  nextTickAt: number;
  watchdogAt: number | null = null;
  tickActive = false;
  again = false;
  queue: Action[] = [];
  busyUntil = 0;
  cont: (() => Step) | null = null;
  // freezes: postgres serves from `thawedAt`, the autopilot runs again from `resumeAt`
  resumeAt = 0;
  thawedAt: number | null = null;

  constructor(readonly w: World, readonly name: string, readonly pg: Pg, readonly clockOffset: number) {
    this.leaseChangedAt = this.now();
    this.nextTickAt = w.T;
  }

  get settings(): Settings { return this.w.settings; }
  now(): number { return this.clockOffset + this.w.T; }

  // ---- caches (state.ts setLease) -------------------------------------------------------------
  setLease(l: SimLease | null): void {
    this.leaseUnreadable = false;
    if (l && this.lease && !newerOrSame(this.lease.metadata.resourceVersion, l.metadata.resourceVersion)) return;
    const key = l ? `${l.spec.holderIdentity ?? ''}|${l.metadata.resourceVersion}` : 'none';
    if (key !== this.leaseKey) { this.leaseKey = key; this.leaseChangedAt = this.now(); this.wake(); }
    this.lease = l;
  }
  setPods(p: ReadonlyMap<string, SimPod>): void {
    if (p === this.pods) return;
    this.pods = p;
    this.known = updateKnownMembers(this.known, [...p.keys()], this.name, this.now(), 2 * this.settings.leaseMs);
    this.wake();
  }
  known: KnownMembers = {};
  leaseAt(rv: string | null): SimLease | null | undefined {
    const l = this.lease;
    if (rv === null) return l === null ? null : undefined;
    return l && l.metadata.resourceVersion === rv ? l : undefined;
  }
  wake(): void { if (this.tickActive) this.again = true; else this.nextTickAt = Math.min(this.nextTickAt, this.w.T); }
  ran(): void {
    if (this.thawedAt === null) return;
    this.w.stats.thawWindowMaxMs = Math.max(this.w.stats.thawWindowMaxMs, this.w.T - this.thawedAt);
    this.thawedAt = null;
  }

  // ---- the loop, one world step at a time ------------------------------------------------------
  step(): void {
    const w = this.w;
    if (w.frozen(this.name) || w.T < this.resumeAt) return;
    // the process runs again: from here on its timers and its decisions are its own (S1 applies)
    this.ran();
    this.deliverWatch();
    if (this.watchdogAt !== null && w.T >= this.watchdogAt) { this.watchdogAt = null; this.ran(); this.armWatchdog(); }
    if (w.T < w.stalledUntil(this.name)) return;
    if (!this.tickActive && !this.terminated && w.T >= this.nextTickAt) this.startTick();
    this.progress();
    if (this.terminating && !this.terminated && w.T >= this.terminateDeadline) { this.pg.stop(); this.terminated = true; }
  }

  private deliverWatch(): void {
    const w = this.w;
    if (!w.apiOk(this.name)) { if (w.apiCutFor(this.name) >= 3000) this.informerOk = false; return; }
    if (!this.informerOk) { // re-list
      this.watchQ = [];
      this.informerOk = true;
      this.setLease(w.api.lease);
      this.setPods(w.api.snapshot().pods);
      return;
    }
    while (this.watchQ.length && this.watchQ[0]!.at <= w.T) {
      const e = this.watchQ.shift()!;
      this.setLease(e.snap.lease);
      this.setPods(e.snap.pods);
    }
  }

  private startTick(): void {
    this.ran();
    this.tickActive = true;
    let o = this.observe();
    let d = decide(o, this.mem);
    let wait = 0;
    if (d.actions.some((a) => a.type === 'probe_members')) {
      this.mem = d.memory;
      const p = this.probe(o);
      o = p.o; wait = p.ms;
      d = decide(o, this.mem);
    }
    this.mem = d.memory;
    this.armWatchdog();
    this.w.traceDecision(this.name, d);
    this.queue = d.actions.slice();
    this.busyUntil = this.w.T + wait;
  }

  private progress(): void {
    while (this.tickActive && this.w.T >= this.busyUntil) {
      try {
        const c = this.cont;
        this.cont = null;
        const r = c ? c() : this.next();
        if (r === null) { this.endTick(); return; }
        if (r) { this.busyUntil = this.w.T + r.wait; this.cont = r.then ?? null; }
      } catch (e) {
        this.w.trace(this.name, `${e instanceof Stale ? 'skipped' : 'failed'}: ${(e as Error).message}`);
        this.queue = [];
        this.cont = null;
      }
    }
  }
  private next(): Step | null {
    const a = this.queue.shift();
    if (!a) return null;
    return this.perform(a);
  }
  private endTick(): void {
    this.tickActive = false;
    this.lastStatus = this.pgStatus();
    if (!this.terminated) this.publish();
    const again = this.again && !this.terminated;
    this.again = false;
    this.nextTickAt = this.w.T + (again ? 0 : this.terminating ? 100 : nextTickInMs(this.mem, this.settings, LOOP_MS, this.now()));
  }

  // ---- observation (observe.ts) -----------------------------------------------------------------
  pgStatus(): PgStatus {
    const pg = this.pg;
    if (pg.state === 'stopped') return { running: false, serverState: null, accepting: false, inRecovery: null, lsn: null, timeline: null, streaming: false, systemId: null };
    const pid: PgView['serverState'] = pg.state === 'starting' ? 'starting' : pg.state === 'stopping' ? 'stopping' : pg.inRecovery ? 'standby' : 'ready';
    if (pg.state !== 'running' || pg.slotsFull) return { running: true, serverState: pid, accepting: false, inRecovery: null, lsn: null, timeline: null, streaming: false, systemId: null };
    return { running: true, serverState: pid, accepting: true, inRecovery: pg.inRecovery, lsn: pg.lsn, timeline: pg.tl, streaming: pg.streaming, systemId: pg.systemId };
  }

  observe(): Observation {
    const w = this.w, pg = this.pg;
    const s = this.pgStatus();
    this.lastStatus = s;
    const dataDir = pg.running ? 'valid' : pg.data;
    if (!this.informerOk) { if (w.apiOk(this.name)) this.setLease(w.api.lease); else this.leaseUnreadable = true; }
    const view = (l: SimLease | null | undefined) => (l === undefined ? undefined : l === null ? null : parseLease(l, this.now() - this.leaseChangedAt));
    const lease = this.leaseUnreadable ? undefined : view(this.lease);
    const replicas = s.inRecovery === false ? w.replicasOf(this.name) : [];
    const self = this.pods.get(this.name);
    const target = w.api.updateRevision;
    const pending = target && [...this.pods.values()].some((p) => p.revision !== null && p.revision !== target) ? target : null;
    return {
      nowMs: this.now(), self: this.name, settings: this.settings,
      dataDir, controlRole: !pg.running && pg.data === 'valid' ? (pg.wasPrimary ? 'primary' : 'standby') : 'unknown',
      pg: {
        running: s.running, serverState: s.serverState, accepting: s.accepting, inRecovery: s.inRecovery, timeline: s.timeline, lsn: s.lsn,
        streaming: s.streaming, following: pg.following, syncNames: pg.sync.names, syncCount: pg.sync.count,
        streamingReplicas: replicas.map((r) => r.name), replicaFlush: replicas.map((r) => ({ name: r.name, lsn: r.lsn })), slots: null,
        systemId: s.running ? s.systemId : pg.data === 'valid' ? pg.systemId : null,
      },
      lease,
      ...(lease === undefined ? { lastKnownLease: view(this.lease) ?? null } : {}),
      init: { holder: 'm0', initialized: true, unchangedForMs: 1e9 },
      members: this.membersFromPods(),
      terminating: this.terminating,
      reinitRequested: !!self?.reinit,
      revision: self?.revision ?? null,
      updateRevision: pending,
      expectedMembers: w.api.replicas,
    };
  }

  membersFromPods(): MemberView[] {
    const out: MemberView[] = [];
    for (const [name, pod] of this.pods) if (name !== this.name) out.push(viewOf(name, pod.status, pod, false));
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  private probe(o: Observation): { o: Observation; ms: number } {
    let ms = 10;
    const members = o.members.map((m) => {
      const s = this.w.statusNow(this.name, m.name);
      if (!s) { ms = 400; return { ...m, fresh: true, healthy: false, inRecovery: null, lsn: null }; }
      return viewOf(m.name, s, this.pods.get(m.name), true);
    });
    return { o: { ...o, members }, ms };
  }

  myRole(): Role {
    const s = this.lastStatus;
    if (!s?.running || !s.accepting || this.stopping) return 'unknown';
    if (s.inRecovery === false) return this.lease?.spec.holderIdentity === this.name && mayStayWritable(this.mem, this.settings, this.now()).ok ? 'primary' : 'unknown';
    return s.inRecovery === true ? 'replica' : 'unknown';
  }
  myStatus(): Status {
    const s = this.lastStatus;
    return { role: this.myRole(), healthy: !!s?.accepting, inRecovery: s?.inRecovery ?? null, streaming: !!s?.streaming, timeline: s?.timeline ?? null, lsn: s?.lsn ?? null, systemId: s?.systemId ?? null };
  }
  publish(force = false): void {
    const s = this.myStatus();
    // as publish.ts: a moved WAL position alone is republished at most every 2 minutes
    const key = `${s.role}|${s.healthy}|${s.inRecovery}|${s.streaming}|${s.timeline}|${s.systemId}`;
    if ((!force && key === this.published && this.w.T - this.publishedAt < 120_000) || !this.w.apiOk(this.name)) return;
    this.published = key;
    this.publishedAt = this.w.T;
    this.w.api.patchPod(this.name, (p) => ({ ...p, label: s.role, status: s }));
  }

  // ---- memory, watchdog, failsafe (state.ts, failsafe.ts) ---------------------------------------
  record(e: Outcome): void {
    this.mem = remember(this.mem, e, this.name);
    this.armWatchdog();
  }
  armWatchdog(): void {
    this.watchdogAt = null;
    if (this.terminated) return;
    const v = watchdog(this.mem, this.pg.running, this.settings, this.now());
    if (v.stop) { this.w.trace(this.name, `watchdog: ${v.reason}`); this.demote(v.reason); return; }
    if (v.checkAgainInMs !== null) this.watchdogAt = this.w.T + v.checkAgainInMs + 1;
  }
  demote(why: string): void {
    this.w.trace(this.name, `demote: ${why}`);
    this.pg.stop();
    this.pg.following = null;
    this.pg.sync = { names: [], count: 1 };
    this.record({ type: 'demoted' });
    this.releaseFailsafe();
    this.lastStatus = this.pgStatus();
    this.publish(true);
  }
  failsafeAck(leader: string, release: boolean): { status: number } {
    const s = this.lastStatus;
    const writable = s ? maybeWritable({ pg: { running: s.running, inRecovery: s.inRecovery, serverState: null } as PgView }, this.mem) : false;
    const r = answerFailsafe(this.mem, { leader, release }, {
      self: this.name, failsafe: this.settings.failsafe, leaseHolder: this.lease?.spec.holderIdentity || null, writable, takeoverInFlight: this.takeoverInFlight,
    }, this.now());
    this.mem = r.memory;
    if (release) this.wake();
    return r;
  }
  /** failsafe.ts: the pods listed now and those a healthy list lacked only recently */
  private others(): string[] { return [...new Set([...this.pods.keys(), ...Object.keys(this.known)])].filter((n) => n !== this.name).sort(); }
  private releaseFailsafe(): void {
    if (!this.settings.failsafe) return;
    for (const n of this.others()) this.w.failsafe(this.name, n, true);
  }
  private failsafeRound(): Step {
    const sent = this.now();
    const others = this.others();
    const answers = others.map((n) => this.w.failsafe(this.name, n, false));
    const ok = answers.filter((x) => x === true).length;
    return { wait: answers.some((x) => x !== true) ? 700 : 10, then: () => this.record({ type: 'failsafe_round', sentAtMs: sent, allConfirmed: ok === others.length }) };
  }


  // ---- lease writes (lease.ts) -------------------------------------------------------------------
  private writeLease(base: SimLease | null, holder: string | null, ann: Record<string, string | null>, ifRv: string | null, takeover: boolean, done: (ok: boolean) => Step): Step {
    const w = this.w;
    const sent = this.now();
    const c = this.mem.confirmedAtMs;
    // lease.ts: only a writable primary races its deadline
    const racing = c !== null && this.lastStatus?.inRecovery === false;
    const timeout = racing ? Math.max(200, Math.min(1_500, c + this.settings.renewDeadlineMs - sent)) : 1_500;
    const annotations: Record<string, string> = { ...(base?.metadata.annotations ?? {}) };
    for (const [k, v] of Object.entries(ann)) { if (v === null) delete annotations[k]; else annotations[k] = v; }
    const body: SimLease = { metadata: { resourceVersion: ifRv ?? '', annotations }, spec: { holderIdentity: holder, leaseDurationSeconds: Math.ceil(this.settings.leaseMs / 1000) } };
    const inDoubt = (): Step => {
      this.record({ type: 'lease_write_failed', takeover, ifResourceVersion: ifRv, inDoubt: true });
      this.informerOk = false;
      return done(false);
    };
    if (!w.apiOk(this.name)) return { wait: timeout, then: inDoubt };
    const r = w.api.writeLease(body, ifRv);
    w.trace(this.name, `lease write ${ifRv ?? 'create'} → ${r.ok ? `rv ${r.lease.metadata.resourceVersion} holder ${holder}` : '409'}`);
    if (!r.ok) {
      this.record({ type: 'lease_write_failed', takeover, ifResourceVersion: ifRv, inDoubt: false });
      this.setLease(w.api.lease);
      return done(false);
    }
    if (w.lostReply(this.name)) return { wait: timeout, then: inDoubt };
    this.setLease(r.lease);
    this.record({ type: 'lease_written', sentAtMs: sent, holder: r.lease.spec.holderIdentity, resourceVersion: r.lease.metadata.resourceVersion });
    return done(true);
  }

  // ---- the executor (act.ts) ---------------------------------------------------------------------
  private startAs(as: 'primary' | 'replica', follow: { name: string } | null, sync = { names: [] as string[], count: 1 }): Step {
    const pg = this.pg;
    pg.following = as === 'replica' ? follow?.name ?? null : null;
    pg.sync = as === 'primary' ? sync : { names: [], count: 1 };
    pg.inRecovery = as === 'replica';
    pg.state = 'starting';
    return {
      wait: START_MS,
      then: () => {
        if (pg.state !== 'starting' || pg.unstartable) {
          pg.stop();
          this.record({ type: 'start_failed', atMs: this.now() });
          throw new Error('postgres did not start');
        }
        pg.state = 'running';
        this.record({ type: 'started', as });
      },
    };
  }

  private perform(a: Action): Step {
    const w = this.w, pg = this.pg;
    switch (a.type) {
      case 'wipe':
        w.wiping(this.name, 'wipe');
        pg.wipe();
        this.record({ type: 'wiped' });
        return;
      case 'acquire_init': case 'bootstrap':
        throw new Error(`${a.type} is not modelled (the simulated cluster starts initialized)`);
      case 'clone': {
        const src = w.pgOf(a.from.name);
        if (!src || !w.canConnect(this.name, a.from.name)) return { wait: 1000, then: () => { throw new Error('pg_basebackup: source unreachable'); } };
        pg.data = 'partial';
        return {
          wait: CLONE_MS,
          then: () => {
            if (!w.canConnect(this.name, a.from.name)) throw new Error('pg_basebackup: connection lost');
            pg.cloneFrom(src);
            return this.startAs('replica', a.from);
          },
        };
      }
      case 'start':
        return this.startAs(a.as, a.follow);
      case 'follow':
        pg.following = a.from?.name ?? null;
        return;
      case 'rewind': {
        if (pg.running) pg.stop();
        const src = w.pgOf(a.from.name);
        return {
          wait: REWIND_MS,
          then: () => {
            const outcome = !src || !w.canConnect(this.name, a.from.name) ? 'unreachable' : pg.rewindBroken ? 'failed' : 'done';
            this.record({ type: 'rewound', outcome });
            w.trace(this.name, `pg_rewind against ${a.from.name}: ${outcome}`);
            if (outcome !== 'done') return;
            pg.rewindTo(src!);
            return this.startAs('replica', a.from);
          },
        };
      }
      case 'reinit':
        if (pg.running) pg.stop();
        w.wiping(this.name, 'reinit');
        pg.wipe();
        this.record({ type: 'wiped' });
        if (this.pods.get(this.name)?.reinit && w.apiOk(this.name)) w.api.patchPod(this.name, (p) => ({ ...p, reinit: false }));
        return;
      case 'take_lease': {
        const base = this.leaseAt(a.ifResourceVersion);
        if (base === undefined) throw new Stale('take-over: the lease changed since the decision');
        if (a.failover && this.mem.failsafePromise) throw new Stale('not taking the lease: we just confirmed the primary (failsafe)');
        const ann: Record<string, string | null> = { [A.switchoverTo]: null };
        if (a.failover) {
          ann[A.failovers] = String((Number(base?.metadata.annotations[A.failovers] ?? 0) || 0) + 1);
          ann[A.syncStandbys] = this.settings.syncMode !== 'off' ? '' : null;
          ann[A.syncCount] = null;
        }
        this.takeoverInFlight = true;
        return this.writeLease(base, this.name, ann, a.ifResourceVersion, a.failover, (ok) => {
          this.takeoverInFlight = false;
          if (!ok) throw new Stale('the take-over write did not succeed');
        });
      }
      case 'renew_lease': {
        const base = this.lease && this.lease.metadata.resourceVersion === a.ifResourceVersion ? this.lease : null;
        if (!base) throw new Stale('renew: the lease changed since the decision');
        const ann: Record<string, string | null> = {};
        if (a.record) { ann[A.syncStandbys] = a.record.syncStandbys.join(','); ann[A.syncCount] = String(a.record.syncCount); }
        if (a.stamp?.timeline !== undefined) ann[A.timeline] = String(a.stamp.timeline);
        if (a.stamp?.systemId !== undefined) ann[A.systemId] = a.stamp.systemId;
        return this.writeLease(base, this.name, ann, a.ifResourceVersion, false, (ok) => {
          if (ok) return;
          if (a.onFailure !== 'failsafe') throw new Stale('lease renew failed');
          const round = this.failsafeRound() as { wait: number; then: () => Step };
          return { wait: round.wait, then: () => { round.then(); throw new Stale('lease renew failed'); } };
        });
      }
      case 'release_lease': {
        const base = this.leaseAt(a.ifResourceVersion);
        if (!base) throw new Stale('release: the lease changed since the decision');
        return this.writeLease(base, null, { [A.switchoverTo]: null }, a.ifResourceVersion, false, () => undefined);
      }
      case 'clear_switchover': {
        const base = this.leaseAt(a.ifResourceVersion);
        if (base) return this.writeLease(base, base.spec.holderIdentity ?? this.name, { [A.switchoverTo]: null }, a.ifResourceVersion, false, () => undefined);
        return;
      }
      case 'handoff':
        return this.handoff(a.to, a.ifResourceVersion, a.checkpointMs);
      case 'demote':
        this.demote(a.why);
        return;
      case 'unlabel':
        if (!w.apiOk(this.name)) return { wait: 1000, then: () => { throw new Error('unlabel: API unreachable'); } };
        for (const p of a.pods) w.api.patchPod(p, (x) => ({ ...x, label: 'unknown' }));
        return;
      case 'promote': {
        const rv = this.lease?.metadata.resourceVersion;
        if (this.lease?.spec.holderIdentity !== this.name || (rv !== a.leaseVersion && rv !== this.mem.lastWrittenRv)) throw new Stale('promote: the lease is no longer the one we confirmed');
        return {
          wait: PROMOTE_MS,
          then: () => {
            if (pg.state !== 'running' || !pg.inRecovery) throw new Error('promote: postgres is not a running standby');
            pg.inRecovery = false;
            pg.tl = w.nextTimeline();
            pg.following = null;
            pg.sync = a.sync ? { names: [...a.sync.names], count: a.sync.count } : { names: [], count: 1 };
            this.record({ type: 'promoted' });
            this.lastStatus = this.pgStatus();
            this.publish(true);
          },
        };
      }
      case 'set_sync':
        pg.sync = { names: a.names, count: a.count };
        this.record({ type: 'sync_applied', names: a.names, count: a.count });
        return;
      case 'manage_slots': case 'probe_members':
        return;
      case 'evict_pod':
        if (!w.apiOk(this.name)) return { wait: 2000, then: () => { throw new Error('evict: API unreachable'); } };
        w.evict(this.name, a.pod);
        return;
      case 'failsafe':
        return this.failsafeRound();
      case 'stop':
        if (pg.running) pg.stop();
        this.terminated = true;
        return;
    }
  }

  /** handoff.ts: a checkpoint while still writable (at most the core's budget), a clean stop; once
   * its shutdown checkpoint is written (postgres takes no more writes, it drains) the target must
   * have received it, then the lease; postgres exits after. */
  private handoff(to: string, ifRv: string, checkpointMs: number): Step {
    const base = this.leaseAt(ifRv);
    if (!base || !this.pods.has(to)) throw new Stale(`hand-off to ${to}: the lease changed or ${to} is gone since the decision`);
    const full = this.pg.slowCheckpointMs || CHECKPOINT_MS;
    if (checkpointMs < 100) return this.handoffStop(to, full);
    // the checkpoint while writable takes what it takes, up to the budget; the shutdown checkpoint the rest
    const first = Math.min(full, checkpointMs);
    return { wait: first, then: () => this.handoffStop(to, Math.max(SHUTDOWN_CHECKPOINT_MS, full - first)) };
  }

  private handoffStop(to: string, checkpointMs: number): Step {
    const w = this.w, pg = this.pg;
    if (pg.state === 'running') pg.state = 'stopping'; // a watchdog stop meanwhile leaves it stopped: unclean, aborted below
    this.stopping = true;
    this.publish(true);
    const exit = (): void => {
      if (pg.state === 'stopping') pg.stop();
      this.stopping = false;
      this.lastStatus = this.pgStatus();
      this.publish(true);
    };
    const clearSwitchover = (): Step => {
      exit();
      const cur = this.lease;
      if (cur && cur.spec.holderIdentity === this.name) return this.writeLease(cur, this.name, { [A.switchoverTo]: null }, cur.metadata.resourceVersion, false, () => undefined);
    };
    return {
      wait: checkpointMs,
      then: () => {
        const clean = pg.state === 'stopping'; // the watchdog's immediate stop leaves no final checkpoint
        if (clean) this.record({ type: 'writes_stopped' });
        const want = clean ? pg.wal.length : null;
        const target = w.pgOf(to);
        const caughtUp = want !== null && !!target && w.statusNow(this.name, to) !== null && target.wal.length >= want && target.prefixOf(pg);
        w.trace(this.name, `hand-off to ${to}: ${clean ? 'clean' : 'unclean'} stop, target ${caughtUp ? 'caught up' : 'not caught up'}`);
        if (!caughtUp) return { wait: want === null ? 0 : 5000, then: clearSwitchover };
        const cur = this.lease;
        if (!cur) { exit(); return; }
        return this.writeLease(cur, to, { [A.switchoverTo]: null, [A.syncStandbys]: null, [A.syncCount]: null }, cur.metadata.resourceVersion, false, (ok) => {
          if (!ok) { exit(); return; }
          this.record({ type: 'handed_off' });
          this.releaseFailsafe();
          // postgres drains its walsenders and exits after the lease moved
          return { wait: DRAIN_MS, then: exit };
        });
      },
    };
  }
}

export function viewOf(name: string, s: Status | null, pod: SimPod | undefined, fresh: boolean): MemberView {
  return {
    name, host: name, port: 5432, apiUrl: `http://${name}:8008`, role: s?.role ?? 'unknown', healthy: s?.healthy ?? false,
    inRecovery: s?.inRecovery ?? null, streaming: s?.streaming ?? false, timeline: s?.timeline ?? null, lsn: s?.lsn ?? null,
    nofailover: false, fresh, labelledPrimary: pod?.label === 'primary', reinitRequested: !!pod?.reinit, revision: pod?.revision ?? null,
    systemId: s?.systemId ?? null, leaving: !!pod?.deleting, ready: null,
  };
}
