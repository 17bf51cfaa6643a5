"""stats rollups: the longest pause inside each user-hour, so dialogs are found without reading them

Revision ID: 1300
Revises: 1200
Create Date: 2026-12-04 20:10:00

A recent dialog runs from the user's latest pause longer than STATS_DIALOG_GAP_MINUTES to their
latest message. Pauses between hours show in the hourly rows (one hour's `first_at` against the
hour before's `last_at`); pauses inside an hour did not, so every message from the window's start
on was read — a month of a heavy user who never paused for long. `stats_user_buckets.max_pause`
keeps the longest pause between consecutive live messages inside each hourly row (zero for one
message; daily rows leave it null): the latest pause is in the newest hour where either kind
exceeds the gap, and only that hour's messages are read to place it.

Storing a message in order extends the pause from the hour's last (or to its first) message; one
landing between two messages of the hour, and every removal, recomputes the hour's pauses from its
live messages (an hour of one user's messages).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "1300"
down_revision: str | None = "1200"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _revision_module(filename: str, name: str) -> Any:
    """An earlier revision's module (revisions are history: read, not copied)."""
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LookupError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ROLLING = _revision_module("20261203_1000_rolling_windows.py", "rolling_windows_1000")
REMOVALS = _revision_module("20261204_1100_set_based_removals.py", "set_based_removals_1100")
replace_once: Callable[[str, str, str], str] = ROLLING._replace_once

MAX_PAUSE = """
CREATE FUNCTION stats_max_pause(uid bigint, b timestamptz) RETURNS interval LANGUAGE sql STABLE AS $$
  SELECT coalesce(max(pause), interval '0') FROM (
    SELECT created_at - lag(created_at) OVER (ORDER BY created_at) AS pause FROM messages
     WHERE user_id = uid AND deleted_at IS NULL AND created_at >= b AND created_at < b + interval '1 hour'
  ) AS p
$$
"""


def _apply_before() -> str:
    """stats_apply as revision 1000 left it."""
    apply = ROLLING._costs_function("stats_apply")
    return replace_once(apply, ROLLING.OLD_WINDOW_BLOCK, ROLLING.NEW_WINDOW_BLOCK)


def _rebuild_before() -> str:
    """stats_rebuild as revision 1000 left it."""
    body = ROLLING._costs_function("stats_rebuild")
    body = replace_once(body, "stats_window_totals;", "stats_window_totals, stats_window_actives;")
    return replace_once(body, "SET start_bucket = NULL;", "SET start_bucket = NULL, end_bucket = NULL;")


APPLY_INSERT = (
    """      INSERT INTO stats_user_buckets AS t
        (granularity, user_id, bucket, message_count, length_sum, first_at, last_at, cost_usd)
      VALUES (g, m.user_id, b, 1, m.content_length, m.created_at, m.created_at, cost)
      ON CONFLICT (granularity, user_id, bucket) DO UPDATE
        SET message_count = t.message_count + 1,
            length_sum = t.length_sum + EXCLUDED.length_sum,
            first_at = least(t.first_at, EXCLUDED.first_at),
            last_at = greatest(t.last_at, EXCLUDED.last_at),
            cost_usd = t.cost_usd + EXCLUDED.cost_usd
""",
    """      INSERT INTO stats_user_buckets AS t
        (granularity, user_id, bucket, message_count, length_sum, first_at, last_at, cost_usd, max_pause)
      VALUES (g, m.user_id, b, 1, m.content_length, m.created_at, m.created_at, cost,
              CASE WHEN g = 'h' THEN interval '0' END)
      ON CONFLICT (granularity, user_id, bucket) DO UPDATE
        SET message_count = t.message_count + 1,
            length_sum = t.length_sum + EXCLUDED.length_sum,
            first_at = least(t.first_at, EXCLUDED.first_at),
            last_at = greatest(t.last_at, EXCLUDED.last_at),
            cost_usd = t.cost_usd + EXCLUDED.cost_usd,
            max_pause = CASE
              WHEN g <> 'h' THEN NULL
              WHEN EXCLUDED.first_at >= t.last_at THEN greatest(t.max_pause, EXCLUDED.first_at - t.last_at)
              WHEN EXCLUDED.first_at <= t.first_at THEN greatest(t.max_pause, t.first_at - EXCLUDED.first_at)
              ELSE stats_max_pause(m.user_id, b) END
""",
)

