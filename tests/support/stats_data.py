"""Rows for stats tests: the analyst account and messages stamped at a chosen moment."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.passwords import hash_password
from tests.api.constants import ANALYST_PASSWORD as PASSWORD


async def add_analyst(engine: AsyncEngine) -> None:
    """The `analyst` account (tests.api.constants), with a fast bcrypt hash."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO api_users (username, password_hash, source)"
                " VALUES ('analyst', :h, 'registration')"
            ),
            {"h": hash_password(PASSWORD, rounds=4)},
        )


async def add_message(
    engine: AsyncEngine, user_id: int, at: datetime, content: str = "hello", **extra: Any
) -> None:
    """One message of ``user_id`` at ``at`` (the user created a day before); ``extra``: its columns."""
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO users (id, created_at) VALUES (:u, :at) ON CONFLICT DO NOTHING"),
            {"u": user_id, "at": at - timedelta(days=1)},
        )
        columns = {"role": "user", "model": None, "fallback_used": False, "latency_ms": None,
                   "prompt_tokens": None, "completion_tokens": None, "cost_usd": None, **extra}  # fmt: skip
        await conn.execute(
            text(
                "INSERT INTO messages (id, user_id, role, content, content_length, model, fallback_used,"
                " latency_ms, prompt_tokens, completion_tokens, cost_usd, created_at)"
                " VALUES (:id, :u, :role, :c, :len, :model, :fallback_used, :latency_ms, :prompt_tokens,"
                " :completion_tokens, :cost_usd, :at)"
            ),
            {"id": uuid.uuid4(), "u": user_id, "c": content, "len": len(content), "at": at, **columns},
        )
