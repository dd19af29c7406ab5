// Failsafe mode over HTTP: a primary that cannot reach the Kubernetes API asks every member to
// confirm it; each answer is the core's (safety.ts answerFailsafe). Confirming members promise
// not to take the lease for a lease duration.
import { answerFailsafe } from '../core/safety.js';
import { maybeWritable } from '../core/memory.js';
import { membersFromPods } from './observe.js';
import { peerRequest } from './peers.js';
import { record, type State } from './state.js';

export async function sendFailsafe(st: State, peerApiUrl: string, release = false): Promise<boolean> {
  try {
    const r = await peerRequest(`${peerApiUrl}/failsafe`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${st.cfg.secrets.apiToken}` },
      body: JSON.stringify({ leader: st.cfg.podName, release }), timeoutMs: 700,
    });
    return r.status === 200;
  } catch {
    return false;
  }
}

/** Every member we know must confirm us; one silent or refusing member and the deadline stands. */
export async function failsafeRound(st: State): Promise<void> {
  const sent = st.now();
  // Every member that could take the lease: the pods listed now and those a healthy list lacked
  // only recently (a pod recreated while we are cut off keeps its name). One we cannot reach fails the round.
  const current = new Map(membersFromPods(st).map((m) => [m.name, m.apiUrl]));
  const names = [...new Set([...current.keys(), ...Object.keys(st.knownMembers)])].filter((n) => n !== st.cfg.podName).sort();
  const answers = await Promise.all(names.map((n) => {
    const url = current.get(n) ?? st.memberUrls.get(n);
    return url ? sendFailsafe(st, url) : Promise.resolve(false);
  }));
  const ok = answers.filter(Boolean).length;
  record(st, { type: 'failsafe_round', sentAtMs: sent, allConfirmed: ok === names.length });
  if (ok === names.length) st.log.warn('failsafe: the API is unreachable, every member confirmed us; staying primary', { members: names });
  else st.log.warn('failsafe: not every member confirmed us', { confirmed: ok, members: names.length });
}

/** Tell the members we demoted: they may take over now rather than a lease later. */
export function releaseFailsafe(st: State): void {
  if (!st.cfg.failsafe) return;
  void Promise.all(membersFromPods(st).map((m) => sendFailsafe(st, m.apiUrl, true)));
}

/** POST /failsafe from a primary: answer, and keep the promise in the core's memory. */
export function answer(st: State, leader: string, release: boolean): { status: number; message: string } {
  const pgFacts = st.lastPg;
  const writable = pgFacts ? maybeWritable({ pg: { running: pgFacts.running, inRecovery: pgFacts.inRecovery, serverState: null } as never }, st.memory) : false;
  const r = answerFailsafe(st.memory, { leader, release }, {
    self: st.cfg.podName, failsafe: st.cfg.failsafe, leaseHolder: st.lease?.spec.holderIdentity || null, writable, takeoverInFlight: st.takeoverInFlight,
  }, st.now());
  st.memory = r.memory;
  return { status: r.status, message: r.message };
}
