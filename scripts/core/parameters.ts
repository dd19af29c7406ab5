// The one list of postgresql.conf parameters the autopilot owns, refuses or accepts only with some
// values. Pure data plus the one check that reads it. The entrypoint applies it to parameters.json
// (render.ts validateParameters); the chart applies the same data at install time: test/chart/
// parameters.mjs --write generates charts/postgres/templates/_parameters-list.tpl from RULES, and
// the chart suite fails when that copy, or the chart's messages, disagree with this module.
//
// Names are matched as PostgreSQL matches them: case-insensitively (TimeZone = timezone). Values
// as the entrypoint sees them: strings, with booleans as on/off. Every check below is expressible
// in a Helm template (lists of values, an integer minimum, an RE2-compatible pattern, "needs one
// of"), so that _parameters.tpl can implement exactly the same semantics.

/** What a restricted parameter accepts. */
export type Accepted =
  /** one of these, compared trimmed and lowercased */
  | { kind: 'values'; values: string[] }
  /** an integer (optional surrounding blanks) of at least min */
  | { kind: 'integer'; min: number }
  /** matches this pattern (JavaScript and Go RE2 alike) */
  | { kind: 'pattern'; pattern: string }
  /** when the value (trimmed, lowercased) is one of `when`, one of `needs` must be set, non-blank */
  | { kind: 'needs'; when: string[]; needs: string[] };

export interface ParameterRule {
  /** lowercase, as in pg_settings */
  name: string;
  /** owned: the autopilot sets it, never from values. refused: never, it would break the cluster.
   *  restricted: only with `accepted` values. backup: owned by the autopilot when backups are on. */
  kind: 'owned' | 'refused' | 'restricted' | 'backup';
  /** why, completing "… is refused: " */
  because: string;
  /** what to do instead, in words */
  instead: string;
  /** restricted only */
  accepted?: Accepted;
  /** a value this rule refuses (the agreement test renders the chart with it) */
  example: string;
}

/** PostgreSQL's spellings of true (its parse_bool accepts these prefixes of on/true/yes, and 1). */
const TRUE = ['on', 'true', 'yes', '1', 't', 'tr', 'tru', 'y', 'ye'];

const owned = (name: string, because: string, instead: string, example = 'x'): ParameterRule =>
  ({ name, kind: 'owned', because: `the autopilot owns ${name}: ${because}`, instead, example });
const recoveryTarget = (name: string, example: string): ParameterRule => ({
  name,
  kind: 'refused',
  because: 'a recovery target would stop a replica from following the primary',
  instead: 'remove it; to restore to a point in time, use bootstrap.fromBackup.target',
  example,
});
const include = (name: string): ParameterRule => ({
  name,
  kind: 'refused',
  because: 'an include directive reads files the chart does not manage',
  instead: 'remove it and set each parameter in postgresql.parameters',
  example: 'extra.conf',
});
const backup = (name: string, example: string): ParameterRule => ({
  name,
  kind: 'backup',
  because: 'backup.enabled is true and the autopilot archives and restores WAL through pgBackRest itself',
  instead: 'remove it (or turn backup.enabled off to archive your own way)',
  example,
});

