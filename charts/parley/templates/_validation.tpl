{{/* vim: set filetype=mustache: */}}
{{/*
Values validation. Each rule is a template that renders its message when the values break it, and
nothing otherwise; parley.validateValues runs every rule (validate.yaml and NOTES.txt include it).
values.schema.json, which Helm checks first, holds the types, enums and bounds of single values;
the rules here relate several values or explain why a value is refused.
*/}}

{{/* parley.validateValues: fail rendering with every readable problem of the values at once. */}}
{{- define "parley.validateValues" -}}
{{- $errors := list -}}
{{- $errors = append $errors (include "parley.validateValues.botReplicas" .) -}}
{{- $errors = append $errors (include "parley.validateValues.webhookUrl" .) -}}
{{- $errors = append $errors (include "parley.validateValues.webhookHttps" .) -}}
{{- $errors = append $errors (include "parley.validateValues.databaseHost" .) -}}
{{- $errors = append $errors (include "parley.validateValues.databasePassword" .) -}}
{{- $errors = append $errors (include "parley.validateValues.passwordFromVaultNeedsVault" .) -}}
{{- $errors = append $errors (include "parley.validateValues.passwordFromVaultExternal" .) -}}
{{- $errors = append $errors (include "parley.validateValues.vaultAddress" .) -}}
{{- $errors = append $errors (include "parley.validateValues.botSecrets" .) -}}
{{- $errors = append $errors (include "parley.validateValues.webhookSecret" .) -}}
{{- $errors = append $errors (include "parley.validateValues.apiReplicas" .) -}}
{{- $errors = append $errors (include "parley.validateValues.apiAutoscaling" .) -}}
{{- $errors = append $errors (include "parley.validateValues.apiGracePeriod" .) -}}
{{- $errors = append $errors (include "parley.validateValues.botGracePeriod" .) -}}
{{- $errors = append $errors (include "parley.validateValues.apiServiceType" .) -}}
{{- $errors = append $errors (include "parley.validateValues.apiPdbBound" .) -}}
{{- $errors = append $errors (include "parley.validateValues.apiPdbOneBound" .) -}}
{{- $errors = append $errors (include "parley.validateValues.apiIngressHostname" .) -}}
{{- $errors = append $errors (include "parley.validateValues.operatorNamespaces" .) -}}
{{- $errors = append $errors (include "parley.validateValues.operatorSecrets" .) -}}
{{- $errors = append $errors (include "parley.validateValues.operatorApiServerEgress" .) -}}
{{- $errors = without $errors "" -}}
{{- if $errors -}}
{{- fail (printf "\n\nPARLEY VALUES ERROR:\n  - %s\n" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}

{{/* parley.validateValues.botReplicas: rejects more than one polling bot replica: Telegram answers a second concurrent getUpdates poller with 409 Conflict. */}}
{{- define "parley.validateValues.botReplicas" -}}
{{- if and .Values.bot.enabled (eq .Values.bot.mode "polling") (gt (int .Values.bot.replicaCount) 1) -}}
{{- printf "bot.mode=polling runs exactly one replica (a second poller gets 409 Conflict from Telegram), but bot.replicaCount=%v: use bot.mode=webhook to scale" .Values.bot.replicaCount -}}
{{- end -}}
{{- end -}}

{{/* parley.validateValues.webhookUrl: rejects webhook mode without bot.webhook.url: the bot registers that URL with Telegram at start-up. */}}
{{- define "parley.validateValues.webhookUrl" -}}
{{- if and .Values.bot.enabled (eq .Values.bot.mode "webhook") (not .Values.bot.webhook.url) -}}
bot.mode=webhook needs bot.webhook.url (the public HTTPS URL Telegram posts updates to)
{{- end -}}
{{- end -}}

{{/* parley.validateValues.webhookHttps: rejects a webhook URL that is not https://: Telegram delivers webhook updates only over HTTPS. */}}
{{- define "parley.validateValues.webhookHttps" -}}
{{- if and .Values.bot.enabled (eq .Values.bot.mode "webhook") .Values.bot.webhook.url (not (hasPrefix "https://" .Values.bot.webhook.url)) -}}
{{- printf "bot.webhook.url must start with https:// (Telegram posts only over HTTPS), got %q" .Values.bot.webhook.url -}}
{{- end -}}
{{- end -}}

{{/* parley.validateValues.databaseHost: rejects an external database (postgresql.enabled=false) without database.host: the services would have nothing to connect to. */}}
{{- define "parley.validateValues.databaseHost" -}}
{{- if and (not .Values.postgresql.enabled) (not .Values.database.host) -}}
postgresql.enabled=false (external database) needs database.host
{{- end -}}
{{- end -}}

{{/* parley.validateValues.databasePassword: rejects an external database with no password source (Vault, an existing Secret or an inline value): DB_PASSWORD would be unset. */}}
{{- define "parley.validateValues.databasePassword" -}}
{{- if and (not .Values.postgresql.enabled) (not .Values.database.existingSecret) (not .Values.database.password) (not .Values.database.passwordFromVault) -}}
postgresql.enabled=false (external database) needs its password: database.passwordFromVault=true (key db_password in each service's Vault secret), database.existingSecret, or for development database.password
{{- end -}}
{{- end -}}

{{/* parley.validateValues.passwordFromVaultNeedsVault: rejects database.passwordFromVault without vault.enabled: no Secret would hold the password and no pod would read Vault. */}}
{{- define "parley.validateValues.passwordFromVaultNeedsVault" -}}
{{- if and .Values.database.passwordFromVault (not .Values.vault.enabled) -}}
database.passwordFromVault=true needs vault.enabled=true (and key db_password in the Vault secrets of api, bot, operator and migrations)
{{- end -}}
{{- end -}}

{{/* parley.validateValues.passwordFromVaultExternal: rejects database.passwordFromVault with the bundled PostgreSQL, which reads its own password from a Kubernetes Secret. */}}
{{- define "parley.validateValues.passwordFromVaultExternal" -}}
{{- if and .Values.database.passwordFromVault .Values.postgresql.enabled -}}
database.passwordFromVault=true is for an external database: the bundled PostgreSQL reads its password from a Kubernetes Secret (set postgresql.enabled=false, or database.passwordFromVault=false)
{{- end -}}
{{- end -}}

{{/* parley.validateValues.vaultAddress: rejects vault.enabled without vault.address: the services' VAULT_ADDR would be empty. */}}
{{- define "parley.validateValues.vaultAddress" -}}
{{- if and .Values.vault.enabled (not .Values.vault.address) -}}
vault.enabled=true needs vault.address (VAULT_ADDR), e.g. https://vault.vault.svc:8200
{{- end -}}
{{- end -}}

{{/* parley.validateValues.botSecrets: rejects an enabled bot with no source for its Telegram token and LLM key (existing Secret, Vault or inline values): it could not start. */}}
{{- define "parley.validateValues.botSecrets" -}}
{{- if and (not .Values.vault.enabled) (not .Values.secrets.existingSecret) .Values.bot.enabled (or (not .Values.secrets.telegramBotToken) (not .Values.secrets.llmApiKey)) -}}
the bot needs its secrets: set secrets.existingSecret (keys telegram_bot_token, llm_api_key), or vault.enabled=true, or for development secrets.telegramBotToken and secrets.llmApiKey
{{- end -}}
{{- end -}}

{{/* parley.validateValues.webhookSecret: rejects webhook mode with no source for TELEGRAM_WEBHOOK_SECRET, the token that proves an update comes from Telegram. */}}
{{- define "parley.validateValues.webhookSecret" -}}
{{- if and .Values.bot.enabled (eq .Values.bot.mode "webhook") (not .Values.vault.enabled) (not .Values.secrets.existingSecret) (not .Values.secrets.telegramWebhookSecret) -}}
bot.mode=webhook needs TELEGRAM_WEBHOOK_SECRET: key telegram_webhook_secret in secrets.existingSecret, Vault, or secrets.telegramWebhookSecret
{{- end -}}
{{- end -}}

{{/* parley.validateValues.apiReplicas: rejects fewer than 2 API replicas (fixed or the autoscaler's minimum): a single pod cannot be restarted or drained without an outage. */}}
{{- define "parley.validateValues.apiReplicas" -}}
{{- $apiReplicas := ternary .Values.api.autoscaling.minReplicas .Values.api.replicaCount .Values.api.autoscaling.enabled -}}
{{- if lt (int $apiReplicas) 2 -}}
{{- printf "the API runs at least 2 replicas (api.replicaCount / api.autoscaling.minReplicas), got %v" $apiReplicas -}}
{{- end -}}
{{- end -}}

{{/* parley.validateValues.apiAutoscaling: rejects an autoscaler whose maxReplicas is below its minReplicas, which the HorizontalPodAutoscaler API refuses. */}}
{{- define "parley.validateValues.apiAutoscaling" -}}
{{- if and .Values.api.autoscaling.enabled (lt (int .Values.api.autoscaling.maxReplicas) (int .Values.api.autoscaling.minReplicas)) -}}
api.autoscaling.maxReplicas must be at least api.autoscaling.minReplicas
{{- end -}}
{{- end -}}

{{/* parley.validateValues.apiGracePeriod: rejects an API grace period not above shutdown delay + timeout: the kubelet would kill pods before in-flight requests finish. */}}
{{- define "parley.validateValues.apiGracePeriod" -}}
{{- if le (int .Values.api.terminationGracePeriodSeconds) (add (int .Values.api.shutdownDelaySeconds) (int .Values.api.shutdownTimeoutSeconds)) -}}
{{- printf "api.terminationGracePeriodSeconds (%v) must exceed api.shutdownDelaySeconds + api.shutdownTimeoutSeconds (%v), or in-flight requests are killed" .Values.api.terminationGracePeriodSeconds (add (int .Values.api.shutdownDelaySeconds) (int .Values.api.shutdownTimeoutSeconds)) -}}
{{- end -}}
{{- end -}}

{{/* parley.validateValues.botGracePeriod: rejects a bot grace period not above its shutdown timeout: the kubelet would kill pods before in-flight replies finish. */}}
{{- define "parley.validateValues.botGracePeriod" -}}
{{- if le (int .Values.bot.terminationGracePeriodSeconds) (int .Values.bot.shutdownTimeoutSeconds) -}}
{{- printf "bot.terminationGracePeriodSeconds (%v) must exceed bot.shutdownTimeoutSeconds (%v)" .Values.bot.terminationGracePeriodSeconds .Values.bot.shutdownTimeoutSeconds -}}
{{- end -}}
{{- end -}}

{{/* parley.validateValues.apiServiceType: rejects an API Service other than ClusterIP: it carries the management port too, which must stay inside the cluster. */}}
{{- define "parley.validateValues.apiServiceType" -}}
{{- if ne .Values.api.service.type "ClusterIP" -}}
{{- printf "api.service.type=%s would publish the management port (metrics, health, API docs) with the public one: keep ClusterIP and expose the API through api.ingress" .Values.api.service.type -}}
{{- end -}}
{{- end -}}

{{/* parley.validateValues.apiPdbBound: rejects api.pdb.create without minAvailable or maxUnavailable: the PodDisruptionBudget would have no bound to enforce. */}}
{{- define "parley.validateValues.apiPdbBound" -}}
{{- if and .Values.api.pdb.create (not .Values.api.pdb.minAvailable) (not .Values.api.pdb.maxUnavailable) -}}
api.pdb.create=true needs api.pdb.minAvailable or api.pdb.maxUnavailable
{{- end -}}
{{- end -}}

{{/* parley.validateValues.apiPdbOneBound: rejects both api.pdb.minAvailable and maxUnavailable: the PodDisruptionBudget API accepts only one. */}}
{{- define "parley.validateValues.apiPdbOneBound" -}}
{{- if and .Values.api.pdb.minAvailable .Values.api.pdb.maxUnavailable -}}
set only one of api.pdb.minAvailable and api.pdb.maxUnavailable
{{- end -}}
{{- end -}}

{{/* parley.validateValues.apiIngressHostname: rejects an API Ingress without a hostname: its rule and TLS entry are built from it. */}}
{{- define "parley.validateValues.apiIngressHostname" -}}
{{- if and .Values.api.ingress.enabled (not .Values.api.ingress.hostname) -}}
api.ingress.enabled=true needs api.ingress.hostname
{{- end -}}
{{- end -}}

{{/* parley.validateValues.operatorNamespaces: rejects operator.watchNamespaces with operator.clusterWide, which already watches every namespace. */}}
{{- define "parley.validateValues.operatorNamespaces" -}}
{{- if and .Values.operator.clusterWide .Values.operator.watchNamespaces -}}
operator.clusterWide=true watches every namespace: leave operator.watchNamespaces empty
{{- end -}}
{{- end -}}

{{/* parley.validateValues.operatorSecrets: rejects an operator with neither Secret names nor a label selector: it reads only the Secrets these select, never every Secret of a namespace. */}}
{{- define "parley.validateValues.operatorSecrets" -}}
{{- if and .Values.operator.enabled (not .Values.operator.secrets.names) (not .Values.operator.secrets.labelSelector) -}}
operator.secrets: set labelSelector (label mode, e.g. parley.dev/apiuser-password=true) or names (named mode); the operator never reads every Secret
{{- end -}}
{{- end -}}

{{/* parley.validateValues.operatorApiServerEgress: rejects production NetworkPolicies without the API server's addresses: the operator's egress would allow any address on those ports. */}}
{{- define "parley.validateValues.operatorApiServerEgress" -}}
{{- if and .Values.operator.enabled .Values.networkPolicy.enabled (eq .Values.environment "production") (not .Values.networkPolicy.kubeAPIServer.cidrs) -}}
{{- printf "environment=production with networkPolicy.enabled needs networkPolicy.kubeAPIServer.cidrs, or the operator may reach any address on ports %v. List the API server's endpoint addresses (NetworkPolicies see them, not the kubernetes Service IP) with `kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes -o jsonpath='{.items[*].endpoints[*].addresses}'` and set each as <address>/32; check networkPolicy.kubeAPIServer.ports against `-o jsonpath='{.items[*].ports[*].port}'`" (join ", " .Values.networkPolicy.kubeAPIServer.ports) -}}
{{- end -}}
{{- end -}}
