{{/*
Named helpers of the postgres chart. Each one makes one thing; templates call them, never the
other way round. Paths, ports and env names follow docs/contract.md.
*/}}

{{/* postgres.name: the chart name (nameOverride wins), cut to 63 characters for DNS labels. */}}
{{- define "postgres.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* postgres.fullname: the cluster name: StatefulSet, Lease prefix (PGA_CLUSTER_NAME) and prefix of
every object. <release>-<name>, or just <release> when it already contains the name. Cut to 52
characters so that "<fullname>-headless" and the pod names stay valid DNS labels. */}}
{{- define "postgres.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* postgres.chart: "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "postgres.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* postgres.selectorLabels: the immutable labels that select this cluster's pods (StatefulSet
selector, Services, PDB, NetworkPolicy, PGA_MEMBER_SELECTOR, volumeClaimTemplates). */}}
{{- define "postgres.selectorLabels" -}}
app.kubernetes.io/name: {{ include "postgres.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* postgres.memberSelector: the selector labels as a label-selector string (PGA_MEMBER_SELECTOR). */}}
{{- define "postgres.memberSelector" -}}
{{- printf "app.kubernetes.io/name=%s,app.kubernetes.io/instance=%s" (include "postgres.name" .) .Release.Name -}}
{{- end -}}

{{/* postgres.labels: the labels every object carries: selector labels, version, manager, chart,
component, then commonLabels. */}}
{{- define "postgres.labels" -}}
{{ include "postgres.selectorLabels" . }}
app.kubernetes.io/version: {{ include "postgres.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: database
app.kubernetes.io/part-of: pg-autopilot
helm.sh/chart: {{ include "postgres.chart" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* postgres.imageTag: image.tag, or the chart's appVersion when empty. */}}
{{- define "postgres.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{/* postgres.imageRef: renders an image reference from {registry, repository, tag, digest}:
[registry/]repository[:tag][@digest]; global.imageRegistry, when set, replaces the image's registry
(as in Bitnami's charts). Call with (dict "image" .Values.image "defaultTag" "x" "global" .Values.global). */}}
{{- define "postgres.imageRef" -}}
{{- $img := .image -}}
{{- $ref := $img.repository -}}
{{- $registry := default $img.registry (dig "imageRegistry" "" (default dict .global)) -}}
{{- if $registry }}{{ $ref = printf "%s/%s" $registry $ref }}{{ end -}}
{{- $tag := default .defaultTag $img.tag -}}
{{- if $tag }}{{ $ref = printf "%s:%s" $ref $tag }}{{ end -}}
{{- if $img.digest }}{{ $ref = printf "%s@%s" $ref $img.digest }}{{ end -}}
{{- $ref -}}
{{- end -}}

{{/* postgres.image: the PostgreSQL + autopilot image (the member container and the test pod). */}}
{{- define "postgres.image" -}}
{{- include "postgres.imageRef" (dict "image" .Values.image "defaultTag" .Chart.AppVersion "global" .Values.global) -}}
{{- end -}}

{{/* postgres.metricsImage: the postgres_exporter sidecar's image (global.imageRegistry applies). */}}
{{- define "postgres.metricsImage" -}}
{{- include "postgres.imageRef" (dict "image" .Values.metrics.image "defaultTag" "" "global" .Values.global) -}}
{{- end -}}

{{/* postgres.imagePullSecrets: global.imagePullSecrets (names or {name}) then imagePullSecrets, as a
YAML list of {name}, each name once; empty when there are none. */}}
{{- define "postgres.imagePullSecrets" -}}
{{- $names := list -}}
{{- range (concat (dig "imagePullSecrets" list (default dict .Values.global)) .Values.imagePullSecrets) -}}
{{- if kindIs "string" . }}{{ $names = append $names . }}{{ else }}{{ $names = append $names .name }}{{ end -}}
{{- end -}}
{{- $out := list -}}
{{- range ($names | compact | uniq) }}{{ $out = append $out (dict "name" .) }}{{ end -}}
{{- if $out }}{{ toYaml $out }}{{ end -}}
{{- end -}}

{{/* postgres.storageClass: the StorageClass of one volume: global.storageClass when set (as in
Bitnami's charts), else the given per-volume value. Call with (dict "root" $ "storageClass" x). */}}
{{- define "postgres.storageClass" -}}
{{- default .storageClass (dig "storageClass" "" (default dict .root.Values.global)) -}}
{{- end -}}

{{/* postgres.serviceAccountName: the ServiceAccount the members run as. */}}
{{- define "postgres.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "postgres.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* postgres.secretName: the Secret holding the credentials (chart-managed or auth.existingSecret). */}}
{{- define "postgres.secretName" -}}
{{- default (include "postgres.fullname" .) .Values.auth.existingSecret -}}
{{- end -}}

{{/* postgres.createSecret: "true" when the chart manages the credentials Secret (no Vault, no
existing Secret). */}}
{{- define "postgres.createSecret" -}}
{{- if and (not .Values.vault.enabled) (not .Values.auth.existingSecret) -}}true{{- end -}}
{{- end -}}

{{/* postgres.secretDir: where the credential files are: the Vault Agent's /vault/secrets, or the
Secret projected at /etc/pg-autopilot/secrets. PGA_SECRETS_DIR and every *_FILE point here. */}}
{{- define "postgres.secretDir" -}}
{{- if .Values.vault.enabled -}}/vault/secrets{{- else -}}/etc/pg-autopilot/secrets{{- end -}}
{{- end -}}

{{/* postgres.credentialKeys: every credential key the cluster needs, as a JSON list: superuser,
replication, app (when auth.appUser is set), API token, the exporter's password (metrics.enabled),
then each users[].passwordKey. These are the Secret keys, the projected file names and the Vault
Agent secret names. */}}
{{- define "postgres.credentialKeys" -}}
{{- $k := .Values.auth.secretKeys -}}
{{- $keys := list $k.superuserPassword $k.replicationPassword -}}
{{- if .Values.auth.appUser }}{{ $keys = append $keys $k.appPassword }}{{ end -}}
{{- $keys = append $keys $k.apiToken -}}
{{- if .Values.metrics.enabled }}{{ $keys = append $keys $k.monitorPassword }}{{ end -}}
{{- range .Values.users }}{{ if .passwordKey }}{{ $keys = append $keys .passwordKey }}{{ end }}{{ end -}}
{{- toJson (uniq $keys) -}}
{{- end -}}

{{/* postgres.builtinCredentialKeys: the credential keys of auth.* (superuser, replication, app
when auth.appUser is set, API token, the exporter's password with metrics.enabled, which the
autopilot sets on the role), as a JSON list: the keys projected one by one into secrets/ of the
postgres container. Users' passwordKeys are not among them (postgres.rolesSecretVolume). */}}
{{- define "postgres.builtinCredentialKeys" -}}
{{- $k := .Values.auth.secretKeys -}}
{{- $keys := list $k.superuserPassword $k.replicationPassword -}}
{{- if .Values.auth.appUser }}{{ $keys = append $keys $k.appPassword }}{{ end -}}
{{- $keys = append $keys $k.apiToken -}}
{{- if .Values.metrics.enabled }}{{ $keys = append $keys $k.monitorPassword }}{{ end -}}
{{- toJson $keys -}}
{{- end -}}

{{/* postgres.monitorSecretDir: where the exporter finds its one password file: a volume of its
own holding only that key (monitor-secret), or the Vault Agent's /vault/secrets. */}}
{{- define "postgres.monitorSecretDir" -}}
{{- if .Values.vault.enabled -}}/vault/secrets{{- else -}}/etc/postgres-exporter{{- end -}}
{{- end -}}

{{/* postgres.testKey: the credential the helm test pod logs in with: the application user's
password, or the superuser's when there is no application user. */}}
{{- define "postgres.testKey" -}}
{{- if .Values.auth.appUser -}}{{ .Values.auth.secretKeys.appPassword }}{{- else -}}{{ .Values.auth.secretKeys.superuserPassword }}{{- end -}}
{{- end -}}

{{/* postgres.vaultAnnotations: Vault Agent Injector annotations that render each key in the
given list (dict "root" $ "keys" (list ...)) to /vault/secrets/<key> before the containers start
(pre-populate only: no agent sidecar keeps running). Each key is a field of vault.secretPath.
With "containers" (a comma-separated list), only those containers mount /vault/secrets. */}}
{{- define "postgres.vaultAnnotations" -}}
{{- $v := .root.Values.vault -}}
vault.hashicorp.com/agent-inject: "true"
vault.hashicorp.com/agent-pre-populate-only: "true"
{{- with .containers }}
vault.hashicorp.com/agent-inject-containers: {{ . | quote }}
{{- end }}
vault.hashicorp.com/role: {{ $v.role | quote }}
{{- with $v.authPath }}
vault.hashicorp.com/auth-path: {{ . | quote }}
{{- end }}
{{- with $v.caCert }}
vault.hashicorp.com/ca-cert: {{ . | quote }}
{{- end }}
{{- with $v.tlsSecret }}
vault.hashicorp.com/tls-secret: {{ . | quote }}
{{- end }}
{{- if $v.tlsSkipVerify }}
vault.hashicorp.com/tls-skip-verify: "true"
{{- end }}
{{- range .keys }}
vault.hashicorp.com/agent-inject-secret-{{ . }}: {{ $v.secretPath | quote }}
vault.hashicorp.com/agent-inject-template-{{ . }}: {{ include "postgres.vaultTemplate" (dict "path" $v.secretPath "field" . "kv" $v.kvVersion) | quote }}
{{- end }}
{{- end -}}

{{/* postgres.vaultTemplate: the Consul Template that writes one field of a KV secret (v1 or v2)
with nothing around it. */}}
{{- define "postgres.vaultTemplate" -}}
{{- $data := ternary ".Data.data" ".Data" (eq (int .kv) 2) -}}
{{- printf "{{- with secret %q -}}{{ index %s %q }}{{- end -}}" .path $data .field -}}
{{- end -}}

{{/* postgres.syncMode: replication.synchronous as PGA_SYNC_MODE ("off" | "on" | "strict"). YAML 1.1
reads unquoted on/off as booleans, so both spellings of on and off are accepted; "strict" is a
string. */}}
{{- define "postgres.syncMode" -}}
{{- $s := .Values.replication.synchronous -}}
{{- if kindIs "bool" $s -}}{{ ternary "on" "off" $s }}{{- else -}}{{ $s }}{{- end -}}
{{- end -}}

{{/* postgres.quantityMB: a Kubernetes quantity (10Gi, 512Mi, 1.5G, 500M...) in MB as PostgreSQL
counts them (1MB = 1024 kB = 1048576 bytes), rounded down, as a float. */}}
{{- define "postgres.quantityMB" -}}
{{- $q := toString . -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $q -}}
{{- $unit := trimPrefix $num $q -}}
{{- $bytes := dict "k" "1e3" "M" "1e6" "G" "1e9" "T" "1e12" "P" "1e15" "E" "1e18" "Ki" "1024" "Mi" "1048576" "Gi" "1073741824" "Ti" "1099511627776" "Pi" "1125899906842624" "Ei" "1152921504606846976" -}}
{{- if not (and $num (hasKey $bytes $unit)) -}}
{{- fail (printf "postgres.quantityMB: %q is not a Kubernetes quantity with a unit" $q) -}}
{{- end -}}
{{- floor (divf (mulf (float64 $num) (float64 (get $bytes $unit))) 1048576) -}}
{{- end -}}

{{/* postgres.walVolumeMB: the size in MB of the volume that holds pg_wal: persistence.wal.size with
a separate WAL volume, else persistence.size; with persistence disabled, the emptyDir's sizeLimit;
empty when unknown (an emptyDir without sizeLimit). */}}
{{- define "postgres.walVolumeMB" -}}
{{- $p := .Values.persistence -}}
{{- if and $p.enabled $p.wal.enabled -}}{{ include "postgres.quantityMB" $p.wal.size }}
{{- else if $p.enabled -}}{{ include "postgres.quantityMB" $p.size }}
{{- else if $p.emptyDir.sizeLimit -}}{{ include "postgres.quantityMB" $p.emptyDir.sizeLimit }}
{{- end -}}
{{- end -}}

{{/* postgres.maxSlotWalKeepSize: PGA_MAX_SLOT_WAL_KEEP_SIZE, in MB ("2560MB") or "-1" (unlimited,
only when replication.maxSlotWalKeepSize says so). replication.maxSlotWalKeepSize when set (MB, GB
or TB); else a quarter of the volume that holds pg_wal (postgres.walVolumeMB), at least 1MB and at
most PostgreSQL's limit; 1024MB when that size is unknown. */}}
{{- define "postgres.maxSlotWalKeepSize" -}}
{{- $set := toString .Values.replication.maxSlotWalKeepSize -}}
{{- if eq $set "-1" -}}-1
{{- else if $set -}}{{ include "postgres.walKeepSizeMB" $set }}MB
{{- else -}}
{{- $vol := include "postgres.walVolumeMB" . -}}
{{- if $vol -}}{{ max 1 (min 2147483647 (int64 (floor (divf (float64 $vol) 4)))) }}MB{{- else -}}1024MB{{- end -}}
{{- end -}}
{{- end -}}

{{/* postgres.walKeepSizeMB: "2560MB", "4GB" or "1TB" (replication.maxSlotWalKeepSize) in MB. */}}
{{- define "postgres.walKeepSizeMB" -}}
{{- $num := regexFind "^[0-9]+" . -}}
{{- $unit := trimPrefix $num . -}}
{{- mul (int64 $num) (get (dict "MB" 1 "GB" 1024 "TB" 1048576) $unit) -}}
{{- end -}}

{{/* postgres.validateValues: cross-field rules the JSON schema cannot express. Collects every
violation and fails once with all of them, each naming the values involved. */}}
{{- define "postgres.validateValues" -}}
{{- $v := .Values -}}
{{- $errors := list -}}
{{- $a := $v.autopilot -}}
{{- if not (lt (float64 $a.renewDeadlineSeconds) (float64 $a.leaseSeconds)) -}}
{{- $errors = append $errors (printf "autopilot.renewDeadlineSeconds (%v) must be less than autopilot.leaseSeconds (%v): a primary must give up before its lease can expire" $a.renewDeadlineSeconds $a.leaseSeconds) -}}
{{- end -}}
{{- if not (lt (float64 $a.renewSeconds) (float64 $a.renewDeadlineSeconds)) -}}
{{- $errors = append $errors (printf "autopilot.renewSeconds (%v) must be less than autopilot.renewDeadlineSeconds (%v): the primary needs at least one renewal attempt before it demotes itself" $a.renewSeconds $a.renewDeadlineSeconds) -}}
{{- end -}}
{{- if gt (float64 $a.loopSeconds) (float64 $a.renewSeconds) -}}
{{- $errors = append $errors (printf "autopilot.loopSeconds (%v) must not exceed autopilot.renewSeconds (%v): renewals happen on loop ticks" $a.loopSeconds $a.renewSeconds) -}}
{{- end -}}
{{- $sync := include "postgres.syncMode" . -}}
{{- if ne $sync "off" -}}
{{- if ge (int $v.replication.syncCount) (int $v.replicas) -}}
{{- $errors = append $errors (printf "replication.synchronous is %s with replication.syncCount %d, which needs more than %d replicas (replicas is %d): writes would block" $sync (int $v.replication.syncCount) (int $v.replication.syncCount) (int $v.replicas)) -}}
{{- end -}}
{{- end -}}
{{- $keep := toString $v.replication.maxSlotWalKeepSize -}}
{{- if and $keep (ne $keep "-1") (include "postgres.slotKeepSizeValid" .) -}}
{{- $keepMB := int64 (include "postgres.walKeepSizeMB" $keep) -}}
{{- $vol := include "postgres.walVolumeMB" . -}}
{{- if gt $keepMB 2147483647 -}}
{{- $errors = append $errors (printf "replication.maxSlotWalKeepSize (%s) is above PostgreSQL's limit for max_slot_wal_keep_size (2147483647MB)" $keep) -}}
{{- else if and $vol (ge (float64 $keepMB) (float64 $vol)) -}}
{{- $errors = append $errors (printf "replication.maxSlotWalKeepSize (%s = %dMB) is not below the size of the volume that holds pg_wal (%sMB): a member that cannot stream could still fill it; lower it, leave it empty (a quarter of the volume), or set \"-1\" for unlimited" $keep $keepMB $vol) -}}
{{- end -}}
{{- end -}}
{{- if and $v.vault.enabled (not $v.vault.role) -}}
{{- $errors = append $errors "vault.enabled is true but vault.role is empty: set the Vault Kubernetes-auth role the pods log in with" -}}
{{- end -}}
{{- if and $v.vault.enabled (not $v.vault.secretPath) -}}
{{- $errors = append $errors "vault.enabled is true but vault.secretPath is empty: set the Vault path holding the credentials (e.g. secret/data/pg)" -}}
{{- end -}}
{{- if and $v.vault.enabled $v.auth.existingSecret -}}
{{- $errors = append $errors "vault.enabled and auth.existingSecret are both set: credentials come either from Vault or from a Secret, not both" -}}
{{- end -}}
{{- if and (not $v.serviceAccount.create) (not $v.serviceAccount.name) -}}
{{- $errors = append $errors "serviceAccount.create is false but serviceAccount.name is empty: name the existing ServiceAccount the members run as" -}}
{{- end -}}
{{- if and $v.persistence.wal.enabled (not $v.persistence.enabled) -}}
{{- $errors = append $errors "persistence.wal.enabled needs persistence.enabled: a separate WAL volume only exists next to a data PVC" -}}
{{- end -}}
{{- if and (not $v.persistence.enabled) (eq $v.persistence.emptyDir.medium "Memory") (not $v.persistence.emptyDir.sizeLimit) -}}
{{- $errors = append $errors "persistence.emptyDir.medium is Memory but persistence.emptyDir.sizeLimit is empty: a memory-backed data directory needs a size limit" -}}
{{- end -}}
{{- $errors = concat $errors (include "postgres.exposeErrors" . | fromJsonArray) -}}
{{- if and $v.tls.enabled (not $v.tls.existingSecret) -}}
{{- $errors = append $errors "tls.enabled is true but tls.existingSecret is empty: name a kubernetes.io/tls Secret (tls.crt, tls.key; ca.crt when tls.includeCA)" -}}
{{- end -}}
{{- if and $v.metrics.serviceMonitor.enabled $v.metrics.podMonitor.enabled -}}
{{- $errors = append $errors "metrics.serviceMonitor.enabled and metrics.podMonitor.enabled are both true: pick one, or every member is scraped twice" -}}
{{- end -}}
{{- $builtin := list $v.auth.secretKeys.superuserPassword $v.auth.secretKeys.replicationPassword $v.auth.secretKeys.appPassword $v.auth.secretKeys.apiToken $v.auth.secretKeys.monitorPassword -}}
{{- if ne (len (uniq $builtin)) 5 -}}
{{- $errors = append $errors "auth.secretKeys: the five key names must differ (superuserPassword, replicationPassword, appPassword, apiToken, monitorPassword): give each credential its own key" -}}
{{- end -}}
{{- if hasPrefix "pg_" (lower $v.auth.monitorUser) -}}
{{- $errors = append $errors (printf "auth.monitorUser %q starts with pg_, which PostgreSQL reserves for its own roles: choose another name, such as pga_monitor (it is made a member of pg_monitor)" $v.auth.monitorUser) -}}
{{- end -}}
{{- if has $v.auth.monitorUser (list $v.auth.superuser $v.auth.replicationUser $v.auth.appUser) -}}
{{- $errors = append $errors (printf "auth.monitorUser %q is also auth.superuser, auth.replicationUser or auth.appUser: the exporter needs a role of its own, with pg_monitor and nothing else; choose another name, such as pga_monitor" $v.auth.monitorUser) -}}
{{- end -}}
{{- $reserved := list $v.auth.superuser $v.auth.replicationUser $v.auth.monitorUser -}}
{{- $owners := list $v.auth.superuser -}}
{{- if $v.auth.appUser }}{{ $owners = append $owners $v.auth.appUser }}{{ end -}}
{{- range $i, $u := $v.users -}}
{{- if or (has $u.name $reserved) (eq $u.name $v.auth.appUser) -}}
{{- $errors = append $errors (printf "users[%d].name %q is already managed through auth.*: remove it from users" $i $u.name) -}}
{{- end -}}
{{- if and $u.passwordKey (has $u.passwordKey $builtin) -}}
{{- $errors = append $errors (printf "users[%d].passwordKey %q is one of auth.secretKeys: give the user its own key" $i $u.passwordKey) -}}
{{- end -}}
{{- $owners = append $owners $u.name -}}
{{- end -}}
{{- range $i, $d := $v.databases -}}
{{- if and $d.owner (not (has $d.owner $owners)) -}}
{{- $errors = append $errors (printf "databases[%d].owner %q is not a user this chart creates (auth.superuser, auth.appUser or users[].name)" $i $d.owner) -}}
{{- end -}}
{{- end -}}
{{- $errors = concat $errors (include "postgres.rolesErrors" . | fromJsonArray) -}}
{{- $errors = concat $errors (include "postgres.backupErrors" . | fromJsonArray) -}}
{{- $errors = concat $errors (include "postgres.parameterErrors" . | fromJsonArray) -}}
{{- $errors = concat $errors (include "postgres.sizeErrors" . | fromJsonArray) -}}
{{- if $errors -}}
{{- fail (printf "\n\nVALUES VALIDATION:\n  - %s\n" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}

{{/* postgres.bootstrapJson: bootstrap.json of the contract: the initdb options. Users and
databases are in roles.json (postgres.rolesJson, a ConfigMap of their own). */}}
{{- define "postgres.bootstrapJson" -}}
{{- $i := .Values.initdb -}}
{{- $initdb := dict "encoding" $i.encoding "locale" $i.locale "dataChecksums" $i.dataChecksums "args" (default (list) $i.args) -}}
{{- toJson (dict "initdb" $initdb) -}}
{{- end -}}

{{/* postgres.pgHba: pg_hba.conf of the contract: postgresql.pgHba, one rule per line (the
entrypoint appends them after its built-in rules). */}}
{{- define "postgres.pgHba" -}}
{{- range .Values.postgresql.pgHba }}{{ . }}
{{ end -}}
{{- end -}}

{{/* postgres.env: the PGA_* environment of docs/contract.md. Credentials only as *_FILE paths
(Vault's /vault/secrets or the projected Secret), never as values. */}}
{{- define "postgres.env" -}}
{{- $a := .Values.autopilot -}}
{{- $k := .Values.auth.secretKeys -}}
{{- $dir := include "postgres.secretDir" . -}}
- name: PGA_CLUSTER_NAME
  value: {{ include "postgres.fullname" . | quote }}
- name: PGA_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: PGA_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: PGA_POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: PGA_MEMBER_SELECTOR
  value: {{ include "postgres.memberSelector" . | quote }}
- name: PGA_DATA_DIR
  value: /var/lib/postgresql/data/pgdata
{{- if .Values.persistence.wal.enabled }}
- name: PGA_WAL_DIR
  value: /var/lib/postgresql/wal/pg_wal
{{- end }}
- name: PGA_RUN_DIR
  value: /var/run/postgresql
- name: PGA_PG_PORT
  value: "5432"
- name: PGA_API_PORT
  value: "8008"
- name: PGA_METRICS_PORT
  value: {{ .Values.metrics.autopilotPort | int64 | toString | quote }}
- name: PGA_CONFIG_DIR
  value: /etc/pg-autopilot
- name: PGA_SECRETS_DIR
  value: {{ $dir }}
- name: PGA_ROLES_SECRETS_DIR
  value: {{ include "postgres.rolesSecretDir" . }}
- name: PGA_LOOP_SECONDS
  value: {{ $a.loopSeconds | toString | quote }}
- name: PGA_LEASE_SECONDS
  value: {{ int64 $a.leaseSeconds | toString | quote }}
- name: PGA_RENEW_SECONDS
  value: {{ $a.renewSeconds | toString | quote }}
- name: PGA_RENEW_DEADLINE_SECONDS
  value: {{ $a.renewDeadlineSeconds | toString | quote }}
- name: PGA_MAX_LAG_BYTES
  value: {{ int64 $a.maxLagBytes | toString | quote }}
- name: PGA_FAILSAFE
  value: {{ $a.failsafe | toString | quote }}
- name: PGA_SYNC_MODE
  value: {{ include "postgres.syncMode" . | quote }}
- name: PGA_SYNC_COUNT
  value: {{ int64 .Values.replication.syncCount | toString | quote }}
- name: PGA_MAX_SLOT_WAL_KEEP_SIZE
  value: {{ include "postgres.maxSlotWalKeepSize" . | quote }}
- name: PGA_REPLICA_BOOTSTRAP_FROM
  value: {{ .Values.replication.bootstrapFrom | quote }}
- name: PGA_LOG_FORMAT
  value: {{ $a.logFormat | quote }}
- name: PGA_LOG_LEVEL
  value: {{ $a.logLevel | quote }}
- name: PGA_SUPERUSER
  value: {{ .Values.auth.superuser | quote }}
- name: PGA_SUPERUSER_PASSWORD_FILE
  value: {{ printf "%s/%s" $dir $k.superuserPassword }}
- name: PGA_REPLICATION_USER
  value: {{ .Values.auth.replicationUser | quote }}
- name: PGA_REPLICATION_PASSWORD_FILE
  value: {{ printf "%s/%s" $dir $k.replicationPassword }}
- name: PGA_APP_USER
  value: {{ .Values.auth.appUser | quote }}
{{- if .Values.auth.appUser }}
- name: PGA_APP_PASSWORD_FILE
  value: {{ printf "%s/%s" $dir $k.appPassword }}
- name: PGA_APP_DATABASE
  value: {{ .Values.auth.appDatabase | quote }}
{{- end }}
- name: PGA_API_TOKEN_FILE
  value: {{ printf "%s/%s" $dir $k.apiToken }}
{{- if .Values.metrics.enabled }}
- name: PGA_MONITOR_USER
  value: {{ .Values.auth.monitorUser | quote }}
- name: PGA_MONITOR_PASSWORD_FILE
  value: {{ printf "%s/%s" $dir $k.monitorPassword }}
{{- end }}
{{- if .Values.tls.enabled }}
- name: PGA_TLS_CERT_FILE
  value: /etc/pg-autopilot/tls/tls.crt
- name: PGA_TLS_KEY_FILE
  value: /etc/pg-autopilot/tls/tls.key
{{- if .Values.tls.includeCA }}
- name: PGA_TLS_CA_FILE
  value: /etc/pg-autopilot/tls/ca.crt
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* postgres.liveConfigKeys: the ConfigMap keys the members apply while they run (the kubelet
updates the mounted files in place, about a minute after an upgrade): they stay out of the pod
template's checksum, so changing them restarts no pod. parameters.json: reloaded, and only
parameters postgres applies at a restart roll the members, primary last (docs: README,
"Parameters changed live"). */}}
{{- define "postgres.liveConfigKeys" -}}
{{- list "parameters.json" | toJson -}}
{{- end -}}

{{/* postgres.configChecksum: sha256 of the ConfigMap's data without the live keys; a change of
anything else (pg_hba.conf, backup.json …) changes the pod template and restarts the members. */}}
{{- define "postgres.configChecksum" -}}
{{- $cm := include (print .Template.BasePath "/configmap.yaml") . | fromYaml -}}
{{- $live := include "postgres.liveConfigKeys" . | fromJsonArray -}}
{{- $data := dict -}}
{{- range $k, $v := $cm.data | default dict -}}
{{- if not (has $k $live) -}}{{- $_ := set $data $k $v -}}{{- end -}}
{{- end -}}
{{- $data | toJson | sha256sum -}}
{{- end -}}

{{/* postgres.configVolume: one projected volume at /etc/pg-autopilot holding the ConfigMap files,
initdb.d/*.sql, secrets/<key> (unless Vault), the backup repositories' secrets and CA bundles
(postgres.backupVolumeSources) and tls/* (tls.enabled). Mode 0440 with the pod's
fsGroup (10001 by default, or the one the platform assigns): readable by postgres, and a root-owned key file PostgreSQL accepts. */}}
{{- define "postgres.configVolume" -}}
- name: config
  projected:
    defaultMode: 0440
    sources:
      - configMap:
          name: {{ include "postgres.fullname" . }}
          items:
            - key: parameters.json
              path: parameters.json
            - key: pg_hba.conf
              path: pg_hba.conf
            - key: bootstrap.json
              path: bootstrap.json
            {{- if .Values.backup.enabled }}
            - key: backup.json
              path: backup.json
            {{- end }}
            {{- if .Values.bootstrap.fromBackup.enabled }}
            - key: restore.json
              path: restore.json
            {{- end }}
            {{- range $name, $_ := .Values.initdb.scripts }}
            - key: initdb-{{ $name }}
              path: initdb.d/{{ $name }}
            {{- end }}
      {{- if not .Values.vault.enabled }}
      # the built-in credentials only: users' passwordKeys are in the role-secrets volume
      - secret:
          name: {{ include "postgres.secretName" . }}
          items:
            {{- range $key := include "postgres.builtinCredentialKeys" . | fromJsonArray }}
            - key: {{ $key }}
              path: secrets/{{ $key }}
            {{- end }}
      {{- end }}
      {{- if .Values.tls.enabled }}
      - secret:
          name: {{ .Values.tls.existingSecret }}
          items:
            - key: tls.crt
              path: tls/tls.crt
            - key: tls.key
              path: tls/tls.key
            {{- if .Values.tls.includeCA }}
            - key: ca.crt
              path: tls/ca.crt
            {{- end }}
      {{- end }}
      {{- with include "postgres.backupVolumeSources" . | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      # last: users and databases: outside checksum/config, refreshed in place by the kubelet
      - configMap:
          name: {{ include "postgres.fullname" . }}-roles
          items:
            - key: roles.json
              path: roles.json
{{- include "postgres.rolesSecretVolume" . }}
{{- end -}}

{{/* postgres.affinity: the affinity value as it is when set (a full override); else pod
anti-affinity between members over podAntiAffinityTopologyKey: preferred (soft, the default: a
small cluster still schedules) or required (hard). */}}
{{- define "postgres.affinity" -}}
{{- if .Values.affinity -}}
{{- toYaml .Values.affinity -}}
{{- else -}}
podAntiAffinity:
  {{- if eq .Values.podAntiAffinity "hard" }}
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: {{ .Values.podAntiAffinityTopologyKey }}
      labelSelector:
        matchLabels:
          {{- include "postgres.selectorLabels" . | nindent 10 }}
  {{- else }}
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: {{ .Values.podAntiAffinityTopologyKey }}
        labelSelector:
          matchLabels:
            {{- include "postgres.selectorLabels" . | nindent 12 }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/* postgres.topologySpreadConstraints: topologySpreadConstraints, each defaulting its
labelSelector to this cluster's pods. */}}
{{- define "postgres.topologySpreadConstraints" -}}
{{- $sel := include "postgres.selectorLabels" . | fromYaml -}}
{{- $out := list -}}
{{- range .Values.topologySpreadConstraints -}}
{{- $c := deepCopy . -}}
{{- if not $c.labelSelector }}{{ $_ := set $c "labelSelector" (dict "matchLabels" $sel) }}{{ end -}}
{{- $out = append $out $c -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* postgres.probe: an HTTP probe against the autopilot API (port 8008). Call with
(dict "path" "/healthz" "p" .Values.probes.liveness). */}}
{{- define "postgres.probe" -}}
httpGet:
  path: {{ .path }}
  port: api
periodSeconds: {{ .p.periodSeconds }}
timeoutSeconds: {{ .p.timeoutSeconds }}
failureThreshold: {{ .p.failureThreshold }}
{{- end -}}

{{/* postgres.containerSecurityContext, postgres.podSecurityContext: in _security.tpl. */}}

{{/* postgres.pvcSpec: the spec of one volumeClaimTemplate. Call with
(dict "size" ... "storageClass" ... "p" .Values.persistence). */}}
{{- define "postgres.pvcSpec" -}}
accessModes:
  {{- toYaml .p.accessModes | nindent 2 }}
{{- if eq .storageClass "-" }}
storageClassName: ""
{{- else if .storageClass }}
storageClassName: {{ .storageClass }}
{{- end }}
{{- with .selector }}
selector:
  {{- toYaml . | nindent 2 }}
{{- end }}
resources:
  requests:
    storage: {{ .size }}
{{- end -}}

{{/* postgres.clientLabel: the pod label ("<fullname>-client", value "true") that admits a pod of
the release namespace to PostgreSQL under the NetworkPolicy. */}}
{{- define "postgres.clientLabel" -}}
{{- printf "%s-client" (include "postgres.fullname" .) -}}
{{- end -}}
