"""kopf handlers: small functions that hand ApiUsers to the Runtime and write back status and Events.

Registered by :func:`register` with settings in hand (the resync interval is a setting), instead of
at import time, so importing this module has no effect on kopf's default registry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Container, Mapping
from typing import Any, cast

import kopf

from parley_core.logging import get_logger
from parley_core.settings import OperatorSettings
from parley_operator import metrics
from parley_operator.model import (
    GROUP,
    PLURAL,
    SECRET_VERSION_ANNOTATION,
    VERSION,
    InvalidSpecError,
    target_from,
)
from parley_operator.reconcile import DatabaseUnavailableError
from parley_operator.runtime import Runtime, runtime
from parley_operator.sources import SourceError
from parley_operator.status import Outcome, Reason, is_transition, status_patch

RESOURCE = (GROUP, VERSION, PLURAL)

log = get_logger("parley_operator")


async def startup(*, memo: kopf.Memo, **_: Any) -> None:
    """Create the database engine and API clients once, and start the metrics server."""
    settings = memo["settings"]
    assert isinstance(settings, OperatorSettings)
    memo["runtime"] = Runtime.create(settings)
    metrics.serve(settings.operator_host, settings.operator_metrics_port)
    metrics.set_managed({})
    log.info(
        "operator_started",
        metrics=f"{settings.operator_host}:{settings.operator_metrics_port}",
        resync_seconds=settings.operator_resync_seconds,
        namespaces=settings.operator_namespaces or "all",
    )


async def cleanup(*, memo: kopf.Memo, **_: Any) -> None:
    """Close the database pool on shutdown."""
    value = memo.get("runtime")
    if isinstance(value, Runtime):
        await value.close()


def apiusers_by_secret(
    *, namespace: str | None, name: str, spec: kopf.Spec, annotations: kopf.Annotations, **_: Any
) -> Any:
    """Index: (namespace, Secret name) -> the ApiUsers that read their password from it."""
    ref = spec.get("passwordSecretRef")
    if not isinstance(ref, Mapping) or not ref.get("name"):
        return None
    return {(namespace, str(ref["name"])): (name, annotations.get(SECRET_VERSION_ANNOTATION))}


def apiuser_uids(*, uid: str, **_: Any) -> Any:
    """Index: uids of the ApiUsers that exist, to tell a live owner of a row from a gone one."""
    return {uid: True}


async def sync_apiuser(
    *,
    param: str,
    body: kopf.Body,
    status: kopf.Status,
    retry: int,
    memo: kopf.Memo,
    patch: kopf.Patch,
    apiuser_uids: Container[str],
    **_: Any,
) -> None:
    """Sync one ApiUser, write its status into ``patch``, retry temporary failures with backoff.

    One handler for every trigger; ``param`` (set where :func:`register` registers it) names which:

    * ``create``: a new ApiUser — create (or adopt) its row;
    * ``update``: a changed spec or annotation (adopt, a newer Secret version) — re-sync the row;
    * ``resume``: an ApiUser found at operator start — check its row (no bcrypt when nothing changed);
    * ``timer``: the periodic resync — repairs drift (a row deleted or altered behind the operator's back).
    """
    trigger = param
    rt = runtime(memo)
    generation = int(body.metadata.get("generation") or 0)
    try:
        target = target_from(body)
    except InvalidSpecError as exc:
        outcome = Outcome(False, Reason.INVALID_SPEC, str(exc))
        _report(body, status, outcome, patch=patch, generation=generation)
        metrics.RECONCILES.labels(trigger=trigger, result=outcome.result).inc()
        raise kopf.PermanentError(f"invalid spec: {exc}") from None
    outcome = await rt.sync(target, trigger=trigger, owner_alive=lambda uid: uid in apiuser_uids)
    _report(body, status, outcome, patch=patch, generation=generation)
    if outcome.wrote or is_transition(status, outcome):
        log.info(
            "apiuser_synced",
            namespace=target.namespace,
            name=target.name,
            username=target.username,
            trigger=trigger,
            ready=outcome.ready,
            reason=str(outcome.reason),
            detail=outcome.message,
            row_written=outcome.wrote,
        )
    if outcome.temporary:
        raise kopf.TemporaryError(f"{outcome.reason}: {outcome.message}", delay=rt.backoff(retry))


def _report(
    body: kopf.Body, status: kopf.Status, outcome: Outcome, *, patch: kopf.Patch, generation: int
) -> None:
    """Write the status change into ``patch`` and post an Event on transitions and row writes."""
    if is_transition(status, outcome) or outcome.wrote:
        kind = "Normal" if outcome.ready else "Warning"
        kopf.event(body, type=kind, reason=str(outcome.reason), message=outcome.message)
    for key, value in status_patch(status, outcome, generation=generation).items():
        patch.status[key] = value


async def apiuser_deleted(
    *,
    spec: kopf.Spec,
    uid: str,
    namespace: str | None,
    name: str,
    retry: int,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Finalizer: delete the row only if this ApiUser owns it; keep the finalizer while the DB is down."""
    rt = runtime(memo)
    username = str(spec.get("username") or "")
    try:
        removed = await rt.release(uid=uid, username=username)
    except DatabaseUnavailableError as exc:
        metrics.ROW_DELETIONS.labels(result="failed").inc()
        raise kopf.TemporaryError(
            f"{exc}; the finalizer stays until the row is removed", delay=rt.backoff(retry)
        ) from None
    metrics.ROW_DELETIONS.labels(result="deleted" if removed else "not_owned").inc()
    log.info(
        "apiuser_deleted",
        namespace=namespace,
        name=name,
        username=username,
        row="deleted" if removed else "not owned, left alone",
    )


def is_referenced(
    *, namespace: str | None, name: str, apiusers_by_secret: Mapping[Any, Any], **_: Any
) -> bool:
    """Filter of the Secret watch: only Secrets some ApiUser reads."""
    return (namespace, name) in apiusers_by_secret


async def _stamp(rt: Runtime, namespace: str | None, apiuser: str, secret: str, version: str) -> None:
    """Write ``version`` into the ApiUser's parley.dev/secret-version: its update handler then syncs."""
    try:
        await asyncio.to_thread(
            rt.custom_api.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            apiuser,
            {"metadata": {"annotations": {SECRET_VERSION_ANNOTATION: version}}},
            _request_timeout=rt.settings.operator_kube_timeout_seconds,
        )
    except Exception as exc:  # the next resync syncs it anyway
        log.warning(
            "apiuser_mark_failed",
            namespace=namespace,
            name=apiuser,
            secret=secret,
            error=exc.__class__.__name__,
        )


async def secret_changed(
    *,
    event: kopf.RawEvent,
    namespace: str | None,
    name: str,
    body: kopf.Body,
    memo: kopf.Memo,
    apiusers_by_secret: kopf.Index[Any, Any],
    **_: Any,
) -> None:
    """Label mode: a referenced, labelled Secret changed: stamp its version on each ApiUser that reads it.

    The annotation change wakes that ApiUser's update handler, so a rotation is synced by the same
    serialized and retried path as a spec change. The initial listing (type None) is left to the
    resume handlers. A Secret that loses its label arrives as DELETED (it left the labelled watch).
    """
    kind = event.get("type")
    if kind is None:
        return
    rt = runtime(memo)
    version = (
        "deleted" if kind == "DELETED" else f"{body.metadata.uid}/{body.metadata.get('resourceVersion')}"
    )
    for apiuser, stamped in list(apiusers_by_secret.get((namespace, name), [])):
        if stamped != version:
            await _stamp(rt, namespace, apiuser, name, version)


async def secret_poll(
    *,
    namespace: str | None,
    name: str,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    annotations: Mapping[str, str],
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Named mode (no Secret watch): GET the ApiUser's Secret and stamp a version the row lacks.

    Nothing is stamped while the status already holds this Secret version (the row is in step) or the
    annotation already names it (its sync ran and failed for another reason: the resync retries it).
    """
    ref = spec.get("passwordSecretRef")
    if not isinstance(ref, Mapping) or not ref.get("name") or not namespace:
        return
    rt = runtime(memo)
    secret_name = str(ref["name"])
    try:
        found = await rt.reconciler.sources.secrets.get(namespace, secret_name)
    except SourceError:
        return  # not allowed, or the API is down: the sync reports it
    if found is None:
        version = "deleted"
    else:
        version = f"{found.uid}/{found.resource_version}"
        if str(status.get("fingerprint") or "").startswith(f"secret:{found.uid}@{found.resource_version}#"):
            return
    if annotations.get(SECRET_VERSION_ANNOTATION) != version:
        await _stamp(rt, namespace, name, secret_name, version)


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """Register every handler on ``registry``; the timer's interval comes from ``settings``."""
    # An explicit registry has no fallback login: authenticate like the kubernetes client does
    # (in-cluster service account, else KUBECONFIG).
    kopf.on.login(registry=registry)(kopf.login_via_client)
    kopf.on.startup(registry=registry)(startup)
    kopf.on.cleanup(registry=registry)(cleanup)
    kopf.index(*RESOURCE, registry=registry)(apiuser_uids)
    # One sync function for four triggers; `param` is the trigger label of its logs and metrics. The
    # ids are explicit because kopf keeps each handler's progress under its id in the ApiUser. kopf
    # passes indexes (apiuser_uids) as extra keyword arguments, which its callback protocols do not list.
    sync = cast(Any, sync_apiuser)
    kopf.on.create(*RESOURCE, id="apiuser_created", param="create", registry=registry)(sync)
    kopf.on.update(*RESOURCE, id="apiuser_updated", param="update", registry=registry)(sync)
    kopf.on.resume(*RESOURCE, id="apiuser_resumed", param="resume", registry=registry)(sync)
    kopf.on.delete(*RESOURCE, registry=registry)(apiuser_deleted)
    resync = settings.operator_resync_seconds
    kopf.timer(
        *RESOURCE,
        id="apiuser_resync",
        param="timer",
        interval=resync,
        initial_delay=resync,
        registry=registry,
    )(sync)
    if settings.operator_secret_names:
        # Named mode: a watch cannot be limited to several names (and the Role grants get only), so
        # each ApiUser's Secret is polled.
        poll = settings.operator_secret_poll_seconds
        kopf.timer(*RESOURCE, interval=poll, initial_delay=poll, registry=registry)(secret_poll)
        return
    # Label mode: a watch of the labelled Secrets (kopf applies OPERATOR_SECRET_LABEL_SELECTOR).
    kopf.index(*RESOURCE, registry=registry)(apiusers_by_secret)
    # secret_changed and is_referenced take the apiusers_by_secret index the same way.
    kopf.on.event("", "v1", "secrets", when=cast(Any, is_referenced), registry=registry)(
        cast(Any, secret_changed)
    )
