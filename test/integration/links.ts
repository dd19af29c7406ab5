// Member-to-member links on one host. Members all listen on 127.0.0.1, so a port rule alone cannot
// tell m0's packets from the test's; run each member in its own cgroup (v2) and an iptables rule
// can drop exactly what one member sends to another's ports (postgres, HTTP API), while the test
// and the other members still reach both. Root only.
import { execFileSync } from 'node:child_process';
import * as net from 'node:net';
import { mkdirSync, readFileSync, rmdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

/** Where the cgroup2 hierarchy is mounted (the whole of it, or the "unified" part of a hybrid setup), or null. */
export function cgroup2Root(): string | null {
  try {
    const line = readFileSync('/proc/self/mounts', 'utf8').split('\n').find((l) => l.split(' ')[2] === 'cgroup2');
    return line?.split(' ')[1] ?? null;
  } catch {
    return null;
  }
}

/** A new cgroup (path relative to the cgroup2 root, as iptables' --path wants it); throws when there is no cgroup2. */
export function makeCgroup(name: string): string {
  const root = cgroup2Root();
  if (!root) throw new Error('no cgroup2 hierarchy mounted: member-to-member link cuts need one (run as root on Linux with cgroup2)');
  mkdirSync(join(root, name));
  return name;
}

/** argv that enters the cgroup, then execs `argv` (same pid: freeze and signals still reach the member). */
export function inCgroup(cgroup: string, argv: string[]): string[] {
  return ['/bin/sh', '-c', 'echo $$ > "$0" && exec "$@"', join(cgroup2Root()!, cgroup, 'cgroup.procs'), ...argv];
}

/** Remove a cgroup once its processes are gone (ours: started by the harness); best effort. */
export async function removeCgroup(cgroup: string): Promise<void> {
  const dir = join(cgroup2Root() ?? '/nonexistent', cgroup);
  for (let i = 0; i < 20 && existsSync(dir); i++) {
    try { rmdirSync(dir); return; } catch { /* processes still exiting */ }
    for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface LinkEnd { cgroup: string; ports: number[] }

/**
 * Cut the link between two members: every packet either sends to one of the other's ports is
 * dropped (new connections never open; an open one stalls, its requests and acknowledgements
 * lost). Returns the function that restores it; rules are removed exactly as inserted.
 */
export function cutLink(a: LinkEnd, b: LinkEnd): () => void {
  const rules: string[][] = [];
  for (const [from, to] of [[a, b], [b, a]] as const) {
    for (const port of to.ports) rules.push(['OUTPUT', '-o', 'lo', '-p', 'tcp', '-d', '127.0.0.1', '--dport', String(port), '-m', 'cgroup', '--path', from.cgroup, '-j', 'DROP']);
  }
  const inserted: string[][] = [];
  try {
    for (const r of rules) { execFileSync('iptables', ['-I', ...r]); inserted.push(r); }
  } catch (e) {
    for (const r of inserted) { try { execFileSync('iptables', ['-D', ...r]); } catch { /* gone */ } }
    throw new Error(`iptables could not cut the link (${(e as Error).message}); it needs root and the xt_cgroup match`);
  }
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    for (const r of inserted) { try { execFileSync('iptables', ['-D', ...r]); } catch { /* already gone */ } }
  };
}

/**
 * Connections a member opens to `port` go through a tap in the test process: `onConnect` runs (and
 * is awaited) before the first byte is passed on, so a test can act at the moment a member starts
 * a request (e.g. a status probe); it gets the connection's number (1, 2, …).
 * Returns the function that removes the tap.
 */
export async function tapConnections(from: string, port: number, onConnect: (n: number) => Promise<void> | void): Promise<() => Promise<void>> {
  let n = 0;
  const socks = new Set<net.Socket>();
  const srv = net.createServer((client) => {
    socks.add(client);
    client.pause();
    client.on('error', () => undefined);
    client.on('close', () => socks.delete(client));
    void (async () => {
      try { await onConnect(++n); } catch { /* the test's own failure shows elsewhere */ }
      const up = net.connect(port, '127.0.0.1');
      socks.add(up);
      up.on('error', () => client.destroy());
      up.on('close', () => { socks.delete(up); client.destroy(); });
      client.on('close', () => up.destroy());
      client.pipe(up);
      up.pipe(client);
      client.resume();
    })();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const rule = ['OUTPUT', '-p', 'tcp', '-d', '127.0.0.1', '--dport', String(port), '-m', 'cgroup', '--path', from, '-j', 'REDIRECT', '--to-ports', String((srv.address() as { port: number }).port)];
  execFileSync('iptables', ['-t', 'nat', '-I', ...rule]);
  let removed = false;
  return async () => {
    if (removed) return;
    removed = true;
    try { execFileSync('iptables', ['-t', 'nat', '-D', ...rule]); } catch { /* already gone */ }
    for (const s of socks) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  };
}
