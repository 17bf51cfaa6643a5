"""Entry point: `python -m parley_operator` loads settings once, configures logging and kopf, and runs.

One replica only (Deployment strategy Recreate): kopf's peering is not leader election, so it is off.
"""

from __future__ import annotations

import logging
import sys

import kopf

from parley_core.logging import flush_logs
from parley_core.settings import OperatorSettings, settings_for_main
from parley_operator import handlers
from parley_operator.model import FINALIZER, KOPF_PREFIX


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    """kopf's settings: parley.dev finalizer and annotations, watch timeouts, quiet Events."""
    configured = kopf.OperatorSettings()
    configured.persistence.finalizer = FINALIZER
    configured.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    configured.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    configured.peering.standalone = True
    # No watch on CRDs and namespaces (no RBAC for them): the ApiUser CRD must exist at start,
    # which the chart guarantees (crds/ are installed first).
    configured.scanning.disabled = True
    configured.peering.clusterwide = not settings.operator_namespaces
    # A watch that stalls without an error is cut and re-opened instead of silently missing changes.
    configured.watching.server_timeout = settings.operator_watch_server_timeout_seconds
    configured.watching.client_timeout = settings.operator_watch_client_timeout_seconds
    configured.watching.connect_timeout = settings.operator_watch_connect_timeout_seconds
    configured.networking.request_timeout = settings.operator_kube_timeout_seconds * 3
    configured.networking.connect_timeout = settings.operator_kube_timeout_seconds
    if not settings.operator_secret_names:
        # Label mode: the Secret watch carries only labelled Secrets (named mode has no Secret watch).
        configured.watching.label_selectors["", "v1", "secrets"] = settings.operator_secret_label_selector
    # The operator posts its own Events on transitions; kopf's per-handler "succeeded" ones are noise.
    configured.posting.level = logging.WARNING
    configured.execution.max_workers = max(4, settings.operator_hash_concurrency + 2)
    return configured


def main() -> int:
    """Run the operator until SIGTERM/SIGINT; exit 2 on bad configuration."""
    settings = settings_for_main(OperatorSettings, program="parley-operator")
    if settings.log_level != "DEBUG":
        # kopf logs every indexer and handler success, and aiohttp every liveness probe; the
        # operator logs what changed itself.
        for name in ("kopf.objects", "aiohttp.access"):
            logging.getLogger(name).setLevel(logging.WARNING)
    registry = kopf.OperatorRegistry()
    handlers.register(registry, settings)
    liveness = f"http://{settings.operator_host}:{settings.operator_health_port}/healthz"
    try:
        kopf.run(
            registry=registry,
            settings=kopf_settings(settings),
            standalone=True,
            clusterwide=not settings.operator_namespaces,
            namespaces=settings.operator_namespaces,
            liveness_endpoint=liveness,
            memo=kopf.Memo(settings=settings),
        )
    finally:
        flush_logs()
    return 0


if __name__ == "__main__":
    sys.exit(main())
