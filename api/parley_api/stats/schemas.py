"""Response schemas of GET /api/v1/stats.

The field names of `summary`, `activity_timeline`, `recent_dialogs` and `top_users` are a contract
existing dashboard clients read, so they never change; fields whose description says "(Parley)"
were added to it. Timestamps are UTC ISO 8601 with `Z`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, Field, PlainSerializer

from parley_api.budgets.schemas import MeterPublic
from parley_core.stats.periods import Period, WindowMode


def _utc_z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


UtcDatetime = Annotated[
    datetime,
    PlainSerializer(_utc_z, return_type=str, when_used="json"),
    Field(json_schema_extra={"format": "date-time", "examples": ["2026-11-26T14:00:00Z"]}),
]
Count = Annotated[int, Field(ge=0)]
Dollars = Annotated[
    float,
    Field(ge=0, description="US dollars (Parley): of the answers whose cost is known."),
    PlainSerializer(lambda value: round(value, 6), return_type=float),
]


class SummaryFiguresPublic(BaseModel):
    """Totals of one period."""

    total_users: Count = Field(description="Users created up to the end of the period.")
    total_messages: Count = Field(description="Non-deleted messages in the period, the user's and the bot's.")
    active_dialogs: Count = Field(description="Distinct users with non-deleted messages in the period.")
    avg_message_length: float = Field(ge=0, description="Mean characters per message (Parley).")
    messages_per_active_user: float = Field(
        ge=0, description="total_messages / active_dialogs: messages per active user (Parley)."
    )


class SummaryPublic(SummaryFiguresPublic):
    """Totals of the period, and of the period of equal length before it (Parley)."""

    previous: SummaryFiguresPublic


class TimelinePointPublic(BaseModel):
    """One hour (day) or one day (week, month) of activity."""

    timestamp: UtcDatetime = Field(
        description="Start of the point: a UTC hour or day, or the window's start."
    )
    message_count: Count
    active_users: Count = Field(description="Distinct users with messages in the point.")
    partial: bool = Field(
        description="Less than a whole hour or day (Parley): the current one, which ends now, and a rolling "
        "window's first, which starts at the window's start."
    )


class RecentDialogPublic(BaseModel):
    """One user's messages in the period."""

    user_id: int
    message_count: Count
    last_message_at: UtcDatetime
    duration_minutes: Annotated[int, Field(ge=1, description="First to last message, at least 1.")]
    preview: str | None = Field(
        description="Start of the latest message, truncated (Parley); null when previews are off."
    )


class TopUserPublic(BaseModel):
    """A user ranked by messages in the period."""

    user_id: int
    total_messages: Count
    dialog_count: Count = Field(description="Distinct UTC days with activity in the period.")
    last_activity: UtcDatetime
    cost_usd: Dollars


class ModelUsagePublic(BaseModel):
    """Answers of one model in the period (Parley)."""

    model: str
    requests: Count
    prompt_tokens: Count
    completion_tokens: Count
    total_tokens: Count
    fallback_count: Count
    fallback_share: float = Field(ge=0, le=1, description="Share of these answers given as fallback.")
    answer_share: float = Field(
        ge=0, le=1, description="Share of all answers in the period given by this model (Parley)."
    )
    avg_latency_ms: float | None = Field(ge=0, description="Mean LLM latency; null when unknown.")
    latency_p50_ms: float | None = Field(
        ge=0, description="Median latency: the upper end of its 10 % latency bin; null when unknown (Parley)."
    )
    latency_p95_ms: float | None = Field(ge=0, description="95th percentile, the same way (Parley).")
    latency_p99_ms: float | None = Field(ge=0, description="99th percentile, the same way (Parley).")
    cost_usd: Dollars
    stopped_count: Count = Field(description="Answers the user stopped while they were written (Parley).")
    retried_count: Count = Field(description="Answers the user asked again for with /retry (Parley).")
    priced_requests: Count = Field(
        description="Answers whose cost is known (the gateway reported it or LLM_PRICES has the model)."
    )


class LlmUsagePublic(BaseModel):
    """LLM usage in the period (Parley)."""

    requests: Count
    fallback_count: Count
    fallback_share: float = Field(ge=0, le=1)
    cost_usd: Dollars
    stopped_count: Count = Field(description="Answers stopped by the user (Parley).")
    retried_count: Count = Field(description="Answers asked again for with /retry (Parley).")
    models: list[ModelUsagePublic]


