"""Password sources: a key of a Kubernetes Secret, or a key of a Vault KV v2 secret.

:class:`PasswordSources` picks the source a Target names. Which Secrets may be read is decided in
``kubernetes_secrets``; Vault is read in ``vault_passwords``. Both read off the event loop (the
kubernetes client and hvac block) and hand back a :class:`Password`: the value and a fingerprint of
*where it came from*, never anything derived from the password itself (``password``).
"""

from __future__ import annotations

from parley_operator.model import Target
from parley_operator.sources.kubernetes_secrets import (
    LabelledSecrets,
    NamedSecrets,
    SecretGetter,
    SecretSnapshot,
    label_arguments,
    password_from_secret,
)
from parley_operator.sources.password import Password, SourceError, password_problem
from parley_operator.sources.vault_passwords import VaultPasswords
from parley_operator.status import Reason

__all__ = [
    "LabelledSecrets",
    "NamedSecrets",
    "Password",
    "PasswordSources",
    "SecretGetter",
    "SecretSnapshot",
    "SourceError",
    "VaultPasswords",
    "label_arguments",
    "password_from_secret",
    "password_problem",
]


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
