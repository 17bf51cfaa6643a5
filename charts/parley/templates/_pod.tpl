{{/* vim: set filetype=mustache: */}}
{{/*
Pieces of a pod spec: volumes and mounts, probes, resources, anti-affinity, the checksum annotations
that roll pods.
*/}}

{{/* parley.volumes: /tmp plus, with Vault, the projected Vault token (and CA); the only token such pods get. */}}
{{- define "parley.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .Values.vault.enabled }}
- name: vault-token
  projected:
    defaultMode: 0440
    sources:
      - serviceAccountToken:
          path: token
          audience: {{ .Values.vault.tokenAudience | quote }}
          expirationSeconds: {{ .Values.vault.tokenExpirationSeconds }}
{{- if .Values.vault.caSecret }}
- name: vault-ca
  secret:
    secretName: {{ .Values.vault.caSecret }}
{{- end }}
{{- end }}
{{- end -}}

{{/* parley.volumeMounts: mounts matching parley.volumes. */}}
{{- define "parley.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.vault.enabled }}
- name: vault-token
  mountPath: /var/run/secrets/vault
  readOnly: true
{{- if .Values.vault.caSecret }}
- name: vault-ca
  mountPath: /etc/parley/vault-ca
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/* parley.httpProbe: one HTTP probe from a values block; (dict "probe" .Values.api.livenessProbe "path" "/health" "port" "http"). */}}
{{- define "parley.httpProbe" -}}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
successThreshold: 1
{{- end -}}

{{/* parley.resources: a resources block without empty entries (an empty limit means none). */}}
{{- define "parley.resources" -}}
{{- $out := dict -}}
{{- range $kind, $values := . -}}
{{- $kept := dict -}}
{{- range $name, $value := $values -}}
{{- if $value -}}{{- $_ := set $kept $name $value -}}{{- end -}}
{{- end -}}
{{- if $kept -}}{{- $_ := set $out $kind $kept -}}{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* parley.softAntiAffinity: prefer spreading a component's pods over nodes; (dict "context" $ "component" "api"). */}}
{{- define "parley.softAntiAffinity" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "parley.selectorLabels" . | nindent 12 }}
{{- end -}}

{{/* parley.checksum: sha256 of a rendered template, for pod annotations that roll pods on config changes. */}}
{{- define "parley.checksum" -}}
{{- include (print .context.Template.BasePath .path) .context | sha256sum -}}
{{- end -}}
