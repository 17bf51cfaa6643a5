"""Asking the model for one chat's waiting messages, with the per-user rate limit, "typing…" and previews.

The per-user rate limit may make the turn wait first — the messages stay queued, none is dropped,
and a long wait is announced. The model asked first is the user's /model choice (``models``).
While the model answers (no database connection is held), "typing…" shows and, with
STREAM_REPLIES on, previews of the answer so far: drafts or edited messages in private chats, and
in groups an edited message once the answer takes longer than GROUP_PREVIEW_DELAY_SECONDS. Each
preview can stop the answer (``stops``); what was written by then is the answer, marked stopped.
What comes back is the reply to store: the model's answer, or a notice when no model could answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_bot.i18n import N_, _
from parley_bot.llm import ChatMessage, ContextTooLongError, LLMClient, LLMUnavailableError, Progress
from parley_bot.llm.types import Completion, PartialCallback, Spent
from parley_bot.services import models
from parley_bot.services.database import execute
from parley_bot.services.delivery import reply_parts
from parley_bot.services.prompt import build_prompt
from parley_bot.services.rate_limit import RateLimiter
from parley_bot.services.reading import AttachmentReader, UnreadableError
from parley_bot.services.stops import RunningAnswer, Stops
from parley_bot.services.summaries import Remembered, Summariser
from parley_bot.telegram import ReplyStream, TelegramOutput
from parley_bot.telegram.files import TelegramFiles
from parley_core.logging import get_logger
from parley_core.repositories import turns
from parley_core.repositories.turns import PendingMessage, ReplyDraft, StoredAnswer, UserWork
from parley_core.settings import BotSettings

log = get_logger(__name__)

UNAVAILABLE = N_(
    "Sorry, the language models are temporarily unavailable. I saved your message — "
    "please try again in a minute."
)
TOO_LONG = N_("Sorry, that message is too long for the model. Please shorten it or split it up.")
SLOW_DOWN = N_("You are writing faster than I may answer; I'll reply in about {seconds} s.")

STOPPED = N_("Stopped.")  # in italics, after the part of the answer written before the stop
STOPPED_EMPTY = N_("Stopped before I wrote anything.")

SLOW_DOWN_NOTICE_SECONDS = 5.0  # a rate-limit wait at least this long is announced
# Groups get a preview (with the Stop button) only for an answer still being written after this
# long: a quick answer then costs one message of the group's 20 per minute, not two.
GROUP_PREVIEW_DELAY_SECONDS = 3.0


@dataclass(frozen=True)
class Answered:
    """What the turn stores and sends: the model's answer (None when none came) and the reply."""

    answer: StoredAnswer | None
    reply: ReplyDraft
    outcome: str  # answered, stopped, unavailable, too_long or unreadable (bot_reply_duration_seconds)
    note: str | None = None  # said after the reply (the user's model left the allowlist)
    wasted: Spent = field(default_factory=Spent)  # attempts that broke off midway (budget ledger)


@dataclass
class _TurnPrompt:
    """A turn's prompt, built again whenever its history is folded into the summary."""

    remembered: Remembered
    make: Callable[[Remembered], list[ChatMessage]]
    prompt: list[ChatMessage] = field(init=False)
    can_fold: bool = field(init=False)

    def __post_init__(self) -> None:
        self.prompt = self.make(self.remembered)
        self.can_fold = bool(self.remembered.history)

    def use(self, folded: Remembered) -> None:
        """Carry ``folded`` from now on; folding again helps only while it shortened the history."""
        self.can_fold = 0 < len(folded.history) < len(self.remembered.history)
        self.remembered = folded
        self.prompt = self.make(folded)


