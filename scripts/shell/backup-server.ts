// backup.fromStandby: this member's `pgbackrest server`, a child process the autopilot supervises
// (any member may be the replica a backup reads from). Restarted after an exit with a backoff
// (1 s doubling to 30 s, reset after a minute of running); "up" once its TLS port accepts a
// connection, which is what the member publishes (core/backup-standby.ts reads it).
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { serverArgs, serverHost, type BackupServer } from '../core/backup-standby.js';
import type { BackupConfig } from '../core/backup-config.js';
import type { Logger } from './log.js';
import { runAsPrefix } from './supervisor.js';

export interface BackupServerState {
  running: boolean;
  /** its port accepts connections */
  listening: boolean;
  pid: number | null;
  restarts: number;
  startedAt: string | null;
  lastExit: { at: string; code: number | null; signal: string | null; output: string } | null;
}

export interface BackupServerOptions {
  backup: BackupConfig;
  bin: string;
  podName: string;
  podIp: string;
  dataDir: string;
  runDir: string;
  confPath: string;
  includeDir: string;
  runAs?: string;
  log: Logger;
}

export function createBackupServer(o: BackupServerOptions) {
  const log = o.log.child({ component: 'pgbackrest-server' });
  const s = o.backup.standby!;
  const state: BackupServerState = { running: false, listening: false, pid: null, restarts: 0, startedAt: null, lastExit: null };
  let child: ChildProcess | null = null, wanted = false, backoffMs = 1_000, timer: NodeJS.Timeout | null = null, startedAtMs = 0;
  const tail: string[] = [];
  const onChange: (() => void)[] = [];
  const changed = () => { for (const f of onChange) f(); };

  function probe(c: ChildProcess, attempt = 0): void {
    if (child !== c || !state.running) return;
    const sock = connect({ host: o.podIp, port: s.serverPort, timeout: 1_000 });
    const retry = () => { sock.destroy(); if (attempt < 60) setTimeout(() => probe(c, attempt + 1), 500); else log.warn('pgbackrest server does not accept connections after 30 s', { port: s.serverPort, output: tail.join(' | ') }); };
    sock.once('connect', () => { sock.destroy(); if (child === c && !state.listening) { state.listening = true; log.info('pgbackrest server listening', { host: o.podIp, port: s.serverPort }); changed(); } });
    sock.once('error', retry);
    sock.once('timeout', retry);
  }

  function launch(): void {
    if (!wanted) return;
    const args = serverArgs(o.backup, o.podIp, o.confPath, o.includeDir);
    const argv = [...runAsPrefix(o.runAs, true), o.bin, ...args];
    const c = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
    child = c; startedAtMs = Date.now();
    Object.assign(state, { running: true, listening: false, pid: c.pid ?? null, startedAt: new Date().toISOString() });
    for (const stream of [c.stdout!, c.stderr!]) createInterface({ input: stream }).on('line', (l) => { tail.push(l); if (tail.length > 20) tail.shift(); if (l.trim()) log.info(l, { source: 'pgbackrest-server' }); });
    c.on('error', (e) => log.error('pgbackrest server could not start', { error: e.message, bin: o.bin }));
    c.on('exit', (code, signal) => {
      if (child !== c) return;
      child = null;
      Object.assign(state, { running: false, listening: false, pid: null, lastExit: { at: new Date().toISOString(), code, signal, output: tail.slice(-5).join(' | ') } });
      changed();
      if (!wanted) return;
      if (Date.now() - startedAtMs >= 60_000) backoffMs = 1_000;
      log.warn('pgbackrest server exited; restarting it', { code, signal, inMs: backoffMs, output: tail.slice(-5).join(' | ') });
      state.restarts++;
      timer = setTimeout(launch, backoffMs);
      backoffMs = Math.min(30_000, backoffMs * 2);
    });
    log.info('pgbackrest server starting', { address: o.podIp, port: s.serverPort, auth: `${s.clientCN}=${o.backup.stanza}` });
    probe(c);
  }

  return {
    state,
    onChange: (f: () => void) => { onChange.push(f); },
    start(): void { if (wanted) return; wanted = true; launch(); },
    /** What the member publishes while the server accepts connections (null: not up). */
    published(): BackupServer | null {
      return state.listening ? { host: serverHost(o.backup, o.podName, o.podIp), port: s.serverPort, pgPath: o.dataDir, pgSocketPath: o.runDir } : null;
    },
    async stop(): Promise<void> {
      wanted = false;
      if (timer) clearTimeout(timer);
      const c = child;
      if (!c) return;
      await new Promise<void>((res) => { c.once('exit', () => res()); c.kill('SIGTERM'); setTimeout(() => { c.kill('SIGKILL'); }, 5_000).unref(); });
    },
  };
}

export type BackupServerProcess = ReturnType<typeof createBackupServer>;
