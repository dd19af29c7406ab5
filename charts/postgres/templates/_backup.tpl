{{/*
Backups and restore (pgBackRest, docs/backup.md): what the chart renders for the entrypoint's
parsers (scripts/core/backup-config.ts). Two ConfigMap keys, backup.json and restore.json, and the
repository secrets projected as files under <PGA_SECRETS_DIR>/backup/ and .../restore/; no
credential ever in env or the ConfigMap.
*/}}

{{/* postgres.backupStanza: backup.stanza, or the cluster name. */}}
{{- define "postgres.backupStanza" -}}
{{- default (include "postgres.fullname" .) .Values.backup.stanza -}}
{{- end -}}

{{/* postgres.backupPath: backup.s3.path, or "/<namespace>/<cluster name>": one repository path
per cluster, so two releases sharing a bucket never share an archive. */}}
{{- define "postgres.backupPath" -}}
{{- default (printf "/%s/%s" .Release.Namespace (include "postgres.fullname" .)) .Values.backup.s3.path -}}
{{- end -}}

{{/* postgres.restorePath: bootstrap.fromBackup.s3.path, or "/<namespace>/<stanza>": where a source
cluster of this namespace with default values keeps its repository. */}}
{{- define "postgres.restorePath" -}}
{{- $f := .Values.bootstrap.fromBackup -}}
{{- default (printf "/%s/%s" .Release.Namespace $f.stanza) $f.s3.path -}}
{{- end -}}

{{/* postgres.s3Json: the "s3" object of backup.json / restore.json from a backup.s3-shaped value.
Call with (dict "s3" ... "path" ... "caFile" "/etc/..."); caFile only when s3.caSecret is set. */}}
{{- define "postgres.s3Json" -}}
{{- $s := .s3 -}}
{{- $o := dict "endpoint" $s.endpoint "bucket" $s.bucket "region" $s.region "path" .path "uriStyle" $s.uriStyle "verifyTls" $s.verifyTls -}}
{{- if $s.caSecret }}{{ $_ := set $o "caFile" .caFile }}{{ end -}}
{{- toJson $o -}}
{{- end -}}

{{/* postgres.backupJson: backup.json, exactly what loadBackup() accepts; unset optional keys are
left out (an empty schedule entry, a null retention measure, no options, no encryption). */}}
{{- define "postgres.backupJson" -}}
{{- $b := .Values.backup -}}
{{- $sched := dict -}}
{{- range $k := list "full" "differential" "incremental" -}}
{{- with index $b.schedule $k }}{{ $_ := set $sched $k . }}{{ end -}}
{{- end -}}
{{- $ret := dict -}}
{{- range $k := list "full" "fullDays" -}}
{{- $v := index $b.retention $k -}}
{{- if not (kindIs "invalid" $v) }}{{ $_ := set $ret $k (int64 $v) }}{{ end -}}
{{- end -}}
{{- $s3 := include "postgres.s3Json" (dict "s3" $b.s3 "path" (include "postgres.backupPath" .) "caFile" "/etc/pg-autopilot/backup-ca/ca.crt") | fromJson -}}
{{- $o := dict "stanza" (include "postgres.backupStanza" .) "s3" $s3 "schedule" $sched "retention" $ret "fromStandby" $b.fromStandby -}}
{{- if include "postgres.repoEncrypted" (dict "v" $b "vault" .Values.vault.enabled) }}{{ $_ := set $o "encryption" true }}{{ end -}}
{{- with $b.options }}{{ $_ := set $o "options" . }}{{ end -}}
{{- if $b.fromStandby -}}
{{- $_ := set $o "serverPort" (int64 $b.standbyServer.port) -}}
{{- $_ := set $o "serverHost" (printf "{pod}.%s-headless.%s.svc" (include "postgres.fullname" .) .Release.Namespace) -}}
{{- $d := "/etc/pg-autopilot/backup-tls" -}}
{{- $_ := set $o "standbyTls" (dict "caFile" (printf "%s/ca.crt" $d) "certFile" (printf "%s/tls.crt" $d) "keyFile" (printf "%s/tls.key" $d) "clientCN" $b.standbyTls.clientCommonName) -}}
{{- end -}}
{{- toJson $o -}}
{{- end -}}

