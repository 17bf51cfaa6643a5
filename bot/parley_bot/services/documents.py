"""A document's text for the model: plain text and Markdown decoded, PDF text extracted (pypdf).

What the bot accepts is decided from what Telegram says of the file (type, name) before it is
fetched; what it can read is decided here, from the bytes. Extraction runs in a thread: pypdf is
pure Python and a large PDF takes long enough to stall every other user's turn.
"""

from __future__ import annotations

import asyncio
import io
import logging

from pypdf import PdfReader
from pypdf.errors import PdfReadError

TEXT_TYPES = ("text/",)
MARKDOWN_TYPES = ("text/markdown", "text/x-markdown")
PDF_TYPE = "application/pdf"
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".csv", ".log")

# pypdf logs every oddity of a PDF it can still read; the bot's own reply says what matters.
logging.getLogger("pypdf").setLevel(logging.ERROR)


class UnreadableDocumentError(Exception):
    """The bytes are not text the model could read (binary, encrypted, scanned, broken)."""


def is_pdf(mime_type: str | None, file_name: str | None) -> bool:
    """Whether Telegram's type or the file's name says PDF."""
    return mime_type == PDF_TYPE or (file_name or "").lower().endswith(".pdf")


def is_readable_type(mime_type: str | None, file_name: str | None) -> bool:
    """Whether the bot reads documents of this type: text (plain, Markdown, CSV...) or PDF."""
    if is_pdf(mime_type, file_name):
        return True
    if mime_type is not None and mime_type.startswith(TEXT_TYPES):
        return True
    return (file_name or "").lower().endswith(TEXT_SUFFIXES)


async def document_text(data: bytes, *, mime_type: str | None, file_name: str | None) -> str:
    """The document's text, stripped; UnreadableDocumentError when there is none to read."""
    if is_pdf(mime_type, file_name):
        text = await asyncio.to_thread(_pdf_text, data)
    else:
        text = _plain_text(data)
    text = text.replace("\x00", "").strip()
    if not text:
        raise UnreadableDocumentError("no text")
    return text


def _plain_text(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableDocumentError("not UTF-8 text") from exc
    if "\x00" in text:
        raise UnreadableDocumentError("binary")
    return text


def _pdf_text(data: bytes) -> str:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # an owner password alone still reads
            raise UnreadableDocumentError("encrypted")
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
        raise UnreadableDocumentError(type(exc).__name__) from exc
