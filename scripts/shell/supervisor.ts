// Supervision of the postgres child process.
//
// - Spawns `postgres -D <dataDir>` (postgresql.conf lives in the data directory), optionally
//   wrapped by `setpriv` when runAs is set (tests that run as root).
// - Every stdout/stderr line of postgres becomes one log line {msg: line, source: 'postgres'},
//   so in JSON mode postgres' own output is JSON objects too. The level follows postgres'
//   severity (LOG → info, WARNING → warn, ERROR/FATAL/PANIC → error, DEBUGn → debug).
// - An exit that stop() did not ask for is a crash: the onExit callbacks are told, and unless
//   auto-restart is off the child is started again after a backoff (0.2 s, doubling up to 10 s;
//   reset to 0.2 s when the previous run lasted 30 s or more).
// - stop(mode) sends the postgres shutdown signal (smart: SIGTERM, fast: SIGINT, immediate:
//   SIGQUIT) and waits for the exit, escalating (smart → fast → immediate → SIGKILL) when a mode
//   takes longer than its timeout.
//
// PID 1 and reaping. Node (libuv) installs its own SIGCHLD handler and reaps only the children
// it spawned (waitpid on each known pid), never arbitrary orphans: node has no waitpid(-1). When
// the postmaster dies abruptly, its backends are re-parented to PID 1; if PID 1 were this node
// process they would stay zombies. So:
//   * we leave SIGCHLD alone (replacing libuv's handler would break child_process);
//   * the image runs `tini` as PID 1 (images/postgres/Dockerfile: ENTRYPOINT tini -- autopilot),
//     which reaps every orphan; node is its child and reaps its own children (postgres and the
//     tools) through libuv;
//   * if this process is PID 1 anyway, a warning says so once. (Wrapping postgres in
//     `tini -s` was considered and rejected: tini exits as soon as the postmaster does, so
//     slower orphans still reach PID 1, and a SIGKILL escalation would hit tini instead of the
//     postmaster and leave postgres running unsupervised.)

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger, LogLevel } from './log.js';

export type StopMode = 'smart' | 'fast' | 'immediate';

export interface SupervisorOptions {
  binDir: string;
  dataDir: string;
  log: Logger;
  /** Extra arguments to postgres (e.g. ['-c', 'config_file=…']). */
  extraArgs?: string[];
  /** Run postgres as this OS user via setpriv (tests running as root). */
  runAs?: string;
  env?: NodeJS.ProcessEnv;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  resetAfterMs?: number;
  /** Per-mode time before escalating to the next stronger mode. */
  stopTimeoutsMs?: Partial<Record<StopMode | 'kill', number>>;
}

const SIGNAL: Record<StopMode, NodeJS.Signals> = { smart: 'SIGTERM', fast: 'SIGINT', immediate: 'SIGQUIT' };
const NEXT: Record<StopMode, StopMode | 'kill'> = { smart: 'fast', fast: 'immediate', immediate: 'kill' };

/** Level of a postgres log line from its severity tag. */
export function postgresLineLevel(line: string): LogLevel {
  const m = /\b(DEBUG[1-5]?|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC|STATEMENT|DETAIL|HINT|CONTEXT):  /.exec(line);
  const tag = m?.[1];
  switch (tag) {
    case 'ERROR':
    case 'FATAL':
    case 'PANIC':
      return 'error';
    case 'WARNING':
      return 'warn';
    case undefined:
      return 'info';
    default:
      return tag.startsWith('DEBUG') ? 'debug' : 'info';
  }
}

export function runAsPrefix(runAs: string | undefined, dieWithParent = false): string[] {
  const death = dieWithParent ? ['--pdeathsig', 'QUIT'] : [];
  if (runAs) return ['setpriv', `--reuid=${runAs}`, `--regid=${runAs}`, '--init-groups', ...death, '--'];
  return dieWithParent ? ['setpriv', ...death, '--'] : [];
}

export class Supervisor {
  private child: ChildProcess | null = null;
  private wanted = false;
  /** false until markReady(): an exit during the first start is a start failure, not a crash. */
  private armed = false;
  private autoRestart = true;
  private backoffMs: number;
  private startedAt = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private exitWaiters: ((r: { code: number | null; signal: string | null }) => void)[] = [];
  private exitCbs: ((code: number | null, signal: string | null) => void)[] = [];
  private spawnCbs: ((pid: number) => void)[] = [];
  private warnedPid1 = false;
  private readonly o: Required<Omit<SupervisorOptions, 'extraArgs' | 'runAs' | 'env' | 'stopTimeoutsMs'>> & SupervisorOptions;
  private readonly log: Logger;
  /** Number of restarts after crashes (for metrics/tests). */
  restarts = 0;
  /** Last lines postgres printed (for error messages). */
  readonly tail: string[] = [];

  constructor(opts: SupervisorOptions) {
    this.o = {
      initialBackoffMs: 200,
      maxBackoffMs: 10_000,
      resetAfterMs: 30_000,
      ...opts,
    };
    this.backoffMs = this.o.initialBackoffMs;
    this.log = opts.log.child({ component: 'supervisor' });
  }