{{/* postgres.backupTlsSecret: the Secret with the members' pgBackRest server/client certificate
(backup.fromStandby): backup.standbyTls.existingSecret, or the one the chart generates. */}}
{{- define "postgres.backupTlsSecret" -}}
{{- default (printf "%s-backup-tls" (include "postgres.fullname" .)) .Values.backup.standbyTls.existingSecret -}}
{{- end -}}

{{/* postgres.restoreJson: restore.json: the source repository, its stanza and the recovery target
({"type":"latest"}, or type + value). "encryption": true when the source is encrypted. */}}
{{- define "postgres.restoreJson" -}}
{{- $f := .Values.bootstrap.fromBackup -}}
{{- $target := dict "type" $f.target.type -}}
{{- if ne $f.target.type "latest" }}{{ $_ := set $target "value" $f.target.value }}{{ end -}}
{{- $s3 := include "postgres.s3Json" (dict "s3" $f.s3 "path" (include "postgres.restorePath" .) "caFile" "/etc/pg-autopilot/restore-ca/ca.crt") | fromJson -}}
{{- $o := dict "stanza" $f.stanza "s3" $s3 "target" $target -}}
{{- if include "postgres.repoEncrypted" (dict "v" $f "vault" .Values.vault.enabled) }}{{ $_ := set $o "encryption" true }}{{ end -}}
{{- toJson $o -}}
{{- end -}}

{{/* postgres.backupVolumeSources: the projected-volume sources of the repository secrets and CA
bundles (entries under the config volume's "sources:"): backup/{s3-key,s3-key-secret,cipher-pass}
and restore/… below secrets/ (PGA_SECRETS_DIR), backup-ca/ca.crt and restore-ca/ca.crt beside it. */}}
{{- define "postgres.backupVolumeSources" -}}
{{- $repos := list -}}
{{- if .Values.backup.enabled }}{{ $repos = append $repos (dict "dir" "backup" "v" .Values.backup) }}{{ end -}}
{{- if .Values.bootstrap.fromBackup.enabled }}{{ $repos = append $repos (dict "dir" "restore" "v" .Values.bootstrap.fromBackup) }}{{ end -}}
{{- $vault := .Values.vault.enabled -}}
{{- range $repos }}
{{- $dir := .dir }}
{{- if not $vault }}
- secret:
    name: {{ .v.s3.existingSecret }}
    items:
      - key: s3-key
        path: secrets/{{ $dir }}/s3-key
      - key: s3-key-secret
        path: secrets/{{ $dir }}/s3-key-secret
{{- with .v.encryption.existingSecret }}
- secret:
    name: {{ . }}
    items:
      - key: cipher-pass
        path: secrets/{{ $dir }}/cipher-pass
{{- end }}
{{- end }}
{{- with .v.s3.caSecret }}
- secret:
    name: {{ . }}
    items:
      - key: ca.crt
        path: {{ $dir }}-ca/ca.crt
{{- end }}
{{- end }}
{{- if and .Values.backup.enabled .Values.backup.fromStandby }}
# backup.fromStandby: the members' pgBackRest server/client certificate (0440, root-owned: a key pgBackRest accepts)
- secret:
    name: {{ include "postgres.backupTlsSecret" . }}
    items:
      - key: ca.crt
        path: backup-tls/ca.crt
      - key: tls.crt
        path: backup-tls/tls.crt
      - key: tls.key
        path: backup-tls/tls.key
{{- end }}
{{- end -}}

{{/* postgres.repoEncrypted: "true" when a repository (backup or bootstrap.fromBackup values, dict
"v" ... "vault" vault.enabled) is encrypted: a cipher-pass from its Secret, or from Vault. */}}
{{- define "postgres.repoEncrypted" -}}
{{- if .vault }}{{ if .v.encryption.vaultPath }}true{{ end }}{{ else }}{{ if .v.encryption.existingSecret }}true{{ end }}{{ end -}}
{{- end -}}

