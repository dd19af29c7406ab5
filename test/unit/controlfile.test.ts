import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c, parseControlFile } from '../../scripts/core/controlfile.js';

// The first 292 bytes of a real PostgreSQL 15 pg_control (the rest of its 8192 bytes are zero):
// pg_controldata said "in production", checkpoint 0/40240A0, system identifier 7713421551495973203.
const PG15 = '5389c29b08940b6b1405000025770d0c06000000000000001a940b6b00000000a0400204000000006840020400000000020000000200000001000000000000000c03000000000000094000000100000000000000cd020000010000000100000001000000000000001a940b6b0000000000000000000000000c03000000000000e803000000000000000000000000000000000000000000000000000000000000000000000000000000000000010000000100000064000000080000000a000000000000004000000000000000080000000000000087d63241002000000000020000200000000000014000000020000000cc07000000080000010000000100000051c2d96dc6511db691a8803bb119c4a8dc6486724d2a4c3c067adae94284fbac3b5e8b27';

function file(hex = PG15): Uint8Array {
  const b = new Uint8Array(8192);
  b.set(Buffer.from(hex, 'hex'));
  return b;
}

test('crc32c: the standard check value', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
});

test('a real PostgreSQL 15 pg_control: what pg_controldata said', () => {
  const cf = parseControlFile(file());
  assert.ok(!(cf instanceof Error), String(cf));
  assert.deepEqual(cf, { systemId: '7713421551495973203', version: 1300, state: 6, shutDown: false, checkpointLsn: 0x40240a0n });
});

test('"shut down" with its checkpoint, once the CRC covers it', () => {
  const b = file();
  const dv = new DataView(b.buffer);
  dv.setUint32(16, 1, true); // DB_SHUTDOWNED
  dv.setBigUint64(32, 0x5000028n, true);
  assert.match(String(parseControlFile(b)), /CRC does not match/, 'a changed file with the old CRC is refused');
  dv.setUint32(288, crc32c(b, 288), true);
  const cf = parseControlFile(b);
  assert.ok(!(cf instanceof Error), String(cf));
  assert.equal(cf.shutDown, true);
  assert.equal(cf.checkpointLsn, 0x5000028n);
});

test('a read that overlapped a write (half old, half new) is refused, never half-believed', () => {
  const b = file();
  b[33] = b[33]! ^ 0x01; // the checkpoint location changed, the CRC did not
  assert.match(String(parseControlFile(b)), /CRC does not match/);
});

test('unknown versions, other byte orders and short reads are refused with the reason', () => {
  const big = file();
  new DataView(big.buffer).setUint32(8, 1300, false);
  assert.match(String(parseControlFile(big)), /version \d+ is not one this reader knows/);
  const old = file();
  new DataView(old.buffer).setUint32(8, 1002, true);
  assert.match(String(parseControlFile(old)), /version 1002/);
  assert.match(String(parseControlFile(file().subarray(0, 100))), /100 bytes, expected at least 512/);
});
