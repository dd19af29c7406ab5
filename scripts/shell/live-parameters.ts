// Parameters changed live. Every tick compares $PGA_CONFIG_DIR/parameters.json with what was last
// read (the kubelet updates a ConfigMap volume in place, about a minute after `helm upgrade`). A
// new file is validated as at start (core/live-parameters.ts); a refused one leaves the member on
// the parameters it runs with, and the problem is logged, sent as an event and published in
// /status and /metrics: a running member never stops over it. An accepted one: postgresql.conf
// rewritten, postgres reloaded, then pg_settings says which changes wait for a restart (context
// postmaster): published (status pendingRestart, pga_pending_restart), and the primary rolls them
// (core/restart.ts). A value postgres itself refuses (pg_file_settings) would make its next start
// fail: the previous parameters are written back at once.
import { changedParameters, parametersDigest, readLiveParameters, refusedSettings, restartNeeded, NOT_APPLIED } from '../core/live-parameters.js';
import type { FileReader } from '../core/config.js';
import { cachedFileReader } from './files.js';
import { errMsg, type State } from './state.js';

/** How long a reload may take to reach our own session (its pg_conf_load_time moves) before we read anyway. */
const RELOAD_WAIT_MS = 5_000;

// parameters.json is looked at every tick but read again only when its stat signature changed
// (a member's own reader: the kubelet swaps the volume's ..data symlink, a test renames a file)
const readers = new WeakMap<State, FileReader>();
function readText(st: State, path: string): { text: string | null } | { error: string } {
  let files = readers.get(st);
  if (!files) { files = cachedFileReader(); readers.set(st, files); }
  try { return { text: files.readFile(path) }; } catch (e) { return { error: errMsg(e) }; }
}

/**
 * Once per tick, before the observation; never throws, and never holds the tick up for long (a
 * primary renews its lease from the tick): the reload's outcome is read by the following ticks.
 */
export async function checkParameters(st: State): Promise<void> {
  try {
    const path = `${st.cfg.configDir}/parameters.json`;
    if (st.params.reloading) { await confirmReload(st, path); return; }
    const r = readText(st, path);
    if ('error' in r) {
      // read again (and applied, or found unchanged) once it is readable
      st.params.text = '\0unreadable';
      refuse(st, [`${path}: cannot read (${r.error}). Fix: make it readable by the postgres user`]);
    } else if (st.params.text === null) {
      // the configuration was loaded from this file at start; what differs in it are `-c` values
      st.params.text = r.text ?? '';
      const file = readLiveParameters(path, r.text, false);
      st.params.overrides = file.ok ? Object.fromEntries(Object.entries(st.cfg.parameters).filter(([k, v]) => file.params[k] !== v)) : {};
    } else if ((r.text ?? '') !== st.params.text) {
      st.params.text = r.text ?? '';
      await apply(st, path, r.text);
      if (st.params.reloading) return;
    }
    await refreshPending(st);
  } catch (e) {
    st.log.error('checking parameters.json failed', { error: errMsg(e) });
  }
}

function refuse(st: State, problems: string[]): void {
  const same = st.params.problems.join('\n') === problems.join('\n');
  st.params.problems = problems;
  if (same) return;
  st.log.error('new parameters refused: running on with the parameters applied before', { problems });
  void st.kube.event('Pod', st.cfg.podName, 'ParametersRefused', `${st.cfg.podName} keeps its parameters: ${problems.join('; ')}`.slice(0, 1000), 'Warning');
}

async function apply(st: State, path: string, text: string | null): Promise<void> {
  const { cfg, pg, log } = st;
  const next = readLiveParameters(path, text, cfg.backup !== null && cfg.backup !== undefined, st.params.overrides ?? {});
  if (!next.ok) { refuse(st, next.problems); return; }
  const old = cfg.parameters;
  const changed = changedParameters(old, next.params);
  st.params.problems = [];
  if (!changed.length) return;
  // The Config object is the one the PostgreSQL layer renders postgresql.conf from.
  cfg.parameters = next.params;
  st.params.appliedAt = new Date();
  if (!pg.isRunning()) { log.info('parameters changed: they apply when postgres starts', { changed }); return; }
  const before = await pg.settingsState().then((s) => s.loadedAt, () => null);
  try {
    if (!(await pg.rewriteConfig())) { log.info('parameters changed: they apply when postgres starts', { changed }); return; }
    await pg.reload();
  } catch (e) {
    cfg.parameters = old;
    await pg.rewriteConfig().catch(() => false);
    st.params.problems = [`could not apply the new parameters (${errMsg(e)}); running on with the previous ones`];
    log.error('applying the new parameters failed', { error: errMsg(e), changed });
    return;
  }
  st.params.reloading = { before, sinceMs: st.now(), changed, previous: old };
}

