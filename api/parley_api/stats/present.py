"""Turning collected figures into the public response (ratios, durations, rounding)."""

from __future__ import annotations

from datetime import datetime

from parley_api.budgets.schemas import MeterPublic
from parley_api.stats.collector import StatsFigures
from parley_api.stats.schemas import (
    AudiencePublic,
    LlmTimelinePointPublic,
    LlmUsagePublic,
    ModelUsagePublic,
    RecentDialogPublic,
    RetentionCohortPublic,
    RetentionDayPublic,
    StatsPublic,
    SummaryFiguresPublic,
    SummaryPublic,
    TimelinePointPublic,
    TopSpenderPublic,
    TopUserPublic,
)
from parley_core.stats.latency import ModelLatency
from parley_core.stats.queries import SummaryFigures
from parley_core.stats.retention import CohortRetention


def _ratio(part: int, whole: int, digits: int = 4) -> float:
    return round(part / whole, digits) if whole else 0.0


def _cohort(cohort: CohortRetention) -> RetentionCohortPublic:
    days = {
        f"d{d.day}": RetentionDayPublic(
            eligible_users=d.eligible,
            retained_users=d.retained,
            rate=round(d.retained / d.eligible, 4) if d.eligible else None,
        )
        for d in cohort.days
    }
    return RetentionCohortPublic(cohort_start=cohort.start, users=cohort.users, **days)


def _summary(figures: SummaryFigures) -> SummaryFiguresPublic:
    return SummaryFiguresPublic(
        total_users=figures.total_users,
        total_messages=figures.total_messages,
        active_dialogs=figures.active_dialogs,
        avg_message_length=round(_ratio(figures.length_sum, figures.total_messages, 6), 1),
        messages_per_active_user=round(_ratio(figures.total_messages, figures.active_dialogs, 6), 2),
    )


def _percentiles(latency: ModelLatency | None) -> dict[str, float | None]:
    return {
        "latency_p50_ms": latency.p50_ms if latency else None,
        "latency_p95_ms": latency.p95_ms if latency else None,
        "latency_p99_ms": latency.p99_ms if latency else None,
    }


def _duration_minutes(first: datetime, last: datetime) -> int:
    return max(1, int((last - first).total_seconds() // 60))


def present(figures: StatsFigures, *, generated_at: datetime, previews_enabled: bool) -> StatsPublic:
    """The response body for ``figures``."""
    answers = sum(m.requests for m in figures.models)
    latencies = {m.model: m for m in figures.latency}
    models = [
        ModelUsagePublic(
            model=m.model,
            requests=m.requests,
            prompt_tokens=m.prompt_tokens,
            completion_tokens=m.completion_tokens,
            total_tokens=m.prompt_tokens + m.completion_tokens,
            fallback_count=m.fallback_count,
            fallback_share=_ratio(m.fallback_count, m.requests),
            answer_share=_ratio(m.requests, answers),
            avg_latency_ms=round(m.latency_sum_ms / m.latency_count, 1) if m.latency_count else None,
            **_percentiles(latencies.get(m.model)),
            cost_usd=float(m.cost_usd),
            stopped_count=m.stopped_count,
            retried_count=m.replaced_count,
            priced_requests=m.cost_count,
        )
        for m in figures.models
    ]
    requests = sum(m.requests for m in models)
    fallbacks = sum(m.fallback_count for m in models)
    window = figures.window
    previous = window.previous()
    return StatsPublic(
        period=window.period,
        window=window.mode,
        generated_at=generated_at,
        period_start=window.start,
        period_end=window.end,
        previous_start=previous.start,
        previous_end=previous.end,
        previews_enabled=previews_enabled,
        summary=SummaryPublic(**_summary(figures.summary).model_dump(), previous=_summary(figures.previous)),
        activity_timeline=[
            TimelinePointPublic.model_validate(p, from_attributes=True) for p in figures.timeline
        ],
        recent_dialogs=[
            RecentDialogPublic(
                user_id=d.user_id,
                message_count=d.message_count,
                last_message_at=d.last_message_at,
                duration_minutes=_duration_minutes(d.first_message_at, d.last_message_at),
                preview=d.preview if previews_enabled else None,
            )
            for d in figures.recent
        ],
        top_users=[TopUserPublic.model_validate(u, from_attributes=True) for u in figures.top],
        llm_usage=LlmUsagePublic(
            requests=requests,
            fallback_count=fallbacks,
            fallback_share=_ratio(fallbacks, requests),
            cost_usd=float(sum(m.cost_usd for m in figures.models)),
            stopped_count=sum(m.stopped_count for m in figures.models),
            retried_count=sum(m.replaced_count for m in figures.models),
            models=models,
        ),
        audience=AudiencePublic(
            daily_active_users=figures.audience.daily,
            weekly_active_users=figures.audience.weekly,
            monthly_active_users=figures.audience.monthly,
            stickiness=_ratio(figures.audience.daily, figures.audience.monthly),
        ),
        llm_timeline=[
            LlmTimelinePointPublic(**{**vars(p), "cost_usd": float(p.cost_usd)}) for p in figures.llm_timeline
        ],
        retention=[_cohort(cohort) for cohort in figures.retention],
        top_spenders=[
            TopSpenderPublic(
                user_id=s.spender.user_id,
                cost_usd=float(s.spender.cost_usd),
                total_messages=s.spender.total_messages,
                exempt=s.budget.exempt,
                meters=[MeterPublic.of(m) for m in s.meters],
            )
            for s in figures.spenders
        ],
    )
