"""Fetching a user's file from Telegram: ``getFile``, then the download, into memory only.

The bytes live for the turn that reads them and are never written to disk; what is stored is the
``file_id`` (a message's attachment) and a description. The Bot API serves files up to 20 MB.
"""

from __future__ import annotations

import io

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest

DOWNLOAD_TIMEOUT_SECONDS = 60


class FileTooLargeError(Exception):
    """The file is larger than the caller's limit (or than the Bot API serves)."""


class FileUnavailableError(Exception):
    """Telegram would not give the file (expired, deleted, or Telegram unreachable)."""


class TelegramFiles:
    """Downloads users' files by ``file_id``."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def fetch(self, file_id: str, *, max_bytes: int) -> bytes:
        """The file's bytes; FileTooLargeError above ``max_bytes``, FileUnavailableError otherwise."""
        try:
            file = await self.bot.get_file(file_id)
        except TelegramBadRequest as exc:
            if "too big" in exc.message:
                raise FileTooLargeError from exc
            raise FileUnavailableError(exc.message) from exc
        except (TelegramAPIError, OSError, TimeoutError) as exc:
            raise FileUnavailableError(type(exc).__name__) from exc
        if file.file_size is not None and file.file_size > max_bytes:
            raise FileTooLargeError
        if not file.file_path:
            raise FileUnavailableError("no file_path")
        buffer = io.BytesIO()
        try:
            await self.bot.download_file(file.file_path, destination=buffer, timeout=DOWNLOAD_TIMEOUT_SECONDS)
        except (TelegramAPIError, OSError, TimeoutError) as exc:
            raise FileUnavailableError(type(exc).__name__) from exc
        data = buffer.getvalue()
        if len(data) > max_bytes:
            raise FileTooLargeError
        return data
