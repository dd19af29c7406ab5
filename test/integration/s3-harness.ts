// A real S3 server for the backup tests: SeaweedFS's `weed server` (master, volume, filer and its
// S3 gateway) built from the Go module proxy by `test/toolchain/install.sh seaweedfs`, on loopback
// ports, serving S3 over TLS (pgBackRest speaks only HTTPS to S3) with one access key. Stopped by
// PID; `stop()`/`start()` again to stage an outage; no telemetry (it would call out).
//
//   const s3 = await startS3();   s3.endpoint → "localhost:PORT"; s3.key / s3.secret; s3.caFile
//   await s3.createBucket('backups'); await s3.pause(); await s3.resume(); await s3.stop()
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, rmSync, openSync, closeSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as https from 'node:https';
import { freePort } from './kube-harness.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const WEED = join(ROOT, '.tools/bin/weed');
export const haveWeed = () => existsSync(WEED);

export interface S3 {
  endpoint: string;
  port: number;
  key: string;
  secret: string;
  caFile: string;
  dir: string;
  /** stop the server (an outage); data stays */
  pause(): Promise<void>;
  /** start it again on the same ports and data */
  resume(): Promise<void>;
  stop(): Promise<void>;
  createBucket(name: string): Promise<void>;
}

/**
 * A member's backup configuration against this server, as the chart renders it: backup.json
 * (bucket "backups", path /<stanza>, TLS with the server's CA) and the access key files. `extra`
 * overrides or adds backup.json keys (retention, options, ...).
 */
export function backupFiles(s3: S3, stanza: string, extra: Record<string, unknown> = {}): Record<string, string> {
  return {
    'backup.json': JSON.stringify({ stanza, s3: { endpoint: s3.endpoint, bucket: 'backups', region: 'us-east-1', path: `/${stanza}`, uriStyle: 'path', verifyTls: true, caFile: s3.caFile }, schedule: {}, retention: { full: 2 }, ...extra }),
    'backup/s3-key': s3.key,
    'backup/s3-key-secret': s3.secret,
  };
}

function sleep(ms: number) { return new Promise((r) => setTimeout(r, ms)); }

export async function startS3(): Promise<S3> {
  if (!haveWeed()) throw new Error(`${WEED} missing: run "bash test/toolchain/install.sh seaweedfs" (about 20 minutes cold)`);
  const dir = mkdtempSync(join(tmpdir(), 'pga-s3-'));
  chmodSync(dir, 0o755);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 's3.key', '-out', 's3.crt', '-days', '30', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  chmodSync(join(dir, 's3.crt'), 0o644);
  const key = 'PGATESTKEY0123456789', secret = 'pga-test-secret-0123456789abcdefghijklmn';
  writeFileSync(join(dir, 's3.json'), JSON.stringify({ identities: [{ name: 'pga', credentials: [{ accessKey: key, secretKey: secret }], actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'] }] }));
  const ports = { master: await freePort(), masterGrpc: await freePort(), volume: await freePort(), volumeGrpc: await freePort(), filer: await freePort(), filerGrpc: await freePort(), s3: await freePort(), s3Grpc: await freePort() };
  const args = [
    'server', '-ip=127.0.0.1', '-ip.bind=127.0.0.1', `-dir=${join(dir, 'data')}`, '-volume.max=0', '-master.volumeSizeLimitMB=64',
    `-master.port=${ports.master}`, `-master.port.grpc=${ports.masterGrpc}`, '-master.telemetry=false',
    `-volume.port=${ports.volume}`, `-volume.port.grpc=${ports.volumeGrpc}`,
    '-filer', `-filer.port=${ports.filer}`, `-filer.port.grpc=${ports.filerGrpc}`,
    '-s3', `-s3.port=${ports.s3}`, `-s3.port.grpc=${ports.s3Grpc}`, '-s3.port.iceberg=0', '-s3.port.lance=0',
    `-s3.config=${join(dir, 's3.json')}`, `-s3.cert.file=${join(dir, 's3.crt')}`, `-s3.key.file=${join(dir, 's3.key')}`,
  ];
  execFileSync('mkdir', ['-p', join(dir, 'data')]);
  let proc: ChildProcess | null = null;
  const ca = join(dir, 's3.crt');
  const request = (method: string, path: string): Promise<number> => new Promise((res) => {
    const r = https.request({ host: '127.0.0.1', port: ports.s3, method, path, ca: [execFileSync('cat', [ca])], timeout: 2_000 }, (x) => { x.resume(); res(x.statusCode ?? 0); });
    r.on('error', () => res(0)); r.on('timeout', () => { r.destroy(); res(0); }); r.end();
  });
  const launch = async () => {
    const log = openSync(join(dir, 'weed.log'), 'a');
    proc = spawn(WEED, args, { stdio: ['ignore', log, log], detached: true });
    closeSync(log);
    const deadline = Date.now() + 90_000;
    // Up when the gateway answers TLS (403 without credentials) and the filer behind it is ready.
    while (Date.now() < deadline) {
      if ((await request('GET', '/')) >= 200) return;
      if (proc.exitCode !== null) break;
      await sleep(250);
    }
    throw new Error(`SeaweedFS did not start: see ${join(dir, 'weed.log')}`);
  };
  const kill = async () => {
    const p = proc as ChildProcess | null;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    try { process.kill(-p.pid!, 'SIGTERM'); } catch { /* gone */ }
    await Promise.race([exited, sleep(10_000)]);
    try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* gone */ }
  };
  await launch();
  return {
    // a host name: pgBackRest (2.45) verifies the certificate against names, not IP addresses
    endpoint: `localhost:${ports.s3}`, port: ports.s3, key, secret, caFile: ca, dir,
    pause: kill,
    resume: launch,
    stop: async () => { await kill(); if (!process.env.PGA_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true }); },
    // pgBackRest does not create buckets; `weed shell` does, through the master.
    async createBucket(name: string) {
      execFileSync(WEED, ['shell', `-master=127.0.0.1:${ports.master}.${ports.masterGrpc}`], { input: `s3.bucket.create -name ${name}\n`, stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
    },
  };
}
