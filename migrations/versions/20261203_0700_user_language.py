"""the language a user picked with /language

Revision ID: 0700
Revises: 0600
Create Date: 2026-12-03 08:00:00

`user_settings.language` is the language the bot speaks to the user when they chose one with
/language ("en", "ru"); NULL follows the language of their Telegram app. Expand-only: a nullable
column, added without rewriting the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0700"
down_revision: str | None = "0600"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user_settings", sa.Column("language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    op.drop_column("user_settings", "language")
