"""stats rollups kept exact by triggers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 06:00:00

The stats API reads small rollup tables instead of aggregating `messages` (seconds at 10M rows).
Row triggers on `messages` add a live message's figures and subtract them again when it is
soft-deleted, deleted or changed; a trigger on `users` keeps sign-ups per hour. `stats_rebuild()`
recomputes everything set-based: it backfills existing data here and repairs after bulk loads
that ran with the triggers disabled (the demo-data generator does that).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GAP_CAP = 64
WINDOW_LOCK = 7_311_401  # advisory lock key serialising window advances against writers

FUNCTIONS = f"""
-- Bucket width of a granularity.
CREATE FUNCTION stats_unit(g text) RETURNS interval LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE g WHEN 'h' THEN interval '1 hour' ELSE interval '1 day' END
$$;
--;

-- Start of the UTC bucket holding ts.
CREATE FUNCTION stats_bucket(g text, ts timestamptz) RETURNS timestamptz LANGUAGE sql STABLE AS $$
  SELECT date_trunc(CASE g WHEN 'h' THEN 'hour' ELSE 'day' END, ts, 'UTC')
$$;
--;

-- Buckets between two bucket starts, capped; no earlier activity counts as the cap.
CREATE FUNCTION stats_gap(g text, later timestamptz, earlier timestamptz) RETURNS smallint
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN earlier IS NULL THEN {GAP_CAP}
              ELSE least({GAP_CAP}, round(extract(epoch FROM later - earlier)
                                          / extract(epoch FROM stats_unit(g))))::smallint END
$$;
--;

CREATE FUNCTION stats_gap_add(g text, b timestamptz, gap smallint, delta int) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO stats_bucket_gaps AS t (granularity, bucket, gap, users) VALUES (g, b, gap, delta)
  ON CONFLICT (granularity, bucket, gap) DO UPDATE SET users = t.users + EXCLUDED.users
$$;
--;

-- A user became active (delta 1) or inactive (delta -1) in bucket b: fix the gap of b and of
-- the user's next active bucket, whose predecessor changes.
CREATE FUNCTION stats_user_activity(g text, b timestamptz, uid bigint, delta int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  prev_b timestamptz;
  next_b timestamptz;
BEGIN
  SELECT max(bucket) INTO prev_b FROM stats_user_buckets
   WHERE granularity = g AND user_id = uid AND bucket < b;
  SELECT min(bucket) INTO next_b FROM stats_user_buckets
   WHERE granularity = g AND user_id = uid AND bucket > b;
  PERFORM stats_gap_add(g, b, stats_gap(g, b, prev_b), delta);
  IF next_b IS NOT NULL THEN
    IF delta > 0 THEN
      PERFORM stats_gap_add(g, next_b, stats_gap(g, next_b, prev_b), -1);
      PERFORM stats_gap_add(g, next_b, stats_gap(g, next_b, b), 1);
    ELSE
      PERFORM stats_gap_add(g, next_b, stats_gap(g, next_b, b), -1);
      PERFORM stats_gap_add(g, next_b, stats_gap(g, next_b, prev_b), 1);
    END IF;
  END IF;
END
$$;
--;

-- Add (sign 1) or remove (sign -1) one live message's figures in every granularity.
CREATE FUNCTION stats_apply(m messages, sign int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  g text;
  b timestamptz;
  created boolean;
  remaining int;
  old_first timestamptz;
  old_last timestamptz;
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
        (granularity, user_id, bucket, message_count, length_sum, first_at, last_at)
      VALUES (g, m.user_id, b, 1, m.content_length, m.created_at, m.created_at)
      ON CONFLICT (granularity, user_id, bucket) DO UPDATE
        SET message_count = t.message_count + 1,
            length_sum = t.length_sum + EXCLUDED.length_sum,
            first_at = least(t.first_at, EXCLUDED.first_at),
            last_at = greatest(t.last_at, EXCLUDED.last_at)
      RETURNING (xmax = 0) INTO created;
      IF created THEN
        PERFORM stats_user_activity(g, b, m.user_id, 1);
      END IF;
    ELSE
      UPDATE stats_user_buckets AS t
         SET message_count = t.message_count - 1, length_sum = t.length_sum - m.content_length
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
             completion_tokens, fallback_count, latency_sum_ms, latency_count)
      VALUES (g, b, m.model, sign, sign * coalesce(m.prompt_tokens, 0),
              sign * coalesce(m.completion_tokens, 0), sign * m.fallback_used::int,
              sign * coalesce(m.latency_ms, 0), sign * (m.latency_ms IS NOT NULL)::int)
      ON CONFLICT (granularity, bucket, model) DO UPDATE
        SET requests = t.requests + EXCLUDED.requests,
            prompt_tokens = t.prompt_tokens + EXCLUDED.prompt_tokens,
            completion_tokens = t.completion_tokens + EXCLUDED.completion_tokens,
            fallback_count = t.fallback_count + EXCLUDED.fallback_count,
            latency_sum_ms = t.latency_sum_ms + EXCLUDED.latency_sum_ms,
            latency_count = t.latency_count + EXCLUDED.latency_count;
    END IF;
  END LOOP;
END
$$;
--;

CREATE FUNCTION stats_messages_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.deleted_at IS NULL THEN
    PERFORM stats_apply(OLD, -1);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.deleted_at IS NULL THEN
    PERFORM stats_apply(NEW, 1);
  END IF;
  RETURN NULL;
END
$$;
--;

CREATE FUNCTION stats_users_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE stats_signups SET users = users - 1 WHERE bucket = stats_bucket('h', OLD.created_at);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO stats_signups AS t (bucket, users) VALUES (stats_bucket('h', NEW.created_at), 1)
    ON CONFLICT (bucket) DO UPDATE SET users = t.users + 1;
  END IF;
  RETURN NULL;
END
$$;
--;

-- Recompute every rollup from `messages` and `users`, set-based.
CREATE FUNCTION stats_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE stats_buckets, stats_user_buckets, stats_bucket_gaps, stats_model_buckets, stats_signups,
           stats_window_totals;
  UPDATE stats_windows SET start_bucket = NULL;
  INSERT INTO stats_user_buckets
    (granularity, user_id, bucket, message_count, length_sum, first_at, last_at)
  SELECT g.g, m.user_id, stats_bucket(g.g, m.created_at), count(*), sum(m.content_length),
         min(m.created_at), max(m.created_at)
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
         completion_tokens, fallback_count, latency_sum_ms, latency_count)
  SELECT g.g, stats_bucket(g.g, m.created_at), m.model, count(*), sum(coalesce(m.prompt_tokens, 0)),
         sum(coalesce(m.completion_tokens, 0)), sum(m.fallback_used::int),
         sum(coalesce(m.latency_ms, 0)), count(m.latency_ms)
    FROM messages m CROSS JOIN (VALUES ('h'), ('d')) AS g(g)
   WHERE m.deleted_at IS NULL AND m.role = 'assistant' AND m.model IS NOT NULL
   GROUP BY 1, 2, 3;
  INSERT INTO stats_signups (bucket, users)
  SELECT stats_bucket('h', created_at), count(*) FROM users GROUP BY 1;
