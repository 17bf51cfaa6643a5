# Parley: the one entry point for people and CI. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv: the binary when installed, else the PyPI package run as a module (installed on first use).
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST_ARGS ?=
COVERAGE_MIN ?= 85
USERS ?= 2000
MESSAGES ?= 100000
DAYS ?= 90
LOAD_USERS ?= 20
LOAD_SECONDS ?= 30

# Variables a `## ` text may name as $(NAME): `make help` shows their values (`make help USERS=50` too).
HELP_VARS := COVERAGE_MIN USERS MESSAGES DAYS LOAD_USERS LOAD_SECONDS

# Bitnami's readme-generator-for-helm, exactly as tools/chart-readme/package-lock.json pins it (npm ci).
CHART_README_DIR := tools/chart-readme
CHART_README_STAMP := $(CHART_README_DIR)/node_modules/.installed

# The kind cluster, namespace and release of the dev loop and the deploy targets.
KIND_CLUSTER ?= parley
NAMESPACE ?= parley
RELEASE ?= parley
KUBE_CONTEXT ?= kind-$(KIND_CLUSTER)
HELM ?= $(shell command -v helm 2>/dev/null || sed -n 's/^PARLEY_HELM=//p' "$${PARLEY_TOOLS_DIR:-$$HOME/.cache/parley/tools}/envtest.env" 2>/dev/null)
PROD_VALUES ?= charts/parley/values-production.yaml

.PHONY: help sync run test lint fmt migrate seed-demo test-dashboard test-cluster chart-lint chart-readme i18n envtest envtest-if-go chart-readme-if-npm chart-readme-deps images node node-down browser-deps bench-api bench-bot bench-faults bench-operator load up dev down dev-monitoring dev-vault template-production deploy-production rollback-production

##@ Run, test and lint

help: ## List the targets, by audience (`##@` lines are the group headings)
	@grep -hE '^([a-z-]+:.*## |##@ )' $(MAKEFILE_LIST) | $(foreach v,$(HELP_VARS),$(v)='$($(v))') awk -F ':.*## ' ' \
	  /^##@ / { n++; head[n] = substr($$0, 5); next } \
	  { n++; name[n] = $$1; text[n] = $$2; if (length($$1) > width) width = length($$1) } \
	  END { for (i = 1; i <= n; i++) { if (i in head) { printf "%s%s:\n", (i > 1 ? "\n" : ""), head[i]; continue } \
	    t = text[i]; out = ""; \
	    while (match(t, /\$$\([A-Z_]+\)/)) { v = substr(t, RSTART + 2, RLENGTH - 3); \
	      out = out substr(t, 1, RSTART - 1) ((v in ENVIRON) ? ENVIRON[v] : substr(t, RSTART, RLENGTH)); \
	      t = substr(t, RSTART + RLENGTH) } \
	    printf "  make %-" width "s  %s\n", name[i], out t } }'

.venv/.synced: uv.lock pyproject.toml core/pyproject.toml api/pyproject.toml bot/pyproject.toml operator/pyproject.toml testing/pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || { echo "installing uv from PyPI"; python3 -m pip install --quiet uv; }
	$(UV) sync --frozen
	@touch $@

sync: .venv/.synced ## Install the locked dependencies into .venv

run: .venv/.synced ## Run Parley locally (embedded PostgreSQL under .data/ unless DATABASE_URL is set)
	$(UV) run --frozen python -m tools.run

test: .venv/.synced envtest-if-go chart-readme-if-npm ## Run every test on real PostgreSQL, with per-package coverage >= $(COVERAGE_MIN)%
	$(UV) run --frozen pytest --cov --cov-report=term --cov-report=json:coverage.json $(PYTEST_ARGS)
	$(UV) run --frozen python -m tools.coverage_gate coverage.json --fail-under $(COVERAGE_MIN)

lint: .venv/.synced ## ruff (lint + format check) and mypy --strict
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy core api bot operator testing tools tests migrations

fmt: .venv/.synced ## Format and auto-fix with ruff
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

migrate: .venv/.synced ## Apply migrations to DATABASE_URL (or DB_*) with Alembic
	$(UV) run --frozen alembic upgrade head

seed-demo: .venv/.synced ## Demo data: USERS=$(USERS) MESSAGES=$(MESSAGES) DAYS=$(DAYS) (REPLACE=1 replaces existing data)
	$(UV) run --frozen python -m tools.seed_demo --users $(USERS) --messages $(MESSAGES) --days $(DAYS) $(if $(REPLACE),--replace)

test-dashboard: .venv/.synced ## Dashboard tests only: served files, then real Chromium (screenshots in tests/artifacts/)
	$(UV) run --frozen pytest tests/api/test_dashboard.py tests/api/test_dashboard_first_admin.py tests/e2e $(PYTEST_ARGS)

