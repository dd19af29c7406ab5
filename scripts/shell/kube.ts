// A small Kubernetes API client: exactly the calls the autopilot makes (Leases, own/peer pods,
// events), with bounded timeouts, watches that re-list on expiry, and a count of every request so
// the API load is measured, not guessed. node:https only: the autopilot needs tight control over
// timeouts during a partition, which a general client hides behind retries.
import type { ClientRequest, Agent } from 'node:http';
import { readFileSync, existsSync } from 'node:fs';
import { builtin, lazyPackage } from './builtin.js';

// node:http with require(), not an ES import (see builtin.ts); node:https (TLS) only for an
// https server, js-yaml only for a kubeconfig file: a member in a pod reads no YAML.
const http = builtin('node:http');
const yaml = lazyPackage('js-yaml');

export interface KubeConnection {
  server: string;
  ca?: Buffer;
  token?: () => string;
  cert?: Buffer;
  key?: Buffer;
  insecure?: boolean;
}

export class KubeError extends Error {
  constructor(
    message: string,
    readonly status: number, // 0 = network error or timeout
    readonly reason: string,
  ) {
    super(message);
    this.name = 'KubeError';
  }
  get conflict(): boolean { return this.status === 409; }
  get notFound(): boolean { return this.status === 404; }
  get unreachable(): boolean { return this.status === 0; }
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** In-cluster config (ServiceAccount token, re-read as it rotates) or a kubeconfig file. */
export function loadConnection(kubeconfig: string | null, env: Record<string, string | undefined> = process.env): KubeConnection {
  if (!kubeconfig) {
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT ?? '443';
    if (!host || !existsSync(`${SA_DIR}/token`)) {
      throw new Error('no Kubernetes API configured: not in a pod (KUBERNETES_SERVICE_HOST or the ServiceAccount token is missing) and KUBECONFIG is not set');
    }
    let token = '';
    let readAt = 0;
    return {
      server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
      ca: readFileSync(`${SA_DIR}/ca.crt`),
      token: () => {
        if (Date.now() - readAt > 60_000) { token = readFileSync(`${SA_DIR}/token`, 'utf8').trim(); readAt = Date.now(); }
        return token;
      },
    };
  }
  let doc: any;
  try {
    doc = yaml().load(readFileSync(kubeconfig, 'utf8'));
  } catch (e) {
    throw new Error(`KUBECONFIG ${kubeconfig}: cannot read it as YAML (${(e as Error).message})`);
  }
  const ctxName = doc?.['current-context'];
  const ctx = (doc?.contexts ?? []).find((c: any) => c.name === ctxName)?.context;
  if (!ctx) throw new Error(`KUBECONFIG ${kubeconfig}: current-context "${ctxName}" not found`);
  const cluster = (doc.clusters ?? []).find((c: any) => c.name === ctx.cluster)?.cluster;
  const user = (doc.users ?? []).find((u: any) => u.name === ctx.user)?.user ?? {};
  if (!cluster?.server) throw new Error(`KUBECONFIG ${kubeconfig}: cluster "${ctx.cluster}" has no server`);
  const fileOrData = (file?: string, data?: string) => (data ? Buffer.from(data, 'base64') : file ? readFileSync(file) : undefined);
  const staticToken = user.token ?? (user.tokenFile ? readFileSync(user.tokenFile, 'utf8').trim() : undefined);
  return {
    server: cluster.server,
    ca: fileOrData(cluster['certificate-authority'], cluster['certificate-authority-data']),
    insecure: cluster['insecure-skip-tls-verify'] === true,
    token: staticToken ? () => staticToken : undefined,
    cert: fileOrData(user['client-certificate'], user['client-certificate-data']),
    key: fileOrData(user['client-key'], user['client-key-data']),
  };
}

export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}

export interface Pod {
  metadata: {
    name: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string;
    ownerReferences?: { kind: string; name: string }[];
  };
  status?: { podIP?: string; phase?: string; conditions?: { type: string; status: string }[] };
}

export interface StatefulSet {
  metadata: { name: string; resourceVersion?: string };
  spec?: { replicas?: number; updateStrategy?: { type?: string } };
  status?: { updateRevision?: string; currentRevision?: string };
}