APPLY_REMOVE = (
    """           AND live.first_at IS NOT NULL;
      END IF;
""",
    """           AND live.first_at IS NOT NULL;
      END IF;
      IF remaining > 0 AND g = 'h' THEN
        UPDATE stats_user_buckets SET max_pause = stats_max_pause(m.user_id, b)
         WHERE granularity = 'h' AND user_id = m.user_id AND bucket = b;
      END IF;
""",
)

REMOVAL_ANCHOR = "AND (a.first_at = t.first_at OR a.last_at = t.last_at) AND live.first_at IS NOT NULL;\n"
REMOVAL_PAUSES = """
  UPDATE stats_user_buckets AS t SET max_pause = stats_max_pause(t.user_id, t.bucket)
    FROM (SELECT DISTINCT r.user_id, stats_bucket('h', r.created_at) AS bucket FROM {removed} AS r) AS a
   WHERE t.granularity = 'h' AND t.user_id = a.user_id AND t.bucket = a.bucket;
"""

REBUILD_INSERT = (
    """  INSERT INTO stats_user_buckets
    (granularity, user_id, bucket, message_count, length_sum, first_at, last_at, cost_usd)
  SELECT g.g, m.user_id, stats_bucket(g.g, m.created_at), count(*), sum(m.content_length),
         min(m.created_at), max(m.created_at), coalesce(sum(m.cost_usd), 0)
    FROM messages m CROSS JOIN (VALUES ('h'), ('d')) AS g(g)
   WHERE m.deleted_at IS NULL
   GROUP BY 1, 2, 3;
""",
    """  INSERT INTO stats_user_buckets
    (granularity, user_id, bucket, message_count, length_sum, first_at, last_at, cost_usd, max_pause)
  SELECT g.g, m.user_id, stats_bucket(g.g, m.created_at), count(*), sum(m.content_length),
         min(m.created_at), max(m.created_at), coalesce(sum(m.cost_usd), 0),
         CASE WHEN g.g = 'h' THEN coalesce(max(m.pause), interval '0') END
    FROM (SELECT user_id, created_at, content_length, cost_usd,
                 created_at - lag(created_at) OVER (PARTITION BY user_id, stats_bucket('h', created_at)
                                                    ORDER BY created_at) AS pause
            FROM messages WHERE deleted_at IS NULL) AS m
   CROSS JOIN (VALUES ('h'), ('d')) AS g(g)
   GROUP BY 1, 2, 3;
""",
)

BACKFILL = """
UPDATE stats_user_buckets AS t SET max_pause = coalesce(p.max_pause, interval '0')
  FROM (SELECT user_id, stats_bucket('h', created_at) AS bucket, max(pause) AS max_pause
          FROM (SELECT user_id, created_at,
                       created_at - lag(created_at) OVER (PARTITION BY user_id, stats_bucket('h', created_at)
                                                          ORDER BY created_at) AS pause
                  FROM messages WHERE deleted_at IS NULL) AS m
         GROUP BY 1, 2) AS p
 WHERE t.granularity = 'h' AND t.user_id = p.user_id AND t.bucket = p.bucket
"""


def _removal_function(name: str, removed: str, *, with_pauses: bool) -> str:
    body = REMOVALS._removal_body(removed)
    if with_pauses:
        body = replace_once(body, REMOVAL_ANCHOR, REMOVAL_ANCHOR + REMOVAL_PAUSES.format(removed=removed))
    return f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${body}$$"


def _functions(*, with_pauses: bool) -> list[str]:
    apply, rebuild = _apply_before(), _rebuild_before()
    if with_pauses:
        apply = replace_once(replace_once(apply, *APPLY_INSERT), *APPLY_REMOVE)
        rebuild = replace_once(rebuild, *REBUILD_INSERT)
    return [
        apply,
        rebuild,
        _removal_function("stats_soft_delete_trigger", REMOVALS.SOFT_DELETED, with_pauses=with_pauses),
        _removal_function("stats_delete_trigger", REMOVALS.DELETED, with_pauses=with_pauses),
    ]


def upgrade() -> None:
    op.add_column("stats_user_buckets", sa.Column("max_pause", sa.Interval(), nullable=True))
    op.execute(MAX_PAUSE)
    for statement in _functions(with_pauses=True):
        op.execute(statement)
    op.execute(BACKFILL)


def downgrade() -> None:
    for statement in _functions(with_pauses=False):
        op.execute(statement)
    op.execute("DROP FUNCTION stats_max_pause(bigint, timestamptz)")
    op.drop_column("stats_user_buckets", "max_pause")
