"""Showing an answer while the LLM writes it; the complete, formatted answer is delivered afterwards.

Two ways, chosen per chat:

* ``draft``: Bot API ``sendMessageDraft`` shows an ephemeral preview; the final answer is then
  sent as normal messages. When the server does not know the method (older or self-hosted Bot API
  servers answer 404), the stream switches to ``edit`` and the output remembers it.
* ``edit``: the first partial text is sent as a message and edited as the answer grows; when it
  outgrows 4096 characters, a new message continues it. Each new preview message is reported to
  ``on_new_preview`` (the turn stores its id), and the delivery of the stored answer edits the
  previews into its formatted parts, deletes extra ones and sends the rest — also when the turn
  is resumed by another process after a crash.

Previews are plain text (half-written Markdown is not valid), throttled to one update per
``interval_seconds`` per chat and paced like every other message. A failed preview is only logged:
the final answer is what matters.

A ``stoppable`` stream lets the user stop the answer: drafts carry Telegram's own Stop
(``can_stop``), edit-mode previews an inline Stop button whose data names the stream's
``stop_token`` (the draft id). ``services/stops`` does the stopping.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from aiogram.exceptions import TelegramBadRequest, TelegramNotFound
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from parley_bot.i18n import N_, _
from parley_bot.telegram.output import TelegramOutput
from parley_bot.telegram.splitting import split_markdown
from parley_core.logging import get_logger

log = get_logger(__name__)

StreamMode = Literal["draft", "edit"]

STOP_PREFIX = "stop:"
STOP_LABEL = N_("Stop")


def stop_button(token: int) -> InlineKeyboardMarkup:
    """The inline Stop button of an edit-mode preview."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=f"⏹ {_(STOP_LABEL)}", callback_data=f"{STOP_PREFIX}{token}")]
        ]
    )


class ReplyStream:
    """One answer being streamed into one chat."""

    def __init__(
        self,
        output: TelegramOutput,
        chat_id: int,
        *,
        mode: StreamMode,
        interval_seconds: float,
        reply_to: int | None = None,
        previews: tuple[int, ...] = (),
        on_new_preview: Callable[[int], Awaitable[None]] | None = None,
        stoppable: bool = False,
        delay_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.output = output
        self.chat_id = chat_id
        self.mode: StreamMode = mode if (mode == "edit" or output.drafts_available) else "edit"
        self.interval_seconds = interval_seconds
        self.reply_to = reply_to
        self._clock = clock
        self._last_shown = -math.inf
        # edit mode: (message id, text shown); previews of an interrupted turn are reused.
        self._messages: list[tuple[int, str]] = [(message_id, "") for message_id in previews]
        self._on_new_preview = on_new_preview
        if previews:
            self.mode = "edit"
        self._draft_id = random.randint(1, 2**31 - 1)  # noqa: S311  (an identifier, not a secret)
        self.stoppable = stoppable
        self._keyboard = stop_button(self._draft_id) if stoppable else None
        self._not_before = clock() + delay_seconds  # no preview for an answer that is ready sooner

    @property
    def stop_token(self) -> int:
        """What a stop for this stream names: the draft id (also in the Stop button's data)."""
        return self._draft_id

    async def update(self, text: str) -> None:
        """Show ``text`` (the answer so far) unless the chat was updated less than an interval ago."""
        now = self._clock()
        if now < self._not_before or now - self._last_shown < self.interval_seconds:
            return
        self._last_shown = now
        parts = split_markdown(text)
        if not parts:
            return
        try:
            if self.mode == "draft" and await self._draft(parts[-1]):
                return
            await self._edit_previews(parts)
        except Exception as exc:  # a preview is best effort; the final answer is sent regardless
            log.warning("stream_preview_failed", chat_id=self.chat_id, error=type(exc).__name__)

    async def _draft(self, text: str) -> bool:
        try:
            await self.output.send_draft(self.chat_id, self._draft_id, text, can_stop=self.stoppable)
        except (TelegramNotFound, TelegramBadRequest) as exc:
            log.info("stream_drafts_unavailable", chat_id=self.chat_id, error=exc.message)
            if isinstance(exc, TelegramNotFound):
                self.output.drafts_available = False
            self.mode = "edit"
            return False
        return True

    async def _edit_previews(self, parts: list[str]) -> None:
        for index, part in enumerate(parts):
            if index < len(self._messages):
                message_id, shown = self._messages[index]
                if shown != part:
                    await self.output.edit_plain(self.chat_id, message_id, part, keyboard=self._keyboard)
                    self._messages[index] = (message_id, part)
            else:
                reply_to = self.reply_to if index == 0 else None
                message_id = await self.output.send_plain(
                    self.chat_id, part, reply_to=reply_to, keyboard=self._keyboard
                )
                self._messages.append((message_id, part))
                if self._on_new_preview is not None:
                    await self._on_new_preview(message_id)

    @property
    def preview_message_ids(self) -> tuple[int, ...]:
        """The preview messages in the chat (edit mode), in order."""
        return tuple(message_id for message_id, _ in self._messages)
