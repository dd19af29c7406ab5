// A client writing through the read-write routing, remembering every acknowledged row: the
// measure of write availability and of lost acknowledged writes in the cluster scenarios and the
// benchmark.
import type pg from 'pg';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a Writer needs of a cluster: where the read-write routing points now, and connections. */
export interface WriteRoute {
  /** The member the read-write routing points at now (null: none, or ambiguous). */
  routed(): Promise<string | null>;
  client(name: string, timeoutMs: number): pg.Client;
  sql(name: string, text: string): Promise<any[]>;
}

/**
 * A client that writes a row every `everyMs` to whichever member the routing points at (for our
 * clusters: the pod labelled primary, as the read-write Service routes), and remembers every
 * acknowledged row, when it was acked and by which member.
 */
export class Writer {
  readonly acked: { id: number; at: number; to: string }[] = [];
  readonly errors: { at: number; error: string }[] = [];
  private stopped = false;
  private target: string | null = null;
  private client: pg.Client | null = null;
  private clientFor: string | null = null;
  private done: Promise<void> | null = null;
  private next = 1;
  private constructor(private readonly route: WriteRoute, private readonly table: string, private readonly everyMs: number) {}

  /** Writes into `table` (created if missing; the benchmark uses one per scenario). */
  static async start(route: WriteRoute, primary: string, opts: { table?: string; everyMs?: number } = {}): Promise<Writer> {
    const table = opts.table ?? 'w';
    await route.sql(primary, `create table if not exists ${table} (id int primary key, at timestamptz default now())`);
    const w = new Writer(route, table, opts.everyMs ?? 20);
    w.done = w.loop();
    return w;
  }

  private async loop() {
    const routing = (async () => {
      while (!this.stopped) {
        try { this.target = await this.route.routed(); } catch { this.target = null; }
        await sleep(100);
      }
    })();
    while (!this.stopped) {
      const t0 = Date.now();
      try {
        if (!this.client) {
          if (!this.target) throw new Error('nothing routed');
          const cl = this.route.client(this.target, 300);
          cl.on('error', () => undefined);
          await cl.connect();
          this.client = cl;
          this.clientFor = this.target;
        }
        const id = this.next++; // every attempt gets a fresh id: an unacknowledged one may still commit
        await this.client.query(`insert into ${this.table} (id) values ($1)`, [id]);
        this.acked.push({ id, at: Date.now(), to: this.clientFor ?? '?' });
      } catch (e) {
        this.errors.push({ at: Date.now(), error: (e as Error).message });
        const cl = this.client;
        this.client = null;
        void cl?.end().catch(() => undefined);
      }
      await sleep(Math.max(0, this.everyMs - (Date.now() - t0)));
    }
    await routing;
    await this.client?.end().catch(() => undefined);
  }

  /** Resolves once the writer has acknowledged a few writes (a gap figure means nothing before that). */
  async warm(): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (this.acked.length < 10) {
      if (Date.now() > deadline) throw new Error(`the writer got no writes through (${this.errors.slice(-1)[0]?.error ?? 'no error'})`);
      await sleep(50);
    }
  }

  /** Longest interval without an acknowledged write, after `since` (ms epoch). */
  longestGapMs(since = 0): number {
    return this.longestGap(since).ms;
  }

  /** The longest gap between acknowledgements after `since`, with its ends (to line it up with member logs). */
  longestGap(since = 0): { ms: number; from: number; to: number } {
    let gap = { ms: 0, from: since, to: since };
    const acks = this.acked.filter((a) => a.at >= since - 5_000);
    for (let i = 1; i < acks.length; i++) {
      const ms = acks[i]!.at - acks[i - 1]!.at;
      if (acks[i]!.at >= since && ms > gap.ms) gap = { ms, from: acks[i - 1]!.at, to: acks[i]!.at };
    }
    return gap;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}
