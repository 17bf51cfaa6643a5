"""/language: the language the bot speaks to the user (their Telegram app's, or one they pick)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, User
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot.filters import AddressedToBot, IsCommand
from parley_bot.i18n import LOCALES, _, current_locale, locale_for, use_locale
from parley_bot.incoming import FromUser, profile_of
from parley_bot.services import preferences
from parley_bot.telegram import TelegramOutput

BUTTON_PREFIX = "lang:"
AUTO = "auto"  # follow the Telegram app's language
NAMES = {"en": "English", "ru": "Русский"}  # each language in its own words


def language_keyboard() -> InlineKeyboardMarkup:
    """One button per language, and one to follow the Telegram app again."""
    rows = [
        [InlineKeyboardButton(text=NAMES[code], callback_data=f"{BUTTON_PREFIX}{code}")] for code in LOCALES
    ]
    rows.append([InlineKeyboardButton(text=_("As my Telegram app"), callback_data=f"{BUTTON_PREFIX}{AUTO}")])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _confirmation(choice: str | None, user: User) -> str:
    """The confirmation, in the language now in force."""
    locale = locale_for(choice or user.language_code)
    with use_locale(locale):
        if choice is None:
            return _("OK — I follow your Telegram app's language ({language}).").format(
                language=NAMES[locale]
            )
        return _("OK — I speak {language} with you now.").format(language=NAMES[locale])


def _choice_of(word: str) -> str | None:
    """``en``/``ru`` (or their names) → that language; ``auto`` → None; anything else → ValueError."""
    word = word.strip().lower()
    if word == AUTO:
        return None
    for code, name in NAMES.items():
        if word in {code, name.lower()}:
            return code
    raise ValueError(word)


async def command_language_handler(
    message: Message, *, user: User, command: CommandObject, engine: AsyncEngine, output: TelegramOutput
) -> None:
    """Offer the languages, or set one named in the command (``/language ru``, ``/language auto``)."""
    if not command.args:
        await output.send_html(
            message.chat.id,
            _("I speak {language} with you. Pick a language:").format(language=NAMES[current_locale()]),
            keyboard=language_keyboard(),
        )
        return
    try:
        choice = _choice_of(command.args)
    except ValueError:
        await output.send_plain(
            message.chat.id,
            _("Sorry, I speak English and Russian: /language en, /language ru or /language auto."),
        )
        return
    await preferences.set_language(engine=engine, profile=profile_of(user), language=choice)
    await output.send_plain(message.chat.id, _confirmation(choice, user))


async def language_button_handler(
    callback: CallbackQuery, *, engine: AsyncEngine, output: TelegramOutput
) -> None:
    """Store the language a button names (for the user who pressed it)."""
    try:
        choice = _choice_of((callback.data or "").removeprefix(BUTTON_PREFIX))
    except ValueError:
        await output.answer_callback(callback.id, _("That list is out of date. Send /language again."))
        return
    await preferences.set_language(engine=engine, profile=profile_of(callback.from_user), language=choice)
    confirmation = _confirmation(choice, callback.from_user)
    await output.answer_callback(callback.id)
    if callback.message is not None:
        await output.edit_html(callback.message.chat.id, callback.message.message_id, confirmation)


def create_router() -> Router:
    """/language and its buttons."""
    router = Router(name=__name__)
    router.message.register(
        command_language_handler, IsCommand(), AddressedToBot(), FromUser(), Command("language")
    )
    router.callback_query.register(language_button_handler, F.data.startswith(BUTTON_PREFIX))
    return router
