{{/* postgres.sizeErrors: sizes checked here rather than by a schema pattern, so that a wrong one
is refused in words (helm prints a schema pattern as the raw regular expression). A JSON list of
sentences; postgres.validateValues fails with them. postgres.sizePaths lists every value the
schema types as a Kubernetes quantity (definitions size and sizeOrEmpty); test/chart/sizes.mjs
fails when it misses one. */}}
{{- define "postgres.sizePaths" -}}
resources.requests.memory resources.requests.ephemeral-storage resources.limits.memory resources.limits.ephemeral-storage
persistence.size persistence.wal.size persistence.emptyDir.sizeLimit
metrics.resources.requests.memory metrics.resources.requests.ephemeral-storage metrics.resources.limits.memory metrics.resources.limits.ephemeral-storage
tests.resources.requests.memory tests.resources.requests.ephemeral-storage tests.resources.limits.memory tests.resources.limits.ephemeral-storage
{{- end -}}

{{/* Values that may be empty (empty: no limit / not set). */}}
{{- define "postgres.sizePathsOptional" -}}
persistence.emptyDir.sizeLimit
{{- end -}}

{{- define "postgres.sizeErrors" -}}
{{- $errors := list -}}
{{- $optional := splitList " " (include "postgres.sizePathsOptional" .) -}}
{{- range $path := regexSplit "\\s+" (include "postgres.sizePaths" .) -1 -}}
{{- $x := $.Values -}}
{{- $present := true -}}
{{- range $key := splitList "." $path -}}
{{- if and (kindIs "map" $x) (hasKey $x $key) }}{{ $x = index $x $key }}{{ else }}{{ $present = false }}{{ end -}}
{{- end -}}
{{- if and $present (kindIs "string" $x) -}}
{{- if and (eq $x "") (not (has $path $optional)) -}}
{{- $errors = append $errors (printf "%s is empty: give a size with a unit, e.g. 10Gi or 512Mi, or remove the key" $path) -}}
{{- else if and (ne $x "") (not (regexMatch "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)$" $x)) -}}
{{- $errors = append $errors (printf "%s %q is not a Kubernetes quantity: write a positive number and a unit, e.g. 10Gi or 512Mi (binary units Ki, Mi, Gi, Ti, Pi, Ei; decimal k, M, G, T, P, E)" $path $x) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $keep := toString .Values.replication.maxSlotWalKeepSize -}}
{{- if not (include "postgres.slotKeepSizeValid" .) -}}
{{- $errors = append $errors (printf "replication.maxSlotWalKeepSize %q is not a PostgreSQL size: write a whole number of MB, GB or TB, e.g. 2560MB or 4GB (PostgreSQL units, not Kubernetes' Mi or Gi); leave it empty for a quarter of the volume that holds pg_wal, or set \"-1\" for unlimited" $keep) -}}
{{- end -}}
{{- toJson $errors -}}
{{- end -}}

{{/* postgres.slotKeepSizeValid: "true" when replication.maxSlotWalKeepSize is empty, -1, or a
whole number (1 to 10 digits) of MB, GB or TB; empty otherwise. */}}
{{- define "postgres.slotKeepSizeValid" -}}
{{- $keep := toString .Values.replication.maxSlotWalKeepSize -}}
{{- if or (eq $keep "") (eq $keep "-1") (regexMatch "^[1-9][0-9]{0,9}(MB|GB|TB)$" $keep) }}true{{ end -}}
{{- end -}}
