"""stats rollups: deletions applied per statement, set-based

Revision ID: 1100
Revises: 1000
Create Date: 2026-12-04 19:45:00

`/reset` soft-deletes every live message of a user in one UPDATE. Row triggers removed them one by
one (about 1 ms each: a heavy user's 100k messages took minutes), holding the rollups' shared rows
and the window lock all along, so other users' turns and the stats collector waited for it.

Soft deletes and deletes are now removed by statement triggers over the statement's transition
tables: every rollup is corrected with one set-based statement per table, whatever the number of
rows. The user's own rows go first; the rows every writer shares (hour and day totals, gaps, model
totals, window actives) last, so they are held only for the last milliseconds before commit.

Inserts keep their row trigger (`stats_messages`, a fraction of a millisecond). Other updates keep a
row trigger too, now only when a column the rollups read changed: setting a message's
`unanswered`, `stopped` or `replaced` flag no longer rewrites the totals.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "1100"
down_revision: str | None = "1000"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WINDOW_LOCK = 7_311_401  # the advisory lock key of the rollups (revision 0002)
SHARDS = 16  # stats_window_actives shards (revision 1000)

# The columns the rollups read: an update that changes none of them leaves every rollup as it was.
ROLLUP_COLUMNS = ("user_id", "role", "created_at", "content_length", "model", "prompt_tokens",
                  "completion_tokens", "latency_ms", "fallback_used", "cost_usd")  # fmt: skip


def _removal_body(removed: str) -> str:
    """The statements that take the live messages of ``removed`` (a subquery) out of every rollup."""
    agg = f"""SELECT g.g, r.user_id, stats_bucket(g.g, r.created_at) AS bucket, count(*) AS n,
             sum(r.content_length) AS len, sum(coalesce(r.cost_usd, 0)) AS cost,
             min(r.created_at) AS first_at, max(r.created_at) AS last_at
        FROM {removed} AS r CROSS JOIN (VALUES ('h'), ('d')) AS g(g)
       GROUP BY 1, 2, 3"""
    return f"""
DECLARE
  zero_g text[];
  zero_user bigint[];
  zero_bucket timestamptz[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM {removed} AS r) THEN
    RETURN NULL;
  END IF;

  -- The users' own rows: counts, then the buckets left empty, then first and last messages.
  UPDATE stats_user_buckets AS t
     SET message_count = t.message_count - a.n, length_sum = t.length_sum - a.len,
         cost_usd = t.cost_usd - a.cost
    FROM ({agg}) AS a
   WHERE t.granularity = a.g AND t.user_id = a.user_id AND t.bucket = a.bucket;

  WITH emptied AS (
    DELETE FROM stats_user_buckets AS t
     USING (SELECT DISTINCT user_id FROM {removed} AS r) AS u
     WHERE t.granularity IN ('h', 'd') AND t.user_id = u.user_id AND t.message_count <= 0
    RETURNING t.granularity, t.user_id, t.bucket)
  SELECT array_agg(granularity), array_agg(user_id), array_agg(bucket)
    INTO zero_g, zero_user, zero_bucket FROM emptied;

  UPDATE stats_user_buckets AS t SET first_at = live.first_at, last_at = live.last_at
    FROM ({agg}) AS a
   CROSS JOIN LATERAL (
     SELECT min(m.created_at) AS first_at, max(m.created_at) AS last_at FROM messages m
      WHERE m.user_id = a.user_id AND m.deleted_at IS NULL
        AND m.created_at >= a.bucket AND m.created_at < a.bucket + stats_unit(a.g)) AS live
   WHERE t.granularity = a.g AND t.user_id = a.user_id AND t.bucket = a.bucket
     AND (a.first_at = t.first_at OR a.last_at = t.last_at) AND live.first_at IS NOT NULL;

  -- Shared rows from here on. Gaps: each affected user's gaps before (remaining and emptied
  -- buckets) are replaced by those after (remaining buckets).
  IF zero_g IS NOT NULL THEN
    WITH emptied AS (
      SELECT * FROM unnest(zero_g, zero_user, zero_bucket) AS z(g, user_id, bucket)),
    affected AS (SELECT DISTINCT g, user_id FROM emptied),
    remaining AS (
      SELECT t.granularity AS g, t.user_id, t.bucket FROM stats_user_buckets t
        JOIN affected u ON t.granularity = u.g AND t.user_id = u.user_id),
    before AS (SELECT * FROM remaining UNION ALL SELECT * FROM emptied),
    changes AS (
      SELECT g, bucket, stats_gap(g, bucket, lag(bucket) OVER w) AS gap, 1 AS users FROM remaining
      WINDOW w AS (PARTITION BY g, user_id ORDER BY bucket)
      UNION ALL
      SELECT g, bucket, stats_gap(g, bucket, lag(bucket) OVER w), -1 FROM before
      WINDOW w AS (PARTITION BY g, user_id ORDER BY bucket))
    INSERT INTO stats_bucket_gaps AS t (granularity, bucket, gap, users)
    SELECT g, bucket, gap, sum(users) FROM changes GROUP BY 1, 2, 3 HAVING sum(users) <> 0
     ORDER BY 1 DESC, 2, 3
    ON CONFLICT (granularity, bucket, gap) DO UPDATE SET users = t.users + EXCLUDED.users;
  END IF;

  INSERT INTO stats_buckets AS t (granularity, bucket, message_count, length_sum)
  SELECT g, bucket, -sum(n), -sum(len) FROM ({agg}) AS a GROUP BY 1, 2 ORDER BY 1 DESC, 2
  ON CONFLICT (granularity, bucket) DO UPDATE
    SET message_count = t.message_count + EXCLUDED.message_count,
        length_sum = t.length_sum + EXCLUDED.length_sum;

  -- Kept windows: a user whose total drops to zero leaves the window's active users.
  PERFORM pg_advisory_xact_lock_shared({WINDOW_LOCK});
  WITH removed AS (
    SELECT w.kind, a.user_id, sum(a.n) AS n FROM ({agg}) AS a
      JOIN stats_windows w ON w.granularity = a.g AND w.start_bucket IS NOT NULL
       AND a.bucket >= w.start_bucket AND (w.end_bucket IS NULL OR a.bucket < w.end_bucket)
     GROUP BY 1, 2),
  changed AS (
    INSERT INTO stats_window_totals AS t (kind, user_id, total)
    SELECT kind, user_id, -n FROM removed ORDER BY 1, 2
    ON CONFLICT (kind, user_id) DO UPDATE SET total = t.total + EXCLUDED.total
    RETURNING t.kind, t.user_id, t.total)
  INSERT INTO stats_window_actives AS a (kind, shard, users)
  SELECT c.kind, c.user_id % {SHARDS}, -count(*) FROM changed c
    JOIN removed r ON r.kind = c.kind AND r.user_id = c.user_id
   WHERE c.total <= 0 AND c.total + r.n > 0
   GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (kind, shard) DO UPDATE SET users = a.users + EXCLUDED.users;

  INSERT INTO stats_model_buckets AS t (granularity, bucket, model, requests, prompt_tokens,
         completion_tokens, fallback_count, latency_sum_ms, latency_count, cost_usd, cost_count)
  SELECT g.g, stats_bucket(g.g, r.created_at), r.model, -count(*), -sum(coalesce(r.prompt_tokens, 0)),
         -sum(coalesce(r.completion_tokens, 0)), -count(*) FILTER (WHERE r.fallback_used),
         -sum(coalesce(r.latency_ms, 0)), -count(r.latency_ms),
         -sum(coalesce(r.cost_usd, 0)), -count(r.cost_usd)
    FROM {removed} AS r CROSS JOIN (VALUES ('h'), ('d')) AS g(g)
   WHERE r.role = 'assistant' AND r.model IS NOT NULL
   GROUP BY 1, 2, 3 ORDER BY 1 DESC, 2, 3
  ON CONFLICT (granularity, bucket, model) DO UPDATE
    SET requests = t.requests + EXCLUDED.requests,
        prompt_tokens = t.prompt_tokens + EXCLUDED.prompt_tokens,
        completion_tokens = t.completion_tokens + EXCLUDED.completion_tokens,
        fallback_count = t.fallback_count + EXCLUDED.fallback_count,
        latency_sum_ms = t.latency_sum_ms + EXCLUDED.latency_sum_ms,
        latency_count = t.latency_count + EXCLUDED.latency_count,
        cost_usd = t.cost_usd + EXCLUDED.cost_usd,
        cost_count = t.cost_count + EXCLUDED.cost_count;
  RETURN NULL;
