"""Dashboard accounts (``api_users``): lookups for Basic auth, creation by registration, updates.

Functions take an open AsyncConnection; callers own the transaction. Uniqueness of usernames is left
to the database's unique constraint (an atomic ``ON CONFLICT``), never to a racy look-before-insert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import RowMapping, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.models import ApiUser, ApiUserRole, ApiUserSource

_COLUMNS = (
    ApiUser.id,
    ApiUser.username,
    ApiUser.password_hash,
    ApiUser.is_active,
    ApiUser.source,
    ApiUser.role,
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
    role: ApiUserRole
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: RowMapping) -> ApiUserRecord:
        """Build from the mapping of a row selected or returned with ``_COLUMNS``."""
        return cls(**row)


# Built once: every authenticated API request runs it, and reusing the statement object spares
# SQLAlchemy building it, computing its cache key and adapting the cached result columns each time.
_BY_USERNAME = select(*_COLUMNS).where(ApiUser.username == bindparam("username"))


async def get_by_username(conn: AsyncConnection, username: str) -> ApiUserRecord | None:
    """The account named ``username`` (one lookup on the unique index), or None."""
    row = (await conn.execute(_BY_USERNAME, {"username": username})).mappings().one_or_none()
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


# --- The operator's view: rows owned by ApiUser resources --------------------------------------------


@dataclass(frozen=True)
class OwnedApiUserRecord:
    """One ``api_users`` row with the owner columns the operator decides by."""

    id: int
    username: str
    password_hash: str
    is_active: bool
    source: ApiUserSource
    role: ApiUserRole
    owner_namespace: str | None
    owner_name: str | None
    owner_uid: str | None
    secret_fingerprint: str | None


_OWNED_COLUMNS = (
    ApiUser.id,
    ApiUser.username,
    ApiUser.password_hash,
    ApiUser.is_active,
    ApiUser.source,
    ApiUser.role,
    ApiUser.owner_namespace,
    ApiUser.owner_name,
    ApiUser.owner_uid,
    ApiUser.secret_fingerprint,
)


async def get_with_owner(conn: AsyncConnection, username: str) -> OwnedApiUserRecord | None:
    """The account named ``username`` with its owner reference and fingerprint, or None."""
    statement = select(*_OWNED_COLUMNS).where(ApiUser.username == username)
    row = (await conn.execute(statement)).mappings().one_or_none()
    return OwnedApiUserRecord(**row) if row is not None else None


async def upsert_owned(
    conn: AsyncConnection,
    *,
    username: str,
    password_hash: str,
    is_active: bool,
    fingerprint: str,
    role: ApiUserRole = ApiUserRole.ANALYST,
    owner_namespace: str,
    owner_name: str,
    owner_uid: str,
    adopt_registration: bool = False,
    replace_owner_uid: str | None = None,
) -> bool:
    """Create or overwrite an operator-owned account in one atomic statement.

    An existing row is overwritten only when ``owner_uid`` already owns it, when it came from
    registration and ``adopt_registration`` is set, or when ``replace_owner_uid`` owns it (an owner
    known to be gone). False means another owner holds the username and nothing was written.
    """
    values = {
        "username": username,
        "password_hash": password_hash,
        "is_active": is_active,
        "role": role,
        "source": ApiUserSource.OPERATOR,
        "owner_namespace": owner_namespace,
        "owner_name": owner_name,
        "owner_uid": owner_uid,
        "secret_fingerprint": fingerprint,
    }
    inserted = insert(ApiUser).values(**values)
    allowed = ApiUser.owner_uid == owner_uid
    if adopt_registration:
        allowed = allowed | (ApiUser.source == ApiUserSource.REGISTRATION)
    if replace_owner_uid is not None:
        allowed = allowed | (ApiUser.owner_uid == replace_owner_uid)
    statement = inserted.on_conflict_do_update(
        index_elements=[ApiUser.username],
        set_={key: inserted.excluded[key] for key in values if key != "username"}
        | {"updated_at": func.now()},
        where=allowed,
    ).returning(ApiUser.id)
    return (await conn.execute(statement)).one_or_none() is not None


async def set_access_owned(
    conn: AsyncConnection, username: str, *, owner_uid: str, is_active: bool, role: ApiUserRole
) -> bool:
    """Enable or disable an account owned by ``owner_uid`` and set its role; False without such a row."""
    result = await conn.execute(
        update(ApiUser)
        .where(ApiUser.username == username, ApiUser.owner_uid == owner_uid)
        .values(is_active=is_active, role=role)
        .returning(ApiUser.id)
    )
    return result.one_or_none() is not None


async def delete_owned(conn: AsyncConnection, username: str, *, owner_uid: str) -> bool:
    """Delete the account only if ``owner_uid`` owns it; False when there was nothing of its own."""
    result = await conn.execute(
        delete(ApiUser)
        .where(ApiUser.username == username, ApiUser.owner_uid == owner_uid)
        .returning(ApiUser.id)
    )
    return result.one_or_none() is not None
