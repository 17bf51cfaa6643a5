"""What a turn's photos, documents and voice messages say, read when the turn answers them.

The files are fetched from Telegram into memory (``telegram.files``) for this turn only. A photo
becomes an image part of the question (a data URL) — only for a model that reads images; a
document's text is put after its description; a voice message becomes its transcript, which is
stored in place of its description so that later turns read what was said. Anything that cannot be
read ends the turn with a reply that says why (:class:`UnreadableError`): the messages are then
left out of the history, and the user can send them again.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field

from parley_bot.i18n import N_, _
from parley_bot.llm import LLMClient, TranscriptionError
from parley_bot.services.attachments import PHOTO_TOO_LARGE, byte_size, file_label
from parley_bot.services.documents import UnreadableDocumentError, document_text
from parley_bot.telegram.files import FileTooLargeError, FileUnavailableError, TelegramFiles
from parley_core.repositories.turns import Attachment, PendingMessage
from parley_core.settings import BotSettings

NO_VISION = N_("{model} cannot see images. Models you can pick with /model that can: {models}.")
NO_VISION_AT_ALL = N_("The model I use cannot see images, so I can't look at photos here.")
FILE_GONE = N_("I could not fetch {name} from Telegram. Please send it again.")
DOCUMENT_TOO_LONG = N_(
    "{name} has {chars} characters of text; I read up to {limit}. Please send a shorter part."
)
DOCUMENT_UNREADABLE = N_("I found no text I can read in {name} (a scanned or protected PDF, or not text).")
VOICE_FAILED = N_("I could not make out that voice message. Please try again or type your question.")

TRANSCRIPTION_MAX_BYTES = 20_000_000  # what the Bot API serves


class UnreadableError(Exception):
    """A file of the turn cannot be read; ``reply`` tells the user why, in their language."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True)
class Question:
    """The turn's messages as the model reads them."""

    texts: list[str]
    images: tuple[str, ...] = ()  # data URLs of the photos, in order
    transcripts: dict[uuid.UUID, str] = field(default_factory=dict)  # voice messages' new content


class AttachmentReader:
    """Reads the files of a turn's messages."""

    def __init__(self, *, files: TelegramFiles, llm: LLMClient, settings: BotSettings) -> None:
        self.files = files
        self.llm = llm
        self.settings = settings

    async def read(self, pending: list[PendingMessage], *, model: str) -> Question:
        """The question for ``pending``, answered by ``model``; UnreadableError when a file cannot be read."""
        if not any(m.attachment for m in pending):
            return Question([m.content for m in pending])
        photos = [m for m in pending if m.attachment is not None and m.attachment.kind == "photo"]
        if photos and not self.llm.sees_images(model):
            raise UnreadableError(self._no_vision(model))
        texts: list[str] = []
        images: list[str] = []
        transcripts: dict[uuid.UUID, str] = {}
        for message in pending:
            attachment = message.attachment
            if attachment is None:
                texts.append(message.content)
            elif attachment.kind == "photo":
                if len(images) < self.settings.bot_photos_per_turn:
                    images.append(await self._photo(attachment))
                    texts.append(message.content)
                else:
                    limit = self.settings.bot_photos_per_turn
                    texts.append(f"{message.content}\n(not shown: at most {limit} photos per question)")
            elif attachment.kind == "document":
                texts.append(await self._document(message.content, attachment))
            else:
                transcripts[message.message_id] = await self._voice(message.content, attachment)
                texts.append(transcripts[message.message_id])
        return Question(texts, tuple(images), transcripts)

    def _no_vision(self, model: str) -> str:
        seeing = [m for m in self.settings.offered_models if self.llm.sees_images(m)]
        if not seeing:
            return _(NO_VISION_AT_ALL)
        return _(NO_VISION).format(model=model, models=", ".join(seeing))

    async def _fetch(self, attachment: Attachment, max_bytes: int, too_large: str) -> bytes:
        try:
            return await self.files.fetch(attachment.file_id, max_bytes=max_bytes)
        except FileTooLargeError as exc:
            raise UnreadableError(too_large) from exc
        except FileUnavailableError as exc:
            raise UnreadableError(_(FILE_GONE).format(name=file_label(attachment))) from exc

    async def _photo(self, attachment: Attachment) -> str:
        limit = self.settings.bot_photo_max_bytes
        data = await self._fetch(attachment, limit, _(PHOTO_TOO_LARGE).format(limit=byte_size(limit)))
        return f"data:{attachment.mime_type or 'image/jpeg'};base64,{base64.b64encode(data).decode()}"

    async def _document(self, description: str, attachment: Attachment) -> str:
        limit = self.settings.bot_document_max_bytes
        name = file_label(attachment)
        too_large = _("{name} is too large for me. I read documents up to {limit}.").format(
            name=name, limit=byte_size(limit)
        )
        data = await self._fetch(attachment, limit, too_large)
        try:
            text = await document_text(data, mime_type=attachment.mime_type, file_name=attachment.file_name)
        except UnreadableDocumentError as exc:
            raise UnreadableError(_(DOCUMENT_UNREADABLE).format(name=name)) from exc
        max_chars = self.settings.bot_document_max_chars
        if len(text) > max_chars:
            raise UnreadableError(_(DOCUMENT_TOO_LONG).format(name=name, chars=len(text), limit=max_chars))
        title = attachment.file_name or "document"
        return f'{description}\n\n<document name="{title}">\n{text}\n</document>'

    async def _voice(self, description: str, attachment: Attachment) -> str:
        data = await self._fetch(attachment, TRANSCRIPTION_MAX_BYTES, _(VOICE_FAILED))
        try:
            transcript = await self.llm.transcribe(data, file_name="voice.ogg")
        except TranscriptionError as exc:
            raise UnreadableError(_(VOICE_FAILED)) from exc
        if not transcript:
            raise UnreadableError(_(VOICE_FAILED))
        # A resumed turn finds the transcript already stored after the description: one of each.
        first_line = description.split("\n", 1)[0]
        return f"{first_line}\n{transcript}"
