// What PostgreSQL's files, programs and client errors say, read without I/O: the postmaster.pid
// status line, pg_basebackup's progress lines, why pg_rewind failed, and whether a failed query
// left its connection usable. Pure; the shell (shell/pg/) does the reading and acting.

/** Line 8 of postmaster.pid: 'starting', 'stopping', 'ready' or 'standby' (the last two mean
 *  connections are accepted); null when the file has no such line yet. */
export function pmStatusOf(pidFile: string): string | null {
  return pidFile.split('\n')[7]?.trim() || null;
}

/** The percentage of a `pg_basebackup --progress` line ("1234/5678 kB (21%), 0/1 tablespace"),
 *  null for other lines. */
export function basebackupPercent(line: string): number | null {
  const m = /\((\d{1,3})%\)/.exec(line);
  return m ? Number(m[1]) : null;
}

/**
 * Why pg_rewind failed, from its stderr:
 *  - 'connect': it could not open its connection to the source (refused, timed out, unknown
 *    host, authentication never reached). pg_rewind connects before it touches the target, so
 *    the target is unchanged.
 *  - 'lost': the connection to the source broke while it ran; the target may be half-rewound.
 *  - null: anything else — the source answered and the rewind itself failed (different
 *    systems, no common ancestor, missing WAL, a full disk …).
 */
export function rewindConnectionFailure(stderr: string): 'connect' | 'lost' | null {
  if (
    /could not connect to (the )?server/i.test(stderr) ||
    /connection to server (at|on) .* failed/i.test(stderr) ||
    /could not translate host name/i.test(stderr) ||
    /timeout expired/i.test(stderr)
  ) {
    return 'connect';
  }
  if (
    /server closed the connection unexpectedly/i.test(stderr) ||
    /connection to server was lost/i.test(stderr) ||
    /no connection to the server/i.test(stderr) ||
    /could not (receive|send) data (from|to) server/i.test(stderr) ||
    /SSL SYSCALL error/i.test(stderr)
  ) {
    return 'lost';
  }
  return null;
}

/**
 * What a failed query means for the connection it ran on:
 *  - 'statement': the server reported an ERROR for this statement (statement_timeout included);
 *    the session goes on and can be reused.
 *  - 'timeout': the client gave up waiting (no answer from the server: frozen, overloaded); the
 *    session is in an unknown state and must be dropped, but retrying at once is pointless.
 *  - 'broken': the connection is gone (closed, reset, FATAL, admin shutdown); drop it, a new one
 *    may work at once.
 */
export function queryErrorKind(e: unknown): 'statement' | 'timeout' | 'broken' {
  const err = (e ?? {}) as { message?: unknown; severity?: unknown; code?: unknown };
  const msg = typeof err.message === 'string' ? err.message : '';
  // errors the server sent carry a severity and an SQLSTATE; the client's own (socket, timeout) do not
  const fromServer = typeof err.severity === 'string' && typeof err.code === 'string';
  if (fromServer) return err.severity === 'ERROR' && !/^(08|57P)/.test(err.code as string) ? 'statement' : 'broken';
  return /timeout/i.test(msg) ? 'timeout' : 'broken';
}
