// Writes to the leader Lease. Every write is conditional on the resourceVersion the decision saw
// (carried by the action); the result goes to the core's memory as an Outcome.
import { LEASE_ANNOTATIONS as A } from '../core/wire.js';
import { KubeError, type Lease } from './kube.js';
import { errMsg, record, setLease, type State } from './state.js';

/** Lease times are MicroTime: RFC 3339 with exactly six fractional digits. */
export const microTime = (d = new Date()) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export interface LeaseChange {
  holder: string | null;
  transition: boolean;
  annotations?: Record<string, string | null>;
}

/** The body of a write based on `base` (the version the decision saw: the write is conditional on it). */
export function leaseBody(st: State, base: Lease | null, changes: LeaseChange, ifResourceVersion: string | null): Lease {
  const t = microTime();
  const annotations: Record<string, string> = { ...(base?.metadata.annotations ?? {}) };
  for (const [k, v] of Object.entries(changes.annotations ?? {})) { if (v === null) delete annotations[k]; else annotations[k] = v; }
  return {
    metadata: { name: st.leaseName, ...(ifResourceVersion !== null ? { resourceVersion: ifResourceVersion } : {}), annotations, ...(base?.metadata.labels ? { labels: base.metadata.labels } : {}) },
    spec: {
      holderIdentity: changes.holder,
      leaseDurationSeconds: Math.ceil(st.cfg.leaseMs / 1000),
      acquireTime: changes.transition || !base?.spec.acquireTime ? t : base.spec.acquireTime,
      renewTime: t,
      leaseTransitions: (base?.spec.leaseTransitions ?? 0) + (changes.transition && base ? 1 : 0),
    },
  };
}

/** The lease object the decision saw, when our cache still holds that very version. */
export function leaseAt(st: State, resourceVersion: string | null): Lease | null | undefined {
  const l = st.lease;
  if (resourceVersion === null) return l === null ? null : undefined;
  return l && l.metadata.resourceVersion === resourceVersion ? l : undefined;
}

/**
 * Write the lease (create when `ifResourceVersion` is null). True when the server took it. A
 * conflict means someone else wrote first: re-read and let the next tick decide. A timeout means
 * the write may or may not have committed: the outcome says so (`inDoubt`).
 */
export async function writeLease(st: State, base: Lease | null, change: LeaseChange, ifResourceVersion: string | null, takeover = false): Promise<boolean> {
  const { kube, log, cfg } = st;
  const sent = st.now();
  const c = st.memory.confirmedAtMs;
  // A writable primary never waits past its own deadline for an answer; any other write (confirming
  // a lease that names us before starting or promoting, a take-over) gets the whole budget: under a
  // slow API server a 200 ms one never succeeds.
  const racing = c !== null && st.lastPg?.inRecovery === false;
  const timeout = racing ? Math.max(200, Math.min(1_500, c + cfg.renewDeadlineMs - sent)) : 1_500;
  const body = leaseBody(st, base, change, ifResourceVersion);
  try {
    const got = ifResourceVersion === null ? await kube.createLease(body, timeout) : await kube.updateLease(body, timeout);
    setLease(st, got);
    record(st, { type: 'lease_written', sentAtMs: sent, holder: got.spec.holderIdentity ?? null, resourceVersion: got.metadata.resourceVersion ?? '' });
    return true;
  } catch (e) {
    // A 4xx answer is definite; a timeout, a broken connection or a 5xx may hide a committed write.
    const definite = e instanceof KubeError && e.status >= 400 && e.status < 500;
    record(st, { type: 'lease_write_failed', takeover, ifResourceVersion, inDoubt: !definite });
    if (e instanceof KubeError && (e.conflict || e.notFound)) {
      log.info('lease changed under us; re-reading', { status: e.status });
      kube.resync();
      try { setLease(st, await kube.getLease(st.leaseName, 1_000)); } catch { /* next tick */ }
      return false;
    }
    log.warn('lease write failed', { error: errMsg(e), inDoubt: !definite });
    // The watch may be as dead as this request: read directly until it re-lists.
    st.leaseInformerOk = false;
    kube.resync();
    return false;
  }
}

export { A as LEASE_ANNOTATIONS };
