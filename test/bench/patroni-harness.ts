// Patroni (Debian bookworm's package, 3.0.2) with its Kubernetes DCS, as processes, the way
// test/integration/cluster-harness.ts runs our members: a real kube-apiserver + etcd, Pod objects
// that stay Pending and stand for the members (Patroni patches its role label and status
// annotation on them), one Patroni per member as the postgres OS user with PostgreSQL 15, its own
// data directory, postgres port and REST API port on loopback, talking to the API server through
// its own cuttable proxy as the same least-privilege user our members use (plus the Role Patroni
// needs in its namespace).
//
// DCS objects: use_endpoints: true — the leader lock is the `<scope>` Endpoints object, whose
// address/port the leader writes when it takes the lock; a Service without a selector routes
// there (Patroni's recommended Kubernetes setup). Clients here follow that Endpoints object, as
// that Service would (by its port: see podIp()). The role label (`role=master` in 3.0.2) is patched too, and sampled.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, chownSync, rmSync, createWriteStream, writeFileSync, readFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import yaml from 'js-yaml';
import { freePort, type Kube, type KubeProxy } from '../integration/kube-harness.js';
import { logTails } from '../integration/cluster-harness.js';

export const PATRONI_BIN = '/usr/bin/patroni';
export const PG_BIN = '/usr/lib/postgresql/15/bin';
export const PASSWORD = 'super-secret-pw';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isRoot = process.getuid?.() === 0;
const pgIds = isRoot ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) } : null;
const own = (p: string) => { if (pgIds) chownSync(p, pgIds.uid, pgIds.gid); };

/**
 * The address Patroni writes into its leader Endpoints. The API server rejects loopback addresses
 * in Endpoints (422 "may not be in the loopback range"), so this is the machine's first
 * non-loopback IPv4 address; postgres still listens on 127.0.0.1 and clients map the Endpoints'
 * port (unique per member) to the member.
 */
export function podIp(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('no non-loopback IPv4 address for the Endpoints object');
}

/** The rules Patroni's own Kubernetes example grants (kubernetes/patroni_k8s.yaml in its source). */
export const PATRONI_RULES = [
  { apiGroups: [''], resources: ['configmaps'], verbs: ['create', 'get', 'list', 'patch', 'update', 'watch', 'delete', 'deletecollection'] },
  { apiGroups: [''], resources: ['endpoints'], verbs: ['get', 'patch', 'update', 'create', 'list', 'watch', 'delete', 'deletecollection'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'patch', 'update', 'watch'] },
  { apiGroups: [''], resources: ['services'], verbs: ['create'] },
];

export interface PatroniTimings { ttl: number; loop_wait: number; retry_timeout: number }
export interface PatroniOptions {
  members?: number;
  /** true (default): the leader lock is an Endpoints object; false: ConfigMaps (`<scope>-leader`). */
  useEndpoints?: boolean;
}

export interface PatroniMember {
  name: string;
  pgPort: number;
  apiPort: number;
  dir: string;
  dataDir: string;
  logFile: string;
  proxy: KubeProxy;
  proc: ChildProcess | null;
}

export class PatroniCluster {
  readonly members: PatroniMember[] = [];
  readonly scope = 'pgb';
  private constructor(readonly kube: Kube, readonly ns: string, readonly dir: string, readonly timings: PatroniTimings, readonly useEndpoints: boolean) {}

  static available(): string | null {
    if (!existsSync(PATRONI_BIN)) return `${PATRONI_BIN} missing (apt-get install patroni python3-kubernetes)`;
    if (!existsSync(join(PG_BIN, 'postgres'))) return `${PG_BIN}/postgres missing (postgresql-15)`;
    return null;
  }