test-cluster: .venv/.synced ## Only the end-to-end suite on the test node (tests/cluster); make test runs it too
	$(UV) run --frozen pytest tests/cluster $(PYTEST_ARGS)

chart-lint: .venv/.synced chart-readme-if-npm ## helm lint --strict + every chart test: templates, promtool, envtest API server (needs make envtest)
	$(HELM) lint --strict charts/parley --set secrets.existingSecret=parley-secrets
	$(UV) run --frozen pytest tests/chart $(PYTEST_ARGS)

i18n: .venv/.synced ## Re-extract the bot's texts into parley.pot and merge them into each language's parley.po
	cd bot && ../.venv/bin/pybabel extract -F babel.cfg -k N_ -k ngettext:1,2 --no-location --sort-output \
		--omit-header -o parley_bot/locales/parley.pot parley_bot
	cd bot && for lang in en ru; do \
		if [ -f parley_bot/locales/$$lang/LC_MESSAGES/parley.po ]; then \
			../.venv/bin/pybabel update --no-fuzzy-matching --ignore-obsolete -i parley_bot/locales/parley.pot \
				-d parley_bot/locales -D parley -l $$lang; \
		else ../.venv/bin/pybabel init -i parley_bot/locales/parley.pot -d parley_bot/locales -D parley -l $$lang; fi; \
	done

chart-readme: $(CHART_README_STAMP) ## Regenerate the Parameters section of charts/parley/README.md from the @param comments of values.yaml
	$(CHART_README_DIR)/node_modules/.bin/readme-generator --values charts/parley/values.yaml --readme charts/parley/README.md

##@ Test infrastructure (built once, cached under ~/.cache/parley)

envtest: ## Build/install kube-apiserver, etcd, kubectl, helm, promtool, vault into ~/.cache/parley/tools
	tools/envtest/install.sh

# `make test` builds the control-plane tools when Go is there; without Go the tests that need them skip
# (and fail under CI=true), as docs/development.md says.
envtest-if-go:
	@if command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ]; then tools/envtest/install.sh; \
	else echo "make test: Go not found: tests needing kube-apiserver/etcd/helm/promtool will skip (fail under CI=true); install Go 1.26+ and run make envtest"; fi

# Likewise the chart README's generator when npm is there (tests/chart/test_chart_readme.py runs it).
chart-readme-if-npm:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory chart-readme-deps; \
	else echo "make test: npm not found: the chart README test will skip (fail under CI=true); install nodejs and npm (Debian)"; fi

$(CHART_README_STAMP): $(CHART_README_DIR)/package.json $(CHART_README_DIR)/package-lock.json
	npm ci --prefix $(CHART_README_DIR) --no-audit --no-fund
	@touch $@

chart-readme-deps: $(CHART_README_STAMP) ## Install the pinned readme-generator-for-helm into tools/chart-readme/node_modules (npm ci)

images: ## The api, bot, operator images and the test PostgreSQL image -> ~/.cache/parley/images/*.tar (Docker, else buildah; cached; IMAGE_TAG)
	tools/images/build.sh --with-test-fixtures

node: .venv/.synced ## A single-node cluster on this machine (root; needs make envtest, make images): pods on a real kubelet
	$(UV) run --frozen python -m tools.node up

node-down: .venv/.synced ## Stop the test node: no process, mount, address or iptables chain of it is left
	$(UV) run --frozen python -m tools.node down

browser-deps: ## Debian's Chromium for the dashboard's browser tests (apt-get install chromium as root)
	@if [ -x "$${PARLEY_CHROMIUM:-/usr/bin/chromium}" ]; then echo "chromium: $${PARLEY_CHROMIUM:-/usr/bin/chromium}"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else echo "Chromium is missing: run 'sudo apt-get install chromium' (Debian), or set PARLEY_CHROMIUM to a Chromium binary" >&2; exit 1; fi

##@ Benchmarks and load tests (results under tools/bench/results)

bench-api: .venv/.synced ## Stats API at 1M and 10M messages vs the direct aggregates, then 50 clients on one account across three auth-cache lifetimes -> tools/bench/results/api.json, api_auth.json
	$(UV) run --frozen python -m tools.bench.api
	$(UV) run --frozen python -m tools.bench.api_auth

bench-bot: .venv/.synced ## Bot pipeline: msg/s, added latency, DB round trips, RSS -> tools/bench/results/bot.json
	$(UV) run --frozen python -m tools.bench.bot

bench-faults: .venv/.synced ## Bot under faults (kill -9, PostgreSQL down, hangs, bursts): lost/duplicated/recovery -> tools/bench/results/faults.json
	$(UV) run --frozen python -m tools.bench.faults

bench-operator: .venv/.synced ## Operator: 200 ApiUsers to Ready, resync bcrypt calls, Secret change -> login p95 -> tools/bench/results/operator.json
	$(UV) run --frozen python -m tools.bench.operator

