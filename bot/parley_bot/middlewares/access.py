"""Inner middleware on messages meant for the bot: the optional allowlist and the per-user rate limit.

It runs after the routers' filters, so group chatter the bot ignores costs a user nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject

from parley_bot import metrics
from parley_bot.services.rate_limit import RateLimiter
from parley_bot.telegram import TelegramOutput
from parley_core.logging import get_logger

log = get_logger(__name__)

NOT_ALLOWED = "Sorry, this is a private bot and you are not on its list of users."
SLOW_DOWN = "You are sending messages faster than I can answer. Please wait about {seconds} s and try again."


class AccessMiddleware(BaseMiddleware):
    """Refuses users outside ALLOWED_USER_IDS (when set) and users over their rate, politely."""

    def __init__(self, *, allowed_user_ids: list[int], limiter: RateLimiter, output: TelegramOutput) -> None:
        self.allowed = frozenset(allowed_user_ids)
        self.limiter = limiter
        self.output = output

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Message)
        user = event.from_user
        if user is None:
            return None
        if self.allowed and user.id not in self.allowed:
            metrics.BOT_ACCESS_DENIED.inc()
            log.info("access_denied")
            decision = self.limiter.check(user.id)  # keeps refusals themselves rate-limited
            if decision.allowed:
                await self.output.send_plain(event.chat.id, NOT_ALLOWED)
            return None
        decision = self.limiter.check(user.id)
        if not decision.allowed:
            metrics.BOT_RATE_LIMITED.inc()
            log.info("rate_limited", retry_after=round(decision.retry_after_seconds, 1))
            if decision.notify:
                seconds = max(1, round(decision.retry_after_seconds))
                await self.output.send_plain(event.chat.id, SLOW_DOWN.format(seconds=seconds))
            return None
        return await handler(event, data)
