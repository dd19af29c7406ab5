// Modules loaded with require() instead of an ES import, to keep the entrypoint's resident memory
// down (measured in docs/bench.md, "Memory"):
// - Node's built-in modules: an ES import of a built-in reads every one of its exports, and on
//   Node 22+ some exports are getters that load a lot: node:http's WebSocket, CloseEvent and
//   MessageEvent load undici (≈ 13 MB of RSS on Node 24). require() reads nothing.
// - Packages needed only on some paths (js-yaml: a kubeconfig file, not the in-cluster
//   ServiceAccount), loaded synchronously on first use.
import { createRequire } from 'node:module';

const req = createRequire(import.meta.url);

interface Builtins {
  'node:http': typeof import('node:http');
  'node:https': typeof import('node:https');
}

export function builtin<K extends keyof Builtins>(name: K): Builtins[K] {
  return req(name) as Builtins[K];
}

interface Packages {
  'js-yaml': typeof import('js-yaml');
}

/** A CommonJS-capable package, loaded on first use. */
export function lazyPackage<K extends keyof Packages>(name: K): () => Packages[K] {
  let mod: Packages[K] | undefined;
  return () => (mod ??= req(name) as Packages[K]);
}
