"""Asking the model for one chat's waiting messages, with the per-user rate limit, "typing…" and previews.

The per-user rate limit may make the turn wait first — the messages stay queued, none is dropped,
and a long wait is announced. While the model answers (no database connection is held), "typing…"
shows and, in private chats with STREAM_REPLIES on, previews of the answer so far. What comes back
is the reply to store: the model's answer, or a notice when no model could answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_bot.llm import ContextTooLongError, LLMClient, LLMUnavailableError
from parley_bot.llm.types import Completion
from parley_bot.services.database import execute
from parley_bot.services.delivery import reply_parts
from parley_bot.services.prompt import build_prompt
from parley_bot.services.rate_limit import RateLimiter
from parley_bot.telegram import ReplyStream, TelegramOutput
from parley_core.logging import get_logger
from parley_core.repositories import turns
from parley_core.repositories.turns import PendingMessage, ReplyDraft, StoredAnswer, UserWork
from parley_core.settings import BotSettings

log = get_logger(__name__)

UNAVAILABLE = (
    "Sorry, the language models are temporarily unavailable. I saved your message — "
    "please try again in a minute."
)
TOO_LONG = "Sorry, that message is too long for the model. Please shorten it or split it up."
SLOW_DOWN = "You are writing faster than I may answer; I'll reply in about {seconds} s."

SLOW_DOWN_NOTICE_SECONDS = 5.0  # a rate-limit wait at least this long is announced


@dataclass(frozen=True)
class Answered:
    """What the turn stores and sends: the model's answer (None when none came) and the reply."""

    answer: StoredAnswer | None
    reply: ReplyDraft
    outcome: str  # "answered", "unavailable" or "too_long" (bot_reply_duration_seconds)


class Answerer:
    """Asks the LLM client for the answer to a chat's waiting messages."""

    def __init__(
        self, *, engine: AsyncEngine, llm: LLMClient, output: TelegramOutput, settings: BotSettings
    ) -> None:
        self.engine = engine
        self.llm = llm
        self.output = output
        self.settings = settings
        self.limiter = RateLimiter(burst=settings.rate_limit_burst, per_minute=settings.rate_limit_per_minute)

    async def answer(self, work: UserWork, pending: list[PendingMessage]) -> Answered:
        """The reply to ``pending`` (one chat's messages, oldest first), after the rate limit's wait."""
        chat_id = pending[0].chat_id
        private = chat_id > 0
        reply_to = None if private else pending[-1].telegram_message_id
        await self._wait_for_rate_limit(work.user_id, chat_id)
        stream = self._stream(chat_id, pending) if private else None
        prompt = build_prompt(
            system_prompt=work.system_prompt or self.settings.llm_system_prompt,
            history=work.history,
            question=[m.content for m in pending],
            max_history=work.max_history_messages,
        )
        completion: Completion | None = None
        outcome = "answered"
        try:
            async with self.output.typing(chat_id):
                completion = await self.llm.complete(prompt, on_partial=stream.update if stream else None)
        except LLMUnavailableError as exc:
            outcome, text = "unavailable", UNAVAILABLE
            log.warning("turn_not_answered", outcome=outcome, reason=exc.reason)
        except ContextTooLongError as exc:
            outcome, text = "too_long", TOO_LONG
            log.warning("turn_not_answered", outcome=outcome, reason=str(exc))
        answer = None
        if completion is not None:
            text = completion.text.replace("\x00", "")
            answer = StoredAnswer(
                content=text,
                model=completion.model,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                latency_ms=completion.latency_ms,
                fallback_used=completion.fallback_used,
                cost_usd=completion.cost_usd,
            )
        reply = ReplyDraft(
            chat_id,
            reply_to,
            text,
            markdown=answer is not None,
            parts_total=len(reply_parts(text)),
            is_answer=answer is not None,
            preview_message_ids=stream.preview_message_ids if stream else (),
        )
        return Answered(answer=answer, reply=reply, outcome=outcome)

    async def _wait_for_rate_limit(self, user_id: int, chat_id: int) -> None:
        wait = self.limiter.reserve(user_id)
        if wait <= 0:
            return
        metrics.BOT_RATE_LIMITED.inc()
        log.info("turn_rate_limited", wait_seconds=round(wait, 1))
        if wait >= SLOW_DOWN_NOTICE_SECONDS:
            with contextlib.suppress(Exception):  # a courtesy; the answer follows regardless
                await self.output.send_plain(chat_id, SLOW_DOWN.format(seconds=round(wait)))
        await asyncio.sleep(wait)

    def _stream(self, chat_id: int, pending: list[PendingMessage]) -> ReplyStream | None:
        mode = self.settings.stream_replies
        if mode == "off":
            return None
        newest = pending[-1]

        async def remember_preview(message_id: int) -> None:
            try:
                await execute(
                    self.engine,
                    lambda conn: turns.record_preview(
                        conn, message_id=newest.message_id, preview_message_id=message_id
                    ),
                )
            except Exception as exc:  # a preview left behind after a crash is the only cost
                log.warning("preview_not_recorded", error=type(exc).__name__)

        previews = tuple(p for m in pending for p in m.preview_message_ids)
        return ReplyStream(
            self.output,
            chat_id,
            mode="edit" if mode == "edit" else "draft",
            interval_seconds=self.settings.stream_edit_interval_seconds,
            previews=previews,
            on_new_preview=remember_preview,
        )
