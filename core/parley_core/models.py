"""The schema as typed SQLAlchemy 2 mappings; Alembic migrations are generated from and checked against it."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DEFAULT_MAX_HISTORY_MESSAGES = 20


class Base(DeclarativeBase):
    """Declarative base: timezone-aware timestamps everywhere, named constraints."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


class MessageRole(enum.StrEnum):
    """Who wrote a message, in the LLM's chat vocabulary."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


class ApiUserSource(enum.StrEnum):
    """How a dashboard account came to exist: self-registration or an ApiUser resource."""

    REGISTRATION = "registration"
    OPERATOR = "operator"


class ApiUserRole(enum.StrEnum):
    """What a dashboard account may do: read the stats, or also manage the bot's users' budgets.

    Only an ApiUser resource (the operator) grants ``admin``; self-registered accounts are analysts.
    """

    ANALYST = "analyst"
    ADMIN = "admin"


def _enum(enum_cls: type[enum.StrEnum], name: str) -> Enum:
    # VARCHAR + CHECK rather than a native enum type: adding a value needs no ALTER TYPE.
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class TimestampMixin:
    """created_at / updated_at kept by the database, so every writer agrees on the clock."""

    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class User(TimestampMixin, Base):
    """A Telegram user, keyed by Telegram's own id."""

    __tablename__ = "users"
    # Users created up to a rolling stats window's end: the minutes after its last full hour.
    __table_args__ = (Index("ix_users_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    language_code: Mapped[str | None] = mapped_column(String(16))
    # The bot's per-user turn lease: which bot process (a `bot_instances` row) may answer this user
    # right now. It serializes a user's turns across webhook replicas without holding a connection
    # across the LLM call, and is free again once that process stops heartbeating (see docs/bot.md).
    lease_holder: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))

    settings: Mapped[UserSettings | None] = relationship(back_populates="user", uselist=False, lazy="raise")


