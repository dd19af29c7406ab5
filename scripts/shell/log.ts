// Structured logger: one JSON object per line (default) or a plain-text line, written to stdout.
// Every line of the entrypoint (and, through the supervisor, every line postgres prints) goes
// through here, so a log collector sees one format.

import type { LogFormat, LogLevel } from '../core/config.js';
export { LOG_LEVELS, LOG_FORMATS, type LogFormat, type LogLevel } from '../core/config.js';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}


const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  format: LogFormat;
  level: LogLevel;
  /** Defaults to process.stdout. */
  stream?: NodeJS.WritableStream;
  base?: Record<string, unknown>;
}

/** Errors become their message (plus code when present); bigint becomes a string; everything else
 *  is kept as is. Used so JSON.stringify never throws and never prints `{}` for an Error. */
function normalise(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as NodeJS.ErrnoException).code;
    return code ? `${value.message} (${code})` : value.message;
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

function replacer(_key: string, value: unknown): unknown {
  return normalise(value);
}

function textValue(value: unknown): string {
  const v = normalise(value);
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  try {
    return JSON.stringify(v, replacer);
  } catch {
    return String(v);
  }
}

export function createLogger(opts: LoggerOptions): Logger {
  const stream = opts.stream ?? process.stdout;
  const min = RANK[opts.level];
  const make = (base: Record<string, unknown>): Logger => {
    const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
      if (RANK[level] < min) return;
      const ts = new Date().toISOString();
      const all: Record<string, unknown> = { ...base, ...(fields ?? {}) };
      let line: string;
      if (opts.format === 'json') {
        // ts, level and msg always come first and cannot be overridden by fields.
        const { ts: _t, level: _l, msg: _m, ...rest } = all;
        try {
          line = JSON.stringify({ ts, level, msg, ...rest }, replacer);
        } catch (e) {
          // circular structure or similar: keep the line, drop the fields
          line = JSON.stringify({ ts, level, msg, logError: (e as Error).message });
        }
      } else {
        const kv = Object.entries(all)
          .map(([k, v]) => `${k}=${textValue(v)}`)
          .join(' ');
        line = `${ts} ${level.toUpperCase()} ${msg}${kv ? ' ' + kv : ''}`;
      }
      stream.write(line + '\n');
    };
    return {
      debug: (m, f) => write('debug', m, f),
      info: (m, f) => write('info', m, f),
      warn: (m, f) => write('warn', m, f),
      error: (m, f) => write('error', m, f),
      child: (fields) => make({ ...base, ...fields }),
    };
  };
  return make({ ...(opts.base ?? {}) });
}
