"""stats rollups: stopped and retried answers per model

Revision ID: 1500
Revises: 1400
Create Date: 2026-12-04 20:45:00

An answer the user stopped (`messages.stopped`) or asked again for (/retry marks it `replaced`)
says how an answer was received. `stats_model_buckets` counts both per model and bucket. The flags
are set after the answer is stored, so the update trigger now also fires when either changes.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "1500"
down_revision: str | None = "1400"
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


BINS = _revision_module("20261204_1400_latency_bins.py", "latency_bins_1400")
REMOVALS = BINS.PAUSES.REMOVALS
replace_once: Callable[[str, str, str], str] = BINS.replace_once

APPLY_ANCHOR = "            cost_count = t.cost_count + EXCLUDED.cost_count;\n    END IF;\n"
APPLY_FLAGS = """    IF m.role = 'assistant' AND m.model IS NOT NULL AND (m.stopped OR m.replaced) THEN
      UPDATE stats_model_buckets
         SET stopped_count = stopped_count + sign * m.stopped::int,
             replaced_count = replaced_count + sign * m.replaced::int
       WHERE granularity = g AND bucket = b AND model = m.model;
    END IF;
"""

# Per granularity, bucket and model: the stopped and the replaced answers of {rows}.
FLAGS = """(SELECT g.g, stats_bucket(g.g, r.created_at) AS bucket, r.model,
                 count(*) FILTER (WHERE r.stopped) AS stopped, count(*) FILTER (WHERE r.replaced) AS replaced
            FROM {rows} AS r CROSS JOIN (VALUES ('h'), ('d')) AS g(g)
           WHERE r.role = 'assistant' AND r.model IS NOT NULL AND (r.stopped OR r.replaced)
           GROUP BY 1, 2, 3)"""

REMOVAL_ANCHOR = "  RETURN NULL;\nEND\n"
REMOVAL_FLAGS = """  UPDATE stats_model_buckets AS t
     SET stopped_count = t.stopped_count - a.stopped, replaced_count = t.replaced_count - a.replaced
    FROM {flags} AS a
   WHERE t.granularity = a.g AND t.bucket = a.bucket AND t.model = a.model;
"""

LIVE_MESSAGES = "(SELECT * FROM messages WHERE deleted_at IS NULL)"
SET_FLAGS = f"""  UPDATE stats_model_buckets AS t SET stopped_count = a.stopped, replaced_count = a.replaced
    FROM {FLAGS.format(rows=LIVE_MESSAGES)} AS a
   WHERE t.granularity = a.g AND t.bucket = a.bucket AND t.model = a.model;
"""
REBUILD_ANCHOR = "  INSERT INTO stats_signups (bucket, users)\n"

UPDATE_COLUMNS = (*REMOVALS.ROLLUP_COLUMNS, "stopped", "replaced")


def _row(prefix: str) -> str:
    return "(" + ", ".join(f"{prefix}.{column}" for column in UPDATE_COLUMNS) + ")"


UPDATE_TRIGGER = (
    "CREATE TRIGGER stats_messages_update AFTER UPDATE ON messages FOR EACH ROW"
    f" WHEN (NEW.deleted_at IS NULL AND (OLD.deleted_at IS NOT NULL OR {_row('OLD')} IS DISTINCT FROM"
    f" {_row('NEW')})) EXECUTE FUNCTION stats_messages_trigger()"
)


def _removal_flags(removed: str) -> str:
    return REMOVAL_FLAGS.format(flags=FLAGS.format(rows=removed))


def _functions(*, with_flags: bool) -> list[str]:
    apply, rebuild, soft_delete, delete = BINS._functions(with_bins=True)
    if not with_flags:
        return [apply, rebuild, soft_delete, delete]
    removals = [
        replace_once(
            body, REMOVAL_ANCHOR, REMOVAL_FLAGS.format(flags=FLAGS.format(rows=removed)) + REMOVAL_ANCHOR
        )
        for body, removed in ((soft_delete, REMOVALS.SOFT_DELETED), (delete, REMOVALS.DELETED))
    ]
    return [
        replace_once(apply, APPLY_ANCHOR, APPLY_ANCHOR + APPLY_FLAGS),
        replace_once(rebuild, REBUILD_ANCHOR, SET_FLAGS + REBUILD_ANCHOR),
        *removals,
    ]


def upgrade() -> None:
    for column in ("stopped_count", "replaced_count"):
        op.add_column(
            "stats_model_buckets",
            sa.Column(column, sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        )
    for statement in _functions(with_flags=True):
        op.execute(statement)
    op.execute("DROP TRIGGER stats_messages_update ON messages")
    op.execute(UPDATE_TRIGGER)
    op.execute(SET_FLAGS)


def downgrade() -> None:
    op.execute("DROP TRIGGER stats_messages_update ON messages")
    op.execute(next(s for s in REMOVALS.UPGRADE if s.startswith("CREATE TRIGGER stats_messages_update")))
    for statement in _functions(with_flags=False):
        op.execute(statement)
    for column in ("stopped_count", "replaced_count"):
        op.drop_column("stats_model_buckets", column)
