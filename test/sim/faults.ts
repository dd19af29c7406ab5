// Fault schedules: what can go wrong, when, to whom. Plain data, so that a failing schedule prints
// as a literal that replays the run (`replay({...})` in scenarios.test.ts takes it as it is).
import fc from 'fast-check';

export type FaultKind =
  | 'apiCut'        // member m cannot reach the API server (watch stalls, reads and writes time out)
  | 'linkCut'       // members m and n cannot reach each other (streaming, status probes, failsafe)
  | 'freeze'        // member m's whole pod stops (SIGSTOP): no tick, no watchdog, postgres serves nothing
  | 'crash'         // member m's postgres dies (the autopilot notices and restarts it)
  | 'unstartable'   // member m's postgres fails every start for dur
  | 'slots'         // every connection slot of m's postgres is taken: it answers no status query, stays writable
  | 'lostReplies'   // m's lease writes commit but the replies are lost (timeouts: inDoubt)
  | 'lostFailsafe'  // the answers to m's failsafe requests are lost (the promise was given)
  | 'slowWatch'     // m's watch delivers changes `delay` ms late
  | 'stall'         // m's tick is blocked on I/O for dur (its watchdog keeps running)
  | 'sigterm'       // m's pod is deleted (SIGTERM, hand-off if primary) and recreated
  | 'switchover'    // an operator asks for a switchover to m
  | 'slowCheckpoint'// m's shutdown checkpoint takes 6 s
  | 'rewindBroken'; // pg_rewind on m reaches its source and fails

export interface Fault { at: number; kind: FaultKind; m: number; n?: number; dur: number; delay?: number }

export interface Schedule {
  syncMode: 'off' | 'on' | 'strict';
  failsafe: boolean;
  faults: Fault[];
}

const KINDS: FaultKind[] = ['apiCut', 'linkCut', 'freeze', 'crash', 'unstartable', 'slots', 'lostReplies', 'lostFailsafe', 'slowWatch', 'stall', 'sigterm', 'switchover', 'slowCheckpoint', 'rewindBroken'];

export function faultArb(members: number, horizonMs: number): fc.Arbitrary<Fault> {
  return fc.record({
    at: fc.integer({ min: 0, max: horizonMs / 100 }).map((x) => x * 100),
    kind: fc.constantFrom(...KINDS),
    m: fc.integer({ min: 0, max: members - 1 }),
    n: fc.integer({ min: 0, max: members - 1 }),
    dur: fc.integer({ min: 1, max: 120 }).map((x) => x * 100),
    delay: fc.integer({ min: 1, max: 80 }).map((x) => x * 100),
  }).map((f) => {
    const out: Fault = { at: f.at, kind: f.kind, m: f.m, dur: f.dur };
    if (f.kind === 'linkCut') out.n = f.n === f.m ? (f.m + 1) % members : f.n;
    if (f.kind === 'slowWatch') out.delay = f.delay;
    return out;
  });
}

export function scheduleArb(members: number, horizonMs: number, maxFaults: number): fc.Arbitrary<Schedule> {
  return fc.record({
    syncMode: fc.constantFrom<Schedule['syncMode']>('off', 'on', 'strict'),
    failsafe: fc.boolean(),
    faults: fc.array(faultArb(members, horizonMs), { maxLength: maxFaults }),
  });
}
