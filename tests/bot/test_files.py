"""Photos, documents and voice messages, end to end: the Telegram double serves getFile and the
download, the LLM double checks the multimodal format and transcribes; the database keeps Telegram's
description of each file, never its bytes."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_testing.doubles import llm as script
from parley_testing.doubles.llm import LLMDouble, images_of, text_of
from parley_testing.doubles.telegram import TelegramDouble
from tests.bot.constants import FALLBACK_MODEL as FALLBACK
from tests.bot.constants import PRIMARY_MODEL as PRIMARY
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.files import pdf_with_text, photo_bytes
from tests.bot.support import SettingsFactory, rows, running_bot

GROUP = -100555


def methods(telegram: TelegramDouble, name: str) -> int:
    return sum(1 for method, _ in telegram.calls if method == name)


async def stored_messages(engine: AsyncEngine) -> list[tuple[str, str, dict[str, object] | None, bool]]:
    found = await rows(
        engine,
        "SELECT role, content, attachment, unanswered FROM messages WHERE user_id = :u ORDER BY created_at",
        u=USER,
    )
    return [(r.role, r.content, r.attachment, r.unanswered) for r in found]


@pytest.fixture
def seeing(make_settings: SettingsFactory, llm: LLMDouble) -> SettingsFactory:
    """Settings where the primary model reads images (and the gateway agrees); the fallback does not."""
    llm.vision_models = {PRIMARY}

    def make(**overrides: object) -> object:
        return make_settings(llm_vision_models=[PRIMARY], **overrides)

    return make  # type: ignore[return-value]


async def test_a_photo_goes_to_a_vision_model_and_the_history_keeps_its_description(
    seeing: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    photo = photo_bytes()
    update = telegram.photo_update(photo, caption="what is on it?")
    full_size = update["message"]["photo"][-1]["file_id"]
    async with running_bot(seeing(), telegram):
        telegram.push_update(update)
        [answer] = await telegram.wait_for_messages(USER, 1)
        telegram.send_text("and the colours?")
        await telegram.wait_for_messages(USER, 2)

    question = llm.requests[0]["messages"][-1]["content"]
    assert text_of(question) == "[Photo 1280x960]\nwhat is on it?"
    assert images_of(question) == [photo]  # the largest size, byte for byte
    assert answer.text == "echo: [Photo 1280x960]\nwhat is on it? [1 image]"
    # The next turn reads the photo's description, not the image again.
    later = llm.requests[1]["messages"]
    assert all(isinstance(m["content"], str) for m in later)
    assert [m["content"] for m in later[1:]] == [
        "[Photo 1280x960]\nwhat is on it?",
        "echo: [Photo 1280x960]\nwhat is on it? [1 image]",
        "and the colours?",
    ]
    assert len(telegram.downloads) == 1
    [(role, content, attachment, _), *_rest] = await stored_messages(engine)
    assert (role, content) == ("user", "[Photo 1280x960]\nwhat is on it?")
    assert attachment is not None
    assert (attachment["kind"], attachment["file_id"], attachment["width"]) == ("photo", full_size, 1280)
    assert "data" not in attachment


async def test_a_photo_for_a_model_without_vision_is_explained_in_the_users_language(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    settings = make_settings(llm_model_choices=["openai/gpt-4o"])  # a model that sees, to pick
    async with running_bot(settings, telegram):
        telegram.push_update(telegram.photo_update(photo_bytes(), caption="what is this?"))
        telegram.push_update(telegram.photo_update(photo_bytes(), language_code="ru"))
        english, russian = await telegram.wait_for_messages(USER, 2)

    assert english.text == (
        f"{PRIMARY} cannot see images. Models you can pick with /model that can: openai/gpt-4o."
    )
    assert russian.text.startswith(f"{PRIMARY} не видит изображений")
    assert llm.requests == []
    assert telegram.downloads == []
    assert [unanswered for *_, unanswered in await stored_messages(engine)] == [True, True]


async def test_a_photo_never_falls_back_to_a_model_without_vision(
    seeing: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    llm.script(PRIMARY, *[script.error(500)] * 10)
    async with running_bot(seeing(), telegram):
        telegram.push_update(telegram.photo_update(photo_bytes()))
        [reply] = await telegram.wait_for_messages(USER, 1)

    assert set(llm.models_called()) == {PRIMARY}
    assert FALLBACK not in llm.models_called()
    assert "temporarily unavailable" in reply.text


async def test_a_pdf_becomes_context_for_the_question(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    pdf = pdf_with_text("Quarterly revenue grew 12 percent.", "Costs fell by a third.")
    async with running_bot(make_settings(), telegram):
        telegram.push_update(
            telegram.document_update(
                pdf, file_name="report.pdf", mime_type="application/pdf", caption="summarise it"
            )
        )
        [answer] = await telegram.wait_for_messages(USER, 1)

    question = llm.requests[0]["messages"][-1]["content"]
    size = f"{max(1, round(len(pdf) / 1000))} kB"
    assert question == (
        f"[Document “report.pdf”, PDF, {size}]\nsummarise it\n\n"
        '<document name="report.pdf">\n'
        "Quarterly revenue grew 12 percent.\n\nCosts fell by a third.\n</document>"
    )
    assert answer.text.startswith("echo: [Document “report.pdf”, PDF")
    [(_, content, attachment, unanswered), _answer] = await stored_messages(engine)
    assert content == f"[Document “report.pdf”, PDF, {size}]\nsummarise it"  # the text is not stored
    assert attachment is not None
    assert attachment["mime_type"] == "application/pdf"
    assert unanswered is False


async def test_an_oversized_or_foreign_document_is_refused_before_anything_is_fetched_or_stored(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    async with running_bot(make_settings(), telegram):
        telegram.push_update(
            telegram.document_update(
                b"%PDF-1.4", file_name="huge.pdf", mime_type="application/pdf", size=30_000_000
            )
        )
        telegram.push_update(
            telegram.document_update(b"PK\x03\x04", file_name="a.zip", mime_type="application/zip")
        )
        too_large, foreign = await telegram.wait_for_messages(USER, 2)

    assert too_large.text == "“huge.pdf” is too large for me: 30 MB. I read documents up to 2 MB."
    assert foreign.text == "I read plain text, Markdown and PDF documents; “a.zip” is none of them."
    assert methods(telegram, "getFile") == 0
    assert llm.requests == []
    assert await stored_messages(engine) == []


async def test_an_unreadable_pdf_or_a_too_long_text_gets_a_clear_reply_and_stays_out_of_the_history(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    async with running_bot(make_settings(bot_document_max_chars=100), telegram):
        telegram.push_update(
            telegram.document_update(
                b"%PDF-1.4\nnot really", file_name="scan.pdf", mime_type="application/pdf"
            )
        )
        await telegram.wait_for_messages(USER, 1)
        telegram.push_update(
            telegram.document_update(("word " * 50).encode(), file_name="notes.md", mime_type="text/markdown")
        )
        await telegram.wait_for_messages(USER, 2)
        telegram.send_text("hello")
        unreadable, too_long, answer = await telegram.wait_for_messages(USER, 3)

    assert unreadable.text == (
        "I found no text I can read in “scan.pdf” (a scanned or protected PDF, or not text)."
    )
    assert too_long.text == (
        "“notes.md” has 249 characters of text; I read up to 100. Please send a shorter part."
    )
    assert answer.text == "echo: hello"
    assert [m["content"] for m in llm.requests[0]["messages"][1:]] == ["hello"]


async def test_voice_is_transcribed_when_configured_and_politely_declined_when_not(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble, engine: AsyncEngine
) -> None:
    audio = b"OggS" + bytes(2000)
    async with running_bot(make_settings(), telegram):
        telegram.push_update(telegram.voice_update(audio, duration=3))
        [declined] = await telegram.wait_for_messages(USER, 1)
    assert declined.text == "I can't listen to voice messages here. Please type your question."
    assert llm.transcriptions == []

    llm.transcribe = lambda _audio: "what is the capital of Peru"
    async with running_bot(make_settings(llm_transcription_model="whisper-1"), telegram):
        telegram.push_update(telegram.voice_update(audio, duration=3))
        _, answer = await telegram.wait_for_messages(USER, 2)

    assert llm.transcriptions == [("whisper-1", audio)]
    assert answer.text == "echo: [Voice message, 3 s]\nwhat is the capital of Peru"
    [(_, content, attachment, _unanswered), _answer] = await stored_messages(engine)
    assert content == "[Voice message, 3 s]\nwhat is the capital of Peru"  # the history reads what was said
    assert attachment is not None
    assert attachment["kind"] == "voice"


async def test_in_a_group_a_photo_is_answered_only_when_addressed_to_the_bot(
    seeing: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    async with running_bot(seeing(), telegram):
        telegram.push_update(
            telegram.photo_update(photo_bytes(), caption="nice view", chat_id=GROUP, chat_type="supergroup")
        )
        update = telegram.photo_update(
            photo_bytes(), caption="@parley_test_bot where is this?", chat_id=GROUP, chat_type="supergroup"
        )
        telegram.push_update(update)
        [answer] = await telegram.wait_for_messages(GROUP, 1)

    assert len(llm.requests) == 1
    assert text_of(llm.requests[0]["messages"][-1]["content"]) == "[Photo 1280x960]\nwhere is this?"
    assert answer.reply_to == update["message"]["message_id"]
