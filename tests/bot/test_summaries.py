"""Long conversations: once the history overflows the window, older turns become a stored summary
that the model reads ahead of the recent messages; it counts against the budget; /reset forgets it."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot.services.summaries import INSTRUCTIONS
from parley_testing.doubles import llm as script
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from tests.bot.constants import PRIMARY_MODEL as PRIMARY
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import SettingsFactory, rows, running_bot

CONTEXT = 150  # tokens (words, in the double)
HEADER = "Summary of the conversation before the messages below:"


async def tokens_counted(engine: AsyncEngine) -> tuple[int, int]:
    """The user's tokens in the budget ledger, and in their stored answers."""
    ledger = await rows(engine, "SELECT sum(tokens) AS tokens FROM usage_counters WHERE user_id = :u", u=USER)
    answers = await rows(
        engine,
        "SELECT sum(prompt_tokens + completion_tokens) AS tokens FROM messages WHERE user_id = :u",
        u=USER,
    )
    return int(ledger[0].tokens), int(answers[0].tokens)


async def say(telegram: TelegramDouble, text: str) -> str:
    count = len(telegram.messages_to(USER))
    telegram.send_text(text)
    return (await telegram.wait_for_messages(USER, count + 1))[count].text


def conversation(request: dict[str, object]) -> list[tuple[str, str]]:
    messages = request["messages"]
    assert isinstance(messages, list)
    return [(m["role"], m["content"]) for m in messages[1:]]


