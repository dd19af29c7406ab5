// The simulated world: N members (autopilot + postgres), one API server, the network between them,
// a client writing continuously, a fault schedule, and the invariants checked at every step.
// Time advances in fixed steps of STEP_MS; everything is a pure function of the schedule.
import type { Decision, Settings } from '../../scripts/core/types.js';
import { LEASE_ANNOTATIONS as A } from '../../scripts/core/wire.js';
import { Api, type SimPod, type Status } from './api.js';
import { Pg } from './pg.js';
import { Member } from './member.js';
import type { Fault, Schedule } from './faults.js';

export const STEP_MS = 25;
export const CLIENT_MS = 100;
/** L1: after the last fault ends (and every pod exists again), one primary and every other member streaming within this. */
export const L1_BOUND_MS = 30_000;
export const WARMUP_MS = 2_000;
const SYSID = '7300000000000000001';

export class Violation extends Error {
  constructor(readonly invariant: string, message: string, readonly at: number) { super(`${invariant} at t=${at} ms: ${message}`); }
}

export interface Stats {
  /** thaws of a writable postgres: the longest time from thaw to the autopilot's first run, and writes acked meanwhile */
  thawWindowMaxMs: number; thawAcked: number; thawOverlaps: number;
  l1Ms: number | null; acked: number; wipes: number; failovers: number; evictions: number; maxAbsent: number;
}

export interface WorldOptions extends Schedule {
  members?: number;
  syncCount?: number;
  /** scripted operations at given times (named scenarios) */
  ops?: { at: number; run: (w: World) => void }[];
  /** members left out of L1 (e.g. one holding a foreign data directory) */
  exclude?: string[];
  /** skip L1 (a scenario where no failover is the correct outcome) */
  noL1?: boolean;
  /** a scenario's own assertion, after the invariants of every step */
  onStep?: (w: World) => void;
}

export class World {
  T = 0;
  readonly names: string[];
  readonly api: Api;
  readonly settings: Settings;
  readonly pgs = new Map<string, Pg>();
  readonly members = new Map<string, Member>();
  readonly stats: Stats = { thawWindowMaxMs: 0, thawAcked: 0, thawOverlaps: 0, l1Ms: null, acked: 0, wipes: 0, failovers: 0, evictions: 0, maxAbsent: 0 };
  readonly acked = new Map<number, string>();
  readonly log: [number, string, string | Decision][] = [];
  /** fault windows: kind → per-member end time (links: an n×n matrix) */
  private until: Record<string, number[]> = {};
  private since: Record<string, number[]> = {};
  private readonly index = new Map<string, number>();
  private watchDelay = new Map<string, number>();
  private faults: Fault[];
  private nextFault = 0;
  private ops: { at: number; run: (w: World) => void }[];
  private frozenBefore = new Set<string>();
  private writableBefore = new Set<string>();
  private commitId = 0;
  private conn: string | null = null;
  private timeline = 1;
  private offsets: number[];
  readonly quietAt: number;
  done = false;

