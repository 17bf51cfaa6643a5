#!/usr/bin/env bash
# Configure the dev Vault (skaffold -p vault) for Parley: KV v2 at secret/, Kubernetes auth, one
# policy and role per service bound to its ServiceAccount, and the secrets from the environment.
# Usage: TELEGRAM_BOT_TOKEN=… LLM_API_KEY=… manifests/dev/vault-setup.sh [namespace]
set -euo pipefail
NS="${1:-parley}"
vault() { kubectl -n vault exec -i vault-0 -- env VAULT_TOKEN=root vault "$@"; }

vault auth enable kubernetes 2>/dev/null || true
vault write auth/kubernetes/config kubernetes_host="https://kubernetes.default.svc:443"

for svc in api bot operator migrations; do
  path="parley/${svc}"; [ "$svc" = migrations ] && path="parley/api"
  vault policy write "parley-${svc}" - <<POLICY
path "secret/data/${path}" { capabilities = ["read"] }
path "secret/data/parley/dashboard/*" { capabilities = ["read"] }
POLICY
  vault write "auth/kubernetes/role/parley-${svc}" \
    bound_service_account_names="parley-${svc}" bound_service_account_namespaces="${NS}" \
    audience=vault policies="parley-${svc}" ttl=1h
done
# The operator reads dashboard passwords only; the API and bot their own secrets.
vault policy write parley-operator - <<'POLICY'
path "secret/data/parley/operator" { capabilities = ["read"] }
path "secret/data/parley/dashboard/*" { capabilities = ["read"] }
POLICY

vault kv put secret/parley/bot \
  telegram_bot_token="${TELEGRAM_BOT_TOKEN:-123456:placeholder-token}" llm_api_key="${LLM_API_KEY:-placeholder}"
vault kv put secret/parley/api admin_registration_token="$(head -c 18 /dev/urandom | base64)"
vault kv put secret/parley/operator placeholder=1
vault kv put secret/parley/dashboard/bob password="$(head -c 18 /dev/urandom | base64)"
echo "vault-setup: roles parley-{api,bot,operator,migrations} bound in namespace ${NS}"
