"""Long conversations: once the history overflows the window, older turns become a stored summary
that the model reads ahead of the recent messages; it counts against the budget; /reset forgets it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot.services.summaries import INSTRUCTIONS
from parley_testing.doubles import llm as script
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import SettingsFactory, rows, running_bot

HEADER = "Summary of the conversation before the messages below:"


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
        ledger = await rows(
            engine, "SELECT sum(tokens) AS tokens FROM usage_counters WHERE user_id = :u", u=USER
        )
        answers = await rows(
            engine,
            "SELECT sum(prompt_tokens + completion_tokens) AS tokens FROM messages WHERE user_id = :u",
            u=USER,
        )
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
    assert ledger[0].tokens == answers[0].tokens + summary.prompt_tokens + summary.completion_tokens
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
