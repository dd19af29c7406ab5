// Shared fixtures of the core's table tests: a 3-member cluster where m0 is the primary holding
// the lease, seen from any member, with the memory the old shell used to keep written as "ago".
import { decide as decideCore } from '../../scripts/core/decide.js';
import { initialMemory } from '../../scripts/core/memory.js';
import type { Observation, MemberView, LeaseView, PgView, Memory } from '../../scripts/core/types.js';

export const settings = { leaseMs: 6000, renewMs: 2000, renewDeadlineMs: 4500, maxLagBytes: 16 * 1024 * 1024, syncMode: 'off' as const, syncCount: 1, nofailover: false, failsafe: false };

export function member(name: string, over: Partial<MemberView> = {}): MemberView {
  return {
    name, host: `10.0.0.${name.slice(-1)}`, port: 5432, apiUrl: `http://10.0.0.${name.slice(-1)}:8008`, role: 'replica', healthy: true,
    inRecovery: true, streaming: true, timeline: 1, lsn: 1000n, nofailover: false, fresh: true, labelledPrimary: false, reinitRequested: false, revision: null, systemId: null, leaving: false, ready: null, ...over,
  };
}
export const primaryMember = (name: string, over: Partial<MemberView> = {}) => member(name, { role: 'primary', inRecovery: false, labelledPrimary: true, streaming: false, ...over });

export function lease(over: Partial<LeaseView> = {}): LeaseView {
  return { holder: 'm0', resourceVersion: '1', unchangedForMs: 500, durationMs: null, switchoverTo: null, paused: false, failovers: 0, timeline: 1, syncStandbys: null, syncCount: 1, systemId: null, problems: [], ...over };
}
export const pgPrimary: PgView = { running: true, serverState: 'ready', accepting: true, inRecovery: false, timeline: 1, lsn: 2000n, streaming: false, following: null, syncNames: [], syncCount: 1, streamingReplicas: ['m1', 'm2'], replicaFlush: [{ name: 'm1', lsn: 2000n }, { name: 'm2', lsn: 2000n }], slots: ['m1', 'm2'], systemId: null };
export const pgReplica: PgView = { running: true, serverState: 'standby', accepting: true, inRecovery: true, timeline: 1, lsn: 1000n, streaming: true, following: 'm0', syncNames: [], syncCount: 1, streamingReplicas: [], replicaFlush: [], slots: null, systemId: null };
export const pgDown: PgView = { running: false, serverState: null, accepting: false, inRecovery: null, timeline: null, lsn: null, streaming: false, following: null, syncNames: [], syncCount: 1, streamingReplicas: [], replicaFlush: [], slots: null, systemId: null };

export const NOW = 100_000;
/** What used to be observed and now lives in the core's memory, written as "ago" for the rows. */
export interface Remembered { renewedAgoMs?: number | null; failsafeAckAgoMs?: number | null; primaryWithoutLeaseMs?: number; rewindFailures?: number; notStreamingForMs?: number; mem?: Partial<Memory> }
export type Over = Omit<Partial<Observation>, 'pg'> & Remembered & { pg?: PgView & { notStreamingForMs?: number } };
export interface Case { o: Observation; m: Memory }

/** m0 is the primary holding the lease; we are `self`. */
export function obs(self: string, over: Over = {}): Case {
  const isPrimary = self === 'm0';
  const all = [primaryMember('m0'), member('m1'), member('m2')];
  const { renewedAgoMs, failsafeAckAgoMs, primaryWithoutLeaseMs, rewindFailures, notStreamingForMs: _n, mem, pg: pgOver, ...rest } = over;
  const { notStreamingForMs, ...pg } = (pgOver ?? (isPrimary ? pgPrimary : pgReplica)) as PgView & { notStreamingForMs?: number };
  const o: Observation = {
    nowMs: NOW, self, settings, dataDir: 'valid', controlRole: 'unknown',
    pg,
    lease: lease(), init: { holder: 'm0', initialized: true, unchangedForMs: 0 },
    members: all.filter((m) => m.name !== self),
    terminating: false, reinitRequested: false, revision: null, updateRevision: null, expectedMembers: null,
    ...rest,
  };
  const renewed = renewedAgoMs === undefined ? (isPrimary ? 500 : null) : renewedAgoMs;
  const m: Memory = {
    ...initialMemory(),
    confirmedAtMs: renewed === null ? null : NOW - renewed,
    lastWrittenRv: renewed === null ? null : o.lease?.resourceVersion ?? null,
    lastKnownWritable: pg.running ? pg.inRecovery === false : false,
    failsafePromise: failsafeAckAgoMs == null ? null : { to: 'm0', atMs: NOW - failsafeAckAgoMs },
    writableWithoutLeaseSinceMs: primaryWithoutLeaseMs ? NOW - primaryWithoutLeaseMs : null,
    rewindFailures: rewindFailures ?? 0,
    notStreamingSinceMs: notStreamingForMs ? NOW - notStreamingForMs : null,
    ...mem,
  };
  return { o, m };
}
export const decide = (c: Case) => decideCore(c.o, c.m);
export const view = (self: string, over: Over = {}) => obs(self, over).o;

