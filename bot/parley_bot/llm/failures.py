"""How a request to the model failed, and whether asking the same model again may help.

The client logs and counts every failure under an ``error_type`` from this table, and retries the
same model only for the retryable ones. "Context too long" is told apart from other 400 answers:
the client answers it by trimming the history, not by retrying or moving to the fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

import openai

_CONTEXT_HINTS = (
    "context length",
    "context_length",
    "maximum context",
    "too many tokens",
    "prompt is too long",
)


@dataclass(frozen=True)
class Failure:
    """One failed attempt: its error type, whether the same model is worth another try, Retry-After."""

    error_type: str
    retryable: bool
    retry_after: float | None = None


class EmptyAnswerError(Exception):
    """The model answered without any text."""


# Checked in order (subclasses first): error type, and whether the same model is worth another try.
_FAILURES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str, bool], ...] = (
    ((TimeoutError, openai.APITimeoutError), "timeout", True),
    (openai.APIConnectionError, "connection", True),
    (openai.RateLimitError, "rate_limited", True),
    (openai.InternalServerError, "server_error", True),
    ((openai.AuthenticationError, openai.PermissionDeniedError), "auth", False),
    (openai.NotFoundError, "not_found", False),
    (openai.APIStatusError, "bad_request", False),
    (EmptyAnswerError, "empty_answer", True),
    (openai.APIError, "stream_error", True),  # an error event inside a stream
)


def classify(exc: BaseException) -> Failure:
    """Map an SDK (or timeout) exception to an error type and whether retrying the same model helps."""
    for types, error_type, retryable in _FAILURES:
        if isinstance(exc, types):
            retry_after = _retry_after(exc) if isinstance(exc, openai.APIStatusError) else None
            return Failure(error_type, retryable, retry_after)
    return Failure(type(exc).__name__, True)


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def is_context_too_long(exc: BaseException) -> bool:
    """Whether the gateway refused the prompt as longer than the model's context."""
    if not isinstance(exc, openai.BadRequestError | openai.APIStatusError) or exc.status_code not in (
        400,
        413,
    ):
        return False
    return exc.code == "context_length_exceeded" or any(h in exc.message.lower() for h in _CONTEXT_HINTS)
