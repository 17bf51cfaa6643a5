"""LLM Markdown rendered as the HTML subset Telegram accepts.

Telegram's HTML knows b, i, s, u, code, pre, a and blockquote, and only &lt; &gt; &amp; &quot;
as named entities. Everything else in the Markdown (headings, lists, tables, rules, images) is
turned into plain text with those tags. A table becomes an aligned monospace block when it fits a
phone's width (:data:`PHONE_COLUMNS`), otherwise one card per row ("header: value" lines), which
wraps like any text. A long quote is sent collapsed (``<blockquote expandable>``), and so is a
model's reasoning (``<think>…</think>`` ahead of the answer, as reasoning models write it), always,
marked 💭 (the splitter wraps each part of a long one in the tags again). Telegram
rejects code nested in other formatting, so inline code inside bold/italic/links is written as
plain text. If Telegram still refuses the
result ("can't parse entities"), the sender falls back to the plain source text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token

_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["strikethrough", "table"])
_LANGUAGE = re.compile(r"[^A-Za-z0-9_+#.-]")
_SAFE_SCHEMES = ("http://", "https://", "tg://", "mailto:")
# Monospace characters a phone in portrait shows on one line of a Telegram message (a 360 dp wide
# screen at the default text size); a wider table would wrap and lose its columns.
PHONE_COLUMNS = 34
# A quote longer than this is sent collapsed (Telegram's expandable blockquote): a long quoted source
# or a model's reasoning should not push the answer itself off the screen.
EXPANDABLE_QUOTE_LINES = 6
EXPANDABLE_QUOTE_CHARS = 500
_INLINE_TAGS = {
    "strong_open": "<b>",
    "strong_close": "</b>",
    "em_open": "<i>",
    "em_close": "</i>",
    "s_open": "<s>",
    "s_close": "</s>",
}


def escape(text: str) -> str:
    """Escape text for Telegram HTML (quotes too, for attribute values)."""
    return html.escape(text, quote=True)


class _Renderer:
    def __init__(self, source: str) -> None:
        self.lines = source.split("\n")
        self.out: list[str] = []
        self.lists: list[list[int]] = []  # per open list: [ordered (0/1), next number]
        self.after_prefix = False
        self.table_cells: tuple[list[list[str]], list[str]] = ([], [])

    def newlines(self, count: int) -> None:
        """Make the output end with at least ``count`` newlines (nothing at the very start)."""
        if not self.out or self.after_prefix:
            return
        tail = "".join(self.out[-4:])
        have = len(tail) - len(tail.rstrip("\n"))
        if have < count:
            self.out.append("\n" * (count - have))

    def render(self, tokens: Sequence[Token]) -> str:
        skip_until: str | None = None
        for index, token in enumerate(tokens):
            if skip_until:
                if token.type == skip_until:
                    skip_until = None
                continue
            if token.type == "table_open":
                self.table_cells = _cells(tokens[index:])
                self._table(token)
                skip_until = "table_close"
                continue
            handler = getattr(self, f"_on_{token.type}", None)
            if handler is not None:
                handler(token)
        return "".join(self.out).strip()

    def _on_paragraph_open(self, token: Token) -> None:
        if not token.hidden:
            self.newlines(2)

    def _on_heading_open(self, _token: Token) -> None:
        self.newlines(2)
        self.out.append("<b>")

    def _on_heading_close(self, _token: Token) -> None:
        self.out.append("</b>")

    def _on_bullet_list_open(self, _token: Token) -> None:
        self.newlines(1 if self.lists else 2)
        self.lists.append([0, 0])

    def _on_ordered_list_open(self, token: Token) -> None:
        self.newlines(1 if self.lists else 2)
        self.lists.append([1, int(token.attrGet("start") or 1)])

    def _on_bullet_list_close(self, _token: Token) -> None:
        self.lists.pop()

    _on_ordered_list_close = _on_bullet_list_close

    def _on_list_item_open(self, _token: Token) -> None:
        self.after_prefix = False
        self.newlines(1)
        ordered, number = self.lists[-1]
        indent = "   " * (len(self.lists) - 1)
        if ordered:
            self.out.append(f"{indent}{number}. ")
            self.lists[-1][1] += 1
        else:
            self.out.append(f"{indent}• ")
        self.after_prefix = True

    def _on_blockquote_open(self, token: Token) -> None:
        self.newlines(2)
        start, end = token.map or (0, 0)
        quoted = self.lines[start:end]
        long = len(quoted) > EXPANDABLE_QUOTE_LINES or sum(map(len, quoted)) > EXPANDABLE_QUOTE_CHARS
        self.out.append("<blockquote expandable>" if long else "<blockquote>")
        self.after_prefix = True  # the quote's first paragraph starts right after the tag

    def _on_blockquote_close(self, _token: Token) -> None:
        self._strip_trailing_newlines()
        self.out.append("</blockquote>")

    def _on_fence(self, token: Token) -> None:
        self.newlines(2)
        self._code_block(token)

    _on_code_block = _on_fence

    def _on_hr(self, _token: Token) -> None:
        self.newlines(2)
        self.out.append("———")

    def _on_inline(self, token: Token) -> None:
        self._inline(token.children or [])
        self.after_prefix = False

    def _table(self, token: Token) -> None:
        """Tables have no Telegram equivalent: aligned columns if they fit a phone, else cards."""
        self.newlines(2)
        rows, aligns = self.table_cells
        widths = [max(len(row[i]) for row in rows) for i in range(len(aligns))]
        if sum(widths) + 3 * (len(widths) - 1) <= PHONE_COLUMNS:
            self.out.append(f"<pre>{escape(_aligned(rows, aligns, widths))}</pre>")
            return
        header, *body = rows
        cards = []
        for row in body:
            lines = [
                f"<b>{escape(name)}</b>: {escape(value)}" if name else escape(value)
                for name, value in zip(header, row, strict=True)
                if value
            ]
            cards.append("\n".join(lines))
        self.out.append("\n\n".join(cards) or " · ".join(f"<b>{escape(name)}</b>" for name in header))

    def _strip_trailing_newlines(self) -> None:
        while self.out and self.out[-1].endswith("\n"):
            stripped = self.out[-1].rstrip("\n")
            if stripped:
                self.out[-1] = stripped
                break
            self.out.pop()

    def _code_block(self, token: Token) -> None:
        language = _LANGUAGE.sub("", token.info.strip().split(" ")[0]) if token.info.strip() else ""
        code = escape(token.content.rstrip("\n")) or " "
        if language:
            self.out.append(f'<pre><code class="language-{language}">{code}</code></pre>')
        else:
            self.out.append(f"<pre>{code}</pre>")
        self.after_prefix = False

    def _inline(self, children: Sequence[Token]) -> None:
        depth = 0  # open formatting/link tags around the current position
        link_open: list[bool] = []
        for child in children:
            kind = child.type
            if kind == "text":
                self.out.append(escape(child.content))
            elif kind in ("softbreak", "hardbreak"):
                self.out.append("\n")
            elif kind == "code_inline":
                code = escape(child.content)
                self.out.append(code if depth else f"<code>{code}</code>")
            elif kind in _INLINE_TAGS:
                self.out.append(_INLINE_TAGS[kind])
                depth += 1 if kind.endswith("_open") else -1
            elif kind == "link_open":
                href = str(child.attrGet("href") or "")
                safe = href.startswith(_SAFE_SCHEMES)
                link_open.append(safe)
                if safe:
                    self.out.append(f'<a href="{escape(href)}">')
                    depth += 1
            elif kind == "link_close":
                if link_open and link_open.pop():
                    self.out.append("</a>")
                    depth -= 1
            elif kind == "image":
                self.out.append(escape(child.content or str(child.attrGet("alt") or "")))
            else:
                self.out.append(escape(child.content))


def _plain(children: Sequence[Token]) -> str:
    """A cell's text without its Markdown markers (monospace has no bold or links)."""
    parts = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "image":
            parts.append(child.content or str(child.attrGet("alt") or ""))
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts).strip()


