// Simulated Kubernetes API server: one Lease (resourceVersion, conditional writes: 409 on a stale
// version, create fails when it exists) and the member pods (role label, status annotation,
// revision). Every change is queued to each member's watch with that member's delivery delay;
// reachability (partitions, lost replies) is decided by the world, not here.
import type { RawLease } from '../../scripts/core/wire.js';
import type { MemberView, Role } from '../../scripts/core/types.js';

/** The core's RawLease as the server stores it: every field present. */
export interface SimLease extends RawLease {
  metadata: Required<RawLease['metadata']>;
  spec: Required<RawLease['spec']>;
}

/** What a member publishes about itself (the status annotation), already validated: the fields
 *  of the core's MemberView that come from it. */
export type Status = Pick<MemberView, 'role' | 'healthy' | 'inRecovery' | 'streaming' | 'timeline' | 'lsn' | 'systemId'>;

export interface SimPod {
  name: string;
  label: Role;
  status: Status | null;
  revision: string | null;
  reinit: boolean;
  /** the pod is being deleted (metadata.deletionTimestamp): its member is on its way out */
  deleting?: boolean;
}

export type WriteResult = { ok: true; lease: SimLease } | { ok: false; conflict: true };

export interface Snapshot { lease: SimLease | null; pods: ReadonlyMap<string, SimPod> }

export class Api {
  lease: SimLease | null = null;
  rv = 100;
  pods = new Map<string, SimPod>();
  /** the StatefulSet's update revision and desired replicas */
  updateRevision: string | null = null;
  replicas: number;
  /** bumped on every change; members' watches deliver snapshots */
  version = 0;
  onChange: (s: Snapshot) => void = () => undefined;

  constructor(replicas: number) { this.replicas = replicas; }

  snapshot(): Snapshot { return { lease: this.lease, pods: new Map(this.pods) }; }
  private changed(): void { this.version++; this.onChange(this.snapshot()); }

  /** PUT (ifRv = the body's resourceVersion) or POST (ifRv null): the server's conditional check */
  writeLease(body: SimLease, ifRv: string | null): WriteResult {
    if (ifRv === null ? this.lease !== null : this.lease === null || this.lease.metadata.resourceVersion !== ifRv) return { ok: false, conflict: true };
    this.lease = { metadata: { resourceVersion: String(++this.rv), annotations: { ...body.metadata.annotations } }, spec: { ...body.spec } };
    this.changed();
    return { ok: true, lease: this.lease };
  }

  /** an operator's edit (switchover request, a hand edit): unconditional */
  editLease(f: (l: SimLease) => void): void {
    if (!this.lease) return;
    const l: SimLease = { metadata: { resourceVersion: String(++this.rv), annotations: { ...this.lease.metadata.annotations } }, spec: { ...this.lease.spec } };
    f(l);
    this.lease = l;
    this.changed();
  }

  patchPod(name: string, f: (p: SimPod) => SimPod): void {
    const p = this.pods.get(name);
    if (!p) return;
    const n = f(p);
    if (JSON.stringify(n, big) === JSON.stringify(p, big)) return;
    this.pods.set(name, n);
    this.changed();
  }

  putPod(p: SimPod | null, name: string): void {
    if (p) this.pods.set(name, p); else this.pods.delete(name);
    this.changed();
  }
}

const big = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);