END
$$;
--;

-- Top users need per-user totals over the current day/week/month window. They are kept for the
-- windows in stats_windows, from start_bucket on; stats_advance_window moves a window forward by
-- subtracting the buckets that left it. Writers take the advisory lock shared, the advance takes
-- it exclusively, so no message is ever counted against a window that is moving under it.
CREATE FUNCTION stats_advance_window(w_kind text, new_start timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  w stats_windows;
BEGIN
  SELECT * INTO w FROM stats_windows WHERE kind = w_kind;
  IF w.start_bucket = new_start THEN
    RETURN true;
  ELSIF w.start_bucket > new_start THEN
    RETURN false;  -- an older window than the tracked one: the caller aggregates directly
  END IF;
  PERFORM pg_advisory_xact_lock({WINDOW_LOCK});
  SELECT * INTO w FROM stats_windows WHERE kind = w_kind FOR UPDATE;
  IF w.start_bucket = new_start THEN
    RETURN true;
  ELSIF w.start_bucket IS NULL OR new_start - w.start_bucket >= w.buckets * stats_unit(w.granularity) THEN
    DELETE FROM stats_window_totals WHERE kind = w_kind;
    INSERT INTO stats_window_totals (kind, user_id, total)
    SELECT w_kind, user_id, sum(message_count) FROM stats_user_buckets
     WHERE granularity = w.granularity AND bucket >= new_start GROUP BY user_id;
  ELSE
    UPDATE stats_window_totals AS t SET total = t.total - e.expired
      FROM (SELECT user_id, sum(message_count) AS expired FROM stats_user_buckets
             WHERE granularity = w.granularity AND bucket >= w.start_bucket AND bucket < new_start
             GROUP BY user_id) AS e
     WHERE t.kind = w_kind AND t.user_id = e.user_id;
    DELETE FROM stats_window_totals WHERE kind = w_kind AND total <= 0;
  END IF;
  UPDATE stats_windows SET start_bucket = new_start WHERE kind = w_kind;
  RETURN true;
END
$$;
--;
CREATE TRIGGER stats_messages AFTER INSERT OR UPDATE OR DELETE ON messages
  FOR EACH ROW EXECUTE FUNCTION stats_messages_trigger();
--;
CREATE TRIGGER stats_users AFTER INSERT OR UPDATE OF created_at OR DELETE ON users
  FOR EACH ROW EXECUTE FUNCTION stats_users_trigger();
"""

DROP_FUNCTIONS = """
DROP TRIGGER IF EXISTS stats_users ON users;
DROP TRIGGER IF EXISTS stats_messages ON messages;
DROP FUNCTION IF EXISTS stats_rebuild();
DROP FUNCTION IF EXISTS stats_advance_window(text, timestamptz);
DROP FUNCTION IF EXISTS stats_users_trigger();
DROP FUNCTION IF EXISTS stats_messages_trigger();
DROP FUNCTION IF EXISTS stats_apply(messages, int);
DROP FUNCTION IF EXISTS stats_user_activity(text, timestamptz, bigint, int);
DROP FUNCTION IF EXISTS stats_gap_add(text, timestamptz, smallint, int);
DROP FUNCTION IF EXISTS stats_gap(text, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS stats_bucket(text, timestamptz);
DROP FUNCTION IF EXISTS stats_unit(text);
"""


def upgrade() -> None:
    op.create_table(
        "stats_buckets",
        sa.Column("granularity", sa.String(length=1), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_count", sa.BigInteger(), nullable=False),
        sa.Column("length_sum", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("granularity IN ('h', 'd')", name=op.f("ck_stats_buckets_granularity")),
        sa.PrimaryKeyConstraint("granularity", "bucket", name=op.f("pk_stats_buckets")),
    )
    op.create_table(
        "stats_user_buckets",
        sa.Column("granularity", sa.String(length=1), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("length_sum", sa.BigInteger(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("granularity IN ('h', 'd')", name=op.f("ck_stats_user_buckets_granularity")),
        sa.PrimaryKeyConstraint("granularity", "user_id", "bucket", name=op.f("pk_stats_user_buckets")),
    )
    op.create_index(
        "ix_stats_user_buckets_last_at",
        "stats_user_buckets",
        ["granularity", sa.literal_column("last_at DESC"), "user_id"],
    )
    op.create_table(
        "stats_bucket_gaps",
        sa.Column("granularity", sa.String(length=1), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gap", sa.SmallInteger(), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.CheckConstraint("granularity IN ('h', 'd')", name=op.f("ck_stats_bucket_gaps_granularity")),
        sa.PrimaryKeyConstraint("granularity", "bucket", "gap", name=op.f("pk_stats_bucket_gaps")),
    )
    op.create_table(
        "stats_model_buckets",
        sa.Column("granularity", sa.String(length=1), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("fallback_count", sa.BigInteger(), nullable=False),
        sa.Column("latency_sum_ms", sa.BigInteger(), nullable=False),
        sa.Column("latency_count", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("granularity IN ('h', 'd')", name=op.f("ck_stats_model_buckets_granularity")),
        sa.PrimaryKeyConstraint("granularity", "bucket", "model", name=op.f("pk_stats_model_buckets")),
    )
    op.create_table(
        "stats_windows",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("granularity", sa.String(length=1), nullable=False),
        sa.Column("buckets", sa.SmallInteger(), nullable=False),
        sa.Column("start_bucket", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_stats_windows")),
    )
    op.execute(
        "INSERT INTO stats_windows (kind, granularity, buckets) "
        "VALUES ('day', 'h', 24), ('week', 'd', 7), ('month', 'd', 30)"
    )
    op.create_table(
        "stats_window_totals",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "user_id", name=op.f("pk_stats_window_totals")),
    )
    op.create_index(
        "ix_stats_window_totals_rank",
        "stats_window_totals",
        ["kind", sa.literal_column("total DESC"), "user_id"],
    )
    op.create_table(
        "stats_signups",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("users", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_stats_signups")),
    )
    for statement in FUNCTIONS.split("\n--;\n"):
        if statement.strip():
            op.execute(statement)
    op.execute("SELECT stats_rebuild()")


def downgrade() -> None:
    for statement in DROP_FUNCTIONS.strip().splitlines():
        op.execute(statement)
    for table in (
        "stats_window_totals",
        "stats_windows",
        "stats_signups",
        "stats_model_buckets",
        "stats_bucket_gaps",
        "stats_user_buckets",
        "stats_buckets",
    ):
        op.drop_table(table)
