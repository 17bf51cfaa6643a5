"""Markdown -> Telegram HTML: only tags Telegram knows, always balanced, text escaped."""

from __future__ import annotations

import pytest

from parley_bot.telegram.formatting import markdown_to_html, visible_text
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
        ("| a | b |\n|---|---|\n| 1 | 2 |", "<pre>| a | b |\n|---|---|\n| 1 | 2 |</pre>"),
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
