// Configuration, part 4: Citus. `$PGA_CONFIG_DIR/citus.json` (absent = not a Citus group). Every
// member of a Citus group has one; it says which group the member belongs to and, on the
// coordinator group, where the worker groups' Leases and pods are. Pure apart from the FileReader;
// every problem is one line (what, got, accepted, fix).
//
//   {"role": "coordinator", "group": 0,
//    "workers": [{"group": 1, "lease": "pg-worker-1-leader", "namespace": "db", "selector": "app=pg-worker-1"}],
//    "nodeConninfo": "sslmode=prefer", "lockCooldownMs": 10000, "switchoverHoldMs": 30000}
//   {"role": "worker", "group": 1}
import { isObj, readJsonFile, type FileReader } from './config-files.js';

export interface CitusWorkerSource {
  /** Citus groupid of the worker group: 1..N */
  group: number;
  /** its leader Lease (`<clusterName>-leader` of that group's members) */
  lease: string;
  /** the namespace of that Lease and of its pods (default: our own) */
  namespace: string;
  /** label selector of that group's member pods */
  selector: string;
}

export interface CitusConfig {
  role: 'coordinator' | 'worker';
  /** 0 for the coordinator group, 1..N for a worker group */
  group: number;
  /** coordinator only: the worker groups to register and keep in step */
  workers: CitusWorkerSource[];
  /** worker only: where the coordinator group's pods are, so that a hand-off waits for its hold; null = no wait */
  coordinator: { namespace: string; selector: string } | null;
  /** citus.node_conninfo: how nodes connect to each other (libpq keywords) */
  nodeConninfo: string;
  /** citus_update_node's lock_cooldown when re-pointing a group after a failover, ms */
  lockCooldownMs: number;
  /** the longest the coordinator holds a worker group's distributed queries during its switchover, ms */
  switchoverHoldMs: number;
}

const DNS_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SELECTOR = /^[A-Za-z0-9_./-]+(=|==|!=)[A-Za-z0-9_.-]*(,[A-Za-z0-9_./-]+(=|==|!=)[A-Za-z0-9_.-]*)*$/;
/** libpq keyword=value pairs, values plain or single-quoted */
const CONNINFO = /^\s*([a-z_]+\s*=\s*('([^'\\]|\\.)*'|[^\s']+)\s*)+$/;
/** keywords Citus sets itself per connection: node_conninfo may not name them */
const CONNINFO_OWNED = ['host', 'hostaddr', 'port', 'dbname', 'user', 'password', 'replication'];

/** The default citus.node_conninfo: TLS between nodes when the members have certificates. */
export function defaultNodeConninfo(tls: { caFile: string | null } | null): string {
  if (!tls) return 'sslmode=prefer';
  // verify-ca, not verify-full: pg_dist_node names nodes by pod IP, which a certificate rarely lists
  return tls.caFile ? `sslmode=verify-ca sslrootcert=${tls.caFile}` : 'sslmode=require';
}

