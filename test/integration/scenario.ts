// What the whole-member scenario files share: one API server per file, figures (printed as they
// come, saved to test-results/ at the end), and the recurring steps — a healthy cluster, a
// disruption under a writer, lost acknowledged writes, split-brain sampling, a pod's death.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster, Writer, startKube, sleep } from './cluster-harness.js';
import type { Kube } from './kube-harness.js';

export interface Diag { diagnostic(m: string): void }
export type Fig = (t: Diag, name: string, value: number | string, unit?: string) => void;

export const isRoot = process.getuid?.() === 0;
/** A command run as the postgres OS user when we are root (initdb refuses to run as root). */
export const asPostgres = (cmd: string[]) => (isRoot ? ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--', ...cmd] : cmd);

/**
 * Registers the file's before/after hooks: a kube-apiserver for its tests, and the figures they
 * print written to test-results/<figuresFile> when the file is done.
 */
export function scenarioFile(figuresFile: string): { kube: () => Kube; fig: Fig } {
  let kube: Kube | undefined;
  const figures: Record<string, number | string> = {};
  before(async () => { kube = await startKube(); });
  after(async () => {
    await kube?.stop();
    if (Object.keys(figures).length) {
      const dir = join(process.cwd(), 'test-results');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, figuresFile), JSON.stringify(figures, null, 2) + '\n');
    }
  });
  return {
    kube: () => { if (!kube) throw new Error('the API server is not started (call inside a test)'); return kube; },
    fig: (t, name, value, unit = 'ms') => {
      figures[name] = value;
      t.diagnostic(`FIGURE ${name}: ${value}${typeof value === 'number' ? ` ${unit}` : ''}`);
    },
  };
}

/** Waits for one primary and `members - 1` replicas streaming from it; returns the primary. */
export async function healthy(c: Cluster, members: number): Promise<string> {
  const p = await c.waitForPrimary(90_000);
  await c.waitForReplicas(p, members - 1, 90_000);
  return p;
}

/**
 * The shape of every disruption scenario: a healthy cluster, a client writing every 20 ms through
 * the primary label, the disruption at `at`, a new primary, writes flowing again. Prints the
 * longest write gap as a figure.
 */
export async function disrupt(c: Cluster, t: Diag, fig: Fig, figure: string, disruption: (p: string) => Promise<void>, timeoutMs = 30_000) {
  const p = await healthy(c, 3);
  const w = await Writer.start(c, p);
  await sleep(1_000);
  const at = Date.now();
  await disruption(p);
  const np = await c.waitForPrimary(timeoutMs, p);
  assert.notEqual(np, p);
  await c.waitFor('writes through the new primary', async () => w.acked.some((a) => a.at > at + 50), timeoutMs, 20);
  const writesBackAt = Date.now();
  await sleep(1_000);
  await w.stop();
  const gap = w.longestGap(at);
  t.diagnostic(`${figure}: last write acknowledged ${new Date(gap.from).toISOString()}, next ${new Date(gap.to).toISOString()}; disruption at ${new Date(at).toISOString()}`);
  // what the client got meanwhile, in order: the first and last time of each error, ms into the gap
  const errs = new Map<string, { first: number; last: number; n: number }>();
  for (const e of w.errors.filter((x) => x.at > gap.from && x.at < gap.to)) {
    const k = e.error.slice(0, 80);
    const x = errs.get(k) ?? { first: e.at - gap.from, last: 0, n: 0 };
    errs.set(k, { ...x, last: e.at - gap.from, n: x.n + 1 });
  }
  for (const [k, x] of errs) t.diagnostic(`${figure}: client error ${x.first}–${x.last} ms (${x.n}×): ${k}`);
  fig(t, figure, gap.ms);
  return { p, np, w, at, writesBackAt };
}

/** Acknowledged ids missing on `primary` (in `table`). */
export async function missing(c: Cluster, primary: string, table: string, acked: number[]): Promise<number[]> {
  const ids = new Set((await c.sql(primary, `select id from ${table}`)).map((x) => x.id));
  return acked.filter((id) => !ids.has(id));
}

/** While `during` runs, sample which members are writable every `everyMs`; more than one at once is split brain. */
export async function watchSplitBrain(c: Cluster, during: () => Promise<void>, everyMs = 50): Promise<string[][]> {
  const seen: string[][] = [];
  let stop = false;
  const sampler = (async () => { while (!stop) { const w = await c.writable(); if (w.length > 1) seen.push(w); await sleep(everyMs); } })();
  try { await during(); } finally { stop = true; await sampler; }
  return seen;
}

/** The whole pod dies: SIGKILL the entrypoint; its postgres must die with it (else we stop it). */
export async function killPod(c: Cluster, name: string): Promise<boolean> {
  const pm = c.postmasterPid(name);
  await c.signal(name, 'SIGKILL', 5_000);
  const died = await c.waitFor(`${name}'s postgres gone`, async () => c.postmasterPid(name) === null, 5_000, 50).then(() => true, () => false);
  if (!died && pm) { try { process.kill(pm, 'SIGKILL'); } catch { /* gone */ } await sleep(300); }
  return died;
}

/**
 * The pod goes away as a StatefulSet scale-down removes it: the API server marks it deleted
 * (deletionTimestamp; a finalizer holds the object, as a kubelet would until the container is
 * gone), the entrypoint gets SIGTERM, and the object disappears once it exited. Resolves with the
 * milliseconds the member took to stop.
 */
export async function scaleDownPod(c: Cluster, name: string): Promise<number> {
  const path = `/api/v1/namespaces/${c.ns}/pods/${name}`;
  const hold = await c.kube.request('PATCH', path, { metadata: { finalizers: ['pg-autopilot.io/test-kubelet'] } }, 'application/merge-patch+json');
  assert.ok(hold.status < 300, `finalizer on ${name}: ${hold.status} ${JSON.stringify(hold.body)}`);
  const del = await c.kube.request('DELETE', path);
  assert.ok(del.status < 300, `delete ${name}: ${del.status}`);
  const t0 = Date.now();
  await c.signal(name, 'SIGTERM', 60_000);
  const ms = Date.now() - t0;
  await c.kube.request('PATCH', path, { metadata: { finalizers: null } }, 'application/merge-patch+json');
  return ms;
}

/** A member's whole log so far ('' when there is none yet). */
export function memberLog(c: Cluster, name: string): string {
  try { return readFileSync(c.member(name).logFile, 'utf8'); } catch { return ''; }
}
