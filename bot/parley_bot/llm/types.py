"""Plain values the LLM client takes and returns, free of the SDK's types."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant"]

# Called with the whole answer so far each time the stream grows (and again from the start when a
# retry or the fallback model begins a new answer).
PartialCallback = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class ChatMessage:
    """One message of the prompt; ``images`` (data URLs) make it a multimodal user message."""

    role: Role
    content: str
    images: tuple[str, ...] = ()


@dataclass
class Spent:
    """Tokens and US dollars consumed by attempts that produced no answer (the gateway bills them)."""

    tokens: int = 0
    cost_usd: float | None = None

    def add(self, tokens: int, cost_usd: float | None) -> None:
        """Count one more attempt's consumption."""
        self.tokens += tokens
        if cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + cost_usd


@dataclass
class Progress:
    """What a call has produced so far: the model being asked and the text it has streamed.

    A stopped answer keeps this text; a new attempt or the fallback model starts it afresh. What
    failed attempts had streamed before they broke off is estimated into ``wasted``.
    """

    model: str | None = None
    text: str = ""
    fallback_used: bool = False
    wasted: Spent = field(default_factory=Spent)

    def follow(self, on_partial: PartialCallback | None) -> PartialCallback | None:
        """``on_partial`` that also records each text (None stays None: nothing streams)."""
        if on_partial is None:
            return None
        forward = on_partial

        async def recorded(text: str) -> None:
            self.text = text
            await forward(text)

        return recorded


@dataclass(frozen=True)
class Completion:
    """An answer, with what produced it."""

    text: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int
    fallback_used: bool
    trimmed_messages: int = 0
    cost_usd: float | None = None


class LLMUnavailableError(RuntimeError):
    """Neither model answered within the deadline; ``reason`` names the last failure type."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"no model answered ({reason})")
        self.reason = reason


class ContextTooLongError(RuntimeError):
    """The prompt does not fit the model even with the history trimmed."""


class TranscriptionError(RuntimeError):
    """A voice message could not be transcribed (none configured, or the gateway failed)."""
