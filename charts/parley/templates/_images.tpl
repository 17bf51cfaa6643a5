{{/* vim: set filetype=mustache: */}}
{{/*
Container images: references (global.imageRegistry, digest or tag) and pull secrets.
*/}}

{{/* parley.image: `registry/repository@digest` or `:tag` (tag defaults to appVersion); (dict "image" .Values.api.image "context" $). */}}
{{- define "parley.image" -}}
{{- $registry := .image.registry -}}
{{- if .context.Values.global.imageRegistry -}}{{- $registry = .context.Values.global.imageRegistry -}}{{- end -}}
{{- $repository := .image.repository -}}
{{- $prefix := ternary (printf "%s/%s" $registry $repository) $repository (ne $registry "") -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $prefix .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $prefix (default .context.Chart.AppVersion .image.tag | toString) -}}
{{- end -}}
{{- end -}}

{{/* parley.migrations.image: the migration Job's image, the API image unless migrations.image.repository is set. */}}
{{- define "parley.migrations.image" -}}
{{- if .Values.migrations.image.repository -}}
{{- include "parley.image" (dict "image" .Values.migrations.image "context" .) -}}
{{- else -}}
{{- include "parley.image" (dict "image" .Values.api.image "context" .) -}}
{{- end -}}
{{- end -}}

{{/* parley.imagePullSecrets: the pod's imagePullSecrets block from global.imagePullSecrets. */}}
{{- define "parley.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}
