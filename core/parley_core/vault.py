"""Reading secrets from Vault KV v2 with hvac: Kubernetes or token auth, retries, clear errors.

hvac is synchronous and has no retries of its own: requests are retried by urllib3 on connection
errors and on 412/429/500/502/503, and async callers run these functions in a thread. Every failure
leaves as a VaultError naming the address, path or role (never a value): VaultUnavailableError
(try later), VaultAccessDeniedError (login or policy refused), or VaultError (anything else).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import hvac
import hvac.exceptions
import requests
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY_STATUSES = (412, 429, 500, 502, 503)  # 429: a Vault rate-limit quota (Retry-After honoured)
DEFAULT_SA_TOKEN_PATH = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class VaultError(RuntimeError):
    """Vault could not give what was asked; the message names address, path and key, never values."""


class VaultUnavailableError(VaultError):
    """Vault did not answer, or answered 5xx / 429, after every retry."""


class VaultAccessDeniedError(VaultError):
    """Vault refused: the login (the role's bound service account) or the policy (the path)."""


# Answers that mean "try again later" (after the session's own retries ran out).
_UNAVAILABLE: tuple[type[Exception], ...] = (
    hvac.exceptions.VaultDown,
    hvac.exceptions.InternalServerError,
    hvac.exceptions.BadGateway,
    hvac.exceptions.RateLimitExceeded,
    requests.RequestException,
)
_UNAVAILABLE_READING = (*_UNAVAILABLE, hvac.exceptions.PreconditionFailed)  # 412: a standby behind


class VaultSettings(BaseSettings):
    """Where Vault is and how to log in; read from VAULT_* variables (and .env)."""

    model_config = SettingsConfigDict(
        env_prefix="VAULT_", env_file=".env", extra="ignore", populate_by_name=True
    )

    addr: str | None = Field(default=None, description="Vault address; unset turns Vault off.")
    auth_method: Literal["auto", "kubernetes", "token"] = Field(
        default="auto",
        description="`kubernetes` in a cluster, `token` locally; `auto` picks token when "
        "VAULT_TOKEN is set, else kubernetes.",
    )
    token: SecretStr | None = Field(default=None, description="Token for token auth.")
    role: str | None = Field(default=None, description="Vault role for Kubernetes auth.")
    k8s_mount: str = Field(default="kubernetes", description="Mount of the Kubernetes auth method.")
    k8s_token_path: Path = Field(
        default=DEFAULT_SA_TOKEN_PATH,
        description="Service-account token file, re-read at every login (projected tokens rotate).",
    )
    kv_mount: str = Field(default="secret", description="Mount point of the KV v2 engine.")
    secret_path: str | None = Field(
        default=None, description="KV v2 path holding this service's secrets, e.g. `parley/api`."
    )
    namespace: str | None = Field(default=None, description="Vault Enterprise namespace.")
    cacert: str | None = Field(default=None, description="CA bundle to verify Vault's TLS.")
    timeout_seconds: float = Field(default=5.0, gt=0, description="Timeout of one HTTP request.")
    retries: int = Field(default=4, ge=0, le=20, description="Retries on 412/5xx and connection errors.")

    @property
    def enabled(self) -> bool:
        """Vault is used only when an address is configured."""
        return bool(self.addr)

    def resolved_auth_method(self) -> Literal["kubernetes", "token"]:
        """The auth method `auto` stands for in this environment."""
        if self.auth_method != "auto":
            return self.auth_method
        return "token" if self.token is not None else "kubernetes"


@dataclass(frozen=True)
class VaultSecret:
    """One version of a KV v2 secret: its keys and the version number (the operator's fingerprint)."""

    path: str
    data: dict[str, Any]
    version: int


def _session(settings: VaultSettings) -> requests.Session:
    retry = Retry(
        total=settings.retries,
        connect=settings.retries,
        read=settings.retries,
        status=settings.retries,
        backoff_factor=0.2,
        backoff_jitter=0.1,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # logins are POSTs and safe to repeat
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class VaultReader:
    """A logged-in hvac client that reads KV v2 secrets. Blocking: call from a thread in async code."""

    def __init__(self, settings: VaultSettings) -> None:
        if not settings.addr:
            raise VaultError("Vault is not configured: set VAULT_ADDR")
        self.settings = settings
        verify: bool | str = settings.cacert or True
        self._client = hvac.Client(
            url=settings.addr,
            timeout=settings.timeout_seconds,
            verify=verify,
            namespace=settings.namespace,
            session=_session(settings),
        )
        self._logged_in = False

    def _describe(self) -> str:
        return f"Vault at {self.settings.addr}"

    def login(self) -> None:
        """Authenticate; Kubernetes auth re-reads the service-account token file every time."""
        method = self.settings.resolved_auth_method()
        try:
            if method == "token":
                if self.settings.token is None:
                    raise VaultError("VAULT_AUTH_METHOD=token needs VAULT_TOKEN")
                self._client.token = self.settings.token.get_secret_value()
            else:
                if not self.settings.role:
                    raise VaultError("Kubernetes auth to Vault needs VAULT_ROLE")
                try:
                    jwt = self.settings.k8s_token_path.read_text().strip()
                except OSError as exc:
                    raise VaultError(
                        f"cannot read the service-account token at {self.settings.k8s_token_path}: "
                        f"{exc.strerror}"
                    ) from None
                self._client.auth.kubernetes.login(
                    role=self.settings.role, jwt=jwt, mount_point=self.settings.k8s_mount
                )
        except hvac.exceptions.Forbidden:
            raise VaultAccessDeniedError(
                f"{self._describe()} refused the {method} login (role {self.settings.role!r}): "
                "check the role's bound service account and namespace"
            ) from None
        except hvac.exceptions.InvalidRequest as exc:
            raise VaultError(f"{self._describe()} rejected the {method} login: {_errors(exc)}") from None
        except _UNAVAILABLE as exc:
            raise VaultUnavailableError(
                f"{self._describe()} is unavailable during login: {type(exc).__name__}"
            ) from None
        except hvac.exceptions.VaultError as exc:  # 401, 405, 501...: never a raw hvac error
            raise VaultError(
                f"{self._describe()} answered the {method} login with {type(exc).__name__}: {_errors(exc)}"
            ) from None
        self._logged_in = True

    def read(self, path: str, *, version: int | None = None) -> VaultSecret:
        """Read one KV v2 secret (latest version unless given); a deleted version is an error."""
        if not self._logged_in:
            self.login()
        mount = self.settings.kv_mount
        where = f"{mount}/{path}"
        try:
            response = self._client.secrets.kv.v2.read_secret_version(
                path=path, version=version, mount_point=mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.Forbidden:
            raise VaultAccessDeniedError(
                f"{self._describe()} denied reading {where}: check the policy attached to the role"
            ) from None
        except hvac.exceptions.InvalidPath:
            raise VaultError(
                f"{self._describe()} has no secret at {where} (missing or its version is deleted)"
            ) from None
        except _UNAVAILABLE_READING as exc:
            raise VaultUnavailableError(
                f"{self._describe()} is unavailable reading {where}: {type(exc).__name__}"
            ) from None
        except hvac.exceptions.VaultError as exc:  # 400, 401, 405...: never a raw hvac error
            raise VaultError(
                f"{self._describe()} answered reading {where} with {type(exc).__name__}: {_errors(exc)}"
            ) from None
        body = response.get("data") or {}
        data = body.get("data") or {}
        metadata = body.get("metadata") or {}
        return VaultSecret(path=path, data=dict(data), version=int(metadata.get("version") or 0))

    def read_key(self, path: str, key: str) -> tuple[str, int]:
        """Read one key of a secret and the secret's version; a missing key names itself."""
        secret = self.read(path)
        if key not in secret.data:
            raise VaultError(
                f"key {key!r} is missing at {self.settings.kv_mount}/{path} (version {secret.version})"
            )
        return str(secret.data[key]), secret.version


def _errors(exc: hvac.exceptions.VaultError) -> str:
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list) and errors:
        return "; ".join(str(e) for e in errors)[:200]
    return type(exc).__name__
