"""/model end to end: the keyboard, the stored choice as primary (the fallback stays), a withdrawn model."""

from __future__ import annotations

from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_testing.doubles.llm import LLMDouble, error
from parley_testing.doubles.telegram import SentMessage, TelegramDouble
from parley_testing.waiting import eventually
from tests.bot.constants import FALLBACK_MODEL as FALLBACK
from tests.bot.constants import PRIMARY_MODEL as PRIMARY
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import SettingsFactory, rows, running_bot

CHOICE = "vendor/clever-model:free"  # OpenRouter ids may carry a ':' variant
OTHER = "vendor/other-model"
STORED_MODEL = "SELECT model FROM user_settings WHERE user_id = :u"


async def _keyboard(telegram: TelegramDouble) -> SentMessage:
    """Send /model and return the new message with its keyboard."""
    before = len(telegram.messages_to(USER))
    telegram.send_text("/model")
    await telegram.wait_for(lambda: len(telegram.messages_to(USER)) > before)
    menu = telegram.messages_to(USER)[before]
    assert menu.reply_markup is not None
    return menu


def _button(message: SentMessage, model: str) -> str:
    return next(data for label, data in message.buttons() if model in label)


async def _press(
    telegram: TelegramDouble, message: SentMessage, data: str, user_id: int = USER
) -> str | None:
    answered = len(telegram.callback_answers)
    telegram.push_update(telegram.callback_update(data, message=message, user_id=user_id))
    await telegram.wait_for(lambda: len(telegram.callback_answers) > answered)
    return telegram.callback_answers[-1][1]


async def test_a_picked_model_answers_from_then_on_and_the_fallback_stays(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    settings = make_settings(llm_model_choices=f"{CHOICE},{OTHER},{PRIMARY}")
    async with running_bot(settings, telegram):
        menu = await _keyboard(telegram)
        labels = [label for label, _ in menu.buttons()]
        assert labels == [f"✓ {PRIMARY} (default)", CHOICE, OTHER]  # the default once, first, ticked
        assert all(len(data.encode()) <= 64 for _, data in menu.buttons())

        assert await _press(telegram, menu, _button(menu, CHOICE)) == f"Model: {CHOICE}"
        await telegram.wait_for(lambda: menu.reply_markup is None)  # the keyboard went with the edit
        assert CHOICE in menu.text
        assert await rows(engine, STORED_MODEL, u=USER) == [(CHOICE,)]

        telegram.send_text("who answers?")
        await telegram.wait_for(lambda: telegram.messages_to(USER)[-1].text == "echo: who answers?")
        assert llm.models_called() == [CHOICE]

        llm.script(CHOICE, error(400))  # the picked model refuses: the configured fallback answers
        telegram.send_text("and now?")
        await telegram.wait_for(lambda: telegram.messages_to(USER)[-1].text == "echo: and now?")
        assert llm.models_called()[1:] == [CHOICE, FALLBACK]

        # Back to the default: nothing of the user's own is stored any more.
        menu = await _keyboard(telegram)
        assert [label for label, _ in menu.buttons()][1] == f"✓ {CHOICE}"
        await _press(telegram, menu, _button(menu, PRIMARY))
        assert await rows(engine, STORED_MODEL, u=USER) == [(None,)]
    picked = REGISTRY.get_sample_value("bot_model_choices_total", {"model": CHOICE})
    assert picked is not None
    assert picked >= 1


async def test_a_model_that_left_the_allowlist_falls_back_to_the_default_with_a_note(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    async with running_bot(make_settings(llm_model_choices=f"{CHOICE},{OTHER}"), telegram):
        menu = await _keyboard(telegram)
        await _press(telegram, menu, _button(menu, CHOICE))
        outdated = await _keyboard(telegram)

    # The operator removes the model (and reorders the list) and restarts the bot.
    async with running_bot(make_settings(llm_model_choices=OTHER), telegram):
        before = len(telegram.messages_to(USER))
        telegram.send_text("still there?")
        await telegram.wait_for_messages(USER, before + 2)
        answer, note = (m.text for m in telegram.messages_to(USER)[before:])
        assert answer == "echo: still there?"
        assert note == (
            f"The model {CHOICE} you picked is no longer offered, so {PRIMARY} answered. "
            "Pick another with /model."
        )
        assert llm.models_called()[-1] == PRIMARY
        assert await rows(engine, STORED_MODEL, u=USER) == [(None,)]  # forgotten: the note comes once

        telegram.send_text("again?")
        await telegram.wait_for_messages(USER, before + 3)
        assert telegram.messages_to(USER)[-1].text == "echo: again?"

        # A button of the list shown before the change picks nothing (its place now holds another model).
        assert (
            await _press(telegram, outdated, _button(outdated, OTHER))
            == "That list is out of date. Send /model again."
        )
        assert await rows(engine, STORED_MODEL, u=USER) == [(None,)]


async def test_without_choices_model_says_which_models_answer(
    make_settings: SettingsFactory, telegram: TelegramDouble
) -> None:
    async with running_bot(make_settings(), telegram):
        telegram.send_text("/model")
        [reply] = await telegram.wait_for_messages(USER, 1)
    assert reply.text == f"I answer with {PRIMARY} ({FALLBACK} when it fails); no other model is offered."
    assert reply.reply_markup is None


async def test_the_bot_asks_telegram_for_button_presses_and_draft_stops(
    make_settings: SettingsFactory, telegram: TelegramDouble
) -> None:
    async with running_bot(make_settings(), telegram):
        await eventually(lambda: telegram.allowed_updates or None, "allowed_updates sent")
    assert {"message", "callback_query", "stopped_message_generation"} <= set(telegram.allowed_updates or ())
