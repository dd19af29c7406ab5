#!/usr/bin/env node
// `autopilot`: the image's entrypoint (`autopilot run`) and the operator's CLI.
//   exit 0 done · 1 the operation failed (the message says why) · 2 bad usage
//
// Every module beyond node:util is imported by the command that needs it: `run` (the member, a
// long-lived process whose resident memory counts) loads the member's modules only, and the
// operator's commands load neither the member nor the Kubernetes client unless they use it.
import { parseArgs } from 'node:util';
import type { StatusSnapshot } from './shell/autopilot.js';

const cliConfig = async () => {
  const [{ loadCliConfig }, { nodeFileReader }] = await Promise.all([import('./core/config.js'), import('./shell/files.js')]);
  return loadCliConfig(process.env, nodeFileReader);
};

export const USAGE = `usage: autopilot <command> [options]

commands:
  run [-c NAME=VALUE]...     start this member (the container's default command); -c sets a
                            PostgreSQL parameter, as \`postgres -c\` does
  promote                   standalone replica mode: promote this replica to a primary
  ready                     exit 0 when this member is ready (GET /readyz), 1 otherwise: a
                            container healthcheck
  status [--json]           members, roles, lag, timeline and the lease holder
  switchover [--to MEMBER]  hand the primary role to MEMBER (default: the most caught-up replica)
  reinit MEMBER             make a replica wipe its data and clone again from the primary
  pause                     maintenance: no failover, switchover, rolling update, rewind or re-clone
                            (a primary that loses its lease still stops: safety is never paused)
  resume                    end maintenance
  backup [--type T]         take a backup now on the primary (T: full (default), diff, incr)
  backups [--json]          the repository's backups, their sizes and the archive's WAL range
  citus rebalance [--mode M] [--status]
                            Citus: move shards onto every worker group (after adding groups), in
                            the background, on the coordinator group's primary (never automatic);
                            M: auto, force_logical, block_writes (default: auto with wal_level
                            logical, else block_writes); --status: the last rebalance's state
  help                      this text

environment: PGA_API_URL (default http://127.0.0.1:8008), PGA_API_TOKEN or PGA_API_TOKEN_FILE
(needed by switchover, pause, resume, backup, citus rebalance), PGA_NAMESPACE and KUBECONFIG or the pod's ServiceAccount
(reinit).
exit status: 0 done, 1 the operation failed, 2 bad usage.`;

class UsageError extends Error {}

function fail(msg: string, code: number): never {
  process.stderr.write(`autopilot: ${msg}\n`);
  if (code === 2) process.stderr.write('run "autopilot help" for usage\n');
  process.exit(code);
}

