// Side-by-side benchmark: pg-autopilot against Patroni 3.0.2 (Kubernetes DCS), same scenarios,
// same machine, same kube-apiserver, same client. Run with `npm run bench` (test/bench/run.sh).
//
// One cluster at a time, one kube-apiserver (+ etcd) for the whole run, started with an audit
// log. For each subject (ours, Patroni with its default timings, Patroni tuned) one 3-member
// cluster runs these in order, waiting for a healthy cluster (one routed writable primary, two
// streaming replicas) before each:
//   idle   — Kubernetes API requests per minute for the whole cluster, counted from the audit log
//   switchover — planned switchover under a writer: longest write gap
//   pgkill — the primary's postmaster SIGKILLed under a live autopilot/Patroni: longest write gap
//   freeze — the primary's whole process tree SIGSTOPped: longest write gap (writes back)
// The writer writes a row every 20 ms to whichever member the subject's read-write routing points
// at (ours: the pod labelled pg-autopilot.io/role=primary, as the chart's Service selects;
// Patroni: the address in its leader Endpoints object, as a selector-less Service routes), exactly
// like test/integration's Writer.
//
// During the idle window the bench also samples, every 5 s, the resident memory (VmRSS) and CPU
// time of each member's entrypoint process (ours: the `node … cli.js run` process; Patroni: the
// `patroni` Python process; postgres is not counted for either).
//
// Environment: BENCH_SUBJECTS (comma list of ours,patroni-default,patroni-tuned, default those
// three; also patroni-default-cm,patroni-tuned-cm: use_endpoints false, idle count only),
// BENCH_SCENARIOS (comma list of idle,switchover,pgkill,freeze, default all; `idle` alone is the
// quick memory/API-load run; `backup` = the backup figures, ours only, backup-bench.ts — alone it
// starts no subject), BENCH_IDLE_SECONDS (default 60), PGA_KEEP_TEST_DIRS=1 keeps logs.
import { mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { startKube, type Kube } from '../integration/kube-harness.js';
import { Cluster, Writer } from '../integration/cluster-harness.js';
import { PatroniCluster, type PatroniTimings } from './patroni-harness.js';
import { runBackupBench } from './backup-bench.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (m: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}`);

/** What a scenario needs from a product, whichever it is. */
interface Subject {
  id: string;
  /** Only the idle count is measured (routing by label needs readiness probes this harness lacks). */
  idleOnly?: boolean;
  title: string;
  ns: string;
  members: string[];
  /** The member the product's read-write routing points at now (null: none / ambiguous). */
  routed(): Promise<string | null>;
  /** Members labelled primary by the product's role label. */
  labelled(): Promise<string[]>;
  client(name: string, timeoutMs: number): pg.Client;
  sql(name: string, text: string): Promise<any[]>;
  postmasterPid(name: string): number | null;
  freeze(name: string, on: boolean): void;
  switchover(from: string, to: string): Promise<string>;
  /** Each member's entrypoint process (ours: node; Patroni: python), by member name. */
  pids(): Map<string, number>;
  /** The product's own count of its API requests, where it has one (ours: /status kubeRequests). */
  ownRequestCount?(): Promise<number>;
  tails(): string;
  stop(): Promise<void>;
}

async function waitFor<T>(s: Subject, what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try { const v = await fn(); if (v) return v as T; } catch (e) { last = e; }
    await sleep(everyMs);
  }
  throw new Error(`${s.title}: timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${(last as Error).message})` : ''}\n${s.tails()}`);
}

async function writable(s: Subject): Promise<string[]> {
  const out: string[] = [];
  await Promise.all(s.members.map(async (m) => {
    const c = s.client(m, 500);
    try {
      await c.connect();
      if ((await c.query('select pg_is_in_recovery() as r')).rows[0].r === false) out.push(m);
    } catch { /* down */ } finally { await c.end().catch(() => undefined); }
  }));
  return out.sort();
}

/** One routed, writable primary and every other member streaming from it. */
async function healthy(s: Subject, timeoutMs = 180_000): Promise<string> {
  return waitFor(s, 'a healthy cluster (1 routed writable primary, 2 streaming replicas)', async () => {
    const p = await s.routed();
    if (!p) return null;
    const w = await writable(s);
    if (w.length !== 1 || w[0] !== p) return null;
    const names = new Set(s.members);
    const rows = await s.sql(p, "select application_name from pg_stat_replication where state = 'streaming'");
    return rows.filter((r) => names.has(r.application_name)).length >= s.members.length - 1 ? p : null;
  }, timeoutMs, 250);
}

// ---------------------------------------------------------------------------------------------
// Subjects.
async function ours(kube: Kube): Promise<Subject> {
  const c = await Cluster.start(kube);
  const labelled = () => c.labelledPrimaries();
  return {
    id: 'ours', title: 'pg-autopilot', ns: c.ns, members: c.members.map((m) => m.name),
    routed: async () => { const l = await labelled(); return l.length === 1 ? l[0]! : null; },
    labelled,
    client: (n, ms) => c.client(n, ms),
    sql: (n, t) => c.sql(n, t),
    postmasterPid: (n) => c.postmasterPid(n),
    freeze: (n, on) => c.freeze(n, on),
    switchover: async (_from, to) => {
      const r = await c.api(to, 'POST', '/switchover', { to });
      if (r.status !== 202) throw new Error(`switchover: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      return `HTTP ${r.status}`;
    },
    pids: () => new Map(c.members.filter((m) => m.proc?.pid).map((m) => [m.name, m.proc!.pid!])),
    ownRequestCount: async () => {
      let n = 0;
      for (const m of c.members) {
        const st = await c.status(m.name);
        n += Object.values((st?.kubeRequests ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0);
      }
      return n;
    },
    tails: () => c.tails(),
    stop: () => c.stop(),
  };
}

