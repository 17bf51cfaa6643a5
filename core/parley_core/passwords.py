"""bcrypt password hashing (the `bcrypt` package directly), always off the event loop.

A bcrypt check costs ~0.25 s at cost 12 by design; running it inline would freeze every other
request of the process, so the async helpers hand it to a worker thread.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from functools import partial

import bcrypt

DEFAULT_ROUNDS = 12
# bcrypt only looks at the first 72 bytes; longer inputs are refused rather than silently cut.
MAX_PASSWORD_BYTES = 72


class PasswordTooLongError(ValueError):
    """The password exceeds bcrypt's 72-byte input limit."""


def _encode(password: str) -> bytes:
    raw = password.encode("utf-8")
    if len(raw) > MAX_PASSWORD_BYTES:
        raise PasswordTooLongError(f"password is longer than {MAX_PASSWORD_BYTES} bytes in UTF-8")
    return raw


def hash_password(password: str, *, rounds: int = DEFAULT_ROUNDS) -> str:
    """A salted bcrypt hash of ``password`` (blocking)."""
    return bcrypt.hashpw(_encode(password), bcrypt.gensalt(rounds=rounds)).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    """Whether ``password`` matches ``password_hash``; malformed input is simply a mismatch (blocking)."""
    try:
        return bcrypt.checkpw(_encode(password), password_hash.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False


def hash_rounds(password_hash: str) -> int | None:
    """The cost factor stored in a hash, so callers can re-hash after raising the cost."""
    parts = password_hash.split("$")
    if len(parts) >= 4 and parts[2].isdigit():
        return int(parts[2])
    return None


async def hash_password_async(
    password: str, *, rounds: int = DEFAULT_ROUNDS, executor: Executor | None = None
) -> str:
    """:func:`hash_password` in a worker thread (of ``executor``, else the loop's default one)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, partial(hash_password, password, rounds=rounds))


async def verify_password_async(
    password: str, password_hash: str, *, executor: Executor | None = None
) -> bool:
    """:func:`verify_password` in a worker thread (of ``executor``, else the loop's default one)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, verify_password, password, password_hash)
