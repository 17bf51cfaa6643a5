"""What the model reads for a turn: the system prompt, the recent history, the waiting messages.

The messages a turn answers are one user message to the model: several messages sent in a row
are joined as paragraphs, and a long paste that Telegram split into 4096-character messages is
glued back together. The history is read the same way — consecutive user messages were answered
together — and holds only answered questions: one whose turn ended without an answer (the models
were unavailable, or it waited too long and the user was asked to send it again) is marked
`unanswered` when stored and never read back, so a question the user repeats is not there twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from parley_bot.llm import ChatMessage
from parley_bot.llm.types import Role
from parley_bot.telegram.splitting import utf16_len
from parley_core.repositories.turns import HistoryMessage

SUMMARY_HEADER = "Summary of the conversation before the messages below:"

# Telegram clients cut a long text into messages of at most 4096 UTF-16 code units; a message this
# long is probably a part of one, continued by the next.
SPLIT_PART_MIN_UTF16 = 3500


def looks_split(text: str) -> bool:
    """Whether ``text`` is long enough to be a part of a paste Telegram split."""
    return utf16_len(text) >= SPLIT_PART_MIN_UTF16


def join_messages(contents: Sequence[str]) -> str:
    """Consecutive messages of one user as one text."""
    joined = contents[0] if contents else ""
    for previous, following in itertools.pairwise(contents):
        joined += ("" if looks_split(previous) else "\n\n") + following
    return joined


def build_prompt(
    *,
    system_prompt: str,
    history: Sequence[HistoryMessage],
    question: Sequence[str],
    max_history: int,
    images: tuple[str, ...] = (),
    summary: str | None = None,
) -> list[ChatMessage]:
    """The chat messages of one turn: system, at most ``max_history - 1`` earlier messages, the question
    (with the turn's photos as ``images``; earlier turns' photos are their descriptions), and the
    summary of older turns, when there is one, right after the system prompt."""
    earlier = list(history)[-(max_history - 1) :] if max_history > 1 else []
    turns: list[ChatMessage] = []
    for message in earlier:
        role: Role = "assistant" if message.role.value == "assistant" else "user"
        if turns and turns[-1].role == role:  # questions answered together, or a retried answer
            turns[-1] = ChatMessage(role, join_messages([turns[-1].content, message.content]))
            continue
        turns.append(ChatMessage(role, message.content))
    while turns and turns[-1].role == "user":  # a question still waiting is not history yet
        turns.pop()
    ahead = [ChatMessage("system", f"{SUMMARY_HEADER}\n{summary}")] if summary else []
    return [
        ChatMessage("system", system_prompt),
        *ahead,
        *turns,
        ChatMessage("user", join_messages(question), images),
    ]
