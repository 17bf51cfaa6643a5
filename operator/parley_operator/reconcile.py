"""One ApiUser -> one api_users row: ownership, fingerprints, hashing, and the delete rule.

Plain async code with no kopf types, so it is tested by calling it. A sync that finds the source
unchanged and the row intact does no bcrypt at all: the row's ``secret_fingerprint`` binds the
source fingerprint to the stored hash, so a deleted row, an altered hash, a changed Secret or Vault
version, or a raised bcrypt cost each show up as a mismatch (and only then is a hash computed).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.models import ApiUserSource
from parley_core.passwords import hash_password_async, hash_rounds
from parley_core.repositories import api_users
from parley_core.repositories.api_users import OwnedApiUserRecord
from parley_operator.model import Target
from parley_operator.sources import Password, PasswordSources, SourceError, password_problem
from parley_operator.status import Outcome, Reason

# What a database outage looks like from asyncpg through SQLAlchemy: wrapped DBAPI errors, pool
# timeouts, refused or reset connections, and asyncpg errors raised while connecting.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    SQLAlchemyError,
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)

OwnerAlive = Callable[[str], bool]
T = TypeVar("T")


class DatabaseUnavailableError(RuntimeError):
    """The database did not answer; the message names the error type only."""


class Hasher:
    """bcrypt in worker threads, at most ``concurrency`` at once, counting every hash."""

    def __init__(self, *, rounds: int, concurrency: int, on_hash: Callable[[], None] | None = None) -> None:
        self.rounds = rounds
        self.calls = 0
        self._semaphore = asyncio.Semaphore(concurrency)
        self._on_hash = on_hash

    async def hash(self, password: str) -> str:
        """A bcrypt hash of ``password`` at the configured cost, computed off the event loop."""
        async with self._semaphore:
            self.calls += 1
            if self._on_hash is not None:
                self._on_hash()
            return await hash_password_async(password, rounds=self.rounds)


def row_fingerprint(source_fingerprint: str, username: str, password_hash: str) -> str:
    """What the row stores: the source version bound to the stored hash (no password goes in).

    Binding the hash makes an altered ``password_hash`` visible without a bcrypt check.
    """
    material = "\0".join((source_fingerprint, username, password_hash)).encode()
    return "v1:" + hashlib.sha256(material).hexdigest()


@dataclass(frozen=True)
class _Claim:
    """Whether this ApiUser may write the row, and on which terms."""

    conflict: str | None = None
    adopt_registration: bool = False
    replace_owner_uid: str | None = None


def _claim(target: Target, row: OwnedApiUserRecord | None, owner_alive: OwnerAlive) -> _Claim:
    if row is None or row.owner_uid == target.uid:
        return _Claim()
    if row.source == ApiUserSource.REGISTRATION:
        if target.adopt:
            return _Claim(adopt_registration=True)
        return _Claim(
            conflict=f"username {target.username!r} belongs to an account created through registration; "
            'annotate this ApiUser with parley.dev/adopt: "true" to take it over'
        )
    owner = f"ApiUser {row.owner_namespace}/{row.owner_name}"
    if row.owner_uid and owner_alive(row.owner_uid):
        return _Claim(conflict=f"username {target.username!r} is already managed by {owner}")
    same_name = (row.owner_namespace, row.owner_name) == (target.namespace, target.name)
    if target.adopt or same_name:
        return _Claim(replace_owner_uid=row.owner_uid)
    return _Claim(
        conflict=f"username {target.username!r} is owned by {owner}, which no longer exists; "
        'annotate this ApiUser with parley.dev/adopt: "true" to take the row over'
    )


def _synced(password: Password, message: str, *, wrote: bool, hashed: bool = False) -> Outcome:
    return Outcome(
        ready=True,
        reason=Reason.SYNCED,
        message=message,
        wrote=wrote,
        hashed=hashed,
        fingerprint=password.fingerprint,
        secret_resource_version=password.secret_resource_version,
        vault_version=password.vault_version,
    )


class Reconciler:
    """Brings rows in line with ApiUsers, and removes the rows of deleted ones."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        sources: PasswordSources,
        hasher: Hasher,
        min_password_length: int,
    ) -> None:
        self.engine = engine
        self.sources = sources
        self.hasher = hasher
        self.min_password_length = min_password_length

    async def _db(self, work: Callable[[], Awaitable[T]]) -> T:
        try:
            return await work()
        except DATABASE_ERRORS as exc:
            raise DatabaseUnavailableError(f"the database is unavailable ({type(exc).__name__})") from None

    async def _row(self, username: str) -> OwnedApiUserRecord | None:
        async def read() -> OwnedApiUserRecord | None:
            async with self.engine.connect() as conn:
                return await api_users.get_with_owner(conn, username)

        return await self._db(read)

    async def sync(self, target: Target, *, owner_alive: OwnerAlive) -> Outcome:
        """Make the row match ``target``; every failure is an Outcome, never an exception."""
        try:
            return await self._sync(target, owner_alive)
        except DatabaseUnavailableError as exc:
            return Outcome(False, Reason.DATABASE_UNAVAILABLE, f"{exc}; retrying", temporary=True)
        except SourceError as exc:
            return Outcome(False, exc.reason, exc.message, temporary=exc.temporary)

    async def _sync(self, target: Target, owner_alive: OwnerAlive) -> Outcome:  # noqa: PLR0911
        row = await self._row(target.username)
        claim = _claim(target, row, owner_alive)
        if claim.conflict is not None:
            return Outcome(False, Reason.CONFLICT, claim.conflict)
        owned = row is not None and row.owner_uid == target.uid
        active = not target.disabled

        if target.disabled and owned and row is not None:
            # Disabling never depends on the password source: a missing Secret must not keep a
            # login alive.
            wrote = False
            if row.is_active or row.role != target.role:
                wrote = await self._set_access(target, active=False)
            return Outcome(True, Reason.SYNCED, "account disabled: its logins are refused", wrote=wrote)

        password = await self.sources.read(target)
        if problem := password_problem(password.value, min_length=self.min_password_length):
            return Outcome(
                False,
                Reason.PASSWORD_REJECTED,
                f"{problem} ({password.where}); the row was left as it was",
            )

        if owned and row is not None and not self._stale(row, target, password):
            if row.is_active == active and row.role == target.role:
                return _synced(password, self._message(target, password, "in sync"), wrote=False)
            await self._set_access(target, active=active)
            what = "re-enabled" if row.is_active != active else "given its role"
            return _synced(password, self._message(target, password, what), wrote=True)

        password_hash = await self.hasher.hash(password.value)
        written = await self._upsert(target, password, password_hash, claim)
        if not written:  # another owner took the username between our read and our write
            return Outcome(
                False, Reason.CONFLICT, f"username {target.username!r} was claimed by another owner"
            )
        what = "created" if row is None else ("adopted" if not owned else "updated")
        return _synced(password, self._message(target, password, what), wrote=True, hashed=True)

    def _stale(self, row: OwnedApiUserRecord, target: Target, password: Password) -> bool:
        expected = row_fingerprint(password.fingerprint, target.username, row.password_hash)
        return row.secret_fingerprint != expected or hash_rounds(row.password_hash) != self.hasher.rounds

    @staticmethod
    def _message(target: Target, password: Password, what: str) -> str:
        state = "disabled" if target.disabled else "active"
        return f"row {what} from {password.where}; account {state}, role {target.role.value}"

    async def _set_access(self, target: Target, *, active: bool) -> bool:
        async def write() -> bool:
            async with self.engine.begin() as conn:
                return await api_users.set_access_owned(
                    conn, target.username, owner_uid=target.uid, is_active=active, role=target.role
                )

        return await self._db(write)

    async def _upsert(self, target: Target, password: Password, password_hash: str, claim: _Claim) -> bool:
        async def write() -> bool:
            async with self.engine.begin() as conn:
                return await api_users.upsert_owned(
                    conn,
                    username=target.username,
                    password_hash=password_hash,
                    is_active=not target.disabled,
                    role=target.role,
                    fingerprint=row_fingerprint(password.fingerprint, target.username, password_hash),
                    owner_namespace=target.namespace,
                    owner_name=target.name,
                    owner_uid=target.uid,
                    adopt_registration=claim.adopt_registration,
                    replace_owner_uid=claim.replace_owner_uid,
                )

        return await self._db(write)

    async def release(self, *, username: str, owner_uid: str) -> bool:
        """Delete the row if ``owner_uid`` owns it; DatabaseUnavailableError when the DB is down."""

        async def delete() -> bool:
            async with self.engine.begin() as conn:
                return await api_users.delete_owned(conn, username, owner_uid=owner_uid)

        return await self._db(delete)