END
"""


SOFT_DELETED = """(SELECT o.* FROM removal_before o JOIN removal_after n ON n.id = o.id
                    WHERE o.deleted_at IS NULL AND n.deleted_at IS NOT NULL)"""
DELETED = "(SELECT * FROM removal_gone WHERE deleted_at IS NULL)"


def _row(prefix: str) -> str:
    """The rollup columns of OLD or NEW as one row value."""
    return "(" + ", ".join(f"{prefix}.{column}" for column in ROLLUP_COLUMNS) + ")"


UPGRADE = [
    "DROP TRIGGER stats_messages ON messages",
    "CREATE FUNCTION stats_soft_delete_trigger() RETURNS trigger LANGUAGE plpgsql"
    f" AS $${_removal_body(SOFT_DELETED)}$$",
    "CREATE FUNCTION stats_delete_trigger() RETURNS trigger LANGUAGE plpgsql"
    f" AS $${_removal_body(DELETED)}$$",
    # stats_messages_trigger (revision 0002) removes OLD and adds NEW: it now sees inserts, and the
    # updates that leave a message live and change what the rollups read.
    "CREATE TRIGGER stats_messages AFTER INSERT ON messages"
    " FOR EACH ROW EXECUTE FUNCTION stats_messages_trigger()",
    "CREATE TRIGGER stats_messages_update AFTER UPDATE ON messages FOR EACH ROW"
    f" WHEN (NEW.deleted_at IS NULL AND (OLD.deleted_at IS NOT NULL"
    f" OR {_row('OLD')} IS DISTINCT FROM {_row('NEW')}))"
    " EXECUTE FUNCTION stats_messages_trigger()",
    "CREATE TRIGGER stats_messages_soft_delete AFTER UPDATE ON messages"
    " REFERENCING OLD TABLE AS removal_before NEW TABLE AS removal_after"
    " FOR EACH STATEMENT EXECUTE FUNCTION stats_soft_delete_trigger()",
    "CREATE TRIGGER stats_messages_delete AFTER DELETE ON messages"
    " REFERENCING OLD TABLE AS removal_gone FOR EACH STATEMENT EXECUTE FUNCTION stats_delete_trigger()",
]

DOWNGRADE = [
    "DROP TRIGGER stats_messages_delete ON messages",
    "DROP TRIGGER stats_messages_soft_delete ON messages",
    "DROP TRIGGER stats_messages_update ON messages",
    "DROP TRIGGER stats_messages ON messages",
    "DROP FUNCTION stats_delete_trigger()",
    "DROP FUNCTION stats_soft_delete_trigger()",
    "CREATE TRIGGER stats_messages AFTER INSERT OR UPDATE OR DELETE ON messages"
    " FOR EACH ROW EXECUTE FUNCTION stats_messages_trigger()",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