class LlmTimelinePointPublic(BaseModel):
    """One model's answers in one timeline point (Parley)."""

    timestamp: UtcDatetime = Field(description="The point's start, as in activity_timeline.")
    model: str
    requests: Count = Field(description="Answers the model gave in the point.")
    prompt_tokens: Count
    completion_tokens: Count
    fallback_count: Count = Field(description="Of them, answers given as the fallback.")
    cost_usd: Dollars = Field(description="What they cost (one cost per answer: not split by token kind).")
    partial: bool = Field(description="The point covers less than a whole hour or day.")


class AudiencePublic(BaseModel):
    """Distinct users of the last 24 h, 7 x 24 h and 30 x 24 h ending now, whatever the period (Parley)."""

    daily_active_users: Count = Field(description="DAU: distinct users with messages in the last 24 h.")
    weekly_active_users: Count = Field(description="WAU: the same over the last 7 x 24 h.")
    monthly_active_users: Count = Field(description="MAU: the same over the last 30 x 24 h.")
    stickiness: float = Field(ge=0, le=1, description="DAU / MAU: how many of the month's users came today.")


class RetentionDayPublic(BaseModel):
    """Day N of a signup week: who could have come back by now, and who did (Parley)."""

    eligible_users: Count = Field(description="The week's users whose N-th day after their first has ended.")
    retained_users: Count = Field(description="Of them, the users with a message on that day.")
    rate: float | None = Field(
        ge=0, le=1, description="retained_users / eligible_users; null while no user's day N has ended."
    )


class RetentionCohortPublic(BaseModel):
    """The users who first appeared in one UTC week (Monday to Sunday), whatever the period (Parley)."""

    cohort_start: UtcDatetime = Field(description="Monday 00:00 UTC of the week.")
    users: Count = Field(
        description="Users first seen that week; the current week's include those stamped ahead of now."
    )
    d1: RetentionDayPublic = Field(description="Back the day after their first day.")
    d7: RetentionDayPublic = Field(description="Back on the 7th day after it.")
    d30: RetentionDayPublic = Field(description="Back on the 30th day after it.")


class TopSpenderPublic(BaseModel):
    """A user among those whose answers cost most in the period, and their budget now (Parley)."""

    user_id: int
    cost_usd: Dollars = Field(description="What the user's answers in the period cost.")
    total_messages: Count = Field(description="The user's messages in the period (theirs and the bot's).")
    exempt: bool = Field(description="No budget limit applies to the user.")
    meters: list[MeterPublic] = Field(
        description="Each limit that applies, against what the current UTC day or month used of it (the "
        "budget ledger, which /reset does not refund), as GET /api/v1/budgets/{user_id} shows it."
    )


class StatsPublic(BaseModel):
    """Dashboard statistics of one period."""

    period: Period
    window: WindowMode = Field(description="How the period's window is placed (Parley).")
    generated_at: UtcDatetime = Field(description="The API's now, which the window ends at or around.")
    period_start: UtcDatetime
    period_end: UtcDatetime = Field(
        description="Rolling: now. Calendar: the end of the current hour or day. Messages stamped after "
        "now (a writer whose clock runs ahead) count in the current point."
    )
    previous_start: UtcDatetime = Field(description="Start of the window `summary.previous` covers (Parley).")
    previous_end: UtcDatetime = Field(description="Its end: `period_start` (Parley).")
    previews_enabled: bool
    summary: SummaryPublic
    activity_timeline: list[TimelinePointPublic]
    recent_dialogs: list[RecentDialogPublic]
    top_users: list[TopUserPublic]
    llm_usage: LlmUsagePublic
    llm_timeline: list[LlmTimelinePointPublic] = Field(
        description="Per point of activity_timeline and model with answers in the period: usage over time, "
        "every model at every point (Parley)."
    )
    top_spenders: list[TopSpenderPublic] = Field(
        description="Up to 10 users whose answers cost most in the period, most first (ties: lower user id)."
    )
    audience: AudiencePublic
    retention: list[RetentionCohortPublic] = Field(
        description="Retention of the last 8 signup weeks, oldest first, the current week last (Parley)."
    )
