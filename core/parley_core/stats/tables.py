"""Rollup tables behind the stats API, kept exact by triggers on `messages` and `users`.

Every table has a granularity column: 'h' (UTC hours, for the `day` period) or 'd' (UTC days, for
`week` and `month`). Triggers add a live message's figures and subtract them again when it is
soft-deleted, hard-deleted or changed, so every figure equals a direct aggregate over `messages`
at every commit. See docs/guides/database-tuning.md for why they exist.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    Interval,
    Numeric,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from parley_core.models import Base

# Gaps of this many buckets or more (and "no earlier activity") are stored as GAP_CAP: exact for
# windows of up to GAP_CAP buckets, far more than the 30 a month needs.
GAP_CAP = 64


class StatsBucket(Base):
    """Messages per time bucket: the activity timeline and period totals."""

    __tablename__ = "stats_buckets"
    __table_args__ = (CheckConstraint("granularity IN ('h', 'd')", name="granularity"),)

    granularity: Mapped[str] = mapped_column(String(1), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    message_count: Mapped[int] = mapped_column(BigInteger)
    length_sum: Mapped[int] = mapped_column(BigInteger)


class StatsUserBucket(Base):
    """One user's messages in one bucket: top users, recent dialogs, active users."""

    __tablename__ = "stats_user_buckets"
    __table_args__ = (
        CheckConstraint("granularity IN ('h', 'd')", name="granularity"),
        # Recent dialogs: the newest activity first.
        Index("ix_stats_user_buckets_last_at", "granularity", text("last_at DESC"), "user_id"),
    )

    granularity: Mapped[str] = mapped_column(String(1), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    message_count: Mapped[int] = mapped_column(Integer)
    length_sum: Mapped[int] = mapped_column(BigInteger)
    first_at: Mapped[datetime] = mapped_column()
    last_at: Mapped[datetime] = mapped_column()
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(), server_default=text("0"))
    # Hourly rows: the longest pause between consecutive messages inside the hour (recent dialogs).
    max_pause: Mapped[timedelta | None] = mapped_column(Interval())


class StatsBucketGap(Base):
    """Users active in a bucket, by how many buckets ago they were last active before it.

    Distinct users over buckets [a, z] = users counted at bucket d whose gap exceeds d - a: each
    user is counted once, at their first bucket inside the window. Exact, and it reads at most
    buckets x GAP_CAP small rows instead of every user's activity.
    """

    __tablename__ = "stats_bucket_gaps"
    __table_args__ = (CheckConstraint("granularity IN ('h', 'd')", name="granularity"),)

    granularity: Mapped[str] = mapped_column(String(1), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    gap: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    users: Mapped[int] = mapped_column(Integer)


class StatsModelBucket(Base):
    """LLM usage (assistant messages) per model and bucket."""

    __tablename__ = "stats_model_buckets"
    __table_args__ = (CheckConstraint("granularity IN ('h', 'd')", name="granularity"),)

    granularity: Mapped[str] = mapped_column(String(1), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
    fallback_count: Mapped[int] = mapped_column(BigInteger)
    latency_sum_ms: Mapped[int] = mapped_column(BigInteger)
    latency_count: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(), server_default=text("0"))
    cost_count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))  # answers with a cost
    stopped_count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))  # stopped by the user
    replaced_count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))  # asked again (/retry)


class StatsWindow(Base):
    """A window whose per-user totals are kept, and the buckets it holds now.

    Calendar windows (`day`, `week`, `month`) and rolling ones (`r_day`, `r_week`, `r_month`) are
    open-ended: from `start_bucket` on, a message stamped ahead included. The windows before the
    rolling ones (`p_day`, `p_week`, `p_month`) end at `end_bucket`.
    """

    __tablename__ = "stats_windows"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    granularity: Mapped[str] = mapped_column(String(1))
    buckets: Mapped[int] = mapped_column(SmallInteger)
    start_bucket: Mapped[datetime | None] = mapped_column()
    end_bucket: Mapped[datetime | None] = mapped_column()


class StatsWindowTotal(Base):
    """A user's messages (and their answers' cost) in a kept window: top users and top spenders are
    index scans of this."""

    __tablename__ = "stats_window_totals"
    __table_args__ = (
        Index("ix_stats_window_totals_rank", "kind", text("total DESC"), "user_id"),
        # Top spenders: the same window's users by what their answers cost (no user_id column, so
        # that probes by user take the primary key).
        Index("ix_stats_window_totals_cost", "kind", text("cost DESC")),
    )

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    total: Mapped[int] = mapped_column(BigInteger)
    cost: Mapped[Decimal] = mapped_column(Numeric(), server_default=text("0"))


class StatsWindowActive(Base):
    """Users whose kept total in a window is above zero, in shards by user id.

    Writers add or subtract one when a user's total crosses zero; 16 shards keep concurrent writers
    off one hot row, and a window's distinct users are the sum of its 16 rows.
    """

    __tablename__ = "stats_window_actives"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    users: Mapped[int] = mapped_column(BigInteger)


class StatsLatencyBin(Base):
    """A model's answers in one UTC hour or day by latency bin (bin 0: under 10 ms; bin k: from 10 x 1.1^(k-1)
    up to 10 x 1.1^k ms): latency percentiles to within 10 % without sorting answers."""

    __tablename__ = "stats_latency_bins"

    granularity: Mapped[str] = mapped_column(String(1), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    bin: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    answers: Mapped[int] = mapped_column(BigInteger)


class StatsRetention(Base):
    """Per first day (``cohort``, the UTC day of ``users.created_at``) and later day 1..30: the
    cohort's users with live messages on that day. Kept by triggers on `stats_user_buckets` (daily
    rows) and `users`; read for retention by signup week."""

    __tablename__ = "stats_retention"

    cohort: Mapped[datetime] = mapped_column(primary_key=True)
    day_offset: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    users: Mapped[int] = mapped_column(Integer)


class StatsSignup(Base):
    """New users per UTC hour: total users at any hour boundary without counting `users`."""

    __tablename__ = "stats_signups"

    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    users: Mapped[int] = mapped_column(BigInteger)
