// parameters.json read again while the member runs (the kubelet rewrites a ConfigMap volume in
// place after `helm upgrade`): validated exactly as at start (config-files.ts loadParameters, then
// the one list of owned and refused parameters, parameters.ts). Pure.
import { loadParameters } from './config-files.js';
import { parameterProblems } from './parameters.js';
import { fnv1a } from './render.js';

export type LiveParameters = { ok: true; params: Record<string, string> } | { ok: false; problems: string[] };

/**
 * The parameters a new parameters.json asks for, or every reason it is refused (the member then
 * keeps the parameters it runs with). `overrides`: values given on the command line
 * (`autopilot run -c`), kept on top as at start. `text` null: the file is gone (no parameters).
 */
export function readLiveParameters(path: string, text: string | null, backupOn: boolean, overrides: Record<string, string> = {}): LiveParameters {
  const problems: string[] = [];
  const fromFile = loadParameters(path, { readFile: () => text, listDir: () => null }, problems);
  const params = { ...fromFile, ...overrides };
  problems.push(...parameterProblems(params, backupOn).map((p) => `${path}: ${p}`));
  return problems.length ? { ok: false, problems } : { ok: true, params };
}

/** Names (as written) whose value differs between two parameter sets, added and removed ones included; sorted. */
export function changedParameters(before: Record<string, string>, after: Record<string, string>): string[] {
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...names].filter((k) => before[k] !== after[k]).sort();
}

/** PostgreSQL's pg_file_settings.error for a value it did not take on reload: a valid change that
 *  waits for a restart and an invalid value alike (guc-file: set_config_option returned 0). */
export const NOT_APPLIED = 'setting could not be applied';

/**
 * The entries of pg_file_settings, after a reload, that postgres refused — its next start would fail
 * on them (an invalid value, an unknown name) — among the `changed` parameters. A row that only waits
 * for a restart is not one: its name is pending a restart in pg_settings, or (a restart-only
 * parameter removed from the file) it has no name and says it "cannot be changed without restarting".
 */
export function refusedSettings(fileErrors: { name: string | null; error: string }[], pendingRestart: string[], changed: string[]): { name: string | null; error: string }[] {
  const pending = new Set(pendingRestart.map((n) => n.toLowerCase()));
  const ours = new Set(changed.map((n) => n.toLowerCase()));
  return fileErrors.filter((f) => {
    if (f.name === null || f.name === '') return !/cannot be changed without restarting the server/.test(f.error);
    const n = f.name.toLowerCase();
    return ours.has(n) && !(f.error === NOT_APPLIED && pending.has(n));
  });
}

/** A short digest of a parameter set (names and values, in name order): members publish the one
 *  they run on, so the primary knows when every member has read the same parameters.json. */
export function parametersDigest(params: Record<string, string>): string {
  return fnv1a(JSON.stringify(Object.keys(params).sort().map((k) => [k, params[k]])));
}

/** The parameters pending a restart that call for one. Not the recovery targets (recovery_target*)
 *  the autopilot writes for a restore and removes once the restored member promotes: postgres reads
 *  them only when recovery starts, so a running primary flags them "pending a restart" for nothing
 *  (restarting would hand the cluster over right after its restore). */
export function restartNeeded(pending: string[]): string[] {
  return pending.filter((n) => !n.toLowerCase().startsWith('recovery_target'));
}
