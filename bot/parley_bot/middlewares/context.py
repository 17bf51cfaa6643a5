"""Outer middleware around every update: log context and the received counter.

No database session is opened here on purpose: the chat path must not hold a connection across
the LLM call, so services open their own short transactions.
"""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

from parley_bot import metrics
from parley_bot.middlewares.handler import Handler
from parley_core.logging import bind_context, clear_context, get_logger

log = get_logger(__name__)


class UpdateContextMiddleware(BaseMiddleware):
    """Binds update/user/chat ids to every log line of the update."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        clear_context()
        message = event.message
        context: dict[str, Any] = {"update_id": event.update_id}
        if message is not None:
            metrics.TELEGRAM_MESSAGES_RECEIVED.inc()
            context["chat_id"] = message.chat.id
            if message.from_user is not None:
                context["user_id"] = message.from_user.id
        bind_context(**context)
        try:
            log.debug("update_received", kind=event.event_type)
            return await handler(event, data)
        finally:
            clear_context()