{{/* postgres.repoCredentialErrors: where a repository's credentials come from, as a JSON list of
sentences: a Secret (s3.existingSecret, encryption.existingSecret) without Vault, Vault paths
(s3.vaultPath, encryption.vaultPath) with it; never both, never neither. */}}
{{- define "postgres.repoCredentialErrors" -}}
{{- $e := list -}}
{{- $at := .at -}}
{{- if .vault -}}
{{- if not .v.s3.vaultPath }}{{ $e = append $e (printf "%s with vault.enabled but %s.s3.vaultPath is empty: name the Vault path whose fields s3-key and s3-key-secret hold the access key (e.g. secret/data/pg-backup)" .what $at) }}{{ end -}}
{{- if .v.s3.existingSecret }}{{ $e = append $e (printf "%s.s3.existingSecret is set but vault.enabled is true: with Vault the access key comes from %s.s3.vaultPath; clear %s.s3.existingSecret" $at $at $at) }}{{ end -}}
{{- if .v.encryption.existingSecret }}{{ $e = append $e (printf "%s.encryption.existingSecret is set but vault.enabled is true: with Vault the cipher-pass comes from %s.encryption.vaultPath; move it there and clear %s.encryption.existingSecret" $at $at $at) }}{{ end -}}
{{- else -}}
{{- if not .v.s3.existingSecret }}{{ $e = append $e (printf "%s but %s.s3.existingSecret is empty: name a Secret with the keys s3-key and s3-key-secret (credentials never go in values)" .what $at) }}{{ end -}}
{{- if .v.s3.vaultPath }}{{ $e = append $e (printf "%s.s3.vaultPath is set but vault.enabled is false: without Vault the access key comes from %s.s3.existingSecret; clear %s.s3.vaultPath or turn vault.enabled on" $at $at $at) }}{{ end -}}
{{- if .v.encryption.vaultPath }}{{ $e = append $e (printf "%s.encryption.vaultPath is set but vault.enabled is false: without Vault the cipher-pass comes from %s.encryption.existingSecret; clear %s.encryption.vaultPath or turn vault.enabled on" $at $at $at) }}{{ end -}}
{{- end -}}
{{- toJson $e -}}
{{- end -}}

{{/* postgres.backupVaultAnnotations: with vault.enabled, the Vault Agent Injector annotations that
write each repository's credentials where the entrypoint reads them: /vault/secrets/backup/
{s3-key,s3-key-secret,cipher-pass} and /vault/secrets/restore/… (agent-inject-file puts them in
the subdirectory; each is one field of its vaultPath, read with vault.kvVersion). */}}
{{- define "postgres.backupVaultAnnotations" -}}
{{- $kv := .Values.vault.kvVersion -}}
{{- $repos := list -}}
{{- if .Values.backup.enabled }}{{ $repos = append $repos (dict "dir" "backup" "v" .Values.backup) }}{{ end -}}
{{- if .Values.bootstrap.fromBackup.enabled }}{{ $repos = append $repos (dict "dir" "restore" "v" .Values.bootstrap.fromBackup) }}{{ end -}}
{{- range $repos }}
{{- $dir := .dir -}}
{{- $files := list (dict "field" "s3-key" "path" .v.s3.vaultPath) (dict "field" "s3-key-secret" "path" .v.s3.vaultPath) -}}
{{- with .v.encryption.vaultPath }}{{ $files = append $files (dict "field" "cipher-pass" "path" .) }}{{ end -}}
{{- range $files }}
vault.hashicorp.com/agent-inject-secret-{{ $dir }}-{{ .field }}: {{ .path | quote }}
vault.hashicorp.com/agent-inject-template-{{ $dir }}-{{ .field }}: {{ include "postgres.vaultTemplate" (dict "path" .path "field" .field "kv" $kv) | quote }}
vault.hashicorp.com/agent-inject-file-{{ $dir }}-{{ .field }}: {{ printf "%s/%s" $dir .field | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* postgres.s3Id: endpoint (without https:// and a trailing / or :443), bucket, path (without a
trailing /) and stanza as one string, to tell whether two repositories are the same. */}}
{{- define "postgres.s3Id" -}}
{{- $ep := .endpoint | lower | trimPrefix "https://" | trimSuffix "/" | trimSuffix ":443" -}}
{{- printf "%s|%s|%s|%s" $ep .bucket (trimSuffix "/" .path | default "/") .stanza -}}
{{- end -}}

