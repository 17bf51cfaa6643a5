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

.PHONY: help sync run test lint fmt migrate envtest seed-demo bench-api load

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.venv/.synced: uv.lock pyproject.toml core/pyproject.toml api/pyproject.toml bot/pyproject.toml operator/pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || { echo "installing uv from PyPI"; python3 -m pip install --quiet uv; }
	$(UV) sync --frozen
	@touch $@

sync: .venv/.synced ## Install the locked dependencies into .venv

run: .venv/.synced ## Run Parley locally (embedded PostgreSQL under .data/ unless DATABASE_URL is set)
	$(UV) run --frozen python -m tools.run

test: .venv/.synced ## Run every test on real PostgreSQL, with per-package coverage >= $(COVERAGE_MIN)%
	$(UV) run --frozen pytest --cov --cov-report=term --cov-report=json:coverage.json $(PYTEST_ARGS)
	$(UV) run --frozen python -m tools.coverage_gate coverage.json --fail-under $(COVERAGE_MIN)

lint: .venv/.synced ## ruff (lint + format check) and mypy --strict
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy core api bot operator tools tests migrations bench

fmt: .venv/.synced ## Format and auto-fix with ruff
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

migrate: .venv/.synced ## Apply migrations to DATABASE_URL (or DB_*) with Alembic
	$(UV) run --frozen alembic upgrade head

seed-demo: .venv/.synced ## Demo data: USERS=2000 MESSAGES=100000 DAYS=90 (REPLACE=1 replaces existing data)
	$(UV) run --frozen python -m tools.seed_demo --users $(USERS) --messages $(MESSAGES) --days $(DAYS) $(if $(REPLACE),--replace)

bench-api: .venv/.synced ## Stats API at 1M and 10M messages vs the direct aggregates -> bench/results/api.json
	$(UV) run --frozen python -m bench.api

load: .venv/.synced ## Locust against a local stack (LOAD_USERS=20 LOAD_SECONDS=30) -> bench/results/load.json
	$(UV) run --frozen python -m load.run --users $(LOAD_USERS) --seconds $(LOAD_SECONDS)

envtest: ## Build/install kube-apiserver, etcd, kubectl, helm, promtool into ~/.cache/parley/tools
	tools/envtest/install.sh

bench-bot: .venv/.synced ## Bot pipeline: msg/s, added latency, DB round trips, RSS -> bench/results/bot.json
	$(UV) run --frozen python -m bench.bot

.PHONY: browser-deps test-dashboard
browser-deps: ## Debian's Chromium for the dashboard's browser tests (apt-get install chromium as root)
	@if [ -x "$${PARLEY_CHROMIUM:-/usr/bin/chromium}" ]; then echo "chromium: $${PARLEY_CHROMIUM:-/usr/bin/chromium}"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else echo "Chromium is missing: run 'sudo apt-get install chromium' (Debian), or set PARLEY_CHROMIUM to a Chromium binary" >&2; exit 1; fi

test-dashboard: .venv/.synced ## Dashboard tests only: served files, then real Chromium (screenshots in tests/artifacts/)
	$(UV) run --frozen pytest tests/api/test_dashboard.py tests/api/test_dashboard_first_admin.py tests/e2e $(PYTEST_ARGS)

.PHONY: bench-operator
bench-operator: .venv/.synced ## Operator: 200 ApiUsers to Ready, resync bcrypt calls, Secret change -> login p95 -> bench/results/operator.json
	$(UV) run --frozen python -m bench.operator
