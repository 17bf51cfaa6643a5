"""A photo, document or voice message at intake: what is stored of it, and what is refused at once.

Only Telegram's description of the file is stored (``messages.attachment``: the ``file_id`` and
what Telegram said of it), with a short text in ``content`` that the history keeps — the model
reads "[Photo 1280x960]" and the caption in later turns, never the image again. The file itself is
fetched by the turn that answers it (``reading``). What can be refused from Telegram's description
alone — a document too large or of a type the bot does not read, a voice message with no
transcription configured or too long — is refused here, before anything is stored.
"""

from __future__ import annotations

from aiogram.types import Message, PhotoSize
from babel.numbers import format_decimal

from parley_bot.i18n import N_, _, current_locale
from parley_bot.services.documents import is_pdf, is_readable_type
from parley_core.repositories.turns import Attachment
from parley_core.settings import BotSettings

PHOTO_TOO_LARGE = N_("That photo is too large for me (I look at photos up to {limit}).")
DOCUMENT_TOO_LARGE = N_("{name} is too large for me: {size}. I read documents up to {limit}.")
DOCUMENT_TYPE = N_("I read plain text, Markdown and PDF documents; {name} is none of them.")
VOICE_OFF = N_("I can't listen to voice messages here. Please type your question.")
VOICE_TOO_LONG = N_("That voice message is longer than I listen to ({limit} s). Please type it instead.")


def attachment_of(message: Message, settings: BotSettings) -> Attachment | None:
    """The file of a photo, document or voice message (for a photo: the largest size under the limit)."""
    if message.photo:
        size = _photo_size(message.photo, settings.bot_photo_max_bytes)
        return Attachment(
            kind="photo",
            file_id=size.file_id,
            file_unique_id=size.file_unique_id,
            size=size.file_size,
            mime_type="image/jpeg",  # Telegram re-encodes every photo as JPEG
            width=size.width,
            height=size.height,
        )
    if message.document is not None:
        document = message.document
        return Attachment(
            kind="document",
            file_id=document.file_id,
            file_unique_id=document.file_unique_id,
            size=document.file_size,
            mime_type=document.mime_type,
            file_name=document.file_name,
        )
    if message.voice is not None:
        voice = message.voice
        return Attachment(
            kind="voice",
            file_id=voice.file_id,
            file_unique_id=voice.file_unique_id,
            size=voice.file_size,
            mime_type=voice.mime_type,
            duration=voice.duration,
        )
    return None


def _photo_size(sizes: list[PhotoSize], max_bytes: int) -> PhotoSize:
    """The largest of a photo's sizes within ``max_bytes`` (the smallest when none is)."""
    by_area = sorted(sizes, key=lambda size: size.width * size.height)
    fitting = [size for size in by_area if size.file_size is None or size.file_size <= max_bytes]
    return fitting[-1] if fitting else by_area[0]


def refusal_at_intake(attachment: Attachment, settings: BotSettings) -> str | None:
    """Why the bot cannot take this file, from Telegram's description alone (None: it can)."""
    if attachment.kind == "photo":
        too_large = attachment.size is not None and attachment.size > settings.bot_photo_max_bytes
        return _(PHOTO_TOO_LARGE).format(limit=byte_size(settings.bot_photo_max_bytes)) if too_large else None
    if attachment.kind == "document":
        return _document_refusal(attachment, settings)
    if settings.llm_transcription_model is None:
        return _(VOICE_OFF)
    if (attachment.duration or 0) > settings.bot_voice_max_seconds:
        return _(VOICE_TOO_LONG).format(limit=settings.bot_voice_max_seconds)
    return None


def _document_refusal(attachment: Attachment, settings: BotSettings) -> str | None:
    name = file_label(attachment)
    if not is_readable_type(attachment.mime_type, attachment.file_name):
        return _(DOCUMENT_TYPE).format(name=name)
    if attachment.size is not None and attachment.size > settings.bot_document_max_bytes:
        return _(DOCUMENT_TOO_LARGE).format(
            name=name, size=byte_size(attachment.size), limit=byte_size(settings.bot_document_max_bytes)
        )
    return None


def describe(attachment: Attachment, caption: str) -> str:
    """What ``content`` stores for the message: the file described for the model, then the caption."""
    if attachment.kind == "photo":
        what = f"[Photo {attachment.width}x{attachment.height}]"
    elif attachment.kind == "document":
        kind = "PDF" if is_pdf(attachment.mime_type, attachment.file_name) else "text"
        name = f"“{attachment.file_name}”" if attachment.file_name else "without a name"
        what = f"[Document {name}, {kind}, {_english_size(attachment.size)}]"
    else:
        what = f"[Voice message, {attachment.duration or 0} s]"
    return f"{what}\n{caption}" if caption else what


def file_label(attachment: Attachment) -> str:
    """The file as the user knows it: its name in quotes, else "the file"."""
    return f"“{attachment.file_name}”" if attachment.file_name else _("the file")


def byte_size(size: int) -> str:
    """A size for people, in the user's language (kB and MB, decimal)."""
    locale = current_locale()
    if size >= 1_000_000:
        return _("{n} MB").format(n=format_decimal(round(size / 1_000_000, 1), locale=locale))
    return _("{n} kB").format(n=format_decimal(max(1, round(size / 1000)), locale=locale))


def _english_size(size: int | None) -> str:
    if size is None:
        return "size unknown"
    return f"{size / 1_000_000:.1f} MB" if size >= 1_000_000 else f"{max(1, round(size / 1000))} kB"
