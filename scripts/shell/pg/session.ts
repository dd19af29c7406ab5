// The autopilot's own connection to its postgres: one persistent session over the unix socket,
// kept open across ticks. Once established it holds its slot, so the autopilot can still ask its
// postgres when clients have taken every other connection slot (ordinary and
// superuser-reserved) — opening a connection per question would be refused exactly then.
//
// Bounded everywhere: a (re)connection attempt gives up after connectMs, each call makes at most
// one, statements end at statementMs on the server and queryMs on the client. A client-side
// timeout (frozen server) drops the session, so a thawed server gets a fresh one. Only short
// statements belong here: a long one would hold up every status() queued behind it.

import pg from 'pg';
import { queryErrorKind } from '../../core/pgoutput.js';
import type { PgContext } from './types.js';

export interface SessionOptions {
  connectMs: number;
  statementMs: number;
  queryMs: number;
}

export class LocalSession {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private closed = false;

  constructor(
    private readonly ctx: PgContext,
    private readonly o: SessionOptions = { connectMs: 1000, statementMs: 2000, queryMs: 3000 },
  ) {}

  /** Closed by stop() and wipe(): no connection is made until open() (a smart shutdown waits
   *  for every session to end, ours included). */
  isClosed(): boolean {
    return this.closed;
  }

  open(): void {
    this.closed = false;
  }

  /** Drop the current connection (a new postmaster: nothing of the old one may answer). */
  reset(): void {
    const c = this.client;
    if (c) this.drop(c);
  }

  /** End the session without waiting for the server (which may be frozen or gone). */
  close(): void {
    this.closed = true;
    const c = this.client;
    this.client = null;
    if (c) void c.end().catch(() => undefined);
  }

  /**
   * Run fn on the session, connecting when there is none. When the session turns out to be
   * broken (server restarted, connection reset) and this call did not connect yet, it connects
   * once more and runs fn again: fn must be safe to repeat.
   */
  async use<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    let connectedNow = false;
    let c = this.client;
    if (!c) {
      c = await this.connect();
      connectedNow = true;
    }
    try {
      return await fn(c);
    } catch (e) {
      const kind = queryErrorKind(e);
      if (kind === 'statement') throw e;
      this.drop(c);
      if (kind === 'timeout' || connectedNow) throw e;
      const again = await this.connect();
      try {
        return await fn(again);
      } catch (e2) {
        if (queryErrorKind(e2) !== 'statement') this.drop(again);
        throw e2;
      }
    }
  }

  private drop(c: pg.Client): void {
    if (this.client === c) this.client = null;
    void c.end().catch(() => undefined);
  }

  private connect(): Promise<pg.Client> {
    if (this.closed) return Promise.reject(new Error('the connection to the local postgres is closed (postgres is stopping)'));
    this.connecting ??= this.newClient().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async newClient(): Promise<pg.Client> {
    const { cfg } = this.ctx;
    const c = new pg.Client({
      host: cfg.runDir,
      port: cfg.pgPort,
      user: cfg.superuser,
      database: 'postgres',
      connectionTimeoutMillis: this.o.connectMs,
      statement_timeout: this.o.statementMs,
      lock_timeout: this.o.statementMs,
      query_timeout: this.o.queryMs,
      // a server-wide idle timeout must not take the session away
      idle_in_transaction_session_timeout: 0,
      options: '-c idle_session_timeout=0',
      application_name: 'pg-autopilot',
    });
    const gone = () => {
      if (this.client === c) this.client = null;
    };
    c.on('error', gone); // a server going away between queries; in a query, its promise says so
    c.on('end', gone);
    try {
      await c.connect();
    } catch (e) {
      void c.end().catch(() => undefined);
      throw new Error(`cannot connect to the local postgres: ${(e as Error).message}`);
    }
    if (this.closed) {
      void c.end().catch(() => undefined);
      throw new Error('the connection to the local postgres is closed (postgres is stopping)');
    }
    this.ctx.log.debug('connected to the local postgres');
    this.client = c;
    return c;
  }
}
