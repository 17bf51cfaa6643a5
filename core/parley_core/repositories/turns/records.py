"""What the durable-turn statements take and return: leases, queued messages, stored replies."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from parley_core.budgets import Override, Spending
from parley_core.models import MessageRole

AcceptStatus = Literal["duplicate", "stored", "refused"]
AttachmentKind = Literal["photo", "document", "voice"]


@dataclass(frozen=True)
class LeaseTerms:
    """Who asks for a lease, and when another process's lease counts as abandoned."""

    holder: uuid.UUID
    stale_seconds: float
    take_over: bool  # False while this process itself may have been cut off from the database


@dataclass(frozen=True)
class HistoryMessage:
    """One earlier message, in the LLM's chat vocabulary, and when it was written (what a summary covers)."""

    role: MessageRole
    content: str
    created_at: datetime


@dataclass(frozen=True)
class Attachment:
    """The Telegram file a user's message carried, as Telegram described it (``messages.attachment``)."""

    kind: AttachmentKind
    file_id: str
    file_unique_id: str
    size: int | None = None  # bytes, when Telegram said
    mime_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None  # seconds (voice)

    def as_json(self) -> dict[str, Any]:
        """The stored form: every field that is known."""
        return {key: value for key, value in self.__dict__.items() if value is not None}

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> Attachment | None:
        """The stored form read back (None for a text message)."""
        if not value:
            return None
        known = {key: value[key] for key in cls.__dataclass_fields__ if key in value}
        return cls(**known)


@dataclass(frozen=True)
class PendingMessage:
    """A stored user message waiting for its answer; ``content`` describes an attachment."""

    message_id: uuid.UUID
    content: str
    chat_id: int
    telegram_message_id: int
    sent_at: datetime
    received_at: datetime
    preview_message_ids: tuple[int, ...] = ()
    attachment: Attachment | None = None


@dataclass(frozen=True)
class OutboxItem:
    """A stored reply and how many of its parts Telegram has accepted."""

    id: uuid.UUID
    chat_id: int
    reply_to_message_id: int | None
    text: str
    markdown: bool
    parts_total: int
    parts_delivered: int
    preview_message_ids: tuple[int, ...]
    attempts: int
    due: bool = True  # False while a postponed delivery waits for its next attempt


@dataclass(frozen=True)
class UserWork:
    """Everything a lease holder needs for a user's next turn."""

    user_id: int
    pending: list[PendingMessage]
    outbox: list[OutboxItem]
    history: list[HistoryMessage]
    system_prompt: str | None
    max_history_messages: int
    model: str | None = None  # the user's /model choice, None: the configured primary
    language: str | None = None  # /language's choice, else the Telegram app's language_code
    # The summary of the conversation before ``history`` (long conversations), and up to when; and
    # whether more unsummarised history waits than ``history`` holds (time to summarise).
    summary: str | None = None
    summary_until: datetime | None = None
    history_overflow: bool = False
    budget_override: Override | None = None
    spending: Spending = field(default_factory=Spending)  # of the current UTC day and month


@dataclass(frozen=True)
class Accepted:
    """What :func:`accept_message` did; ``leased``: the caller now holds the user's lease, and
    ``work`` (when asked for) is what waited before this message."""

    status: AcceptStatus
    leased: bool
    message: PendingMessage | None
    work: UserWork | None


@dataclass(frozen=True)
class ReplyDraft:
    """A reply to store in the outbox; ``is_answer`` links it to the stored answer."""

    chat_id: int
    reply_to_message_id: int | None
    text: str
    markdown: bool
    parts_total: int
    is_answer: bool = False
    preview_message_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class StoredAnswer:
    """The model's answer with what produced it."""

    content: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int
    fallback_used: bool
    cost_usd: float | None = None  # US dollars; None when neither the gateway nor a price knew
    stopped: bool = False  # the user stopped it: ``content`` is what the model had written by then

    @property
    def tokens(self) -> int:
        """Prompt and completion tokens: what the answer counts against a token budget."""
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)

    @property
    def dollars(self) -> Decimal | None:
        """The cost as the exact decimal the database stores (asyncpg sends numeric as Decimal)."""
        return None if self.cost_usd is None else Decimal(repr(self.cost_usd))


@dataclass(frozen=True)
class Delivered:
    """After a reply was completed: whether more work waits, and whether the lease was given back."""

    more: bool
    released: bool
