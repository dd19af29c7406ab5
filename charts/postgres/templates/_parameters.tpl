{{/* postgres.parameterErrors: postgresql.parameters the autopilot owns or refuses, as a JSON list
of sentences (postgres.validateValues fails with them). The list is postgres.parameterRules
(_parameters-list.tpl, generated from scripts/core/parameters.ts); the checks below are those of
parameterProblems() there, sentence for sentence: names compared case-insensitively as PostgreSQL
compares them, values as the entrypoint sees them (booleans on/off). test/chart/parameters.mjs
fails when the two disagree. */}}
{{- define "postgres.parameterErrors" -}}
{{- $data := include "postgres.parameterRules" . | fromJson -}}
{{- $params := .Values.postgresql.parameters -}}
{{- $backupOn := .Values.backup.enabled -}}
{{- $errors := list -}}
{{- $seen := dict -}}
{{- range $k, $raw := $params -}}
{{- $s := include "postgres.parameterValue" $raw -}}
{{- $n := lower $k -}}
{{- $shown := include "postgres.jsonString" $s -}}
{{- if not (regexMatch "^[A-Za-z_][A-Za-z0-9_.]*$" $k) -}}
{{- $errors = append $errors (printf "postgresql.parameters: %s is not a PostgreSQL parameter name: names are letters, digits, _ and ., starting with a letter or _ (e.g. work_mem, TimeZone, auto_explain.log_min_duration); correct it" (include "postgres.jsonString" $k)) -}}
{{- end -}}
{{- if hasKey $seen $n -}}
{{- $errors = append $errors (printf "postgresql.parameters.%s = %s is refused: it is the same parameter as %s (PostgreSQL ignores case in parameter names). Instead: keep only one of them" $k $shown (get $seen $n)) -}}
{{- else -}}
{{- $_ := set $seen $n $k -}}
{{- end -}}
{{- if regexMatch "[\n\r\x00]" $s -}}
{{- $errors = append $errors (printf "postgresql.parameters.%s = %s is refused: %s. Instead: write it on one line" $k $shown $data.noNewlines) -}}
{{- end -}}
{{- $rules := list -}}
{{- $owning := list -}}
{{- range $r := $data.rules -}}
{{- if and (eq $r.name $n) (or (ne $r.kind "backup") $backupOn) -}}
{{- $rules = append $rules $r -}}
{{- if eq $r.kind "backup" }}{{ $owning = append $owning $r }}{{ end -}}
{{- end -}}
{{- end -}}
{{- range $r := (ternary $owning $rules (gt (len $owning) 0)) -}}
{{- if not (and (eq $r.kind "restricted") (eq (include "postgres.parameterAccepted" (dict "a" $r.accepted "s" $s "params" $params)) "true")) -}}
{{- $errors = append $errors (printf "postgresql.parameters.%s = %s is refused: %s. Instead: %s" $k $shown $r.because $r.instead) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $errors -}}
{{- end -}}

{{/* postgres.parameterValue: a parameter value as the entrypoint reads it from parameters.json:
booleans as on/off, whole numbers without an exponent, strings as they are. */}}
{{- define "postgres.parameterValue" -}}
{{- if kindIs "bool" . -}}{{ ternary "on" "off" . }}
{{- else if and (kindIs "float64" .) (eq (float64 .) (floor .)) (lt (float64 .) 1e15) (gt (float64 .) -1e15) -}}{{ printf "%d" (int64 .) }}
{{- else -}}{{ toString . }}
{{- end -}}
{{- end -}}

{{/* postgres.jsonString: a string quoted as JSON.stringify quotes it (toJson, without Go's HTML
escapes). */}}
{{- define "postgres.jsonString" -}}
{{- toJson (toString .) | replace "\\u003c" "<" | replace "\\u003e" ">" | replace "\\u0026" "&" -}}
{{- end -}}

{{/* postgres.parameterAccepted: "true" when .s (a value) is accepted by .a (a restricted entry's
accepted), .params being all the parameters (for "needs"). */}}
{{- define "postgres.parameterAccepted" -}}
{{- $a := .a -}}
{{- $v := lower (trim .s) -}}
{{- if eq $a.kind "values" -}}{{ has $v $a.values }}
{{- else if eq $a.kind "integer" -}}{{ and (regexMatch "^\\s*-?[0-9]+\\s*$" .s) (ge (float64 (atoi (trim .s))) (float64 $a.min)) }}
{{- else if eq $a.kind "pattern" -}}{{ regexMatch $a.pattern .s }}
{{- else if eq $a.kind "needs" -}}
{{- $set := false -}}
{{- range $k, $x := .params -}}
{{- if and (has (lower $k) $a.needs) (ne (trim (include "postgres.parameterValue" $x)) "") }}{{ $set = true }}{{ end -}}
{{- end -}}
{{- or (not (has $v $a.when)) $set -}}
{{- else -}}false
{{- end -}}
{{- end -}}

{{/* postgres.parameter: the value of postgresql.parameters.<.name> under any spelling of the
name (PostgreSQL ignores case), as the entrypoint reads it; empty when unset. */}}
{{- define "postgres.parameter" -}}
{{- $want := lower .name -}}
{{- range $k, $x := .root.Values.postgresql.parameters -}}
{{- if eq (lower $k) $want }}{{ include "postgres.parameterValue" $x }}{{ end -}}
{{- end -}}
{{- end -}}
