{{/* vim: set filetype=mustache: */}}

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

{{/* parley.monitoring.enabled: "true" when a Prometheus Operator object may render; (dict "context" $ "force" bool). */}}
{{- define "parley.monitoring.enabled" -}}
{{- if or .force (.context.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}true{{- end -}}
{{- end -}}

{{/* parley.operator.namespaces: the namespaces the operator watches when not cluster-wide. */}}
{{- define "parley.operator.namespaces" -}}
{{- if .Values.operator.watchNamespaces -}}
{{- join "," .Values.operator.watchNamespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

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

{{/* parley.database.passwordFromVault: "true" when every service reads DB_PASSWORD from its Vault secret (no Kubernetes Secret holds it). */}}
{{- define "parley.database.passwordFromVault" -}}
{{- if and .Values.vault.enabled .Values.database.passwordFromVault (not .Values.postgresql.enabled) -}}true{{- end -}}
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

{{/* parley.validateValues: fail rendering with every readable problem of the values at once. */}}
{{- define "parley.validateValues" -}}
{{- $errors := list -}}
{{- if and .Values.bot.enabled (eq .Values.bot.mode "polling") (gt (int .Values.bot.replicaCount) 1) -}}
{{- $errors = append $errors (printf "bot.mode=polling runs exactly one replica (a second poller gets 409 Conflict from Telegram), but bot.replicaCount=%v: use bot.mode=webhook to scale" .Values.bot.replicaCount) -}}
{{- end -}}
{{- if and .Values.bot.enabled (eq .Values.bot.mode "webhook") (not .Values.bot.webhook.url) -}}
{{- $errors = append $errors "bot.mode=webhook needs bot.webhook.url (the public HTTPS URL Telegram posts updates to)" -}}
{{- end -}}
{{- if and .Values.bot.enabled (eq .Values.bot.mode "webhook") .Values.bot.webhook.url (not (hasPrefix "https://" .Values.bot.webhook.url)) -}}
{{- $errors = append $errors (printf "bot.webhook.url must start with https:// (Telegram posts only over HTTPS), got %q" .Values.bot.webhook.url) -}}
{{- end -}}
{{- if and (not .Values.postgresql.enabled) (not .Values.database.host) -}}
{{- $errors = append $errors "postgresql.enabled=false (external database) needs database.host" -}}
{{- end -}}
{{- if and (not .Values.postgresql.enabled) (not .Values.database.existingSecret) (not .Values.database.password) (not .Values.database.passwordFromVault) -}}
{{- $errors = append $errors "postgresql.enabled=false (external database) needs its password: database.passwordFromVault=true (key db_password in each service's Vault secret), database.existingSecret, or for development database.password" -}}
{{- end -}}
{{- if and .Values.database.passwordFromVault (not .Values.vault.enabled) -}}
{{- $errors = append $errors "database.passwordFromVault=true needs vault.enabled=true (and key db_password in the Vault secrets of api, bot, operator and migrations)" -}}
{{- end -}}
{{- if and .Values.database.passwordFromVault .Values.postgresql.enabled -}}
{{- $errors = append $errors "database.passwordFromVault=true is for an external database: the bundled PostgreSQL reads its password from a Kubernetes Secret (set postgresql.enabled=false, or database.passwordFromVault=false)" -}}
{{- end -}}
{{- if and .Values.vault.enabled (not .Values.vault.address) -}}
{{- $errors = append $errors "vault.enabled=true needs vault.address (VAULT_ADDR), e.g. https://vault.vault.svc:8200" -}}
{{- end -}}
{{- if and (not .Values.vault.enabled) (not .Values.secrets.existingSecret) .Values.bot.enabled (or (not .Values.secrets.telegramBotToken) (not .Values.secrets.llmApiKey)) -}}
{{- $errors = append $errors "the bot needs its secrets: set secrets.existingSecret (keys telegram_bot_token, llm_api_key), or vault.enabled=true, or for development secrets.telegramBotToken and secrets.llmApiKey" -}}
{{- end -}}
{{- if and .Values.bot.enabled (eq .Values.bot.mode "webhook") (not .Values.vault.enabled) (not .Values.secrets.existingSecret) (not .Values.secrets.telegramWebhookSecret) -}}
{{- $errors = append $errors "bot.mode=webhook needs TELEGRAM_WEBHOOK_SECRET: key telegram_webhook_secret in secrets.existingSecret, Vault, or secrets.telegramWebhookSecret" -}}
{{- end -}}
{{- $apiReplicas := ternary .Values.api.autoscaling.minReplicas .Values.api.replicaCount .Values.api.autoscaling.enabled -}}
{{- if lt (int $apiReplicas) 2 -}}
{{- $errors = append $errors (printf "the API runs at least 2 replicas (api.replicaCount / api.autoscaling.minReplicas), got %v" $apiReplicas) -}}
{{- end -}}
{{- if and .Values.api.autoscaling.enabled (lt (int .Values.api.autoscaling.maxReplicas) (int .Values.api.autoscaling.minReplicas)) -}}
{{- $errors = append $errors "api.autoscaling.maxReplicas must be at least api.autoscaling.minReplicas" -}}
{{- end -}}
{{- if le (int .Values.api.terminationGracePeriodSeconds) (add (int .Values.api.shutdownDelaySeconds) (int .Values.api.shutdownTimeoutSeconds)) -}}
{{- $errors = append $errors (printf "api.terminationGracePeriodSeconds (%v) must exceed api.shutdownDelaySeconds + api.shutdownTimeoutSeconds (%v), or in-flight requests are killed" .Values.api.terminationGracePeriodSeconds (add (int .Values.api.shutdownDelaySeconds) (int .Values.api.shutdownTimeoutSeconds))) -}}
{{- end -}}
{{- if le (int .Values.bot.terminationGracePeriodSeconds) (int .Values.bot.shutdownTimeoutSeconds) -}}
{{- $errors = append $errors (printf "bot.terminationGracePeriodSeconds (%v) must exceed bot.shutdownTimeoutSeconds (%v)" .Values.bot.terminationGracePeriodSeconds .Values.bot.shutdownTimeoutSeconds) -}}
{{- end -}}
{{- if ne .Values.api.service.type "ClusterIP" -}}
{{- $errors = append $errors (printf "api.service.type=%s would publish the management port (metrics, health, API docs) with the public one: keep ClusterIP and expose the API through api.ingress" .Values.api.service.type) -}}
{{- end -}}
{{- if and .Values.api.pdb.create (not .Values.api.pdb.minAvailable) (not .Values.api.pdb.maxUnavailable) -}}
{{- $errors = append $errors "api.pdb.create=true needs api.pdb.minAvailable or api.pdb.maxUnavailable" -}}
{{- end -}}
{{- if and .Values.api.pdb.minAvailable .Values.api.pdb.maxUnavailable -}}
{{- $errors = append $errors "set only one of api.pdb.minAvailable and api.pdb.maxUnavailable" -}}
{{- end -}}
{{- if and .Values.api.ingress.enabled (not .Values.api.ingress.hostname) -}}
{{- $errors = append $errors "api.ingress.enabled=true needs api.ingress.hostname" -}}
{{- end -}}
{{- if and .Values.operator.clusterWide .Values.operator.watchNamespaces -}}
{{- $errors = append $errors "operator.clusterWide=true watches every namespace: leave operator.watchNamespaces empty" -}}
{{- end -}}
{{- if and .Values.operator.enabled (not .Values.operator.secrets.names) (not .Values.operator.secrets.labelSelector) -}}
{{- $errors = append $errors "operator.secrets: set labelSelector (label mode, e.g. parley.dev/apiuser-password=true) or names (named mode); the operator never reads every Secret" -}}
{{- end -}}
{{- if and .Values.operator.enabled .Values.networkPolicy.enabled (eq .Values.environment "production") (not .Values.networkPolicy.kubeAPIServer.cidrs) -}}
{{- $errors = append $errors (printf "environment=production with networkPolicy.enabled needs networkPolicy.kubeAPIServer.cidrs, or the operator may reach any address on ports %v. List the API server's endpoint addresses (NetworkPolicies see them, not the kubernetes Service IP) with `kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes -o jsonpath='{.items[*].endpoints[*].addresses}'` and set each as <address>/32; check networkPolicy.kubeAPIServer.ports against `-o jsonpath='{.items[*].ports[*].port}'`" (join ", " .Values.networkPolicy.kubeAPIServer.ports)) -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\n\nPARLEY VALUES ERROR:\n  - %s\n" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}

{{/* parley.intOrString: a PDB bound as an integer ("1" -> 1) or a quoted percentage ("50%"). */}}
{{- define "parley.intOrString" -}}
{{- $s := toString . -}}
{{- if regexMatch "^[0-9]+$" $s -}}{{ $s }}{{- else -}}{{ $s | quote }}{{- end -}}
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
