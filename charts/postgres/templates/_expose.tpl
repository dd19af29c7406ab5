{{/*
Exposure: the read-write and read-only Services, and what the NetworkPolicy must admit for them.
Each client Service takes its own settings from service.rw / service.ro, falling back to the
shared service.* values (the older shape: service.type, service.annotations, service.nodePorts.*,
service.loadBalancerSourceRanges, service.loadBalancerClass), so both spellings keep working.
*/}}

{{/* postgres.clientServices: JSON list of the enabled client Services with their effective
settings: suffix (rw|ro), role (the pod label they select), what (words for messages), key (the
values key), type, annotations, nodePort (0: assigned), nodePortFrom (the value that set it),
loadBalancerSourceRanges, rangesFrom, loadBalancerClass, externalTrafficPolicy ("": not
rendered). A shared LoadBalancer-only value applies only to Services of type LoadBalancer.
externalTrafficPolicy defaults to Local for NodePort/LoadBalancer while the NetworkPolicy is on:
the policy matches client addresses, and Cluster lets a node forward with its own address. */}}
{{- define "postgres.clientServices" -}}
{{- $s := .Values.service -}}
{{- $out := list -}}
{{- range $d := list (dict "suffix" "rw" "role" "primary" "what" "read-write" "legacy" "readWrite") (dict "suffix" "ro" "role" "replica" "what" "read-only" "legacy" "readOnly") -}}
{{- $o := get $s $d.suffix -}}
{{- if $o.enabled -}}
{{- $key := printf "service.%s" $d.suffix -}}
{{- $type := $o.type | default $s.type -}}
{{- $external := or (eq $type "NodePort") (eq $type "LoadBalancer") -}}
{{- $nodePort := 0 -}}{{- $nodePortFrom := "" -}}
{{- if $o.nodePort }}{{ $nodePort = int $o.nodePort }}{{ $nodePortFrom = printf "%s.nodePort" $key }}
{{- else if get $s.nodePorts $d.legacy }}{{ $nodePort = int (get $s.nodePorts $d.legacy) }}{{ $nodePortFrom = printf "service.nodePorts.%s" $d.legacy }}{{ end -}}
{{- $ranges := list -}}{{- $rangesFrom := "" -}}
{{- if $o.loadBalancerSourceRanges }}{{ $ranges = $o.loadBalancerSourceRanges }}{{ $rangesFrom = printf "%s.loadBalancerSourceRanges" $key }}
{{- else if and (eq $type "LoadBalancer") $s.loadBalancerSourceRanges }}{{ $ranges = $s.loadBalancerSourceRanges }}{{ $rangesFrom = "service.loadBalancerSourceRanges" }}{{ end -}}
{{- $class := $o.loadBalancerClass -}}
{{- if and (not $class) (eq $type "LoadBalancer") }}{{ $class = $s.loadBalancerClass }}{{ end -}}
{{- $etp := $o.externalTrafficPolicy -}}
{{- if and (not $etp) $external }}{{ $etp = $s.externalTrafficPolicy }}{{ end -}}
{{- if and (not $etp) $external $.Values.networkPolicy.enabled }}{{ $etp = "Local" }}{{ end -}}
{{- $out = append $out (dict "suffix" $d.suffix "role" $d.role "what" $d.what "key" $key "type" $type "external" $external
      "annotations" (merge (deepCopy ($o.annotations | default dict)) ($s.annotations | default dict))
      "nodePort" $nodePort "nodePortFrom" $nodePortFrom "loadBalancerSourceRanges" $ranges "rangesFrom" $rangesFrom
      "loadBalancerClass" $class "externalTrafficPolicy" $etp) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* postgres.metricsScraped: "true" when something scrapes metrics.autopilotPort/9187 (the exporter or a monitor). */}}
{{- define "postgres.metricsScraped" -}}
{{- $m := .Values.metrics -}}
{{- if or $m.enabled $m.serviceMonitor.enabled $m.podMonitor.enabled }}true{{ end -}}
{{- end -}}

