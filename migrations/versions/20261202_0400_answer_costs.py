"""answers record their cost; the stats rollups sum it per model and per user

Revision ID: 0400
Revises: 0300
Create Date: 2026-12-02 06:00:00

Each stored answer records what it cost in US dollars (`messages.cost_usd`): the gateway's own
figure when it reports one, otherwise the bot's price table; NULL when neither knows. The rollups
keep the sum per model and bucket (with how many answers had a cost, so a partly priced period
can say so) and per user and bucket. Expand-only: nullable columns and columns with a constant
default are added without rewriting a table; stats_apply and stats_rebuild are replaced in place
(the downgrade restores the previous bodies). Earlier answers have no cost: nothing to backfill.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0400"
down_revision: str | None = "0300"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WINDOW_LOCK = 7_311_401  # the advisory lock key of the rollups (revision 0002)

STATS_APPLY = f"""
CREATE OR REPLACE FUNCTION stats_apply(m messages, sign int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  g text;
  b timestamptz;
  created boolean;
  remaining int;
  old_first timestamptz;
  old_last timestamptz;
  cost numeric := coalesce(m.cost_usd, 0);
BEGIN
  FOREACH g IN ARRAY ARRAY['h', 'd'] LOOP
    b := stats_bucket(g, m.created_at);
    INSERT INTO stats_buckets AS t (granularity, bucket, message_count, length_sum)
    VALUES (g, b, sign, sign * m.content_length)
    ON CONFLICT (granularity, bucket) DO UPDATE
      SET message_count = t.message_count + EXCLUDED.message_count,
          length_sum = t.length_sum + EXCLUDED.length_sum;

    IF sign > 0 THEN
      INSERT INTO stats_user_buckets AS t
        (granularity, user_id, bucket, message_count, length_sum, first_at, last_at, cost_usd)
      VALUES (g, m.user_id, b, 1, m.content_length, m.created_at, m.created_at, cost)
      ON CONFLICT (granularity, user_id, bucket) DO UPDATE
        SET message_count = t.message_count + 1,
            length_sum = t.length_sum + EXCLUDED.length_sum,
            first_at = least(t.first_at, EXCLUDED.first_at),
            last_at = greatest(t.last_at, EXCLUDED.last_at),
            cost_usd = t.cost_usd + EXCLUDED.cost_usd
      RETURNING (xmax = 0) INTO created;
      IF created THEN
        PERFORM stats_user_activity(g, b, m.user_id, 1);
      END IF;
    ELSE
      UPDATE stats_user_buckets AS t
         SET message_count = t.message_count - 1, length_sum = t.length_sum - m.content_length,
             cost_usd = t.cost_usd - cost
       WHERE granularity = g AND user_id = m.user_id AND bucket = b
      RETURNING t.message_count, t.first_at, t.last_at INTO remaining, old_first, old_last;
      IF remaining = 0 THEN
        DELETE FROM stats_user_buckets WHERE granularity = g AND user_id = m.user_id AND bucket = b;
        PERFORM stats_user_activity(g, b, m.user_id, -1);
      ELSIF m.created_at IN (old_first, old_last) THEN
        UPDATE stats_user_buckets AS t SET first_at = live.first_at, last_at = live.last_at
          FROM (SELECT min(created_at) AS first_at, max(created_at) AS last_at FROM messages
                 WHERE user_id = m.user_id AND deleted_at IS NULL
                   AND created_at >= b AND created_at < b + stats_unit(g)) AS live
         WHERE t.granularity = g AND t.user_id = m.user_id AND t.bucket = b
           AND live.first_at IS NOT NULL;
      END IF;
    END IF;

    PERFORM pg_advisory_xact_lock_shared({WINDOW_LOCK});
    INSERT INTO stats_window_totals AS t (kind, user_id, total)
    SELECT w.kind, m.user_id, sign FROM stats_windows w
     WHERE w.granularity = g AND w.start_bucket IS NOT NULL AND b >= w.start_bucket
    ON CONFLICT (kind, user_id) DO UPDATE SET total = t.total + EXCLUDED.total;

    IF m.role = 'assistant' AND m.model IS NOT NULL THEN
      INSERT INTO stats_model_buckets AS t (granularity, bucket, model, requests, prompt_tokens,
             completion_tokens, fallback_count, latency_sum_ms, latency_count, cost_usd, cost_count)
      VALUES (g, b, m.model, sign, sign * coalesce(m.prompt_tokens, 0),
              sign * coalesce(m.completion_tokens, 0), sign * m.fallback_used::int,
              sign * coalesce(m.latency_ms, 0), sign * (m.latency_ms IS NOT NULL)::int,
              sign * cost, sign * (m.cost_usd IS NOT NULL)::int)
      ON CONFLICT (granularity, bucket, model) DO UPDATE
        SET requests = t.requests + EXCLUDED.requests,
            prompt_tokens = t.prompt_tokens + EXCLUDED.prompt_tokens,
            completion_tokens = t.completion_tokens + EXCLUDED.completion_tokens,
            fallback_count = t.fallback_count + EXCLUDED.fallback_count,
            latency_sum_ms = t.latency_sum_ms + EXCLUDED.latency_sum_ms,
            latency_count = t.latency_count + EXCLUDED.latency_count,
            cost_usd = t.cost_usd + EXCLUDED.cost_usd,
            cost_count = t.cost_count + EXCLUDED.cost_count;
    END IF;
  END LOOP;
END
$$
"""

STATS_REBUILD = """
CREATE OR REPLACE FUNCTION stats_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE stats_buckets, stats_user_buckets, stats_bucket_gaps, stats_model_buckets, stats_signups,
           stats_window_totals;
  UPDATE stats_windows SET start_bucket = NULL;
  INSERT INTO stats_user_buckets
    (granularity, user_id, bucket, message_count, length_sum, first_at, last_at, cost_usd)
  SELECT g.g, m.user_id, stats_bucket(g.g, m.created_at), count(*), sum(m.content_length),
         min(m.created_at), max(m.created_at), coalesce(sum(m.cost_usd), 0)
    FROM messages m CROSS JOIN (VALUES ('h'), ('d')) AS g(g)
   WHERE m.deleted_at IS NULL
   GROUP BY 1, 2, 3;
  INSERT INTO stats_buckets (granularity, bucket, message_count, length_sum)
  SELECT granularity, bucket, sum(message_count), sum(length_sum)
    FROM stats_user_buckets GROUP BY 1, 2;
  INSERT INTO stats_bucket_gaps (granularity, bucket, gap, users)
  SELECT granularity, bucket, gap, count(*)
    FROM (SELECT granularity, bucket,
                 stats_gap(granularity, bucket,
                           lag(bucket) OVER (PARTITION BY granularity, user_id ORDER BY bucket)) AS gap
            FROM stats_user_buckets) AS s
   GROUP BY 1, 2, 3;
  INSERT INTO stats_model_buckets (granularity, bucket, model, requests, prompt_tokens,
         completion_tokens, fallback_count, latency_sum_ms, latency_count, cost_usd, cost_count)
  SELECT g.g, stats_bucket(g.g, m.created_at), m.model, count(*), sum(coalesce(m.prompt_tokens, 0)),
         sum(coalesce(m.completion_tokens, 0)), sum(m.fallback_used::int),
         sum(coalesce(m.latency_ms, 0)), count(m.latency_ms),
         coalesce(sum(m.cost_usd), 0), count(m.cost_usd)
    FROM messages m CROSS JOIN (VALUES ('h'), ('d')) AS g(g)
   WHERE m.deleted_at IS NULL AND m.role = 'assistant' AND m.model IS NOT NULL
   GROUP BY 1, 2, 3;
  INSERT INTO stats_signups (bucket, users)
  SELECT stats_bucket('h', created_at), count(*) FROM users GROUP BY 1;
END
$$
"""


def upgrade() -> None:
    op.add_column("messages", sa.Column("cost_usd", sa.Numeric(16, 10), nullable=True))
    op.add_column(
        "stats_model_buckets",
        sa.Column("cost_usd", sa.Numeric(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "stats_model_buckets",
        sa.Column("cost_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "stats_user_buckets",
        sa.Column("cost_usd", sa.Numeric(), server_default=sa.text("0"), nullable=False),
    )
    op.execute(STATS_APPLY)
    op.execute(STATS_REBUILD)


def _previous_function(name: str) -> str:
    """Revision 0002's body of ``name``, as CREATE OR REPLACE (revisions are history: read, not copied)."""
    path = Path(__file__).with_name("20261126_0002_stats_rollups.py")
    spec = importlib.util.spec_from_file_location("stats_rollups_0002", path)
    if spec is None or spec.loader is None:
        raise LookupError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    functions: str = module.FUNCTIONS
    for statement in functions.split("\n--;\n"):
        if f"CREATE FUNCTION {name}(" in statement:
            return statement.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    raise LookupError(name)


def downgrade() -> None:
    op.execute(_previous_function("stats_apply"))
    op.execute(_previous_function("stats_rebuild"))
    op.drop_column("stats_user_buckets", "cost_usd")
    op.drop_column("stats_model_buckets", "cost_count")
    op.drop_column("stats_model_buckets", "cost_usd")
    op.drop_column("messages", "cost_usd")
