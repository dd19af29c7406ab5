// The PostgreSQL programs the layer runs to completion — initdb, pg_basebackup, pg_rewind, psql —
// through zx, which quotes every argument (no command string is ever built by hand). As the
// postgres OS user through setpriv when runAs is set (tests running as root); with an
// environment free of our secrets and of PG* variables; from '/'.
//
// zx is loaded on first use only: a member whose data directory is already valid never runs one
// of these and never pays for it. It is `zx/core` (the package's entry for `$` and its process
// handling, without the bundled fs-extra, globby, yaml, fetch … we do not use), loaded with
// require(): measured in the entrypoint's process, that adds 0.5–0.9 MB of resident memory for
// good, where `await import('zx/core')` adds 1.7–5.7 MB and `await import('zx')` 5.6–9 MB (the
// ESM wrapper around zx's CommonJS build costs more than the code itself).
//
// The postmaster itself is not run here but by the Supervisor (shell/supervisor.ts).

import { createRequire } from 'node:module';
import type { Endpoint, PgContext } from './types.js';
import { runAsPrefix } from '../supervisor.js';

export class PgCommandError extends Error {
  constructor(
    readonly cmd: string,
    readonly code: number | null,
    readonly signal: string | null,
    readonly stderr: string,
  ) {
    super(`${cmd} failed (${signal ? `signal ${signal}` : `exit ${code}`}): ${gist(stderr) || 'no output'}`);
    this.name = 'PgCommandError';
  }
}

/**
 * What a failed program said, in one line: its first error line (pgBackRest's "ERROR: [039]: HTTP
 * request failed with 403", initdb's "initdb: error: ...") with an S3 error code from the reply body
 * if there is one, else its last five lines (a reply's headers are never the reason).
 */
export function gist(output: string): string {
  const lines = output.trim().split('\n').map((l) => l.trim()).filter(Boolean);
  const first = lines.findIndex((l) => /\b(ERROR|FATAL|PANIC)\b|\berror:/.test(l));
  if (first < 0) return lines.slice(-5).join(' | ');
  const code = lines.find((l) => /<Code>[^<]+<\/Code>/.test(l))?.match(/<Code>([^<]+)<\/Code>/)?.[1];
  return [lines[first], ...(code ? [`S3 error code ${code}`] : [])].join(' | ');
}

/** Environment for child processes: no secrets of ours, no PG* variables that would redirect
 *  the tools somewhere else. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^PGA_.*(PASSWORD|TOKEN)/.test(k) || /^PG[A-Z]/.test(k)) continue;
    env[k] = v;
  }
  env.LC_ALL = env.LC_ALL ?? 'C.UTF-8';
  return { ...env, ...extra };
}

type Zx = typeof import('zx/core');
let zx: Zx | null = null;
const loadZx = (): Zx => (zx ??= createRequire(import.meta.url)('zx/core') as Zx);

interface RunOptions {
  env?: Record<string, string>;
  /** written to the program's stdin */
  input?: string;
  /** every stderr line (split on \r too: progress lines), as it comes */
  onStderrLine?: (line: string) => void;
  /** log every stderr line at info level */
  logLines?: boolean;
  /** kill the program (and its children) after this long */
  timeoutMs?: number;
}

/** Run `<binDir>/<bin> args…` (or `bin` itself when it is an absolute path) to completion; rejects
 *  with a PgCommandError unless it exits 0. */
export async function runProgram(ctx: PgContext, bin: string, args: string[], o: RunOptions = {}): Promise<{ stdout: string; stderr: string }> {
  const { $ } = loadZx();
  ctx.log.debug('run', { cmd: bin, args });
  const sh = $({ quiet: true, nothrow: true, cwd: '/', env: childEnv(o.env), ...(o.input !== undefined ? { input: o.input } : {}) });
  const p = sh`${[...runAsPrefix(ctx.runAs), bin.startsWith('/') ? bin : `${ctx.cfg.binDir}/${bin}`, ...args]}`;
  if (o.timeoutMs !== undefined) p.timeout(o.timeoutMs, 'SIGKILL');
  let partial = '';
  const line = (l: string) => {
    if (l === '') return;
    o.onStderrLine?.(l);
    if (o.logLines) ctx.log.info(l, { source: bin });
  };
  p.stderr.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split(/[\r\n]/);
    partial = lines.pop() ?? '';
    lines.forEach(line);
  });
  const out = await p;
  line(partial);
  if (out.exitCode === 0) return { stdout: out.stdout, stderr: out.stderr };
  const why = out.stderr || out.stdout || (out.cause ? String((out.cause as Error).message ?? out.cause) : '');
  throw new PgCommandError(bin, out.exitCode, out.signal, why);
}

/** pwfile null: no password (standalone mode with POSTGRES_HOST_AUTH_METHOD=trust). */
export async function initdbProgram(ctx: PgContext, pwfile: string | null): Promise<void> {
  const { cfg } = ctx;
  const b = cfg.bootstrap.initdb;
  const args = [
    '-D', cfg.dataDir,
    '-U', cfg.superuser,
    ...(pwfile ? [`--pwfile=${pwfile}`] : []),
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    `--encoding=${b.encoding}`,
    `--locale=${b.locale}`,
    ...(b.dataChecksums ? ['--data-checksums'] : []),
    ...(cfg.walDir ? [`--waldir=${cfg.walDir}`] : []),
    ...b.args,
  ];
  await runProgram(ctx, 'initdb', args, { timeoutMs: 600_000 });
}

export async function basebackupProgram(ctx: PgContext, from: Endpoint, onStderrLine: (l: string) => void): Promise<void> {
  const { cfg, paths } = ctx;
  const args = [
    '-D', cfg.dataDir,
    '-h', from.host,
    '-p', String(from.port),
    '-U', cfg.replicationUser,
    '--no-password',
    '-X', 'stream',
    '-c', 'fast',
    '--progress',
    '--verbose',
    ...(cfg.walDir ? [`--waldir=${cfg.walDir}`] : []),
  ];
  // no overall timeout: a clone takes as long as the data needs; the connection is bounded
  await runProgram(ctx, 'pg_basebackup', args, {
    env: { PGPASSFILE: paths.pgpass, PGCONNECT_TIMEOUT: '10', PGAPPNAME: `${cfg.podName}-basebackup` },
    onStderrLine,
  });
}

export async function rewindProgram(ctx: PgContext, from: Endpoint): Promise<void> {
  const { cfg, paths } = ctx;
  const source = [
    `host=${from.host}`,
    `port=${from.port}`,
    `user=${cfg.superuser}`,
    'dbname=postgres',
    `passfile=${paths.pgpass}`,
    'connect_timeout=10',
    `application_name=${cfg.podName}-rewind`,
  ].join(' ');
  await runProgram(ctx, 'pg_rewind', ['-D', cfg.dataDir, `--source-server=${source}`, '--progress'], { logLines: true });
}

/** Run an SQL script with psql on the local server (unix socket), stopping at the first error. */
export async function psqlScript(ctx: PgContext, sql: string, database = 'postgres'): Promise<void> {
  const { cfg } = ctx;
  await runProgram(ctx, 'psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', cfg.runDir, '-p', String(cfg.pgPort), '-U', cfg.superuser, '-d', database, '-f', '-'], {
    input: sql,
    logLines: true,
  });
}
