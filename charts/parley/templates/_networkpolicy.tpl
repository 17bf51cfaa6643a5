{{/* vim: set filetype=mustache: */}}
{{/*
NetworkPolicy pieces the components' policies share: base egress and the allowed peers of each kind
of port.
*/}}

{{/* parley.networkPolicy.egressBase: egress every Parley pod needs: DNS, PostgreSQL and (when on) Vault. */}}
{{- define "parley.networkPolicy.egressBase" -}}
- to:
    - namespaceSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dns.namespaceSelector | nindent 10 }}
      podSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dns.podSelector | nindent 10 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- if .Values.postgresql.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "parley.selectorLabels" (dict "context" . "component" "postgresql") | nindent 10 }}
  ports:
    - port: 5432
      protocol: TCP
{{- else }}
- ports:
    - port: {{ .Values.database.port }}
      protocol: TCP
  {{- with .Values.networkPolicy.database.cidrs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}
{{- if .Values.vault.enabled }}
- ports:
    - port: {{ .Values.networkPolicy.vault.port }}
      protocol: TCP
  to:
    {{- if .Values.networkPolicy.vault.cidrs }}
    {{- range .Values.networkPolicy.vault.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
    {{- else }}
    - namespaceSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.vault.namespaceSelector | nindent 10 }}
      podSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.vault.podSelector | nindent 10 }}
    {{- end }}
{{- end }}
{{- end -}}

{{/* parley.networkPolicy.metricsFrom: the peers allowed to scrape (Prometheus' namespace, or any). */}}
{{- define "parley.networkPolicy.metricsFrom" -}}
{{- if .Values.networkPolicy.metricsNamespaceSelector }}
from:
  - namespaceSelector:
      matchLabels:
        {{- toYaml .Values.networkPolicy.metricsNamespaceSelector | nindent 8 }}
{{- end }}
{{- end -}}

{{/* parley.networkPolicy.managementFrom: Prometheus' namespace and the helm test pod (or any, without a selector). */}}
{{- define "parley.networkPolicy.managementFrom" -}}
{{- if .Values.networkPolicy.metricsNamespaceSelector }}
from:
  - namespaceSelector:
      matchLabels:
        {{- toYaml .Values.networkPolicy.metricsNamespaceSelector | nindent 8 }}
  - podSelector:
      matchLabels:
        {{- include "parley.selectorLabels" (dict "context" . "component" "tests") | nindent 8 }}
{{- end }}
{{- end -}}

{{/* parley.networkPolicy.publicFrom: the peers allowed to reach a public port (any, or the ingress controller's namespace). */}}
{{- define "parley.networkPolicy.publicFrom" -}}
{{- if not .Values.networkPolicy.allowExternal }}
from:
  - namespaceSelector:
      matchLabels:
        {{- toYaml .Values.networkPolicy.ingressNamespaceSelector | nindent 8 }}
  - podSelector:
      matchLabels:
        {{- include "parley.selectorLabels" (dict "context" . "component" "tests") | nindent 8 }}
{{- end }}
{{- end -}}