async function api(method: string, path: string, token: string | null, body?: unknown, base?: string): Promise<{ status: number; json: any }> {
  const cfg = await cliConfig();
  if (base) cfg.apiUrl = base;
  const headers: Record<string, string> = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  // node:http (peers.ts), not fetch: the image runs node with --lite-mode (images/postgres/autopilot),
  // which has no WebAssembly, and fetch's HTTP parser (undici's llhttp) is WebAssembly.
  const { peerRequest } = await import('./shell/peers.js');
  let r: { status: number; text: string };
  try {
    r = await peerRequest(`${cfg.apiUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), timeoutMs: 10_000 });
  } catch (e) {
    throw new Error(`cannot reach the member's API at ${cfg.apiUrl} (${(e as Error).message}); is the autopilot running? (PGA_API_URL)`);
  }
  let json: any = r.text;
  try { json = JSON.parse(r.text); } catch { /* text */ }
  return { status: r.status, json };
}

/** The lease holder's API address, from the member's own view of its group (null when unknown):
 *  where `backup` and `citus rebalance` go when the member asked is not the primary. */
async function primaryApiUrl(): Promise<string | null> {
  const st = await api('GET', '/status', null);
  const p = [st.json?.member, ...(st.json?.members ?? [])].find((m: any) => m?.name === st.json?.leaseHolder);
  return typeof p?.apiUrl === 'string' ? p.apiUrl : null;
}

function formatStatus(s: StatusSnapshot): string {
  const rows = [s.member, ...s.members].sort((a, b) => a.name.localeCompare(b.name));
  const head = ['MEMBER', 'ROLE', 'HEALTHY', 'TIMELINE', 'LSN', 'LAG', 'HOST'];
  const body = rows.map((m) => [
    m.name + (m.name === s.leaseHolder ? ' *' : ''), m.role, m.healthy ? 'yes' : 'no', String(m.timeline ?? '-'), m.lsn ?? '-',
    m.role === 'primary' ? '0' : m.lagBytes === null ? '-' : String(m.lagBytes), m.host,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [
    line(head), ...body.map(line), '',
    `lease holder: ${s.leaseHolder ?? 'none'}${s.leader ? '' : ' (expired)'} · failovers: ${s.failovers}${s.paused ? ' · PAUSED' : ''}${s.syncStandbys ? ` · synchronous: [${s.syncStandbys.join(', ')}]` : ''}`,
    `this member (${s.member.name}): ${s.reason}`,
  ].join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const parse = (options: NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>, positionals: number) => {
    try {
      const r = parseArgs({ args: rest, options, allowPositionals: positionals > 0, strict: true });
      if (r.positionals.length > positionals) throw new UsageError(`unexpected argument "${r.positionals[positionals]}"`);
      return r;
    } catch (e) {
      throw new UsageError(((e as Error).message.split('\n')[0] ?? '').replace(/^TypeError \[\w+\]: /, ''));
    }
  };
  const token = async () => {
    let t = (await cliConfig()).apiToken;
    // standalone mode writes the token it generated (none given) where only the postgres user reads it
    if (!t) t = await import('node:fs').then((fs) => fs.readFileSync(`${process.env.PGA_RUN_DIR || '/var/run/postgresql'}/.pga-api-token`, 'utf8').trim()).catch(() => null);
    if (!t) throw new Error('no API token: set PGA_API_TOKEN or PGA_API_TOKEN_FILE (the chart mounts it as a file)');
    return t;
  };
  switch (command) {
    case 'run': {
      const { values } = parse({ c: { type: 'string', short: 'c', multiple: true } }, 0);
      const params: Record<string, string> = {};
      for (const kv of (values.c ?? []) as string[]) {
        const m = /^([A-Za-z_][A-Za-z0-9_.]*)=(.*)$/s.exec(kv);
        if (!m) throw new UsageError(`-c ${JSON.stringify(kv)}: accepted: -c NAME=VALUE, e.g. -c shared_buffers=256MB`);
        params[m[1] as string] = m[2] as string;
      }
      const { run } = await import('./main.js');
      return run(process.env, params);
    }
    case 'ready': {
      parse({}, 0);
      const r = await api('GET', '/readyz', null);
      if (r.status !== 200) throw new Error(`not ready (HTTP ${r.status}): ${r.json?.reason ?? r.json?.error ?? JSON.stringify(r.json)}`);
      process.stdout.write('ready\n');
      return;
    }
    case 'promote': {
      parse({}, 0);
      const r = await api('POST', '/promote', await token());
      if (r.status >= 300) throw new Error(`promote refused (HTTP ${r.status}): ${r.json?.message ?? r.json?.error ?? JSON.stringify(r.json)}`);
      process.stdout.write(`${r.json.message}\n`);
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n');
      if (command === undefined) process.exit(2);
      return;
    case 'status': {
      const { values } = parse({ json: { type: 'boolean' } }, 0);
      const r = await api('GET', '/status', null);
      if (r.status !== 200) throw new Error(`status: HTTP ${r.status}: ${JSON.stringify(r.json)}`);
      process.stdout.write(values.json ? JSON.stringify(r.json, null, 2) + '\n' : formatStatus(r.json) + '\n');
      return;
    }
    case 'switchover': {
      const { values } = parse({ to: { type: 'string' } }, 0);
      if (values.to !== undefined && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(String(values.to))) throw new UsageError(`--to "${values.to}" is not a member (pod) name`);
      const r = await api('POST', '/switchover', await token(), values.to ? { to: values.to } : {});
      if (r.status >= 300) throw new Error(`switchover refused (HTTP ${r.status}): ${r.json?.message ?? r.json?.error ?? JSON.stringify(r.json)}`);
      process.stdout.write(`${r.json.message}\n`);
      return;
    }
    case 'pause':
    case 'resume': {
      parse({}, 0);
      const r = await api('POST', `/${command}`, await token());
      if (r.status >= 300) throw new Error(`${command} failed (HTTP ${r.status}): ${r.json?.message ?? r.json?.error ?? JSON.stringify(r.json)}`);
      process.stdout.write(`${r.json.message}\n`);
      return;
    }
    case 'backup': {
      const { values } = parse({ type: { type: 'string' } }, 0);
      const type = values.type ?? 'full';
      if (!['full', 'diff', 'incr'].includes(String(type))) throw new UsageError(`--type "${type}" is not a backup type; accepted: full, diff, incr`);
      const t = await token();
      let r = await api('POST', '/backup', t, { type });
      if (r.status === 409 && /not the primary/.test(r.json?.message ?? '')) {
        const url = await primaryApiUrl();
        if (url) r = await api('POST', '/backup', t, { type }, url);
      }
      if (r.status >= 300) throw new Error(`backup refused (HTTP ${r.status}): ${r.json?.message ?? r.json?.error ?? JSON.stringify(r.json)}`);
      process.stdout.write(`${r.json.message}; follow it with "autopilot status --json" (backup.job) or "autopilot backups"\n`);
      return;
    }
    case 'backups': {
      const { values } = parse({ json: { type: 'boolean' } }, 0);
      const r = await api('GET', '/backups', null);
      if (r.status !== 200) throw new Error(`backups: HTTP ${r.status}: ${r.json?.error ?? JSON.stringify(r.json)}`);
      if (values.json) { process.stdout.write(JSON.stringify(r.json, null, 2) + '\n'); return; }
      const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;
      const rows = (r.json.backups as any[]).map((b) => [b.label, b.type, b.startedAt, b.stoppedAt, mb(b.size), mb(b.repoSize), `${b.walStart}..${b.walStop}`]);
      const head = ['LABEL', 'TYPE', 'STARTED', 'STOPPED', 'SIZE', 'IN REPO', 'WAL'];
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((x) => String(x[i]).length)));
      const line = (x: string[]) => x.map((c, i) => String(c).padEnd(widths[i] ?? 0)).join('  ').trimEnd();
      process.stdout.write([line(head), ...rows.map(line), '', `stanza ${r.json.stanza}: ${r.json.status} · archive ${r.json.archive.min ?? '-'} .. ${r.json.archive.max ?? '-'}`].join('\n') + '\n');
      return;
    }
    case 'citus': {
      const { values, positionals } = parse({ status: { type: 'boolean' }, json: { type: 'boolean' }, mode: { type: 'string' } }, 1);
      if (positionals[0] !== 'rebalance') throw new UsageError(positionals[0] === undefined ? 'citus needs a subcommand: "autopilot citus rebalance [--status]"' : `unknown citus subcommand "${positionals[0]}"; accepted: rebalance`);
      if (values.status) {
        const r = await api('GET', '/citus/rebalance', null);
        if (r.status !== 200) throw new Error(`citus rebalance --status (HTTP ${r.status}): ${r.json?.error ?? JSON.stringify(r.json)}`);
        const j = r.json?.job;
        process.stdout.write(values.json ? JSON.stringify(r.json, null, 2) + '\n' : j ? `job ${j.job_id}: ${j.state} (${j.description ?? j.job_type}), started ${j.started_at ?? '-'}, finished ${j.finished_at ?? '-'}\n` : 'no rebalance has been started\n');
        return;
      }
      const modes = ['auto', 'force_logical', 'block_writes'];
      if (values.mode !== undefined && !modes.includes(String(values.mode))) throw new UsageError(`--mode "${values.mode}" is not a shard transfer mode; accepted: ${modes.join(', ')}`);
      const body = values.mode ? { mode: values.mode } : undefined;
      const t = await token();
      let r = await api('POST', '/citus/rebalance', t, body);
      if (r.status === 409 && /not the coordinator group's primary/.test(r.json?.error ?? '')) {
        const url = await primaryApiUrl();
        if (url) r = await api('POST', '/citus/rebalance', t, body, url);
      }
      if (r.status >= 300) throw new Error(`citus rebalance refused (HTTP ${r.status}): ${r.json?.error ?? r.json?.message ?? JSON.stringify(r.json)}`);
      process.stdout.write(`${r.json.message}\n`);
      return;
    }
    case 'reinit': {
      const { positionals } = parse({}, 1);
      const member = positionals[0];
      if (!member) throw new UsageError('reinit needs the MEMBER to re-clone, e.g. "autopilot reinit pg-postgres-2"');
      const cfg = await cliConfig();
      if (!cfg.namespace) throw new Error('PGA_NAMESPACE is not set: reinit needs the namespace of the members');
      const { createKube, loadConnection } = await import('./shell/kube.js');
      const { REINIT_ANNOTATION } = await import('./shell/autopilot.js');
      const kube = createKube(loadConnection(cfg.kubeconfig), cfg.namespace);
      try {
        const st = await api('GET', '/status', null).catch(() => null);
        if (st?.json?.leaseHolder === member) throw new Error(`${member} is the primary; switch over first ("autopilot switchover"), then reinit it`);
        await kube.patchPod(member, { annotations: { [REINIT_ANNOTATION]: new Date().toISOString() } });
      } finally {
        kube.close();
      }
      process.stdout.write(`${member} will wipe its data and clone again from the primary\n`);
      return;
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

const invokedDirectly = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (invokedDirectly || process.argv[1]?.endsWith('/autopilot')) {
  main(process.argv.slice(2)).catch(async (e) => {
    if (e instanceof UsageError) fail(e.message, 2);
    const { ConfigError } = await import('./core/config.js');
    if (e instanceof ConfigError) fail(e.message, 2);
    fail((e as Error).message, 1);
  });
}
