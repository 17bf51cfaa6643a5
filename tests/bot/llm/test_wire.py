"""Reading gateway JSON: the values the bot needs, and nothing but "no text" from malformed bodies."""

from __future__ import annotations

import pytest

from parley_bot.llm.wire import Usage, answer_text, delta_text, usage_of


def test_a_complete_response() -> None:
    body = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14, "cost": 0.00042},
    }

    assert answer_text(body) == "Hi!"
    assert usage_of(body) == Usage(prompt_tokens=12, completion_tokens=2, cost=0.00042)


def test_stream_chunks() -> None:
    assert delta_text({"choices": [{"index": 0, "delta": {"content": "Hel"}}]}) == "Hel"
    assert delta_text({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}) == ""
    usage_chunk = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    assert delta_text(usage_chunk) == ""
    assert usage_of(usage_chunk) == Usage(prompt_tokens=3, completion_tokens=4, cost=None)


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "text",
        {},
        {"choices": None},
        {"choices": []},
        {"choices": ["x"]},
        {"choices": [{"message": None}]},
        {"choices": [{"message": {"content": None}}]},
        {"choices": [{"message": {"content": ["a", "b"]}}]},
    ],
)
def test_malformed_bodies_have_no_text(body: object) -> None:
    assert answer_text(body) == ""
    assert delta_text(body) == ""


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": "12", "completion_tokens": -1, "cost": "0.1"}, Usage(None, None, None)),
        ({"prompt_tokens": True, "completion_tokens": 2.5, "cost": -0.5}, Usage(None, None, None)),
        ({"cost": 0}, Usage(None, None, 0.0)),
    ],
)
def test_implausible_usage_values_are_unknown(usage: dict[str, object], expected: Usage) -> None:
    assert usage_of({"usage": usage}) == expected
    assert usage_of({"usage": "lots"}) is None
