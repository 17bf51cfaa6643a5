"""What reaches the chat: long replies split, HTML fallback, flood waits, streaming — end to end."""

from __future__ import annotations

from parley_bot import metrics
from parley_testing.doubles import llm as script
from parley_testing.doubles.llm import LLMDouble
from parley_testing.doubles.telegram import MAX_TEXT_UTF16, TelegramDouble, parse_html, utf16_len
from tests.bot.constants import TEST_USER_ID as USER
from tests.bot.support import RunningBot, SettingsFactory, running_bot


def long_answer() -> str:
    paragraphs = [f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 30 for i in range(12)]
    code = "```python\n" + "\n".join(f"print({i})  # line {i}" for i in range(250)) + "\n```"
    return "# Title\n\n" + "\n\n".join(paragraphs[:6]) + "\n\n" + code + "\n\n" + "\n\n".join(paragraphs[6:])


async def test_long_reply_is_split_without_breaking_formatting(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    answer = long_answer()
    llm.script("*", script.reply(answer))

    telegram.send_text("Tell me everything")
    await telegram.wait_for(lambda: any("Paragraph 11" in m.text for m in telegram.messages_to(USER)))
    parts = telegram.messages_to(USER)

    assert len(parts) >= 3
    assert all(utf16_len(p.text) <= MAX_TEXT_UTF16 for p in parts)
    assert all(p.parse_mode == "HTML" for p in parts)  # every part rendered, none fell back
    for part in parts:
        parse_html(part.raw)  # balanced tags in every part
    joined = "\n".join(p.text for p in parts)
    for i in range(250):
        assert f"print({i})  # line {i}" in joined
    for i in range(12):
        assert f"Paragraph {i}:" in joined
    code_parts = [p for p in parts if "print(" in p.text]
    assert all('<pre><code class="language-python">' in p.raw for p in code_parts)


async def test_rejected_html_falls_back_to_plain_text(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    llm.script("*", script.reply("Some **bold** claim"))
    telegram.reject_entities(1)
    before = metrics.TELEGRAM_FORMAT_FALLBACK._value.get()

    telegram.send_text("Say it")
    [reply] = await telegram.wait_for_messages(USER, 1)

    assert reply.parse_mode is None
    assert reply.text == "Some **bold** claim"
    assert metrics.TELEGRAM_FORMAT_FALLBACK._value.get() == before + 1


async def test_markdown_is_rendered_as_telegram_html(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    llm.script("*", script.reply("**Bold**, _it_, `x < y` and [a link](https://example.org)"))

    telegram.send_text("Format")
    [reply] = await telegram.wait_for_messages(USER, 1)

    assert (
        reply.raw
        == '<b>Bold</b>, <i>it</i>, <code>x &lt; y</code> and <a href="https://example.org">a link</a>'
    )
    assert reply.text == "Bold, it, x < y and a link"


async def test_flood_control_is_honoured_and_retried(
    bot: RunningBot, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    telegram.flood("sendMessage", retry_after=1)
    before = metrics.TELEGRAM_RETRY_AFTER.labels(method="sendMessage")._value.get()

    telegram.send_text("Hurry")
    [reply] = await telegram.wait_for_messages(USER, 1)

    assert reply.text == "echo: Hurry"
    assert [m for m, _ in telegram.calls].count("sendMessage") == 2
    assert metrics.TELEGRAM_RETRY_AFTER.labels(method="sendMessage")._value.get() == before + 1


async def test_streaming_with_edits_ends_with_the_complete_formatted_answer(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    answer = "**Streaming** " + " ".join(f"word{i}" for i in range(60))
    llm.script("*", script.reply(answer))
    llm.chunk_delay = 0.02
    async with running_bot(make_settings(stream_replies="edit", stream_edit_interval_seconds=0.1), telegram):
        telegram.send_text("Stream it")
        await telegram.wait_for(lambda: any("word59" in m.text for m in telegram.messages_to(USER)))
        [reply] = telegram.messages_to(USER)

    assert reply.edits >= 2  # at least one preview update and the final formatted edit
    assert reply.raw.startswith("<b>Streaming</b> word0")
    assert reply.text.endswith("word59")
    assert llm.requests[0]["stream"] is True


async def test_streaming_with_drafts_then_sends_the_final_message(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    llm.script("*", script.reply(" ".join(f"w{i}" for i in range(40))))
    llm.chunk_delay = 0.02
    async with running_bot(make_settings(stream_replies="auto", stream_edit_interval_seconds=0.1), telegram):
        telegram.send_text("Draft it")
        [reply] = await telegram.wait_for_messages(USER, 1)

    assert telegram.drafts, "previews were shown as drafts"
    assert all(d.chat_id == USER for d in telegram.drafts)
    assert reply.text.endswith("w39")
    assert reply.edits == 0


async def test_streaming_falls_back_to_edits_when_drafts_are_missing(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    telegram.drafts_supported = False
    llm.script("*", script.reply(" ".join(f"w{i}" for i in range(40))))
    llm.chunk_delay = 0.02
    async with running_bot(make_settings(stream_replies="auto", stream_edit_interval_seconds=0.1), telegram):
        telegram.send_text("Draft it")
        await telegram.wait_for(lambda: any("w39" in m.text for m in telegram.messages_to(USER)))
        [reply] = telegram.messages_to(USER)

    assert not telegram.drafts
    assert reply.edits >= 1
    assert reply.text.endswith("w39")


async def test_a_stream_that_breaks_off_is_retried_and_previews_replaced(
    make_settings: SettingsFactory, telegram: TelegramDouble, llm: LLMDouble
) -> None:
    llm.script("primary/model", script.stream_error(), script.reply("the real answer"))
    llm.chunk_delay = 0.15
    async with running_bot(make_settings(stream_replies="edit", stream_edit_interval_seconds=0.1), telegram):
        telegram.send_text("Try")
        await telegram.wait_for(lambda: any(m.text == "the real answer" for m in telegram.messages_to(USER)))

    assert [m.text for m in telegram.messages_to(USER)] == ["the real answer"]
    assert telegram.messages_to(USER)[0].edits >= 1  # the broken preview was replaced, not left behind
