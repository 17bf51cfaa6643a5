"""Commands, non-text messages, groups, the allowlist and the rate limit, end to end."""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncEngine

from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import TelegramDouble
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import RunningBot, SettingsFactory, rows, running_bot, settled


async def ask(telegram: TelegramDouble, text: str, *, user_id: int = USER) -> str:
    """Send ``text`` and return the bot's next message to that chat."""
    count = len(telegram.messages_to(user_id))
    telegram.send_text(text, user_id=user_id)
    return (await telegram.wait_for_messages(user_id, count + 1))[count].text


async def test_start_says_what_is_stored_and_how_to_delete_it(
    bot: RunningBot, telegram: TelegramDouble
) -> None:
    reply = await ask(telegram, "/start")

    assert "Hi Ada" in reply
    assert "What I store" in reply
    assert "/reset" in reply
    assert "/help" in reply
    assert "/system" in await ask(telegram, "/help")


async def test_reset_soft_deletes_the_history(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    await ask(telegram, "first question")
    reply = await ask(telegram, "/reset")
    await ask(telegram, "fresh start")

    assert "forgot our conversation (2 messages)" in reply
    assert [m["content"] for m in llm.requests[-1]["messages"][1:]] == ["fresh start"]
    stored = await rows(
        engine, "SELECT content, deleted_at IS NOT NULL AS deleted FROM messages ORDER BY created_at"
    )
    assert [(r.content, r.deleted) for r in stored] == [
        ("first question", True),
        ("echo: first question", True),
        ("fresh start", False),
        ("echo: fresh start", False),
    ]


async def test_system_prompt_is_set_used_shown_and_reset(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    assert "default" in await ask(telegram, "/system")
    assert "follow your system prompt" in await ask(telegram, "/system Answer like a <pirate> & be brief")
    await ask(telegram, "hi")
    settings_reply = await ask(telegram, "/settings")
    assert "back to the default" in await ask(telegram, "/system reset")
    await ask(telegram, "hi again")

    assert llm.requests[0]["messages"][0] == {
        "role": "system",
        "content": "Answer like a <pirate> & be brief",
    }
    assert "Answer like a <pirate> & be brief" in settings_reply  # escaped in HTML, shown verbatim
    assert llm.requests[1]["messages"][0]["content"] == bot.settings.llm_system_prompt


async def test_too_long_system_prompt_is_refused(bot: RunningBot, telegram: TelegramDouble) -> None:
    reply = await ask(telegram, "/system " + "x" * (bot.settings.system_prompt_max_chars + 1))

    assert reply.startswith("Sorry, the system prompt may be at most 2000 characters")
    assert "(default)" in await ask(telegram, "/settings")


async def test_history_length_bounds_what_the_llm_sees(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    assert "last 20 messages" in await ask(telegram, "/history")
    assert "from 1 to 100" in await ask(telegram, "/history 0")
    assert "whole number" in await ask(telegram, "/history lots")
    assert "last 3 messages" in await ask(telegram, "/history 3")
    for text in ("one", "two", "three"):
        await ask(telegram, text)

    assert [m["content"] for m in llm.requests[-1]["messages"][1:]] == ["two", "echo: two", "three"]
    settings_reply = await ask(telegram, "/settings")
    assert "last 3 messages" in settings_reply
    assert "primary/model" in settings_reply


async def test_unknown_commands_and_non_text_get_polite_replies(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    assert "/help" in await ask(telegram, "/frobnicate")
    telegram.push_update(
        telegram.text_update(
            "",
            extra={
                "sticker": {
                    "file_id": "x",
                    "file_unique_id": "y",
                    "type": "regular",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                }
            },
        )
    )
    telegram.push_update(
        telegram.text_update("", extra={"location": {"latitude": 59.94, "longitude": 30.31}})
    )
    replies = await telegram.wait_for_messages(USER, 3)

    assert [r.text for r in replies[1:]] == [
        "Sorry, I read text, photos, documents and voice messages, not this. "
        "Please send your question as text."
    ] * 2
    assert llm.requests == []


async def test_groups_answer_only_when_addressed(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    group = -100123
    telegram.send_text("chatting among humans", chat_id=group, chat_type="supergroup")
    telegram.send_text("/reset@other_bot", chat_id=group, chat_type="supergroup")
    telegram.send_text("@parley_test_bot what is 2+2?", chat_id=group, chat_type="supergroup")
    replies = await telegram.wait_for_messages(group, 1)
    telegram.send_text("and 3+3?", chat_id=group, chat_type="supergroup", reply_to_bot=True)
    replies = await telegram.wait_for_messages(group, 2)
    # The ignored messages came first: with the last one answered and nothing pending, an (unwanted)
    # answer to them would be here.
    await settled(engine, group)

    assert [r.text for r in telegram.messages_to(group)] == ["echo: what is 2+2?", "echo: and 3+3?"]
    assert all(r.reply_to is not None for r in replies)
    assert [m["content"] for m in llm.requests[1]["messages"][1:]] == [
        "what is 2+2?",
        "echo: what is 2+2?",
        "and 3+3?",
    ]


async def test_bare_start_and_help_in_a_group_are_answered_commands_for_other_bots_are_not(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    group = -100124
    telegram.send_text("/help@other_bot", chat_id=group, chat_type="supergroup")
    telegram.send_text("/start", chat_id=group, chat_type="supergroup")
    [start] = await telegram.wait_for_messages(group, 1)
    telegram.send_text("/help", chat_id=group, chat_type="supergroup")
    replies = await telegram.wait_for_messages(group, 2)
    telegram.send_text("/help@parley_test_bot", chat_id=group, chat_type="supergroup")
    replies = await telegram.wait_for_messages(group, 3)

    assert "Hi Ada" in start.text
    assert all("/history" in reply.text for reply in replies[1:])
    assert llm.requests == []


async def test_allowlist_refuses_other_users(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    async with running_bot(make_settings(allowed_user_ids=[7]), telegram):
        refused = await ask(telegram, "let me in", user_id=USER)
        allowed = await ask(telegram, "hello", user_id=7)

    assert "private bot" in refused
    assert allowed == "echo: hello"
    assert len(llm.requests) == 1


async def test_rate_limit_makes_answers_wait_in_order_and_drops_nothing(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    settings = make_settings(rate_limit_burst=1, rate_limit_per_minute=60, bot_coalesce_seconds=0)
    async with running_bot(settings, telegram):
        first = await ask(telegram, "one")
        started = time.monotonic()
        second = await ask(telegram, "two")  # the bucket is empty: this turn waits ~1 s for a token
        waited = time.monotonic() - started
        third = await ask(telegram, "three")

    assert (first, second, third) == ("echo: one", "echo: two", "echo: three")
    assert waited >= 0.8
    assert [r["messages"][-1]["content"] for r in llm.requests] == ["one", "two", "three"]


async def test_a_users_messages_in_two_chats_are_all_answered_without_waiting_for_a_heartbeat(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    """One turn answers one chat; what the user wrote meanwhile in another chat is the next turn, at
    once — not when the next heartbeat (30 s here) finds it."""
    settings = make_settings(bot_heartbeat_seconds=30, bot_instance_stale_seconds=90)
    group = -100125
    llm.latency = 0.5
    async with running_bot(settings, telegram):
        telegram.send_text("@parley_test_bot first, in the group", chat_id=group, chat_type="supergroup")
        await telegram.wait_for(lambda: len(llm.requests) >= 1)
        telegram.send_text("then privately")
        telegram.send_text("@parley_test_bot and in the group again", chat_id=group, chat_type="supergroup")
        await telegram.wait_for_messages(USER, 1, timeout=10)
        replies = await telegram.wait_for_messages(group, 2, timeout=10)

    assert [r.text for r in replies] == ["echo: first, in the group", "echo: and in the group again"]
