// The autopilot shell's view of the leader Lease under a slow API server: a direct read that fails
// must not hide the lease after the watch has listed it again, and a member that is not writable
// gives its lease writes the full request timeout. Fakes for the Kubernetes client and postgres.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAutopilot } from '../../scripts/shell/autopilot.js';
import { KubeError, type Kube, type Lease, type Pod } from '../../scripts/shell/kube.js';
import type { Postgres, PgStatus } from '../../scripts/shell/postgres.js';
import type { Config } from '../../scripts/core/config.js';
import type { Logger } from '../../scripts/shell/log.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

const cfg = {
  clusterName: 'pg', namespace: 'ns', podName: 'm1', podIp: '127.0.0.1', memberSelector: 'app=pga-test',
  dataDir: '/nonexistent/pgdata', walDir: null, binDir: '/nonexistent/bin', runDir: '/nonexistent/run',
  pgPort: 5432, apiPort: 8008, metricsPort: null, loopMs: 60_000, leaseMs: 6_000, renewMs: 2_000, renewDeadlineMs: 4_500,
  maxLagBytes: 16 << 20, syncMode: 'off', syncCount: 1, nofailover: false, failsafe: false,
  secrets: { superuserPassword: 'x', replicationPassword: 'x', appPassword: null, apiToken: 't' },
  parameters: {},
} as unknown as Config;

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

const lease = (holder: string, rv: string): Lease => ({
  metadata: { name: 'pg-leader', resourceVersion: rv, annotations: {} },
  spec: { holderIdentity: holder, leaseDurationSeconds: 6, renewTime: new Date().toISOString() },
});

function fakePg(st: Partial<PgStatus>): Postgres {
  let running = st.running ?? true;
  const status = (): PgStatus => ({
    running, accepting: running, inRecovery: running ? (st.inRecovery ?? true) : null, timeline: 1,
    currentLsn: null, receivedLsn: '0/3000000', replayedLsn: '0/3000000', streaming: false, upstreamHost: null,
    replicas: [], slots: [], systemIdentifier: '1', error: null,
  });
  return {
    status: async () => status(),
    isRunning: () => running,
    restarting: () => false,
    dataDirState: async () => 'valid',
    onExit: () => undefined,
    stop: async () => { running = false; },
  } as unknown as Postgres;
}

function fakeKube(over: Partial<Kube> = {}) {
  const k = {
    leaseOnChange: null as null | ((l: Lease | null) => void),
    leaseOnHealth: null as null | ((ok: boolean) => void),
    podsOnChange: null as null | ((p: Map<string, Pod>) => void),
    getLeaseCalls: [] as ReturnType<typeof deferred<Lease | null>>[],
    updateTimeouts: [] as (number | undefined)[],
  };
  const pods = new Map<string, Pod>([['m1', { metadata: { name: 'm1', labels: {}, annotations: {} } }]]);
  const kube = {
    namespace: 'ns',
    counts: {},
    getLease: () => { const d = deferred<Lease | null>(); k.getLeaseCalls.push(d); return d.promise; },
    createLease: async (l: Lease) => l,
    updateLease: async (l: Lease, timeoutMs?: number) => { k.updateTimeouts.push(timeoutMs); return l; },
    patchPod: async (name: string) => pods.get(name)!,
    event: async () => undefined,
    informPods: (_s: string, onChange: (p: Map<string, Pod>) => void) => { k.podsOnChange = onChange; onChange(new Map(pods)); return () => undefined; },
    informLease: (_n: string, onChange: (l: Lease | null) => void, onHealth?: (ok: boolean) => void) => {
      k.leaseOnChange = onChange;
      k.leaseOnHealth = onHealth ?? null;
      return () => undefined;
    },
    informStatefulSet: () => () => undefined,
    resync: () => undefined,
    ...over,
  } as unknown as Kube;
  return { kube, k };
}

test('a direct lease read that fails after the watch listed the lease again does not leave the lease unreadable', async () => {
  const { kube, k } = fakeKube();
  const ap = createAutopilot(cfg, quiet, kube, fakePg({ inRecovery: true }));
  const first = ap.nextTick();
  ap.start();
  try {
    // The first tick reads the lease directly (no watch yet) and waits on the API server...
    while (k.getLeaseCalls.length === 0) await new Promise((r) => setImmediate(r));
    // ...meanwhile the watch lists it: healthy, held by m0 (not among the pods we know)...
    k.leaseOnHealth!(true);
    k.leaseOnChange!(lease('m0', '10'));
    // ...then the slow direct read times out.
    k.getLeaseCalls[0]!.reject(new KubeError('GET lease: timed out after 1000 ms', 0, 'NetworkError'));
    await first;
    const again = ap.nextTick();
    // A pod event wakes the loop; the watch stays healthy and the lease does not change.
    k.podsOnChange!(new Map([['m1', { metadata: { name: 'm1', labels: {}, annotations: {} } }]]));
    const d = await again;
    assert.doesNotMatch(d.reason, /cannot read the lease/, d.reason);
    assert.equal(ap.snapshot().leaseHolder, 'm0');
    assert.equal(k.getLeaseCalls.length, 1, 'a healthy watch is trusted: no further direct reads');
  } finally {
    await ap.terminate();
  }
});

test('a member that is not writable confirms a lease naming it with the whole request timeout, however old its last renewal', async () => {
  const { kube, k } = fakeKube();
  let t = 1_000_000;
  const pg = fakePg({ inRecovery: true });
  (pg as { promote: () => Promise<void> }).promote = async () => { throw new Error('promotion failed (test)'); };
  const ap = createAutopilot(cfg, quiet, kube, pg, { clock: () => t });
  ap.start();
  try {
    while (k.leaseOnChange === null) await new Promise((r) => setImmediate(r));
    // A replica the lease names (e.g. restarted after a demotion): it confirms, then promotes (which fails here).
    let d = ap.nextTick();
    k.leaseOnHealth!(true);
    k.leaseOnChange!(lease('m1', '20'));
    for (const g of k.getLeaseCalls) g.resolve(lease('m1', '20'));
    await d;
    while (k.updateTimeouts.length < 1) { d = ap.nextTick(); k.podsOnChange!(new Map([['m1', { metadata: { name: 'm1' } }]])); await d; }
    // Much later than the renew deadline, still a replica, the lease still names it: it confirms again.
    t += 60_000;
    d = ap.nextTick();
    k.leaseOnChange!(lease('m1', '21'));
    await d;
    while (k.updateTimeouts.length < 2) { d = ap.nextTick(); k.podsOnChange!(new Map([['m1', { metadata: { name: 'm1' } }]])); await d; }
    assert.deepEqual(k.updateTimeouts.slice(0, 2), [1_500, 1_500]);
  } finally {
    await ap.terminate();
  }
});