async function patroni(kube: Kube, id: string, title: string, timings: PatroniTimings, useEndpoints: boolean): Promise<Subject> {
  const c = await PatroniCluster.start(kube, timings, { useEndpoints });
  return {
    id, title, idleOnly: !useEndpoints, ns: c.ns, members: c.members.map((m) => m.name),
    routed: () => c.routed(),
    labelled: () => c.labelledPrimaries(),
    client: (n, ms) => c.client(n, ms),
    sql: (n, t) => c.sql(n, t),
    postmasterPid: (n) => c.postmasterPid(n),
    freeze: (n, on) => c.freeze(n, on),
    switchover: async (from, to) => {
      const r = await c.rest(from, 'POST', '/switchover', { leader: from, candidate: to }, 60_000);
      if (r.status !== 200) throw new Error(`switchover: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      return `HTTP ${r.status} ${typeof r.body === 'string' ? r.body.trim() : JSON.stringify(r.body)}`;
    },
    pids: () => new Map(c.members.filter((m) => m.proc?.pid).map((m) => [m.name, m.proc!.pid!])),
    tails: () => c.tails(),
    stop: () => c.stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// Process memory and CPU, from /proc.
interface ProcSample { rssKb: number; anonKb: number; fileKb: number; cpuTicks: number; comm: string }
const CLK_TCK = 100; // getconf CLK_TCK on Linux/x86-64 and arm64

function procSample(pid: number): ProcSample | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(status.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    return { rssKb: kb('VmRSS'), anonKb: kb('RssAnon'), fileKb: kb('RssFile'), cpuTicks: Number(f[11]) + Number(f[12]), comm: status.match(/^Name:\s+(.*)$/m)?.[1] ?? '?' };
  } catch {
    return null;
  }
}

const mb = (kb: number) => (kb / 1024).toFixed(1);

/**
 * How a process was started, as it runs (its /proc cmdline, the executable's version): for our
 * members the flags images/postgres/autopilot gave node, so the RSS row says what it measured.
 */
function startedAs(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    let version = '';
    try { version = execFileSync(readlinkSync(`/proc/${pid}/exe`), ['--version'], { timeout: 10_000 }).toString().trim().split('\n')[0] ?? ''; } catch { /* not a node, or gone */ }
    return `\`${argv.map((a) => a.replace(process.cwd() + '/', '')).join(' ')}\`${version ? ` (${version})` : ''}`;
  } catch {
    return 'unknown (process gone)';
  }
}

/** Samples every member's entrypoint every `everyMs` until stopped; returns the samples per member. */
function sampleProcesses(s: Subject, everyMs = 5_000): { stop(): Map<string, { at: number; sample: ProcSample }[]> } {
  const got = new Map<string, { at: number; sample: ProcSample }[]>();
  const take = () => {
    for (const [name, pid] of s.pids()) {
      const sample = procSample(pid);
      if (sample) got.set(name, [...(got.get(name) ?? []), { at: Date.now(), sample }]);
    }
  };
  take();
  const t = setInterval(take, everyMs);
  return { stop: () => { take(); clearInterval(t); return got; } };
}

// ---------------------------------------------------------------------------------------------
// Audit log counting.
interface AuditEvent { auditID: string; stage: string; verb: string; user?: { username?: string }; objectRef?: { resource?: string; namespace?: string; name?: string }; requestReceivedTimestamp: string }

function auditEvents(kube: Kube, from: number, to: number, user: string): AuditEvent[] {
  if (!kube.auditLog) throw new Error('kube-apiserver was started without an audit log');
  const seen = new Map<string, AuditEvent>();
  for (const line of readFileSync(kube.auditLog, 'utf8').split('\n')) {
    if (!line) continue;
    let e: AuditEvent;
    try { e = JSON.parse(line); } catch { continue; }
    if (e.user?.username !== user) continue;
    const t = Date.parse(e.requestReceivedTimestamp);
    if (t < from || t >= to) continue;
    if (!seen.has(e.auditID)) seen.set(e.auditID, e); // a watch logs ResponseStarted and ResponseComplete
  }
  return [...seen.values()];
}

function breakdown(events: AuditEvent[]): string {
  const by = new Map<string, number>();
  for (const e of events) {
    const k = `${e.verb} ${e.objectRef?.resource ?? '?'}${e.objectRef?.name ? `/${e.objectRef.name}` : ''}`;
    by.set(k, (by.get(k) ?? 0) + 1);
  }
  return [...by.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} ${k}`).join(', ');
}

// ---------------------------------------------------------------------------------------------
// Scenarios.
interface Figure { value: number | null; unit: string; note: string; cell?: string }
type Results = Record<string, Record<string, Figure>>;
const SCENARIOS: { key: string; title: string; unit: string }[] = [
  { key: 'freeze', title: 'frozen primary (whole process tree SIGSTOPped) → writes back', unit: 'ms' },
  { key: 'pgkill', title: "primary's postgres SIGKILLed under a live autopilot / Patroni → writes back", unit: 'ms' },
  { key: 'switchover', title: 'planned switchover → writes unavailable', unit: 'ms' },
  { key: 'idle', title: 'idle 3-member cluster: Kubernetes API requests / minute (audit log)', unit: 'req/min' },
  { key: 'rss', title: "idle RSS of each member's entrypoint process (MB; ours: node, Patroni: python)", unit: 'MB' },
  { key: 'cpu', title: "idle CPU of each member's entrypoint process (ms / minute)", unit: 'ms/min' },
];
const ALL_SCENARIOS = ['idle', 'switchover', 'pgkill', 'freeze'];

async function runSubject(kube: Kube, s: Subject, idleSeconds: number, out: Record<string, Figure>, scenarios: string[]) {
  const t0 = Date.now();
  let p = await healthy(s);
  log(`${s.title}: healthy after ${Date.now() - t0} ms (primary ${p})`);
  out.bootstrap = { value: Date.now() - t0, unit: 'ms', note: '3 members: routed primary + 2 streaming' };

  // idle
  await sleep(10_000);
  const own0 = await s.ownRequestCount?.();
  const from = Date.now();
  const sampler = sampleProcesses(s);
  await sleep(idleSeconds * 1000);
  const samples = sampler.stop();
  const to = Date.now();
  const own1 = await s.ownRequestCount?.();
  await sleep(500); // let the audit backend flush the last events
  const events = auditEvents(kube, from, to, 'pga-member');
  const outside = events.filter((e) => e.objectRef?.namespace && e.objectRef.namespace !== s.ns).length;
  const perMin = Math.round((events.length * 60_000 / (to - from)) * 10) / 10;
  const ownNote = own0 !== undefined && own1 !== undefined ? `; its own counters: ${Math.round(((own1 - own0) * 60_000 / (to - from)) * 10) / 10}/min` : '';
  out.idle = { value: perMin, unit: 'req/min', note: `${events.length} in ${Math.round((to - from) / 1000)} s${outside ? ` (${outside} outside its namespace)` : ''}${ownNote}: ${breakdown(events)}` };
  log(`${s.title}: idle ${perMin} req/min — ${out.idle.note}`);
  // Memory and CPU of each entrypoint over the same window: RSS as last sampled (≥ 10 s + the
  // window after the cluster became healthy), CPU time used between the first and last sample.
  const names = [...samples.keys()].sort();
  const last = names.map((n) => samples.get(n)!.at(-1)!.sample);
  const firstPid = s.pids().get(names[0] ?? '');
  const started = firstPid ? startedAs(firstPid) : 'unknown';
  const cpu = names.map((n) => {
    const xs = samples.get(n)!;
    const a = xs[0]!, b = xs.at(-1)!;
    return b.at > a.at ? ((b.sample.cpuTicks - a.sample.cpuTicks) * (1000 / CLK_TCK) * 60_000) / (b.at - a.at) : NaN;
  });
  const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  if (names.length) {
    out.rss = {
      value: Math.round(mean(last.map((x) => x.rssKb)) / 102.4) / 10, unit: 'MB', cell: last.map((x) => mb(x.rssKb)).join(' / '),
      note: `VmRSS of each member's entrypoint (${last[0]!.comm}, started as ${started}) after ${Math.round((to - from) / 1000) + 10} s idle, ${names.map((n, i) => `${n} ${mb(last[i]!.rssKb)} MB (anon ${mb(last[i]!.anonKb)}, file ${mb(last[i]!.fileKb)}; max over ${samples.get(n)!.length} samples ${mb(Math.max(...samples.get(n)!.map((x) => x.sample.rssKb)))})`).join(', ')}; value = mean`,
    };
    out.cpu = {
      value: Math.round(mean(cpu)), unit: 'ms/min', cell: cpu.map((x) => String(Math.round(x))).join(' / '),
      note: `user + system CPU time of each entrypoint over the idle window (${names.join(', ')}); value = mean`,
    };
    log(`${s.title}: idle RSS ${out.rss.cell} MB, CPU ${out.cpu.cell} ms/min — ${out.rss.note}`);
  }
  if (s.idleOnly) return;

  // switchover
  if (scenarios.includes('switchover')) try {
    p = await healthy(s);
    const target = s.members.find((m) => m !== p)!;
    const w = await Writer.start(s, p, { table: 'w_switchover' });
    await w.warm();
    await sleep(1_000);
    const at = Date.now();
    const resp = await s.switchover(p, target);
    await waitFor(s, 'writes through the new primary', async () => w.acked.some((a) => a.at > at + 50 && a.to === target), 60_000, 20);
    await sleep(1_000);
    await w.stop();
    out.switchover = { value: w.longestGapMs(at), unit: 'ms', note: `${p} → ${target}, request answered ${resp.slice(0, 80)}` };
  } catch (e) { out.switchover = { value: null, unit: 'ms', note: `failed: ${(e as Error).message.split('\n')[0]}` }; }
  if (out.switchover) log(`${s.title}: switchover ${out.switchover.value} ms — ${out.switchover.note}`);

  // postgres SIGKILL on the primary
  if (scenarios.includes('pgkill')) try {
    p = await healthy(s);
    const w = await Writer.start(s, p, { table: 'w_pgkill' });
    await w.warm();
    await sleep(1_000);
    const pid = s.postmasterPid(p);
    if (!pid) throw new Error(`no postmaster.pid for ${p}`);
    const at = Date.now();
    process.kill(pid, 'SIGKILL');
    // Backends outlive a SIGKILLed postmaster for a while and may keep acknowledging writes on
    // open connections: count writes as back once a new postmaster runs (on any member: a
    // failover is a way back too) and a write was acknowledged after that.
    const newPm = await waitFor(s, 'a new postmaster', async () => {
      if (s.members.some((m) => { const n = s.postmasterPid(m); return m === p ? n !== null && n !== pid : false; })) return Date.now();
      const r = await s.routed().catch(() => null);
      return r && r !== p ? Date.now() : null;
    }, 180_000, 20);
    await waitFor(s, 'writes again', async () => w.acked.some((a) => a.at > newPm), 180_000, 20);
    await sleep(1_000);
    await w.stop();
    const after = w.acked.filter((a) => a.at > at).map((a) => a.to);
    const np = after[after.length - 1];
    out.pgkill = { value: w.longestGapMs(at), unit: 'ms', note: np === p ? `restarted in place on ${p}, no failover` : `failover ${p} → ${np}` };
  } catch (e) { out.pgkill = { value: null, unit: 'ms', note: `failed: ${(e as Error).message.split('\n')[0]}` }; }
  if (out.pgkill) log(`${s.title}: postgres SIGKILL ${out.pgkill.value} ms — ${out.pgkill.note}`);

  // frozen primary
  if (scenarios.includes('freeze')) try {
    p = await healthy(s);
    const w = await Writer.start(s, p, { table: 'w_freeze' });
    await w.warm();
    await sleep(1_000);
    const at = Date.now();
    s.freeze(p, true);
    let twoLabelled = 0;
    let labelSamples = 0;
    try {
      await waitFor(s, 'writes through another member', async () => {
        const l = await s.labelled().catch(() => []);
        labelSamples++;
        if (l.length > 1) twoLabelled++;
        return w.acked.some((a) => a.at > at + 50 && a.to !== p);
      }, 180_000, 100);
      await sleep(500);
    } finally {
      await w.stop();
      s.freeze(p, false);
    }
    const np = w.acked[w.acked.length - 1]?.to;
    const labels = await s.labelled().catch(() => [] as string[]);
    out.freeze = {
      value: w.longestGapMs(at), unit: 'ms',
      note: `failover ${p} → ${np}; ${twoLabelled ? `${twoLabelled}/${labelSamples} samples had ${'>'}1 pod carrying the primary role label` : 'never more than 1 pod with the primary role label'}; labelled right after thaw: ${labels.join(',') || 'none'}`,
    };
  } catch (e) { out.freeze = { value: null, unit: 'ms', note: `failed: ${(e as Error).message.split('\n')[0]}` }; }
  if (out.freeze) log(`${s.title}: freeze ${out.freeze.value} ms — ${out.freeze.note}`);
}

