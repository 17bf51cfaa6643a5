"""rolling stats windows: kept totals over closed ranges, and active users counted as they change

Revision ID: 1000
Revises: 0900
Create Date: 2026-12-03 18:30:00

The stats API answers the last 24 h / 7 x 24 h / 30 x 24 h ending now (rolling) as well as UTC-day
windows (calendar). A rolling window starts mid-hour: its hours from the next full hour on are kept
per user like the calendar windows (`r_day`, `r_week`, `r_month`, open-ended), and the window of
equal length before it is kept over a closed range of hours (`p_day`, `p_week`, `p_month`,
`end_bucket`); the minutes before the first full hour are read from `messages`.

`stats_window_actives` counts, per kept window, the users whose kept total is above zero, in 16
shards by user id so that writers rarely meet on one row: distinct users of any window in a sum of
16 rows instead of a count over every active user. Writers change a shard only when a user's total
crosses zero; `stats_move_window` moves a window's start and end and corrects both tables.

`users.created_at` gets an index: the users created up to a rolling window's end read the minutes
after the last full hour.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "1000"
down_revision: str | None = "0900"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WINDOW_LOCK = 7_311_401  # the advisory lock key of the rollups (revision 0002)
SHARDS = 16

ROLLING_KINDS = [("r_day", 24), ("r_week", 168), ("r_month", 720)]
PREVIOUS_KINDS = [("p_day", 24), ("p_week", 168), ("p_month", 720)]


def _revision_module(filename: str, name: str) -> object:
    """An earlier revision's module (revisions are history: read, not copied)."""
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LookupError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _costs_function(name: str) -> str:
    """Revision 0400's CREATE OR REPLACE of ``name`` (stats_apply or stats_rebuild)."""
    module = _revision_module("20261202_0400_answer_costs.py", "answer_costs_0400")
    body: str = getattr(module, name.upper())
    return body


def _replace_once(body: str, old: str, new: str) -> str:
    if body.count(old) != 1:
        raise LookupError(f"expected once in the earlier function: {old[:60]!r}")
    return body.replace(old, new)


OLD_WINDOW_BLOCK = f"""    PERFORM pg_advisory_xact_lock_shared({WINDOW_LOCK});
    INSERT INTO stats_window_totals AS t (kind, user_id, total)
    SELECT w.kind, m.user_id, sign FROM stats_windows w
     WHERE w.granularity = g AND w.start_bucket IS NOT NULL AND b >= w.start_bucket
    ON CONFLICT (kind, user_id) DO UPDATE SET total = t.total + EXCLUDED.total;
"""

# A window holds bucket b when b is in [start_bucket, end_bucket), no end meaning open; a user whose
# total became 1 (added) or 0 (removed) enters or leaves the window's active users.
NEW_WINDOW_BLOCK = f"""    PERFORM pg_advisory_xact_lock_shared({WINDOW_LOCK});
    WITH changed AS (
      INSERT INTO stats_window_totals AS t (kind, user_id, total)
      SELECT w.kind, m.user_id, sign FROM stats_windows w
       WHERE w.granularity = g AND w.start_bucket IS NOT NULL AND b >= w.start_bucket
         AND (w.end_bucket IS NULL OR b < w.end_bucket)
       ORDER BY w.kind
      ON CONFLICT (kind, user_id) DO UPDATE SET total = t.total + EXCLUDED.total
      RETURNING t.kind, t.total)
    INSERT INTO stats_window_actives AS a (kind, shard, users)
    SELECT kind, m.user_id % {SHARDS}, sign FROM changed WHERE total = greatest(sign, 0)
     ORDER BY kind
    ON CONFLICT (kind, shard) DO UPDATE SET users = a.users + EXCLUDED.users;
"""

