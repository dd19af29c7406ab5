// pg_control read straight from its bytes (global/pg_control), for the hand-off: while postgres
// shuts down it is read every few milliseconds to see the shutdown checkpoint the moment it is
// written, which spawning pg_controldata that often could not do. Pure.
//
// Only the head of ControlFileData is read, whose layout PostgreSQL keeps fixed across versions
// (11 to 18 at least): system_identifier (uint64, offset 0), pg_control_version (uint32, 8),
// catalog_version_no (uint32, 12), state (DBState, 16), time (int64, 24), checkPoint (LSN, 32).
// The struct ends with a CRC-32C of everything before it, at an offset that does depend on the
// version: it is found by its own check (exactly one 4-byte-aligned position must hold the CRC of
// the bytes before it). A read that overlapped a write of the file fails that check and is
// refused, never half-believed. Byte order is the machine's: little-endian (x86-64, arm64).

export interface ControlFile {
  systemId: string;
  version: number;
  /** DBState: 1 = DB_SHUTDOWNED (a clean shutdown checkpoint is the last thing written) */
  state: number;
  shutDown: boolean;
  /** the latest checkpoint record's position */
  checkpointLsn: bigint;
}

/** DBState's DB_SHUTDOWNED, the same value in every PostgreSQL version. */
const DB_SHUTDOWNED = 1;
/** ControlFileData must fit one 512-byte sector (PG_CONTROL_MAX_SAFE_SIZE): the CRC lies below. */
const MAX_CRC_OFFSET = 512 - 4;
const FIRST_CRC_OFFSET = 40;

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli), as PostgreSQL's pg_crc32c. */
export function crc32c(b: Uint8Array, end = b.length): number {
  let crc = 0xffffffff;
  for (let i = 0; i < end; i++) crc = TABLE[(crc ^ b[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The offsets at which a CRC-32C of all bytes before it is stored. */
function crcOffsets(b: Uint8Array, dv: DataView): number[] {
  const found: number[] = [];
  let crc = 0xffffffff;
  const end = Math.min(MAX_CRC_OFFSET, b.length - 4);
  for (let i = 0; i <= end; i++) {
    if (i >= FIRST_CRC_OFFSET && i % 4 === 0 && ((crc ^ 0xffffffff) >>> 0) === dv.getUint32(i, true)) found.push(i);
    crc = TABLE[(crc ^ b[i]!) & 0xff]! ^ (crc >>> 8);
  }
  return found;
}

/** Parse the head of pg_control; an Error says why the bytes cannot be trusted. */
export function parseControlFile(b: Uint8Array): ControlFile | Error {
  if (b.length < 512) return new Error(`pg_control is ${b.length} bytes, expected at least 512 (PG_CONTROL_FILE_SIZE is 8192)`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const version = dv.getUint32(8, true);
  // PostgreSQL 11 (1100) dropped prevCheckPoint; versions are major × 100 since 9.0. A big-endian
  // file reads as a huge number here.
  if (version < 1100 || version > 9900) return new Error(`pg_control version ${version} is not one this reader knows (1100 to 9900, little-endian)`);
  const at = crcOffsets(b, dv);
  if (at.length !== 1) return new Error(at.length ? `pg_control's CRC matches at ${at.length} offsets (${at.join(', ')}): ambiguous` : "pg_control's CRC does not match (read while it was written, or damaged)");
  const state = dv.getUint32(16, true);
  return {
    systemId: dv.getBigUint64(0, true).toString(),
    version,
    state,
    shutDown: state === DB_SHUTDOWNED,
    checkpointLsn: dv.getBigUint64(32, true),
  };
}
