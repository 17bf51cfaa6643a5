"""Password sources: a key of a Kubernetes Secret, or a key of a Vault KV v2 secret.

Which Secrets may be read is decided here (docs/operator.md#which-secrets-the-operator-reads): in label
mode only through a labelled list, in named mode only the named ones, by GET.

Both are read off the event loop (the kubernetes client and hvac are blocking). What comes back is
the password and a fingerprint of *where it came from* (the Secret's uid and resourceVersion, the
Vault path, key and version) — never anything derived from the password itself.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from parley_core.passwords import MAX_PASSWORD_BYTES
from parley_core.vault import (
    VaultAccessDeniedError,
    VaultError,
    VaultReader,
    VaultSettings,
    VaultUnavailableError,
)
from parley_operator.model import SecretRef, Target, VaultRef
from parley_operator.status import Reason


class SourceError(Exception):
    """The password could not be read; ``reason`` is the condition reason, the message never a value."""

    def __init__(self, reason: Reason, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.temporary = temporary


@dataclass(frozen=True)
class Password:
    """A password read from its source, with the fingerprint of the source version it came from."""

    value: str = field(repr=False)
    fingerprint: str
    where: str
    secret_resource_version: str | None = None
    vault_version: int | None = None


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


class VaultPasswords:
    """Reads password keys from Vault KV v2 with the operator's own Vault identity."""

    def __init__(
        self,
        settings: VaultSettings,
        reader_factory: Callable[[VaultSettings], VaultReader] = VaultReader,
    ) -> None:
        self.settings = settings
        self._factory = reader_factory
        self._reader: VaultReader | None = None
        self._lock = threading.Lock()

    def _read(self, ref: VaultRef) -> Password:
        where = f"Vault {self.settings.kv_mount}/{ref.path}"
        if not self.settings.enabled:
            raise SourceError(
                Reason.VAULT_UNAVAILABLE,
                "the operator has no Vault configured: set VAULT_ADDR (and its auth) on the operator",
                temporary=False,
            )
        try:
            with self._lock:
                if self._reader is None:
                    self._reader = self._factory(self.settings)
                reader = self._reader
            try:
                secret = reader.read(ref.path)
            except VaultUnavailableError:
                raise
            except VaultError:
                # A token can expire or be revoked: one fresh login, then the error is real.
                with self._lock:
                    reader.login()
                secret = reader.read(ref.path)
        except VaultUnavailableError as exc:
            raise SourceError(Reason.VAULT_UNAVAILABLE, str(exc), temporary=True) from None
        except VaultAccessDeniedError as exc:
            # Retried with backoff all the same: a policy or role binding is fixed without touching us.
            raise SourceError(Reason.VAULT_ACCESS_DENIED, str(exc), temporary=True) from None
        except VaultError as exc:
            message = str(exc)
            if "has no secret at" in message:
                raise SourceError(Reason.SECRET_NOT_FOUND, message, temporary=False) from None
            raise SourceError(Reason.VAULT_UNAVAILABLE, message, temporary=True) from None
        if ref.key not in secret.data:
            raise SourceError(
                Reason.KEY_NOT_FOUND,
                f"key {ref.key!r} is missing in {where} (version {secret.version})",
                temporary=False,
            )
        value = secret.data[ref.key]
        if not isinstance(value, str):
            raise SourceError(
                Reason.PASSWORD_REJECTED, f"key {ref.key!r} in {where} is not a string", temporary=False
            )
        return Password(
            value=value,
            fingerprint=f"vault:{self.settings.kv_mount}/{ref.path}#{ref.key}@{secret.version}",
            where=f"{where} key {ref.key} version {secret.version}",
            vault_version=secret.version,
        )

    async def read(self, ref: VaultRef) -> Password:
        """The password at ``ref`` (hvac in a worker thread)."""
        return await asyncio.to_thread(self._read, ref)


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


def password_problem(password: str, *, min_length: int) -> str | None:
    """Why ``password`` cannot be used (never quoting it), or None when it is fine."""
    if not password:
        return "the password is empty"
    if len(password) < min_length:
        return f"the password is shorter than {min_length} characters"
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return f"the password is longer than {MAX_PASSWORD_BYTES} bytes in UTF-8 (bcrypt's limit)"
    if any(unicodedata.category(char) == "Cc" for char in password):
        hint = " (a trailing newline from `--from-file`?)" if password.endswith("\n") else ""
        return f"the password contains a control character{hint}"
    return None


class PasswordSources:
    """Where a Target's password comes from: its Secret or its Vault key."""

    def __init__(self, *, secrets: SecretGetter, vault: VaultPasswords) -> None:
        self.secrets = secrets
        self.vault = vault

    async def read(self, target: Target) -> Password:
        """The current password of ``target``, or SourceError."""
        if target.vault_ref is not None:
            return await self.vault.read(target.vault_ref)
        assert target.secret_ref is not None
        ref = target.secret_ref
        secret = await self.secrets.get(target.namespace, ref.name)
        if secret is None:
            raise SourceError(
                Reason.SECRET_NOT_FOUND,
                f"Secret {target.namespace}/{ref.name} does not exist",
                temporary=False,
            )
        return password_from_secret(secret, ref)
