{{/*
Chart name, truncated to 63 characters (a DNS label).
*/}}
{{- define "sessiongate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources: <release>-<chart>, or <release> when it already contains the
chart name, or fullnameOverride.
*/}}
{{- define "sessiongate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart label value: name-version.
*/}}
{{- define "sessiongate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "sessiongate.labels" -}}
helm.sh/chart: {{ include "sessiongate.chart" . }}
{{ include "sessiongate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the pods (Deployment, Service, PDB, NetworkPolicy, ServiceMonitor).
*/}}
{{- define "sessiongate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sessiongate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Container ports. The chart always makes the gateway listen on them (config listen / admin.listen).
*/}}
{{- define "sessiongate.httpPort" -}}8080{{- end }}
{{- define "sessiongate.adminPort" -}}9090{{- end }}

{{/*
Name of the Secret the environment variables come from.
*/}}
{{- define "sessiongate.secretName" -}}
{{- if .Values.secrets.create }}
{{- if .Values.secrets.existingSecret }}
{{- fail "set either secrets.existingSecret or secrets.create: true, not both" }}
{{- end }}
{{- include "sessiongate.fullname" . }}
{{- else }}
{{- required "secrets.existingSecret is required: create a Secret with the keys client-secret, session-key and admin-token (see the chart's README.md) and set secrets.existingSecret to its name (or, with values kept out of version control, secrets.create: true and secrets.values)" .Values.secrets.existingSecret }}
{{- end }}
{{- end }}

{{/*
Environment variable -> key in the Secret, as JSON, for every variable the Secret provides.
*/}}
{{- define "sessiongate.secretEnv" -}}
{{- $env := dict }}
{{- $_ := set $env "SG_SESSION_KEY" (required "secrets.keys.sessionKey must name the Secret key of the session key" .Values.secrets.keys.sessionKey) }}
{{- $_ = set $env "SG_ADMIN_TOKEN" (required "secrets.keys.adminToken must name the Secret key of the admin token" .Values.secrets.keys.adminToken) }}
{{- with .Values.secrets.keys.clientSecret }}{{ $_ = set $env "SG_CLIENT_SECRET" . }}{{ end }}
{{- with .Values.secrets.keys.sessionKeyPrevious }}{{ $_ = set $env "SG_SESSION_KEY_PREVIOUS" . }}{{ end }}
{{- with .Values.secrets.keys.redisPassword }}{{ $_ = set $env "SG_REDIS_PASSWORD" . }}{{ end }}
{{- with .Values.secrets.keys.sentinelPassword }}{{ $_ = set $env "SG_SENTINEL_PASSWORD" . }}{{ end }}
{{- toJson $env }}
{{- end }}

{{/*
The gateway's config file: .Values.config with what the chart controls set on top of it.
test/packaging/chart.test.ts renders it (test/helpers/helm-template.ts) and validates the result
with the gateway's own config loader.
*/}}
{{- define "sessiongate.config" -}}
{{- $cfg := deepCopy (.Values.config | default (dict)) }}
{{- /* 1. listeners: the container ports, reachable by the Service and the kubelet's probes */}}
{{- $_ := set $cfg "listen" (dict "host" "0.0.0.0" "port" (include "sessiongate.httpPort" . | int)) }}
{{- $admin := get $cfg "admin" | default (dict) }}
{{- $_ = set $admin "listen" (dict "host" "0.0.0.0" "port" (include "sessiongate.adminPort" . | int)) }}
{{- $_ = set $cfg "admin" $admin }}
{{- /* 2. a previous session key during a rotation: decrypts, never encrypts */}}
{{- if .Values.secrets.keys.sessionKeyPrevious }}
{{- $session := get $cfg "session" | default (dict) }}
{{- $keys := get $session "keys" | default (list) }}
{{- if not (has "${SG_SESSION_KEY_PREVIOUS}" $keys) }}
{{- $_ = set $session "keys" (append $keys "${SG_SESSION_KEY_PREVIOUS}") }}
{{- end }}
{{- $_ = set $cfg "session" $session }}
{{- end }}
{{- /* 3. Redis passwords from the Secret */}}
{{- $store := get $cfg "store" | default (dict) }}
{{- $redis := get $store "redis" }}
{{- if and $redis .Values.secrets.keys.redisPassword }}
{{- $_ = set $redis "password" "${SG_REDIS_PASSWORD}" }}
{{- end }}
{{- if and $redis .Values.secrets.keys.sentinelPassword }}
{{- $sentinel := get $redis "sentinel" }}
{{- if $sentinel }}
{{- $_ = set $sentinel "password" "${SG_SENTINEL_PASSWORD}" }}
{{- end }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
Checks that stop rendering with a clear message. Included by deployment.yaml; outputs nothing.
*/}}
{{- define "sessiongate.validate" -}}
{{- $kind := dig "store" "kind" "memory" (.Values.config | default (dict)) | default "memory" }}
{{- if and (eq $kind "memory") (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) }}
{{- fail "config.store.kind is memory: the in-memory store lives in one process, so it needs replicaCount: 1 and autoscaling.enabled: false. Use config.store.kind: redis (with config.store.redis) for several replicas." }}
{{- end }}
{{- $workers := toString (dig "workers" 1 (.Values.config | default (dict))) }}
{{- if and (eq $kind "memory") (ne $workers "1") }}
{{- fail (printf "config.workers is %s but config.store.kind is memory: each worker would keep its own store, so a logout on one would not reach the others. Use config.store.kind: redis, or workers: 1." $workers) }}
{{- end }}
{{- if eq $kind "redis" }}
{{- $redis := dig "store" "redis" (dict) .Values.config }}
{{- if not (or (hasKey $redis "url") (hasKey $redis "sentinel") (hasKey $redis "cluster")) }}
{{- fail "config.store.kind is redis: set config.store.redis with one of url, sentinel {name, nodes} or cluster {nodes}" }}
{{- end }}
{{- end }}
{{- if and (ne .Values.service.type "ClusterIP") (not .Values.service.allowExternalAdmin) }}
{{- fail (printf "service.type %s would expose the admin port (9090) outside the cluster too: keep ClusterIP and use an Ingress, or set service.allowExternalAdmin: true" .Values.service.type) }}
{{- end }}
{{- range .Values.extraVolumes }}
{{- if has .name (list "config" "tmp") }}
{{- fail (printf "extraVolumes: the name %q is the chart's own volume; choose another" .name) }}
{{- end }}
{{- end }}
{{- range .Values.extraVolumeMounts }}
{{- if has (trimSuffix "/" .mountPath) (list "/etc/sessiongate" "/tmp") }}
{{- fail (printf "extraVolumeMounts: %s is already mounted by the chart (config, /tmp); mount elsewhere, e.g. /etc/sessiongate-ca" .mountPath) }}
{{- end }}
{{- end }}
{{- $env := include "sessiongate.secretEnv" . | fromJson }}
{{- range .Values.extraEnv }}
{{- $_ := set $env .name "extraEnv" }}
{{- end }}
{{- $text := include "sessiongate.config" . }}
{{- $keyOf := dict "SG_CLIENT_SECRET" "clientSecret" "SG_SESSION_KEY" "sessionKey" "SG_ADMIN_TOKEN" "adminToken" "SG_SESSION_KEY_PREVIOUS" "sessionKeyPrevious" "SG_REDIS_PASSWORD" "redisPassword" "SG_SENTINEL_PASSWORD" "sentinelPassword" }}
{{- range $var, $key := $keyOf }}
{{- if and (contains (printf "${%s}" $var) $text) (not (hasKey $env $var)) }}
{{- fail (printf "config refers to ${%s}, but the container would not have it: set secrets.keys.%s to its key in the Secret (or remove the reference)" $var $key) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Labels of the pods: the chart's labels, then podLabels (one key each: a podLabels key the chart also
sets replaces the chart's value). The selector labels cannot be changed: the Deployment would no longer
select its own pods.
*/}}
{{- define "sessiongate.podLabels" -}}
{{- $labels := include "sessiongate.labels" . | fromYaml }}
{{- $selector := include "sessiongate.selectorLabels" . | fromYaml }}
{{- range $key, $value := .Values.podLabels }}
{{- if and (hasKey $selector $key) (ne (toString $value) (toString (get $selector $key))) }}
{{- fail (printf "podLabels.%s: the chart sets this label to %q and selects its pods by it, so it cannot be changed (nameOverride changes app.kubernetes.io/name)" $key (toString (get $selector $key))) }}
{{- end }}
{{- $_ := set $labels $key $value }}
{{- end }}
{{- range $key, $value := $labels }}
{{ $key }}: {{ toString $value | quote }}
{{- end }}
{{- end }}

{{/*
The container image: repository:tag, and @digest when image.digest is set. The tag must be a string:
unquoted in YAML, 1.10 is the number 1.1 and 2.0 is 2.
*/}}
{{- define "sessiongate.image" -}}
{{- $tag := .Values.image.tag }}
{{- if not (kindIs "string" $tag) }}
{{- fail (printf "image.tag must be a string, got %v (%s): quote it in YAML, e.g. tag: \"1.10\" (unquoted, 1.10 is read as the number 1.1), or use --set-string" $tag (kindOf $tag)) }}
{{- end }}
{{- $ref := printf "%s:%s" .Values.image.repository ($tag | default .Chart.AppVersion) }}
{{- with .Values.image.digest }}
{{- $ref = printf "%s@%s" $ref . }}
{{- end }}
{{- $ref }}
{{- end }}

{{/*
"true" when a value is set: any number (0 included) or a non-empty string; "" for null and "".
*/}}
{{- define "sessiongate.isSet" -}}
{{- if or (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .) (and (kindIs "string" .) (ne (toString .) "")) }}true{{ end }}
{{- end }}

{{/*
Labels of the `helm test` pod. Not the selector labels: the Service, the PDB and the NetworkPolicy
must not pick it up as a gateway pod.
*/}}
{{- define "sessiongate.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "sessiongate.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end }}

{{/*
The host of config.publicUrl (the default Ingress host and HTTPRoute hostname).
*/}}
{{- define "sessiongate.publicHost" -}}
{{- $url := required "config.publicUrl is required" .Values.config.publicUrl }}
{{- $host := regexReplaceAll "^[a-zA-Z][a-zA-Z0-9+.-]*://([^/:?#]+).*$" $url "${1}" }}
{{- if eq $host $url }}
{{- fail (printf "config.publicUrl %q is not an absolute URL (https://host/...)" $url) }}
{{- end }}
{{- $host }}
{{- end }}

{{/*
"true" when config.forwardAuth.enabled and the chart's Ingress or HTTPRoute would route
<authPrefix>/check from outside: the check trusts X-Original-* / X-Forwarded-* because only the
controller may reach it.
*/}}
{{- define "sessiongate.exposesCheck" -}}
{{- if dig "forwardAuth" "enabled" false .Values.config }}
{{- $check := printf "%s/check" (.Values.config.authPrefix | default "/auth") }}
{{- $exposed := false }}
{{- if .Values.ingress.enabled }}
{{- range .Values.ingress.paths }}
{{- $p := .path | default "/" }}
{{- if eq (.pathType | default "Prefix") "Exact" }}
{{- if eq $p $check }}{{ $exposed = true }}{{ end }}
{{- else if or (eq $p "/") (eq (trimSuffix "/" $p) $check) (hasPrefix (printf "%s/" (trimSuffix "/" $p)) $check) }}
{{- $exposed = true }}
{{- end }}
{{- end }}
{{- end }}
{{- if .Values.httpRoute.enabled }}
{{- range .Values.httpRoute.matches | default (list (dict)) }}
{{- $path := .path | default (dict) }}
{{- $p := $path.value | default "/" }}
{{- $type := $path.type | default "PathPrefix" }}
{{- if eq $type "Exact" }}
{{- if eq $p $check }}{{ $exposed = true }}{{ end }}
{{- else if eq $type "PathPrefix" }}
{{- if or (eq $p "/") (eq (trimSuffix "/" $p) $check) (hasPrefix (printf "%s/" (trimSuffix "/" $p)) $check) }}{{ $exposed = true }}{{ end }}
{{- else }}
{{- $exposed = true }}
{{- end }}
{{- end }}
{{- end }}
{{- if $exposed }}true{{ end }}
{{- end }}
{{- end }}
