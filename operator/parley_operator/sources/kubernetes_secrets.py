"""Passwords in Kubernetes Secrets, read only the way the operator's Role allows.

In label mode Secrets are read only through a list filtered by the label selector, in named mode
only the named ones, by GET (docs/operator.md#which-secrets-the-operator-reads). The kubernetes
client blocks, so every read runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from parley_operator.model import SecretRef
from parley_operator.sources.password import Password, SourceError
from parley_operator.status import Reason


@dataclass(frozen=True)
class SecretSnapshot:
    """The parts of a Secret the operator uses; ``data`` stays base64 until a key is decoded."""

    namespace: str
    name: str
    uid: str
    resource_version: str
    data: Mapping[str, str] = field(repr=False)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> SecretSnapshot:
        """From a raw Secret body (a watch event or a kopf handler's ``body``)."""
        metadata = body.get("metadata") or {}
        return cls(
            namespace=str(metadata.get("namespace") or ""),
            name=str(metadata.get("name") or ""),
            uid=str(metadata.get("uid") or ""),
            resource_version=str(metadata.get("resourceVersion") or ""),
            data=dict(body.get("data") or {}),
        )


class SecretGetter(Protocol):
    """Reads one Secret by name; None when it does not exist."""

    async def get(self, namespace: str, name: str) -> SecretSnapshot | None:
        """The Secret, None on 404, SourceError when it may not or could not be read."""
        ...


def _snapshot(namespace: str, name: str, secret: Any) -> SecretSnapshot:
    metadata = secret.metadata
    return SecretSnapshot(
        namespace=namespace,
        name=name,
        uid=str(metadata.uid or ""),
        resource_version=str(metadata.resource_version or ""),
        data=dict(secret.data or {}),
    )


def _unavailable(what: str, exc: BaseException, forbidden_hint: str) -> SourceError:
    """A temporary SourceError for a failed API call: the HTTP status or the error type, never a body."""
    status = getattr(exc, "status", None)
    if status == 403:
        message = f"the operator may not {what} (403): {forbidden_hint}"
    elif status is not None:
        message = f"{what} failed: HTTP {status}"
    else:
        message = f"{what} failed: {type(exc).__name__}"
    return SourceError(Reason.API_UNAVAILABLE, message, temporary=True)


def label_arguments(selector: str) -> str:
    """The `kubectl label` arguments that make a Secret match ``selector`` (``key`` alone: key=true)."""
    pairs = []
    for term in selector.split(","):
        key, _, value = term.replace("==", "=").partition("=")
        pairs.append(f"{key}={value if '=' in term else 'true'}")
    return " ".join(pairs)


class NamedSecrets:
    """Named mode: a GET of the Secrets in ``names`` only, the same set the Role's resourceNames allow.

    A name outside the list is refused here, before any request, so the ApiUser learns why instead of
    seeing the API server's 403.
    """

    def __init__(self, core_api: Any, names: Sequence[str], *, timeout: float) -> None:
        self._core = core_api
        self.names = tuple(names)
        self._timeout = timeout

    def _get(self, namespace: str, name: str) -> SecretSnapshot | None:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        if name not in self.names:
            raise SourceError(
                Reason.SECRET_NOT_ALLOWED,
                f"the operator reads only the Secrets named in OPERATOR_SECRET_NAMES "
                f"({', '.join(self.names)}), not {namespace}/{name}: store the password under a key of one "
                f"of them, or add {name!r} to operator.secrets.names",
                temporary=False,
            )
        what = f"get Secret {namespace}/{name}"
        hint = "its Role must list the Secret in resourceNames (chart: operator.secrets.names)"
        try:
            secret = self._core.read_namespaced_secret(name, namespace, _request_timeout=self._timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _unavailable(what, exc, hint) from None
        except OSError as exc:  # urllib3 errors are OSErrors: connection refused, timeouts
            raise _unavailable(what, exc, hint) from None
        return _snapshot(namespace, name, secret)

    async def get(self, namespace: str, name: str) -> SecretSnapshot | None:
        """See :class:`SecretGetter`."""
        return await asyncio.to_thread(self._get, namespace, name)


class LabelledSecrets:
    """Label mode: Secrets are read only through a list filtered by the label selector and the name.

    The API server applies both selectors, so a Secret without the label never reaches the operator:
    no ``get`` is ever made (the chart's Role has none). When the labelled list is empty, a second list
    asks whether a Secret of that name exists at all, as a server-side Table without the objects (name,
    type, number of keys, age — no data, labels or annotations), to tell SecretNotLabelled from
    SecretNotFound.
    """

    TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"

    def __init__(self, core_api: Any, selector: str, *, timeout: float) -> None:
        self._core = core_api
        self.selector = selector
        self._timeout = timeout

    def _list(self, namespace: str, name: str) -> Any:
        return self._core.list_namespaced_secret(
            namespace,
            label_selector=self.selector,
            field_selector=f"metadata.name={name}",
            _request_timeout=self._timeout,
        )

    def _exists(self, namespace: str, name: str) -> bool:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        api = self._core.api_client
        request = api.param_serialize(
            method="GET",
            resource_path="/api/v1/namespaces/{namespace}/secrets",
            path_params={"namespace": namespace},
            query_params=[("fieldSelector", f"metadata.name={name}"), ("includeObject", "None")],
            header_params={"Accept": self.TABLE},
            auth_settings=["BearerToken"],
        )
        response = api.call_api(*request, _request_timeout=self._timeout)
        response.read()
        if not 200 <= response.status < 300:
            raise ApiException(status=response.status, reason=response.reason)
        table = json.loads(response.data or b"{}")
        return bool(table.get("rows"))

    def _get(self, namespace: str, name: str) -> SecretSnapshot | None:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        what = f"list Secrets in {namespace}"
        hint = "label mode needs list and watch on secrets in this namespace"
        try:
            listed = self._list(namespace, name)
            items = [item for item in listed.items or [] if item.metadata.name == name]
            exists = bool(items) or self._exists(namespace, name)
        except ApiException as exc:
            raise _unavailable(what, exc, hint) from None
        except OSError as exc:  # urllib3 errors are OSErrors: connection refused, timeouts
            raise _unavailable(what, exc, hint) from None
        if items:
            return _snapshot(namespace, name, items[0])
        if exists:
            raise SourceError(
                Reason.SECRET_NOT_LABELLED,
                f"Secret {namespace}/{name} lacks the label {self.selector}: the operator reads only "
                f"Secrets that carry it; add it with `kubectl -n {namespace} label secret {name} "
                f"{label_arguments(self.selector)}`",
                temporary=False,
            )
        return None

    async def get(self, namespace: str, name: str) -> SecretSnapshot | None:
        """See :class:`SecretGetter`."""
        return await asyncio.to_thread(self._get, namespace, name)


def password_from_secret(secret: SecretSnapshot, ref: SecretRef) -> Password:
    """Decode ``ref.key`` of ``secret``; missing keys and undecodable values are SourceErrors."""
    where = f"Secret {secret.namespace}/{secret.name}"
    raw = secret.data.get(ref.key)
    if raw is None:
        keys = ", ".join(sorted(secret.data)) or "none"
        raise SourceError(
            Reason.KEY_NOT_FOUND,
            f"{where} has no key {ref.key!r} (keys: {keys})",
            temporary=False,
        )
    try:
        value = base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise SourceError(
            Reason.PASSWORD_REJECTED, f"key {ref.key!r} of {where} is not UTF-8 text", temporary=False
        ) from None
    return Password(
        value=value,
        fingerprint=f"secret:{secret.uid}@{secret.resource_version}#{ref.key}",
        where=f"{where} key {ref.key} resourceVersion {secret.resource_version}",
        secret_resource_version=secret.resource_version,
    )
