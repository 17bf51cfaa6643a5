"""bot: per-user turn lease and the Telegram update id of stored user messages

Revision ID: 0100
Revises: 0002
Create Date: 2026-11-26 06:30:00

`users.lease_holder` / `users.lease_expires_at` serialize one user's messages across bot replicas
without holding a database connection across the LLM call. `messages.telegram_update_id` (unique
when set) recognises an update Telegram delivers twice, even after a restart.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0100"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("lease_holder", sa.UUID(), nullable=True))
    op.add_column("users", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("messages", sa.Column("telegram_update_id", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_messages_telegram_update_id",
        "messages",
        ["telegram_update_id"],
        unique=True,
        postgresql_where=sa.text("telegram_update_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_messages_telegram_update_id",
        table_name="messages",
        postgresql_where=sa.text("telegram_update_id IS NOT NULL"),
    )
    op.drop_column("messages", "telegram_update_id")
    op.drop_column("users", "lease_expires_at")
    op.drop_column("users", "lease_holder")
