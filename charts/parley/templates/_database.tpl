{{/* vim: set filetype=mustache: */}}
{{/*
The database: the bundled PostgreSQL or an external server, and where its password comes from.
*/}}

{{/* parley.database.host: PostgreSQL host, the bundled Service or database.host. */}}
{{- define "parley.database.host" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "parley.componentName" (dict "context" . "component" "postgresql") -}}
{{- else -}}
{{- .Values.database.host -}}
{{- end -}}
{{- end -}}

{{/* parley.database.secretName: the Secret holding the database password. */}}
{{- define "parley.database.secretName" -}}
{{- if .Values.postgresql.enabled -}}
{{- default (include "parley.componentName" (dict "context" . "component" "postgresql")) .Values.postgresql.auth.existingSecret -}}
{{- else -}}
{{- default (printf "%s-database" (include "parley.fullname" .)) .Values.database.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* parley.database.secretKey: the key of the password in parley.database.secretName. */}}
{{- define "parley.database.secretKey" -}}
{{- if .Values.postgresql.enabled -}}
{{- ternary .Values.postgresql.auth.existingSecretPasswordKey "password" (ne .Values.postgresql.auth.existingSecret "") -}}
{{- else -}}
{{- ternary .Values.database.existingSecretPasswordKey "db_password" (ne .Values.database.existingSecret "") -}}
{{- end -}}
{{- end -}}

{{/* parley.postgresql.password: the bundled database's password: the value, else the one already stored, else generated once per render. */}}
{{- define "parley.postgresql.password" -}}
{{- if not .Values.postgresql.auth.password -}}
{{- $name := include "parley.componentName" (dict "context" . "component" "postgresql") -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name -}}
{{- if and $existing $existing.data (hasKey $existing.data "password") -}}
{{- $_ := set .Values.postgresql.auth "password" (index $existing.data "password" | b64dec) -}}
{{- else -}}
{{- $_ := set .Values.postgresql.auth "password" (randAlphaNum 32) -}}
{{- end -}}
{{- end -}}
{{- .Values.postgresql.auth.password -}}
{{- end -}}

{{/* parley.database.passwordFromVault: "true" when every service reads DB_PASSWORD from its Vault secret (no Kubernetes Secret holds it). */}}
{{- define "parley.database.passwordFromVault" -}}
{{- if and .Values.vault.enabled .Values.database.passwordFromVault (not .Values.postgresql.enabled) -}}true{{- end -}}
{{- end -}}