class Answerer:
    """Asks the LLM client for the answer to a chat's waiting messages."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        llm: LLMClient,
        output: TelegramOutput,
        settings: BotSettings,
        stops: Stops,
    ) -> None:
        self.engine = engine
        self.llm = llm
        self.output = output
        self.settings = settings
        self.stops = stops
        self.summariser = Summariser(engine=engine, llm=llm)
        self.reader = AttachmentReader(files=TelegramFiles(output.bot), llm=llm, settings=settings)
        self.limiter = RateLimiter(burst=settings.rate_limit_burst, per_minute=settings.rate_limit_per_minute)

    async def answer(self, work: UserWork, pending: list[PendingMessage]) -> Answered:
        """The reply to ``pending`` (one chat's messages, oldest first), after the rate limit's wait."""
        chat_id = pending[0].chat_id
        private = chat_id > 0
        reply_to = None if private else pending[-1].telegram_message_id
        await self._wait_for_rate_limit(work.user_id, chat_id)
        turn_model = await self._model_for(work)
        try:
            question = await self.reader.read(pending, model=turn_model.primary or self.llm.primary_model)
        except UnreadableError as exc:
            log.info("turn_not_answered", outcome="unreadable")
            reply = ReplyDraft(chat_id, reply_to, exc.reply, markdown=False, parts_total=1)
            return Answered(answer=None, reply=reply, outcome="unreadable", note=turn_model.note)
        for message_id, transcript in question.transcripts.items():
            await self._record_transcript(message_id, transcript)
        turn_prompt = _TurnPrompt(
            await self.summariser.remember(work, model=turn_model.primary),
            lambda remembered: build_prompt(
                system_prompt=work.system_prompt or self.settings.llm_system_prompt,
                history=remembered.history,
                question=question.texts,
                max_history=work.max_history_messages,
                images=question.images,
                summary=remembered.summary,
            ),
        )
        stream = self._stream(chat_id, pending, reply_to=reply_to)
        completion: Completion | None = None
        answer: StoredAnswer | None = None
        outcome = "answered"
        progress = Progress()
        call = asyncio.ensure_future(
            self._complete(
                work,
                turn_prompt,
                on_partial=stream.update if stream else None,
                primary=turn_model.primary,
                progress=progress,
            )
        )
        try:
            async with self.output.typing(chat_id):
                if stream is None:
                    completion = await call
                else:
                    with self.stops.running(
                        chat_id=chat_id, token=stream.stop_token, user_id=work.user_id, task=call
                    ) as running:
                        completion = await self._until_stopped(call, running)
                        if completion is None:
                            outcome = "stopped"
                            answer = self._stopped(turn_prompt.prompt, progress)
        except LLMUnavailableError as exc:
            outcome, text = "unavailable", _(UNAVAILABLE)
            log.warning("turn_not_answered", outcome=outcome, reason=exc.reason)
        except ContextTooLongError as exc:
            outcome, text = "too_long", _(TOO_LONG)
            log.warning("turn_not_answered", outcome=outcome, reason=str(exc))
        finally:
            call.cancel()  # the turn itself was cancelled (shutdown): close the request too
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
        elif answer is not None:
            text = (
                f"{answer.content}\n\n⏹ _{_(STOPPED)}_" if answer.content.strip() else f"⏹ {_(STOPPED_EMPTY)}"
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
        wasted = progress.wasted
        summaries = turn_prompt.remembered.spent  # the summaries made for this turn, if any
        wasted.add(summaries.tokens, summaries.cost_usd)
        return Answered(answer=answer, reply=reply, outcome=outcome, note=turn_model.note, wasted=wasted)

    async def _complete(
        self,
        work: UserWork,
        turn_prompt: _TurnPrompt,
        *,
        on_partial: PartialCallback | None,
        primary: str | None,
        progress: Progress,
    ) -> Completion:
        """The answer; while the prompt exceeds the model's context, its older history is folded into
        the summary and the model asked again. Trimming is the last resort, when folding failed."""
        while True:
            try:
                return await self.llm.complete(
                    turn_prompt.prompt,
                    on_partial=on_partial,
                    primary=primary,
                    progress=progress,
                    trim=not turn_prompt.can_fold,
                )
            except ContextTooLongError:
                if not turn_prompt.can_fold:
                    raise
                log.info("prompt_exceeds_context", history_messages=len(turn_prompt.remembered.history))
                turn_prompt.use(
                    await self.summariser.fold_for_context(work, turn_prompt.remembered, model=primary)
                )

    @staticmethod
    async def _until_stopped(call: asyncio.Future[Completion], running: RunningAnswer) -> Completion | None:
        """The completion, or None when the user stopped it (a cancellation of the turn propagates)."""
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not running.stopped or (current is not None and current.cancelling()):
                raise
            return None

    def _stopped(self, prompt: list[ChatMessage], progress: Progress) -> StoredAnswer:
        """What a stopped answer stores: the text so far and an estimate of what it used."""
        model = progress.model or self.llm.primary_model
        text = progress.text.replace("\x00", "").rstrip()  # a word cut off mid-stream ends it
        prompt_tokens, completion_tokens, cost = self.llm.stopped_usage(model, prompt, text)
        return StoredAnswer(
            content=text,
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=0,
            fallback_used=progress.fallback_used,
            cost_usd=cost,
            stopped=True,
        )

    async def _record_transcript(self, message_id: uuid.UUID, transcript: str) -> None:
        try:
            await execute(
                self.engine,
                lambda conn: turns.record_transcript(conn, message_id=message_id, content=transcript),
            )
        except Exception as exc:  # this answer reads the transcript all the same; the history does not
            log.warning("transcript_not_recorded", error=type(exc).__name__)

    async def _model_for(self, work: UserWork) -> models.TurnModel:
        turn_model = models.for_turn(work.model, self.settings)
        if turn_model.withdrawn is not None:
            metrics.BOT_MODEL_WITHDRAWN.inc()
            log.info("model_choice_withdrawn", model=turn_model.withdrawn)
            try:
                await models.forget_withdrawn(
                    engine=self.engine, user_id=work.user_id, model=turn_model.withdrawn
                )
            except Exception as exc:  # the note comes again next turn; nothing else is lost
                log.warning("model_choice_not_forgotten", error=type(exc).__name__)
        return turn_model

    async def _wait_for_rate_limit(self, user_id: int, chat_id: int) -> None:
        wait = self.limiter.reserve(user_id)
        if wait <= 0:
            return
        metrics.BOT_RATE_LIMITED.inc()
        log.info("turn_rate_limited", wait_seconds=round(wait, 1))
        if wait >= SLOW_DOWN_NOTICE_SECONDS:
            with contextlib.suppress(Exception):  # a courtesy; the answer follows regardless
                await self.output.send_plain(chat_id, _(SLOW_DOWN).format(seconds=round(wait)))
        await asyncio.sleep(wait)

    def _stream(
        self, chat_id: int, pending: list[PendingMessage], *, reply_to: int | None
    ) -> ReplyStream | None:
        mode = self.settings.stream_replies
        if mode == "off":
            return None
        private = chat_id > 0
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
        interval = self.settings.stream_edit_interval_seconds
        per_minute = self.settings.telegram_group_per_minute
        if not private and per_minute > 0:  # a group takes that many messages and edits a minute
            interval = max(interval, 60.0 / per_minute)
        return ReplyStream(
            self.output,
            chat_id,
            mode="draft" if private and mode != "edit" else "edit",
            interval_seconds=interval,
            reply_to=reply_to,
            previews=previews,
            on_new_preview=remember_preview,
            stoppable=True,
            delay_seconds=0.0 if private else GROUP_PREVIEW_DELAY_SECONDS,
        )
