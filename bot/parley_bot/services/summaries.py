"""Long conversations: older turns folded into a stored summary instead of being dropped.

Two things make a turn summarise before it answers:

* the history is longer than the window: the work statement reads the history after the stored
  summary and says when more of it waits than the prompt takes (``history_overflow``); everything
  but the newest half of the window is folded in;
* the prompt does not fit the model's context (the gateway refuses it): the older half of the
  prompt's history is folded in and the answer asked again, as often as needed.

A fold asks the model for a summary of the previous summary and the older messages; when that
prompt does not fit the context either, the messages are folded in two halves, one after the
other (and so on), so a summary never needs more context than the model has. The result is stored
in ``history_summaries`` and the prompt carries it ahead of the recent messages. Its tokens and cost
go to the user's budget ledger with the answer's. A failed summary costs the older turns for this
answer only — the prompt falls back to the window, or to trimming — and the next turn tries again.
/reset deletes it with the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_bot.llm import ChatMessage, ContextTooLongError, LLMClient, LLMUnavailableError, Progress
from parley_bot.llm.types import Completion, Spent
from parley_bot.services.database import execute
from parley_core.logging import get_logger
from parley_core.models import MessageRole
from parley_core.repositories import turns
from parley_core.repositories.turns import HistoryMessage, Summary, Unsummarised, UserWork

log = get_logger(__name__)

INSTRUCTIONS = (
    "You keep the memory of a conversation between a user and an assistant. Write a concise summary "
    "(at most 250 words) of the earlier summary, if any, and the conversation below: facts about the "
    "user, what was asked and answered, decisions, open questions and anything the assistant promised. "
    "Write it in the language of the conversation. Reply with the summary only."
)
MIN_HISTORY_FOR_SUMMARIES = 4  # a shorter window keeps too little verbatim to be worth a summary
MAX_FOLDED = 400  # messages one summary folds in at most (a long history's first summary)


@dataclass(frozen=True)
class Remembered:
    """What the prompt carries of the past: the summary, the recent messages, and what it cost."""

    summary: str | None
    history: list[HistoryMessage]
    spent: Spent


class SummaryFailedError(Exception):
    """No summary came: the model was unavailable, or one message alone exceeds its context."""


@dataclass
class _Folding:
    """One summary in the making, over one or more requests, and what they consumed."""

    content: str | None
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    spent: Spent = field(default_factory=Spent)

    def count(self, completion: Completion) -> None:
        self.content, self.model = completion.text.strip(), completion.model
        self.prompt_tokens += completion.prompt_tokens or 0
        self.completion_tokens += completion.completion_tokens or 0
        if completion.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + completion.cost_usd
        self.spent.add(
            (completion.prompt_tokens or 0) + (completion.completion_tokens or 0), completion.cost_usd
        )


class Summariser:
    """Folds a user's older turns into the stored summary when they overflow the window or the context."""

    def __init__(self, *, engine: AsyncEngine, llm: LLMClient) -> None:
        self.engine = engine
        self.llm = llm

    async def remember(self, work: UserWork, *, model: str | None) -> Remembered:
        """The summary and history for this turn, summarising first when the history overflows."""
        unchanged = Remembered(work.summary, work.history, Spent())
        if not work.history_overflow or work.max_history_messages < MIN_HISTORY_FOR_SUMMARIES:
            return unchanged
        keep = (work.max_history_messages - 1) // 2
        older = await execute(
            self.engine,
            lambda conn: turns.unsummarised(
                conn, user_id=work.user_id, after=work.summary_until, keep=keep, limit=MAX_FOLDED
            ),
        )
        if not older:
            return unchanged
        folding = await self._summarise(work.user_id, work.summary, older, model=model, reason="window")
        if folding.content is None:
            return Remembered(work.summary, work.history, folding.spent)
        return Remembered(folding.content, work.history[len(work.history) - keep :], folding.spent)

    async def fold_for_context(
        self, work: UserWork, remembered: Remembered, *, model: str | None
    ) -> Remembered:
        """``remembered`` with the older half of its history folded into the summary, for a prompt that
        does not fit the model's context; its history unchanged when that failed (the cost counts)."""
        history = remembered.history
        kept = history[(len(history) + 1) // 2 :]
        while kept and kept[0].role is MessageRole.ASSISTANT:  # the kept part starts with a question
            kept = kept[1:]
        older = history[: len(history) - len(kept)]
        if not older:
            return remembered
        folding = await self._summarise(
            work.user_id, remembered.summary, older, model=model, reason="context"
        )
        spent = Spent(remembered.spent.tokens, remembered.spent.cost_usd)
        spent.add(folding.spent.tokens, folding.spent.cost_usd)
        if folding.content is None:
            return Remembered(remembered.summary, history, spent)
        return Remembered(folding.content, kept, spent)

    async def _summarise(
        self,
        user_id: int,
        previous: str | None,
        older: Sequence[HistoryMessage | Unsummarised],
        *,
        model: str | None,
        reason: str,
    ) -> _Folding:
        """Fold ``older`` into ``previous`` and store the result; ``content`` stays None on failure."""
        folding = _Folding(previous)
        try:
            await self._fold(folding, older, model=model)
        except SummaryFailedError as exc:
            metrics.BOT_SUMMARIES.labels(outcome="failed").inc()
            log.warning("summary_failed", reason=reason, error=str(exc))
            folding.content = None
            return folding
        assert folding.content is not None
        summary = Summary(
            content=folding.content,
            covers_until=older[-1].created_at,
            messages=len(older),
            model=folding.model,
            prompt_tokens=folding.prompt_tokens,
            completion_tokens=folding.completion_tokens,
            cost_usd=folding.cost_usd,
        )
        try:
            await execute(
                self.engine, lambda conn: turns.store_summary(conn, user_id=user_id, summary=summary)
            )
        except Exception as exc:  # this answer uses it all the same; the next overflow summarises again
            log.warning("summary_not_stored", error=type(exc).__name__)
        metrics.BOT_SUMMARIES.labels(outcome="stored").inc()
        log.info("summary_stored", reason=reason, folded=len(older), model=folding.model)
        return folding

    async def _fold(
        self, folding: _Folding, older: Sequence[HistoryMessage | Unsummarised], *, model: str | None
    ) -> None:
        """One request for ``older``, or — when that does not fit the context — one per half, in order."""
        progress = Progress()
        try:
            completion = await self.llm.complete(
                self._prompt(folding.content, older), primary=model, progress=progress, trim=False
            )
        except ContextTooLongError:
            if len(older) < 2:
                raise SummaryFailedError("one message alone exceeds the model's context") from None
            middle = len(older) // 2
            await self._fold(folding, older[:middle], model=model)
            await self._fold(folding, older[middle:], model=model)
            return
        except LLMUnavailableError as exc:
            raise SummaryFailedError(exc.reason) from None
        finally:
            folding.spent.add(progress.wasted.tokens, progress.wasted.cost_usd)
        folding.count(completion)

    @staticmethod
    def _prompt(previous: str | None, older: Sequence[HistoryMessage | Unsummarised]) -> list[ChatMessage]:
        speaker = {"user": "User", "assistant": "Assistant"}
        transcript = "\n\n".join(f"{speaker.get(m.role.value, 'User')}: {m.content}" for m in older)
        earlier = f"Earlier summary:\n{previous}\n\n" if previous else ""
        return [
            ChatMessage("system", INSTRUCTIONS),
            ChatMessage("user", f"{earlier}Conversation:\n{transcript}"),
        ]
