// Whole members as processes: `node dist/scripts/cli.js run`, exactly the image's entrypoint, run
// as the postgres OS user, each with its own data directory, postgres port and API port on
// loopback, talking to a real kube-apiserver through its own cuttable proxy. Pod objects in a bare
// API server (no kubelet: they stay Pending) stand for the members; the autopilot patches their
// labels and annotations as it would in a cluster.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, chownSync, rmSync, createWriteStream, writeFileSync, readFileSync, readdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startKube, freePort, type Kube, type KubeProxy } from './kube-harness.js';
import { makeCgroup, inCgroup, removeCgroup, cutLink, tapConnections } from './links.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** The image's command: members start through it, with the image's Node.js flags (see the file). */
const LAUNCHER = join(ROOT, 'images/postgres/autopilot');
/** The node binary members run on: this one, unless PGA_MEMBER_NODE names another (e.g. the image's). */
const MEMBER_NODE = process.env.PGA_MEMBER_NODE || process.execPath;
export const PASSWORD = 'super-secret-pw';
export const TOKEN = 'api-token-for-tests';
const isRoot = process.getuid?.() === 0;
const pgIds = isRoot ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) } : null;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Member {
  name: string;
  pgPort: number;
  apiPort: number;
  /** the metrics-only listener (PGA_METRICS_PORT: GET /metrics, nothing else), as a scraper sees it */
  metricsPort: number;
  dir: string;
  dataDir: string;
  logFile: string;
  proxy: KubeProxy;
  proc: ChildProcess | null;
  env: Record<string, string>;
  /** its own cgroup (ClusterOptions.cgroups), for link cuts */
  cgroup: string | null;
}

export interface ClusterOptions {
  members?: number;
  env?: Record<string, string>;
  parameters?: Record<string, string | number>;
  /** environment for one member only, on top of `env` */
  memberEnv?: Record<string, Record<string, string>>;
  /** an HTTP fault layer (http-faults.ts) behind each member's API proxy: member(name).proxy.http */
  faults?: boolean;
  /** each member in its own cgroup, so that cutLink() can partition two members (root only) */
  cgroups?: boolean;
  /** an existing namespace (from kube.namespace()) instead of a new one */
  namespace?: string;
  /** files written into each member's config directory (also its secrets directory), by relative path */
  files?: Record<string, string>;
  /** files for one member only, on top of `files` (same relative path: this one wins) */
  memberFiles?: Record<string, Record<string, string>>;
  /** variables set, in each member, to the path of one of `files` (name → relative path) */
  fileEnv?: Record<string, string>;
}

function own(path: string) {
  if (pgIds) chownSync(path, pgIds.uid, pgIds.gid);
}

export class Cluster {
  readonly members: Member[] = [];
  private readonly restores: (() => void)[] = [];
  private constructor(readonly kube: Kube, readonly ns: string, readonly dir: string, readonly opts: ClusterOptions) {}

  static async start(kube: Kube, opts: ClusterOptions = {}): Promise<Cluster> {
    const ns = opts.namespace ?? await kube.namespace('c');
    const dir = mkdtempSync(join(tmpdir(), 'pga-cluster-'));
    chmodSync(dir, 0o755);
    const c = new Cluster(kube, ns, dir, opts);
    const n = opts.members ?? 3;
    for (let i = 0; i < n; i++) await c.addMember(`m${i}`);
    for (const m of c.members) c.startMember(m.name);
    return c;
  }