async def test_older_turns_become_a_summary_that_leads_the_prompt_until_reset(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    async with running_bot(make_settings(history_default_messages=5), telegram):
        for text in ("one", "two", "three"):
            await say(telegram, text)
        assert len(llm.requests) == 3  # the window (4 earlier messages) still holds everything
        assert await say(telegram, "four") == "echo: four"
        summarising, answering = llm.requests[3:5]
        await say(telegram, "five")
        ledger, answered_tokens = await tokens_counted(engine)
        [summary] = await rows(engine, "SELECT * FROM history_summaries WHERE user_id = :u", u=USER)
        assert "forgot our conversation" in await say(telegram, "/reset")
        await say(telegram, "six")
        after_reset = await rows(engine, "SELECT count(*) AS n FROM history_summaries")

    # The summary request folds in everything but the newest half of the window.
    assert summarising["messages"][0] == {"role": "system", "content": INSTRUCTIONS}
    assert summarising["messages"][1]["content"] == (
        "Conversation:\nUser: one\n\nAssistant: echo: one\n\nUser: two\n\nAssistant: echo: two"
    )
    written = f"echo: {summarising['messages'][1]['content']}"
    assert conversation(answering) == [
        ("system", f"{HEADER}\n{written}"),
        ("user", "three"),
        ("assistant", "echo: three"),
        ("user", "four"),
    ]
    # The next turn reads the stored summary and everything after it.
    assert conversation(llm.requests[5]) == [
        ("system", f"{HEADER}\n{written}"),
        ("user", "three"),
        ("assistant", "echo: three"),
        ("user", "four"),
        ("assistant", "echo: four"),
        ("user", "five"),
    ]
    assert (summary.content, summary.messages) == (written, 4)
    assert ledger == answered_tokens + summary.prompt_tokens + summary.completion_tokens
    assert after_reset[0].n == 0
    assert conversation(llm.requests[-1]) == [("user", "six")]


async def test_a_failed_summary_answers_with_the_recent_window_and_tries_again_next_turn(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    settings = make_settings(history_default_messages=5, llm_attempts_per_model=1)
    async with running_bot(settings, telegram):
        for text in ("one", "two", "three"):
            await say(telegram, text)
        llm.script("*", script.error(503), script.error(503))  # the summary's attempt on each model
        assert await say(telegram, "four") == "echo: four"
        assert await rows(engine, "SELECT 1 FROM history_summaries") == []
        await say(telegram, "five")
        stored = await rows(engine, "SELECT messages FROM history_summaries WHERE user_id = :u", u=USER)

    answered_four = next(r for r in llm.requests if r["messages"][-1]["content"] == "four")
    assert (
        conversation(answered_four)
        == [
            ("user", "one"),
            ("assistant", "echo: one"),
            ("user", "two"),
            ("assistant", "echo: two"),
            ("user", "three"),
            ("assistant", "echo: three"),
            ("user", "four"),
        ][-5:]
    )
    assert [r.messages for r in stored] == [6]  # folded in at the next turn: nothing was dropped


def summary_requests(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in requests if r["messages"][0] == {"role": "system", "content": INSTRUCTIONS}]


def prompt_tokens(request: dict[str, Any]) -> int:
    return sum(script.count_tokens(str(m["content"])) for m in request["messages"])


def short_summaries(messages: list[dict[str, Any]]) -> str:
    """The double's answer: a few words for a summary request, the usual echo otherwise."""
    if messages[0]["content"] == INSTRUCTIONS:
        return f"summary of {str(messages[-1]['content']).count('User:')} questions"
    return script.default_answer(messages)


async def test_a_history_beyond_the_context_is_folded_in_halves_until_the_prompt_fits(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    llm.answer = short_summaries
    texts = [" ".join(f"w{turn}x{i}" for i in range(30)) for turn in range(6)]
    async with running_bot(make_settings(history_default_messages=20), telegram):
        for text in texts:
            await say(telegram, text)
        before = len(llm.requests)
        # Within the window, the whole history is in the prompt (ten earlier messages, then the sixth).
        assert next(content for _, content in conversation(llm.requests[-1])) == texts[0]
        assert len(conversation(llm.requests[-1])) == 11
        # A smaller context (another model's, say): the twelve earlier messages (~370 words) no longer fit.
        llm.context_tokens[PRIMARY] = CONTEXT
        assert await say(telegram, "seven") == "echo: seven"
        turn = llm.requests[before:]
        await say(telegram, "eight")
        [stored] = await rows(engine, "SELECT * FROM history_summaries WHERE user_id = :u", u=USER)
        stamps = await rows(
            engine, "SELECT created_at FROM messages WHERE user_id = :u ORDER BY created_at", u=USER
        )
        ledger, answered_tokens = await tokens_counted(engine)

    answered = turn[-1]
    assert conversation(answered)[-1] == ("user", "seven")
    assert conversation(answered)[0][0] == "system"  # the summary leads
    assert conversation(answered)[0][1].startswith(HEADER)
    kept = [content for role, content in conversation(answered)[1:-1]]
    # Nothing was dropped: every earlier message is either summarised or still in the prompt.
    folded = "\n".join(str(r["messages"][1]["content"]) for r in summary_requests(turn))
    for text in texts:
        assert text in folded or text in kept
        assert f"echo: {text}" in folded or f"echo: {text}" in kept
    # The older half did not fit one summary request either: it went in halves, each later request
    # carrying the summary written by the one before.
    assert any(prompt_tokens(r) > CONTEXT for r in summary_requests(turn))
    written = [r for r in summary_requests(turn) if prompt_tokens(r) <= CONTEXT]
    assert len(written) >= 3
    for previous, following in itertools.pairwise(written):
        earlier = f"Earlier summary:\n{short_summaries(previous['messages'])}\n\n"
        assert str(following["messages"][1]["content"]).startswith(earlier)
    assert stored.content == short_summaries(written[-1]["messages"])
    assert conversation(answered)[0][1] == f"{HEADER}\n{stored.content}"
    assert stored.messages == 12 - len(kept)
    assert stored.covers_until == stamps[12 - len(kept) - 1].created_at
    # The next turn reads the summary and what came after it.
    assert conversation(llm.requests[-1]) == [
        *conversation(answered),
        ("assistant", "echo: seven"),
        ("user", "eight"),
    ]
    billed = [r for r in summary_requests(llm.requests) if prompt_tokens(r) <= CONTEXT]  # others refused
    summarised = sum(prompt_tokens(r) + script.count_tokens(short_summaries(r["messages"])) for r in billed)
    assert ledger == answered_tokens + summarised
