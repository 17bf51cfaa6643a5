"""what a user's photo, document or voice message was

Revision ID: 0800
Revises: 0700
Create Date: 2026-12-03 12:00:00

`messages.attachment` is the Telegram file a user's message carried — its kind (photo, document,
voice), the `file_id` to fetch it with `getFile`, and what Telegram said of it (size, type, name,
dimensions, duration) — never the file itself. NULL for text. Expand-only: a nullable column, added
without rewriting the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0800"
down_revision: str | None = "0700"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("attachment", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "attachment")
