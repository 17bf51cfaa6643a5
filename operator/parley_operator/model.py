"""The ApiUser resource as the operator reads it: names, annotations, and a validated target."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from parley_core.models import ApiUserRole

GROUP = "parley.dev"
VERSION = "v1alpha1"
PLURAL = "apiusers"
KIND = "ApiUser"
API_VERSION = f"{GROUP}/{VERSION}"

FINALIZER = "parley.dev/finalizer"
# kopf's own bookkeeping (progress, last handled spec). A sub-domain, not parley.dev itself: kopf
# hides every annotation under its prefix from change detection, and parley.dev/adopt and
# parley.dev/secret-version must stay visible so that setting them triggers a sync.
KOPF_PREFIX = "kopf.parley.dev"
ADOPT_ANNOTATION = "parley.dev/adopt"
# Written by the operator when a referenced Secret changes: the change of annotation wakes the
# ApiUser's update handler, so Secret rotations go through the same (serialized, retried) path.
SECRET_VERSION_ANNOTATION = "parley.dev/secret-version"  # noqa: S105 - a name, not a secret

# The same rule registration applies (parley_api.auth.schemas) and the CRD's pattern.
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_VAULT_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")


class InvalidSpecError(ValueError):
    """The spec cannot ever be synced as written (the CRD's validation was bypassed or is older)."""


@dataclass(frozen=True)
class SecretRef:
    """passwordSecretRef: a key of a Secret in the ApiUser's namespace."""

    name: str
    key: str


@dataclass(frozen=True)
class VaultRef:
    """vault: a key of a KV v2 secret."""

    path: str
    key: str


@dataclass(frozen=True)
class Target:
    """Everything a sync needs to know about one ApiUser."""

    namespace: str
    name: str
    uid: str
    generation: int
    username: str
    secret_ref: SecretRef | None
    vault_ref: VaultRef | None
    disabled: bool
    adopt: bool
    role: ApiUserRole = ApiUserRole.ANALYST

    @property
    def reference(self) -> dict[str, Any]:
        """A minimal body, enough for kopf to post Events about this ApiUser."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"namespace": self.namespace, "name": self.name, "uid": self.uid},
        }


def _text(spec: Mapping[str, Any], key: str) -> str:
    value = spec.get(key)
    return value if isinstance(value, str) else ""


def target_from(body: Mapping[str, Any]) -> Target:
    """Read and check an ApiUser body; InvalidSpecError says what is wrong, in words a user can act on."""
    metadata = body.get("metadata") or {}
    spec = body.get("spec") or {}
    username = _text(spec, "username")
    if not USERNAME.fullmatch(username):
        raise InvalidSpecError(
            "spec.username must be 3-64 characters of lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    raw_secret = spec.get("passwordSecretRef")
    raw_vault = spec.get("vault")
    if (raw_secret is None) == (raw_vault is None):
        raise InvalidSpecError("exactly one password source must be set: passwordSecretRef or vault")
    secret_ref = vault_ref = None
    if isinstance(raw_secret, Mapping):
        secret_ref = SecretRef(name=_text(raw_secret, "name"), key=_text(raw_secret, "key"))
        if not _DNS_SUBDOMAIN.fullmatch(secret_ref.name) or len(secret_ref.name) > 253:
            raise InvalidSpecError("spec.passwordSecretRef.name is not a valid Secret name")
        if not _KEY.fullmatch(secret_ref.key):
            raise InvalidSpecError("spec.passwordSecretRef.key is not a valid Secret key")
    elif isinstance(raw_vault, Mapping):
        vault_ref = VaultRef(path=_text(raw_vault, "path"), key=_text(raw_vault, "key"))
        segments = vault_ref.path.split("/")
        if not vault_ref.path or not all(
            _VAULT_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments
        ):
            raise InvalidSpecError("spec.vault.path must be a relative KV path without '.' or '..' segments")
        if not _KEY.fullmatch(vault_ref.key):
            raise InvalidSpecError("spec.vault.key is not a valid key")
    else:
        raise InvalidSpecError("the password source must be an object")
    raw_role = spec.get("role", ApiUserRole.ANALYST.value)
    if raw_role not in {role.value for role in ApiUserRole}:
        raise InvalidSpecError("spec.role must be analyst or admin")
    annotations = metadata.get("annotations") or {}
    return Target(
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        uid=str(metadata.get("uid") or ""),
        generation=int(metadata.get("generation") or 0),
        username=username,
        secret_ref=secret_ref,
        vault_ref=vault_ref,
        disabled=spec.get("disabled") is True,
        adopt=str(annotations.get(ADOPT_ANNOTATION, "")).lower() == "true",
        role=ApiUserRole(raw_role),
    )
