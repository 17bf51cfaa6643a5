"""bot: remember which stored questions got no answer

Revision ID: 0300
Revises: 0200
Create Date: 2026-12-01 15:00:00

A turn can end without an answer (the models were unavailable, the message waited too long and
the user was asked to send it again). Its questions stay stored — the stats count them — but the
model must not see them in later turns. Several questions answered together (a burst, a paste
Telegram split) look the same by roles alone: user, user, assistant. So the unanswered ones are
marked. Expand-only: a boolean with a constant default is added without rewriting the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0300"
down_revision: str | None = "0200"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "messages", sa.Column("unanswered", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )


def downgrade() -> None:
    op.drop_column("messages", "unanswered")
