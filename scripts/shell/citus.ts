// Citus, the I/O side of scripts/core/citus.ts: read each worker group's Lease and its holder's
// address from the Kubernetes API, read the coordinator's catalog, run one decided step.
//
// Connections: `c` is a superuser session on the APPLICATION database (Citus lives per database).
// Nodes reach each other over TCP as the superuser, authenticated from pg_dist_authinfo (Citus'
// own password table, readable by superusers only, NOT propagated between nodes: every group's
// primary writes its own row, see ensureCitusNode).
import type pg from 'pg';
import type { CitusAction, CitusGroupView, DistNode } from '../core/citus.js';
import { parseLease, parseMemberStatus, type RawLease } from '../core/wire.js';
import type { Kube, Pod } from './kube.js';
import { STATUS_ANNOTATION } from './state.js';

/** On a worker primary's pod while it hands its group over (the member it hands to). */
export const CITUS_HANDOFF_ANNOTATION = 'pg-autopilot.io/citus-handoff';
/** On the coordinator primary's pod while it holds a worker group's queries (the group's number). */
export const CITUS_HOLDING_ANNOTATION = 'pg-autopilot.io/citus-holding';

/** A worker group as the coordinator finds it: its number, its Lease and how to select its pods. */
export interface WorkerGroupSource {
  groupId: number;
  name: string;
  kube: Kube;
  leaseName: string;
  podSelector: string;
}

/**
 * Lease expiry by OUR monotonic clock: how long since we first saw the current resourceVersion of
 * each group's Lease (never the holder's timestamps).
 */
export class LeaseClock {
  private readonly seen = new Map<string, { rv: string; atMs: number }>();
  unchangedForMs(key: string, rv: string, nowMs: number): number {
    const s = this.seen.get(key);
    if (!s || s.rv !== rv) { this.seen.set(key, { rv, atMs: nowMs }); return 0; }
    return nowMs - s.atMs;
  }
}

/** A worker group's view from its Lease and its member pods, as last read (or as informers hold them). */
export function groupView(base: { groupId: number; name: string }, key: string, raw: RawLease | null | undefined, pods: Pod[] | null, clock: LeaseClock, nowMs: number): CitusGroupView {
  if (raw === undefined) return { ...base, lease: undefined, holderAddress: null };
  if (raw === null) return { ...base, lease: null, holderAddress: null };
  const v = parseLease(raw, clock.unchangedForMs(key, raw.metadata.resourceVersion ?? '', nowMs));
  const lease = { holder: v.holder, unchangedForMs: v.unchangedForMs, durationMs: v.durationMs, problems: v.problems, switchoverTo: v.switchoverTo };
  if (!v.holder || !pods) return { ...base, lease, holderAddress: null };
  let holderAddress: CitusGroupView['holderAddress'] = null;
  let holderPrimary = false;
  let holderHandingOff = false;
  try {
    const pod = pods.find((p) => p.metadata.name === v.holder);
    holderHandingOff = !!pod?.metadata.annotations?.[CITUS_HANDOFF_ANNOTATION];
    const text = pod?.metadata.annotations?.[STATUS_ANNOTATION];
    const st = text ? parseMemberStatus(JSON.parse(text)) : null;
    if (st && st.name === v.holder) { holderAddress = { host: st.host, port: st.port }; holderPrimary = st.role === 'primary' && st.inRecovery === false; }
  } catch {
    holderAddress = null;
  }
  return { ...base, lease, holderAddress, holderPrimary, holderHandingOff };
}

export async function observeWorkerGroup(src: WorkerGroupSource, clock: LeaseClock, nowMs: number, timeoutMs = 2_000): Promise<CitusGroupView> {
  const base = { groupId: src.groupId, name: src.name };
  let raw: RawLease | null;
  try {
    raw = (await src.kube.getLease(src.leaseName, timeoutMs)) as RawLease | null;
  } catch {
    return { ...base, lease: undefined, holderAddress: null };
  }
  let pods: Pod[] | null = null;
  if (raw?.spec.holderIdentity) pods = await src.kube.listPods(src.podSelector, timeoutMs).then((r) => r.items, () => null);
  return groupView(base, `${src.kube.namespace}/${src.leaseName}`, raw, pods, clock, nowMs);
}

export async function readCitusCatalog(c: pg.Client): Promise<{ extension: boolean | null; nodes: DistNode[] | null }> {
  let extension: boolean | null = null;
  try {
    const r = await c.query<{ n: string }>("SELECT count(*) AS n FROM pg_extension WHERE extname = 'citus'");
    extension = Number(r.rows[0]!.n) > 0;
  } catch {
    return { extension: null, nodes: null };
  }
  if (!extension) return { extension, nodes: null };
  try {
    const r = await c.query<{ nodeid: number; groupid: number; nodename: string; nodeport: number; noderole: string; isactive: boolean }>(
      'SELECT nodeid, groupid, nodename, nodeport, noderole::text AS noderole, isactive FROM pg_dist_node ORDER BY nodeid');
    const role = (s: string): DistNode['role'] => (s === 'primary' || s === 'secondary' ? s : 'unavailable');
    return { extension, nodes: r.rows.map((n) => ({ nodeId: n.nodeid, groupId: n.groupid, host: n.nodename, port: n.nodeport, role: role(n.noderole), isActive: n.isactive })) };
  } catch {
    return { extension, nodes: null };
  }
}

/** A libpq conninfo value, quoted. */
const conninfoValue = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/**
 * On every Citus group's primary (coordinator and workers): the extension exists in the
 * application database, and this node authenticates to the others as `superuser` with
 * `password` (pg_dist_authinfo, node 0 = every node). Idempotent.
 */
export async function ensureCitusNode(c: pg.Client, superuser: string, password: string): Promise<void> {
  await c.query('CREATE EXTENSION IF NOT EXISTS citus');
  const authinfo = `password=${conninfoValue(password)}`;
  const r = await c.query<{ authinfo: string }>('SELECT authinfo FROM pg_dist_authinfo WHERE nodeid = 0 AND rolename = $1', [superuser]);
  if (r.rows[0]?.authinfo === authinfo) return;
  await c.query('BEGIN');
  try {
    await c.query('DELETE FROM pg_dist_authinfo WHERE nodeid = 0 AND rolename = $1', [superuser]);
    await c.query('INSERT INTO pg_dist_authinfo (nodeid, rolename, authinfo) VALUES (0, $1, $2)', [superuser, authinfo]);
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/**
 * Run one decided step on the coordinator. A re-pointing forces its way after `lockCooldownMs`:
 * transactions still holding locks on the old primary's shards (which is gone) are cancelled then,
 * as Citus' own failover tooling does, instead of blocking the repair behind them.
 */
export async function applyCitusAction(c: pg.Client, a: CitusAction, o: { superuser: string; password: string; lockCooldownMs?: number }): Promise<void> {
  switch (a.type) {
    case 'create_extension': return ensureCitusNode(c, o.superuser, o.password);
    case 'set_coordinator': await c.query('SELECT citus_set_coordinator_host($1, $2)', [a.host, a.port]); return;
    case 'add_node': await c.query('SELECT citus_add_node($1, $2, groupid => $3)', [a.host, a.port, a.groupId]); return;
    case 'update_node': await c.query('SELECT citus_update_node($1, $2, $3, true, $4)', [a.nodeId, a.host, a.port, o.lockCooldownMs ?? 10_000]); return;
  }
}
