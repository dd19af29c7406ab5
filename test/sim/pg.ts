// Simulated postgres, one per member: a data directory (system identifier, WAL as the list of the
// commits it holds, timeline), a server that is stopped, starting or running, in recovery or not,
// the synchronous_standby_names its shell last applied, and commits waiting for their acknowledgment.
// A commit is a globally unique id; WAL position i holds one commit, so two histories agree up to a
// position exactly when they hold the same id there (ids are written once, and only copied as prefixes).

export const lsnOf = (len: number): bigint => 0x3000000n + BigInt(len) * 64n;

export interface Pending { id: number; idx: number; at: number }

export class Pg {
  data: 'valid' | 'empty' | 'partial' = 'valid';
  systemId: string;
  wal: number[] = [];
  tl = 1;
  state: 'stopped' | 'starting' | 'running' | 'stopping' = 'stopped';
  inRecovery = true;
  /** pg_controldata's last role of the data directory */
  wasPrimary = false;
  following: string | null = null;
  sync: { names: string[]; count: number } = { names: [], count: 1 };
  streaming = false;
  /** commits written here and not acknowledged yet */
  pending: Pending[] = [];
  // faults
  unstartable = false;
  slotsFull = false;
  slowCheckpointMs = 0;
  rewindBroken = false;

  constructor(readonly name: string, systemId: string) { this.systemId = systemId; }

  get running(): boolean { return this.state !== 'stopped'; }
  /** accepts writes (ignoring freezes, which the world knows about) */
  get writable(): boolean { return this.state === 'running' && !this.inRecovery; }
  get lsn(): bigint { return lsnOf(this.wal.length); }

  stop(): void {
    if (this.state !== 'stopped' && !this.inRecovery) this.wasPrimary = true;
    if (this.state !== 'stopped' && this.inRecovery) this.wasPrimary = false;
    this.state = 'stopped';
    this.streaming = false;
    this.pending = [];
  }

  /** a prefix of `src`'s history (it may stream from src) */
  prefixOf(src: Pg): boolean {
    const n = this.wal.length;
    return n <= src.wal.length && (n === 0 || this.wal[n - 1] === src.wal[n - 1]);
  }

  /** truncate to the common history with `src` (pg_rewind) and take its timeline */
  rewindTo(src: Pg): void {
    let i = 0;
    while (i < this.wal.length && i < src.wal.length && this.wal[i] === src.wal[i]) i++;
    this.wal = this.wal.slice(0, i);
    this.tl = src.tl;
    this.wasPrimary = false;
  }

  cloneFrom(src: Pg): void {
    this.data = 'valid';
    this.systemId = src.systemId;
    this.wal = src.wal.slice();
    this.tl = src.tl;
    this.wasPrimary = false;
    this.inRecovery = true;
  }

  wipe(): void {
    this.stop();
    this.data = 'empty';
    this.wal = [];
  }
}