{{/* postgres.backupErrors: the backup and restore rules the JSON schema cannot express, as a JSON
list of sentences naming the values (postgres.validateValues fails with them). */}}
{{- define "postgres.backupErrors" -}}
{{- $v := .Values -}}
{{- $b := $v.backup -}}
{{- $f := $v.bootstrap.fromBackup -}}
{{- $errors := list -}}
{{- if $b.enabled -}}
{{- if not $b.s3.endpoint }}{{ $errors = append $errors "backup.enabled is true but backup.s3.endpoint is empty: set the S3 endpoint, host[:port], e.g. \"s3.eu-west-1.amazonaws.com\"" }}{{ end -}}
{{- if not $b.s3.bucket }}{{ $errors = append $errors "backup.enabled is true but backup.s3.bucket is empty: set the bucket that holds the repository" }}{{ end -}}
{{- range include "postgres.repoCredentialErrors" (dict "what" "backup.enabled is true" "at" "backup" "v" $b "vault" $v.vault.enabled) | fromJsonArray }}{{ $errors = append $errors . }}{{ end -}}
{{- $r := $b.retention -}}
{{- $full := not (kindIs "invalid" $r.full) -}}
{{- $days := not (kindIs "invalid" $r.fullDays) -}}
{{- if and $full $days }}{{ $errors = append $errors (printf "backup.retention.full (%v) and backup.retention.fullDays (%v) are both set: pgBackRest keeps full backups by one measure; set backup.retention.full to null to keep them by days" $r.full $r.fullDays) }}{{ end -}}
{{- if and (not $b.schedule.full) (or $b.schedule.differential $b.schedule.incremental) }}{{ $errors = append $errors "backup.schedule.differential or backup.schedule.incremental is set but backup.schedule.full is empty: they build on a full backup; schedule one" }}{{ end -}}
{{- /* archive_mode, archive_command, archive_library, restore_command: postgres.parameterErrors */ -}}
{{- end -}}
{{- if eq $v.replication.bootstrapFrom "backup" -}}
{{- if not $b.enabled }}{{ $errors = append $errors "replication.bootstrapFrom is backup but backup.enabled is false: a new replica restores from the cluster's own backup repository, so there must be one; set backup.enabled to true (with backup.s3.*), or set replication.bootstrapFrom to basebackup" }}{{ end -}}
{{- if $v.persistence.wal.enabled }}{{ $errors = append $errors "replication.bootstrapFrom is backup with persistence.wal.enabled: restoring a replica into a separate WAL volume is not supported yet; set replication.bootstrapFrom to basebackup, or persistence.wal.enabled to false" }}{{ end -}}
{{- end -}}
{{- if and $b.enabled $b.fromStandby -}}
{{- if lt (int $v.replicas) 2 }}{{ $errors = append $errors (printf "backup.fromStandby is true but replicas is %v: there is no streaming replica to back up from (every backup would run on the primary with a warning); set replicas to 2 or more, or backup.fromStandby to false" $v.replicas) }}{{ end -}}
{{- if has (int $b.standbyServer.port) (list 5432 8008 9187 (int $v.metrics.autopilotPort)) }}{{ $errors = append $errors (printf "backup.standbyServer.port %v is a port the pod already uses (5432 postgres, 8008 the autopilot's API, 9187 the exporter, metrics.autopilotPort %v the autopilot's metrics): choose another, e.g. 8432" $b.standbyServer.port $v.metrics.autopilotPort) }}{{ end -}}
{{- end -}}
{{- if and $b.standbyTls.existingSecret (not (and $b.enabled $b.fromStandby)) -}}
{{- $errors = append $errors "backup.standbyTls.existingSecret is set but backup.fromStandby (with backup.enabled) is off: the certificate is only for backups from a standby; set backup.fromStandby to true or clear backup.standbyTls.existingSecret" -}}
{{- end -}}
{{- if $f.enabled -}}
{{- if not $f.stanza }}{{ $errors = append $errors "bootstrap.fromBackup.enabled is true but bootstrap.fromBackup.stanza is empty: name the source cluster's stanza (its backup.stanza, by default its cluster name)" }}{{ end -}}
{{- if not $f.s3.endpoint }}{{ $errors = append $errors "bootstrap.fromBackup.enabled is true but bootstrap.fromBackup.s3.endpoint is empty: set the source repository's S3 endpoint" }}{{ end -}}
{{- if not $f.s3.bucket }}{{ $errors = append $errors "bootstrap.fromBackup.enabled is true but bootstrap.fromBackup.s3.bucket is empty: set the source repository's bucket" }}{{ end -}}
{{- range include "postgres.repoCredentialErrors" (dict "what" "bootstrap.fromBackup.enabled is true" "at" "bootstrap.fromBackup" "v" $f "vault" $v.vault.enabled) | fromJsonArray }}{{ $errors = append $errors . }}{{ end -}}
{{- $t := $f.target -}}
{{- if and (ne $t.type "latest") (not $t.value) }}{{ $errors = append $errors (printf "bootstrap.fromBackup.target.type is %s but bootstrap.fromBackup.target.value is empty: say where recovery stops (%s)" $t.type (get (dict "time" "a time with a zone, e.g. \"2026-11-29 03:00:00+00\"" "lsn" "an LSN, e.g. \"0/3000148\"" "name" "a restore point created with pg_create_restore_point()" "backup" "a backup label from `autopilot backups`, e.g. \"20261129-010002F\"") $t.type)) }}{{ end -}}
{{- if and (eq $t.type "latest") $t.value }}{{ $errors = append $errors (printf "bootstrap.fromBackup.target.value is %q but bootstrap.fromBackup.target.type is latest: set target.type (time, lsn, name or backup) or clear the value" $t.value) }}{{ end -}}
{{- if and (eq $t.type "time") $t.value (not (regexMatch "^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$" $t.value)) }}{{ $errors = append $errors (printf "bootstrap.fromBackup.target.value %q is not a time with a zone: write it as \"2026-11-29 03:00:00+00\" (a time without a zone would be read in the server's zone)" $t.value) }}{{ end -}}
{{- if and (eq $t.type "lsn") $t.value (not (regexMatch "^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$" $t.value)) }}{{ $errors = append $errors (printf "bootstrap.fromBackup.target.value %q is not an LSN: write it as two hexadecimal numbers, e.g. \"0/3000148\"" $t.value) }}{{ end -}}
{{- if and (eq $t.type "backup") $t.value (not (regexMatch "^[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?$" $t.value)) }}{{ $errors = append $errors (printf "bootstrap.fromBackup.target.value %q is not a pgBackRest backup label: copy one from `autopilot backups`, e.g. \"20261129-010002F\" or \"20261129-010002F_20261130-010001I\"" $t.value) }}{{ end -}}
{{- if and $b.enabled $f.stanza $f.s3.endpoint $f.s3.bucket -}}
{{- $src := include "postgres.s3Id" (dict "endpoint" $f.s3.endpoint "bucket" $f.s3.bucket "path" (include "postgres.restorePath" .) "stanza" $f.stanza) -}}
{{- $dst := include "postgres.s3Id" (dict "endpoint" $b.s3.endpoint "bucket" $b.s3.bucket "path" (include "postgres.backupPath" .) "stanza" (include "postgres.backupStanza" .)) -}}
{{- if eq $src $dst }}{{ $errors = append $errors (printf "bootstrap.fromBackup restores from the repository backups write to (endpoint %s, bucket %s, path %s, stanza %s): the new cluster would archive into its source's archive. Give the new cluster its own backup.s3.path or backup.stanza" $b.s3.endpoint $b.s3.bucket (include "postgres.backupPath" .) (include "postgres.backupStanza" .)) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- toJson $errors -}}
{{- end -}}