function fmt(f: Figure | undefined): string {
  if (!f || f.value === null) return 'n/a';
  if (f.cell) return f.cell;
  return f.unit === 'ms' ? `${(f.value / 1000).toFixed(2)} s` : `${f.value}`;
}
function ratio(patroni: Figure | undefined, base: Figure | undefined): string {
  if (!patroni?.value || !base?.value) return '—';
  return `${(patroni.value / base.value).toFixed(1)}×`;
}

async function main() {
  const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
  const wanted = (process.env.BENCH_SUBJECTS ?? 'ours,patroni-default,patroni-tuned').split(',').map((x) => x.trim());
  const scenarios = (process.env.BENCH_SCENARIOS ?? ALL_SCENARIOS.join(',')).split(',').map((x) => x.trim());
  for (const sc of scenarios) if (!ALL_SCENARIOS.includes(sc) && sc !== 'backup') throw new Error(`BENCH_SCENARIOS: unknown scenario ${sc} (known: ${ALL_SCENARIOS.join(', ')}, backup)`);
  const backupOnly = scenarios.every((sc) => sc === 'backup');
  if (!backupOnly && !scenarios.includes('idle')) throw new Error('BENCH_SCENARIOS must include idle when it names a failover scenario (every subject run measures idle first); BENCH_SCENARIOS=backup alone runs the backup figures only');
  if (backupOnly) return backupMain();
  const DEFAULT: PatroniTimings = { ttl: 30, loop_wait: 10, retry_timeout: 10 };
  const TUNED: PatroniTimings = { ttl: 10, loop_wait: 2, retry_timeout: 4 };
  const titles: Record<string, string> = {
    ours: 'pg-autopilot',
    'patroni-default': `Patroni default (ttl ${DEFAULT.ttl}, loop_wait ${DEFAULT.loop_wait}, retry_timeout ${DEFAULT.retry_timeout})`,
    'patroni-tuned': `Patroni tuned (ttl ${TUNED.ttl}, loop_wait ${TUNED.loop_wait}, retry_timeout ${TUNED.retry_timeout})`,
    'patroni-default-cm': `Patroni default, ConfigMaps (use_endpoints: false; idle only)`,
    'patroni-tuned-cm': `Patroni tuned, ConfigMaps (use_endpoints: false; idle only)`,
  };
  const results: Results = {};
  const problems: string[] = [];
  const started = Date.now();
  const patroniMissing = PatroniCluster.available();
  const kube = await startKube({ audit: true });
  let current: Subject | null = null;
  let backup: Awaited<ReturnType<typeof runBackupBench>> | null = null;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping the cluster and the API server`);
      void (async () => { await current?.stop().catch(() => undefined); await kube.stop().catch(() => undefined); process.exit(130); })();
    });
  }
  log(`kube-apiserver ${kube.server}, audit log ${kube.auditLog}`);
  try {
    for (const id of wanted) {
      if (!titles[id]) { problems.push(`unknown subject ${id}`); continue; }
      if (id !== 'ours' && patroniMissing) { problems.push(`${titles[id]}: not run: ${patroniMissing}`); continue; }
      results[id] = {};
      let s: Subject | null = null;
      try {
        s = id === 'ours' ? await ours(kube) : await patroni(kube, id, titles[id]!, id.startsWith('patroni-tuned') ? TUNED : DEFAULT, !id.endsWith('-cm'));
        current = s;
        await runSubject(kube, s, idleSeconds, results[id]!, scenarios);
      } catch (e) {
        problems.push(`${titles[id]}: ${(e as Error).message}`);
        log(`${titles[id]}: FAILED ${(e as Error).message}`);
      } finally {
        current = null;
        await s?.stop().catch((e) => log(`stop: ${(e as Error).message}`));
      }
    }
    if (scenarios.includes('backup')) { backup = await runBackupBench(kube); problems.push(...backup.problems); }
  } finally {
    await kube.stop();
  }

  // The table.
  const cols = wanted.filter((id) => results[id]);
  const pcols = cols.filter((id) => id !== 'ours');
  const head = ['scenario', ...cols.flatMap((id) => (id === 'ours' ? [titles[id]!] : [titles[id]!, 'ratio (Patroni / ours)']))];
  const rows = SCENARIOS.filter((sc) => cols.some((id) => results[id]![sc.key])).map((sc) => [
    sc.title + (sc.unit === 'ms' ? ' (s)' : ''),
    ...cols.flatMap((id) => (id === 'ours' ? [fmt(results[id]![sc.key])] : [fmt(results[id]![sc.key]), ratio(results[id]![sc.key], results.ours?.[sc.key])])),
  ]);
  let cpu = '';
  try { cpu = `${cpus().length} × ${cpus()[0]?.model ?? '?'}`; } catch { /* */ }
  let pv = '';
  try { pv = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'patroni']).toString(); } catch { pv = 'not installed'; }
  const md = [
    `# pg-autopilot vs Patroni — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Same machine (${cpu}), same kube-apiserver + etcd, one cluster at a time, 3 members each, PostgreSQL 15, a writer every 20 ms. Patroni ${pv} (Kubernetes DCS; use_endpoints: true unless a column says ConfigMaps). Whole run: ${Math.round((Date.now() - started) / 1000)} s.`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    '## Notes per figure',
    '',
    ...cols.flatMap((id) => [`### ${titles[id]}`, '', ...Object.entries(results[id]!).map(([k, f]) => `- **${k}**: ${fmt(f)}${f.unit === 'ms' ? '' : ` ${f.unit}`} — ${f.note}`), '']),
    ...(problems.length ? ['## Problems', '', ...problems.map((p) => `- ${p.split('\n').slice(0, 3).join(' / ')}`), ''] : []),
  ].join('\n') + (backup ? `\n${backup.md}` : '');
  void pcols;
  mkdirSync(join(process.cwd(), 'test-results'), { recursive: true });
  writeFileSync(join(process.cwd(), 'test-results', 'bench.md'), md);
  writeFileSync(join(process.cwd(), 'test-results', 'bench.json'), JSON.stringify({ results, problems }, null, 2) + '\n');
  console.log('\n' + md);
  if (problems.length) process.exitCode = 1;
}

/** BENCH_SCENARIOS=backup: the backup figures alone (ours only), own API server, own files. */
async function backupMain() {
  const kube = await startKube();
  log(`kube-apiserver ${kube.server}`);
  let r: Awaited<ReturnType<typeof runBackupBench>>;
  try { r = await runBackupBench(kube); } finally { await kube.stop(); }
  mkdirSync(join(process.cwd(), 'test-results'), { recursive: true });
  writeFileSync(join(process.cwd(), 'test-results', 'bench-backup.md'), r.md);
  writeFileSync(join(process.cwd(), 'test-results', 'bench-backup.json'), JSON.stringify(r.json, null, 2) + '\n');
  console.log('\n' + r.md);
  if (r.problems.length) process.exitCode = 1;
}

await main();
