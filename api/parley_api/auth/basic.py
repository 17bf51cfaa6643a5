"""Checking Basic credentials against ``api_users``: throttle, cache, one indexed SELECT, bcrypt.

Every request reads the account row (one lookup on the unique username index, on an autocommit
connection that is returned before any bcrypt work), so a disabled account or a changed password
takes effect on the very next request. bcrypt runs only when the verification cache has no live
entry for this exact credential and row, after the check was reserved in the throttle, on a
bounded executor of its own (BCRYPT_CONCURRENCY threads, so a burst of checks cannot take every
thread the process has); concurrent requests with the same credential share one check.
"""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_api.auth.cache import VerificationCache
from parley_api.auth.header import BasicCredentials
from parley_api.auth.throttle import LoginThrottle
from parley_api.plumbing.single_flight import SingleFlight
from parley_core import passwords
from parley_core.logging import get_logger
from parley_core.models import ApiUserRole
from parley_core.repositories import api_users
from parley_core.repositories.api_users import ApiUserRecord
from parley_core.settings import ApiSettings

log = get_logger(__name__)

# api_users.username is VARCHAR(64); longer names cannot exist, so they are not looked up.
MAX_USERNAME_CHARS = 64


@dataclass(frozen=True)
class AuthenticatedUser:
    """The dashboard account a request was authenticated as."""

    id: int
    username: str
    role: ApiUserRole = ApiUserRole.ANALYST


class InvalidCredentialsError(Exception):
    """Unknown username, wrong password or inactive account (deliberately not told apart)."""


class Authenticator:
    """One per app: the verification cache, the failed-login throttle and the bcrypt cost."""

    def __init__(
        self,
        *,
        cache: VerificationCache,
        throttle: LoginThrottle,
        bcrypt_rounds: int,
        bcrypt_concurrency: int = 2,
    ) -> None:
        self.cache = cache
        self.throttle = throttle
        self._bcrypt_rounds = bcrypt_rounds
        self._dummy_hash: str | None = None
        self._bcrypt = ThreadPoolExecutor(max_workers=bcrypt_concurrency, thread_name_prefix="bcrypt")
        # Checks in progress, by credential and row: later requests with the same credential wait
        # for the first one's result instead of running bcrypt again.
        self._checks: SingleFlight[tuple[bytes, bytes], bool] = SingleFlight()
        self._renewals: dict[tuple[bytes, bytes], asyncio.Task[None]] = {}

    def close(self) -> None:
        """Stop the bcrypt threads (the app's shutdown)."""
        self._bcrypt.shutdown(wait=False, cancel_futures=True)

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> Authenticator:
        """Build from API settings (no I/O happens here)."""
        return cls(
            cache=VerificationCache(
                ttl_seconds=settings.auth_cache_ttl_seconds, max_entries=settings.auth_cache_max_entries
            ),
            throttle=LoginThrottle(
                storage_uri=settings.rate_limit_storage,
                per_username=settings.auth_failure_limit_per_username,
                per_address=settings.auth_failure_limit_per_address,
            ),
            bcrypt_rounds=settings.bcrypt_rounds,
            bcrypt_concurrency=settings.bcrypt_concurrency,
        )

    async def authenticate(
        self, engine: AsyncEngine, credentials: BasicCredentials, *, address: str
    ) -> AuthenticatedUser:
        """The account these credentials belong to; raises LoginThrottledError or InvalidCredentialsError."""
        await self.throttle.check(credentials.username, address)
        user = await self._verify(engine, credentials, address=address)
        if user is None:
            raise InvalidCredentialsError
        return user

    async def _verify(
        self, engine: AsyncEngine, credentials: BasicCredentials, *, address: str
    ) -> AuthenticatedUser | None:
        username, password = credentials.username, credentials.password
        if len(username) > MAX_USERNAME_CHARS or len(password.encode("utf-8", "surrogatepass")) > (
            passwords.MAX_PASSWORD_BYTES
        ):
            log.info("auth_failed", reason="implausible credentials")
            return None
        key = self.cache.key(username, password)
        record = await _load(engine, username)
        cached = self.cache.get(key)  # after the load: a check that ended meanwhile counts
        if cached is not None:
            if (
                record is not None
                and record.is_active
                and self.cache.matches(cached, user_id=record.id, password_hash=record.password_hash)
            ):
                if self.cache.due_for_renewal(cached):
                    self._renew_soon(key, password, record)
                return AuthenticatedUser(id=record.id, username=record.username, role=record.role)
            self.cache.discard(key)
        if record is None:
            # Spend the same bcrypt time as for a real account, so timing does not reveal usernames.
            await self.throttle.reserve(username, address)
            await passwords.verify_password_async(password, await self._dummy(), executor=self._bcrypt)
            log.info("auth_failed", reason="unknown username")
            return None
        matched = await self._shared_check(key, password, record, address)
        if not matched or not record.is_active:
            log.info("auth_failed", reason="wrong password" if not matched else "inactive", username=username)
            return None
        return AuthenticatedUser(id=record.id, username=record.username, role=record.role)

    def _renew_soon(self, key: bytes, password: str, record: ApiUserRecord) -> None:
        """Check a cached credential again in the background, so its entry is renewed before it
        expires and no request has to wait for bcrypt (one renewal per credential at a time)."""
        check_key = (key, self.cache.tag(record.password_hash))
        if self._checks.running(check_key) or check_key in self._renewals:
            return

        async def renew() -> None:
            try:
                if await passwords.verify_password_async(
                    password, record.password_hash, executor=self._bcrypt
                ):
                    self.cache.put(key, user_id=record.id, password_hash=record.password_hash)
            except Exception as exc:  # the entry then simply expires; the next request checks again
                log.warning("auth_cache_renewal_failed", error=type(exc).__name__)
            finally:
                self._renewals.pop(check_key, None)

        self._renewals[check_key] = asyncio.get_running_loop().create_task(renew())

    async def _shared_check(self, key: bytes, password: str, record: ApiUserRecord, address: str) -> bool:
        """One bcrypt check per credential and row at a time; the first request reserves and runs it.

        A match is cached inside the shared check, before its waiters resume: a request that
        arrives between the check's end and its first waiter's turn then finds the entry instead
        of starting a second bcrypt check. (Whether the account is active is read on every use.)
        """

        async def check() -> bool:
            await self.throttle.reserve(record.username, address)
            matched = await passwords.verify_password_async(
                password, record.password_hash, executor=self._bcrypt
            )
            if matched:  # once per check, not once per request that waited for it
                self.cache.put(key, user_id=record.id, password_hash=record.password_hash)
                await self.throttle.forgive(record.username)
            return matched

        return await self._checks.run((key, self.cache.tag(record.password_hash)), check)

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await passwords.hash_password_async(
                secrets.token_urlsafe(16), rounds=self._bcrypt_rounds, executor=self._bcrypt
            )
        return self._dummy_hash


async def _load(engine: AsyncEngine, username: str) -> ApiUserRecord | None:
    # Autocommit: no BEGIN/ROLLBACK round trips, and the connection goes back before bcrypt runs.
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        return await api_users.get_by_username(conn, username)
