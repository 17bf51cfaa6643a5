"""What a password source hands back — the password and where it came from — or why it could not.

A fingerprint names the source version (a Secret's uid and resourceVersion, a Vault path, key and
version), never anything derived from the password itself, and no message quotes a value.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from parley_core.passwords import MAX_PASSWORD_BYTES
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
