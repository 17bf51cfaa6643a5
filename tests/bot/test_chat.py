"""End to end through the real dispatcher, polling the Telegram double: the conversation itself."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_testing.doubles import llm as script
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from tests.bot.constants import FALLBACK_MODEL as FALLBACK
from tests.bot.constants import PRIMARY_MODEL as PRIMARY
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import RunningBot, SettingsFactory, rows, running_bot


async def test_answers_and_remembers_the_conversation(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    telegram.send_text("Hello there")
    first = await telegram.wait_for_messages(USER, 1)
    telegram.send_text("And again")
    second = await telegram.wait_for_messages(USER, 2)

    assert first[0].text == "echo: Hello there"
    assert second[1].text == "echo: And again"
    prompt = llm.requests[1]["messages"]
    assert [(m["role"], m["content"]) for m in prompt[1:]] == [
        ("user", "Hello there"),
        ("assistant", "echo: Hello there"),
        ("user", "And again"),
    ]
    assert prompt[0]["role"] == "system"
    stored = await rows(
        engine,
        "SELECT role, content, model, prompt_tokens, completion_tokens, latency_ms, fallback_used"
        " FROM messages WHERE user_id = :u ORDER BY created_at",
        u=USER,
    )
    assert [(r.role, r.content) for r in stored] == [
        ("user", "Hello there"),
        ("assistant", "echo: Hello there"),
        ("user", "And again"),
        ("assistant", "echo: And again"),
    ]
    answer = stored[3]
    assert answer.model == PRIMARY
    assert answer.prompt_tokens > 0
    assert answer.completion_tokens == 3
    assert answer.latency_ms >= 0
    assert answer.fallback_used is False
    user = await rows(
        engine,
        "SELECT username, first_name, lease_holder IN (SELECT id FROM bot_instances) AS ours FROM users"
        " WHERE id = :u",
        u=USER,
    )
    # Polling mode runs one process: the lease stays with it between turns.
    assert (user[0].username, user[0].first_name, user[0].ours) == ("ada", "Ada", True)


async def test_history_survives_a_restart(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    settings = make_settings()
    async with running_bot(settings, telegram):
        telegram.send_text("Remember the number 7")
        await telegram.wait_for_messages(USER, 1)
    async with running_bot(settings, telegram):
        telegram.send_text("Which number?")
        await telegram.wait_for_messages(USER, 2)

    contents = [m["content"] for m in llm.requests[-1]["messages"]]
    assert contents[1:] == ["Remember the number 7", "echo: Remember the number 7", "Which number?"]


async def test_fallback_model_answers_when_the_primary_fails(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    llm.script(PRIMARY, script.error(500), script.error(429))
    before = metrics.LLM_FALLBACK_USED._value.get()

    telegram.send_text("Are you there?")
    [reply] = await telegram.wait_for_messages(USER, 1)

    assert reply.text == "echo: Are you there?"
    assert llm.models_called() == [PRIMARY, PRIMARY, FALLBACK]
    assert metrics.LLM_FALLBACK_USED._value.get() == before + 1
    stored = await rows(engine, "SELECT model, fallback_used FROM messages WHERE role = 'assistant'")
    assert [(r.model, r.fallback_used) for r in stored] == [(FALLBACK, True)]


async def test_both_models_failing_gets_a_friendly_reply_and_keeps_the_message(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    llm.script("*", *[script.error(503)] * 4)

    telegram.send_text("Anyone?")
    [reply] = await telegram.wait_for_messages(USER, 1)

    assert "temporarily unavailable" in reply.text
    stored = await rows(engine, "SELECT role, content FROM messages")
    assert [(r.role, r.content) for r in stored] == [("user", "Anyone?")]
    telegram.send_text("And now?")  # the user is not blocked
    await telegram.wait_for_messages(USER, 2)


async def test_typing_is_shown_only_while_a_slow_answer_is_prepared(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    telegram.send_text("quick one")
    await telegram.wait_for_messages(USER, 1)
    llm.latency = 1.2
    telegram.send_text("slow one")
    await telegram.wait_for_messages(USER, 2)

    actions = [(m, p) for m, p in telegram.calls if m == "sendChatAction"]
    assert len(actions) == 1  # for the slow answer only
    assert actions[0][1]["action"] == "typing"
    assert int(actions[0][1]["chat_id"]) == USER


TABLE_ANSWER = "Prices:\n\n| model | $/1M |\n|---|--:|\n| small | 0.5 |\n| large | 12 |\n\nCheap enough."


async def test_a_table_in_an_answer_is_a_rich_message_where_the_chat_takes_one(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    llm.script("*", script.reply(TABLE_ANSWER), script.reply(TABLE_ANSWER), script.reply("no table"))
    group = -100777
    telegram.rich_refused_chats.add(group)
    telegram.send_text("what do models cost?")
    [private] = await telegram.wait_for_messages(USER, 1)
    telegram.send_text("@parley_test_bot and here?", chat_id=group, chat_type="supergroup")
    [in_group] = await telegram.wait_for_messages(group, 1)
    telegram.send_text("and without a table?")
    [_, plain] = await telegram.wait_for_messages(USER, 2)

    assert private.rich
    assert (private.parse_mode, private.raw) == ("markdown", TABLE_ANSWER)  # Telegram draws the table
    assert not in_group.rich  # refused there: the monospace block instead
    assert f"<pre>{COLUMNS}</pre>" in in_group.raw
    assert (plain.rich, plain.parse_mode) == (False, "HTML")  # only tables need a rich message


COLUMNS = "model │ $/1M\n──────┼─────\nsmall │  0.5\nlarge │   12"


async def test_without_rich_messages_a_table_arrives_as_aligned_columns_in_private_chats_and_groups(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    telegram.rich_messages_supported = False  # a Bot API server from before rich messages
    llm.script("*", script.reply(TABLE_ANSWER), script.reply(TABLE_ANSWER))
    group = -100777
    telegram.send_text("what do models cost?")
    [private] = await telegram.wait_for_messages(USER, 1)
    telegram.send_text("@parley_test_bot and here?", chat_id=group, chat_type="supergroup")
    [in_group] = await telegram.wait_for_messages(group, 1)

    for reply in (private, in_group):
        assert reply.parse_mode == "HTML"
        assert f"<pre>{COLUMNS}</pre>" in reply.raw  # monospace: the columns stay aligned
        assert reply.text == f"Prices:\n\n{COLUMNS}\n\nCheap enough."
    # Asked once: a 404 means the server has no such method, for every chat.
    assert sum(1 for method, _ in telegram.calls if method == "sendRichMessage") == 1


async def test_a_reasoning_models_thinking_arrives_collapsed_ahead_of_the_answer(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    llm.script("*", script.reply("<think>\nTwo and two. <b>Add</b> them.\n</think>\n\nThe answer is **4**."))
    telegram.send_text("what is 2+2?")
    [reply] = await telegram.wait_for_messages(USER, 1)

    assert reply.parse_mode == "HTML"
    assert reply.raw == (
        "<blockquote expandable>💭 Two and two. &lt;b&gt;Add&lt;/b&gt; them.</blockquote>"
        "\n\nThe answer is <b>4</b>."
    )
    assert reply.text == "💭 Two and two. <b>Add</b> them.\n\nThe answer is 4."