export const RULES: readonly ParameterRule[] = [
  owned('port', 'members listen on 5432, the port the Services, probes and replicas use', 'remove it; clients reach the members through the read-write and read-only Services', '5433'),
  owned('listen_addresses', 'members listen on every address so that replicas and the Services reach them', 'remove it; restrict clients with postgresql.pgHba rules or the NetworkPolicy', 'localhost'),
  owned('unix_socket_directories', 'it talks to postgres over its own private socket directory', 'remove it', '/tmp'),
  owned('unix_socket_permissions', 'the socket is private to the postgres user (0700), as the superuser logs in over it without a password', 'remove it', '0777'),
  owned('unix_socket_group', 'the socket is private to the postgres user', 'remove it', 'users'),
  owned('data_directory', 'the data directory is on the volume the chart mounts', 'remove it; size that volume with persistence.size', '/data'),
  owned('config_file', 'it writes postgresql.conf at every start', 'remove it and set parameters in postgresql.parameters', '/etc/postgresql.conf'),
  owned('hba_file', 'it writes pg_hba.conf at every start', 'remove it and add rules with postgresql.pgHba', '/etc/pg_hba.conf'),
  owned('ident_file', 'it writes pg_ident.conf at every start', 'remove it', '/etc/pg_ident.conf'),
  owned('external_pid_file', 'it supervises postgres itself', 'remove it', '/tmp/pg.pid'),
  owned('primary_conninfo', 'it points each replica at the current primary', 'remove it', 'host=elsewhere'),
  owned('primary_slot_name', 'each member streams through its own physical slot', 'remove it', 'myslot'),
  owned('synchronous_standby_names', 'it names the synchronous standbys among the current replicas', 'remove it and set replication.synchronous and replication.syncCount', '*'),
  owned('recovery_target_timeline', "it must be 'latest' for replicas to follow failovers", 'remove it', 'current'),
  owned('promote_trigger_file', 'it promotes replicas itself', 'remove it', '/tmp/promote'),
  owned('hot_standby', 'it is always on, as replicas serve reads and the autopilot queries them', 'remove it', 'off'),
  owned('ssl', 'it follows tls.enabled', 'remove it and set tls.enabled and tls.existingSecret', 'on'),
  owned('ssl_cert_file', 'it is the certificate of tls.existingSecret', 'remove it and set tls.existingSecret', '/tls/tls.crt'),
  owned('ssl_key_file', 'it is the key of tls.existingSecret', 'remove it and set tls.existingSecret', '/tls/tls.key'),
  owned('ssl_ca_file', 'it is the ca.crt of tls.existingSecret', 'remove it and set tls.includeCA', '/tls/ca.crt'),
  owned('logging_collector', 'logs go to stderr, which it turns into its own log lines', 'remove it', 'on'),
  recoveryTarget('recovery_target', 'immediate'),
  recoveryTarget('recovery_target_lsn', '0/3000000'),
  recoveryTarget('recovery_target_name', 'before-upgrade'),
  recoveryTarget('recovery_target_time', '2026-11-29 03:00:00+00'),
  recoveryTarget('recovery_target_xid', '1234'),
  recoveryTarget('recovery_target_action', 'pause'),
  include('include'),
  include('include_dir'),
  include('include_if_exists'),
  {
    name: 'wal_level', kind: 'restricted', accepted: { kind: 'values', values: ['replica', 'logical'] },
    because: 'replication needs wal_level replica or logical', instead: "set it to 'replica' or 'logical', or remove it (default: replica)", example: 'minimal',
  },
  {
    name: 'max_wal_senders', kind: 'restricted', accepted: { kind: 'integer', min: 10 },
    because: 'every member streams from the primary and a clone needs two more senders', instead: 'set an integer of at least 10, or remove it (default: 10)', example: '0',
  },
  {
    name: 'max_replication_slots', kind: 'restricted', accepted: { kind: 'integer', min: 10 },
    because: 'every member streams through its own slot on the primary', instead: 'set an integer of at least 10, or remove it (default: 10)', example: '2',
  },
  {
    name: 'wal_log_hints', kind: 'restricted', accepted: { kind: 'values', values: TRUE },
    because: 'pg_rewind (rejoining a former primary) needs wal_log_hints on', instead: 'set it to on, or remove it (default: on)', example: 'off',
  },
  {
    name: 'full_page_writes', kind: 'restricted', accepted: { kind: 'values', values: TRUE },
    because: 'pg_rewind and base backups need full_page_writes on', instead: 'set it to on, or remove it (default: on)', example: 'off',
  },
  {
    name: 'password_encryption', kind: 'restricted', accepted: { kind: 'values', values: ['scram-sha-256'] },
    because: 'pg_hba.conf accepts only scram-sha-256 passwords', instead: "set it to 'scram-sha-256', or remove it (default: scram-sha-256)", example: 'md5',
  },
  {
    name: 'log_destination', kind: 'restricted', accepted: { kind: 'values', values: ['stderr'] },
    because: 'logs must go to stderr, as no logging collector runs', instead: "set it to 'stderr', or remove it (default: stderr)", example: 'csvlog',
  },
  {
    name: 'max_slot_wal_keep_size', kind: 'restricted', accepted: { kind: 'pattern', pattern: '^\\s*(-1|[0-9]+\\s*(kB|MB|GB|TB)?)\\s*$' },
    because: 'postgres would not start with it', instead: "set -1 (unlimited) or a size such as '2560MB' or '4GB' (no unit: MB; units kB, MB, GB, TB), or use replication.maxSlotWalKeepSize", example: '2Gi',
  },
  {
    name: 'archive_mode', kind: 'restricted', accepted: { kind: 'needs', when: [...TRUE, 'always'], needs: ['archive_command', 'archive_library'] },
    because: 'archive_mode on without archive_command or archive_library makes WAL pile up until the disk is full', instead: 'set archive_command (or archive_library) too, leave archive_mode off, or turn backup.enabled on', example: 'on',
  },
  backup('archive_mode', 'on'),
  backup('archive_command', '/bin/true'),
  backup('archive_library', 'basic_archive'),
  backup('restore_command', '/bin/true'),
];

/** Why any value is refused, whatever the parameter. */
export const NO_NEWLINES = 'a value cannot contain newlines or NUL characters';

/** The entrypoint's and the chart's sentence for one refused parameter. */
export function refusal(rawName: string, value: string, because: string, instead: string): string {
  return `postgresql.parameters.${rawName} = ${JSON.stringify(value)} is refused: ${because}. Instead: ${instead}`;
}

function accepts(a: Accepted, value: string, params: Record<string, string>): boolean {
  const v = value.trim().toLowerCase();
  switch (a.kind) {
    case 'values':
      return a.values.includes(v);
    case 'integer':
      return /^\s*-?[0-9]+\s*$/.test(value) && Number(value.trim()) >= a.min;
    case 'pattern':
      return new RegExp(a.pattern).test(value);
    case 'needs':
      return !a.when.includes(v) || Object.entries(params).some(([k, x]) => a.needs.includes(k.toLowerCase()) && x.trim() !== '');
  }
}

/** Every refusal for these parameters (name → value as the entrypoint sees it), one sentence each;
 *  `backupOn`: backup.enabled (the `backup` rules apply). Empty when all are accepted. */
export function parameterProblems(params: Record<string, string>, backupOn: boolean): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const [rawName, value] of Object.entries(params)) {
    const name = rawName.toLowerCase();
    const first = seen.get(name);
    if (first !== undefined) {
      problems.push(refusal(rawName, value, `it is the same parameter as ${first} (PostgreSQL ignores case in parameter names)`, 'keep only one of them'));
    }
    seen.set(name, first ?? rawName);
    if (/[\n\r\0]/.test(value)) problems.push(refusal(rawName, value, NO_NEWLINES, 'write it on one line'));
    const rules = RULES.filter((r) => r.name === name && (r.kind !== 'backup' || backupOn));
    // with backups on, the autopilot owns the archive settings: that is the one thing to say
    const owning = rules.filter((r) => r.kind === 'backup');
    for (const r of owning.length > 0 ? owning : rules) {
      if (r.kind === 'restricted' && r.accepted && accepts(r.accepted, value, params)) continue;
      problems.push(refusal(rawName, value, r.because, r.instead));
    }
  }
  return problems;
}
