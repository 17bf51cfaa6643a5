"""The bot's texts in the user's language: gettext catalogues kept as Babel ``.po`` files.

Every user-facing text is an English ``msgid`` wrapped in :func:`_` (or :func:`ngettext` where a
number decides the form); ``parley_bot/locales/<lang>/LC_MESSAGES/parley.po`` holds the
translations. The catalogues are compiled in memory when the process starts, so no compiled
``.mo`` file can go stale. ``make i18n`` re-extracts the texts and updates both catalogues;
tests fail when a text has no translation or a translation's placeholders differ from the
original's.

The locale is the language the user picked with /language, else their Telegram app's
``language_code``: Russian for ``ru`` (and its regional forms), English for anything else. Commands
and button presses read the stored choice (one primary-key lookup; they are rare); a plain message
is answered by its turn, which reads the choice with the rest of the user's work, so chat messages
cost no extra database round trip. Texts sent before that (a refusal at the door) follow Telegram.
"""

from __future__ import annotations

import gettext
import io
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject, Update, User
from aiogram.utils.i18n import I18n, I18nMiddleware
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_core.logging import get_logger
from parley_core.repositories import user_settings

log = get_logger(__name__)

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "parley"
DEFAULT_LOCALE = "en"
LOCALES = ("en", "ru")


class Catalogues(I18n):
    """aiogram's I18n reading ``.po`` files (compiled in memory) instead of compiled ``.mo`` files."""

    def find_locales(self) -> dict[str, gettext.GNUTranslations]:
        """Compile every ``<lang>/LC_MESSAGES/<domain>.po`` under the path."""
        translations: dict[str, gettext.GNUTranslations] = {}
        for po_path in sorted(self.path.glob(f"*/LC_MESSAGES/{self.domain}.po")):
            locale = po_path.parent.parent.name
            with po_path.open("rb") as source:
                catalog = read_po(source, locale=locale, domain=self.domain)
            compiled = io.BytesIO()
            write_mo(compiled, catalog)
            compiled.seek(0)
            translations[locale] = gettext.GNUTranslations(compiled)
        return translations


catalogues = Catalogues(path=LOCALES_DIR, default_locale=DEFAULT_LOCALE, domain=DOMAIN)


def _(text: str) -> str:
    """``text`` in the current update's language."""
    return catalogues.gettext(text)


def N_(text: str) -> str:  # noqa: N802  (gettext's name for a marker)
    """Mark ``text`` for translation where it is defined; :func:`_` translates it where it is sent."""
    return text


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of ``singular``/``plural`` for ``n`` in the current language (Russian has three)."""
    return catalogues.gettext(singular, plural, n)


def locale_for(language_code: str | None) -> str:
    """The catalogue for a Telegram ``language_code``: ``ru``/``ru-RU`` → Russian, anything else → English."""
    primary = (language_code or "").split("-")[0].split("_")[0].lower()
    return primary if primary in LOCALES else DEFAULT_LOCALE


def current_locale() -> str:
    """The locale texts are rendered in right now."""
    return catalogues.current_locale


def use_locale(locale: str) -> Any:
    """A context manager rendering texts in ``locale`` (for work done outside an update)."""
    return catalogues.use_locale(locale)


def _asks_for_texts(update: Update) -> bool:
    """Whether the update is a command or a button press, whose handler replies itself."""
    if update.callback_query is not None:
        return True
    message = update.message
    return message is not None and (message.text or "").startswith("/")


class LocaleMiddleware(I18nMiddleware):
    """Renders every text of an update in the user's language (an update outer middleware)."""

    def __init__(self) -> None:
        super().__init__(catalogues, i18n_key=None, middleware_key="locale_middleware")

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        """The stored /language choice for commands and presses, else the Telegram app's language."""
        user = data.get("event_from_user")
        if not isinstance(user, User):
            return DEFAULT_LOCALE
        engine = data.get("engine")
        if isinstance(event, Update) and isinstance(engine, AsyncEngine) and _asks_for_texts(event):
            try:
                async with engine.connect() as conn:
                    chosen = await user_settings.get_language(conn, user_id=user.id)
            except Exception as exc:  # the language is a nicety: Telegram's answers when it can't be read
                log.warning("language_not_read", error=type(exc).__name__)
                chosen = None
            if chosen:
                return locale_for(chosen)
        return locale_for(user.language_code)
