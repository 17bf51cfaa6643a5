"""Everything the bot sends goes through here: splitting, HTML with a plain-text fallback, pacing, retries.

* Answers longer than 4096 characters are split (``splitting``), each part rendered as Telegram
  HTML (``formatting``); when Telegram answers "can't parse entities" the part is re-sent as the
  plain Markdown source, so a rendering slip never loses an answer.
* Each message waits for its slot (``pacing``); a 429 (``TelegramRetryAfter``) is honoured by
  sleeping ``retry_after`` and sending again, up to TELEGRAM_RETRY_AFTER_MAX_SECONDS.
* "typing…" is shown while an answer is being prepared, once it takes longer than half a second
  (aiogram's ``ChatActionSender``): Telegram recommends the indicator only for replies that take
  noticeable time, and a fast answer then costs one Bot API call instead of two.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, TypeVar, cast

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    DeleteWebhook,
    EditMessageText,
    GetMe,
    GetUpdates,
    Response,
    SendChatAction,
    SendMessage,
    SendMessageDraft,
    SendRichMessage,
    SetMyCommands,
    SetWebhook,
)
from aiogram.methods.base import TelegramMethod, TelegramType
from aiogram.types import InlineKeyboardMarkup, InputRichMessage, LinkPreviewOptions, ReplyParameters
from aiogram.utils.chat_action import ChatActionSender

from parley_bot import metrics
from parley_bot.telegram.formatting import has_table, markdown_to_html, visible_text
from parley_bot.telegram.pacing import Pacer
from parley_bot.telegram.splitting import TELEGRAM_TEXT_LIMIT, split_markdown, utf16_len
from parley_core.logging import get_logger
from parley_core.settings import BotSettings

log = get_logger(__name__)

T = TypeVar("T")

FLOOD_RETRIES = 5
TRANSIENT_RETRIES = 2
TYPING_DELAY_SECONDS = 0.5  # no indicator for an answer that is ready sooner
TYPING_REFRESH_SECONDS = 4.5  # Telegram shows a chat action for about 5 s


# The Bot API methods the bot calls (built at start-up by ``lazy_types.warm_up``).
BOT_METHODS: tuple[type[TelegramMethod[Any]], ...] = (
    GetMe,
    GetUpdates,
    SendMessage,
    EditMessageText,
    SendChatAction,
    DeleteMessage,
    SendMessageDraft,
    SendRichMessage,
    SetMyCommands,
    SetWebhook,
    DeleteWebhook,
    AnswerCallbackQuery,
)
# aiogram parses every answer as Response[<return type>]. pydantic caches such generic classes only
# weakly, so under load they are garbage-collected and rebuilt, about 10 ms of CPU each time (a third
# of the bot's CPU in the benchmark). Holding them keeps pydantic's cache warm.
_RESPONSE_TYPES = tuple(Response[method.__returning__] for method in BOT_METHODS)  # type: ignore[name-defined]


def _is_parse_error(exc: TelegramBadRequest) -> bool:
    return "can't parse entities" in exc.message.lower()


def _not_modified(exc: TelegramBadRequest) -> bool:
    return "message is not modified" in exc.message.lower()


class TelegramOutput:
    """The bot's one way out to Telegram."""

    def __init__(self, bot: Bot, *, pacer: Pacer, retry_after_max_seconds: float) -> None:
        self.bot = bot
        self.pacer = pacer
        self.retry_after_max_seconds = retry_after_max_seconds
        self.drafts_available = True  # set to False once the server says sendMessageDraft does not exist
        self.rich_messages_available = True  # likewise for sendRichMessage

    @classmethod
    def from_settings(cls, bot: Bot, settings: BotSettings) -> TelegramOutput:
        """Output paced as BotSettings say."""
        pacer = Pacer(
            global_per_second=settings.telegram_global_per_second,
            chat_interval_seconds=settings.telegram_chat_interval_seconds,
            group_per_minute=settings.telegram_group_per_minute,
        )
        return cls(bot, pacer=pacer, retry_after_max_seconds=settings.telegram_retry_after_max_seconds)

    async def call(self, method: TelegramMethod[T], *, chat_id: int | None = None) -> T:
        """Call the Bot API, paced when ``chat_id`` is given, retrying flood waits and transient errors."""
        name = method.__api_method__
        transient = 0
        flood = 0
        while True:
            if chat_id is not None:
                await self.pacer.wait(chat_id)
            try:
                return await self.bot(method)
            except TelegramRetryAfter as exc:
                flood += 1
                if exc.retry_after > self.retry_after_max_seconds or flood > FLOOD_RETRIES:
                    metrics.TELEGRAM_SEND_ERRORS.labels(method=name, reason="flood").inc()
                    raise
                metrics.TELEGRAM_RETRY_AFTER.labels(method=name).inc()
                log.warning("telegram_flood_wait", method=name, retry_after=exc.retry_after, chat_id=chat_id)
                await asyncio.sleep(exc.retry_after)
            except (TelegramNetworkError, TelegramServerError) as exc:
                transient += 1
                if transient > TRANSIENT_RETRIES:
                    metrics.TELEGRAM_SEND_ERRORS.labels(method=name, reason="unavailable").inc()
                    raise
                log.warning("telegram_transient_error", method=name, error=type(exc).__name__)
                await asyncio.sleep(0.5 * transient)

    async def _send(
        self,
        chat_id: int,
        text: str,
        *,
        html: bool,
        reply_to: int | None,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> int:
        method = SendMessage(
            chat_id=chat_id,
            text=text,
            parse_mode="HTML" if html else None,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
            reply_parameters=(
                ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None
            ),
            reply_markup=keyboard,
        )
        message = await self.call(method, chat_id=chat_id)
        metrics.TELEGRAM_MESSAGES_SENT.inc()
        return message.message_id

    async def send_part(self, chat_id: int, part: str, *, reply_to: int | None = None) -> int:
        """Send one part (<= 4096) of Markdown: a part with a table as a rich message, which draws the
        table; otherwise — or when the chat or server refuses rich messages — as HTML, or as plain text
        if Telegram rejects the HTML."""
        if self.rich_messages_available and has_table(part):
            sent = await self._send_rich(chat_id, part, reply_to=reply_to)
            if sent is not None:
                return sent
        rendered = markdown_to_html(part)
        if rendered and utf16_len(visible_text(rendered)) <= TELEGRAM_TEXT_LIMIT:
            try:
                return await self._send(chat_id, rendered, html=True, reply_to=reply_to)
            except TelegramBadRequest as exc:
                if not _is_parse_error(exc):
                    raise
                metrics.TELEGRAM_FORMAT_FALLBACK.inc()
                log.warning("telegram_html_rejected", chat_id=chat_id, error=exc.message)
        return await self._send(chat_id, part, html=False, reply_to=reply_to)

    async def _send_rich(self, chat_id: int, part: str, *, reply_to: int | None) -> int | None:
        """The part as a rich message from its Markdown; None when it was refused (send it otherwise)."""
        method = SendRichMessage(
            chat_id=chat_id,
            rich_message=InputRichMessage(markdown=part),
            reply_parameters=(
                ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None
            ),
        )
        try:
            message = await self.call(method, chat_id=chat_id)
        except (TelegramNotFound, TelegramBadRequest) as exc:
            if isinstance(exc, TelegramNotFound):  # a Bot API server without rich messages
                self.rich_messages_available = False
            metrics.TELEGRAM_RICH_FALLBACK.inc()
            log.info("telegram_rich_message_refused", chat_id=chat_id, error=exc.message)
            return None
        metrics.TELEGRAM_MESSAGES_SENT.inc()
        return message.message_id

    async def send_text(self, chat_id: int, markdown: str, *, reply_to: int | None = None) -> list[int]:
        """Send an answer of any length: split, formatted, paced; returns the message ids."""
        ids = []
        for index, part in enumerate(split_markdown(markdown)):
            ids.append(await self.send_part(chat_id, part, reply_to=reply_to if index == 0 else None))
        return ids

    async def send_html(
        self,
        chat_id: int,
        html_text: str,
        *,
        reply_to: int | None = None,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> int:
        """Send a short reply the bot wrote itself in Telegram HTML (user values already escaped)."""
        return await self._send(chat_id, html_text, html=True, reply_to=reply_to, keyboard=keyboard)

    async def send_plain(
        self,
        chat_id: int,
        text: str,
        *,
        reply_to: int | None = None,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> int:
        """Send a short unformatted reply (with buttons under it, when given)."""
        return await self._send(chat_id, text, html=False, reply_to=reply_to, keyboard=keyboard)

    async def edit_plain(
        self, chat_id: int, message_id: int, text: str, *, keyboard: InlineKeyboardMarkup | None = None
    ) -> None:
        """Replace a message's text with unformatted ``text``; its buttons go unless given again."""
        await self._edit(chat_id, message_id, text, html=False, keyboard=keyboard)

    async def edit_html(self, chat_id: int, message_id: int, html_text: str) -> None:
        """Replace a message's text with the bot's own Telegram HTML (and remove its buttons)."""
        await self._edit(chat_id, message_id, html_text, html=True)

    async def answer_callback(self, callback_id: str, text: str | None = None) -> None:
        """Acknowledge a button press (Telegram shows ``text`` briefly); a late one is only logged."""
        try:
            await self.call(AnswerCallbackQuery(callback_query_id=callback_id, text=text))
        except TelegramBadRequest as exc:  # "query is too old": the press still did its work
            log.info("callback_answer_failed", error=exc.message)

    async def edit_part(self, chat_id: int, message_id: int, part: str) -> None:
        """Replace a message's text with the formatted Markdown ``part`` (falling back to plain)."""
        rendered = markdown_to_html(part)
        if rendered and utf16_len(visible_text(rendered)) <= TELEGRAM_TEXT_LIMIT:
            try:
                await self._edit(chat_id, message_id, rendered, html=True)
                return
            except TelegramBadRequest as exc:
                if not _is_parse_error(exc):
                    raise
                metrics.TELEGRAM_FORMAT_FALLBACK.inc()
                log.warning("telegram_html_rejected", chat_id=chat_id, error=exc.message)
        await self._edit(chat_id, message_id, part, html=False)

    async def _edit(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        *,
        html: bool,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> None:
        method = EditMessageText(
            chat_id=chat_id,
            message_id=message_id,
            text=text,
            parse_mode="HTML" if html else None,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
            reply_markup=keyboard,
        )
        try:
            await self.call(method, chat_id=chat_id)
        except TelegramBadRequest as exc:
            if not _not_modified(exc):
                raise

    async def delete(self, chat_id: int, message_id: int) -> None:
        """Delete one of the bot's messages (a streaming preview that the final answer no longer needs)."""
        with contextlib.suppress(TelegramBadRequest):
            await self.call(DeleteMessage(chat_id=chat_id, message_id=message_id))

    async def send_draft(self, chat_id: int, draft_id: int, text: str, *, can_stop: bool = False) -> None:
        """Show ``text`` as the chat's draft (Bot API sendMessageDraft); not paced, previews are ephemeral.

        ``can_stop``: Telegram shows a Stop button; pressing it sends a stopped_message_generation update.
        """
        await self.call(
            SendMessageDraft(
                chat_id=chat_id, draft_id=draft_id, text=text, parse_mode=None, can_stop=can_stop or None
            )
        )

    def typing(self, chat_id: int) -> ChatActionSender:
        """``async with`` it: "typing…" in the chat from TYPING_DELAY_SECONDS on until the block ends.

        Not paced: a chat action is not a message. A failed one is absorbed by
        :class:`BestEffortChatActions` on the bot's session.
        """
        return ChatActionSender(
            bot=self.bot,
            chat_id=chat_id,
            action="typing",
            interval=TYPING_REFRESH_SECONDS,
            initial_sleep=TYPING_DELAY_SECONDS,
        )


class BestEffortChatActions(BaseRequestMiddleware):
    """Bot-session middleware: a sendChatAction that fails is logged (debug) and counts as not shown.

    A missed "typing…" is harmless and must never disturb the answer; without this, the first
    failure would end ChatActionSender's background task with an exception nobody retrieves.
    """

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except Exception as exc:
            if not isinstance(method, SendChatAction):
                raise
            log.debug("typing_indicator_failed", error=type(exc).__name__)
            return cast(Response[TelegramType], Response[bool](ok=True, result=False))
