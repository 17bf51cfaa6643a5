"""stats rollup of retention: users of each first day still active N days later

Revision ID: 1200
Revises: 1100
Create Date: 2026-12-04 20:00:00

`stats_retention` counts, per cohort day (the UTC day of `users.created_at`) and day offset 1..30,
the cohort's users with live messages on that later day. A user's day appears and disappears with
their daily `stats_user_buckets` row, so statement triggers on that table keep the counts (inserts
and deletes, set-based: `stats_rebuild()` refills it in one statement; a truncate empties it). A
user's cohort can change (`created_at` updated) or go (user deleted): row triggers on `users` take
out the user's days under the old cohort first — before the delete, since its cascade removes the
days after the user row is gone — and add them under the new one.

Retention D1/D7/D30 by signup week then reads at most 8 x 7 x 3 rows of it and the hourly sign-ups.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1200"
down_revision: str | None = "1100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_OFFSET = 30  # the longest retention day kept

# The day offset of a daily bucket from a user's first day.
OFFSET = "(extract(epoch FROM {bucket} - stats_bucket('d', {created})) / 86400)::int"

FUNCTIONS = [
    f"""
CREATE FUNCTION stats_retention_days_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    DELETE FROM stats_retention;
    RETURN NULL;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM retention_days WHERE granularity = 'd') THEN
    RETURN NULL;
  END IF;
  INSERT INTO stats_retention AS t (cohort, day_offset, users)
  SELECT cohort, day_offset, sum(delta) FROM (
    SELECT stats_bucket('d', u.created_at) AS cohort,
           {OFFSET.format(bucket="b.bucket", created="u.created_at")} AS day_offset,
           CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END AS delta
      FROM retention_days b JOIN users u ON u.id = b.user_id
     WHERE b.granularity = 'd') AS c
   WHERE day_offset BETWEEN 1 AND {MAX_OFFSET}
   GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (cohort, day_offset) DO UPDATE SET users = t.users + EXCLUDED.users;
  RETURN NULL;
END
$$""",
    f"""
CREATE FUNCTION stats_retention_user(uid bigint, created timestamptz, delta int) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO stats_retention AS t (cohort, day_offset, users)
  SELECT stats_bucket('d', created), day_offset, delta * count(*) FROM (
    SELECT {OFFSET.format(bucket="bucket", created="created")} AS day_offset
      FROM stats_user_buckets WHERE granularity = 'd' AND user_id = uid) AS b
   WHERE day_offset BETWEEN 1 AND {MAX_OFFSET}
   GROUP BY day_offset ORDER BY day_offset
  ON CONFLICT (cohort, day_offset) DO UPDATE SET users = t.users + EXCLUDED.users
$$""",
    """
CREATE FUNCTION stats_users_retention_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM stats_retention_user(OLD.id, OLD.created_at, -1);
  IF TG_OP = 'UPDATE' THEN
    PERFORM stats_retention_user(NEW.id, NEW.created_at, 1);
    RETURN NEW;
  END IF;
  RETURN OLD;
END
$$""",
]

TRIGGERS = [
    "CREATE TRIGGER stats_retention_days_insert AFTER INSERT ON stats_user_buckets"
    " REFERENCING NEW TABLE AS retention_days FOR EACH STATEMENT"
    " EXECUTE FUNCTION stats_retention_days_trigger()",
    "CREATE TRIGGER stats_retention_days_delete AFTER DELETE ON stats_user_buckets"
    " REFERENCING OLD TABLE AS retention_days FOR EACH STATEMENT"
    " EXECUTE FUNCTION stats_retention_days_trigger()",
    "CREATE TRIGGER stats_retention_days_truncate AFTER TRUNCATE ON stats_user_buckets"
    " FOR EACH STATEMENT EXECUTE FUNCTION stats_retention_days_trigger()",
    # Before the delete: its cascade removes the user's days once the user row is gone.
    "CREATE TRIGGER stats_users_retention_delete BEFORE DELETE ON users"
    " FOR EACH ROW EXECUTE FUNCTION stats_users_retention_trigger()",
    "CREATE TRIGGER stats_users_retention_update AFTER UPDATE OF created_at ON users FOR EACH ROW"
    " WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at) EXECUTE FUNCTION stats_users_retention_trigger()",
]

BACKFILL = f"""
INSERT INTO stats_retention (cohort, day_offset, users)
SELECT cohort, day_offset, count(*) FROM (
  SELECT stats_bucket('d', u.created_at) AS cohort,
         {OFFSET.format(bucket="b.bucket", created="u.created_at")} AS day_offset
    FROM stats_user_buckets b JOIN users u ON u.id = b.user_id
   WHERE b.granularity = 'd') AS c
 WHERE day_offset BETWEEN 1 AND {MAX_OFFSET}
 GROUP BY 1, 2
"""


def upgrade() -> None:
    op.create_table(
        "stats_retention",
        sa.Column("cohort", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day_offset", sa.SmallInteger(), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("cohort", "day_offset", name=op.f("pk_stats_retention")),
    )
    for statement in FUNCTIONS + TRIGGERS:
        op.execute(statement)
    op.execute(BACKFILL)


def downgrade() -> None:
    for name, table in [
        ("stats_users_retention_update", "users"),
        ("stats_users_retention_delete", "users"),
        ("stats_retention_days_truncate", "stats_user_buckets"),
        ("stats_retention_days_delete", "stats_user_buckets"),
        ("stats_retention_days_insert", "stats_user_buckets"),
    ]:
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.execute("DROP FUNCTION stats_users_retention_trigger()")
    op.execute("DROP FUNCTION stats_retention_user(bigint, timestamptz, int)")
    op.execute("DROP FUNCTION stats_retention_days_trigger()")
    op.drop_table("stats_retention")
