"""parley_bot: the Telegram bot. See docs/bot.md; ``lazy_types`` must run before aiogram is imported."""

from parley_bot import lazy_types

lazy_types.install()
