// parameters.json read again while the member runs (the kubelet rewrites a ConfigMap volume in
// place after `helm upgrade`): validated exactly as at start (config-files.ts loadParameters, then
// the one list of owned and refused parameters, parameters.ts). Pure.
import { loadParameters } from './config-files.js';
import { parameterProblems } from './parameters.js';

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
