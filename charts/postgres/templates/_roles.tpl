{{/* postgres.rolesJson: roles.json of the contract: the declared users (name, ensure, passwordKey
when set, options, inRoles, connectionLimit) and databases (name, owner defaulting to the
superuser, ensure, connectionLimit). It lives in a ConfigMap of its own (configmap-roles.yaml),
outside what the pod template's checksum/config hashes: the primary keeps users and databases in
sync while it runs, so changing them restarts no member. */}}
{{- define "postgres.rolesJson" -}}
{{- $users := list -}}
{{- range .Values.users -}}
{{- $u := dict "name" .name "ensure" (default "present" .ensure) "options" (default (list) .options) "inRoles" (default (list) .inRoles) -}}
{{- if .passwordKey }}{{ $_ := set $u "passwordKey" .passwordKey }}{{ end -}}
{{- if hasKey . "connectionLimit" }}{{ $_ := set $u "connectionLimit" .connectionLimit }}{{ end -}}
{{- $users = append $users $u -}}
{{- end -}}
{{- $dbs := list -}}
{{- range .Values.databases -}}
{{- $d := dict "name" .name "owner" (default $.Values.auth.superuser .owner) "ensure" (default "present" .ensure) -}}
{{- if hasKey . "connectionLimit" }}{{ $_ := set $d "connectionLimit" .connectionLimit }}{{ end -}}
{{- $dbs = append $dbs $d -}}
{{- end -}}
{{- toJson (dict "users" $users "databases" $dbs) -}}
{{- end -}}

{{/* postgres.rolesErrors: users/databases the schema cannot judge, in words (a JSON list). */}}
{{- define "postgres.rolesErrors" -}}
{{- $v := .Values -}}
{{- $errors := list -}}
{{- $seen := list -}}
{{- $absent := list -}}
{{- range $i, $u := $v.users -}}
{{- if has $u.name $seen -}}
{{- $errors = append $errors (printf "users[%d].name %q appears twice: declare each role once" $i $u.name) -}}
{{- end -}}
{{- $seen = append $seen $u.name -}}
{{- if eq (default "present" $u.ensure) "absent" }}{{ $absent = append $absent $u.name }}{{ end -}}
{{- if has $u.name (default (list) $u.inRoles) -}}
{{- $errors = append $errors (printf "users[%d].inRoles lists %q itself: a role cannot be a member of itself" $i $u.name) -}}
{{- end -}}
{{- if hasPrefix "pg_" (lower $u.name) -}}
{{- $errors = append $errors (printf "users[%d].name %q starts with pg_, which PostgreSQL reserves for its own roles: choose another name (to grant one, list it in inRoles)" $i $u.name) -}}
{{- end -}}
{{- end -}}
{{- $dbSeen := list -}}
{{- range $i, $d := $v.databases -}}
{{- if has $d.name $dbSeen -}}
{{- $errors = append $errors (printf "databases[%d].name %q appears twice: declare each database once" $i $d.name) -}}
{{- end -}}
{{- $dbSeen = append $dbSeen $d.name -}}
{{- if has $d.name (list "postgres" "template0" "template1") -}}
{{- $errors = append $errors (printf "databases[%d].name %q is a database PostgreSQL creates itself: remove it" $i $d.name) -}}
{{- end -}}
{{- if and $v.auth.appUser (eq $d.name $v.auth.appDatabase) -}}
{{- $errors = append $errors (printf "databases[%d].name %q is auth.appDatabase, which the chart creates for auth.appUser: remove it from databases" $i $d.name) -}}
{{- end -}}
{{- if and (ne (default "present" $d.ensure) "absent") $d.owner (has $d.owner $absent) -}}
{{- $errors = append $errors (printf "databases[%d].owner %q is declared ensure: absent in users: give the database another owner or keep the role" $i $d.owner) -}}
{{- end -}}
{{- end -}}
{{- toJson $errors -}}
{{- end -}}

{{/* postgres.rolesSecretDir: where users[].passwordKey files are (PGA_ROLES_SECRETS_DIR): the
whole credentials Secret mounted without an items list, so that a key added for a new user, or a
password changed, appears there in place and the pod template does not change with users; with
Vault, the Agent's /vault/secrets (pre-populated at pod start: see the README). */}}
{{- define "postgres.rolesSecretDir" -}}
{{- if .Values.vault.enabled -}}/vault/secrets{{- else -}}/etc/pg-autopilot-roles{{- end -}}
{{- end -}}

{{/* postgres.rolesSecretVolume / rolesSecretMount: that Secret volume (none with Vault). */}}
{{- define "postgres.rolesSecretVolume" -}}
{{- if not .Values.vault.enabled }}
- name: role-secrets
  secret:
    secretName: {{ include "postgres.secretName" . }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "postgres.rolesSecretMount" -}}
{{- if not .Values.vault.enabled }}
- name: role-secrets
  mountPath: /etc/pg-autopilot-roles
  readOnly: true
{{- end }}
{{- end -}}
