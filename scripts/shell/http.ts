// The member's HTTP API (port 8008): probes, status, metrics, and the authenticated operations;
// and the metrics-only listener (PGA_METRICS_PORT): GET /metrics and nothing else, the one port a
// scraper needs, so a NetworkPolicy (which filters by port, not by method) can admit scrapers to it
// and keep 8008, with its POST control endpoints, for the members.
// Both read the autopilot's last observation and decision; they never decide anything themselves.
import type { IncomingMessage, ServerResponse, Server } from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Autopilot } from './autopilot.js';
import { builtin } from './builtin.js';

// Not `import * as http from 'node:http'`: an ES import of node:http reads every export, and
// Node 22+'s node:http exports WebSocket & co. as getters that load undici (≈ 13 MB of RSS).
const http = builtin('node:http');
import type { Logger } from './log.js';
import { SHARD_TRANSFER_MODES, type ShardTransferMode } from '../core/citus.js';

const MAX_BODY = 4096;

export { peerRequest, fetchMemberStatus } from './peers.js';

function tokenMatches(given: string, want: string): boolean {
  // Compare digests so the comparison takes the same time whatever the lengths.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(want).digest();
  return timingSafeEqual(a, b);
}

export function authorize(header: string | undefined, token: string): 200 | 401 | 403 {
  if (!header || !/^Bearer\s+\S+/i.test(header)) return 401;
  return tokenMatches(header.replace(/^Bearer\s+/i, '').trim(), token) ? 200 : 403;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new Error(`body larger than ${MAX_BODY} bytes`)); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** What the API serves: the autopilot (kubernetes mode) or standalone mode's member (standalone.ts). */
export type HttpTarget = Pick<Autopilot, 'alive' | 'ready' | 'isPrimary' | 'isReplica' | 'statusNow' | 'metrics' | 'backups' | 'failsafeAck' | 'requestBackup' | 'setPaused' | 'requestSwitchover'> & {
  snapshot(): { reason: string };
  /** the primary asks for a restart for parameters pending one (POST /restart, members only); absent in standalone mode */
  requestRestart?(from: string): { status: number; message: string };
  /** standalone replica mode: promote on demand (POST /promote); absent elsewhere */
  promote?(): Promise<{ status: number; message: string }>;
  /** Citus: POST starts the shard rebalance, GET reads its state (kubernetes mode; absent in standalone mode) */
  citusRebalance?(start: boolean, mode?: ShardTransferMode | null): Promise<{ status: number; body: unknown }>;
};

const METRICS_TYPE = 'text/plain; version=0.0.4';

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json', headers: Record<string, string> = {}): void {
  const text = type === 'application/json' ? JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n' : String(body);
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', ...headers });
  res.end(text);
}

function listen(server: Server, port: number, host: string | undefined): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host ?? '0.0.0.0', () => resolve(server));
  });
}

/** The metrics-only listener: GET/HEAD /metrics (the same text as the API's), 404 for any other
 *  path, 405 for any other method; no token is read here and nothing can be changed through it. */
export function startMetricsApi(ap: Pick<HttpTarget, 'metrics'>, opts: { port: number; host?: string; log: Logger }): Promise<Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    req.resume();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, { error: `${req.method} is not served on the metrics port, which serves only GET /metrics; the control endpoints are on the API port (8008), for members only` }, 'application/json', { Allow: 'GET, HEAD' });
    }
    if (path !== '/metrics') return send(res, 404, { error: `no such endpoint ${path} on the metrics port; it serves only GET /metrics` });
    try {
      return send(res, 200, ap.metrics(), METRICS_TYPE);
    } catch (e) {
      opts.log.error('metrics handler failed', { error: (e as Error).message });
      if (!res.headersSent) send(res, 500, { error: (e as Error).message });
    }
  });
  return listen(server, opts.port, opts.host);
}

