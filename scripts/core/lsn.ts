// PostgreSQL LSNs ("X/Y", two hexadecimal 32-bit halves) as bigint byte positions. Pure.

const LSN_RE = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** '0/3000148' → 0x3000148n. Throws an Error naming the bad value. */
export function parseLsn(lsn: string): bigint {
  if (typeof lsn !== 'string') throw new Error(`invalid LSN ${JSON.stringify(lsn)}: expected a string like "0/3000148"`);
  const m = LSN_RE.exec(lsn.trim());
  if (!m) throw new Error(`invalid LSN ${JSON.stringify(lsn)}: expected two hexadecimal numbers of up to 8 digits separated by "/", like "0/3000148"`);
  return (BigInt('0x' + m[1]) << 32n) | BigInt('0x' + m[2]);
}

/** 0x3000148n → '0/3000148' (upper-case hex, as PostgreSQL prints it). */
export function formatLsn(value: bigint): string {
  if (typeof value !== 'bigint') throw new Error(`invalid LSN value ${String(value)}: expected a bigint`);
  if (value < 0n || value > 0xffffffffffffffffn) throw new Error(`invalid LSN value ${value}: out of range 0..2^64-1`);
  const hi = value >> 32n;
  const lo = value & 0xffffffffn;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

const toBig = (v: string | bigint): bigint => (typeof v === 'bigint' ? v : parseLsn(v));

/** a - b in bytes (negative when a is behind b). Accepts LSN strings or parsed bigints. */
export function lsnDiff(a: string | bigint, b: string | bigint): bigint {
  return toBig(a) - toBig(b);
}

/** Compare two LSNs: -1, 0, 1. */
export function compareLsn(a: string | bigint, b: string | bigint): -1 | 0 | 1 {
  const d = lsnDiff(a, b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}
