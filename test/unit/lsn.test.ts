import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareLsn, formatLsn, lsnDiff, parseLsn } from '../../scripts/core/lsn.js';

test('parseLsn: the two 32-bit halves', () => {
  const cases: [string, bigint][] = [
    ['0/0', 0n],
    ['0/3000148', 0x3000148n],
    ['1/0', 0x100000000n],
    ['16/B374D848', 0x16b374d848n],
    ['FFFFFFFF/FFFFFFFF', 0xffffffffffffffffn],
    ['a/b', 0xa0000000bn],
  ];
  for (const [s, v] of cases) {
    assert.equal(parseLsn(s), v, s);
  }
});

test('formatLsn is the inverse of parseLsn (upper case, no padding)', () => {
  for (const s of ['0/0', '0/3000148', '1/0', '16/B374D848', 'FFFFFFFF/FFFFFFFF']) assert.equal(formatLsn(parseLsn(s)), s);
  assert.equal(formatLsn(0xa0000000bn), 'A/B');
});

test('malformed LSNs throw a clear error naming the value', () => {
  for (const bad of ['', '0', '/1', '1/', '0/3000148/1', 'x/1', '123456789/0', '0/123456789', ' 0 / 1', '-1/0', '0x1/2']) {
    assert.throws(() => parseLsn(bad), (e: Error) => e.message.includes(JSON.stringify(bad)) && /expected/.test(e.message), bad);
  }
  assert.throws(() => parseLsn(undefined as unknown as string), /invalid LSN/);
  assert.throws(() => formatLsn(-1n), /out of range/);
  assert.throws(() => formatLsn(1n << 64n), /out of range/);
});

test('lsnDiff is a - b in bytes, across the 4 GiB boundary; compareLsn', () => {
  assert.equal(lsnDiff('0/3000148', '0/3000000'), 0x148n);
  assert.equal(lsnDiff('0/3000000', '0/3000148'), -0x148n);
  assert.equal(lsnDiff('1/0', '0/FFFFFFFF'), 1n);
  assert.equal(lsnDiff(parseLsn('2/10'), '1/10'), 0x100000000n);
  assert.equal(compareLsn('0/1', '0/2'), -1);
  assert.equal(compareLsn('1/0', '0/FFFFFFFF'), 1);
  assert.equal(compareLsn('A/B', 'a/b'), 0);
  assert.throws(() => lsnDiff('0/1', 'nope'), /invalid LSN "nope"/);
});
