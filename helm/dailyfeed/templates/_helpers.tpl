{{/*
Names, labels and the per-service settings every template uses.
*/}}

{{/* The release's base name: "dailyfeed" for a release called dailyfeed. */}}
{{- define "dailyfeed.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A service's Service, ServiceAccount and ConfigMap name: dailyfeed-member. */}}
{{- define "dailyfeed.svcName" -}}
{{- printf "%s-%s" (include "dailyfeed.fullname" .root) .name -}}
{{- end -}}

{{/*
One service's settings: `defaults` merged with `services.<name>` (maps key by key, lists and
scalars replace). Returned as YAML; callers use `fromYaml`.
*/}}
{{- define "dailyfeed.settings" -}}
{{- $svc := index .root.Values.services .name | default dict -}}
{{- $merged := mergeOverwrite (deepCopy .root.Values.defaults) (deepCopy $svc) -}}
{{- $_ := set $merged "name" .name -}}
{{- toYaml $merged -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "dailyfeed.commonLabels" -}}
app.kubernetes.io/part-of: dailyfeed
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Labels of one service's objects (`app` is what Kiali and Istio group by). */}}
{{- define "dailyfeed.labels" -}}
{{ include "dailyfeed.commonLabels" .root }}
app: {{ .name }}
app.kubernetes.io/name: {{ .name }}
{{- end -}}

{{/* Selector of all pods of a service, every version. */}}
{{- define "dailyfeed.selector" -}}
app: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/*
The tracks (Deployments) of a service: the stable one, plus the canary when enabled.
Returns YAML: a list of {version, tag}.
*/}}
{{- define "dailyfeed.tracks" -}}
{{- $s := .settings -}}
{{- $root := .root -}}
{{- $default := $root.Values.image.tag | default $root.Chart.AppVersion -}}
{{- $tracks := list (dict "version" $s.version "tag" ($s.image.tag | default $default) "canary" false) -}}
{{- if $s.canary.enabled -}}
{{- if eq $s.canary.version $s.version -}}
{{- fail (printf "services.%s.canary.version must differ from its stable version %s" $s.name $s.version) -}}
{{- end -}}
{{- $tracks = append $tracks (dict "version" $s.canary.version "tag" ($s.canary.image.tag | default $default) "canary" true) -}}
{{- end -}}
{{- toYaml $tracks -}}
{{- end -}}

{{/*
Route weights of a service as a list of {version, weight}: the `weights` map, checked against
the tracks (every weighted version must be deployed, weights must add up to 100); empty means
everything to the stable version.
*/}}
{{- define "dailyfeed.routes" -}}
{{- $s := .settings -}}
{{- $tracks := include "dailyfeed.tracks" . | fromYamlArray -}}
{{- $deployed := list -}}
{{- range $tracks }}{{ $deployed = append $deployed .version }}{{ end -}}
{{- $routes := list -}}
{{- if $s.weights -}}
{{- $sum := 0 -}}
{{- range $version, $weight := $s.weights -}}
{{- if not (has $version $deployed) -}}
{{- fail (printf "services.%s.weights routes to %s, which is not deployed (deployed: %s)" $s.name $version (join ", " $deployed)) -}}
{{- end -}}
{{- $sum = add $sum $weight -}}
{{- $routes = append $routes (dict "version" $version "weight" (int $weight)) -}}
{{- end -}}
{{- if ne (int $sum) 100 -}}
{{- fail (printf "services.%s.weights add up to %d, not 100" $s.name (int $sum)) -}}
{{- end -}}
{{- else -}}
{{- $routes = list (dict "version" $s.version "weight" 100) -}}
{{- end -}}
{{- toYaml $routes -}}
{{- end -}}

{{/* The image of one track. */}}
{{- define "dailyfeed.image" -}}
{{- printf "%s/dailyfeed-%s:%s" .root.Values.image.registry .name .tag -}}
{{- end -}}
