// How a member with an empty data directory gets its data once the cluster exists: pg_basebackup
// from the primary, or (replication.bootstrapFrom: backup) pgBackRest's restore of the cluster's
// own latest backup as a standby, which then catches up from the archive and streams from the
// primary. Decided here once, with a one-line reason; the shell only reads the repository's
// catalogue (RepoView) and runs what is chosen. Pure.
//
// A restore is tried only on evidence that it can work: the repository answered, holds a backup,
// and that backup is of this cluster (its system identifier is the one on the lease). Otherwise,
// or once a restore failed on this member (Memory.restoreFailed), the member clones with
// pg_basebackup: a failed restore is never retried in a loop, and what it left behind is only the
// member's own half-restored directory (marked incomplete, so the next tick wipes it).
import type { Action, Decision, Endpoint, Memory, Observation } from './types.js';

/** The repository's catalogue as the shell read it for a member about to clone. */
export type RepoView =
  | { ok: true; backups: number; systemIds: string[] }
  | { ok: false; error: string };

/** What the member knows about its clone source (Observation.replicaSource). */
export interface ReplicaSourceView {
  from: 'basebackup' | 'backup';
  /** from 'backup': the repository read for this clone; undefined = not read yet */
  repo?: RepoView;
}

export type CloneMethod = 'basebackup' | 'restore';

/** The method and its one-line reason, for a member with an empty data directory and a healthy primary. */
export function cloneMethod(o: Observation, m: Memory, lead: string): { method: CloneMethod; reason: string } | { wait: string } {
  const src = o.replicaSource;
  const base = (why: string) => ({ method: 'basebackup' as const, reason: `${why}: cloning from ${lead} with pg_basebackup` });
  if (!src || src.from === 'basebackup') return { method: 'basebackup', reason: `empty data directory: cloning from ${lead}` };
  if (m.restoreFailed !== null) return base(`the restore from the backup repository failed on this member (${m.restoreFailed}); not trying it again`);
  const repo = src.repo;
  if (repo === undefined) return { wait: 'empty data directory: reading the backup repository before cloning' };
  if (!repo.ok) return base(`the backup repository cannot be read (${repo.error})`);
  if (repo.backups === 0) return base('the backup repository holds no backup of this cluster yet');
  const ours = o.lease?.systemId ?? null;
  if (ours === null) return base('the lease records no system identifier yet, so the repository\'s backup cannot be proven to be this cluster\'s');
  if (!repo.systemIds.includes(ours)) return base(`the repository's backups are of another cluster (system identifier ${repo.systemIds.join(', ') || 'none'}, ours ${ours})`);
  return { method: 'restore', reason: `empty data directory: restoring the latest of ${repo.backups} backup(s) from the repository as a standby, then streaming from ${lead}` };
}

/** The clone action (or a wait) for an empty data directory with a healthy primary to stream from. */
export function cloneDecision(o: Observation, m: Memory, from: Endpoint): Decision {
  const c = cloneMethod(o, m, from.name);
  if ('wait' in c) return { actions: [], reason: c.wait, memory: m };
  const action: Action = { type: 'clone', from, method: c.method, why: c.reason };
  return { actions: [action], reason: c.reason, memory: m };
}
