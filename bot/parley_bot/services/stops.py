"""Stopping an answer while it is being written, on whichever replica writes it.

An answer being streamed is registered here under its chat and its stop token (the draft id of
``sendMessageDraft``, also carried by the inline Stop button of edit-mode previews). A stop — the
``stopped_message_generation`` update or a press of the button — cancels the LLM call: the
request in flight is closed (the gateway stops generating and billing), and the turn stores what
was written, marked stopped, and ends at once.

The update may reach a replica that is not writing the answer (webhook mode: Telegram posts to
any of them). Then the stop goes out over PostgreSQL ``NOTIFY parley_stops``; every replica
``LISTEN``s on one connection of its pool and stops the answer if it is its own. A notification
sent while a replica's listening connection is down is lost: the user presses Stop again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_bot.services.database import execute
from parley_core.logging import get_logger

log = get_logger(__name__)

CHANNEL = "parley_stops"
RECONNECT_MAX_SECONDS = 10.0

StopResult = Literal["stopped", "not_yours", "sent", "unknown"]

_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


@dataclass(eq=False)
class RunningAnswer:
    """An answer being written: the task calling the model, for whom, and whether a stop came."""

    user_id: int
    task: asyncio.Future[Any]
    stopped: bool = False


@dataclass(kw_only=True, eq=False)
class Stops:
    """The answers this process is writing, and stops for them from any replica."""

    engine: AsyncEngine
    broadcast: bool  # several replicas (webhook mode): a stop for an unknown answer goes to the others
    _running: dict[tuple[int, int], RunningAnswer] = field(default_factory=dict, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    @contextlib.contextmanager
    def running(
        self, *, chat_id: int, token: int, user_id: int, task: asyncio.Future[Any]
    ) -> Iterator[RunningAnswer]:
        """Register the answer ``task`` writes in ``chat_id`` under ``token`` while the block runs."""
        answer = RunningAnswer(user_id=user_id, task=task)
        self._running[(chat_id, token)] = answer
        try:
            yield answer
        finally:
            if self._running.get((chat_id, token)) is answer:
                del self._running[(chat_id, token)]

    def stop_here(self, *, chat_id: int, token: int, by_user_id: int) -> StopResult:
        """Stop the answer if this process writes it; only the user who asked may stop it."""
        answer = self._running.get((chat_id, token))
        if answer is None:
            return "unknown"
        if answer.user_id != by_user_id:
            return "not_yours"
        if not answer.stopped:
            answer.stopped = True
            answer.task.cancel()
            metrics.BOT_ANSWERS_STOPPED.inc()
            log.info("answer_stopped", chat_id=chat_id)
        return "stopped"

    async def stop(self, *, chat_id: int, token: int, by_user_id: int) -> StopResult:
        """Stop the answer here, or ask the other replicas to ("sent")."""
        result = self.stop_here(chat_id=chat_id, token=token, by_user_id=by_user_id)
        if result != "unknown" or not self.broadcast:
            return result
        payload = json.dumps({"chat_id": chat_id, "token": token, "by_user_id": by_user_id})
        await execute(
            self.engine, lambda conn: conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})
        )
        return "sent"

    # ---- listening for the other replicas' stops ------------------------------------------

    def start(self) -> None:
        """Listen for stops sent by other replicas (webhook mode), until :meth:`close`."""
        if self.broadcast and self._task is None:
            self._task = asyncio.create_task(self._listen_forever(), name="stops")

    async def close(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            self.stop_here(
                chat_id=int(message["chat_id"]),
                token=int(message["token"]),
                by_user_id=int(message["by_user_id"]),
            )
        except (ValueError, KeyError, TypeError):
            log.warning("stop_notification_invalid")

    async def _listen_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._listen()
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away; listen again when it is back
                log.warning("stop_listener_lost", error=type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _listen(self) -> None:
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection  # asyncpg's own connection: LISTEN needs its callback API
            assert driver is not None
            await driver.add_listener(CHANNEL, self._on_notification)
            closed = asyncio.Event()
            driver.add_termination_listener(lambda _conn: closed.set())
            log.info("stop_listener_started")
            try:
                await closed.wait()  # the server or the network ended the session
            finally:
                # The connection goes back to no one: a listening session must not be reused.
                await conn.invalidate()
