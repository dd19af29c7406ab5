{{/*
Security of the pods the chart renders (README, "Security"): the pod and container security
contexts from values, ephemeral-storage, and the ServiceAccount token, projected only into the
postgres container (the pods set automountServiceAccountToken: false).
*/}}

{{/* postgres.withoutNulls: a map as YAML without its null entries, one level down too (a value set
to null removes a default, e.g. podSecurityContext.runAsUser for an arbitrary uid). */}}
{{- define "postgres.withoutNulls" -}}
{{- $out := dict -}}
{{- range $k, $v := . -}}
{{- if kindIs "map" $v -}}
{{- $inner := dict -}}
{{- range $ik, $iv := $v }}{{ if not (kindIs "invalid" $iv) }}{{ $_ := set $inner $ik $iv }}{{ end }}{{ end -}}
{{- $_ := set $out $k $inner -}}
{{- else if not (kindIs "invalid" $v) -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- if $out }}{{ toYaml $out }}{{ else }}{}{{ end -}}
{{- end -}}

{{/* postgres.containerSecurityContext: containerSecurityContext, every container of the chart
(postgres, metrics, the helm test pod). */}}
{{- define "postgres.containerSecurityContext" -}}
{{- include "postgres.withoutNulls" .Values.containerSecurityContext -}}
{{- end -}}

{{/* postgres.podSecurityContext: podSecurityContext, the member pods and the helm test pod. */}}
{{- define "postgres.podSecurityContext" -}}
{{- include "postgres.withoutNulls" .Values.podSecurityContext -}}
{{- end -}}

{{/* postgres.dataInEphemeralStorage: "true" when the data directory is a disk-backed emptyDir, so
it counts toward the pod's ephemeral-storage (a memory-backed one counts toward memory). */}}
{{- define "postgres.dataInEphemeralStorage" -}}
{{- $p := .Values.persistence -}}
{{- if and (not $p.enabled) (ne $p.emptyDir.medium "Memory") }}true{{ end -}}
{{- end -}}

{{/* postgres.containerResources: a container's resources, with ephemeral-storage fitted to a
disk-backed data emptyDir, which counts toward the pod's ephemeral-storage limit (the sum of its
containers' limits; the kubelet evicts the pod, and so loses the member's data, past it). Call with
(dict "root" $ "r" <resources> "data" <true for the postgres container>). With a sizeLimit, the
postgres container's ephemeral-storage request and limit grow by it; without one the data is
unbounded, so no chart container sets an ephemeral-storage limit (requests stay). */}}
{{- define "postgres.containerResources" -}}
{{- $r := deepCopy (default dict .r) -}}
{{- if include "postgres.dataInEphemeralStorage" .root -}}
{{- $size := .root.Values.persistence.emptyDir.sizeLimit -}}
{{- if not $size -}}
{{- with $r.limits }}{{ $_ := unset . "ephemeral-storage" }}{{ end -}}
{{- else if .data -}}
{{- $dataMB := float64 (include "postgres.quantityMB" $size) -}}
{{- range $kind := list "requests" "limits" -}}
{{- $l := index $r $kind -}}
{{- if and $l (index $l "ephemeral-storage") -}}
{{- $sum := addf (float64 (include "postgres.quantityMB" (index $l "ephemeral-storage"))) $dataMB -}}
{{- $_ := set $l "ephemeral-storage" (printf "%dMi" (int64 (ceil $sum))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (hasKey $r "limits") (not $r.limits) }}{{ $_ := unset $r "limits" }}{{ end -}}
{{- if $r }}{{ toYaml $r }}{{ end -}}
{{- end -}}

{{/* postgres.tokenVolumeName: the projected ServiceAccount token volume. */}}
{{- define "postgres.tokenVolumeName" -}}serviceaccount-token{{- end -}}

{{/* postgres.tokenVolume: what the kubelet would mount pod-wide with automountServiceAccountToken
(a bound token it rotates, the cluster CA, the namespace), as a volume the chart mounts into the
postgres container only, at the path scripts/shell/kube.ts reads (token re-read every minute). */}}
{{- define "postgres.tokenVolume" -}}
- name: {{ include "postgres.tokenVolumeName" . }}
  projected:
    defaultMode: 0444
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 3607
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                apiVersion: v1
                fieldPath: metadata.namespace
{{- end -}}

{{/* postgres.tokenVolumeMount: the token volume at the standard in-cluster path. */}}
{{- define "postgres.tokenVolumeMount" -}}
- name: {{ include "postgres.tokenVolumeName" . }}
  mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  readOnly: true
{{- end -}}
