// Which way the entrypoint runs, decided once at start from the environment and two facts the
// shell gathers (is a ServiceAccount token mounted). Pure: every outcome has a one-line reason, and
// a half-configured environment is a ConfigError naming the variable and the fix.
//
//   kubernetes  the autopilot, as in the chart (Lease, pods, failover)
//   standalone  one PostgreSQL primary, no Kubernetes API: the official postgres image's contract
//   replica     a static hot standby of PGA_PRIMARY_HOST (no failover; `autopilot promote`)
//
// PGA_MODE (auto | kubernetes | standalone | replica; default auto) overrides the detection. auto:
// kubernetes when a ServiceAccount token is mounted or KUBECONFIG is set, else replica when
// PGA_PRIMARY_HOST is set, else standalone.

import { ConfigError } from './errors.js';

export type Mode = 'kubernetes' | 'standalone' | 'replica';
export const MODES: readonly Mode[] = ['kubernetes', 'standalone', 'replica'];
export const SA_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface ModeFacts {
  /** a ServiceAccount token is mounted at SA_TOKEN_PATH */
  tokenMounted: boolean;
}

export interface ModeDecision {
  mode: Mode;
  reason: string;
}

const set = (v: string | undefined): v is string => v !== undefined && v.trim() !== '';

export function decideMode(env: Record<string, string | undefined>, facts: ModeFacts): ModeDecision {
  const raw = (env.PGA_MODE ?? '').trim();
  const requested = raw === '' ? 'auto' : raw;
  const kubeconfig = set(env.KUBECONFIG);
  const primary = set(env.PGA_PRIMARY_HOST);
  const kubeSource = facts.tokenMounted ? `a ServiceAccount token is mounted (${SA_TOKEN_PATH})` : kubeconfig ? `KUBECONFIG is set (${env.KUBECONFIG})` : null;
  switch (requested) {
    case 'auto':
      if (kubeSource) return { mode: 'kubernetes', reason: `PGA_MODE is auto and ${kubeSource}` };
      if (primary) return { mode: 'replica', reason: `PGA_MODE is auto, no Kubernetes API credentials, and PGA_PRIMARY_HOST is set (${env.PGA_PRIMARY_HOST})` };
      return { mode: 'standalone', reason: `PGA_MODE is auto and neither a ServiceAccount token (${SA_TOKEN_PATH}) nor KUBECONFIG is present` };
    case 'kubernetes':
      if (!kubeSource) {
        throw new ConfigError([
          `PGA_MODE is "kubernetes" but no ServiceAccount token is mounted at ${SA_TOKEN_PATH} and KUBECONFIG is not set. Fix: run the pod with a ServiceAccount (automountServiceAccountToken: true, as the chart does) or set KUBECONFIG; outside Kubernetes set PGA_MODE=standalone (or leave it unset)`,
        ]);
      }
      return { mode: 'kubernetes', reason: `PGA_MODE is kubernetes and ${kubeSource}` };
    case 'standalone':
      if (primary) {
        throw new ConfigError([`PGA_MODE is "standalone" (a primary) but PGA_PRIMARY_HOST is set (${env.PGA_PRIMARY_HOST}). Fix: set PGA_MODE=replica to follow that primary, or unset PGA_PRIMARY_HOST`]);
      }
      return { mode: 'standalone', reason: 'PGA_MODE is standalone' + (kubeSource ? ` (the Kubernetes API is not used although ${kubeSource})` : '') };
    case 'replica':
      if (!primary) {
        throw new ConfigError([`PGA_MODE is "replica" but PGA_PRIMARY_HOST is not set. Fix: set PGA_PRIMARY_HOST to the primary's address (and PGA_PRIMARY_PORT if not 5432, PGA_REPLICATION_PASSWORD or PGA_REPLICATION_PASSWORD_FILE), or set PGA_MODE=standalone for a primary`]);
      }
      return { mode: 'replica', reason: `PGA_MODE is replica, following PGA_PRIMARY_HOST=${env.PGA_PRIMARY_HOST}` };
    default:
      throw new ConfigError([`PGA_MODE: got ${JSON.stringify(raw)}; accepted: "auto" (or unset), "kubernetes", "standalone", "replica". Fix: correct PGA_MODE`]);
  }
}
