"""Creating a dashboard account by self-registration with the admin token."""

from __future__ import annotations

import hmac

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core import passwords
from parley_core.models import ApiUserSource
from parley_core.repositories import api_users
from parley_core.repositories.api_users import ApiUserRecord


def admin_token_matches(presented: SecretStr | None, expected: SecretStr) -> bool:
    """Constant-time comparison, so response timing does not reveal how much of a guess was right."""
    if presented is None:
        return False
    return hmac.compare_digest(
        presented.get_secret_value().encode("utf-8", "surrogatepass"),
        expected.get_secret_value().encode("utf-8", "surrogatepass"),
    )


async def register_account(
    engine: AsyncEngine, *, username: str, password: SecretStr, bcrypt_rounds: int
) -> ApiUserRecord:
    """Hash the password in a worker thread, then insert; raises DuplicateUsernameError."""
    password_hash = await passwords.hash_password_async(password.get_secret_value(), rounds=bcrypt_rounds)
    # The transaction opens only after bcrypt is done, so no connection waits on the hash.
    async with engine.begin() as conn:
        return await api_users.create(
            conn, username=username, password_hash=password_hash, source=ApiUserSource.REGISTRATION
        )
