"""Russian and English: complete catalogues, the user's language end to end, menus per language."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import i18n
from parley_bot.runner import COMMANDS
from parley_testing.doubles import llm as script
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import SentMessage, TelegramDouble
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import SettingsFactory, rows, running_bot

BOT_PACKAGE = Path(i18n.__file__).parent
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"\{[a-z_]*\}")
MARKUP = re.compile(r"</?[a-z]+>|&[a-z]+;|/[a-z_]+")  # HTML tags, entities and /commands


def _source_texts() -> set[str | tuple[str, str]]:
    """Every text the bot's code marks for translation, as Babel extracts it."""
    texts: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        BOT_PACKAGE, method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        texts.add(message if isinstance(message, str) else (message[0], message[1]))
    return texts


def _catalogue(locale: str) -> Catalog:
    with (BOT_PACKAGE / "locales" / locale / "LC_MESSAGES" / "parley.po").open("rb") as source:
        return read_po(source, locale=locale)


def _signature(text: str) -> tuple[Counter[str], Counter[str]]:
    return Counter(PLACEHOLDER.findall(text)), Counter(MARKUP.findall(text))


def test_every_text_of_the_code_is_in_both_catalogues_and_translated_into_russian() -> None:
    source = _source_texts()
    assert len(source) > 50  # the extraction found the bot's texts
    for locale in i18n.LOCALES:
        catalogue = _catalogue(locale)
        ids = {m.id if isinstance(m.id, str) else tuple(m.id) for m in catalogue if m.id}
        assert source - ids == set(), f"texts missing from {locale}: run make i18n"
        assert ids - source == set(), f"texts {locale} keeps that the code no longer has: run make i18n"
    untranslated = [
        m.id
        for m in _catalogue("ru")
        if m.id and not all(m.string if isinstance(m.string, tuple) else [m.string])
    ]
    assert untranslated == []


def test_a_translation_keeps_the_placeholders_markup_and_commands_of_the_original() -> None:
    catalogue = _catalogue("ru")
    assert catalogue.num_plurals == 3
    for message in catalogue:
        if not message.id:
            continue
        originals = [message.id] if isinstance(message.id, str) else list(message.id)
        translations = [message.string] if isinstance(message.string, str) else list(message.string or ())
        for translation in translations:
            assert _signature(translation) == _signature(originals[-1]), (message.id, translation)


def test_locale_follows_the_telegram_language_and_defaults_to_english() -> None:
    assert [i18n.locale_for(code) for code in ("ru", "ru-RU", "RU", "en", "en-GB", "de", "uk", "", None)] == [
        "ru", "ru", "ru", "en", "en", "en", "en", "en", "en",
    ]  # fmt: skip


async def _reply(telegram: TelegramDouble, text: str, *, language_code: str | None) -> SentMessage:
    before = len(telegram.messages_to(USER))
    telegram.send_text(text, user_id=USER, language_code=language_code)
    await telegram.wait_for(lambda: len(telegram.messages_to(USER)) > before)
    return telegram.messages_to(USER)[before]


async def test_a_russian_app_gets_russian_until_the_user_picks_english_with_language(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    async with running_bot(make_settings(llm_attempts_per_model=1), telegram):
        start = await _reply(telegram, "/start", language_code="ru-RU")
        assert start.text.startswith("Привет, Ada! Я Parley")
        assert "/language — выбрать язык" in start.text

        llm.script("*", script.error(503), script.error(503))
        unavailable = await _reply(telegram, "ты тут?", language_code="ru")  # a turn's own text
        assert unavailable.text.startswith("Извините, языковые модели временно недоступны")

        menu = await _reply(telegram, "/language", language_code="ru")
        assert menu.text == "Я говорю с вами: Русский. Выберите язык:"  # noqa: RUF001
        assert [label for label, _ in menu.buttons()] == ["English", "Русский", "Как в моём Telegram"]
        answered = len(telegram.callback_answers)
        telegram.push_update(
            telegram.callback_update("lang:en", message=menu, user_id=USER, language_code="ru")
        )
        await telegram.wait_for(lambda: len(telegram.callback_answers) > answered)
        await telegram.wait_for(lambda: menu.text == "OK — I speak English with you now.")
        assert await rows(engine, "SELECT language FROM user_settings WHERE user_id = :u", u=USER) == [
            ("en",)
        ]

        help_text = await _reply(telegram, "/help", language_code="ru")  # the choice beats the app
        assert help_text.text.startswith("Commands\n/reset — forget our conversation")
        llm.script("*", script.error(503), script.error(503))
        unavailable = await _reply(telegram, "still there?", language_code="ru")
        assert unavailable.text.startswith("Sorry, the language models are temporarily unavailable")

        auto = await _reply(telegram, "/language auto", language_code="ru")
        assert auto.text == "Готово — я говорю на языке вашего Telegram (Русский)."
        unknown = await _reply(telegram, "/language klingon", language_code="ru")
        assert unknown.text.startswith("Извините, я говорю по-английски и по-русски")
        assert await rows(engine, "SELECT language FROM user_settings WHERE user_id = :u", u=USER) == [
            (None,)
        ]


async def test_an_unknown_or_missing_app_language_gets_english(
    make_settings: SettingsFactory, telegram: TelegramDouble
) -> None:
    async with running_bot(make_settings(), telegram):
        for code in ("de", None):
            reply = await _reply(telegram, "/history", language_code=code)
            assert reply.text.startswith("I keep the last")


async def test_the_command_menu_is_set_in_english_by_default_and_in_russian_for_russian_apps(
    make_settings: SettingsFactory, telegram: TelegramDouble
) -> None:
    async with running_bot(make_settings(), telegram):
        await telegram.wait_for(lambda: "ru" in telegram.command_menus)
        default, russian = telegram.command_menus[""], telegram.command_menus["ru"]
        assert [c["command"] for c in default] == [c["command"] for c in russian] == [c for c, _ in COMMANDS]
        descriptions = {c["command"]: c["description"] for c in default}
        assert descriptions["language"] == "Pick the language I speak"
        assert {c["command"]: c["description"] for c in russian}["reset"] == "Забыть наш разговор"
