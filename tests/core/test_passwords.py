"""bcrypt hashing: salted, configurable cost, 72-byte guard, never blocking the event loop."""

from __future__ import annotations

import asyncio

import pytest

from parley_core import passwords


def test_hash_and_verify() -> None:
    hashed = passwords.hash_password("correct horse", rounds=4)

    assert hashed.startswith("$2b$04$")
    assert passwords.verify_password("correct horse", hashed)
    assert not passwords.verify_password("wrong horse", hashed)
    assert hashed != passwords.hash_password("correct horse", rounds=4)  # salted


def test_default_cost_is_12() -> None:
    assert passwords.hash_rounds(passwords.hash_password("pw")) == 12
    assert passwords.hash_rounds("not-a-hash") is None


def test_too_long_passwords_are_refused_not_truncated() -> None:
    with pytest.raises(passwords.PasswordTooLongError):
        passwords.hash_password("é" * 37, rounds=4)  # 74 bytes
    hashed = passwords.hash_password("x" * 72, rounds=4)
    assert not passwords.verify_password("x" * 73, hashed)


def test_malformed_hash_is_a_mismatch() -> None:
    assert not passwords.verify_password("pw", "plain-text-in-the-db")


async def test_async_helpers_leave_the_event_loop_free() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    hashed = await passwords.hash_password_async("pw", rounds=12)
    ok = await passwords.verify_password_async("pw", hashed)
    task.cancel()

    assert ok
    # A cost-12 hash takes hundreds of ms; the loop kept ticking the whole time.
    assert ticks > 10