load: .venv/.synced ## Locust: API (LOAD_USERS=$(LOAD_USERS)) and bot (50 Telegram users) for LOAD_SECONDS=$(LOAD_SECONDS) each -> tools/bench/results/load.json
	$(UV) run --frozen python -m tools.load.run --users $(LOAD_USERS) --seconds $(LOAD_SECONDS)

##@ Dev loop on kind (Docker, kind, skaffold)

up: ## kind cluster from manifests/kind-config.yaml + dev Secret + skaffold run (SKAFFOLD_PROFILE=vault for Vault)
	@command -v kind >/dev/null && command -v skaffold >/dev/null && command -v docker >/dev/null || { echo "up: needs docker, kind and skaffold on PATH"; exit 1; }
	kind get clusters | grep -qx '$(KIND_CLUSTER)' || kind create cluster --name $(KIND_CLUSTER) --config manifests/kind-config.yaml
	kubectl --context $(KUBE_CONTEXT) create namespace $(NAMESPACE) --dry-run=client -o yaml | kubectl --context $(KUBE_CONTEXT) apply -f -
	kubectl --context $(KUBE_CONTEXT) -n $(NAMESPACE) create secret generic parley-dev-secrets \
	  --from-literal=telegram_bot_token="$${TELEGRAM_BOT_TOKEN:-123456:placeholder-token}" \
	  --from-literal=llm_api_key="$${LLM_API_KEY:-placeholder}" \
	  --dry-run=client -o yaml | kubectl --context $(KUBE_CONTEXT) apply -f -
	skaffold run --kube-context $(KUBE_CONTEXT) $(if $(SKAFFOLD_PROFILE),-p $(SKAFFOLD_PROFILE))

dev: ## skaffold dev on the kind cluster: rebuild and redeploy on every change, port-forward the API to :8000
	skaffold dev --kube-context $(KUBE_CONTEXT) $(if $(SKAFFOLD_PROFILE),-p $(SKAFFOLD_PROFILE))

down: ## Delete the kind cluster (and everything in it)
	kind delete cluster --name $(KIND_CLUSTER)

dev-monitoring: ## kube-prometheus-stack on kind with manifests/dev/kube-prometheus-stack-values.yaml (before make up)
	$(HELM) upgrade --install kube-prometheus-stack kube-prometheus-stack --repo https://prometheus-community.github.io/helm-charts \
	  --kube-context $(KUBE_CONTEXT) -n monitoring --create-namespace --wait -f manifests/dev/kube-prometheus-stack-values.yaml

dev-vault: ## Vault in dev mode on kind + roles/secrets (manifests/dev/vault-*), then: make up SKAFFOLD_PROFILE=vault
	$(HELM) upgrade --install vault vault --repo https://helm.releases.hashicorp.com \
	  --kube-context $(KUBE_CONTEXT) -n vault --create-namespace --wait -f manifests/dev/vault-values.yaml
	kubectl --context $(KUBE_CONTEXT) -n vault wait --for=condition=Ready pod/vault-0 --timeout=120s
	manifests/dev/vault-setup.sh $(NAMESPACE)

##@ Production deploy (docs/guides/production-deployment.md)

template-production: ## Render values-production.yaml for review (API_DIGEST= BOT_DIGEST= OPERATOR_DIGEST=)
	$(HELM) template $(RELEASE) charts/parley -n $(NAMESPACE) -f $(PROD_VALUES) --api-versions monitoring.coreos.com/v1 \
	  $(if $(API_DIGEST),--set api.image.digest=$(API_DIGEST)) $(if $(BOT_DIGEST),--set bot.image.digest=$(BOT_DIGEST)) \
	  $(if $(OPERATOR_DIGEST),--set operator.image.digest=$(OPERATOR_DIGEST))

deploy-production: ## helm upgrade --install with values-production.yaml; API_DIGEST, BOT_DIGEST, OPERATOR_DIGEST required
	@test -n "$(API_DIGEST)" -a -n "$(BOT_DIGEST)" -a -n "$(OPERATOR_DIGEST)" || { echo "deploy-production: set API_DIGEST, BOT_DIGEST and OPERATOR_DIGEST (sha256:...)"; exit 2; }
	$(HELM) upgrade --install $(RELEASE) charts/parley -n $(NAMESPACE) -f $(PROD_VALUES) \
	  --set api.image.digest=$(API_DIGEST) --set bot.image.digest=$(BOT_DIGEST) --set operator.image.digest=$(OPERATOR_DIGEST) \
	  --atomic --wait --timeout 15m --history-max 10
	$(HELM) test $(RELEASE) -n $(NAMESPACE) --logs

rollback-production: ## helm rollback to REVISION (default: the previous one); the schema stays, see the guide
	$(HELM) rollback $(RELEASE) $(REVISION) -n $(NAMESPACE) --wait --timeout 10m