class Message(Base):
    """One turn of a conversation; /reset sets deleted_at instead of deleting the row."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("content_length >= 0", name="content_length_non_negative"),
        # History loads: a user's newest live messages first.
        Index(
            "ix_messages_user_id_created_at_live",
            "user_id",
            text("created_at DESC"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_messages_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        primary_key=True,
        default=uuid.uuid4,
        server_default=func.gen_random_uuid(),
    )
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    role: Mapped[MessageRole] = mapped_column(_enum(MessageRole, "message_role"))
    content: Mapped[str] = mapped_column(Text)
    content_length: Mapped[int] = mapped_column(Integer)
    model: Mapped[str | None] = mapped_column(String(128))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    fallback_used: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # US dollars: the gateway's reported cost, else the bot's price table; NULL when neither knew.
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(16, 10))
    # A question whose turn ended without an answer (models unavailable, waited too long): kept for
    # the stats, left out of the history the model reads.
    unanswered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # An answer the user stopped while it was being written: what the model had written by then.
    stopped: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # An answer /retry regenerated: kept for the stats and its cost, left out of the history.
    replaced: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # The Telegram update that carried a user's message (for tracing; de-duplication is
    # `telegram_updates`, because Telegram re-uses update ids after a quiet week).
    telegram_update_id: Mapped[int | None] = mapped_column(BigInteger)
    # The Telegram file a user's message carried (kind, file_id, what Telegram said of it), never the
    # file: the bot fetches it for the turn that answers it. ``content`` holds its description.
    attachment: Mapped[dict[str, object] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column()


class UserSettings(TimestampMixin, Base):
    """Per-user preferences: how much history the LLM sees and an optional system prompt."""

    __tablename__ = "user_settings"
    __table_args__ = (CheckConstraint("max_history_messages > 0", name="max_history_messages_positive"),)

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    max_history_messages: Mapped[int] = mapped_column(
        Integer,
        default=DEFAULT_MAX_HISTORY_MESSAGES,
        server_default=text(str(DEFAULT_MAX_HISTORY_MESSAGES)),
    )
    system_prompt: Mapped[str | None] = mapped_column(Text)
    # The user's choice from LLM_MODEL_CHOICES (/model); NULL: the configured primary model.
    model: Mapped[str | None] = mapped_column(String(128))
    # The language picked with /language ("en", "ru"); NULL: the language of the user's Telegram app.
    language: Mapped[str | None] = mapped_column(String(8))

    user: Mapped[User] = relationship(back_populates="settings", lazy="raise")


class HistorySummary(Base):
    """The model's summary of a user's conversation up to ``covers_until`` (long histories).

    Answered messages at or before ``covers_until`` reach the model through this summary, later ones
    as they are. /reset deletes it with the history.
    """

    __tablename__ = "history_summaries"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    content: Mapped[str] = mapped_column(Text)
    covers_until: Mapped[datetime] = mapped_column()
    messages: Mapped[int] = mapped_column(Integer, server_default=text("0"))  # folded in, in all
    model: Mapped[str | None] = mapped_column(String(128))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(16, 10))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class UserBudget(Base):
    """An admin's per-user budget override; NULL limits mean "the default of the settings".

    Keyed by Telegram user id without a foreign key: a budget may be set before the user writes.
    """

    __tablename__ = "user_budgets"
    __table_args__ = (
        CheckConstraint(
            "tokens_per_day >= 0 AND tokens_per_month >= 0 AND usd_per_day >= 0 AND usd_per_month >= 0",
            name="limits_non_negative",
        ),
    )

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    tokens_per_day: Mapped[int | None] = mapped_column(BigInteger)
    tokens_per_month: Mapped[int | None] = mapped_column(BigInteger)
    usd_per_day: Mapped[Decimal | None] = mapped_column(Numeric(16, 6))
    usd_per_month: Mapped[Decimal | None] = mapped_column(Numeric(16, 6))
    exempt: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    updated_by: Mapped[str | None] = mapped_column(String(128))  # "telegram:<id>" or "api:<username>"
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class UsageCounter(Base):
    """What a user's turns consumed in one UTC day: the budgets' ledger.

    Written with the answer by the turn's own statement, and never decreased: /reset forgets the
    conversation, not what it cost. A month is the sum of its days (at most 31 rows per check).
    """

    __tablename__ = "usage_counters"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    tokens: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(16, 10), server_default=text("0"))
    turns: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class ApiUser(TimestampMixin, Base):
    """A dashboard account; operator-managed rows remember the ApiUser resource that owns them."""

    __tablename__ = "api_users"
    __table_args__ = (
        CheckConstraint("source <> 'operator' OR owner_uid IS NOT NULL", name="operator_rows_have_owner"),
        # Only an ApiUser resource grants admin: a self-registered account can never be one.
        CheckConstraint("role <> 'admin' OR source = 'operator'", name="admins_come_from_resources"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(72))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    source: Mapped[ApiUserSource] = mapped_column(_enum(ApiUserSource, "api_user_source"))
    role: Mapped[ApiUserRole] = mapped_column(
        _enum(ApiUserRole, "api_user_role"),
        default=ApiUserRole.ANALYST,
        server_default=ApiUserRole.ANALYST.value,
    )
    owner_namespace: Mapped[str | None] = mapped_column(String(253))
    owner_name: Mapped[str | None] = mapped_column(String(253))
    owner_uid: Mapped[str | None] = mapped_column(String(64))
    secret_fingerprint: Mapped[str | None] = mapped_column(String(128))


class BotInstance(Base):
    """A running bot process; its leases are free once it stops heartbeating."""

    __tablename__ = "bot_instances"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    hostname: Mapped[str] = mapped_column(String(253))
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    heartbeat_at: Mapped[datetime] = mapped_column(server_default=func.now())


class TelegramUpdate(Base):
    """An update id the bot has accepted, remembered for a day: Telegram re-delivers unconfirmed
    updates, and re-uses ids after a week without updates, so a seen id expires."""

    __tablename__ = "telegram_updates"
    __table_args__ = (Index("ix_telegram_updates_seen_at", "seen_at"),)

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seen_at: Mapped[datetime] = mapped_column(server_default=func.now())


class InboxMessage(Base):
    """A stored user message that no answer covers yet: the bot's durable queue of work.

    A row exists from the moment the message is accepted until its turn ends (answered, or told it
    could not be answered); a crashed process's rows are picked up by whichever process is alive.
    """

    __tablename__ = "bot_inbox"
    __table_args__ = (Index("ix_bot_inbox_user_id_received_at", "user_id", "received_at"),)

    message_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    chat_id: Mapped[int] = mapped_column(BigInteger)
    telegram_message_id: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Streaming previews already in the chat (edit mode), so a resumed turn reuses them.
    preview_message_ids: Mapped[list[int]] = mapped_column(
        ARRAY(BigInteger), server_default=text("'{}'::bigint[]")
    )


class OutboxReply(Base):
    """A reply stored before it is sent, with how many of its parts Telegram has accepted.

    A resumed turn sends only the parts not yet delivered, so an answer is never sent twice.
    """

    __tablename__ = "bot_outbox"
    __table_args__ = (
        Index("ix_bot_outbox_user_id_created_at", "user_id", "created_at"),
        CheckConstraint("parts_delivered >= 0 AND parts_delivered <= parts_total", name="parts_in_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, default=uuid.uuid4, server_default=func.gen_random_uuid()
    )
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("messages.id", ondelete="SET NULL")
    )
    chat_id: Mapped[int] = mapped_column(BigInteger)
    reply_to_message_id: Mapped[int | None] = mapped_column(BigInteger)
    content: Mapped[str] = mapped_column(Text)
    markdown: Mapped[bool] = mapped_column(Boolean)
    parts_total: Mapped[int] = mapped_column(Integer)
    parts_delivered: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    preview_message_ids: Mapped[list[int]] = mapped_column(
        ARRAY(BigInteger), server_default=text("'{}'::bigint[]")
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
