"""Stopping an answer while it streams (draft Stop, Stop button, another replica) and /retry."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.settings import BotSettings
from parley_testing.doubles.llm import LLMDouble, error, hang, reply
from parley_testing.doubles.telegram import Draft, SentMessage, TelegramDouble
from parley_testing.waiting import eventually
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import SettingsFactory, post_update, rows, running_bot, settled, webhook_replica

WORDS = 120
LONG = " ".join(f"word{i}" for i in range(WORDS))
STOPPED_MARK = "⏹ Stopped."
ANSWERS = "SELECT content, stopped, replaced, prompt_tokens, completion_tokens FROM messages"
ANSWERS += " WHERE user_id = :u AND role = 'assistant' ORDER BY created_at"
GROUP = -500


def _stops() -> float:
    return REGISTRY.get_sample_value("bot_answers_stopped_total") or 0.0


def _slow(llm: LLMDouble) -> None:
    """A long answer written one word per 50 ms (six seconds in all)."""
    llm.chunk_words = 1
    llm.chunk_delay = 0.05
    llm.script("*", reply(LONG))


async def _stoppable_draft(telegram: TelegramDouble) -> Draft:
    await telegram.wait_for(lambda: any(d.can_stop and "word5 " in d.text for d in telegram.drafts))
    return telegram.drafts[-1]


async def _press(telegram: TelegramDouble, message: SentMessage, user_id: int) -> str | None:
    answered = len(telegram.callback_answers)
    [(_, data)] = message.buttons()
    telegram.push_update(telegram.callback_update(data, message=message, user_id=user_id))
    await telegram.wait_for(lambda: len(telegram.callback_answers) > answered)
    return telegram.callback_answers[-1][1]


def _last_prompt(llm: LLMDouble) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in llm.requests[-1]["messages"] if m["role"] != "system"]


async def test_stopping_a_draft_closes_the_request_keeps_the_text_and_frees_the_turn(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    _slow(llm)
    before = _stops()
    settings = make_settings(stream_replies="draft", stream_edit_interval_seconds=0.1)
    async with running_bot(settings, telegram):
        telegram.send_text("tell me a long story")
        draft = await _stoppable_draft(telegram)
        telegram.push_update(telegram.stop_update(draft))
        [final] = await telegram.wait_for_messages(USER, 1)
        await eventually(lambda: llm.disconnects or None, "the gateway saw the client go away")
        chunks_at_stop = llm.streamed_chunks
        await settled(engine, USER)
        await asyncio.sleep(0.3)  # six more words' time: the stopped answer is not written on
        assert llm.streamed_chunks == chunks_at_stop

        # The turn is free at once: the next question is answered straight away, by the model.
        telegram.send_text("quick one")
        await telegram.wait_for_messages(USER, 2)
        assert telegram.messages_to(USER)[1].text == "echo: quick one"

    assert final.text.startswith("word0 word1 word2 word3 word4 word5")
    assert final.text.endswith(STOPPED_MARK)
    assert f"word{WORDS - 1}" not in final.text
    assert chunks_at_stop < WORDS
    stopped, answered = await rows(engine, ANSWERS, u=USER)
    assert stopped.stopped
    assert not answered.stopped
    assert final.text == f"{stopped.content}\n\n{STOPPED_MARK}"  # what was written, and only that
    assert stopped.completion_tokens > 0
    assert stopped.prompt_tokens > 0
    # Its tokens count against the budget like any answer's.
    [ledger] = await rows(
        engine, "SELECT sum(tokens) AS tokens FROM usage_counters WHERE user_id = :u", u=USER
    )
    assert ledger.tokens == sum(a.prompt_tokens + a.completion_tokens for a in (stopped, answered))
    # The stopped text stays in the history the model reads.
    assert ("assistant", stopped.content) in _last_prompt(llm)
    assert _stops() == before + 1


async def test_the_stop_button_of_an_edited_preview_stops_and_the_preview_becomes_the_answer(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    _slow(llm)
    async with running_bot(make_settings(stream_replies="edit", stream_edit_interval_seconds=0.1), telegram):
        telegram.send_text("tell me a long story")
        await telegram.wait_for(
            lambda: any(m.buttons() and "word5 " in m.text for m in telegram.messages_to(USER))
        )
        [preview] = telegram.messages_to(USER)
        assert preview.buttons()[0][0] == "⏹ Stop"
        assert await _press(telegram, preview, USER) == "Stopped."
        await settled(engine, USER)

    assert telegram.messages_to(USER) == [preview]  # exactly one message: the preview, finished
    assert preview.reply_markup is None
    assert preview.text.endswith(STOPPED_MARK)
    [stopped] = await rows(engine, ANSWERS, u=USER)
    assert stopped.stopped
    assert preview.text == f"{stopped.content}\n\n{STOPPED_MARK}"


async def test_in_a_group_a_slow_answer_gets_a_stop_button_only_the_asker_may_press(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    llm.script("*", reply("quick"))
    _slow(llm)
    settings = make_settings(
        stream_replies="auto",
        stream_edit_interval_seconds=0.1,
        llm_timeout_seconds=10.0,  # the preview comes after 3 s
        llm_deadline_seconds=20.0,
    )
    async with running_bot(settings, telegram):
        telegram.send_text(f"@{telegram.bot_username} short", chat_id=GROUP, chat_type="group")
        [quick] = await telegram.wait_for_messages(GROUP, 1)
        assert quick.text == "quick"
        assert quick.edits == 0

        update = telegram.text_update(f"@{telegram.bot_username} long", chat_id=GROUP, chat_type="group")
        question = update["message"]["message_id"]
        telegram.push_update(update)
        await telegram.wait_for(lambda: any(m.buttons() for m in telegram.messages_to(GROUP)))
        preview = telegram.messages_to(GROUP)[-1]
        assert preview.reply_to == question
        assert await _press(telegram, preview, USER + 1) == "Only the person who asked can stop this answer."
        assert await _press(telegram, preview, USER) == "Stopped."
        await settled(engine, GROUP)

    assert telegram.messages_to(GROUP) == [quick, preview]
    assert preview.reply_markup is None
    assert preview.text.endswith(STOPPED_MARK)
    assert not any(d.chat_id == GROUP for d in telegram.drafts)  # drafts exist in private chats only


async def test_a_stop_that_reaches_another_replica_stops_the_answer_where_it_is_written(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    _slow(llm)

    def replica() -> BotSettings:
        return webhook_replica(make_settings, stream_replies="draft", stream_edit_interval_seconds=0.1)

    async with running_bot(replica(), telegram) as one, running_bot(replica(), telegram) as two:
        await asyncio.sleep(0.5)  # both listen for stops
        assert await post_update(one, telegram.text_update("tell me a long story"), 70_001) == 200
        draft = await _stoppable_draft(telegram)
        assert await post_update(two, telegram.stop_update(draft), 70_002) == 200
        [final] = await telegram.wait_for_messages(USER, 1)
        await settled(engine, USER)
    assert final.text.endswith(STOPPED_MARK)
    assert f"word{WORDS - 1}" not in final.text
    assert llm.disconnects == 1
    [stopped] = await rows(engine, ANSWERS, u=USER)
    assert stopped.stopped


async def test_retry_after_a_stop_answers_again_and_the_old_answer_leaves_the_history(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    _slow(llm)
    retries = REGISTRY.get_sample_value("bot_retries_total") or 0.0
    settings = make_settings(stream_replies="draft", stream_edit_interval_seconds=0.1)
    async with running_bot(settings, telegram):
        telegram.send_text("/retry")
        [nothing] = await telegram.wait_for_messages(USER, 1)
        assert nothing.text == "There is no answer of mine to retry yet."

        telegram.send_text("tell me a long story")
        telegram.push_update(telegram.stop_update(await _stoppable_draft(telegram)))
        await telegram.wait_for_messages(USER, 2)
        await settled(engine, USER)

        llm.chunk_delay = 0.0
        llm.script("*", reply("the whole story"))
        telegram.send_text("/retry")
        await telegram.wait_for_messages(USER, 3)
        assert telegram.messages_to(USER)[2].text == "the whole story"
        assert _last_prompt(llm) == [("user", "tell me a long story")]  # the stopped answer is not in it

        telegram.send_text("and then?")
        await telegram.wait_for_messages(USER, 4)
    assert _last_prompt(llm) == [
        ("user", "tell me a long story"),
        ("assistant", "the whole story"),
        ("user", "and then?"),
    ]
    stopped, retried, last = await rows(engine, ANSWERS, u=USER)
    assert (stopped.stopped, stopped.replaced) == (True, True)  # kept in the database, out of the history
    assert (retried.content, retried.replaced) == ("the whole story", False)
    assert last.content == "echo: and then?"
    assert (REGISTRY.get_sample_value("bot_retries_total") or 0.0) == retries + 1


async def test_retry_asks_again_what_went_unanswered_and_waits_while_an_answer_is_written(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    llm.script("*", error(503), error(503), error(503), error(503), error(503), error(503))
    async with running_bot(make_settings(llm_attempts_per_model=1), telegram):
        telegram.send_text("are you there?")
        [unavailable] = await telegram.wait_for_messages(USER, 1)
        assert unavailable.text.startswith("Sorry, the language models are temporarily unavailable")
        llm._scripts.clear()

        llm.script("*", hang())
        telegram.send_text("/retry")
        await eventually(lambda: len(llm.requests) == 3 or None, "the question asked again")
        telegram.send_text("/retry")  # while that answer is being written
        await telegram.wait_for_messages(USER, 2)
        assert telegram.messages_to(USER)[1].text.startswith("I'm still answering you.")
        for event in list(llm._hanging):
            event.set()  # the hanging request fails over to the fallback, which answers
        await telegram.wait_for_messages(USER, 3)
        await settled(engine, USER)
    assert telegram.messages_to(USER)[2].text == "echo: are you there?"
    [question] = await rows(
        engine, "SELECT unanswered FROM messages WHERE role = 'user' AND user_id = :u", u=USER
    )
    assert not question.unanswered