/** Read citus.json; null when the member is not part of a Citus cluster. */
export function loadCitus(cfgDir: string, namespace: string, tls: { caFile: string | null } | null, files: FileReader, problems: string[]): CitusConfig | null {
  const path = `${cfgDir}/citus.json`;
  const raw = readJsonFile(path, files, problems, 'a JSON object {"role","group","workers","nodeConninfo"}');
  if (raw === undefined) return null;
  const bad = (what: string, got: unknown, accepted: string, fix = "correct the chart's citus values") =>
    problems.push(`${path}: ${what} got ${JSON.stringify(got)?.slice(0, 120)}; accepted: ${accepted}. Fix: ${fix}`);
  if (!isObj(raw)) { bad('the file', raw, 'a JSON object'); return null; }
  const top = ['role', 'group', 'workers', 'coordinator', 'nodeConninfo', 'lockCooldownMs', 'switchoverHoldMs'];
  const unknown = Object.keys(raw).filter((k) => !top.includes(k));
  if (unknown.length) problems.push(`${path}: unknown key(s) ${unknown.join(', ')}; accepted: ${top.join(', ')}`);

  const role = raw.role;
  if (role !== 'coordinator' && role !== 'worker') { bad('role', role, '"coordinator" or "worker"'); return null; }
  const group = raw.group ?? (role === 'coordinator' ? 0 : undefined);
  if (role === 'coordinator' && group !== 0) bad('group', group, '0 for the coordinator group (Citus numbers the coordinator 0)');
  if (role === 'worker' && !(Number.isInteger(group) && (group as number) >= 1)) bad('group', group, 'a whole number ≥ 1 for a worker group (its Citus groupid)');

  const workers: CitusWorkerSource[] = [];
  if (role === 'worker' && raw.workers !== undefined) bad('workers', raw.workers, 'nothing on a worker group (only the coordinator registers worker groups)', 'remove workers from this group\'s citus.json');
  if (role === 'coordinator') {
    const list = raw.workers ?? [];
    if (!Array.isArray(list)) bad('workers', list, 'a list of {"group","lease","namespace","selector"}');
    else list.forEach((w: unknown, i: number) => {
      const at = `workers[${i}]`;
      if (!isObj(w)) { bad(at, w, 'an object {"group","lease","namespace","selector"}'); return; }
      const extra = Object.keys(w).filter((k) => !['group', 'lease', 'namespace', 'selector'].includes(k));
      if (extra.length) problems.push(`${path}: ${at}: unknown key(s) ${extra.join(', ')}; accepted: group, lease, namespace, selector`);
      const g = w.group, lease = w.lease, ns = w.namespace ?? namespace, sel = w.selector;
      let ok = true;
      if (!(Number.isInteger(g) && (g as number) >= 1)) { bad(`${at}.group`, g, 'a whole number ≥ 1 (0 is the coordinator)'); ok = false; }
      else if (workers.some((x) => x.group === g)) { bad(`${at}.group`, g, 'a number no other worker group has'); ok = false; }
      if (typeof lease !== 'string' || !DNS_NAME.test(lease)) { bad(`${at}.lease`, lease, 'the name of that group\'s leader Lease (a DNS name, e.g. pg-worker-1-leader)'); ok = false; }
      if (typeof ns !== 'string' || !NAMESPACE.test(ns)) { bad(`${at}.namespace`, ns, 'a namespace name (default: this member\'s own)'); ok = false; }
      if (typeof sel !== 'string' || !SELECTOR.test(sel)) { bad(`${at}.selector`, sel, 'a label selector of that group\'s member pods, e.g. app=pg-worker-1'); ok = false; }
      if (ok && workers.some((x) => x.lease === lease && x.namespace === ns)) { bad(`${at}.lease`, lease, 'a Lease no other worker group names (one Lease per group)'); ok = false; }
      if (ok) workers.push({ group: g as number, lease: lease as string, namespace: ns as string, selector: sel as string });
    });
  }

  let coordinator: CitusConfig['coordinator'] = null;
  if (raw.coordinator !== undefined) {
    const co = raw.coordinator;
    if (role !== 'worker') bad('coordinator', co, 'nothing on the coordinator group (a worker group names where the coordinator is)', 'remove coordinator from this group\'s citus.json');
    else if (!isObj(co) || Object.keys(co).some((k) => k !== 'namespace' && k !== 'selector')) bad('coordinator', co, 'an object {"namespace"?, "selector"}');
    else {
      const ns = co.namespace ?? namespace, sel = co.selector;
      if (typeof ns !== 'string' || !NAMESPACE.test(ns)) bad('coordinator.namespace', ns, 'a namespace name (default: this member\'s own)');
      else if (typeof sel !== 'string' || !SELECTOR.test(sel)) bad('coordinator.selector', sel, 'a label selector of the coordinator group\'s member pods, e.g. app=pg-coordinator');
      else coordinator = { namespace: ns, selector: sel };
    }
  }

  let nodeConninfo = defaultNodeConninfo(tls);
  if (raw.nodeConninfo !== undefined) {
    const c = raw.nodeConninfo;
    if (typeof c !== 'string' || !CONNINFO.test(c)) bad('nodeConninfo', c, "libpq keyword=value pairs, e.g. \"sslmode=verify-ca sslrootcert=/etc/tls/ca.crt\"");
    else {
      const named = [...c.matchAll(/([a-z_]+)\s*=/g)].map((m) => m[1]!);
      const owned = named.filter((k) => CONNINFO_OWNED.includes(k));
      if (owned.length) bad('nodeConninfo', c, `no ${owned.join(', ')} (Citus sets ${CONNINFO_OWNED.join(', ')} per connection itself)`);
      else nodeConninfo = c;
    }
  }
  const ms = (k: 'lockCooldownMs' | 'switchoverHoldMs', dflt: number, min: number, max: number): number => {
    const v = raw[k];
    if (v === undefined) return dflt;
    if (!(Number.isInteger(v) && (v as number) >= min && (v as number) <= max)) { bad(k, v, `a whole number of milliseconds from ${min} to ${max}`); return dflt; }
    return v as number;
  };
  return {
    role, group: typeof group === 'number' ? group : 0, workers, coordinator, nodeConninfo,
    lockCooldownMs: ms('lockCooldownMs', 10_000, 100, 600_000),
    switchoverHoldMs: ms('switchoverHoldMs', 30_000, 1_000, 300_000),
  };
}

/**
 * The parameters a Citus member runs with on top of parameters.json: citus first in
 * shared_preload_libraries (Citus refuses to load otherwise) and citus.node_conninfo.
 */
export function citusParameters(c: CitusConfig, parameters: Record<string, string>): Record<string, string> {
  const others = (parameters.shared_preload_libraries ?? '').split(',').map((s) => s.trim().replace(/^"|"$/g, '')).filter((s) => s !== '' && s !== 'citus');
  return { shared_preload_libraries: ['citus', ...others].join(','), 'citus.node_conninfo': c.nodeConninfo };
}
