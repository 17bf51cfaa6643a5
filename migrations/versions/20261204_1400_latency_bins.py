"""stats rollup of LLM latency: answers per model, hour (and day) and latency bin, for percentiles

Revision ID: 1400
Revises: 1300
Create Date: 2026-12-04 20:30:00

Latency percentiles (p50, p95, p99 per model) cannot be summed from per-hour figures, and sorting
a month of answers on every request is not an option at millions of answers. `stats_latency_bins`
counts each model's answers per UTC hour and per UTC day (a month reads 30 days of bins, not 720
hours) by latency bin: bin 0 holds latencies under 10 ms, bin k >= 1
those in [10 x 1.1^(k-1), 10 x 1.1^k) ms, so a percentile read from the bins is known to within
10 % (the bin holding it), whatever the number of answers. Kept like the other rollups: the
insert trigger adds an answer's bin, the statement triggers of deletions take removed answers out,
`stats_rebuild()` recomputes it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "1400"
down_revision: str | None = "1300"
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


PAUSES = _revision_module("20261204_1300_dialog_pauses.py", "dialog_pauses_1300")
replace_once: Callable[[str, str, str], str] = PAUSES.replace_once

LATENCY_BIN = """
CREATE FUNCTION stats_latency_bin(ms int) RETURNS smallint LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN ms < 10 THEN 0 ELSE 1 + floor(ln(ms / 10.0) / ln(1.1))::int END::smallint
$$
"""

APPLY_ANCHOR = "    IF m.role = 'assistant' AND m.model IS NOT NULL THEN\n"
APPLY_BINS = """    IF m.role = 'assistant' AND m.model IS NOT NULL AND m.latency_ms IS NOT NULL THEN
      INSERT INTO stats_latency_bins AS t (granularity, bucket, model, bin, answers)
      VALUES (g, b, m.model, stats_latency_bin(m.latency_ms), sign)
      ON CONFLICT (granularity, bucket, model, bin) DO UPDATE SET answers = t.answers + EXCLUDED.answers;
    END IF;
"""

REMOVAL_ANCHOR = "  RETURN NULL;\nEND\n"
REMOVAL_BINS = """  INSERT INTO stats_latency_bins AS t (granularity, bucket, model, bin, answers)
  SELECT g.g, stats_bucket(g.g, r.created_at), r.model, stats_latency_bin(r.latency_ms), -count(*)
    FROM {removed} AS r CROSS JOIN (VALUES ('h'), ('d')) AS g(g)
   WHERE r.role = 'assistant' AND r.model IS NOT NULL AND r.latency_ms IS NOT NULL
   GROUP BY 1, 2, 3, 4 ORDER BY 1 DESC, 2, 3, 4
  ON CONFLICT (granularity, bucket, model, bin) DO UPDATE SET answers = t.answers + EXCLUDED.answers;
"""

REBUILD_ANCHOR = "  INSERT INTO stats_signups (bucket, users)\n"
REBUILD_BINS = """  TRUNCATE stats_latency_bins;
  INSERT INTO stats_latency_bins (granularity, bucket, model, bin, answers)
  SELECT g.g, stats_bucket(g.g, m.created_at), m.model, stats_latency_bin(m.latency_ms), count(*)
    FROM messages m CROSS JOIN (VALUES ('h'), ('d')) AS g(g)
   WHERE m.deleted_at IS NULL AND m.role = 'assistant' AND m.model IS NOT NULL AND m.latency_ms IS NOT NULL
   GROUP BY 1, 2, 3, 4;
"""


def _functions(*, with_bins: bool) -> list[str]:
    apply, rebuild, soft_delete, delete = PAUSES._functions(with_pauses=True)
    if not with_bins:
        return [apply, rebuild, soft_delete, delete]
    removals = [
        replace_once(body, REMOVAL_ANCHOR, REMOVAL_BINS.format(removed=removed) + REMOVAL_ANCHOR)
        for body, removed in ((soft_delete, PAUSES.REMOVALS.SOFT_DELETED), (delete, PAUSES.REMOVALS.DELETED))
    ]
    return [
        replace_once(apply, APPLY_ANCHOR, APPLY_BINS + APPLY_ANCHOR),
        replace_once(rebuild, REBUILD_ANCHOR, REBUILD_BINS + REBUILD_ANCHOR),
        *removals,
    ]


def upgrade() -> None:
    op.create_table(
        "stats_latency_bins",
        sa.Column("granularity", sa.String(length=1), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("bin", sa.SmallInteger(), nullable=False),
        sa.Column("answers", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("granularity", "bucket", "model", "bin", name=op.f("pk_stats_latency_bins")),
    )
    op.execute(LATENCY_BIN)
    for statement in _functions(with_bins=True):
        op.execute(statement)
    op.execute(REBUILD_BINS.replace("  TRUNCATE stats_latency_bins;\n", ""))


def downgrade() -> None:
    for statement in _functions(with_bins=False):
        op.execute(statement)
    op.drop_table("stats_latency_bins")
    op.execute("DROP FUNCTION stats_latency_bin(int)")
