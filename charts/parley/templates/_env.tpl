{{/* vim: set filetype=mustache: */}}
{{/*
Environment of the services: shared ConfigMap data, secret variables (Kubernetes Secret or Vault)
and the Vault client settings.
*/}}

{{/* parley.configEnv: the settings every service shares, as ConfigMap data (pools are per service). */}}
{{- define "parley.configEnv" -}}
ENVIRONMENT: {{ .Values.environment | quote }}
LOG_LEVEL: {{ .Values.logLevel | quote }}
LOG_FORMAT: {{ .Values.logFormat | quote }}
DB_HOST: {{ include "parley.database.host" . | quote }}
DB_PORT: {{ .Values.database.port | quote }}
DB_NAME: {{ .Values.database.name | quote }}
DB_USER: {{ .Values.database.user | quote }}
DB_STATEMENT_TIMEOUT_MS: {{ .Values.database.statementTimeoutMs | quote }}
PARLEY_MIGRATIONS_DIR: "/app/migrations"
{{- end -}}

{{/* parley.env.dbPassword: the DB_PASSWORD variable from the database Secret (nothing when Vault provides it). */}}
{{- define "parley.env.dbPassword" -}}
{{- if not (include "parley.database.passwordFromVault" .) -}}
- name: DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "parley.database.secretName" . }}
      key: {{ include "parley.database.secretKey" . }}
{{- end -}}
{{- end -}}

{{/* parley.env.secret: one variable from the services' Secret unless Vault provides it; (dict "context" $ "name" "LLM_API_KEY" "key" "llm_api_key" "optional" bool). */}}
{{- define "parley.env.secret" -}}
{{- if not .context.Values.vault.enabled }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "parley.secretsName" .context }}
      key: {{ .key }}
      optional: {{ .optional }}
{{- end }}
{{- end -}}

{{/* parley.env.vault: VAULT_* variables of a component when Vault is on; (dict "context" $ "vault" .Values.vault.api). */}}
{{- define "parley.env.vault" -}}
{{- $v := .context.Values.vault -}}
{{- if $v.enabled }}
- name: VAULT_ADDR
  value: {{ $v.address | quote }}
- name: VAULT_AUTH_METHOD
  value: kubernetes
- name: VAULT_ROLE
  value: {{ .vault.role | quote }}
- name: VAULT_K8S_MOUNT
  value: {{ $v.authMount | quote }}
- name: VAULT_K8S_TOKEN_PATH
  value: /var/run/secrets/vault/token
- name: VAULT_KV_MOUNT
  value: {{ $v.kvMount | quote }}
- name: VAULT_SECRET_PATH
  value: {{ .vault.secretPath | quote }}
{{- with $v.namespace }}
- name: VAULT_NAMESPACE
  value: {{ . | quote }}
{{- end }}
{{- if $v.caSecret }}
- name: VAULT_CACERT
  value: /etc/parley/vault-ca/ca.crt
{{- end }}
{{- end }}
{{- end -}}

{{/* parley.budgetEnv: the default budgets, for the bot (enforces them) and the API (shows them). */}}
{{- define "parley.budgetEnv" -}}
{{- with .Values.budgets }}
{{- if not (kindIs "invalid" .tokensPerDay) }}
BUDGET_TOKENS_PER_DAY: {{ .tokensPerDay | int64 | quote }}
{{- end }}
{{- if not (kindIs "invalid" .tokensPerMonth) }}
BUDGET_TOKENS_PER_MONTH: {{ .tokensPerMonth | int64 | quote }}
{{- end }}
{{- if not (kindIs "invalid" .usdPerDay) }}
BUDGET_USD_PER_DAY: {{ .usdPerDay | toString | quote }}
{{- end }}
{{- if not (kindIs "invalid" .usdPerMonth) }}
BUDGET_USD_PER_MONTH: {{ .usdPerMonth | toString | quote }}
{{- end }}
{{- with .exemptUserIds }}
BUDGET_EXEMPT_USER_IDS: {{ join "," . | quote }}
{{- end }}
BUDGET_WARN_PERCENT: {{ .warnPercent | quote }}
{{- end }}
{{- end -}}
