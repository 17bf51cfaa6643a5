"""Splitting long Markdown: within the limit, at the best boundary, code blocks closed and reopened."""

from __future__ import annotations

from parley_bot.telegram.splitting import split_markdown, utf16_len


def test_short_text_is_one_part() -> None:
    assert split_markdown("  hello  ") == ["hello"]
    assert split_markdown("   ") == []


def test_paragraph_boundaries_are_preferred() -> None:
    text = "aaaa aaaa\n\nbbbb bbbb\n\ncccc cccc"

    assert split_markdown(text, limit=20) == ["aaaa aaaa\n\nbbbb bbbb", "cccc cccc"]


def test_long_paragraph_breaks_at_lines_then_words_then_characters() -> None:
    assert split_markdown("one two three four", limit=9) == ["one two", "three", "four"]
    assert split_markdown("line one\nline two", limit=12) == ["line one", "line two"]
    assert split_markdown("x" * 25, limit=10) == ["x" * 10, "x" * 10, "x" * 5]


def test_code_block_is_closed_and_reopened_with_its_language() -> None:
    code = "```python\n" + "\n".join(f"print({i})" for i in range(30)) + "\n```"

    parts = split_markdown(code, limit=100)

    assert len(parts) > 1
    for part in parts:
        assert part.startswith("```python\n")
        assert part.endswith("\n```")
        assert utf16_len(part) <= 100
    body = "\n".join(p.removeprefix("```python\n").removesuffix("\n```") for p in parts)
    assert body.split("\n") == [f"print({i})" for i in range(30)]


def test_blank_lines_inside_code_do_not_split_the_block() -> None:
    text = "intro\n\n```\na\n\nb\n```\n\noutro"

    assert split_markdown(text, limit=20) == ["intro\n\n```\na\n\nb\n```", "outro"]


def test_unclosed_fence_is_closed() -> None:
    parts = split_markdown("```sh\n" + "echo hi\n" * 20, limit=60)

    assert all(p.startswith("```sh\n") and p.endswith("\n```") for p in parts)


def test_length_is_counted_in_utf16_units() -> None:
    emoji = "😀" * 3000  # 6000 UTF-16 units in 3000 characters

    parts = split_markdown(emoji)

    assert len(parts) == 2
    assert all(utf16_len(p) <= 4096 for p in parts)
    assert "".join(parts) == emoji