  static async start(kube: Kube, timings: PatroniTimings, opts: PatroniOptions = {}): Promise<PatroniCluster> {
    const members = opts.members ?? 3;
    const ns = await kube.namespace('pat');
    const must = async (p: Promise<{ status: number; body: any }>, what: string) => {
      const r = await p;
      if (r.status >= 300) throw new Error(`${what}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    };
    await must(kube.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'patroni' }, rules: PATRONI_RULES,
    }), 'create patroni role');
    await must(kube.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'patroni' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'patroni' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'pga-member' }],
    }), 'create patroni rolebinding');
    const dir = mkdtempSync(join(tmpdir(), 'pga-patroni-'));
    chmodSync(dir, 0o755);
    const c = new PatroniCluster(kube, ns, dir, timings, opts.useEndpoints ?? true);
    for (let i = 0; i < members; i++) await c.addMember(`m${i}`);
    for (const m of c.members) c.startMember(m.name);
    return c;
  }

  private async addMember(name: string) {
    const r = await this.kube.request('POST', `/api/v1/namespaces/${this.ns}/pods`, {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name, labels: { app: 'pga-bench', 'cluster-name': this.scope } },
      spec: { containers: [{ name: 'postgres', image: 'patroni:bench' }] },
    });
    if (r.status >= 300) throw new Error(`create pod ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    const mdir = join(this.dir, name);
    for (const d of [mdir, join(mdir, 'run')]) { mkdirSync(d, { recursive: true }); own(d); }
    const m: PatroniMember = {
      name, pgPort: await freePort(), apiPort: await freePort(), dir: mdir, dataDir: join(mdir, 'data'),
      logFile: join(mdir, 'patroni.log'), proxy: await this.kube.proxy(name, 'member'), proc: null,
    };
    const { ttl, loop_wait, retry_timeout } = this.timings;
    const config = {
      scope: this.scope,
      name,
      log: { level: 'INFO' },
      restapi: { listen: `127.0.0.1:${m.apiPort}`, connect_address: `127.0.0.1:${m.apiPort}` },
      kubernetes: {
        namespace: this.ns,
        labels: { app: 'pga-bench' },
        scope_label: 'cluster-name',
        role_label: 'role',
        use_endpoints: this.useEndpoints,
        pod_ip: podIp(),
        ports: [{ name: 'postgresql', port: m.pgPort }],
        context: 'test', // the harness kubeconfig's context (Patroni's default is "kind-kind")
      },
      bootstrap: {
        dcs: {
          ttl, loop_wait, retry_timeout,
          maximum_lag_on_failover: 1048576,
          postgresql: {
            use_pg_rewind: true,
            use_slots: true,
            parameters: { wal_level: 'replica', hot_standby: 'on', max_wal_senders: 10, max_replication_slots: 10, wal_log_hints: 'on' },
          },
        },
        initdb: [{ encoding: 'UTF8' }, { 'auth-local': 'trust' }],
      },
      postgresql: {
        listen: `127.0.0.1:${m.pgPort}`,
        connect_address: `127.0.0.1:${m.pgPort}`,
        data_dir: m.dataDir,
        bin_dir: PG_BIN,
        pgpass: join(mdir, 'pgpass'),
        authentication: {
          superuser: { username: 'postgres', password: PASSWORD },
          replication: { username: 'replicator', password: 'repl-pw' },
        },
        parameters: { unix_socket_directories: join(mdir, 'run') },
        pg_hba: [
          'local all all trust',
          'host replication replicator 127.0.0.1/32 scram-sha-256',
          'host all all 127.0.0.1/32 scram-sha-256',
        ],
      },
      tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
    };
    const cfg = join(mdir, 'patroni.yml');
    writeFileSync(cfg, yaml.dump(config));
    own(cfg);
    this.members.push(m);
  }

  member(name: string): PatroniMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  startMember(name: string) {
    const m = this.member(name);
    const out = createWriteStream(m.logFile, { flags: 'a' });
    const prefix = pgIds ? ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--'] : [];
    const argv = [...prefix, PATRONI_BIN, join(m.dir, 'patroni.yml')];
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', KUBECONFIG: m.proxy.kubeconfig, HOME: m.dir, LANG: 'C.UTF-8' };
    const proc = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    proc.stdout!.pipe(out, { end: false });
    proc.stderr!.pipe(out, { end: false });
    m.proc = proc;
    proc.on('exit', () => { if (m.proc === proc) m.proc = null; });
  }

  postmasterPid(name: string): number | null {
    try {
      const pid = Number(readFileSync(join(this.member(name).dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(pid, 0);
      return pid;
    } catch {
      return null;
    }
  }

  /**
   * Freeze (SIGSTOP) or thaw the member's whole process tree, as a paused container's cgroup
   * freezer would: Patroni and its children, and the postmaster and its children (Patroni starts
   * postgres through an intermediate process that calls setsid and exits, so the postmaster is
   * not Patroni's descendant).
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
    const walk = (pid: number) => { if (tree.includes(pid)) return; tree.push(pid); for (const c of children.get(pid) ?? []) walk(c); };
    walk(p.pid);
    const pm = this.postmasterPid(name);
    if (pm) walk(pm);
    for (const pid of on ? tree : tree.reverse()) { try { process.kill(pid, on ? 'SIGSTOP' : 'SIGCONT'); } catch { /* exited */ } }
  }

  async rest(name: string, method: string, path: string, body?: unknown, timeoutMs = 5_000): Promise<{ status: number; body: any }> {
    const r = await fetch(`http://127.0.0.1:${this.member(name).apiPort}${path}`, {
      method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await r.text();
    let json: any = text;
    try { json = JSON.parse(text); } catch { /* text */ }
    return { status: r.status, body: json };
  }

  /**
   * Where the read-write Service routes. use_endpoints: the member the leader Endpoints object
   * (`<scope>`) points at, as a selector-less Service routes. ConfigMaps: the one pod labelled
   * role=master (a Service selecting role=master; without a kubelet no readiness probe ever takes
   * a stale pod out, so two labelled pods route nowhere here).
   */
  async routed(): Promise<string | null> {
    if (!this.useEndpoints) { const l = await this.labelledPrimaries(); return l.length === 1 ? l[0]! : null; }
    const r = await this.kube.request('GET', `/api/v1/namespaces/${this.ns}/endpoints/${this.scope}`);
    if (r.status !== 200) return null;
    const subset = r.body.subsets?.[0];
    const port = subset?.ports?.[0]?.port;
    if (!subset?.addresses?.length || !port) return null;
    return this.members.find((m) => m.pgPort === port)?.name ?? null;
  }

  /** Pods labelled role=master (Patroni 3.0.2's primary label). */
  async labelledPrimaries(): Promise<string[]> {
    const r = await this.kube.request('GET', `/api/v1/namespaces/${this.ns}/pods`);
    return (r.body.items as any[]).filter((p) => p.metadata.labels?.role === 'master').map((p) => p.metadata.name).sort();
  }

  /** Lock holder as Patroni records it: the `leader` annotation of the leader object. */
  async leader(): Promise<string | null> {
    const r = await this.kube.request('GET', this.useEndpoints ? `/api/v1/namespaces/${this.ns}/endpoints/${this.scope}` : `/api/v1/namespaces/${this.ns}/configmaps/${this.scope}-leader`);
    return r.status === 200 ? r.body.metadata?.annotations?.leader ?? null : null;
  }

  client(name: string, timeoutMs = 2_000): pg.Client {
    const m = this.member(name);
    const cl = new pg.Client({ host: '127.0.0.1', port: m.pgPort, user: 'postgres', password: PASSWORD, database: 'postgres', connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs * 2 });
    cl.on('error', () => undefined);
    return cl;
  }

  async sql(name: string, text: string): Promise<any[]> {
    const c = this.client(name);
    await c.connect();
    try { return (await c.query(text)).rows; } finally { await c.end().catch(() => undefined); }
  }

  tails(lines = 15): string {
    return logTails(this.members, lines);
  }

  async stop(): Promise<void> {
    for (const m of this.members) { try { if (m.proc?.pid) this.freeze(m.name, false); } catch { /* gone */ } }
    await Promise.all(this.members.map(async (m) => {
      const p = m.proc;
      if (!p || p.exitCode !== null) return;
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGKILL');
      await Promise.race([exited, sleep(5_000)]);
    }));
    for (const m of this.members) {
      const pid = this.postmasterPid(m.name);
      if (pid) { try { process.kill(pid, 'SIGQUIT'); } catch { /* gone */ } }
    }
    await sleep(500);
    for (const m of this.members) {
      const pid = this.postmasterPid(m.name);
      if (pid) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      await m.proxy.close();
    }
    if (!process.env.PGA_KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }
}
