// Requests to the other members' HTTP APIs (status probes, failsafe confirmations) with node:http:
// fetch() loads undici (≈ 10–14 MB of RSS, kept for the life of the process) the first time it is
// used. Answers are validated by the core (core/wire.ts) before anything looks at them.
import { builtin } from './builtin.js';
import { parseMemberStatus, type MemberStatus } from '../core/wire.js';

/**
 * One HTTP request to a peer's API, answered with its status and body text. `timeoutMs` bounds the
 * whole exchange, body included (as AbortSignal.timeout does for fetch); errors reject.
 */
export function peerRequest(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs: number }): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const transport = u.protocol === 'https:' ? builtin('node:https') : builtin('node:http');
    const headers = { ...(opts.headers ?? {}) };
    if (opts.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(opts.body));
    const req = transport.request(u, { method: opts.method ?? 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => { clearTimeout(timer); resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }); });
      res.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
    const timer = setTimeout(() => req.destroy(new Error(`timed out after ${opts.timeoutMs} ms`)), opts.timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.end(opts.body);
  });
}

/** A peer's own status (GET /status → .member), validated; null when it does not answer 2xx in time or is not a status. */
export async function fetchMemberStatus(apiUrl: string, timeoutMs: number): Promise<MemberStatus | null> {
  try {
    const r = await peerRequest(`${apiUrl}/status`, { timeoutMs });
    if (r.status < 200 || r.status >= 300) return null;
    return parseMemberStatus((JSON.parse(r.text) as { member?: unknown }).member);
  } catch {
    return null;
  }
}
