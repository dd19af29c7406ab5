// pg_controldata, read while postgres is down: was this data directory a primary or a standby,
// and where is its last checkpoint (the hand-off waits for the target to have received it); and
// pg_control's head read from the file, polled by the hand-off while postgres shuts down.
import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import type { ControlRole } from '../core/types.js';
import { parseControlFile, type ControlFile } from '../core/controlfile.js';

export interface ControlData {
  role: ControlRole;
  state: string;
  checkpointLsn: string | null;
  timeline: number | null;
  systemId: string | null;
}

/** Pure: parse pg_controldata's text. */
export function parseControlData(text: string): ControlData {
  const field = (name: string) => text.match(new RegExp(`^${name}:\\s*(.+)$`, 'm'))?.[1]?.trim() ?? null;
  const state = field('Database cluster state') ?? 'unknown';
  // "in production" (crashed or running primary) and "shut down" (clean primary shutdown) are
  // primaries; "shut down in recovery" and "in archive recovery" are standbys.
  const role: ControlRole = /recovery/.test(state) ? 'standby' : /^(in production|shut down|shutting down|in crash recovery)$/.test(state) ? 'primary' : 'unknown';
  const tl = field("Latest checkpoint's TimeLineID");
  return { role, state, checkpointLsn: field('Latest checkpoint location'), timeline: tl ? Number(tl) : null, systemId: field('Database system identifier') };
}

export function readControlData(binDir: string, dataDir: string): Promise<ControlData> {
  return new Promise((resolve) => {
    execFile(`${binDir}/pg_controldata`, ['-D', dataDir], { env: { ...process.env, LC_ALL: 'C' }, timeout: 5_000 }, (err, stdout) => {
      if (err) return resolve({ role: 'unknown', state: `pg_controldata failed: ${err.message}`, checkpointLsn: null, timeline: null, systemId: null });
      resolve(parseControlData(stdout));
    });
  });
}

/** pg_control's head read from the file itself (cheap enough to poll while postgres shuts down);
 *  an Error when it cannot be read or trusted (the caller falls back to pg_controldata). */
export async function readControlFile(dataDir: string): Promise<ControlFile | Error> {
  let f;
  try {
    f = await open(`${dataDir}/global/pg_control`, 'r');
    const buf = Buffer.alloc(512);
    const { bytesRead } = await f.read(buf, 0, 512, 0);
    return parseControlFile(buf.subarray(0, bytesRead));
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  } finally {
    await f?.close().catch(() => undefined);
  }
}