  constructor(readonly opts: WorldOptions) {
    const n = opts.members ?? 3;
    this.names = Array.from({ length: n }, (_, i) => `m${i}`);
    this.names.forEach((x, i) => this.index.set(x, i));
    this.settings = { leaseMs: 6000, renewMs: 2000, renewDeadlineMs: 4500, maxLagBytes: 16 * 1024 * 1024, syncMode: opts.syncMode, syncCount: opts.syncCount ?? 1, nofailover: false, failsafe: opts.failsafe };
    this.faults = opts.faults.map((f) => ({ ...f, at: f.at + WARMUP_MS })).sort((a, b) => a.at - b.at);
    this.ops = [...(opts.ops ?? [])].sort((a, b) => a.at - b.at);
    this.quietAt = Math.max(WARMUP_MS, ...this.faults.map((f) => f.at + (['crash', 'sigterm', 'switchover'].includes(f.kind) ? 0 : f.dur)), ...this.ops.map((o) => o.at));
    let seed = opts.faults.reduce((a, f) => (a * 31 + f.at + f.m) | 0, 7);
    this.offsets = this.names.map(() => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return 1_000_000 + (seed % 1_000_000); });
    this.api = new Api(n);
    this.api.onChange = (snap) => {
      for (const [name, m] of this.members) {
        const last = m.watchQ[m.watchQ.length - 1]?.at ?? 0;
        m.watchQ.push({ at: Math.max(last, this.T + (this.watchDelay.get(name) ?? 0)), snap });
      }
    };
    // a settled cluster: m0 primary holding the lease, the others streaming from it
    const sync = opts.syncMode !== 'off' ? { names: this.names.slice(1), count: Math.min(this.settings.syncCount, n - 1) } : { names: [], count: 1 };
    for (const name of this.names) {
      const pg = new Pg(name, SYSID);
      pg.state = 'running';
      pg.inRecovery = name !== 'm0';
      pg.wasPrimary = name === 'm0';
      pg.following = name === 'm0' ? null : 'm0';
      if (name === 'm0') pg.sync = sync;
      this.pgs.set(name, pg);
      this.api.pods.set(name, { name, label: name === 'm0' ? 'primary' : 'replica', status: null, revision: 'r1', reinit: false });
    }
    const ann: Record<string, string> = { [A.systemId]: SYSID, [A.timeline]: '1' };
    if (sync.names.length) { ann[A.syncStandbys] = sync.names.join(','); ann[A.syncCount] = String(sync.count); }
    const l = this.api.writeLease({ metadata: { resourceVersion: '', annotations: ann }, spec: { holderIdentity: 'm0', leaseDurationSeconds: 6 } }, null);
    for (const name of this.names) this.spawn(name);
    const m0 = this.members.get('m0')!;
    if (l.ok) m0.mem = { ...m0.mem, confirmedAtMs: m0.now(), lastWrittenRv: l.lease.metadata.resourceVersion, lastKnownWritable: true };
  }

  private spawn(name: string): void {
    const i = this.names.indexOf(name);
    this.members.set(name, new Member(this, name, this.pgs.get(name)!, this.offsets[i]! + this.T * 0));
  }

  // ---- the network and the faults ----------------------------------------------------------------
  private win(kind: string): number[] { return (this.until[kind] ??= new Array(this.names.length * this.names.length).fill(-1)); }
  private active(kind: string, name: string): boolean { return this.T < (this.until[kind]?.[this.index.get(name)!] ?? -1); }
  frozen(name: string): boolean { return this.active('freeze', name); }
  apiOk(name: string): boolean { return !this.active('apiCut', name); }
  apiCutFor(name: string): number { return this.apiOk(name) ? 0 : this.T - (this.since['apiCut']?.[this.index.get(name)!] ?? this.T); }
  linkOk(a: string, b: string): boolean { const l = this.until['link']; return !l || this.T >= l[this.index.get(a)! * this.names.length + this.index.get(b)!]!; }
  lostReply(name: string): boolean { return this.active('lostReplies', name); }
  stalledUntil(name: string): number { return this.active('stall', name) ? this.until['stall']![this.index.get(name)!]! : 0; }
  pgOf(name: string): Pg | undefined { return this.pgs.get(name); }
  nextTimeline(): number { return ++this.timeline; }
  /** a member's postgres takes a new connection from `from` (streaming, basebackup, rewind) */
  canConnect(from: string, to: string): boolean {
    const p = this.pgs.get(to);
    return !!p && this.members.has(to) && this.linkOk(from, to) && !this.frozen(to) && p.state === 'running' && !p.slotsFull;
  }
  /** GET /status from `from` to `to`: null when it does not answer */
  statusNow(from: string, to: string): Status | null {
    const m = this.members.get(to);
    if (!m || !this.linkOk(from, to) || this.frozen(to) || this.T < m.resumeAt) return null;
    m.lastStatus = m.pgStatus();
    return m.myStatus();
  }
  /** POST /failsafe from `from` to `to`: true when a 200 came back */
  failsafe(from: string, to: string, release: boolean): boolean {
    const m = this.members.get(to);
    if (!m || !this.linkOk(from, to) || this.frozen(to) || this.T < m.resumeAt) return false;
    const r = m.failsafeAck(from, release);
    return r.status === 200 && !this.active('lostFailsafe', from);
  }
  replicasOf(name: string): { name: string; lsn: bigint }[] {
    const out: { name: string; lsn: bigint }[] = [];
    for (const [n, p] of this.pgs) if (n !== name && p.state === 'running' && p.inRecovery && p.streaming && p.following === name) out.push({ name: n, lsn: p.lsn });
    return out;
  }

  private applyFault(f: Fault): void {
    const name = this.names[f.m]!;
    const end = f.at + f.dur;
    const hold = (kind: string, i = f.m) => {
      const u = this.win(kind);
      if (this.T >= u[i]!) (this.since[kind] ??= []).splice(i, 1, this.T);
      u[i] = Math.max(u[i]!, end);
    };
    this.trace(name, `FAULT ${f.kind}${f.n !== undefined ? ` ↔ m${f.n}` : ''} for ${f.dur} ms`);
    switch (f.kind) {
      case 'linkCut': { const k = this.names.length; hold('link', f.m * k + f.n!); hold('link', f.n! * k + f.m); return; }
      case 'crash': this.pgs.get(name)!.stop(); this.members.get(name)?.wake(); return;
      case 'sigterm': this.sigterm(name, null); return;
      case 'switchover': this.api.editLease((l) => { if (l.spec.holderIdentity && l.spec.holderIdentity !== name) l.metadata.annotations[A.switchoverTo] = name; }); return;
      case 'slowWatch': hold('slowWatch'); this.watchDelay.set(name, f.delay ?? 3000); return;
      default: hold(f.kind);
    }
  }

  /** a fault decided by a scenario while it runs (e.g. "the moment that pod is gone"), starting now */
  inject(f: Omit<Fault, 'at'>): void { this.applyFault({ ...f, at: this.T } as Fault); }

  /** the pod is deleted: SIGTERM (hand-off when primary), gone, then recreated on `revision` */
  sigterm(name: string, revision: string | null): void {
    const m = this.members.get(name);
    if (!m || m.terminating) return;
    m.terminating = true;
    m.terminateDeadline = this.T + 30_000;
    this.api.patchPod(name, (p) => ({ ...p, deleting: true }));
    m.wake();
    (m as Member & { nextRevision?: string | null }).nextRevision = revision;
  }
  evict(by: string, pod: string): void {
    this.stats.evictions++;
    this.trace(by, `evicts ${pod}`);
    this.sigterm(pod, this.api.updateRevision);
  }
  private recreate = new Map<string, { at: number; revision: string | null }>();
  /** the members the StatefulSet wants (a scale-down removes the highest ordinals, one at a time, for good) */
  get wanted(): string[] { return this.names.slice(0, this.api.replicas); }
  scaleDown(to: number): void {
    this.trace('sts', `scale to ${to}`);
    this.api.replicas = to;
  }

  // ---- one step ----------------------------------------------------------------------------------
  step(): void {
    const T = this.T;
    while (this.nextFault < this.faults.length && this.faults[this.nextFault]!.at <= T) this.applyFault(this.faults[this.nextFault++]!);
    while (this.ops.length && this.ops[0]!.at <= T) this.ops.shift()!.run(this);
    for (const [name, p] of this.pgs) {
      p.unstartable = this.active('unstartable', name);
      p.slotsFull = this.active('slots', name);
      p.slowCheckpointMs = this.active('slowCheckpoint', name) ? 6000 : 0;
      p.rewindBroken = this.active('rewindBroken', name);
      if (this.watchDelay.size && !this.active('slowWatch', name)) this.watchDelay.delete(name);
      const frozen = this.frozen(name);
      if (this.frozenBefore.has(name) && !frozen) {
        const m = this.members.get(name);
        if (m) { m.resumeAt = T + STEP_MS; if (p.writable) m.thawedAt = T; }
      }
      if (frozen) this.frozenBefore.add(name); else this.frozenBefore.delete(name);
    }
    this.replicate();
    this.acks();
    if (T % CLIENT_MS === 0) this.client();
    for (const m of this.members.values()) m.step();
    this.lifecycle();
    this.check();
    this.opts.onStep?.(this);
    this.T += STEP_MS;
  }

  private lifecycle(): void {
    // StatefulSet scale-down: delete the highest unwanted ordinal once the one before it is gone
    const unwanted = [...this.members.keys()].filter((n) => !this.wanted.includes(n));
    if (unwanted.length && !unwanted.some((n) => this.members.get(n)!.terminating)) this.sigterm(unwanted[unwanted.length - 1]!, null);
    for (const [name, m] of this.members) {
      if (!m.terminated) continue;
      this.pgs.get(name)!.stop();
      this.members.delete(name);
      this.api.putPod(null, name);
      if (!this.wanted.includes(name)) { this.trace(name, 'pod deleted (scaled down, volume kept)'); continue; }
      this.recreate.set(name, { at: this.T + 2_000, revision: (m as Member & { nextRevision?: string | null }).nextRevision ?? null });
      this.trace(name, 'pod deleted');
    }
    for (const [name, r] of this.recreate) {
      if (this.T < r.at) continue;
      this.recreate.delete(name);
      const old = this.api.pods.get(name);
      this.api.putPod({ name, label: 'unknown', status: null, revision: r.revision ?? old?.revision ?? 'r1', reinit: false } satisfies SimPod, name);
      this.spawn(name);
      this.trace(name, 'pod recreated');
    }
    this.stats.maxAbsent = Math.max(this.stats.maxAbsent, this.wanted.filter((n) => !this.members.has(n)).length);
  }

  private replicate(): void {
    for (const [name, r] of this.pgs) {
      if (r.state !== 'running' || !r.inRecovery || this.frozen(name)) continue;
      const src = r.following ? this.pgs.get(r.following) : undefined;
      const ok = !!src && (src.state === 'running' || src.state === 'stopping') && !src.inRecovery && !this.frozen(r.following!)
        && this.linkOk(name, r.following!) && src.systemId === r.systemId && r.prefixOf(src);
      r.streaming = ok;
      if (ok && r.wal.length < src!.wal.length) { r.wal.push(...src!.wal.slice(r.wal.length)); }
      if (ok) r.tl = src!.tl;
    }
  }

  private acks(): void {
    for (const [name, p] of this.pgs) {
      if (!p.pending.length || this.frozen(name) || !p.writable) continue;
      const thaw = this.members.get(name)?.thawedAt != null;
      while (p.pending.length) {
        const c = p.pending[0]!;
        if (p.sync.names.length) {
          const got = p.sync.names.filter((n) => { const q = this.pgs.get(n); return !!q && q.state === 'running' && q.inRecovery && q.streaming && q.following === name && q.wal.length >= c.idx; }).length;
          if (got < p.sync.count) break;
        }
        p.pending.shift();
        this.acked.set(c.id, name);
        this.stats.acked++;
        if (thaw) this.stats.thawAcked++;
      }
    }
  }

  private accepts(name: string): boolean { return !!this.pgs.get(name)?.writable && !this.frozen(name) && this.members.has(name); }
  /** Two clients: one routed like the read-write Service (the primary label, else any writable
   * member), one that keeps its open connection through a freeze (blocked while its server is
   * frozen, writing the moment it thaws) and reconnects only when the server refuses. */
  private client(): void {
    this.conn = this.write(this.conn, true);
    this.sticky = this.sticky && this.frozen(this.sticky) && this.pgs.get(this.sticky)!.writable ? this.sticky : this.write(this.sticky, false);
  }
  private sticky: string | null = null;
  private write(conn: string | null, routed: boolean): string | null {
    let t = conn && this.accepts(conn) ? conn : null;
    if (!t) {
      const ok = this.names.filter((n) => this.accepts(n) && !this.pgs.get(n)!.slotsFull);
      t = (routed ? ok.find((n) => this.api.pods.get(n)?.label === 'primary') : undefined) ?? ok[0] ?? null;
    }
    if (!t) return null;
    const p = this.pgs.get(t)!;
    const id = ++this.commitId;
    p.wal.push(id);
    p.pending.push({ id, idx: p.wal.length, at: this.T });
    return t;
  }

  // ---- invariants --------------------------------------------------------------------------------
  fail(inv: string, msg: string): never { throw new Violation(inv, msg, this.T); }

  private check(): void {
    const writers = this.names.filter((n) => this.pgs.get(n)!.writable && !this.frozen(n));
    if (writers.length > 1) {
      const settled = writers.filter((n) => this.members.get(n)?.thawedAt == null);
      if (settled.length > 1) this.fail('S1', `${writers.join(' and ')} are writable at once`);
      this.stats.thawOverlaps++;
    }
    // a thawed postgres that its autopilot has not seen yet is the thaw window, not a new primary
    const settledWriters = writers.filter((n) => this.members.get(n)?.thawedAt == null);
    for (const n of settledWriters) {
      if (this.writableBefore.has(n)) continue;
      const pg = this.pgs.get(n)!;
      if (this.settings.syncMode !== 'off') {
        const have = new Set(pg.wal);
        for (const [id, by] of this.acked) if (!have.has(id)) this.fail('S2', `${n} became writable without acknowledged commit ${id} (acknowledged by ${by})`);
      }
      if (n !== 'm0' || this.T > 0) this.stats.failovers++;
    }
    this.writableBefore = new Set(settledWriters);
    if (this.T >= this.quietAt && this.members.size === this.wanted.length && this.wanted.every((n) => this.members.has(n)) && !this.opts.noL1) {
      if (this.converged(writers)) { this.stats.l1Ms = this.T - this.quietAt; this.done = true; return; }
      if (this.T - this.quietAt > L1_BOUND_MS) this.fail('L1', `no single primary with every member streaming ${L1_BOUND_MS} ms after the faults stopped (writable: [${writers.join(', ')}], lease holder ${this.api.lease?.spec.holderIdentity ?? 'none'})`);
    }
  }

  private converged(writers: string[]): boolean {
    if (writers.length !== 1) return false;
    const p = writers[0]!;
    if (this.api.lease?.spec.holderIdentity !== p) return false;
    const excluded = this.opts.exclude ?? [];
    return this.wanted.every((n) => n === p || excluded.includes(n) || (() => { const q = this.pgs.get(n)!; return q.state === 'running' && q.inRecovery && q.streaming && q.following === p; })());
  }

  /** S3: a wipe must never destroy the last copy of an acknowledged commit the cluster still has on its history */
  wiping(name: string, how: string): void {
    this.stats.wipes++;
    this.trace(name, `WIPE (${how})`);
    const pg = this.pgs.get(name)!;
    const others = [...this.pgs.values()].filter((q) => q !== pg && q.data === 'valid' && q.systemId === pg.systemId);
    for (let i = 0; i < pg.wal.length; i++) {
      const id = pg.wal[i]!;
      if (!this.acked.has(id) || others.some((q) => q.wal[i] === id)) continue;
      const superseded = this.settings.syncMode === 'off' && others.some((q) => q.wal.length > i);
      if (!superseded) this.fail('S3', `${name} wipes its data (${how}) holding the only copy of acknowledged commit ${id}`);
    }
  }

  // ---- trace ---------------------------------------------------------------------------------------
  trace(name: string, msg: string): void {
    this.log.push([this.T, name, msg]);
    if (this.log.length > 4000) this.log.splice(0, 2000);
  }
  traceDecision(name: string, d: Decision): void {
    this.log.push([this.T, name, d]);
    if (this.log.length > 4000) this.log.splice(0, 2000);
  }
  traceText(last = 120): string {
    const text = (m: string | Decision) => (typeof m === 'string' ? m : m.actions.length ? `${m.reason} → [${m.actions.map((a) => a.type).join(', ')}]` : m.reason);
    const lines: string[] = [];
    const lastOf = new Map<string, string>();
    for (const [t, n, m] of this.log) {
      const s = text(m);
      // a member repeating an idle decision is shown once
      if (typeof m !== 'string' && !m.actions.length && lastOf.get(n) === s) continue;
      lastOf.set(n, s);
      lines.push(`${String(t).padStart(7)} ms  ${n}  ${s}`);
    }
    return lines.slice(-last).join('\n');
  }

  /** run to L1 (or its bound); throws a Violation */
  run(maxMs = Infinity): World {
    const end = Math.min(maxMs, this.quietAt + L1_BOUND_MS + 2 * STEP_MS);
    while (!this.done && this.T <= end) this.step();
    return this;
  }
}
