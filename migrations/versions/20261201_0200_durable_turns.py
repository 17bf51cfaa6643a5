"""bot: durable turns — inbox, outbox, process heartbeats, update ids remembered for a day

Revision ID: 0200
Revises: 0100
Create Date: 2026-12-01 09:00:00

A user's message is stored (`bot_inbox`) before Telegram is told it arrived, and an answer is
stored (`bot_outbox`) before it is sent, with the parts Telegram accepted counted, so a crash,
a kill or a database outage neither loses a message nor sends an answer twice. A turn lease now
names a bot process (`bot_instances`), which heartbeats: a dead process's leases are free at once
for its successor instead of blocking users until a timeout. `telegram_updates` replaces the
unique `messages.telegram_update_id`: Telegram re-uses update ids after a week without updates,
so an id is a duplicate only within a day.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0200"
down_revision: str | None = "0100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EMPTY_IDS = sa.text("'{}'::bigint[]")


def upgrade() -> None:
    op.create_table(
        "bot_instances",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("hostname", sa.String(length=253), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column(
            "heartbeat_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_instances")),
    )
    op.create_table(
        "telegram_updates",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_telegram_updates")),
    )
    op.create_index("ix_telegram_updates_seen_at", "telegram_updates", ["seen_at"])
    op.create_table(
        "bot_inbox",
        sa.Column("message_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column(
            "preview_message_ids",
            postgresql.ARRAY(sa.BigInteger()),
            server_default=_EMPTY_IDS,
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_bot_inbox_message_id_messages"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_bot_inbox_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_bot_inbox")),
    )
    op.create_index("ix_bot_inbox_user_id_received_at", "bot_inbox", ["user_id", "received_at"])
    op.create_table(
        "bot_outbox",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.UUID(), nullable=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("reply_to_message_id", sa.BigInteger(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("markdown", sa.Boolean(), nullable=False),
        sa.Column("parts_total", sa.Integer(), nullable=False),
        sa.Column("parts_delivered", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "preview_message_ids",
            postgresql.ARRAY(sa.BigInteger()),
            server_default=_EMPTY_IDS,
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "parts_delivered >= 0 AND parts_delivered <= parts_total",
            name=op.f("ck_bot_outbox_parts_in_range"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_bot_outbox_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_bot_outbox_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_outbox")),
    )
    op.create_index("ix_bot_outbox_user_id_created_at", "bot_outbox", ["user_id", "created_at"])
    # Update ids seen so far stay duplicates for a day from now.
    op.execute(
        "INSERT INTO telegram_updates (update_id) SELECT DISTINCT telegram_update_id FROM messages "
        "WHERE telegram_update_id IS NOT NULL AND created_at > now() - interval '1 day'"
    )
    op.drop_index(
        "ix_messages_telegram_update_id",
        table_name="messages",
        postgresql_where=sa.text("telegram_update_id IS NOT NULL"),
    )
    # Leases named a turn and expired by time; they now name a process. Old ones are void.
    op.execute("UPDATE users SET lease_holder = NULL WHERE lease_holder IS NOT NULL")
    op.drop_column("users", "lease_expires_at")


def downgrade() -> None:
    op.add_column("users", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE users SET lease_holder = NULL WHERE lease_holder IS NOT NULL")
    # Re-used update ids may now repeat; keep the newest message of each for the unique index.
    op.execute(
        "UPDATE messages m SET telegram_update_id = NULL WHERE telegram_update_id IS NOT NULL AND EXISTS "
        "(SELECT 1 FROM messages n WHERE n.telegram_update_id = m.telegram_update_id "
        "AND (n.created_at, n.id) > (m.created_at, m.id))"
    )
    op.create_index(
        "ix_messages_telegram_update_id",
        "messages",
        ["telegram_update_id"],
        unique=True,
        postgresql_where=sa.text("telegram_update_id IS NOT NULL"),
    )
    op.drop_index("ix_bot_outbox_user_id_created_at", table_name="bot_outbox")
    op.drop_table("bot_outbox")
    op.drop_index("ix_bot_inbox_user_id_received_at", table_name="bot_inbox")
    op.drop_table("bot_inbox")
    op.drop_index("ix_telegram_updates_seen_at", table_name="telegram_updates")
    op.drop_table("telegram_updates")
    op.drop_table("bot_instances")
