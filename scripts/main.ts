// `autopilot run`: wiring. config → logger → Kubernetes client → postgres → autopilot → HTTP API.
// Exits 2 on a configuration error (the message names the variable), 1 on any other fatal error.
import { loadConfig, ConfigError } from './core/config.js';
import { nodeFileReader } from './shell/files.js';
import { createLogger } from './shell/log.js';
import { createKube, loadConnection } from './shell/kube.js';
import { createPostgres } from './shell/postgres.js';
import { createAutopilot } from './shell/autopilot.js';
import { startHttpApi } from './shell/http.js';

export async function run(env: Record<string, string | undefined> = process.env): Promise<void> {
  let cfg;
  try {
    cfg = loadConfig(env, nodeFileReader);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const log = createLogger({ format: cfg.logFormat, level: cfg.logLevel, base: { member: cfg.podName } });
  let conn;
  try {
    conn = loadConnection(cfg.kubeconfig, env);
  } catch (e) {
    log.error((e as Error).message);
    process.exit(2);
  }
  const kube = createKube(conn, cfg.namespace, (msg, f) => log.debug(msg, f));
  const pg = createPostgres(cfg, log.child({ component: 'postgres' }));
  const ap = createAutopilot(cfg, log.child({ component: 'autopilot' }), kube, pg);
  const server = await startHttpApi(ap, { port: cfg.apiPort, token: cfg.secrets.apiToken, log });
  log.info('autopilot started', {
    cluster: cfg.clusterName, namespace: cfg.namespace, loopMs: cfg.loopMs, leaseMs: cfg.leaseMs,
    renewMs: cfg.renewMs, renewDeadlineMs: cfg.renewDeadlineMs, syncMode: cfg.syncMode, apiPort: cfg.apiPort,
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
    kube.close();
    log.info('stopped', { kubeRequests: kube.counts });
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}
