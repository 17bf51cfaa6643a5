"""The LLM client: an OpenAI-compatible gateway with a primary and a fallback model."""

from parley_bot.llm.client import LLMClient
from parley_bot.llm.types import (
    ChatMessage,
    Completion,
    ContextTooLongError,
    LLMUnavailableError,
    Progress,
    TranscriptionError,
)

__all__ = [
    "ChatMessage",
    "Completion",
    "ContextTooLongError",
    "LLMClient",
    "LLMUnavailableError",
    "Progress",
    "TranscriptionError",
]