def _cells(tokens: Sequence[Token]) -> tuple[list[list[str]], list[str]]:
    """The rows (header first) of the table that ``tokens`` start with, and each column's alignment."""
    rows: list[list[str]] = []
    aligns: list[str] = []
    for token in tokens:
        if token.type == "table_close":
            break
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "th_open":
            aligns.append(str(token.attrGet("style") or "").removeprefix("text-align:") or "left")
        elif token.type == "inline" and rows:
            rows[-1].append(_plain(token.children or []))
    width = len(aligns)
    return [(row + [""] * width)[:width] for row in rows], aligns


def _aligned(rows: list[list[str]], aligns: list[str], widths: list[int]) -> str:
    """Columns padded to their widths, the header ruled off."""

    def line(row: list[str]) -> str:
        cells = []
        for value, align, width in zip(row, aligns, widths, strict=True):
            if align == "right":
                cells.append(value.rjust(width))
            elif align == "center":
                cells.append(value.center(width))
            else:
                cells.append(value.ljust(width))
        return " │ ".join(cells).rstrip()

    header, *body = rows
    rule = "─┼─".join("─" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in body)])


def has_table(text: str) -> bool:
    """Whether the Markdown ``text`` holds a table (which Telegram's HTML cannot show); a part with
    reasoning never counts (a rich message could not collapse it)."""
    if split_reasoning(text)[0] is not None:
        return False
    return "|" in text and any(token.type == "table_open" for token in _md.parse(text))


_REASONING_OPEN = re.compile(r"\A\s*<(think|thinking|reasoning)>", re.IGNORECASE)
_REASONING_CLOSE = re.compile(r"</(?:think|thinking|reasoning)>", re.IGNORECASE)
REASONING_MARK = "💭"


def split_reasoning(text: str) -> tuple[str | None, str]:
    """The reasoning a model wrote ahead of its answer (None when there is none), and the answer.

    Reasoning opened and not yet closed (a stream in progress, a part whose answer a split moved to
    the next one) runs to the end; the splitter reopens it in the part that continues it.
    """
    opened = _REASONING_OPEN.match(text)
    if opened is None:
        return None, text
    closed = _REASONING_CLOSE.search(text, opened.end())
    if closed is None:
        return text[opened.end() :].strip(), ""
    return text[opened.end() : closed.start()].strip(), text[closed.end() :].lstrip()


def markdown_to_html(text: str) -> str:
    """Telegram-safe HTML for the Markdown ``text``."""
    reasoning, answer = split_reasoning(text)
    rendered = _Renderer(answer).render(_md.parse(answer))
    if reasoning is None:
        return rendered
    if not reasoning and not rendered:  # nothing but empty tags: show them rather than send nothing
        return escape(text.strip())
    collapsed = (
        f"<blockquote expandable>{REASONING_MARK} {escape(reasoning)}</blockquote>" if reasoning else ""
    )
    return "\n\n".join(part for part in (collapsed, rendered) if part)


_TAG = re.compile(r"<[^>]+>")


def visible_text(html_text: str) -> str:
    """The text a reader sees from our own HTML (tags dropped, entities resolved)."""
    return html.unescape(_TAG.sub("", html_text))
