"""Dashboard accounts for tests: random names and passwords, stored through the repository."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.models import ApiUserSource
from parley_core.passwords import hash_password_async
from parley_core.repositories import api_users

TEST_BCRYPT_ROUNDS = 4  # bcrypt's minimum: tests check behaviour, not cost


@dataclass(frozen=True)
class RandomApiUser:
    """A stored account and the cleartext password the test may log in with."""

    id: int
    username: str
    password: str = field(repr=False)

    @property
    def auth(self) -> tuple[str, str]:
        """httpx's ``auth=`` for Basic credentials."""
        return self.username, self.password


def random_username() -> str:
    """A username that passes the registration rule."""
    return f"user-{secrets.token_hex(6)}"


def random_password() -> str:
    """A password that passes every registration rule."""
    return f"pw-{secrets.token_urlsafe(18)}"


async def create_random_api_user(
    engine: AsyncEngine,
    *,
    username: str | None = None,
    password: str | None = None,
    is_active: bool = True,
    source: ApiUserSource = ApiUserSource.REGISTRATION,
) -> RandomApiUser:
    """Store an account with a bcrypt hash (cost 4) and return it with its password."""
    username = username or random_username()
    password = password or random_password()
    password_hash = await hash_password_async(password, rounds=TEST_BCRYPT_ROUNDS)
    async with engine.begin() as conn:
        record = await api_users.create(conn, username=username, password_hash=password_hash, source=source)
        if not is_active:
            await api_users.update_account(conn, username, is_active=False)
    return RandomApiUser(id=record.id, username=record.username, password=password)


async def change_password(engine: AsyncEngine, username: str, password: str) -> None:
    """Give an account a new password, as the operator would after a Secret changed."""
    password_hash = await hash_password_async(password, rounds=TEST_BCRYPT_ROUNDS)
    async with engine.begin() as conn:
        assert await api_users.update_account(conn, username, password_hash=password_hash)


async def set_active(engine: AsyncEngine, username: str, *, active: bool) -> None:
    """Enable or disable an account."""
    async with engine.begin() as conn:
        assert await api_users.update_account(conn, username, is_active=active)
