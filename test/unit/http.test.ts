// The metrics-only listener (PGA_METRICS_PORT) beside the API (8008): the one port a scraper is
// admitted to serves GET /metrics and nothing else, so no control endpoint is reachable through
// it, with or without the token; the API keeps serving /metrics for members and tests.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startHttpApi, startMetricsApi, type HttpTarget } from '../../scripts/shell/http.js';
import { createLogger } from '../../scripts/shell/log.js';

const TOKEN = 'tok';
const METRICS = 'pga_role{role="primary"} 1\npga_lag_bytes 0\n';

/** A target whose control operations count their calls: none may happen through the metrics port. */
function target() {
  const calls: string[] = [];
  const ok = (what: string) => { calls.push(what); return { status: 200, message: what }; };
  const t: HttpTarget = {
    alive: () => true, ready: () => true, isPrimary: () => true, isReplica: () => false,
    statusNow: async () => ({ name: 'm0' }) as never,
    metrics: () => METRICS,
    backups: async () => ({ status: 200, body: [] }),
    failsafeAck: () => ok('failsafe'),
    requestBackup: () => ok('backup'),
    setPaused: async (p: boolean) => ok(p ? 'pause' : 'resume'),
    requestSwitchover: async () => ok('switchover'),
    requestRestart: () => ok('restart'),
    snapshot: () => ({ reason: 'test' }),
  };
  return { t, calls };
}

const log = createLogger({ format: 'json', level: 'error', stream: { write: () => true } as unknown as NodeJS.WritableStream });
const port = (s: Server) => (s.address() as AddressInfo).port;

describe('metrics-only listener', () => {
  const { t, calls } = target();
  let metrics: Server, api: Server;
  before(async () => {
    metrics = await startMetricsApi(t, { port: 0, host: '127.0.0.1', log });
    api = await startHttpApi(t, { port: 0, host: '127.0.0.1', token: TOKEN, log });
  });
  after(() => { metrics.close(); api.close(); });
  const req = (s: Server, method: string, path: string, body?: string) =>
    fetch(`http://127.0.0.1:${port(s)}${path}`, { method, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, body, signal: AbortSignal.timeout(5_000) });

  test('GET /metrics: the same Prometheus text as on the API port', async () => {
    const r = await req(metrics, 'GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.equal(await r.text(), METRICS);
    const a = await req(api, 'GET', '/metrics');
    assert.equal(a.status, 200);
    assert.equal(await a.text(), METRICS);
    assert.equal((await req(metrics, 'GET', '/metrics?x=1')).status, 200, 'a query string is ignored, as on the API');
    assert.equal((await req(metrics, 'HEAD', '/metrics')).status, 200);
  });

  test('every control endpoint, even with the right token, is refused with 405 and changes nothing', async () => {
    for (const path of ['/switchover', '/pause', '/resume', '/failsafe', '/backup', '/promote', '/restart', '/metrics']) {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
        const r = await req(metrics, method, path, method === 'DELETE' ? undefined : '{"from":"m1","leader":"m1","to":"m1"}');
        assert.equal(r.status, 405, `${method} ${path}`);
        assert.equal(r.headers.get('allow'), 'GET, HEAD');
        assert.match(((await r.json()) as { error: string }).error, /serves only GET \/metrics.*API port \(8008\), for members only/);
      }
    }
    assert.deepEqual(calls, [], 'no operation was reached through the metrics port');
    // the same token on the API port does reach them: the refusal above is the port's, not the token's
    assert.equal((await req(api, 'POST', '/pause')).status, 200);
    assert.deepEqual(calls, ['pause']);
  });

  test('every other GET path (status, probes, backups) is 404 there', async () => {
    for (const path of ['/', '/status', '/healthz', '/readyz', '/primary', '/replica', '/backups', '/metrics/x']) {
      const r = await req(metrics, 'GET', path);
      assert.equal(r.status, 404, path);
      assert.match(((await r.json()) as { error: string }).error, /serves only GET \/metrics/);
    }
    assert.equal((await req(api, 'GET', '/status')).status, 200, 'the API still serves them');
  });
});
