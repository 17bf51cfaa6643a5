"""Reading the gateway's JSON as plain dicts: an answer's text, a stream chunk's text, the usage.

The SDK would build its pydantic models for every response and every stream chunk (``construct``
over nested dicts: about a tenth of the bot's CPU per message under load) only for three values
to be read from them. Anything malformed reads as "no text" or "no usage", never as an exception:
an answer without text is an empty answer, which the client retries like the SDK's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Usage:
    """What a response says it used: tokens, and the cost when the gateway reports one (US dollars)."""

    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None


def answer_text(body: object) -> str:
    """The text of a complete response's first choice ("" when there is none)."""
    message = _first_choice(body).get("message")
    return _text(message.get("content")) if isinstance(message, dict) else ""


def delta_text(chunk: object) -> str:
    """The text a stream chunk adds ("" for role, finish and usage chunks)."""
    delta = _first_choice(chunk).get("delta")
    return _text(delta.get("content")) if isinstance(delta, dict) else ""


def usage_of(body: object) -> Usage | None:
    """The ``usage`` object of a response or chunk, None when it has none."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return None
    return Usage(
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        cost=_dollars(usage.get("cost")),
    )


def _first_choice(body: object) -> dict[str, Any]:
    choices = body.get("choices") if isinstance(body, dict) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _dollars(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None
