// Worker-thread entry for property.test.ts: one shard's explore(runs, seed), its totals posted
// back. A failed property throws here; the error (with the shrunk schedule and trace) reaches the
// test through the worker's 'error' event.
import { parentPort, workerData } from 'node:worker_threads';
import { explore } from './property.js';

const { runs, seed } = workerData as { runs: number; seed: number };
parentPort!.postMessage(explore(runs, seed));
