"""answers a user stopped, and answers /retry replaced

Revision ID: 0600
Revises: 0500
Create Date: 2026-12-02 19:00:00

`messages.stopped` marks an answer the user stopped while it was being written: what the model had
written by then is kept (and stays in the history). `messages.replaced` marks an answer that /retry
regenerated: it stays for the stats and the cost, and the history the model reads leaves it out.
Expand-only: two columns with a constant default, added without rewriting the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0600"
down_revision: str | None = "0500"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "messages", sa.Column("stopped", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.add_column(
        "messages", sa.Column("replaced", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )


def downgrade() -> None:
    op.drop_column("messages", "replaced")
    op.drop_column("messages", "stopped")
