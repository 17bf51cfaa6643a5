"""per-user budgets and their ledger; each user's model choice; admin accounts of the API

Revision ID: 0500
Revises: 0400
Create Date: 2026-12-02 13:00:00

`usage_counters` is the budgets' ledger: tokens and US dollars a user's turns consumed per UTC
day, added by the statement that stores the turn's answer and never decreased (/reset forgets a
conversation, not what it cost). `user_budgets` holds an admin's per-user override of the default
limits (NULL: the default) and exemptions. `user_settings.model` is the user's /model choice.
`api_users.role` tells analysts from admins, who may also read and set budgets through the API.
Expand-only: two new tables, a nullable column and a column with a constant default.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0500"
down_revision: str | None = "0400"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user_settings", sa.Column("model", sa.String(length=128), nullable=True))
    op.add_column(
        "api_users",
        sa.Column(
            "role",
            sa.Enum(
                "analyst", "admin", name="api_user_role", native_enum=False, create_constraint=True, length=16
            ),
            server_default="analyst",
            nullable=False,
        ),
    )
    op.create_check_constraint(
        op.f("ck_api_users_admins_come_from_resources"), "api_users", "role <> 'admin' OR source = 'operator'"
    )
    op.create_table(
        "user_budgets",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("tokens_per_day", sa.BigInteger(), nullable=True),
        sa.Column("tokens_per_month", sa.BigInteger(), nullable=True),
        sa.Column("usd_per_day", sa.Numeric(16, 6), nullable=True),
        sa.Column("usd_per_month", sa.Numeric(16, 6), nullable=True),
        sa.Column("exempt", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "tokens_per_day >= 0 AND tokens_per_month >= 0 AND usd_per_day >= 0 AND usd_per_month >= 0",
            name=op.f("ck_user_budgets_limits_non_negative"),
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_budgets")),
    )
    op.create_table(
        "usage_counters",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("cost_usd", sa.Numeric(16, 10), server_default=sa.text("0"), nullable=False),
        sa.Column("turns", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day", name=op.f("pk_usage_counters")),
    )


def downgrade() -> None:
    op.drop_table("usage_counters")
    op.drop_table("user_budgets")
    op.drop_constraint(op.f("ck_api_users_admins_come_from_resources"), "api_users", type_="check")
    op.drop_constraint(op.f("ck_api_users_api_user_role"), "api_users", type_="check")
    op.drop_column("api_users", "role")
    op.drop_column("user_settings", "model")