  isRunning(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  pid(): number | null {
    return this.isRunning() ? (this.child?.pid ?? null) : null;
  }

  setAutoRestart(on: boolean): void {
    this.autoRestart = on;
    if (!on && this.restartTimer) {
      clearTimeout(this.restartTimer);
      this.restartTimer = null;
      this.wanted = false;
    }
  }

  /** Called on every exit that stop() did not ask for. */
  onExit(cb: (code: number | null, signal: string | null) => void): void {
    this.exitCbs.push(cb);
  }

  /** Called with the pid every time a postgres child is spawned. */
  onSpawn(cb: (pid: number) => void): void {
    this.spawnCbs.push(cb);
  }

  /** Start postgres (no-op when already running or a restart is pending). Until markReady() is
   *  called, an exit is reported as a failed start (no onExit callbacks, no restart). */
  start(): void {
    if (this.isRunning() || this.restartTimer) return;
    this.wanted = true;
    this.armed = false;
    this.spawnChild();
  }

  /** postgres accepted connections: from now on an unrequested exit is a crash (restarted). */
  markReady(): void {
    if (this.isRunning()) this.armed = true;
  }

  /** A restart after a crash is scheduled or running and has not been stopped. */
  isWanted(): boolean {
    return this.wanted;
  }

  private command(): [string, string[]] {
    const pg = [`${this.o.binDir}/postgres`, '-D', this.o.dataDir, ...(this.o.extraArgs ?? [])];
    // The postmaster gets SIGQUIT (immediate shutdown) if this process dies: a primary must never
    // outlive the autopilot that renews its lease (setpriv from util-linux sets PR_SET_PDEATHSIG).
    const argv = [...runAsPrefix(this.o.runAs, true), ...pg];
    if (process.pid === 1 && !this.warnedPid1) {
      this.warnedPid1 = true;
      this.log.warn('running as PID 1: processes orphaned by a postgres crash will not be reaped; run the entrypoint under tini (the image does)');
    }
    return [argv[0] as string, argv.slice(1)];
  }

  private spawnChild(): void {
    const [cmd, args] = this.command();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: this.o.env ?? process.env });
    this.child = child;
    this.startedAt = Date.now();
    const pgLog = this.o.log.child({ source: 'postgres' });
    const pipe = (s: NodeJS.ReadableStream | null) => {
      if (!s) return;
      const rl = createInterface({ input: s, crlfDelay: Infinity });
      rl.on('line', (line) => {
        if (line === '') return;
        this.tail.push(line);
        if (this.tail.length > 30) this.tail.shift();
        pgLog[postgresLineLevel(line)](line);
      });
    };
    pipe(child.stdout);
    pipe(child.stderr);
    child.on('error', (err) => {
      // spawn failure (binary missing, …): reported as an exit
      this.log.error('cannot start postgres', { err, cmd });
      this.handleExit(child, null, null, err);
    });
    child.on('exit', (code, signal) => this.handleExit(child, code, signal));
    if (child.pid !== undefined) {
      this.log.info('postgres started', { pid: child.pid });
      for (const cb of this.spawnCbs) cb(child.pid);
    }
  }

  private handleExit(child: ChildProcess, code: number | null, signal: string | null, err?: Error): void {
    if (this.child !== child) return;
    if ((child as ChildProcess & { __handled?: boolean }).__handled) return;
    (child as ChildProcess & { __handled?: boolean }).__handled = true;
    this.child = null;
    const upMs = Date.now() - this.startedAt;
    const waiters = this.exitWaiters.splice(0);
    for (const w of waiters) w({ code, signal });
    if (!this.wanted) {
      this.log.info('postgres stopped', { code, signal });
      return;
    }
    if (!this.armed) {
      this.wanted = false;
      this.log.error('postgres exited during startup', { code, signal, upMs, err, lastLines: this.tail.slice(-5) });
      return;
    }
    // unexpected exit: a crash
    this.log.error('postgres exited unexpectedly', { code, signal, upMs, err });
    for (const cb of this.exitCbs) {
      try {
        cb(code, signal);
      } catch (e) {
        this.log.error('onExit callback failed', { err: e });
      }
    }
    if (!this.autoRestart || !this.wanted) {
      this.wanted = false;
      return;
    }
    if (upMs >= this.o.resetAfterMs) this.backoffMs = this.o.initialBackoffMs;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.o.maxBackoffMs);
    this.log.warn('restarting postgres', { delayMs: delay, restarts: this.restarts + 1 });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (!this.wanted || this.isRunning()) return;
      this.restarts++;
      this.spawnChild();
    }, delay);
  }

  /** Resolves at the next exit of the current child (immediately when none runs). */
  waitExit(): Promise<{ code: number | null; signal: string | null }> {
    if (!this.isRunning()) return Promise.resolve({ code: this.child?.exitCode ?? null, signal: this.child?.signalCode ?? null });
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  /** Send a signal to the running child (e.g. SIGHUP for a reload). False when none runs. */
  signal(sig: NodeJS.Signals): boolean {
    if (!this.isRunning() || !this.child) return false;
    return this.child.kill(sig);
  }

  /** Stop postgres with `mode` and wait for it to exit; no automatic restart afterwards. */
  async stop(mode: StopMode): Promise<void> {
    this.wanted = false;
    if (this.restartTimer) {
      clearTimeout(this.restartTimer);
      this.restartTimer = null;
    }
    if (!this.isRunning()) return;
    const timeouts: Record<StopMode | 'kill', number> = { smart: 30_000, fast: 60_000, immediate: 10_000, kill: 10_000, ...(this.o.stopTimeoutsMs ?? {}) };
    let m: StopMode | 'kill' = mode;
    const exited = this.waitExit();
    for (;;) {
      this.log.info('stopping postgres', { mode: m, pid: this.child?.pid });
      this.signal(m === 'kill' ? 'SIGKILL' : SIGNAL[m]);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        exited.then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeouts[m]))),
      ]);
      clearTimeout(timer);
      if (!timedOut) return;
      if (m === 'kill') throw new Error(`postgres (pid ${this.child?.pid}) did not exit after SIGKILL`);
      this.log.warn('postgres did not stop in time, escalating', { mode: m, timeoutMs: timeouts[m] });
      m = NEXT[m];
    }
  }
}
