"""Splitting long Markdown answers into messages Telegram accepts, without breaking formatting.

Telegram counts a message's length in UTF-16 code units after entity parsing, at most 4096. The
rendered text of a Markdown part is never longer than its source (markers and fences disappear),
so parts are measured on the source. Parts break, in order of preference, between paragraphs or
code blocks, between lines, between words, and only as a last resort inside a word. A code block
that has to be cut is closed at the end of one part and reopened, with its language, in the next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parley_bot.telegram.formatting import split_reasoning

TELEGRAM_TEXT_LIMIT = 4096
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def utf16_len(text: str) -> int:
    """Length the way Telegram counts it."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _Block:
    text: str
    fence: str | None = None  # opening fence line of a code block
    closer: str | None = None  # closing fence of a code block


def _blocks(text: str) -> list[_Block]:
    """Paragraphs (separated by blank lines) and fenced code blocks, in order."""
    blocks: list[_Block] = []
    paragraph: list[str] = []
    lines = text.split("\n")
    i = 0

    def flush() -> None:
        if paragraph:
            blocks.append(_Block("\n".join(paragraph)))
            paragraph.clear()

    while i < len(lines):
        line = lines[i]
        match = _FENCE.match(line)
        if match:
            flush()
            marker = match.group(1)
            body: list[str] = []
            i += 1
            closed = False
            while i < len(lines):
                close = _FENCE.match(lines[i])
                if (
                    close
                    and close.group(1)[0] == marker[0]
                    and len(close.group(1)) >= len(marker)
                    and not close.group(2).strip()
                ):
                    closed = True
                    break
                body.append(lines[i])
                i += 1
            closer = lines[i].strip() if closed else marker
            blocks.append(_Block("\n".join(body), fence=line.strip(), closer=closer))
            i += 1
            continue
        if line.strip() == "":
            flush()
        else:
            paragraph.append(line)
        i += 1
    flush()
    return blocks


def _render(block: _Block) -> str:
    if block.fence is None:
        return block.text
    return f"{block.fence}\n{block.text}\n{block.closer}" if block.text else f"{block.fence}\n{block.closer}"


def _cut(text: str, limit: int) -> list[str]:
    """Cut plain text into pieces of at most ``limit`` at line, then word, then character boundaries."""
    pieces: list[str] = []
    while utf16_len(text) > limit:
        window = _prefix(text, limit)
        cut = window.rfind("\n")
        if cut <= 0:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = len(window)
            pieces.append(text[:cut])
            text = text[cut:]
            continue
        pieces.append(text[:cut].rstrip())
        text = text[cut + 1 :]
    if text.strip():
        pieces.append(text)
    return pieces


def _prefix(text: str, limit: int) -> str:
    """The longest prefix of ``text`` within ``limit`` UTF-16 units, never splitting a surrogate pair."""
    if len(text) <= limit // 2:
        return text
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text


def _split_block(block: _Block, limit: int) -> list[str]:
    """A block too long for one message, as several self-contained parts."""
    if block.fence is None:
        return _cut(block.text, limit)
    overhead = utf16_len(block.fence) + utf16_len(block.closer or "") + 2
    return [f"{block.fence}\n{piece}\n{block.closer}" for piece in _cut(block.text, max(limit - overhead, 1))]


def split_markdown(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Parts of ``text`` of at most ``limit`` UTF-16 units each, every one valid Markdown on its own.

    A model's reasoning ahead of the answer (``<think>…</think>``) is split on its own, each of its
    parts wrapped in the tags again, so that every part shows it as reasoning; the answer follows
    in the last of them when it fits.
    """
    reasoning, answer = split_reasoning(text.strip())
    if reasoning is None:
        return _split(text, limit)
    wrapped = [f"<think>\n{part}\n</think>" for part in _split(reasoning, limit - _REASONING_TAGS)]
    rest = _split(answer, limit)
    if wrapped and rest and utf16_len(f"{wrapped[-1]}\n\n{rest[0]}") <= limit:
        wrapped[-1] = f"{wrapped[-1]}\n\n{rest.pop(0)}"
    return wrapped + rest


_REASONING_TAGS = len("<think>\n\n</think>")


def _split(text: str, limit: int) -> list[str]:
    text = text.strip()
    if utf16_len(text) <= limit:
        return [text] if text else []
    parts: list[str] = []
    current = ""
    for block in _blocks(text):
        rendered = _render(block)
        candidate = f"{current}\n\n{rendered}" if current else rendered
        if utf16_len(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
            current = ""
        if utf16_len(rendered) <= limit:
            current = rendered
        else:
            pieces = _split_block(block, limit)
            parts.extend(pieces[:-1])
            current = pieces[-1] if pieces else ""
    if current:
        parts.append(current)
    return parts
