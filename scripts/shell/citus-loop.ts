// Citus in the autopilot's loop (citus.json, core/citus-config.ts). On every group's primary: the
// extension and this node's pg_dist_authinfo row (ensureCitusNode), once per term. On the
// coordinator group's primary, in addition: the registry step (core/citus.ts decideCitus), run
// after a tick and at once when a worker group's Lease or pods change (informers, one per worker
// group), on a connection of its own and never awaited by the tick — lease renewal never waits on
// Citus. Each pass runs decided steps until the core says nothing is left (at most 10).
import type pg from 'pg';
import type { CitusConfig, CitusWorkerSource } from '../core/citus-config.js';
import { decideCitus, decideHold, rebalanceMode, type CitusDecision, type Hold, type ShardTransferMode } from '../core/citus.js';
import type { Config } from '../core/config.js';
import type { RawLease } from '../core/wire.js';
import { applyCitusAction, CITUS_HANDOFF_ANNOTATION, CITUS_HOLDING_ANNOTATION, ensureCitusNode, groupView, LeaseClock, readCitusCatalog } from './citus.js';
import type { Kube, Lease, Pod } from './kube.js';
import type { Logger } from './log.js';
import { errMsg } from './state.js';

export interface CitusStatus {
  role: CitusConfig['role'];
  group: number;
  /** the last step taken (null: none yet this term) and when */
  lastAction: { type: string; reason: string; at: string } | null;
  /** the core's reason of the last pass (coordinator primary) */
  reason: string | null;
  /** worker groups left waiting, each with why */
  waiting: string[];
  /** this node's extension and authentication row are in place this term */
  nodeReady: boolean;
  /** a worker group's queries held for its switchover now, and the last hold */
  holding: { group: number; forMs: number } | null;
  lastHold: { group: number; ms: number; moved: boolean; at: string } | null;
  lastError: { at: string; message: string } | null;
}

export interface CitusSync {
  /** start the worker groups' informers (coordinator group only); returns the stop function */
  start(): () => void;
  /** after each tick: primary = this member holds the lease and postgres accepts writes */
  afterTick(primary: boolean, now: number): void;
  status(): CitusStatus;
  metrics(): string[];
  /** resolves when the pass in flight (if any) ended */
  idle(): Promise<void>;
  /** `autopilot citus rebalance`: start Citus' background rebalance (start) or read its state;
   *  on the coordinator group's primary only — never automatic */
  rebalance(start: boolean, mode?: ShardTransferMode | null): Promise<{ status: number; body: unknown }>;
}

interface GroupCache { src: CitusWorkerSource; lease: Lease | null | undefined; leaseOk: boolean; pods: Pod[] | null; podsOk: boolean }

const PERIODIC_MS = 5_000;

