{{/* vim: set filetype=mustache: */}}
{{/*
Small utilities: API capability checks and value formatting.
*/}}

{{/* parley.monitoring.enabled: "true" when a Prometheus Operator object may render; (dict "context" $ "force" bool). */}}
{{- define "parley.monitoring.enabled" -}}
{{- if or .force (.context.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}true{{- end -}}
{{- end -}}

{{/* parley.intOrString: a PDB bound as an integer ("1" -> 1) or a quoted percentage ("50%"). */}}
{{- define "parley.intOrString" -}}
{{- $s := toString . -}}
{{- if regexMatch "^[0-9]+$" $s -}}{{ $s }}{{- else -}}{{ $s | quote }}{{- end -}}
{{- end -}}