MOVE_WINDOW = f"""
CREATE FUNCTION stats_move_window(w_kind text, new_start timestamptz, new_end timestamptz)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  w stats_windows;
BEGIN
  SELECT * INTO w FROM stats_windows WHERE kind = w_kind;
  IF w.start_bucket = new_start AND w.end_bucket IS NOT DISTINCT FROM new_end THEN
    RETURN true;
  ELSIF w.start_bucket > new_start THEN
    RETURN false;  -- an older window than the kept one: the caller aggregates directly
  END IF;
  PERFORM pg_advisory_xact_lock({WINDOW_LOCK});
  SELECT * INTO w FROM stats_windows WHERE kind = w_kind FOR UPDATE;
  IF w.start_bucket = new_start AND w.end_bucket IS NOT DISTINCT FROM new_end THEN
    RETURN true;
  ELSIF w.start_bucket > new_start THEN
    RETURN false;
  ELSIF w.start_bucket IS NULL OR new_start - w.start_bucket >= w.buckets * stats_unit(w.granularity)
        OR (w.end_bucket IS NULL) <> (new_end IS NULL) OR new_end < w.end_bucket THEN
    DELETE FROM stats_window_totals WHERE kind = w_kind;
    DELETE FROM stats_window_actives WHERE kind = w_kind;
    INSERT INTO stats_window_totals (kind, user_id, total)
    SELECT w_kind, user_id, sum(message_count) FROM stats_user_buckets
     WHERE granularity = w.granularity AND bucket >= new_start AND (new_end IS NULL OR bucket < new_end)
     GROUP BY user_id;
    INSERT INTO stats_window_actives (kind, shard, users)
    SELECT w_kind, user_id % {SHARDS}, count(*) FROM stats_window_totals
     WHERE kind = w_kind AND total > 0 GROUP BY 2;
  ELSE
    -- Buckets leaving at the start count negative, buckets entering at the end positive.
    WITH delta AS (
      SELECT user_id, sum(CASE WHEN bucket < new_start THEN -message_count ELSE message_count END) AS d
        FROM stats_user_buckets
       WHERE granularity = w.granularity
         AND ((bucket >= w.start_bucket AND bucket < new_start)
              OR (new_end IS NOT NULL AND bucket >= w.end_bucket AND bucket < new_end))
       GROUP BY user_id),
    joined AS (
      SELECT d.user_id, d.d, coalesce(t.total, 0) AS before FROM delta d
        LEFT JOIN stats_window_totals t ON t.kind = w_kind AND t.user_id = d.user_id
       WHERE d.d <> 0),
    kept AS (
      INSERT INTO stats_window_totals AS t (kind, user_id, total)
      SELECT w_kind, user_id, before + d FROM joined WHERE before + d > 0
      ON CONFLICT (kind, user_id) DO UPDATE SET total = EXCLUDED.total),
    dropped AS (
      DELETE FROM stats_window_totals t USING joined j
       WHERE t.kind = w_kind AND t.user_id = j.user_id AND j.before + j.d <= 0)
    INSERT INTO stats_window_actives AS a (kind, shard, users)
    SELECT w_kind, user_id % {SHARDS}, sum(CASE WHEN before <= 0 THEN 1 ELSE -1 END) FROM joined
     WHERE (before <= 0) <> (before + d <= 0) GROUP BY 2
    ON CONFLICT (kind, shard) DO UPDATE SET users = a.users + EXCLUDED.users;
  END IF;
  UPDATE stats_windows SET start_bucket = new_start, end_bucket = new_end WHERE kind = w_kind;
  RETURN true;
END
$$
"""

# The calendar windows keep their function, now moving an open-ended window.
ADVANCE_WINDOW = """
CREATE OR REPLACE FUNCTION stats_advance_window(w_kind text, new_start timestamptz) RETURNS boolean
LANGUAGE sql AS $$ SELECT stats_move_window(w_kind, new_start, NULL) $$
"""


def upgrade() -> None:
    op.add_column("stats_windows", sa.Column("end_bucket", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "stats_window_actives",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("users", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "shard", name=op.f("pk_stats_window_actives")),
    )
    op.create_index("ix_users_created_at", "users", ["created_at"])
    values = ", ".join(f"('{kind}', 'h', {buckets})" for kind, buckets in ROLLING_KINDS + PREVIOUS_KINDS)
    op.execute(f"INSERT INTO stats_windows (kind, granularity, buckets) VALUES {values}")
    op.execute(
        "INSERT INTO stats_window_actives (kind, shard, users) "
        f"SELECT kind, user_id % {SHARDS}, count(*) FROM stats_window_totals WHERE total > 0 GROUP BY 1, 2"
    )
    op.execute(MOVE_WINDOW)
    op.execute(ADVANCE_WINDOW)
    op.execute(_replace_once(_costs_function("stats_apply"), OLD_WINDOW_BLOCK, NEW_WINDOW_BLOCK))
    op.execute(
        _replace_once(
            _replace_once(
                _costs_function("stats_rebuild"),
                "stats_window_totals;",
                "stats_window_totals, stats_window_actives;",
            ),
            "SET start_bucket = NULL;",
            "SET start_bucket = NULL, end_bucket = NULL;",
        )
    )


def downgrade() -> None:
    op.execute(_costs_function("stats_apply"))
    op.execute(_costs_function("stats_rebuild"))
    module = _revision_module("20261126_0002_stats_rollups.py", "stats_rollups_0002")
    functions: str = getattr(module, "FUNCTIONS")  # noqa: B009
    advance = next(s for s in functions.split("\n--;\n") if "CREATE FUNCTION stats_advance_window(" in s)
    op.execute("DROP FUNCTION stats_advance_window(text, timestamptz)")
    op.execute(advance)
    op.execute("DROP FUNCTION stats_move_window(text, timestamptz, timestamptz)")
    kinds = ", ".join(f"'{kind}'" for kind, _ in ROLLING_KINDS + PREVIOUS_KINDS)
    op.execute(f"DELETE FROM stats_window_totals WHERE kind IN ({kinds})")
    op.execute(f"DELETE FROM stats_windows WHERE kind IN ({kinds})")
    op.drop_index("ix_users_created_at", table_name="users")
    op.drop_table("stats_window_actives")
    op.drop_column("stats_windows", "end_bucket")
