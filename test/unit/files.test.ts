// Files looked at every tick (parameters.json, the roles declaration and secrets) are read again
// only when they changed: cachedFileReader keys each file's content by its stat signature, never
// serves stale content after a write, a kubelet-style ..data swap or a removal, and does not cache
// a file young enough for two writes to share a timestamp. The parameters digest published every
// tick is hashed once per parameter set.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parametersDigest } from '../../scripts/core/live-parameters.js';
import { cachedFileReader } from '../../scripts/shell/files.js';
import { appliedParametersDigest } from '../../scripts/shell/live-parameters.js';
import type { State } from '../../scripts/shell/state.js';

const dir = mkdtempSync(join(tmpdir(), 'pga-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));
/** an hour old: past the racy window, so its content may be cached */
const age = (p: string) => utimesSync(p, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));

describe('cachedFileReader', () => {
  test('an unchanged file is read once; a rewrite of the same size is read again', () => {
    const f = join(dir, 'parameters.json');
    writeFileSync(f, '{"work_mem":"4MB"}');
    age(f);
    const r = cachedFileReader();
    for (let i = 0; i < 5; i++) assert.equal(r.readFile(f), '{"work_mem":"4MB"}');
    assert.equal(r.reads, 1);
    writeFileSync(f, '{"work_mem":"8MB"}'); // same size, same inode: the times move
    age(f);
    assert.equal(r.readFile(f), '{"work_mem":"8MB"}');
    assert.equal(r.reads, 2);
  });

  test('a young file is read every time: two writes within one clock tick would share a signature', () => {
    const f = join(dir, 'young.json');
    writeFileSync(f, 'a');
    const r = cachedFileReader();
    assert.equal(r.readFile(f), 'a');
    writeFileSync(f, 'b');
    assert.equal(r.readFile(f), 'b');
    assert.equal(r.readFile(f), 'b');
    assert.equal(r.reads, 3);
  });

  test('a kubelet-style ..data swap, a removal and a re-creation are all seen', () => {
    const vol = join(dir, 'vol');
    mkdirSync(join(vol, '..v1'), { recursive: true });
    writeFileSync(join(vol, '..v1', 'roles.json'), 'one');
    age(join(vol, '..v1', 'roles.json'));
    symlinkSync('..v1', join(vol, '..data'));
    symlinkSync('..data/roles.json', join(vol, 'roles.json'));
    const f = join(vol, 'roles.json');
    const r = cachedFileReader();
    assert.equal(r.readFile(f), 'one');
    assert.equal(r.readFile(f), 'one');
    assert.equal(r.reads, 1);
    // the new version: a ..v2 directory, a symlink to it renamed over ..data (the same size, an old mtime)
    mkdirSync(join(vol, '..v2'));
    writeFileSync(join(vol, '..v2', 'roles.json'), 'two');
    age(join(vol, '..v2', 'roles.json'));
    symlinkSync('..v2', join(vol, '..tmp'));
    renameSync(join(vol, '..tmp'), join(vol, '..data'));
    assert.equal(r.readFile(f), 'two');
    rmSync(join(vol, '..data'));
    assert.equal(r.readFile(f), null, 'gone: null, as nodeFileReader says');
    symlinkSync('..v1', join(vol, '..data'));
    assert.equal(r.readFile(f), 'one');
    assert.equal(r.readFile(join(dir, 'never-there')), null);
  });
});

describe('appliedParametersDigest', () => {
  test('the digest of the parameters in force, hashed once per set; a new set (or a reload in flight) gives its own', () => {
    const a = { work_mem: '4MB', shared_buffers: '128MB' };
    const st = { cfg: { parameters: a }, params: { reloading: null } } as unknown as State;
    const d = appliedParametersDigest(st);
    assert.equal(d, parametersDigest(a));
    assert.equal(appliedParametersDigest(st), d);
    const b = { work_mem: '64MB', shared_buffers: '128MB' };
    (st.cfg as { parameters: Record<string, string> }).parameters = b;
    assert.equal(appliedParametersDigest(st), parametersDigest(b));
    assert.notEqual(parametersDigest(b), d);
    // while a reload's outcome is not read, the previous parameters' digest
    (st.params as { reloading: unknown }).reloading = { previous: a };
    assert.equal(appliedParametersDigest(st), d);
  });
});
