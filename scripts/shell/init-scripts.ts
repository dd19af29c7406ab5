// Standalone mode's init scripts (/docker-entrypoint-initdb.d, PGA_INITDB_DIR), run once on the
// first start, in name order, as the official postgres image runs them: *.sql and *.sql.gz through
// psql against POSTGRES_DB, *.sh executed when executable and run by bash otherwise (the official
// image sources those: its shell functions such as docker_process_sql do not exist here, plain
// psql does, with PGHOST/PGPORT/PGUSER/PGDATABASE pointing at the server). The first failure stops
// the start (the data directory stays marked incomplete: never started half-initialised).

import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { Config } from '../core/config.js';
import { confPaths } from '../core/render.js';
import type { StandaloneSettings } from '../core/standalone.js';
import type { Logger } from './log.js';
import { runProgram } from './pg/commands.js';
import type { PgContext } from './pg/types.js';

export async function runInitScripts(cfg: Config, s: StandaloneSettings, log: Logger): Promise<void> {
  const ctx: PgContext = { cfg, log, root: log, paths: confPaths(cfg), runAs: undefined };
  for (const name of s.ignored) log.warn('init script ignored: accepted are *.sh, *.sql, *.sql.gz', { script: `${s.initdbDir}/${name}` });
  const env: Record<string, string> = {
    PGHOST: cfg.runDir,
    PGPORT: String(cfg.pgPort),
    PGUSER: cfg.superuser,
    PGDATABASE: s.database,
    PGDATA: cfg.dataDir,
    POSTGRES_USER: cfg.superuser,
    POSTGRES_DB: s.database,
  };
  for (const sc of s.scripts) {
    const path = `${s.initdbDir}/${sc.name}`;
    const t0 = Date.now();
    log.info('running init script', { script: path, kind: sc.kind });
    let out: { stdout: string };
    if (sc.kind === 'sh') {
      let executable = true;
      try {
        accessSync(path, constants.X_OK);
      } catch {
        executable = false;
      }
      const shell = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';
      out = executable ? await runProgram(ctx, path, [], { env, logLines: true }) : await runProgram(ctx, shell, [path], { env, logLines: true });
    } else {
      const raw = readFileSync(path);
      const sql = (sc.kind === 'sql.gz' ? gunzipSync(raw) : raw).toString('utf8');
      out = await runProgram(ctx, 'psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--no-password', '-d', s.database, '-f', '-'], { env, input: sql, logLines: true });
    }
    for (const l of out.stdout.split('\n')) if (l.trim()) log.info(l, { source: sc.name });
    log.info('init script done', { script: path, ms: Date.now() - t0 });
  }
}
