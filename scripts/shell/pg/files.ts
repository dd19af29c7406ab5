// Files of the PostgreSQL layer: atomic writes with mode and owner, directories created with the
// right owner, and the configuration the autopilot manages (postgresql.conf, pg_hba.conf,
// pg_ident.conf, the passfile, the private TLS key copy, standby.signal).

import { execFileSync } from 'node:child_process';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { renderPgHba, renderPgpass, renderPostgresqlConf, type DynamicConf } from '../../core/render.js';
import type { PgContext } from './types.js';

export type Files = ReturnType<typeof createFiles>;

/** Parameters that ALTER SYSTEM must not override (the autopilot manages them). */
const MANAGED_AUTO_CONF = /^\s*(primary_conninfo|primary_slot_name|synchronous_standby_names|port|hot_standby|wal_level)\s*=/m;

export function createFiles(ctx: PgContext) {
  const { cfg, paths, log } = ctx;
  const owner = ctx.runAs
    ? {
        uid: Number(execFileSync('id', ['-u', ctx.runAs]).toString().trim()),
        gid: Number(execFileSync('id', ['-g', ctx.runAs]).toString().trim()),
      }
    : null;

  async function own(path: string): Promise<void> {
    if (owner) await fsp.chown(path, owner.uid, owner.gid);
  }

  /** mkdir -p where each directory created gets the owner and `mode`. */
  async function mkdirOwned(path: string, mode = 0o700): Promise<void> {
    const missing: string[] = [];
    let p = path;
    while (!existsSync(p)) {
      missing.unshift(p);
      const parent = dirname(p);
      if (parent === p) break;
      p = parent;
    }
    for (const d of missing) {
      await fsp.mkdir(d, { mode }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EACCES' && e.code !== 'EROFS') throw e;
        const uid = process.getuid?.() ?? -1, gid = process.getgid?.() ?? -1;
        throw new Error(`cannot create the directory ${d} (${e.code}: ${dirname(d)} is not writable by uid ${uid} gid ${gid}). ` +
          `Fix: mount a writable volume at ${d} (or ${dirname(d)}), or make ${dirname(d)} writable by that uid or its group` +
          (d.startsWith('/var/run/') || d.startsWith('/run/') ? '; containerd\'s ctr mounts a root-owned tmpfs on /run: mount one at /run/postgresql' : ''));
      });
      await own(d);
    }
    if (missing.includes(path)) await fsp.chmod(path, mode);
  }

  /** Atomic write (temp file + rename) with mode and owner; true when the content changed. */
  async function writeFileAtomic(path: string, content: string, mode = 0o600): Promise<boolean> {
    const old = await fsp.readFile(path, 'utf8').catch(() => null);
    if (old === content) {
      await fsp.chmod(path, mode).catch(() => undefined);
      return false;
    }
    const tmp = `${path}.pga-tmp`;
    await fsp.writeFile(tmp, content, { mode });
    await fsp.chmod(tmp, mode);
    await own(tmp);
    await fsp.rename(tmp, path);
    return true;
  }

  /** A new file (not atomic: markers and flags), with mode and owner. */
  async function writeOwned(path: string, content: string, mode = 0o600): Promise<void> {
    await fsp.writeFile(path, content, { mode });
    await own(path);
  }

  /** true/false, or null when the directory does not exist ('lost+found' does not count). */
  async function isEmptyDir(path: string): Promise<boolean | null> {
    try {
      return (await fsp.readdir(path)).filter((e) => e !== 'lost+found').length === 0;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  /** Remove everything in `dir` but the directory itself (a mount point) and lost+found. */
  async function emptyDir(dir: string): Promise<void> {
    let entries: string[];
    try {
      entries = await fsp.readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const e of entries) {
      if (e === 'lost+found') continue;
      await fsp.rm(`${dir}/${e}`, { recursive: true, force: true });
    }
  }

  async function writePgpass(): Promise<void> {
    await mkdirOwned(cfg.runDir, 0o700);
    await writeFileAtomic(paths.pgpass, renderPgpass(cfg), 0o600);
  }

  /** Write the managed configuration files; true when postgresql.conf changed. */
  async function writeConfig(dyn: DynamicConf): Promise<boolean> {
    await writePgpass();
    if (!existsSync(cfg.dataDir)) throw new Error(`writeConfig: the data directory ${cfg.dataDir} does not exist`);
    if (cfg.tls) {
      // re-copied at every write: a rotated key is picked up by the next reload
      await writeFileAtomic(paths.tlsKey, await fsp.readFile(cfg.tls.keyFile, 'utf8'), 0o600);
    }
    const changed = await writeFileAtomic(paths.postgresqlConf, renderPostgresqlConf(cfg, dyn), 0o600);
    await writeFileAtomic(paths.hbaFile, renderPgHba(cfg), 0o600);
    await writeFileAtomic(paths.identFile, '# pg_ident.conf written by pg-autopilot (no user name maps)\n', 0o600);
    // ALTER SYSTEM settings would silently override managed ones (primary_conninfo …)
    const auto = `${cfg.dataDir}/postgresql.auto.conf`;
    if (existsSync(auto) && MANAGED_AUTO_CONF.test(readFileSync(auto, 'utf8'))) {
      log.warn('postgresql.auto.conf sets managed parameters (ALTER SYSTEM); resetting it', { file: auto });
      await writeFileAtomic(auto, '# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n', 0o600);
    }
    if (changed) log.info('postgresql.conf written', { primary: dyn.primary ? `${dyn.primary.host}:${dyn.primary.port}` : null, slot: dyn.slotName, syncStandbyNames: dyn.syncStandbyNames });
    return changed;
  }

  async function setStandby(on: boolean): Promise<void> {
    const f = `${cfg.dataDir}/standby.signal`;
    if (!on) {
      await fsp.rm(f, { force: true });
      // a promotion signalled twice (sql.promote) can leave the second request behind; postgres
      // would drop it at its next start anyway
      await fsp.rm(`${cfg.dataDir}/promote`, { force: true });
    } else if (!existsSync(f)) await writeOwned(f, '');
  }

  return { own, mkdirOwned, writeFileAtomic, writeOwned, isEmptyDir, emptyDir, writePgpass, writeConfig, setStandby };
}
