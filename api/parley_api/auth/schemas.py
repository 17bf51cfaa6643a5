"""Bodies of the auth routes: registration in and out."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from parley_core.passwords import MAX_PASSWORD_BYTES

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{2,63}$"
PASSWORD_MIN_CHARS = 12
# Passwords long enough for the length rule that are still among the first an attacker tries.
COMMON_PASSWORDS = frozenset(
    {
        "000000000000",
        "111111111111",
        "123123123123",
        "123456789012",
        "1234567890123",
        "12345678901234",
        "1q2w3e4r5t6y",
        "aaaaaaaaaaaa",
        "abc123456789",
        "abcdefghijkl",
        "administrator",
        "changeme1234",
        "iloveyou1234",
        "letmein12345",
        "passw0rd1234",
        "password1234",
        "password12345",
        "password123456",
        "password!234",
        "qwerty123456",
        "qwertyuiop12",
        "qwertyuiopasdf",
        "welcome12345",
        "parleyparley",
    }
)
_USERNAME = re.compile(USERNAME_PATTERN)


class ApiUserBase(BaseModel):
    """What identifies a dashboard account."""

    username: str


class ApiUserRegister(BaseModel):
    """POST /api/v1/auth/register as received; the account rules are checked after the admin token."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(
        description="3-64 characters: lower-case letters, digits, `.`, `_`, `-`; "
        "starts with a letter or digit.",
        json_schema_extra={"pattern": USERNAME_PATTERN},
    )
    password: SecretStr = Field(
        description=f"At least {PASSWORD_MIN_CHARS} characters and at most {MAX_PASSWORD_BYTES} bytes in "
        "UTF-8; not the username; not a well-known password; no control characters.",
    )
    admin_token: SecretStr | None = Field(
        default=None, description="ADMIN_REGISTRATION_TOKEN; may be sent in `X-Admin-Token` instead."
    )


class ApiUserCreate(ApiUserBase):
    """A new account that passed every rule; each failure names its rule in the error `type`."""

    password: SecretStr

    @field_validator("username")
    @classmethod
    def _username_rule(cls, value: str) -> str:
        if not _USERNAME.fullmatch(value):
            raise PydanticCustomError(
                "username_invalid",
                "username must be 3-64 characters of lower-case letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
            )
        return value

    @field_validator("password")
    @classmethod
    def _password_rules(cls, value: SecretStr) -> SecretStr:
        password = value.get_secret_value()
        if any(ord(char) < 32 or ord(char) == 127 or 0xD800 <= ord(char) <= 0xDFFF for char in password):
            # Lone surrogates (possible through JSON escapes) are not text and cannot be encoded.
            raise PydanticCustomError(
                "password_control_characters",
                "password must be text without control characters or unpaired surrogates",
            )
        if len(password) < PASSWORD_MIN_CHARS:
            raise PydanticCustomError(
                "password_too_short", f"password must be at least {PASSWORD_MIN_CHARS} characters"
            )
        if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
            raise PydanticCustomError(
                "password_too_long",
                f"password must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8 (bcrypt's limit)",
            )
        if password.lower() in COMMON_PASSWORDS:
            raise PydanticCustomError(
                "password_too_common", "password is a well-known password; choose another"
            )
        return value

    @model_validator(mode="after")
    def _password_is_not_username(self) -> Self:
        if self.password.get_secret_value().lower() == self.username.lower():
            raise PydanticCustomError("password_equals_username", "password must differ from the username")
        return self


class ApiUserPublic(ApiUserBase):
    """An account as the API shows it; never the hash."""

    id: int
    created_at: datetime

    @field_serializer("created_at")
    def _utc_z(self, value: datetime) -> str:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
