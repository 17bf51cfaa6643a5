"""A short-lived memory of successful bcrypt checks, so a repeated credential costs no bcrypt.

Keys are HMAC-SHA256(per-process random key, username NUL password) and the stored password hash
is only an HMAC tag of it, so a dump of the cache reveals neither passwords nor hashes and cannot
be used to test guesses offline. An entry only says "this credential matched this row's hash";
the caller still reads the row on every request and drops the entry when the hash changed, the
row is gone or the account is inactive, so a password change or a disable applies at once.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

EXPIRY_JITTER = 0.2  # entries live 80-100 % of the TTL
REFRESH_AFTER = 0.8  # of an entry's life, after which using it renews it in the background


@dataclass(frozen=True)
class CachedVerification:
    """A credential that matched ``user_id``'s password hash (tagged) until ``expires_at``; from
    ``refresh_at`` on, a request still served by it starts a check in the background that renews it."""

    user_id: int
    hash_tag: bytes
    expires_at: float
    refresh_at: float


class VerificationCache:
    """Bounded LRU of successful verifications with a TTL; a TTL of 0 turns it off.

    Two things keep expiry from hurting: each entry lives a random 80-100 % of the TTL, so entries
    made together do not expire together; and in the last fifth of its life a used entry is renewed
    ahead of time by the caller (``refresh_at``), so a busy credential never meets an expired entry.
    """

    def __init__(
        self, *, ttl_seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._random = random.Random()  # noqa: S311  (spreading expiry times, not a secret)
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, CachedVerification] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def key(self, username: str, password: str) -> bytes:
        """The cache key of a credential (usernames never contain NUL: the header parser refuses it)."""
        message = username.encode("utf-8") + b"\0" + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def tag(self, password_hash: str) -> bytes:
        """What the cache stores instead of a password hash."""
        return hmac.new(self._key, password_hash.encode("utf-8"), hashlib.sha256).digest()

    def get(self, key: bytes) -> CachedVerification | None:
        """The live entry for ``key``, refreshed as most recently used."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def due_for_renewal(self, entry: CachedVerification) -> bool:
        """Whether ``entry`` is in the last part of its life, when using it should renew it."""
        return self._clock() >= entry.refresh_at

    def matches(self, entry: CachedVerification, *, user_id: int, password_hash: str) -> bool:
        """Whether ``entry`` still describes this row: same account, same password hash."""
        return entry.user_id == user_id and hmac.compare_digest(entry.hash_tag, self.tag(password_hash))

    def put(self, key: bytes, *, user_id: int, password_hash: str) -> None:
        """Remember a successful verification, evicting the least recently used beyond the bound."""
        if self.ttl_seconds <= 0:
            return
        now = self._clock()
        lifetime = self.ttl_seconds * self._random.uniform(1 - EXPIRY_JITTER, 1.0)
        self._entries[key] = CachedVerification(
            user_id=user_id,
            hash_tag=self.tag(password_hash),
            expires_at=now + lifetime,
            refresh_at=now + lifetime * REFRESH_AFTER,
        )
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def discard(self, key: bytes) -> None:
        """Forget a credential (its row changed)."""
        self._entries.pop(key, None)
