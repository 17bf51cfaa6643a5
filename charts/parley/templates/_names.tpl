{{/* vim: set filetype=mustache: */}}
{{/*
Resource names, labels and annotations: the prefix every object's name starts with, the
app.kubernetes.io/* labels, the Secret and ServiceAccount names.
*/}}

{{/* parley.name: the chart name, or nameOverride. */}}
{{- define "parley.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* parley.fullname: `<release>-<chart>` (or fullnameOverride), the prefix of every resource name. */}}
{{- define "parley.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* parley.componentName: `<fullname>-<component>`; call with (dict "context" $ "component" "api"). */}}
{{- define "parley.componentName" -}}
{{- printf "%s-%s" (include "parley.fullname" .context) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* parley.chart: `<chart>-<version>` for the helm.sh/chart label. */}}
{{- define "parley.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* parley.selectorLabels: the immutable labels a component's selector matches; (dict "context" $ "component" "api"). */}}
{{- define "parley.selectorLabels" -}}
app.kubernetes.io/name: {{ include "parley.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{/* parley.labels: the standard app.kubernetes.io/* labels plus commonLabels; (dict "context" $ "component" "api"). */}}
{{- define "parley.labels" -}}
{{ include "parley.selectorLabels" . }}
app.kubernetes.io/part-of: parley
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
helm.sh/chart: {{ include "parley.chart" .context }}
{{- with .context.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* parley.annotations: commonAnnotations as a metadata block (empty when none). */}}
{{- define "parley.annotations" -}}
{{- with .Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* parley.serviceAccountName: a component's ServiceAccount; (dict "context" $ "component" "api" "sa" .Values.api.serviceAccount). */}}
{{- define "parley.serviceAccountName" -}}
{{- if .sa.create -}}
{{- default (include "parley.componentName" .) .sa.name -}}
{{- else -}}
{{- default "default" .sa.name -}}
{{- end -}}
{{- end -}}

{{/* parley.secretsName: the Secret with the services' secret settings (existing or chart-made). */}}
{{- define "parley.secretsName" -}}
{{- default (printf "%s-secrets" (include "parley.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}