export function createCitusSync(cfg: Config, c: CitusConfig, log0: Logger, kube: Kube, kubeFor: (ns: string) => Kube, now: () => number): CitusSync {
  const log = log0.child({ component: 'citus' });
  const groups: GroupCache[] = c.workers.map((src) => ({ src, lease: undefined, leaseOk: false, pods: null, podsOk: false }));
  const clock = new LeaseClock();
  let primary = false;
  let nodeReady = false;
  let running: Promise<void> | null = null;
  let again = false;
  let lastPassAt = -Infinity;
  let lastDecision: CitusDecision | null = null;
  let lastAction: CitusStatus['lastAction'] = null;
  let lastError: CitusStatus['lastError'] = null;
  let lastWarned = '';
  let changes = 0, failures = 0;
  let client: pg.Client | null = null;
  /** a worker group's queries held for its switchover: the transaction holding Citus' lock, on its own connection */
  let hold: { h: Omit<Hold, 'forMs'>; since: number; cl: pg.Client } | null = null;
  let lastHold: { group: number; ms: number; moved: boolean; at: string } | null = null;
  const spent = new Set<number>();
  const event = (reason: string, message: string, type: 'Normal' | 'Warning' = 'Normal') => void kube.event('Pod', cfg.podName, reason, message.slice(0, 1000), type);

  async function newClient(name: string): Promise<pg.Client> {
    // loaded here: main.ts loads pg with the global Response hidden (see roles.ts)
    const { default: PG } = await import('pg');
    const cl = new PG.Client({ host: cfg.runDir, port: cfg.pgPort, user: cfg.superuser, database: cfg.appDatabase, connectionTimeoutMillis: 3_000, statement_timeout: 30_000, query_timeout: 35_000, application_name: name });
    cl.on('error', () => { if (client === cl) client = null; });
    await cl.connect();
    return cl;
  }
  async function connect(): Promise<pg.Client> {
    client ??= await newClient('pg-autopilot-citus');
    return client;
  }
  /** the hold, said on our pod: a worker primary handing over waits for it before it stops postgres */
  const sayHolding = (group: number | null) => kube.patchPod(cfg.podName, { annotations: { [CITUS_HOLDING_ANNOTATION]: group === null ? null : String(group) } }, 2_000)
    .catch((e: unknown) => log.warn('citus: could not say the hold on our pod', { error: errMsg(e) }));
  const endHold = () => { const x = hold; hold = null; if (x) { void x.cl.end().catch(() => undefined); void sayHolding(null); } };
  const drop = () => { const cl = client; client = null; void cl?.end().catch(() => undefined); endHold(); };

  /** The switchover hold (core decideHold): 'held' while a group's queries are held (no registry step meanwhile). */
  async function holdStep(cat: Awaited<ReturnType<typeof readCitusCatalog>>): Promise<'held' | 'released' | 'none'> {
    const vs = views(now());
    for (const g of [...spent]) if (!vs.find((v) => v.groupId === g)?.lease?.switchoverTo) spent.delete(g);
    const d = decideHold({ leaseMs: cfg.leaseMs, coordinatorPrimary: primary, nodes: cat.nodes, workers: vs, holding: hold ? { ...hold.h, forMs: now() - hold.since } : null, maxHoldMs: c.switchoverHoldMs, spent: [...spent] });
    if (d.type === 'none') return 'none';
    if (d.type === 'keep') return 'held';
    if (d.type === 'hold') {
      const cl = await newClient('pg-autopilot-citus-hold');
      const since = now();
      try {
        await cl.query('BEGIN');
        // Citus' own fencing lock on every shard of the group: distributed queries touching it wait.
        // It waits for transactions holding those shards first: bounded, so that a long one cannot
        // keep the registry (which waits for this pass) from other groups' failovers for long.
        await cl.query("SET LOCAL statement_timeout = '5s'");
        await cl.query('SELECT citus_pause_node_within_txn($1, false, $2)', [d.nodeId, c.lockCooldownMs]);
        await cl.query("SET LOCAL statement_timeout = '30s'");
      } catch (e) {
        void cl.end().catch(() => undefined);
        spent.add(d.groupId);
        throw new Error(`holding group ${d.groupId}'s queries for its switchover failed: ${errMsg(e)}`);
      }
      hold = { h: { groupId: d.groupId, nodeId: d.nodeId, from: d.from }, since, cl };
      await sayHolding(d.groupId);
      log.info(`citus: ${d.reason}`, { group: d.groupId, lockMs: now() - since });
      event('CitusHold', d.reason);
      return 'held';
    }
    const x = hold!;
    hold = null;
    let moved = false;
    try {
      if (d.to) { await x.cl.query('SELECT citus_update_node($1, $2, $3)', [x.h.nodeId, d.to.host, d.to.port]); moved = true; }
      await x.cl.query('COMMIT');
      if (moved) changes++;
    } catch (e) {
      moved = false;
      log.warn('citus: ending the hold failed (the transaction is rolled back; the registry step re-points the group if needed)', { error: errMsg(e) });
    } finally {
      void x.cl.end().catch(() => undefined);
      void sayHolding(null);
    }
    if (!moved) spent.add(x.h.groupId);
    lastHold = { group: x.h.groupId, ms: now() - x.since, moved, at: new Date().toISOString() };
    if (moved) lastAction = { type: 'update_node', reason: d.reason, at: lastHold.at };
    log.info(`citus: ${d.reason}`, { group: x.h.groupId, heldMs: lastHold.ms, moved });
    event(moved ? 'CitusRegistry' : 'CitusHoldReleased', d.reason, moved ? 'Normal' : 'Warning');
    return 'released';
  }

  function views(t: number) {
    return groups.map((g) => groupView({ groupId: g.src.group, name: `${g.src.namespace}/${g.src.lease}` }, `${g.src.namespace}/${g.src.lease}`,
      g.leaseOk ? (g.lease as RawLease | null | undefined) : undefined, g.podsOk ? g.pods : null, clock, t));
  }

  async function pass(): Promise<void> {
    const cl = await connect();
    if (!nodeReady) {
      await ensureCitusNode(cl, cfg.superuser, cfg.secrets.superuserPassword);
      nodeReady = true;
      log.info('citus: this node is ready (extension, node-to-node authentication)', { role: c.role, group: c.group });
    }
    if (c.role !== 'coordinator') return;
    for (let i = 0; i < 10; i++) {
      let cat = await readCitusCatalog(cl);
      const h = await holdStep(cat);
      if (h === 'held') return;
      if (h === 'released') cat = await readCitusCatalog(cl); // the hold's commit changed pg_dist_node
      if (!primary) return;
      const d = decideCitus({ leaseMs: cfg.leaseMs, coordinatorPrimary: primary, self: { host: cfg.podIp, port: cfg.pgPort }, ...cat, workers: views(now()) });
      if (d.reason !== lastDecision?.reason) log[d.action ? 'info' : 'debug']('citus: decision', { reason: d.reason, action: d.action?.type ?? null, waiting: d.waiting });
      const waitKey = d.waiting.join('\n');
      if (waitKey !== lastWarned) { lastWarned = waitKey; for (const w of d.waiting) log.warn('citus: group waiting', { why: w }); }
      lastDecision = d;
      if (!d.action) return;
      const t0 = now();
      await applyCitusAction(cl, d.action, { superuser: cfg.superuser, password: cfg.secrets.superuserPassword, lockCooldownMs: c.lockCooldownMs });
      changes++;
      lastAction = { type: d.action.type, reason: d.reason, at: new Date().toISOString() };
      log.info(`citus: ${d.reason}`, { action: d.action.type, ms: now() - t0 });
      event('CitusRegistry', d.reason);
    }
    throw new Error(`no fixed point after 10 registry steps (last: ${lastDecision?.reason ?? 'none'})`);
  }

  function run(t: number): void {
    if (running) { again = true; return; }
    lastPassAt = t;
    running = pass()
      .then(() => { lastError = null; })
      .catch((e: unknown) => {
        failures++;
        const m = errMsg(e);
        if (lastError?.message !== m) { log.warn('citus: pass failed; retried on the next tick', { error: m }); event('CitusRegistryFailed', m, 'Warning'); }
        lastError = { at: new Date().toISOString(), message: m };
        nodeReady = nodeReady && !/connect|terminat|closed/i.test(m);
        drop();
      })
      .finally(() => {
        running = null;
        if (again && primary) { again = false; run(now()); }
      });
  }

  const changed = () => { if (primary && c.role === 'coordinator') run(now()); };

  return {
    start() {
      const stops: (() => void)[] = [];
      for (const g of groups) {
        const k = g.src.namespace === kube.namespace ? kube : kubeFor(g.src.namespace);
        stops.push(k.informLease(g.src.lease, (l) => { g.lease = l; g.leaseOk = true; changed(); }, (ok) => { g.leaseOk = ok && g.lease !== undefined; }));
        stops.push(k.informPods(g.src.selector, (p) => { g.pods = [...p.values()]; g.podsOk = true; changed(); }, (ok) => { g.podsOk = ok && g.pods !== null; }));
      }
      return () => { for (const s of stops) s(); drop(); };
    },
    afterTick(isPrimary, t) {
      if (!isPrimary) {
        if (primary) { log.info('citus: not the primary any more: registry and node duties stop (a hold is released)'); drop(); }
        primary = false; nodeReady = false; lastAction = null;
        return;
      }
      const became = !primary;
      primary = true;
      // a hand-off announcement left on our pod by a process that died mid-hand-off: not true any more
      if (became && c.role === 'worker' && c.coordinator) void kube.patchPod(cfg.podName, { annotations: { [CITUS_HANDOFF_ANNOTATION]: null } }, 2_000).catch(() => undefined);
      // a failed pass is retried on the next tick; a healthy one every few seconds (drift by hand)
      if (became || !nodeReady || lastError !== null || hold !== null || (c.role === 'coordinator' && t - lastPassAt >= PERIODIC_MS)) run(t);
    },
    status: () => ({
      role: c.role, group: c.group, lastAction, reason: lastDecision?.reason ?? null, waiting: lastDecision?.waiting ?? [], nodeReady, lastError,
      holding: hold ? { group: hold.h.groupId, forMs: now() - hold.since } : null, lastHold,
    }),
    metrics: () => [
      '# HELP pga_citus_node_ready 1 when this primary\'s Citus extension and node-to-node authentication are in place.', '# TYPE pga_citus_node_ready gauge',
      `pga_citus_node_ready{group="${c.group}"} ${primary && nodeReady ? 1 : 0}`,
      ...(c.role === 'coordinator' ? [
        '# HELP pga_citus_waiting_groups Worker groups the coordinator primary leaves alone now (no valid Lease, unknown primary, conflicting rows; /status says why).', '# TYPE pga_citus_waiting_groups gauge',
        `pga_citus_waiting_groups ${primary ? lastDecision?.waiting.length ?? 0 : 0}`,
        '# HELP pga_citus_registry_in_step 1 when pg_dist_node matched every worker group\'s Lease at the last pass (coordinator primary).', '# TYPE pga_citus_registry_in_step gauge',
        `pga_citus_registry_in_step ${primary && lastDecision && !lastDecision.action && lastDecision.waiting.length === 0 && lastError === null ? 1 : 0}`,
        '# HELP pga_citus_registry_changes_total pg_dist_node changes made by this member.', '# TYPE pga_citus_registry_changes_total counter',
        `pga_citus_registry_changes_total ${changes}`,
        '# HELP pga_citus_registry_failures_total Registry passes that failed on this member.', '# TYPE pga_citus_registry_failures_total counter',
        `pga_citus_registry_failures_total ${failures}`,
        '# HELP pga_citus_holding 1 while the coordinator holds a worker group\'s distributed queries for its switchover.', '# TYPE pga_citus_holding gauge',
        `pga_citus_holding ${hold ? 1 : 0}`,
      ] : []),
    ],
    idle: () => running ?? Promise.resolve(),
    async rebalance(start, asked = null) {
      if (c.role !== 'coordinator') return { status: 409, body: { error: `this member is in worker group ${c.group}: run it on the coordinator group's primary (kubectl exec into a coordinator pod: autopilot citus rebalance)` } };
      if (!primary) return { status: 409, body: { error: `${cfg.podName} is not the coordinator group's primary: ask the primary (autopilot status names it)` } };
      // its own connection: the registry's may be in a pass, and a rebalance start can take a moment
      let cl: pg.Client | null = null;
      try {
        cl = await newClient('pg-autopilot-citus-rebalance');
        if (start) {
          const notices: string[] = [];
          cl.on('notice', (n) => notices.push(n.message ?? String(n)));
          const wal = (await cl.query<{ w: string }>("SELECT current_setting('wal_level') AS w")).rows[0]?.w ?? 'unknown';
          const { mode, reason } = rebalanceMode(asked, wal);
          const r = await cl.query<{ job_id: string | null }>('SELECT citus_rebalance_start(shard_transfer_mode => $1::citus.shard_transfer_mode) AS job_id', [mode]);
          const job = r.rows[0]?.job_id ?? null;
          const message = job === null ? `nothing to move: ${notices.join('; ') || 'the shards are balanced'}` : `rebalance started as Citus background job ${job} (mode ${reason}); follow it with "autopilot citus rebalance --status"`;
          log.info('citus: rebalance requested', { job, mode, reason, notices });
          event('CitusRebalance', message);
          return { status: job === null ? 200 : 202, body: { job, mode, message } };
        }
        const r = await cl.query('SELECT job_id, state, job_type, description, started_at, finished_at, details FROM citus_rebalance_status()');
        return { status: 200, body: { job: r.rows[0] ?? null } };
      } catch (e) {
        const m = errMsg(e);
        // "no such job" from citus_rebalance_status: no rebalance was ever started
        if (!start && /could not find rebalance background job|no such/i.test(m)) return { status: 200, body: { job: null } };
        return { status: 409, body: { error: `Citus refused: ${m}` } };
      } finally {
        void cl?.end().catch(() => undefined);
      }
    },
  };
}
