"""Markdown -> Telegram HTML: only tags Telegram knows, always balanced, text escaped."""

from __future__ import annotations

import pytest

from parley_bot.telegram.formatting import (
    EXPANDABLE_QUOTE_CHARS,
    EXPANDABLE_QUOTE_LINES,
    PHONE_COLUMNS,
    has_table,
    markdown_to_html,
    split_reasoning,
    visible_text,
)
from parley_bot.telegram.splitting import TELEGRAM_TEXT_LIMIT, split_markdown, utf16_len
from parley_testing.doubles.telegram import parse_html


@pytest.mark.parametrize(
    ("markdown", "html"),
    [
        ("plain & <text>", "plain &amp; &lt;text&gt;"),
        ("**b** *i* ~~s~~", "<b>b</b> <i>i</i> <s>s</s>"),
        ("# Heading\n\ntext", "<b>Heading</b>\n\ntext"),
        ("- one\n- two", "• one\n• two"),
        ("3. three\n4. four", "3. three\n4. four"),
        ("- a\n  - nested", "• a\n   • nested"),
        ("> quoted\n> more", "<blockquote>quoted\nmore</blockquote>"),
        ("```py\nx = 1 < 2\n```", '<pre><code class="language-py">x = 1 &lt; 2</code></pre>'),
        ("```\nplain\n```", "<pre>plain</pre>"),
        ("[site](https://example.org/?a=1&b=2)", '<a href="https://example.org/?a=1&amp;b=2">site</a>'),
        ("[relative](/path)", "relative"),
        ("**bold `code`**", "<b>bold code</b>"),
        ("![alt text](https://x/y.png)", "alt text"),
        ("a\n\n---\n\nb", "a\n\n———\n\nb"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "<pre>a │ b\n──┼──\n1 │ 2</pre>"),
        # Alignment from the delimiter row; cell markup dropped (monospace shows no bold or links).
        (
            "| item | **qty** |\n|:--|--:|\n| [tea](https://t) | 12 |\n| `milk` | 3 |",
            "<pre>item │ qty\n─────┼────\ntea  │  12\nmilk │   3</pre>",
        ),
    ],
)
def test_rendering(markdown: str, html: str) -> None:
    assert markdown_to_html(markdown) == html


@pytest.mark.parametrize(
    "markdown",
    [
        "**unclosed bold",
        "<b>html from the model</b> <script>",
        "`a` **b _c_ d** [e](https://f) ~~g~~\n\n> h\n\n1. i\n2. **j**",
        "```\nunterminated code",
        "&amp; &lt; &#x41; &bogus;",
        "* * *\n\n<>",
    ],
)
def test_output_is_always_valid_telegram_html(markdown: str) -> None:
    rendered = markdown_to_html(markdown)

    assert parse_html(rendered) == visible_text(rendered)


def test_a_table_wider_than_a_phone_becomes_one_card_per_row() -> None:
    markdown = (
        "| Model | Input per 1M | Output per 1M | Notes |\n|---|---:|---:|---|\n"
        "| gpt-4o | $2.50 | $10.00 | **fast** |\n| claude <3 | $3.00 | $15.00 | |"
    )
    assert markdown_to_html(markdown) == (
        "<b>Model</b>: gpt-4o\n<b>Input per 1M</b>: $2.50\n<b>Output per 1M</b>: $10.00\n<b>Notes</b>: fast"
        "\n\n<b>Model</b>: claude &lt;3\n<b>Input per 1M</b>: $3.00\n<b>Output per 1M</b>: $15.00"
    )  # an empty cell leaves its line out


def test_an_aligned_table_fits_a_phone_line() -> None:
    markdown = "| a | b | c |\n|---|---|---|\n| " + " | ".join(["x" * 9] * 3) + " |"
    rendered = markdown_to_html(markdown).removeprefix("<pre>").removesuffix("</pre>")
    assert max(len(line) for line in rendered.split("\n")) <= PHONE_COLUMNS
    assert markdown_to_html(markdown.replace("x" * 9, "x" * 10)).startswith("<b>a</b>: ")  # one more: cards


def test_a_long_quote_is_sent_collapsed_and_a_short_one_open() -> None:
    short = "> one\n> two"
    long_lines = "\n".join(f"> line {n}" for n in range(EXPANDABLE_QUOTE_LINES + 1))
    long_text = "> " + "word " * (EXPANDABLE_QUOTE_CHARS // 5 + 1)
    assert markdown_to_html(short) == "<blockquote>one\ntwo</blockquote>"
    assert markdown_to_html(long_lines).startswith("<blockquote expandable>line 0\nline 1")
    assert markdown_to_html(long_text).startswith("<blockquote expandable>word word")
    assert visible_text(markdown_to_html(long_lines)).endswith(f"line {EXPANDABLE_QUOTE_LINES}")


def test_a_models_reasoning_is_collapsed_ahead_of_the_answer() -> None:
    text = "<think>\nThe user asks for 2+2. <b>Add</b> them.\n</think>\n\n**4**"
    assert markdown_to_html(text) == (
        "<blockquote expandable>💭 The user asks for 2+2. &lt;b&gt;Add&lt;/b&gt; them.</blockquote>"
        "\n\n<b>4</b>"
    )
    # Still being written (a stream), or the answer moved to the next part by a split.
    assert markdown_to_html("<think>Let me see") == "<blockquote expandable>💭 Let me see</blockquote>"
    # A long reasoning split over two messages: the second part is reasoning up to its closing tag.
    parts = split_markdown("<think>\n" + "step. " * 1000 + "\n\nso it is 4.\n</think>\n\nIt is *4*.")
    assert len(parts) == 2
    assert all(utf16_len(part) <= TELEGRAM_TEXT_LIMIT for part in parts)
    assert all(markdown_to_html(part).startswith("<blockquote expandable>💭 step.") for part in parts)
    assert markdown_to_html(parts[-1]).endswith("so it is 4.</blockquote>\n\nIt is <i>4</i>.")
    assert split_reasoning("No reasoning, and a literal </think> in code.") == (
        None,
        "No reasoning, and a literal </think> in code.",
    )
    assert markdown_to_html("<think></think>Done.") == "Done."
    assert markdown_to_html("<think></think>") == "&lt;think&gt;&lt;/think&gt;"  # never an empty message
    assert not has_table(
        "<think>\n| a | b |\n|---|---|\n| 1 | 2 |\n</think>\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
