"""One turn of a conversation: store the user's message, ask the LLM, store the answer.

The database is touched twice, each time with one statement on an AUTOCOMMIT connection that is
returned to the pool before anything slow happens:

1. ``begin_turn`` takes the user's turn lease, stores the message (refusing an update id it
   already has) and loads the user's settings and last N-1 messages;
2. the LLM is called with no connection held;
3. ``finish_turn`` stores the answer with model, tokens, latency and fallback flag and releases
   the lease.

The lease makes a second replica's turn for the same user wait (``busy``), so history never
interleaves even in webhook mode; inside a process the caller already serializes with UserLocks,
so the lease is only ever contended across replicas. When both models fail, the lease is
released and the user's message stays stored. When the answer cannot be stored (the database went
away during the LLM call), it is still delivered and the lease released.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parley_bot.llm import ChatMessage, Completion, ContextTooLongError, LLMClient, LLMUnavailableError
from parley_bot.llm.types import PartialCallback
from parley_core.logging import get_logger
from parley_core.repositories import messages, users
from parley_core.repositories.messages import TurnStart
from parley_core.repositories.users import TelegramProfile
from parley_core.settings import BotSettings

log = get_logger(__name__)

Outcome = Literal["answered", "duplicate", "unavailable", "too_long", "busy"]
LEASE_MARGIN_SECONDS = 30.0  # time to deliver an answer after the LLM deadline
BUSY_BACKOFF_START = 0.05
BUSY_BACKOFF_MAX = 1.0
T = TypeVar("T")


@dataclass(frozen=True)
class TurnResult:
    """How a turn ended; ``completion`` is set when it was answered."""

    outcome: Outcome
    completion: Completion | None = None


def lease_seconds(settings: BotSettings) -> float:
    """How long a turn may hold a user's lease before another replica may take it over."""
    return settings.llm_deadline_seconds + LEASE_MARGIN_SECONDS


async def _execute(engine: AsyncEngine, statement: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run one statement on a pooled AUTOCOMMIT connection (no BEGIN/COMMIT round trips).

    The bot's pool does not pre-ping (it would triple the round trips), so a connection the server
    closed while idle (a database restart) is only noticed when used: SQLAlchemy then invalidates
    the pool and the statement is retried once on a fresh connection.
    """
    for attempt in (1, 2):
        try:
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await statement(conn)
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
            log.warning("db_connection_lost", retrying=True)
    raise AssertionError("unreachable")


async def _begin(
    *,
    engine: AsyncEngine,
    settings: BotSettings,
    profile: TelegramProfile,
    update_id: int,
    text: str,
    holder: uuid.UUID,
) -> TurnStart:
    """begin_turn, waiting (with jittered backoff) while another replica holds the user's lease."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + lease_seconds(settings)
    delay = BUSY_BACKOFF_START
    while True:
        start = await _execute(
            engine,
            lambda conn: messages.begin_turn(
                conn,
                profile=profile,
                update_id=update_id,
                content=text,
                holder=holder,
                lease_seconds=lease_seconds(settings),
                default_history=settings.history_default_messages,
            ),
        )
        if start.status != "busy" or loop.time() >= give_up_at:
            return start
        log.info("turn_waiting_for_lease", retry_in=round(delay, 3))
        await asyncio.sleep(random.uniform(delay / 2, delay))  # noqa: S311  (jitter)
        delay = min(delay * 2, BUSY_BACKOFF_MAX)


async def _release(*, engine: AsyncEngine, user_id: int, holder: uuid.UUID) -> None:
    await _execute(engine, lambda conn: users.release_lease(conn, user_id=user_id, holder=holder))


async def take_turn(
    *,
    engine: AsyncEngine,
    llm: LLMClient,
    settings: BotSettings,
    profile: TelegramProfile,
    update_id: int,
    text: str,
    on_partial: PartialCallback | None = None,
) -> TurnResult:
    """Answer ``text`` from ``profile`` with the conversation so far (two DB round trips around the LLM)."""
    holder = uuid.uuid4()
    start = await _begin(
        engine=engine, settings=settings, profile=profile, update_id=update_id, text=text, holder=holder
    )
    if start.status == "duplicate":
        log.info("turn_duplicate_update")
        return TurnResult("duplicate")
    if start.status == "busy":
        log.warning("turn_lease_not_acquired")
        return TurnResult("busy")

    prompt = [ChatMessage("system", start.system_prompt or settings.llm_system_prompt)]
    prompt += [ChatMessage(m.role.value, m.content) for m in start.history]
    prompt.append(ChatMessage("user", text))
    try:
        completion = await llm.complete(prompt, on_partial=on_partial)
    except (LLMUnavailableError, ContextTooLongError) as exc:
        await _release(engine=engine, user_id=profile.id, holder=holder)
        outcome: Outcome = "too_long" if isinstance(exc, ContextTooLongError) else "unavailable"
        log.warning("turn_not_answered", outcome=outcome, reason=str(exc))
        return TurnResult(outcome)
    except BaseException:
        # Cancelled (shutdown timeout) or a bug: give the lease back so the user is not blocked.
        await asyncio.shield(_release(engine=engine, user_id=profile.id, holder=holder))
        raise

    try:
        await _execute(
            engine,
            lambda conn: messages.finish_turn(
                conn,
                user_id=profile.id,
                holder=holder,
                content=completion.text,
                model=completion.model,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                latency_ms=completion.latency_ms,
                fallback_used=completion.fallback_used,
            ),
        )
    except Exception as exc:
        # The answer exists; the user gets it even though it is not in the history. The lease is
        # given back if the database lets us, or expires on its own.
        log.error("turn_answer_not_stored", error=type(exc).__name__)
        with contextlib.suppress(Exception):
            await _release(engine=engine, user_id=profile.id, holder=holder)
    return TurnResult("answered", completion)
