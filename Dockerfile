# syntax=docker/dockerfile:1.7
# Parley's three images from one file, one target each (build context: the repository root):
#   docker build --target api      -t parley-api .
#   docker build --target bot      -t parley-bot .
#   docker build --target operator -t parley-operator .
# Each image installs one workspace member and its locked dependencies from uv.lock into /app/.venv
# in a build stage; the runtime stage gets only that virtualenv (plus the Alembic scripts), runs as
# an unprivileged user and writes nothing outside /tmp, so it works with a read-only root filesystem.
# Reference: docs/guides/deployment.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# ---- build: resolve nothing, install exactly what uv.lock says ----------------------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
# Bytecode is compiled at build time (the runtime filesystem is read-only); copy, not hardlink, so
# the virtualenv can be copied on its own; never download a Python: use the base image's.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_NO_CACHE=1
WORKDIR /src
# Dependencies first (cached until uv.lock or a pyproject changes), then the workspace sources.
COPY uv.lock pyproject.toml ./
COPY core/pyproject.toml core/pyproject.toml
COPY api/pyproject.toml api/pyproject.toml
COPY bot/pyproject.toml bot/pyproject.toml
COPY operator/pyproject.toml operator/pyproject.toml
# The test harness is a workspace member too: uv reads its pyproject, never installs it here.
COPY testing/pyproject.toml testing/pyproject.toml

FROM build AS build-api
RUN uv sync --frozen --no-dev --no-install-workspace --package parley-api
COPY core/ core/
COPY api/ api/
RUN uv sync --frozen --no-dev --no-editable --package parley-api

FROM build AS build-bot
RUN uv sync --frozen --no-dev --no-install-workspace --package parley-bot
COPY core/ core/
COPY bot/ bot/
RUN uv sync --frozen --no-dev --no-editable --package parley-bot

FROM build AS build-operator
RUN uv sync --frozen --no-dev --no-install-workspace --package parley-operator
COPY core/ core/
COPY operator/ operator/
RUN uv sync --frozen --no-dev --no-editable --package parley-operator

# ---- runtime base: the same Python, no build tools, an unprivileged user --------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 parley \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin parley
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PARLEY_MIGRATIONS_DIR=/app/migrations \
    ENVIRONMENT=production
WORKDIR /app
# Every service checks the schema revision against these scripts; the API image also runs them
# (the chart's migration Job: alembic -c /app/alembic.ini upgrade head).
COPY --chown=root:root alembic.ini /app/alembic.ini
COPY --chown=root:root migrations/ /app/migrations/
# Every image runs unprivileged; what the images add is owned by root, so it stays read-only.
USER 10001:10001

# ---- the three images ------------------------------------------------------------------------------
FROM runtime AS api
COPY --from=build-api --chown=root:root /app/.venv /app/.venv
ENV API_HOST=0.0.0.0 API_PORT=8000
EXPOSE 8000
ENTRYPOINT ["python", "-m", "parley_api"]

FROM runtime AS bot
COPY --from=build-bot --chown=root:root /app/.venv /app/.venv
ENV BOT_HOST=0.0.0.0 BOT_PORT=8080
EXPOSE 8080
ENTRYPOINT ["python", "-m", "parley_bot"]

FROM runtime AS operator
COPY --from=build-operator --chown=root:root /app/.venv /app/.venv
ENV OPERATOR_HOST=0.0.0.0 OPERATOR_HEALTH_PORT=8080 OPERATOR_METRICS_PORT=9090
EXPOSE 8080 9090
ENTRYPOINT ["python", "-m", "parley_operator"]
