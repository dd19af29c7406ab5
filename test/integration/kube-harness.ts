// A real Kubernetes API server for process-level tests: etcd (Debian) + kube-apiserver (built from
// the k8s.io/kubernetes Go module by test/toolchain/install.sh kube), both on loopback ports, in a
// temporary directory, stopped by PID. No kubelet: Pod objects stay Pending and stand for members.
//
//   const kube = await startKube();
//   const ns = await kube.namespace('t1');                 // fresh namespace + member Role
//   const p = await kube.proxy('m0', 'member');            // a cuttable path to the API server
//   p.kubeconfig  → file a member process uses; p.cut('blackhole' | 'refuse'); p.restore()
//   const q = await kube.proxy('m1', 'member', { faults: true });  // q.http.faults: late watch, lost replies
//   await kube.request('GET', `/api/v1/namespaces/${ns}/pods`)
//   await kube.stop()
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, chmodSync, rmSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as net from 'node:net';
import * as https from 'node:https';
import { startFaultLayer, type FaultLayer } from './http-faults.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..'); // dist/test/integration → repo
export const ADMIN_TOKEN = 'admin-token-for-tests';
export const MEMBER_TOKEN = 'member-token-for-tests';
/** The rules the chart's Role grants; members in tests run with exactly these. */
export const MEMBER_RULES = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'patch', 'delete'] },
  { apiGroups: ['apps'], resources: ['statefulsets'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'] },
];

export type CutMode = 'blackhole' | 'refuse';
export interface KubeProxy {
  name: string;
  port: number;
  kubeconfig: string;
  /** Drop every open connection; new ones hang forever ('blackhole', like a partition) or are refused. */
  cut(mode?: CutMode): void;
  restore(): void;
  close(): Promise<void>;
  /** The HTTP fault layer behind the cut (proxy(..., { faults: true })), else null. */
  http: FaultLayer | null;
}
export interface KubeOptions {
  /**
   * Write a Metadata-level audit log (one JSON event per line, RequestReceived omitted) to
   * `<dir>/audit.log`, e.g. to count a product's API requests. Off by default.
   */
  audit?: boolean;
}
export interface Kube {
  server: string;
  dir: string;
  caFile: string;
  /** Path of the audit log when started with { audit: true }. */
  auditLog?: string;
  /** Kubeconfig for the admin (system:masters) or the least-privilege member user. */
  kubeconfig(user?: 'admin' | 'member', server?: string): string;
  namespace(prefix: string): Promise<string>;
  /** faults: put an HTTP fault layer (http-faults.ts) between the cuttable proxy and the API server. */
  proxy(name: string, user?: 'admin' | 'member', opts?: { faults?: boolean }): Promise<KubeProxy>;
  request<T = any>(method: string, path: string, body?: unknown, contentType?: string): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

export function binary(name: string): string {
  const linked = join(ROOT, '.tools', 'bin', name);
  if (existsSync(linked)) return linked;
  const onPath = ['/usr/bin', '/usr/local/bin'].map((d) => join(d, name)).find(existsSync);
  if (onPath) return onPath;
  throw new Error(`${name} not found in ${join(ROOT, '.tools/bin')} or /usr/bin: run "bash test/toolchain/install.sh debs kube" first`);
}

const handedOut = new Set<number>();
/**
 * A port nothing listens on, below Linux's ephemeral range (32768+) so that no outgoing
 * connection takes it between this check and the listener that wants it, and never the same
 * port twice in one test process.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (handedOut.has(port)) continue;
    const ok = await new Promise<boolean>((res) => {
      const s = net.createServer();
      s.unref();
      s.once('error', () => res(false));
      s.listen(port, '0.0.0.0', () => s.close(() => res(true)));
    });
    if (ok) { handedOut.add(port); return port; }
  }
  throw new Error('no free port found in 20000-31999');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startProcess(name: string, cmd: string, args: string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.on('error', (e) => console.error(`[kube-harness] ${name} failed to start: ${e.message}`));
  return child;
}

async function stopProcess(child: ChildProcess | undefined, timeoutMs = 5000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(t);
}

function openssl(args: string[], cwd: string) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makePki(dir: string) {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', '/CN=pga-test-ca'], dir);
  writeFileSync(join(dir, 'san.cnf'), '[req]\ndistinguished_name=dn\n[dn]\n[ext]\nsubjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n');
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'apiserver.key', '-out', 'apiserver.csr', '-subj', '/CN=kube-apiserver'], dir);
  openssl(['x509', '-req', '-in', 'apiserver.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'apiserver.crt', '-days', '30', '-extfile', 'san.cnf', '-extensions', 'ext'], dir);
  openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  writeFileSync(join(dir, 'tokens.csv'), `${ADMIN_TOKEN},admin,uid-admin,system:masters\n${MEMBER_TOKEN},pga-member,uid-member\n`);
}

function writeKubeconfig(file: string, server: string, caFile: string, token: string) {
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: test\n  cluster:\n    server: ${server}\n    certificate-authority: ${caFile}`,
      'users:',
      `- name: test\n  user:\n    token: ${token}`,
      'contexts:',
      '- name: test\n  context:\n    cluster: test\n    user: test',
      'current-context: test',
      '',
    ].join('\n'),
  );
  chmodSync(file, 0o644);
}

export async function startKube(opts: KubeOptions = {}): Promise<Kube> {
  const dir = mkdtempSync(join(tmpdir(), 'pga-kube-'));
  chmodSync(dir, 0o755); // member processes run as the postgres user and read the kubeconfigs
  makePki(dir);
  chmodSync(join(dir, 'ca.crt'), 0o644);
  const caFile = join(dir, 'ca.crt');
  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
  const auditLog = opts.audit ? join(dir, 'audit.log') : undefined;
  const auditArgs: string[] = [];
  if (auditLog) {
    writeFileSync(join(dir, 'audit-policy.yaml'), [
      'apiVersion: audit.k8s.io/v1',
      'kind: Policy',
      'omitStages: ["RequestReceived"]',
      'rules:',
      '- level: Metadata',
      '',
    ].join('\n'));
    auditArgs.push(`--audit-policy-file=${join(dir, 'audit-policy.yaml')}`, `--audit-log-path=${auditLog}`,
      '--audit-log-format=json', '--audit-log-mode=blocking', '--audit-log-maxsize=0');
  }
  const etcd = startProcess('etcd', binary('etcd'), [
    '--name', 'test', '--data-dir', join(dir, 'etcd'),
    '--listen-client-urls', `http://127.0.0.1:${etcdClient}`, '--advertise-client-urls', `http://127.0.0.1:${etcdClient}`,
    '--listen-peer-urls', `http://127.0.0.1:${etcdPeer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeer}`,
    '--initial-cluster', `test=http://127.0.0.1:${etcdPeer}`,
    '--log-level', 'warn',
  ], join(dir, 'etcd.log'));
  const apiserver = startProcess('kube-apiserver', binary('kube-apiserver'), [
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    `--secure-port=${apiPort}`, '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1',
    `--tls-cert-file=${join(dir, 'apiserver.crt')}`, `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
    `--client-ca-file=${caFile}`, `--token-auth-file=${join(dir, 'tokens.csv')}`,
    `--service-account-key-file=${join(dir, 'sa.pub')}`, `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
    '--service-account-issuer=https://kubernetes.default.svc', '--service-cluster-ip-range=10.96.0.0/24',
    '--authorization-mode=RBAC', '--disable-admission-plugins=ServiceAccount',
    '--enable-priority-and-fairness=false', '--v=0', ...auditArgs,
  ], join(dir, 'apiserver.log'));
  const server = `https://127.0.0.1:${apiPort}`;
  const ca = readFileSync(caFile);
  const proxies: KubeProxy[] = [];

  const request: Kube['request'] = (method, path, body, contentType = 'application/json') =>
    new Promise((res, rej) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = https.request(
        `${server}${path}`,
        {
          method, ca, timeout: 10000,
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, accept: 'application/json', ...(data ? { 'content-type': contentType } : {}) },
        },
        (r) => {
          let text = '';
          r.setEncoding('utf8');
          r.on('data', (c) => (text += c));
          r.on('end', () => {
            let parsed: any = text;
            try { parsed = JSON.parse(text); } catch { /* not JSON (e.g. /readyz) */ }
            res({ status: r.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
      req.on('error', rej);
      if (data) req.write(data);
      req.end();
    });

  const stop = async () => {
    for (const p of proxies) await p.close();
    await stopProcess(apiserver);
    await stopProcess(etcd);
    if (!process.env.PGA_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
  };

  // Wait for the API server (cold start of etcd + apiserver: a few seconds).
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (apiserver.exitCode !== null || etcd.exitCode !== null) {
      const log = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8').split('\n').slice(-15).join('\n') : '');
      await stop();
      throw new Error(`kube-apiserver or etcd exited during start-up:\n${log('etcd.log')}\n${log('apiserver.log')}`);
    }
    try {
      const r = await request('GET', '/readyz');
      if (r.status === 200) break;
    } catch { /* not yet listening */ }
    if (Date.now() > deadline) { await stop(); throw new Error(`kube-apiserver not ready after 90 s; see ${dir}/apiserver.log`); }
    await sleep(300);
  }

  const kubeconfig: Kube['kubeconfig'] = (user = 'admin', srv = server) => {
    const file = join(dir, `kubeconfig-${user}-${srv.replace(/\W+/g, '_')}`);
    writeKubeconfig(file, srv, caFile, user === 'admin' ? ADMIN_TOKEN : MEMBER_TOKEN);
    return file;
  };

  let nsCounter = 0;
  const namespace: Kube['namespace'] = async (prefix) => {
    const name = `${prefix.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 40)}-${++nsCounter}-${Math.random().toString(36).slice(2, 7)}`;
    const must = async (p: Promise<{ status: number; body: any }>, what: string) => {
      const r = await p;
      if (r.status >= 300) throw new Error(`${what}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    };
    await must(request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }), 'create namespace');
    await must(request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${name}/roles`, {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'pga-member' }, rules: MEMBER_RULES,
    }), 'create role');
    await must(request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${name}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'pga-member' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pga-member' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'pga-member' }],
    }), 'create rolebinding');
    // The RBAC authorizer learns of the binding from its informer a moment later: until then the
    // member's first request may get a 403 (seen on a loaded machine). Wait until it is in force.
    for (const t0 = Date.now(); ;) {
      const r = await request('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview',
        spec: { user: 'pga-member', resourceAttributes: { namespace: name, verb: 'list', resource: 'pods' } },
      });
      if (r.status < 300 && r.body?.status?.allowed === true) break;
      if (Date.now() - t0 > 15_000) throw new Error(`the member's RoleBinding in ${name} is not in force after 15 s: ${JSON.stringify(r.body?.status ?? r.body)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    return name;
  };

  const proxy: Kube['proxy'] = async (name, user = 'member', opts = {}) => {
    const port = await freePort();
    const layer = opts.faults
      ? await startFaultLayer({ upstreamPort: apiPort, ca, key: readFileSync(join(dir, 'apiserver.key')), cert: readFileSync(join(dir, 'apiserver.crt')) })
      : null;
    const target = layer ? layer.port : apiPort;
    let mode: 'open' | CutMode = 'open';
    const pairs = new Set<{ client: net.Socket; upstream: net.Socket | null }>();
    const srv = net.createServer((client) => {
      const pair = { client, upstream: null as net.Socket | null };
      pairs.add(pair);
      client.on('close', () => { pairs.delete(pair); pair.upstream?.destroy(); });
      client.on('error', () => undefined);
      if (mode === 'refuse') { client.destroy(); return; }
      if (mode === 'blackhole') return; // accept and say nothing, like a partitioned network
      const upstream = net.connect(target, '127.0.0.1');
      pair.upstream = upstream;
      upstream.on('close', () => client.destroy());
      upstream.on('error', () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', () => r()));
    const p: KubeProxy = {
      name, port,
      kubeconfig: kubeconfig(user, `https://127.0.0.1:${port}`),
      cut(m: CutMode = 'blackhole') {
        mode = m;
        for (const { client, upstream } of pairs) {
          if (m === 'refuse') { client.destroy(); continue; }
          // A partition: open connections stay open but nothing crosses them any more.
          if (upstream) { client.unpipe(upstream); upstream.unpipe(client); upstream.pause(); }
          client.pause();
        }
      },
      restore() {
        mode = 'open';
        // Connections that hung through the cut are reset, as a real network's would time out.
        for (const { client } of pairs) client.destroy();
      },
      close: async () => {
        await new Promise<void>((r) => { for (const { client } of pairs) client.destroy(); srv.close(() => r()); });
        await layer?.close();
      },
      http: layer,
    };
    proxies.push(p);
    return p;
  };

  return { server, dir, caFile, ...(auditLog ? { auditLog } : {}), kubeconfig, namespace, proxy, request, stop };
}
