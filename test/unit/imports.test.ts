// The shape of scripts/: the core is pure (imports nothing from node:, the shell, or any package
// that does I/O), and no module imports itself through a cycle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
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

// images/postgres/autopilot runs node with --jitless: no WebAssembly, so neither fetch nor the
// rest of undici's HTTP client (its parser, llhttp, is WebAssembly) works — "fetch failed:
// WebAssembly is not defined", at run time, on the path that first uses it (e.g. a failover).
const NEEDS_WASM = new Set(['fetch', 'WebAssembly', 'WebSocket', 'EventSource']);

/** Uses of the globals in NEEDS_WASM in a TypeScript file (not property names, not comments). */
function wasmUses(file: string): string[] {
  const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (n: ts.Node) => {
    if (ts.isIdentifier(n) && NEEDS_WASM.has(n.text)) {
      const p = n.parent;
      const isMemberName = (ts.isPropertyAccessExpression(p) && p.name === n && !/^(globalThis|global|window|self)$/.test(p.expression.getText(src)))
        || ((ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p) || ts.isPropertySignature(p) || ts.isMethodDeclaration(p) || ts.isMethodSignature(p)) && p.name === n);
      if (!isMemberName) out.push(`${relative(ROOT, file)}:${src.getLineAndCharacterOfPosition(n.getStart(src)).line + 1} ${n.text}`);
    }
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier) && /^undici/.test(n.moduleSpecifier.text)) out.push(`${relative(ROOT, file)}: imports ${n.moduleSpecifier.text}`);
    ts.forEachChild(n, visit);
  };
  visit(src);
  return out;
}

test('scripts/ uses nothing --jitless takes away (WebAssembly, hence fetch, WebSocket, EventSource)', () => {
  assert.deepEqual(sources(SCRIPTS).flatMap(wasmUses), []);
});

test('the WebAssembly check finds a call to fetch, and only in code', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pga-wasm-'));
  try {
    const f = join(dir, 'x.ts');
    writeFileSync(f, [
      '// fetch() in a comment, "fetch(" in a string, o.fetch() a method, { fetch: 1 } a key',
      "const s = 'fetch(x)'; const o = { fetch: 1 }; o.fetch;",
      'await fetch(url);',
      'const w = globalThis.WebAssembly;',
    ].join('\n'));
    assert.deepEqual(wasmUses(f).map((x) => x.replace(/^.*x\.ts/, 'x.ts')), ['x.ts:3 fetch', 'x.ts:4 WebAssembly']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('isIpAddress (the core\'s own, replacing node:net)', () => {
  for (const ok of ['10.0.0.1', '127.0.0.1', '::1', 'fe80::1', '2001:db8::8a2e:370:7334', '::ffff:10.0.0.1', '1:2:3:4:5:6:7:8']) assert.ok(isIpAddress(ok), ok);
  for (const no of ['256.0.0.1', '10.0.0', 'pg-0', '1:2:3:4:5:6:7:8:9', ':::1', '1::2::3', '', 'g::1']) assert.ok(!isIpAddress(no), no);
});