{{/* postgres.exposeErrors: JSON list of sentences naming the values (postgres.validateValues
fails with them). */}}
{{- define "postgres.exposeErrors" -}}
{{- $v := .Values -}}
{{- $s := $v.service -}}
{{- $errors := list -}}
{{- $np := $v.networkPolicy -}}
{{- $ipBlocks := list -}}
{{- range $np.ingressFrom }}{{ if .ipBlock }}{{ $ipBlocks = append $ipBlocks . }}{{ end }}{{ end -}}
{{- $anyLB := false -}}{{- $anyExternal := false -}}
{{- range $d := list (dict "suffix" "rw" "what" "read-write" "legacy" "readWrite") (dict "suffix" "ro" "what" "read-only" "legacy" "readOnly") -}}
{{- $o := get $s $d.suffix -}}
{{- $key := printf "service.%s" $d.suffix -}}
{{- $type := $o.type | default $s.type -}}
{{- if and $o.nodePort (get $s.nodePorts $d.legacy) -}}
{{- $errors = append $errors (printf "%s.nodePort and service.nodePorts.%s are both set: keep %s.nodePort and remove the older service.nodePorts.%s" $key $d.legacy $key $d.legacy) -}}
{{- end -}}
{{- if $o.enabled -}}
{{- if eq $type "LoadBalancer" }}{{ $anyLB = true }}{{ end -}}
{{- if or (eq $type "NodePort") (eq $type "LoadBalancer") }}{{ $anyExternal = true }}{{ end -}}
{{- if and (eq $type "ClusterIP") (or $o.nodePort (get $s.nodePorts $d.legacy)) -}}
{{- $errors = append $errors (printf "a node port is set for the %s Service (%s.nodePort or service.nodePorts.%s) but its type is ClusterIP: set %s.type (or service.type) to NodePort or LoadBalancer, or remove the node port" $d.what $key $d.legacy $key) -}}
{{- end -}}
{{- if and (ne $type "LoadBalancer") (or $o.loadBalancerSourceRanges $o.loadBalancerClass) -}}
{{- $errors = append $errors (printf "%s.loadBalancerSourceRanges/loadBalancerClass are set but the %s Service's type is %s: they need LoadBalancer; for NodePort, admit clients with ipBlock peers in networkPolicy.ingressFrom" $key $d.what $type) -}}
{{- end -}}
{{- if and (eq $type "ClusterIP") $o.externalTrafficPolicy -}}
{{- $errors = append $errors (printf "%s.externalTrafficPolicy is set but the %s Service's type is ClusterIP: it only applies to NodePort and LoadBalancer" $key $d.what) -}}
{{- end -}}
{{- $ranges := $o.loadBalancerSourceRanges | default (ternary $s.loadBalancerSourceRanges list (eq $type "LoadBalancer")) -}}
{{- if and $np.enabled (or (eq $type "NodePort") (eq $type "LoadBalancer")) (not $ranges) (not $ipBlocks) -}}
{{- $how := ternary (printf "set the client CIDRs in %s.loadBalancerSourceRanges or service.loadBalancerSourceRanges (the load balancer and the NetworkPolicy both admit them), or add" $key) "add" (eq $type "LoadBalancer") -}}
{{- $errors = append $errors (printf "the %s Service is of type %s but nothing says which outside clients may connect, and the NetworkPolicy admits only labelled pods of the namespace (outside clients would time out): %s ipBlock peers to networkPolicy.ingressFrom (e.g. - ipBlock: {cidr: 203.0.113.0/24}; cidr 0.0.0.0/0 admits everyone), or set networkPolicy.enabled to false" $d.what $type $how) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $shared := and (ne $s.type "LoadBalancer") (or $s.loadBalancerSourceRanges $s.loadBalancerClass) -}}
{{- if and $shared (not $anyLB) -}}
{{- $errors = append $errors (printf "service.loadBalancerSourceRanges/loadBalancerClass are set but no enabled Service is of type LoadBalancer (service.type is %s): they need LoadBalancer" $s.type) -}}
{{- end -}}
{{- if and $s.externalTrafficPolicy (not $anyExternal) -}}
{{- $errors = append $errors "service.externalTrafficPolicy is set but no enabled Service is of type NodePort or LoadBalancer: it only applies to those" -}}
{{- end -}}
{{- range $d := list (dict "suffix" "rw" "what" "writes a row through the read-write Service") (dict "suffix" "ro" "what" "reads the row back through the read-only Service") -}}
{{- if and $v.tests.enabled (not (get $s $d.suffix).enabled) (or (eq $d.suffix "rw") (gt (int $v.replicas) 1)) -}}
{{- $errors = append $errors (printf "service.%s.enabled is false but tests.enabled is true: the helm test pod %s; set tests.enabled to false, or keep the Service" $d.suffix $d.what) -}}
{{- end -}}
{{- end -}}
{{- if and $np.enabled (include "postgres.metricsScraped" .) (not $np.metricsFrom) -}}
{{- $errors = append $errors "metrics are on (metrics.enabled, metrics.serviceMonitor.enabled or metrics.podMonitor.enabled) but networkPolicy.metricsFrom is empty: scraping needs the metrics ports (metrics.autopilotPort, and 9187 for the exporter), and the NetworkPolicy will not open them to every source; name the scraper in networkPolicy.metricsFrom (e.g. - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}), or set networkPolicy.enabled to false" -}}
{{- end -}}
{{- $ap := int64 $v.metrics.autopilotPort -}}
{{- range $d := list (dict "port" 5432 "what" "PostgreSQL") (dict "port" 8008 "what" "the autopilot API, which must stay members-only") (dict "port" 9187 "what" "the postgres_exporter") -}}
{{- if eq $ap (int64 $d.port) -}}
{{- $errors = append $errors (printf "metrics.autopilotPort is %d, the port of %s: the autopilot's metrics need a port of their own; choose another, such as 9188" $ap $d.what) -}}
{{- end -}}
{{- end -}}
{{- toJson $errors -}}
{{- end -}}
