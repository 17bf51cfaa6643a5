"""`make run`'s first dashboard account: created once, only when no account exists."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.passwords import verify_password
from parley_core.repositories import api_users
from tests.utils.api_users import create_random_api_user
from tools.run import FIRST_ADMIN, create_first_admin


async def test_first_admin_is_created_once_with_a_random_password(
    database_url: str, engine: AsyncEngine
) -> None:
    password = await create_first_admin(database_url, bcrypt_rounds=4)

    assert password is not None
    assert len(password) >= 20
    async with engine.connect() as conn:
        account = await api_users.get_by_username(conn, FIRST_ADMIN)
    assert account is not None
    assert account.is_active
    assert verify_password(password, account.password_hash)
    assert password not in account.password_hash
    assert await create_first_admin(database_url, bcrypt_rounds=4) is None


async def test_no_first_admin_when_an_account_exists(database_url: str, engine: AsyncEngine) -> None:
    await create_random_api_user(engine, username="ana.lyst")

    assert await create_first_admin(database_url, bcrypt_rounds=4) is None
    async with engine.connect() as conn:
        assert await api_users.get_by_username(conn, FIRST_ADMIN) is None
