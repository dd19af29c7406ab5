// The shape of scripts/: the core is pure (imports nothing from node:, the shell, or any package
// that does I/O), and no module imports itself through a cycle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, dirname, resolve, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isIpAddress } from '../../scripts/core/config.js';

// dist/test/unit → the repository's scripts/ (sources, not the compiled files)
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SCRIPTS = join(ROOT, 'scripts');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function imports(file: string, withTypes = false): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  // `import type` is erased at compile time: it cannot make a cycle at run time.
  const re = new RegExp(`^\\s*(?:import|export)\\s${withTypes ? '' : '(?!type\\s)'}[^'"]*?from\\s+['"]([^'"]+)['"]`, 'gm');
  for (const m of text.matchAll(re)) out.push(m[1]!);
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out;
}

const ALLOWED_PACKAGES = new Set(['envalid']);

test('scripts/core imports nothing from node:, the shell, or an I/O package', () => {
  const bad: string[] = [];
  for (const f of sources(join(SCRIPTS, 'core'))) {
    for (const spec of imports(f, true)) {
      const rel = spec.startsWith('.');
      if (rel && !resolve(dirname(f), spec).startsWith(join(SCRIPTS, 'core'))) bad.push(`${relative(ROOT, f)} → ${spec}`);
      if (!rel && !ALLOWED_PACKAGES.has(spec)) bad.push(`${relative(ROOT, f)} → ${spec}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('no circular imports in scripts/', () => {
  const files = sources(SCRIPTS);
  const graph = new Map(files.map((f) => [f, imports(f).filter((s) => s.startsWith('.')).map((s) => resolve(dirname(f), s).replace(/\.js$/, '.ts'))]));
  const state = new Map<string, 'visiting' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'visiting') { cycles.push([...path.slice(path.indexOf(f)), f].map((x) => relative(SCRIPTS, x)).join(' → ')); return; }
    state.set(f, 'visiting');
    for (const g of graph.get(f) ?? []) visit(g, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of files) visit(f, []);
  assert.deepEqual(cycles, []);
});

test('isIpAddress (the core\'s own, replacing node:net)', () => {
  for (const ok of ['10.0.0.1', '127.0.0.1', '::1', 'fe80::1', '2001:db8::8a2e:370:7334', '::ffff:10.0.0.1', '1:2:3:4:5:6:7:8']) assert.ok(isIpAddress(ok), ok);
  for (const no of ['256.0.0.1', '10.0.0', 'pg-0', '1:2:3:4:5:6:7:8:9', ':::1', '1::2::3', '', 'g::1']) assert.ok(!isIpAddress(no), no);
});
