// A Citus worker group's primary handing over (switchover, SIGTERM, rolling update): it says so on
// its pod, and stops postgres once the coordinator's primary says (on its pod) that it holds the
// group's distributed queries — so that clients of the coordinator wait for the new primary
// instead of failing on the stopping one — or when the hand-off's budget is spent (core:
// handoffMayStop). Runs alongside the hand-off's checkpoint, from the same budget.
import { handoffMayStop } from '../core/citus.js';
import { CITUS_HANDOFF_ANNOTATION, CITUS_HOLDING_ANNOTATION } from './citus.js';
import { ROLE_LABEL, errMsg, type State } from './state.js';

const POLL_MS = 25;

/** Announce the hand-off to `to` and wait (≤ budgetMs) for the coordinator's hold. No-op unless a Citus worker with a coordinator configured. */
export async function awaitCoordinatorHold(st: State, to: string, budgetMs: number): Promise<void> {
  const c = st.cfg.citus;
  const kube = st.citusCoordinatorKube;
  if (!c || c.role !== 'worker' || !c.coordinator || !kube || budgetMs <= 0) return;
  const t0 = st.now();
  try {
    await st.kube.patchPod(st.cfg.podName, { annotations: { [CITUS_HANDOFF_ANNOTATION]: to } }, Math.min(1_000, budgetMs));
  } catch (e) {
    st.log.warn('hand-off: could not tell the Citus coordinator (our pod annotation); going on without its hold', { error: errMsg(e) });
    return;
  }
  for (;;) {
    let held = false;
    try {
      const pods = await kube.listPods(c.coordinator.selector, 1_000);
      held = pods.items.some((p) => p.metadata.labels?.[ROLE_LABEL] === 'primary' && p.metadata.annotations?.[CITUS_HOLDING_ANNOTATION] === String(c.group));
    } catch { /* unknown: keep waiting within the budget */ }
    const d = handoffMayStop({ held, waitedMs: st.now() - t0, budgetMs });
    if (d.stop) { st.log[held ? 'info' : 'warn'](`hand-off: ${d.reason}`, { to, ms: st.now() - t0 }); return; }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** The hand-off is over (given or aborted): the announcement comes off, so the coordinator releases. */
export function endHandoffAnnouncement(st: State): void {
  const c = st.cfg.citus;
  if (!c || c.role !== 'worker' || !c.coordinator) return;
  void st.kube.patchPod(st.cfg.podName, { annotations: { [CITUS_HANDOFF_ANNOTATION]: null } }, 2_000)
    .catch((e: unknown) => st.log.warn('hand-off: could not take the Citus hand-off annotation off our pod', { error: errMsg(e) }));
}
