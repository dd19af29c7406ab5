// `autopilot run`: wiring. config → logger → Kubernetes client → postgres → autopilot → HTTP API.
// Exits 2 on a configuration error (the message names the variable), 1 on any other fatal error.
import { existsSync } from 'node:fs';
import { loadConfig, ConfigError, type Config } from './core/config.js';
import { validateParameters } from './core/render.js';
import { decideMode, SA_TOKEN_PATH } from './core/mode.js';
import { nodeFileReader } from './shell/files.js';
import { createLogger } from './shell/log.js';
import { createKube, loadConnection } from './shell/kube.js';
import { createAutopilot } from './shell/autopilot.js';
import { startHttpApi, startMetricsApi, fetchMemberStatus } from './shell/http.js';

/**
 * Import `load()` while the global `Response` is hidden, on runtimes without `navigator`
 * (Node < 21): pg's stream.js probes for Cloudflare Workers with `new Response(...)` when there is
 * no `navigator`, and the first touch of `Response` loads undici, ≈ 10 MB of RSS for the life of
 * the process. Hidden, the probe answers "not Cloudflare", as it does on Node 21+ (navigator
 * exists there and pg never touches Response). The lazy global is put back untouched.
 */
async function withoutResponseGlobal<T>(load: () => Promise<T>): Promise<T> {
  if (typeof (globalThis as { navigator?: unknown }).navigator !== 'undefined') return load();
  // Only here: on Node 21+ even reading the descriptor would load undici.
  const d = Object.getOwnPropertyDescriptor(globalThis, 'Response');
  if (!d?.configurable) return load();
  Object.defineProperty(globalThis, 'Response', { value: undefined, configurable: true, writable: true });
  try {
    return await load();
  } finally {
    Object.defineProperty(globalThis, 'Response', d);
  }
}

/** `autopilot run -c NAME=VALUE`: parameters on top of parameters.json, validated as those are. */
function applyServerParams(cfg: Config, params: Record<string, string>): void {
  if (!Object.keys(params).length) return;
  const all = { ...cfg.parameters, ...params };
  try {
    validateParameters(all);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`${new ConfigError(e.problems.map((p) => `-c: ${p.replace(/^postgresql\.parameters\./, 'parameter ').replace('Fix: remove it from postgresql.parameters', 'Fix: remove that -c')}`)).message}\n`);
    process.exit(2);
  }
  cfg.parameters = all;
}

export async function run(env: Record<string, string | undefined> = process.env, params: Record<string, string> = {}): Promise<void> {
  // The mode first (core/mode.ts), on the first log line, with its reason. The format and level
  // are read as given here; their validation comes with the rest of the configuration.
  const format = env.PGA_LOG_FORMAT === 'text' ? 'text' : 'json';
  const level = (['debug', 'info', 'warn', 'error'] as const).find((l) => l === env.PGA_LOG_LEVEL) ?? 'info';
  const early = createLogger({ format, level });
  let decision;
  try {
    decision = decideMode(env, { tokenMounted: existsSync(SA_TOKEN_PATH) });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    early.error('mode refused', { problems: e.problems });
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  }
  early.info('mode selected', { mode: decision.mode, reason: decision.reason });
  if (decision.mode !== 'kubernetes') {
    const { runStandalone } = await import('./shell/standalone.js');
    return runStandalone(decision, env, early, {
      makeLog: (c) => createLogger({ format: c.logFormat, level: c.logLevel, base: { member: c.podName } }),
      loadPg: () => withoutResponseGlobal(() => import('./shell/postgres.js')),
      applyParams: (c) => applyServerParams(c, params),
    });
  }
  let cfg;
  try {
    cfg = loadConfig(env, nodeFileReader);
  } catch (e) {
    if (e instanceof ConfigError) {
      // a pod of another chart mounts a ServiceAccount token too: say how to run standalone
      const hint = !env.PGA_MODE && !env.PGA_CLUSTER_NAME
        ? [`the mode is kubernetes because ${decision.reason.replace(/^PGA_MODE is auto and /, '')}; to run the image outside the pg-autopilot chart (the official postgres image's variables), set PGA_MODE=standalone`]
        : [];
      process.stderr.write(`${new ConfigError([...e.problems, ...hint]).message}\n`);
      process.exit(2);
    }
    throw e;
  }
  applyServerParams(cfg, params);
  const log = createLogger({ format: cfg.logFormat, level: cfg.logLevel, base: { member: cfg.podName } });
  let conn;
  try {
    conn = loadConnection(cfg.kubeconfig, env);
  } catch (e) {
    log.error((e as Error).message);
    process.exit(2);
  }
  const kube = createKube(conn, cfg.namespace, (msg, f) => log.debug(msg, f));
  const { createPostgres } = await withoutResponseGlobal(() => import('./shell/postgres.js'));
  const pg = createPostgres(cfg, log.child({ component: 'postgres' }));
  // Peers' /status over node:http, not fetch (which loads undici on first use: see http.ts).
  const ap = createAutopilot(cfg, log.child({ component: 'autopilot' }), kube, pg, {
    fetchStatus: fetchMemberStatus,
    kubeFor: (ns) => createKube(conn, ns, (msg, f) => log.debug(msg, f)),
  });
  const server = await startHttpApi(ap, { port: cfg.apiPort, token: cfg.secrets.apiToken, log });
  // scrapers' port: GET /metrics only (the NetworkPolicy keeps 8008 for the members)
  const metricsServer = cfg.metricsPort === null ? null : await startMetricsApi(ap, { port: cfg.metricsPort, log });
  log.info('autopilot started', {
    cluster: cfg.clusterName, namespace: cfg.namespace, loopMs: cfg.loopMs, leaseMs: cfg.leaseMs,
    renewMs: cfg.renewMs, renewDeadlineMs: cfg.renewDeadlineMs, syncMode: cfg.syncMode, apiPort: cfg.apiPort,
    metricsPort: cfg.metricsPort,
  });
  ap.start();

  let stopping = false;
  const shutdown = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal: sig });
    try {
      await ap.terminate();
    } catch (e) {
      log.error('shutdown failed', { error: (e as Error).message });
    }
    server.close();
    metricsServer?.close();
    kube.close();
    log.info('stopped', { kubeRequests: kube.counts });
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}
