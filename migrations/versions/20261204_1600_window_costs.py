"""kept windows: each user's cost beside their message total, ranked for top spenders

Revision ID: 1600
Revises: 1500
Create Date: 2026-12-04 21:00:00

Top spenders are the users whose answers cost most in a window. Summing every user's hourly costs
over a month on each request reads every active user-hour; `stats_window_totals.cost` keeps each
user's cost in each kept window as `total` keeps their messages — added by the insert trigger,
taken out by the deletion triggers, moved with the window — and `ix_stats_window_totals_cost`
ranks them. The kept windows are emptied here and refill on the next stats request.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "1600"
down_revision: str | None = "1500"
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


FLAGS = _revision_module("20261204_1500_stops_and_retries.py", "stops_and_retries_1500")
ROLLING = FLAGS.BINS.PAUSES.ROLLING
REMOVALS = FLAGS.REMOVALS
replace_once: Callable[[str, str, str], str] = FLAGS.replace_once

# (old, new) pairs, each found exactly once in the function it changes.
APPLY = [
    ("      INSERT INTO stats_window_totals AS t (kind, user_id, total)\n"
     "      SELECT w.kind, m.user_id, sign FROM stats_windows w\n",
     "      INSERT INTO stats_window_totals AS t (kind, user_id, total, cost)\n"
     "      SELECT w.kind, m.user_id, sign, sign * cost FROM stats_windows w\n"),
    ("      ON CONFLICT (kind, user_id) DO UPDATE SET total = t.total + EXCLUDED.total\n",
     "      ON CONFLICT (kind, user_id) DO UPDATE\n"
     "        SET total = t.total + EXCLUDED.total, cost = t.cost + EXCLUDED.cost\n"),
]  # fmt: skip
REMOVAL = [
    ("    SELECT w.kind, a.user_id, sum(a.n) AS n FROM (",
     "    SELECT w.kind, a.user_id, sum(a.n) AS n, sum(a.cost) AS cost FROM ("),
    ("    INSERT INTO stats_window_totals AS t (kind, user_id, total)\n"
     "    SELECT kind, user_id, -n FROM removed ORDER BY 1, 2\n"
     "    ON CONFLICT (kind, user_id) DO UPDATE SET total = t.total + EXCLUDED.total\n",
     "    INSERT INTO stats_window_totals AS t (kind, user_id, total, cost)\n"
     "    SELECT kind, user_id, -n, -cost FROM removed ORDER BY 1, 2\n"
     "    ON CONFLICT (kind, user_id) DO UPDATE\n"
     "      SET total = t.total + EXCLUDED.total, cost = t.cost + EXCLUDED.cost\n"),
]  # fmt: skip
MOVE = [
    ("    INSERT INTO stats_window_totals (kind, user_id, total)\n"
     "    SELECT w_kind, user_id, sum(message_count) FROM stats_user_buckets\n",
     "    INSERT INTO stats_window_totals (kind, user_id, total, cost)\n"
     "    SELECT w_kind, user_id, sum(message_count), sum(cost_usd) FROM stats_user_buckets\n"),
    ("ELSE message_count END) AS d\n",
     "ELSE message_count END) AS d,\n"
     "             sum(CASE WHEN bucket < new_start THEN -cost_usd ELSE cost_usd END) AS dc\n"),
    ("      SELECT d.user_id, d.d, coalesce(t.total, 0) AS before FROM delta d\n",
     "      SELECT d.user_id, d.d, d.dc, coalesce(t.total, 0) AS before, coalesce(t.cost, 0) AS before_cost\n"
     "        FROM delta d\n"),
    ("       WHERE d.d <> 0),\n", "       WHERE d.d <> 0 OR d.dc <> 0),\n"),
    ("      INSERT INTO stats_window_totals AS t (kind, user_id, total)\n"
     "      SELECT w_kind, user_id, before + d FROM joined WHERE before + d > 0\n"
     "      ON CONFLICT (kind, user_id) DO UPDATE SET total = EXCLUDED.total),\n",
     "      INSERT INTO stats_window_totals AS t (kind, user_id, total, cost)\n"
     "      SELECT w_kind, user_id, before + d, before_cost + dc FROM joined WHERE before + d > 0\n"
     "      ON CONFLICT (kind, user_id) DO UPDATE SET total = EXCLUDED.total, cost = EXCLUDED.cost),\n"),
]  # fmt: skip


def _changed(body: str, pairs: list[tuple[str, str]]) -> str:
    for old, new in pairs:
        body = replace_once(body, old, new)
    return body


def _move_window() -> str:
    body: str = ROLLING.MOVE_WINDOW
    return body.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def _functions(*, with_costs: bool) -> list[str]:
    apply, _rebuild, soft_delete, delete = FLAGS._functions(with_flags=True)
    move = _move_window()
    if not with_costs:
        return [apply, soft_delete, delete, move]
    return [
        _changed(apply, APPLY),
        _changed(soft_delete, REMOVAL),
        _changed(delete, REMOVAL),
        _changed(move, MOVE),
    ]


RESET_WINDOWS = [
    "DELETE FROM stats_window_totals",
    "DELETE FROM stats_window_actives",
    "UPDATE stats_windows SET start_bucket = NULL, end_bucket = NULL",
]


def upgrade() -> None:
    op.add_column(
        "stats_window_totals", sa.Column("cost", sa.Numeric(), server_default=sa.text("0"), nullable=False)
    )
    # No user_id column: a probe by (kind, user_id) must find the primary key the better index (with
    # user_id third, the planner took this one for probes and scanned a whole window per user).
    op.create_index("ix_stats_window_totals_cost", "stats_window_totals", ["kind", sa.text("cost DESC")])
    for statement in _functions(with_costs=True) + RESET_WINDOWS:
        op.execute(statement)


def downgrade() -> None:
    for statement in _functions(with_costs=False) + RESET_WINDOWS:
        op.execute(statement)
    op.drop_index("ix_stats_window_totals_cost", table_name="stats_window_totals")
    op.drop_column("stats_window_totals", "cost")