  async addMember(name: string): Promise<Member> {
    const r = await this.kube.request('POST', `/api/v1/namespaces/${this.ns}/pods`, {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name, labels: { app: 'pga-test' } },
      spec: { containers: [{ name: 'postgres', image: 'pg-autopilot/postgres:test' }] },
    });
    if (r.status >= 300) throw new Error(`create pod ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    const mdir = join(this.dir, name);
    for (const d of [mdir, join(mdir, 'data'), join(mdir, 'run'), join(mdir, 'config')]) { mkdirSync(d, { recursive: true }); own(d); }
    chmodSync(join(mdir, 'run'), 0o700);
    if (this.opts.parameters) writeFileSync(join(mdir, 'config', 'parameters.json'), JSON.stringify(this.opts.parameters));
    for (const [rel, text] of Object.entries({ ...(this.opts.files ?? {}), ...(this.opts.memberFiles?.[name] ?? {}) })) {
      const f = join(mdir, 'config', rel);
      mkdirSync(dirname(f), { recursive: true }); own(dirname(f));
      writeFileSync(f, text, { mode: 0o600 }); own(f);
    }
    const m: Member = {
      name, pgPort: await freePort(), apiPort: await freePort(), metricsPort: await freePort(), dir: mdir, dataDir: join(mdir, 'data', 'pgdata'),
      logFile: join(mdir, 'member.log'), proxy: await this.kube.proxy(name, 'member', { faults: !!this.opts.faults }), proc: null, env: {},
      cgroup: this.opts.cgroups ? makeCgroup(`${basename(this.dir)}-${name}`) : null,
    };
    m.env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      PGA_CLUSTER_NAME: 'pg', PGA_NAMESPACE: this.ns, PGA_POD_NAME: name, PGA_POD_IP: '127.0.0.1',
      PGA_MEMBER_SELECTOR: 'app=pga-test', PGA_DATA_DIR: m.dataDir, PGA_RUN_DIR: join(mdir, 'run'),
      PGA_CONFIG_DIR: join(mdir, 'config'), PGA_SECRETS_DIR: join(mdir, 'config'),
      PGA_PG_PORT: String(m.pgPort), PGA_API_PORT: String(m.apiPort), PGA_METRICS_PORT: String(m.metricsPort),
      PGA_SUPERUSER_PASSWORD: PASSWORD, PGA_REPLICATION_PASSWORD: 'repl-pw', PGA_APP_PASSWORD: 'app-pw', PGA_API_TOKEN: TOKEN,
      KUBECONFIG: m.proxy.kubeconfig, PGA_LOG_LEVEL: 'info',
      ...Object.fromEntries(Object.entries(this.opts.fileEnv ?? {}).map(([k, rel]) => [k, join(mdir, 'config', rel)])),
      ...(this.opts.env ?? {}),
      ...(this.opts.memberEnv?.[name] ?? {}),
    };
    this.members.push(m);
    return m;
  }

  member(name: string): Member {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  startMember(name: string) {
    const m = this.member(name);
    const out = createWriteStream(m.logFile, { flags: 'a' });
    const prefix = pgIds ? ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--'] : [];
    // `sh autopilot run` execs node: the process spawned here is the member's node process.
    const argv = [...prefix, '/bin/sh', LAUNCHER, 'run'];
    if (m.cgroup) argv.splice(0, argv.length, ...inCgroup(m.cgroup, argv));
    // Its own process group, like a container: freeze() stops the entrypoint and postgres together.
    const env = { ...m.env, AUTOPILOT_NODE: MEMBER_NODE, AUTOPILOT_HOME: ROOT };
    const proc = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    proc.stdout!.pipe(out, { end: false });
    proc.stderr!.pipe(out, { end: false });
    m.proc = proc;
    proc.on('exit', () => { if (m.proc === proc) m.proc = null; });
  }

  /** Send a signal to the member's entrypoint process; resolves when it exited (or after timeoutMs). */
  async signal(name: string, sig: NodeJS.Signals, timeoutMs = 40_000): Promise<void> {
    const m = this.member(name);
    const p = m.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(sig);
    await Promise.race([exited, sleep(timeoutMs)]);
  }

  /**
   * Freeze (SIGSTOP) or thaw (SIGCONT) the member's whole process tree — entrypoint, postmaster and
   * every backend (each backend is its own process group: postgres calls setsid) — as a paused
   * container's cgroup freezer would.
   */
  freeze(name: string, on = true) {
    const p = this.member(name).proc;
    if (!p?.pid) throw new Error(`${name} is not running`);
    const children = new Map<number, number[]>();
    for (const line of execFileSync('ps', ['-e', '-o', 'pid=,ppid=']).toString().trim().split('\n')) {
      const [pid, ppid] = line.trim().split(/\s+/).map(Number) as [number, number];
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    }
    const tree: number[] = [];
    const walk = (pid: number) => { tree.push(pid); for (const c of children.get(pid) ?? []) walk(c); };
    walk(p.pid);
    for (const pid of on ? tree : tree.reverse()) { try { process.kill(pid, on ? 'SIGSTOP' : 'SIGCONT'); } catch { /* exited */ } }
  }

  /**
   * Partition two members from each other (their postgres and HTTP API ports), as a network would;
   * the test and the other members still reach both. Needs { cgroups: true }. Returns the restore
   * function (stop() restores whatever is still cut).
   */
  cutLink(a: string, b: string): () => void {
    const restore = cutLink(this.linkEnd(a), this.linkEnd(b));
    this.restores.push(restore);
    return restore;
  }

  /** Connections `from` opens to `to`'s HTTP API pass a tap first (links.ts tapConnections). Needs { cgroups: true }. */
  async tapApi(from: string, to: string, onConnect: (n: number) => Promise<void> | void): Promise<() => Promise<void>> {
    const remove = await tapConnections(this.linkEnd(from).cgroup, this.member(to).apiPort, onConnect);
    this.restores.push(() => void remove());
    return remove;
  }

  private linkEnd(n: string) {
    const m = this.member(n);
    if (!m.cgroup) throw new Error(`${n} has no cgroup: start the cluster with { cgroups: true } to cut or tap its links`);
    return { cgroup: m.cgroup, ports: [m.pgPort, m.apiPort] };
  }

  /** pid of the member's postmaster (from postmaster.pid), or null. */
  postmasterPid(name: string): number | null {
    try {
      const pid = Number(readFileSync(join(this.member(name).dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(pid, 0);
      return pid;
    } catch {
      return null;
    }
  }

  async status(name: string, timeoutMs = 1_000): Promise<any | null> {
    try {
      const r = await fetch(`http://127.0.0.1:${this.member(name).apiPort}/status`, { signal: AbortSignal.timeout(timeoutMs) });
      return r.ok ? await r.json() : null;
    } catch {
      return null;
    }
  }

  async api(name: string, method: string, path: string, body?: unknown, token: string | null = TOKEN): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const r = await fetch(`http://127.0.0.1:${this.member(name).apiPort}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(5_000) });
    const text = await r.text();
    let json: any = text;
    try { json = JSON.parse(text); } catch { /* text */ }
    return { status: r.status, body: json };
  }

  async lease(): Promise<any | null> {
    const r = await this.kube.request('GET', `/apis/coordination.k8s.io/v1/namespaces/${this.ns}/leases/pg-leader`);
    return r.status === 200 ? r.body : null;
  }

  async pods(): Promise<any[]> {
    const r = await this.kube.request('GET', `/api/v1/namespaces/${this.ns}/pods`);
    return r.body.items;
  }

  /** The member the read-write Service would route to: the one pod labelled primary. */
  async routed(): Promise<string | null> {
    const l = await this.labelledPrimaries();
    return l.length === 1 ? l[0]! : null;
  }

  /** Members whose pod carries the primary label. */
  async labelledPrimaries(): Promise<string[]> {
    return (await this.pods()).filter((p) => p.metadata.labels?.['pg-autopilot.io/role'] === 'primary').map((p) => p.metadata.name).sort();
  }

  /** Members whose postgres is writable right now (asked directly, not through the autopilot). */
  async writable(): Promise<string[]> {
    const out: string[] = [];
    await Promise.all(this.members.map(async (m) => {
      const c = this.client(m.name, 500);
      try {
        await c.connect();
        const r = await c.query('select pg_is_in_recovery() as r');
        if (r.rows[0].r === false) out.push(m.name);
      } catch { /* down */ } finally { await c.end().catch(() => undefined); }
    }));
    return out.sort();
  }

  /** Each member's postgres as a client sees it now: writable, read-only, down (refused), or no answer within 500 ms (too slow to tell). */
  async roles(): Promise<{ name: string; role: 'writable' | 'read-only' | 'down' | 'no answer' }[]> {
    return Promise.all(this.members.map(async (m) => {
      const c = this.client(m.name, 500);
      try {
        await c.connect();
        const r = await c.query('select pg_is_in_recovery() as r');
        return { name: m.name, role: r.rows[0].r === false ? 'writable' as const : 'read-only' as const };
      } catch (e) {
        const down = (e as NodeJS.ErrnoException).code === 'ECONNREFUSED' || /the database system is (shutting down|starting up)|terminating connection due to administrator command|Connection terminated unexpectedly/.test((e as Error).message);
        return { name: m.name, role: down ? 'down' as const : 'no answer' as const };
      } finally { await c.end().catch(() => undefined); }
    }));
  }

  /** Lines of a member's log that contain `text`. */
  grep(name: string, text: string): string[] {
    try { return readFileSync(this.member(name).logFile, 'utf8').split('\n').filter((l) => l.includes(text)); } catch { return []; }
  }

  client(name: string, timeoutMs = 2_000): pg.Client {
    const m = this.member(name);
    const cl = new pg.Client({ host: '127.0.0.1', port: m.pgPort, user: 'postgres', password: PASSWORD, database: 'postgres', connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs * 2 });
    cl.on('error', () => undefined); // a member going away mid-session is what these tests do
    return cl;
  }

  async sql(name: string, text: string, params: unknown[] = []): Promise<any[]> {
    const c = this.client(name);
    await c.connect();
    try { return (await c.query(text, params)).rows; } finally { await c.end().catch(() => undefined); }
  }

  async waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const v = await fn();
        if (v) return v as T;
      } catch (e) { last = e; }
      await sleep(everyMs);
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}\n${this.tails()}`);
  }

  /** The single lease holder that is writable and labelled, once the cluster agrees. */
  async waitForPrimary(timeoutMs = 60_000, not?: string): Promise<string> {
    return this.waitFor('one primary', async () => {
      const l = await this.lease();
      const holder = l?.spec?.holderIdentity;
      if (!holder || holder === not) return null;
      const [labelled, writable] = await Promise.all([this.labelledPrimaries(), this.writable()]);
      return labelled.length === 1 && labelled[0] === holder && writable.length === 1 && writable[0] === holder ? holder : null;
    }, timeoutMs, 100);
  }

  /** Every running member other than the primary streams from it. */
  async waitForReplicas(primary: string, count: number, timeoutMs = 90_000): Promise<void> {
    await this.waitFor(`${count} streaming replicas of ${primary}`, async () => {
      // pg_basebackup's own WAL stream shows up here too: count members only.
      const names = new Set(this.members.map((m) => m.name));
      const rows = await this.sql(primary, "select application_name from pg_stat_replication where state = 'streaming'");
      return rows.filter((r) => names.has(r.application_name)).length >= count;
    }, timeoutMs, 200);
  }

  tails(lines = 15): string {
    return logTails(this.members, lines);
  }

  async stop(): Promise<void> {
    for (const r of this.restores.splice(0)) r();
    for (const m of this.members) { try { if (m.proc?.pid) this.freeze(m.name, false); } catch { /* gone */ } }
    await Promise.all(this.members.map(async (m) => {
      if (m.proc && m.proc.exitCode === null) await this.signal(m.name, 'SIGKILL', 5_000);
    }));
    // SIGKILLed entrypoints may leave postmasters behind (in a pod the container dies with PID 1).
    for (const m of this.members) {
      const pid = this.postmasterPid(m.name);
      if (pid) { try { process.kill(pid, 'SIGQUIT'); } catch { /* gone */ } }
    }
    await sleep(300);
    for (const m of this.members) {
      const pid = this.postmasterPid(m.name);
      if (pid) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      await m.proxy.close();
      if (m.cgroup) await removeCgroup(m.cgroup);
    }
    // In a pod every process dies with the container; here a daemonized helper (pgBackRest's
    // asynchronous archive-push, retrying a store that is down) outlives its member: kill whatever
    // still runs with this cluster's directory on its command line, as the container's end would.
    for (const pid of processesMentioning(this.dir)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    if (!process.env.PGA_KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
}

/** PIDs of processes whose command line contains `text` (read from /proc; this process excluded). */
function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    const pid = Number(d);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try { if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text)) out.push(pid); } catch { /* exited */ }
  }
  return out;
}

export { startKube };
export { Writer, type WriteRoute } from './writer.js';

/** The last lines of each member's log, for a failure message. */
export function logTails(members: { name: string; logFile: string }[], lines = 15): string {
  return members.map((m) => {
    let t = '';
    try { t = readFileSync(m.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n'); } catch { /* none */ }
    return `--- ${m.name} (${m.logFile}) ---\n${t}`;
  }).join('\n');
}