export type WatchEvent<T> = { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK'; object: T };

export interface Kube {
  readonly namespace: string;
  /** requests sent, by verb (get, list, watch, create, update, patch) */
  readonly counts: Record<string, number>;
  getLease(name: string, timeoutMs?: number): Promise<Lease | null>;
  createLease(lease: Lease, timeoutMs?: number): Promise<Lease>;
  /** PUT conditional on lease.metadata.resourceVersion: throws KubeError with conflict on a lost race. */
  updateLease(lease: Lease, timeoutMs?: number): Promise<Lease>;
  listPods(selector: string, timeoutMs?: number): Promise<{ items: Pod[]; resourceVersion: string }>;
  patchPod(name: string, patch: { labels?: Record<string, string | null>; annotations?: Record<string, string | null> }, timeoutMs?: number): Promise<Pod>;
  event(kind: 'Pod' | 'Lease', name: string, reason: string, message: string, type?: 'Normal' | 'Warning'): Promise<void>;
  /** Lists then watches; calls onChange with the full current set after every change. Returns a stop function. */
  informPods(selector: string, onChange: (pods: Map<string, Pod>) => void, onHealth?: (ok: boolean) => void): () => void;
  informLease(name: string, onChange: (lease: Lease | null) => void, onHealth?: (ok: boolean) => void): () => void;
  informStatefulSet(name: string, onChange: (sts: StatefulSet | null) => void): () => void;
  deletePod(name: string, timeoutMs?: number): Promise<void>;
  /** Evict a pod through the Eviction API: the PodDisruptionBudget is honoured (429 = not now). */
  evictPod(name: string, timeoutMs?: number): Promise<void>;
  /** Drop every watch stream so each informer lists again (after a failed or conflicting write, a watch may be stale). */
  resync(): void;
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 2_000;
/** A watch stream lasts this long; then it resumes from the last resourceVersion it saw (no re-list). */
const DEFAULT_WATCH_SECONDS = 540;

export function createKube(conn: KubeConnection, namespace: string, log?: (msg: string, f?: Record<string, unknown>) => void, opts: { watchSeconds?: number } = {}): Kube {
  const WATCH_SECONDS = opts.watchSeconds ?? DEFAULT_WATCH_SECONDS;
  const url = new URL(conn.server);
  const isHttps = url.protocol === 'https:';
  const https = isHttps ? builtin('node:https') : null;
  const transport = https ?? http;
  const agentOpts = { keepAlive: true, maxSockets: 8, ca: conn.ca, cert: conn.cert, key: conn.key, rejectUnauthorized: !conn.insecure };
  const agent: Agent = https ? new https.Agent(agentOpts) : new http.Agent({ keepAlive: true, maxSockets: 8 });
  // Watches get their own agent so a hanging watch never holds a socket a lease write needs.
  const watchAgent: Agent = https ? new https.Agent({ ...agentOpts, keepAlive: false }) : new http.Agent();
  const counts: Record<string, number> = {};
  const count = (verb: string) => { counts[verb] = (counts[verb] ?? 0) + 1; };
  const basePath = url.pathname.replace(/\/$/, '');

  function headers(contentType?: string): Record<string, string> {
    const h: Record<string, string> = { Accept: 'application/json' };
    if (contentType) h['Content-Type'] = contentType;
    const t = conn.token?.();
    if (t) h.Authorization = `Bearer ${t}`;
    return h;
  }

  function request<T>(verb: string, method: string, path: string, body?: unknown, timeoutMs = DEFAULT_TIMEOUT_MS, contentType = 'application/json'): Promise<T> {
    count(verb);
    return new Promise<T>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = transport.request(
        { protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || (isHttps ? 443 : 80), path: basePath + path, method, agent, headers: headers(payload ? contentType : undefined) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            clearTimeout(timer);
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: any = undefined;
            try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve(parsed as T);
            const reason = parsed?.reason ?? http.STATUS_CODES[status] ?? 'Unknown';
            reject(new KubeError(`${method} ${path}: HTTP ${status} ${reason}: ${parsed?.message ?? text.slice(0, 200)}`, status, reason));
          });
          res.on('error', (e) => { clearTimeout(timer); reject(new KubeError(`${method} ${path}: ${e.message}`, 0, 'NetworkError')); });
        },
      );
      const timer = setTimeout(() => {
        req.destroy(new Error(`timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      req.on('error', (e) => { clearTimeout(timer); reject(new KubeError(`${method} ${path}: ${e.message}`, 0, 'NetworkError')); });
      if (payload) req.write(payload);
      req.end();
    });
  }

  const leasePath = (name = '') => `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases${name ? `/${encodeURIComponent(name)}` : ''}`;
  const podsPath = (name = '') => `/api/v1/namespaces/${namespace}/pods${name ? `/${encodeURIComponent(name)}` : ''}`;

  const stoppers = new Set<() => void>();
  const restarters = new Set<() => void>();

  /** list + watch with re-list on expiry (410) or a dropped stream; backoff while the API is down. */
  function inform<T extends { metadata: { name: string; resourceVersion?: string } }>(
    what: string,
    list: () => Promise<{ items: T[]; resourceVersion: string }>,
    watchPath: (rv: string) => string,
    onChange: (items: Map<string, T>) => void,
    onHealth?: (ok: boolean) => void,
  ): () => void {
    let stopped = false;
    let current: ClientRequest | null = null;
    restarters.add(() => current?.destroy(new Error('resync')));
    let retry: NodeJS.Timeout | null = null;
    let backoff = 250;
    const items = new Map<string, T>();
    const stop = () => { stopped = true; current?.destroy(); if (retry) clearTimeout(retry); stoppers.delete(stop); };
    stoppers.add(stop);

    const again = (delay: number) => {
      if (stopped) return;
      retry = setTimeout(() => void cycle(), delay);
    };
    /** resumeRv: continue watching from there (after a clean end of the stream); otherwise list first. */
    async function cycle(resumeRv?: string) {
      if (stopped) return;
      let rv: string;
      if (resumeRv) rv = resumeRv;
      else try {
        const l = await list();
        items.clear();
        for (const it of l.items) items.set(it.metadata.name, it);
        rv = l.resourceVersion;
        backoff = 250;
        onHealth?.(true);
        onChange(new Map(items));
      } catch (e) {
        onHealth?.(false);
        log?.(`${what}: list failed, retrying`, { error: (e as Error).message });
        backoff = Math.min(backoff * 2, 4_000);
        return again(backoff);
      }
      count('watch');
      let ended = false;
      let lastRv = rv;
      const req = transport.request({
        protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || (isHttps ? 443 : 80),
        path: basePath + watchPath(rv), method: 'GET', agent: watchAgent, headers: headers(),
      });
      current = req;
      // A watch that says nothing (not even a bookmark) for longer than the server's timeout is dead.
      let idle = setTimeout(() => req.destroy(new Error('watch silent')), (WATCH_SECONDS + 30) * 1000);
      req.on('response', (res) => {
        if (res.statusCode !== 200) { res.resume(); req.destroy(new Error(`watch HTTP ${res.statusCode}`)); return; }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            let ev: WatchEvent<T> & { object: any };
            try { ev = JSON.parse(line); } catch { continue; }
            if ((ev.type as string) === 'ERROR') { req.destroy(new Error(`watch error ${ev.object?.code}: ${ev.object?.message}`)); return; }
            if (ev.object?.metadata?.resourceVersion) lastRv = ev.object.metadata.resourceVersion;
            if (ev.type === 'BOOKMARK') continue;
            if (ev.type === 'DELETED') items.delete(ev.object.metadata.name);
            else items.set(ev.object.metadata.name, ev.object);
            onChange(new Map(items));
          }
        });
        // A stream that ends or breaks (connection reset mid-response) lists again.
        // The server closed the stream after timeoutSeconds: resume from the last version seen
        // (an expired version answers 410 as an ERROR event, and that path lists again).
        res.on('end', () => { clearTimeout(idle); if (!ended && !stopped) { ended = true; retry = setTimeout(() => void cycle(lastRv), 0); } });
        res.on('error', () => undefined);
        res.on('close', () => { clearTimeout(idle); if (!ended && !stopped) { ended = true; onHealth?.(false); again(backoff); } });
      });
      req.on('error', (e) => {
        clearTimeout(idle);
        if (stopped || ended) return;
        ended = true;
        log?.(`${what}: watch ended`, { error: e.message });
        onHealth?.(false);
        again(backoff);
      });
      req.end();
      void idle;
    }
    void cycle();
    return stop;
  }

  return {
    namespace,
    counts,
    async getLease(name, timeoutMs) {
      try {
        return await request<Lease>('get', 'GET', leasePath(name), undefined, timeoutMs);
      } catch (e) {
        if (e instanceof KubeError && e.notFound) return null;
        throw e;
      }
    },
    createLease: (lease, timeoutMs) => request<Lease>('create', 'POST', leasePath(), { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', ...lease }, timeoutMs),
    updateLease(lease, timeoutMs) {
      if (!lease.metadata.resourceVersion) throw new Error('updateLease needs metadata.resourceVersion (every lock change is conditional)');
      return request<Lease>('update', 'PUT', leasePath(lease.metadata.name), { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', ...lease }, timeoutMs);
    },
    async listPods(selector, timeoutMs) {
      const r = await request<{ items: Pod[]; metadata: { resourceVersion: string } }>('list', 'GET', `${podsPath()}?labelSelector=${encodeURIComponent(selector)}`, undefined, timeoutMs);
      return { items: r.items, resourceVersion: r.metadata.resourceVersion };
    },
    patchPod: (name, patch, timeoutMs) =>
      request<Pod>('patch', 'PATCH', podsPath(name), { metadata: { labels: patch.labels, annotations: patch.annotations } }, timeoutMs, 'application/merge-patch+json'),
    async event(kind, name, reason, message, type = 'Normal') {
      const now = new Date().toISOString();
      const involved = kind === 'Pod' ? { apiVersion: 'v1', kind: 'Pod', name, namespace } : { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', name, namespace };
      try {
        await request('create', 'POST', `/api/v1/namespaces/${namespace}/events`, {
          apiVersion: 'v1', kind: 'Event',
          metadata: { generateName: `${name}.`, namespace },
          involvedObject: involved, reason, message: message.slice(0, 1000), type,
          firstTimestamp: now, lastTimestamp: now, count: 1, source: { component: 'pg-autopilot' },
        });
      } catch (e) {
        log?.('could not record an event', { reason, error: (e as Error).message });
      }
    },
    informPods(selector, onChange, onHealth) {
      return inform<Pod>('pods', () => this.listPods(selector),
        (rv) => `${podsPath()}?watch=1&allowWatchBookmarks=true&timeoutSeconds=${WATCH_SECONDS}&labelSelector=${encodeURIComponent(selector)}&resourceVersion=${rv}`,
        onChange, onHealth);
    },
    informStatefulSet(name, onChange) {
      const path = `/apis/apps/v1/namespaces/${namespace}/statefulsets`;
      const sel = encodeURIComponent(`metadata.name=${name}`);
      return inform<StatefulSet>('statefulset', async () => {
        const r = await request<{ items: StatefulSet[]; metadata: { resourceVersion: string } }>('list', 'GET', `${path}?fieldSelector=${sel}`);
        return { items: r.items, resourceVersion: r.metadata.resourceVersion };
      }, (rv) => `${path}?watch=1&allowWatchBookmarks=true&timeoutSeconds=${WATCH_SECONDS}&fieldSelector=${sel}&resourceVersion=${rv}`,
      (m) => onChange(m.get(name) ?? null));
    },
    async deletePod(name, timeoutMs) {
      await request('delete', 'DELETE', podsPath(name), undefined, timeoutMs);
    },
    async evictPod(name, timeoutMs) {
      await request('create', 'POST', `${podsPath(name)}/eviction`, { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace } }, timeoutMs);
    },
    informLease(name, onChange, onHealth) {
      return inform<Lease>('lease', async () => {
        const r = await request<{ items: Lease[]; metadata: { resourceVersion: string } }>('list', 'GET', `${leasePath()}?fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`);
        return { items: r.items, resourceVersion: r.metadata.resourceVersion };
      },
      (rv) => `${leasePath()}?watch=1&allowWatchBookmarks=true&timeoutSeconds=${WATCH_SECONDS}&fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}&resourceVersion=${rv}`,
      (m) => onChange(m.get(name) ?? null), onHealth);
    },
    resync() {
      for (const r of restarters) r();
    },
    close() {
      for (const s of [...stoppers]) s();
      agent.destroy();
      watchAgent.destroy();
    },
  };
}
