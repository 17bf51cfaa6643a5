"""Inner middleware on messages meant for the bot and on button presses: the optional allowlist.

It runs after the routers' filters, so group chatter the bot ignores costs a user nothing. (The
per-user rate limit applies to answers, in services/turns.py: a fast writer waits, nothing is
dropped.)
"""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject

from parley_bot import metrics
from parley_bot.i18n import N_, _
from parley_bot.middlewares.handler import Handler
from parley_bot.services.rate_limit import RateLimiter
from parley_bot.telegram import TelegramOutput
from parley_core.logging import get_logger

log = get_logger(__name__)

NOT_ALLOWED = N_("Sorry, this is a private bot and you are not on its list of users.")


class AccessMiddleware(BaseMiddleware):
    """Refuses users outside ALLOWED_USER_IDS (when set), politely and not once per message."""

    def __init__(self, *, allowed_user_ids: list[int], limiter: RateLimiter, output: TelegramOutput) -> None:
        self.allowed = frozenset(allowed_user_ids)
        self.limiter = limiter
        self.output = output

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Message | CallbackQuery)
        user = event.from_user
        if user is None:
            return None
        if self.allowed and user.id not in self.allowed:
            metrics.BOT_ACCESS_DENIED.inc()
            log.info("access_denied")
            if isinstance(event, CallbackQuery):
                await self.output.answer_callback(event.id, _(NOT_ALLOWED))
                return None
            decision = self.limiter.check(user.id)  # keeps refusals themselves rate-limited
            if decision.allowed:
                await self.output.send_plain(event.chat.id, _(NOT_ALLOWED))
            return None
        return await handler(event, data)
