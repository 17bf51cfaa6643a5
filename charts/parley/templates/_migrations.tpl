{{/* vim: set filetype=mustache: */}}
{{/*
The migration Job: whether it runs as an ordinary Job or a Helm hook, and its hook annotations.
*/}}

{{/* parley.migrations.initialRun: "true" on the first install with the bundled database, whose migration is an ordinary Job, not a hook (why: docs/guides/deployment.md, "Migrations and readiness"). */}}
{{- define "parley.migrations.initialRun" -}}
{{- if and .Values.postgresql.enabled .Release.IsInstall -}}true{{- end -}}
{{- end -}}

{{/* parley.migrations.hookEvents: pre-install,pre-upgrade with an external database; pre-upgrade with the bundled one (its install is the initial run). */}}
{{- define "parley.migrations.hookEvents" -}}
{{- if .Values.postgresql.enabled -}}pre-upgrade{{- else -}}pre-install,pre-upgrade{{- end -}}
{{- end -}}

{{/* parley.migrations.annotations: a migration object's hook annotations (unless initialRun) and commonAnnotations; call with (dict "context" $ "weight" "-10" "deletePolicy" "..."). */}}
{{- define "parley.migrations.annotations" -}}
{{- $hook := not (include "parley.migrations.initialRun" .context) -}}
{{- if or $hook .context.Values.commonAnnotations -}}
annotations:
  {{- if $hook }}
  helm.sh/hook: {{ include "parley.migrations.hookEvents" .context }}
  helm.sh/hook-weight: {{ .weight | quote }}
  helm.sh/hook-delete-policy: {{ .deletePolicy }}
  {{- end }}
  {{- with .context.Values.commonAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
{{- end -}}
