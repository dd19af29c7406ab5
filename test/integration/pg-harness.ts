// Test harness for the PostgreSQL layer: real PostgreSQL members in a temporary directory, each
// on its own free loopback port, configured through loadConfig() from env + mounted-style files
// exactly like the entrypoint. When the tests run as root (CI), the binaries run as the
// `postgres` OS user through createPostgres(..., { runAs: 'postgres' }) and every directory is
// owned by that user. Everything started is stopped by PID in cleanup(), also on failure (and
// a synchronous last-resort kill on process exit).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, chownSync, rmSync, readFileSync, existsSync, readdirSync } from 'node:fs';
import { freePort as allocatePort } from './kube-harness.js';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../scripts/core/config.js';
import { nodeFileReader } from '../../scripts/shell/files.js';
import { createLogger, type Logger } from '../../scripts/shell/log.js';
import { createPostgres, type Postgres, type PostgresOptions } from '../../scripts/shell/postgres.js';

export const isRoot = process.getuid?.() === 0;
const pgUser = isRoot ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) } : null;

/** Ports come from the kube harness's allocator: below the ephemeral range, never twice. */
export function freePort(): Promise<number> {
  return allocatePort();
}

export interface Member {
  name: string;
  port: number;
  dir: string;
  cfg: Config;
  pg: Postgres;
  log: Logger;
  /** every log line this member printed (JSON text) */
  lines: string[];
}

export interface MemberOptions {
  env?: Record<string, string>;
  /** files below the member's config dir (parameters.json, pg_hba.conf, bootstrap.json, initdb.d/…) */
  configFiles?: Record<string, string>;
  /** files below the member's secrets dir */
  secretFiles?: Record<string, string>;
  pgOptions?: PostgresOptions;
}

export const PASSWORDS = { superuser: 'su-secret:with\\odd\'chars', replication: 'repl-secret', app: 'app-secret', token: 'token-123' };

export class PgHarness {
  readonly root: string;
  readonly members: Member[] = [];
  private readonly exitHook = () => this.killAllSync();

  private constructor(root: string) {
    this.root = root;
    process.on('exit', this.exitHook);
  }

  static create(prefix = 'pga-pg-it-'): PgHarness {
    const root = mkdtempSync(`${tmpdir()}/${prefix}`);
    if (pgUser) chownSync(root, pgUser.uid, pgUser.gid);
    return new PgHarness(root);
  }

  private mkdir(path: string, mode = 0o700): void {
    mkdirSync(path, { recursive: true, mode });
    if (pgUser) chownSync(path, pgUser.uid, pgUser.gid);
  }

  private write(path: string, content: string, mode = 0o600): void {
    writeFileSync(path, content, { mode });
    if (pgUser) chownSync(path, pgUser.uid, pgUser.gid);
  }

  async member(name: string, o: MemberOptions = {}): Promise<Member> {
    const dir = `${this.root}/${name}`;
    const port = await freePort();
    for (const d of [dir, `${dir}/data`, `${dir}/run`, `${dir}/config`, `${dir}/config/initdb.d`, `${dir}/secrets`]) this.mkdir(d);
    const secrets: Record<string, string> = {
      'superuser-password': PASSWORDS.superuser + '\n',
      'replication-password': PASSWORDS.replication + '\n',
      'app-password': PASSWORDS.app + '\n',
      'api-token': PASSWORDS.token + '\n',
      ...(o.secretFiles ?? {}),
    };
    for (const [k, v] of Object.entries(secrets)) this.write(`${dir}/secrets/${k}`, v);
    for (const [k, v] of Object.entries(o.configFiles ?? {})) {
      const p = `${dir}/config/${k}`;
      if (k.includes('/')) this.mkdir(p.slice(0, p.lastIndexOf('/')));
      this.write(p, v, 0o644);
    }
    const env: Record<string, string> = {
      PGA_CLUSTER_NAME: 'it',
      PGA_NAMESPACE: 'default',
      PGA_POD_NAME: name,
      PGA_POD_IP: '127.0.0.1',
      PGA_MEMBER_SELECTOR: 'app=it',
      PGA_DATA_DIR: `${dir}/data/pgdata`,
      PGA_RUN_DIR: `${dir}/run`,
      PGA_CONFIG_DIR: `${dir}/config`,
      PGA_SECRETS_DIR: `${dir}/secrets`,
      PGA_PG_PORT: String(port),
      PGA_API_PORT: String(await freePort()),
      PGA_SUPERUSER_PASSWORD_FILE: `${dir}/secrets/superuser-password`,
      PGA_REPLICATION_PASSWORD_FILE: `${dir}/secrets/replication-password`,
      PGA_APP_PASSWORD_FILE: `${dir}/secrets/app-password`,
      PGA_API_TOKEN_FILE: `${dir}/secrets/api-token`,
      ...(o.env ?? {}),
    };
    const cfg = loadConfig(env, nodeFileReader);
    const lines: string[] = [];
    const verbose = process.env.PGA_TEST_VERBOSE === '1';
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        const s = chunk.toString();
        for (const l of s.split('\n')) if (l) lines.push(l);
        if (lines.length > 5000) lines.splice(0, lines.length - 5000);
        if (verbose) process.stderr.write(s);
        cb();
      },
    });
    const log = createLogger({ format: 'json', level: 'debug', stream, base: { member: name } });
    const pg = createPostgres(cfg, log, { ...(isRoot ? { runAs: 'postgres' } : {}), ...(o.pgOptions ?? {}) });
    const m: Member = { name, port, dir, cfg, pg, log, lines };
    this.members.push(m);
    return m;
  }

  /** Connect over TCP with a password (exercises pg_hba + scram). */
  async tcpQuery(m: Member, user: string, password: string, sql: string, database = 'postgres'): Promise<Record<string, unknown>[]> {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ host: '127.0.0.1', port: m.port, user, password, database, connectionTimeoutMillis: 5000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return (await c.query(sql)).rows as Record<string, unknown>[];
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /** pids of postgres processes whose command line names one of our data directories. */
  strayPids(): number[] {
    const out: number[] = [];
    for (const p of readdirSync('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        if (cmd.includes(this.root) && /postgres|pg_basebackup|pg_rewind|initdb/.test(cmd)) out.push(Number(p));
      } catch {
        /* gone */
      }
    }
    return out;
  }

  private killAllSync(): void {
    for (const m of this.members) {
      const pid = m.pg.pid();
      if (pid) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    for (const pid of this.strayPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  /** Stop every member (fast, then by PID), kill stray processes, remove the temp directory. */
  async cleanup(): Promise<void> {
    process.off('exit', this.exitHook);
    for (const m of this.members) {
      m.pg.setAutoRestart(false);
      try {
        await m.pg.stop('fast');
      } catch {
        /* killed below */
      }
    }
    this.killAllSync();
    const deadline = Date.now() + 5000;
    while (this.strayPids().length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (existsSync(this.root)) rmSync(this.root, { recursive: true, force: true });
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
