{{/* vim: set filetype=mustache: */}}
{{/*
The operator: the namespaces it watches and its RBAC rules.
*/}}

{{/* parley.operator.namespaces: the namespaces the operator watches when not cluster-wide. */}}
{{- define "parley.operator.namespaces" -}}
{{- if .Values.operator.watchNamespaces -}}
{{- join "," .Values.operator.watchNamespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* parley.operator.rules: the operator's RBAC rules, exactly docs/operator.md#rbac (a Role per watched namespace, or one ClusterRole). */}}
{{- define "parley.operator.rules" -}}
# ApiUsers: watch them; patch finalizers, kopf's annotations and parley.dev/secret-version.
- apiGroups: ["parley.dev"]
  resources: ["apiusers"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["parley.dev"]
  resources: ["apiusers/status"]
  verbs: ["patch"]
{{- if .Values.operator.secrets.names }}
# Named mode: get on exactly these Secrets, enforced by the API server (no list/watch: it polls them).
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: {{ toJson .Values.operator.secrets.names }}
  verbs: ["get"]
{{- else }}
# Label mode: the labelled list and watch (RBAC cannot filter by label: the operator does; no get).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch"]
{{- end }}
# Events on ApiUsers (transitions of the Ready condition).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}
