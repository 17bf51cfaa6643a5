"""Dashboard accounts (``api_users``): lookups for Basic auth, creation by registration, updates.

Functions take an open AsyncConnection; callers own the transaction. Uniqueness of usernames is left
to the database's unique constraint (an atomic ``ON CONFLICT``), never to a racy look-before-insert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import RowMapping, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.models import ApiUser, ApiUserSource

_COLUMNS = (
    ApiUser.id,
    ApiUser.username,
    ApiUser.password_hash,
    ApiUser.is_active,
    ApiUser.source,
    ApiUser.created_at,
    ApiUser.updated_at,
)


class DuplicateUsernameError(Exception):
    """An account with this username already exists."""

    def __init__(self, username: str) -> None:
        super().__init__(f"username {username!r} already exists")
        self.username = username


@dataclass(frozen=True)
class ApiUserRecord:
    """One ``api_users`` row as the API needs it (the owner columns are the operator's business)."""

    id: int
    username: str
    password_hash: str
    is_active: bool
    source: ApiUserSource
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: RowMapping) -> ApiUserRecord:
        """Build from the mapping of a row selected or returned with ``_COLUMNS``."""
        return cls(**row)


async def get_by_username(conn: AsyncConnection, username: str) -> ApiUserRecord | None:
    """The account named ``username`` (one lookup on the unique index), or None."""
    row = (await conn.execute(select(*_COLUMNS).where(ApiUser.username == username))).mappings().one_or_none()
    return ApiUserRecord.from_row(row) if row is not None else None


async def create(
    conn: AsyncConnection,
    *,
    username: str,
    password_hash: str,
    source: ApiUserSource = ApiUserSource.REGISTRATION,
) -> ApiUserRecord:
    """Insert an active account; raises DuplicateUsernameError when the username is taken."""
    statement = (
        insert(ApiUser)
        .values(username=username, password_hash=password_hash, source=source, is_active=True)
        .on_conflict_do_nothing(index_elements=[ApiUser.username])
        .returning(*_COLUMNS)
    )
    row = (await conn.execute(statement)).mappings().one_or_none()
    if row is None:
        raise DuplicateUsernameError(username)
    return ApiUserRecord.from_row(row)


async def update_account(
    conn: AsyncConnection,
    username: str,
    *,
    password_hash: str | None = None,
    is_active: bool | None = None,
) -> bool:
    """Change the password hash and/or the active flag; False when there is no such account."""
    values: dict[str, object] = {}
    if password_hash is not None:
        values["password_hash"] = password_hash
    if is_active is not None:
        values["is_active"] = is_active
    if not values:
        raise ValueError("nothing to update")
    result = await conn.execute(
        update(ApiUser).where(ApiUser.username == username).values(**values).returning(ApiUser.id)
    )
    return result.one_or_none() is not None
