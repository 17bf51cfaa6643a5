"""Passwords in Vault KV v2, read with the operator's own Vault identity (hvac blocks: a worker thread)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from parley_core.vault import (
    VaultAccessDeniedError,
    VaultError,
    VaultReader,
    VaultSettings,
    VaultUnavailableError,
)
from parley_operator.model import VaultRef
from parley_operator.sources.password import Password, SourceError
from parley_operator.status import Reason


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