export function startHttpApi(ap: HttpTarget, opts: { port: number; host?: string; token: string; log: Logger }): Promise<Server> {
  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    try {
      if (req.method === 'GET' || req.method === 'HEAD') {
        switch (path) {
          case '/healthz': return ap.alive() ? send(res, 200, { ok: true }) : send(res, 503, { ok: false, error: 'the autopilot loop is stuck' });
          case '/readyz': return ap.ready() ? send(res, 200, { ok: true }) : send(res, 503, { ok: false, reason: ap.snapshot().reason });
          case '/primary': return ap.isPrimary() ? send(res, 200, { primary: true }) : send(res, 503, { primary: false });
          case '/replica': return ap.isReplica() ? send(res, 200, { replica: true }) : send(res, 503, { replica: false });
          case '/status': return send(res, 200, await ap.statusNow());
          case '/metrics': return send(res, 200, ap.metrics(), METRICS_TYPE);
          case '/backups': { const r = await ap.backups(); return send(res, r.status, r.body); }
          case '/citus/rebalance': { const r = ap.citusRebalance ? await ap.citusRebalance(false) : { status: 409, body: { error: 'Citus runs in Kubernetes mode only' } }; return send(res, r.status, r.body); }
          default: return send(res, 404, { error: `no such endpoint ${path}; try /status` });
        }
      }
      if (req.method === 'POST' && ['/switchover', '/pause', '/resume', '/failsafe', '/backup', '/promote', '/restart', '/citus/rebalance'].includes(path)) {
        const auth = authorize(req.headers.authorization, opts.token);
        if (auth !== 200) {
          req.resume();
          return send(res, auth, { error: auth === 401 ? 'missing "Authorization: Bearer <token>" (the api-token secret)' : 'wrong token' });
        }
        if (path === '/citus/rebalance') {
          let body: { mode?: unknown } = {};
          const raw = await readBody(req);
          if (raw.trim()) { try { body = JSON.parse(raw) as typeof body; } catch { return send(res, 400, { error: 'body must be JSON: {"mode": "auto"|"force_logical"|"block_writes"} or empty (chosen from wal_level)' }); } }
          const mode = body.mode ?? null;
          if (mode !== null && !(SHARD_TRANSFER_MODES as readonly unknown[]).includes(mode)) return send(res, 400, { error: `"mode" must be ${SHARD_TRANSFER_MODES.join(', ')}; got ${JSON.stringify(mode)}` });
          const r = ap.citusRebalance ? await ap.citusRebalance(true, mode as ShardTransferMode | null) : { status: 409, body: { error: 'Citus runs in Kubernetes mode only' } };
          return send(res, r.status, r.body);
        }
        if (path === '/promote') {
          req.resume();
          const r = ap.promote ? await ap.promote() : { status: 409, message: 'promote is for standalone replica mode; in Kubernetes use "autopilot switchover"' };
          return send(res, r.status, { message: r.message });
        }
        if (path === '/restart') {
          let body: { from?: unknown } = {};
          try { body = JSON.parse(await readBody(req)) as typeof body; } catch { /* below */ }
          if (typeof body.from !== 'string' || !body.from) return send(res, 400, { error: 'body must be {"from": "MEMBER"} (the primary asking)' });
          const r = ap.requestRestart ? ap.requestRestart(body.from) : { status: 409, message: 'restarts for parameters are rolled by the primary in Kubernetes mode only' };
          return send(res, r.status, { message: r.message });
        }
        if (path === '/failsafe') {
          let body: { leader?: unknown; release?: unknown } = {};
          try { body = JSON.parse(await readBody(req)) as typeof body; } catch { /* below */ }
          if (typeof body.leader !== 'string' || !body.leader) return send(res, 400, { error: 'body must be {"leader": "MEMBER", "release"?: true}' });
          const r = ap.failsafeAck(body.leader, body.release === true);
          return send(res, r.status, { message: r.message });
        }
        if (path === '/backup') {
          let body: { type?: unknown } = {};
          const raw = await readBody(req);
          if (raw.trim()) { try { body = JSON.parse(raw) as typeof body; } catch { return send(res, 400, { error: 'body must be JSON: {"type": "full"|"diff"|"incr"} or empty (full)' }); } }
          const type = body.type ?? 'full';
          if (type !== 'full' && type !== 'diff' && type !== 'incr') return send(res, 400, { error: `"type" must be full, diff or incr; got ${JSON.stringify(type)}` });
          const r = ap.requestBackup(type);
          return send(res, r.status, { message: r.message });
        }
        if (path === '/pause' || path === '/resume') {
          const r = await ap.setPaused(path === '/pause');
          return send(res, r.status, { message: r.message });
        }
        const raw = await readBody(req);
        let to: string | null = null;
        if (raw.trim()) {
          let parsed: unknown;
          try { parsed = JSON.parse(raw); } catch { return send(res, 400, { error: 'body must be JSON: {"to": "MEMBER"} or empty' }); }
          const t = (parsed as { to?: unknown })?.to;
          if (t !== undefined && t !== null && (typeof t !== 'string' || !t)) return send(res, 400, { error: '"to" must be a member name' });
          to = (t as string | undefined) ?? null;
        }
        const r = await ap.requestSwitchover(to);
        return send(res, r.status, { message: r.message });
      }
      return send(res, 405, { error: `${req.method} ${path} is not supported` });
    } catch (e) {
      opts.log.error('http handler failed', { path, error: (e as Error).message });
      if (!res.headersSent) send(res, 500, { error: (e as Error).message });
    }
  });
  return listen(server, opts.port, opts.host);
}