/** The reload's outcome, once our own session has processed it (its pg_conf_load_time moved) or RELOAD_WAIT_MS passed. */
async function confirmReload(st: State, path: string): Promise<void> {
  const { cfg, pg, log } = st;
  const r = st.params.reloading!;
  const state = await pg.settingsState().catch(() => null);
  const confirmed = state !== null && r.before !== null && state.loadedAt !== r.before;
  if (!confirmed && st.now() - r.sinceMs < RELOAD_WAIT_MS) return;
  st.params.reloading = null;
  if (!confirmed) log.warn('postgres did not confirm the reload in time; reading its settings anyway', { waitedMs: st.now() - r.sinceMs });
  if (!state) return; // postgres went away: refreshPending reads the next one
  const refused = refusedSettings(state.fileErrors, state.pendingRestart.map((p) => p.name), r.changed);
  if (refused.length) {
    // postgres would not start on these values: write the previous ones back before anything restarts it
    cfg.parameters = r.previous;
    if (await pg.rewriteConfig().catch(() => false)) await pg.reload();
    refuse(st, refused.map((f) => `${path}: postgres refuses ${f.name || 'the configuration'}: ${f.error === NOT_APPLIED ? 'an invalid value' : f.error} (its log says why). Fix: correct postgresql.parameters${f.name ? `.${f.name}` : ''}`));
    return;
  }
  st.params.pending = restartNeeded(state.pendingRestart.map((p) => p.name));
  st.params.pendingPid = pg.pid();
  st.params.bounds = state.bounds;
  const pending = new Set(st.params.pending);
  const reloaded = r.changed.filter((n) => !pending.has(n.toLowerCase()));
  const waiting = r.changed.filter((n) => pending.has(n.toLowerCase()));
  log.info('parameters applied by reload', { reloaded, pendingRestart: waiting, allPendingRestart: st.params.pending, contexts: state.pendingRestart });
  void st.kube.event('Pod', cfg.podName, 'ParametersApplied',
    `${cfg.podName} reloaded postgres: ${reloaded.length ? `applied ${reloaded.join(', ')}` : 'nothing applied live'}${waiting.length ? `; pending a restart: ${waiting.join(', ')}` : ''}`.slice(0, 1000));
}

/** pending_restart belongs to one postmaster: read again whenever postgres (re)started. */
async function refreshPending(st: State): Promise<void> {
  const pid = st.pg.isRunning() ? st.pg.pid() : null;
  if (pid === null) { st.params.pending = []; st.params.pendingPid = null; st.params.bounds = null; return; }
  if (pid === st.params.pendingPid) return;
  try {
    const s = await st.pg.settingsState();
    const was = st.params.pending;
    st.params.pending = restartNeeded(s.pendingRestart.map((p) => p.name));
    st.params.pendingPid = pid;
    st.params.bounds = s.bounds;
    if (was.join() !== st.params.pending.join()) st.log.info('parameters pending a restart', { pendingRestart: st.params.pending });
  } catch { /* not accepting yet: the next tick */ }
}

/**
 * The digest of the parameters this member runs on, as its status and the core see it: while a
 * reload's outcome is not read yet, still the previous parameters' — what is pending a restart is
 * known only then, and a primary that saw the new digest with nothing pending would take every
 * replica for restarted and hand over before they are.
 */
export function appliedParametersDigest(st: State): string {
  const params = st.params.reloading ? st.params.reloading.previous : st.cfg.parameters;
  let d = digests.get(params);
  if (d === undefined) { d = parametersDigest(params); digests.set(params, d); }
  return d;
}
// Asked by observe() and by the status every tick: hashed once per parameter set. A set is never
// changed in place (a new parameters.json gives cfg.parameters a new object), so its identity is
// its version.
const digests = new WeakMap<Record<string, string>, string>();
