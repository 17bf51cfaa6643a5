"""Long conversations: older turns folded into a stored summary instead of being dropped.

The work statement reads the history after the stored summary and says when more of it waits than
the prompt takes (``history_overflow``). Then, before the answer, the model summarises everything
but the newest half of the window — with the previous summary — into a new one, stored in
``history_summaries``; the prompt then carries the summary ahead of the recent messages. The
summary's tokens and cost go to the user's budget ledger with the answer's. A failed summary costs
nothing but the older turns for this answer: the next overflowing turn tries again. /reset deletes
it with the history.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_bot.llm import ChatMessage, ContextTooLongError, LLMClient, LLMUnavailableError, Progress
from parley_bot.llm.types import Spent
from parley_bot.services.database import execute
from parley_core.logging import get_logger
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


class Summariser:
    """Folds a user's older turns into the stored summary when the history overflows the window."""

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
        progress = Progress()
        try:
            completion = await self.llm.complete(
                self._prompt(work.summary, older), primary=model, progress=progress
            )
        except (LLMUnavailableError, ContextTooLongError) as exc:
            metrics.BOT_SUMMARIES.labels(outcome="failed").inc()
            log.warning("summary_failed", error=type(exc).__name__)
            return Remembered(work.summary, work.history, progress.wasted)
        summary = Summary(
            content=completion.text.strip(),
            covers_until=older[-1].created_at,
            messages=len(older),
            model=completion.model,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            cost_usd=completion.cost_usd,
        )
        try:
            await execute(
                self.engine, lambda conn: turns.store_summary(conn, user_id=work.user_id, summary=summary)
            )
        except Exception as exc:  # this answer uses it all the same; the next overflow summarises again
            log.warning("summary_not_stored", error=type(exc).__name__)
        metrics.BOT_SUMMARIES.labels(outcome="stored").inc()
        log.info("summary_stored", folded=len(older), model=completion.model)
        spent = progress.wasted
        spent.add((completion.prompt_tokens or 0) + (completion.completion_tokens or 0), completion.cost_usd)
        return Remembered(summary.content, work.history[len(work.history) - keep :], spent)

    @staticmethod
    def _prompt(previous: str | None, older: list[Unsummarised]) -> list[ChatMessage]:
        speaker = {"user": "User", "assistant": "Assistant"}
        transcript = "\n\n".join(f"{speaker.get(m.role.value, 'User')}: {m.content}" for m in older)
        earlier = f"Earlier summary:\n{previous}\n\n" if previous else ""
        return [
            ChatMessage("system", INSTRUCTIONS),
            ChatMessage("user", f"{earlier}Conversation:\n{transcript}"),
        ]
