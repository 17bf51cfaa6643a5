"""GET /api/v1/stats: dashboard statistics for a period, for authenticated analysts; and each of its
tables as CSV (GET /api/v1/stats/{table}.csv), with the same authentication and rate limit."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import Response

from parley_api.auth.dependencies import CurrentUserDep
from parley_api.errors import AUTHENTICATED_RESPONSES, DATABASE_UNAVAILABLE_RESPONSES, Responses
from parley_api.state import AppState, StateDep
from parley_api.stats.collector import CollectorOptions, StatsCollector
from parley_api.stats.export import ExportTable, filename, render_csv
from parley_api.stats.present import present
from parley_api.stats.schemas import StatsPublic
from parley_core.stats.periods import Period, WindowMode

router = APIRouter(prefix="/api/v1", tags=["stats"])

ALLOWED_PARAMETERS = frozenset({"period", "window"})


def reject_unknown_parameters(request: Request) -> None:
    """A misspelt or repeated parameter is an error, not something silently ignored or overridden."""
    unknown = sorted(set(request.query_params) - ALLOWED_PARAMETERS)
    if unknown:
        raise HTTPException(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"unknown query parameter(s): {', '.join(unknown)}; allowed: period, window",
        )
    repeated = sorted(name for name in ALLOWED_PARAMETERS if len(request.query_params.getlist(name)) > 1)
    if repeated:
        raise HTTPException(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"query parameter(s) given more than once: {', '.join(repeated)}; give each once",
        )


PeriodQuery = Annotated[Period, Query(description="`day` (24 hours), `week` (7 days) or `month` (30 days)")]
WindowQuery = Annotated[
    WindowMode,
    Query(
        description="`rolling` (default): the last 24 h, 7 x 24 h or 30 x 24 h ending now; "
        "`calendar`: the 24 UTC hours ending with the current hour, or the 7 or 30 UTC days ending today"
    ),
]


async def rate_limited_period(
    request: Request, state: StateDep, user: CurrentUserDep, period: PeriodQuery
) -> Period:
    """The period asked for, once the request is counted against STATS_API_RATE_LIMIT for its user.

    It takes the user and the period so that it runs after both are checked: a request refused
    with 401 or 422 costs no budget.
    """
    await state.rate_limiter.check(
        request, state.settings.stats_api_rate_limit, scope="stats", username=user.username
    )
    return period


ERROR_RESPONSES: Responses = {
    **AUTHENTICATED_RESPONSES,
    422: {
        "description": "Missing, unknown or repeated `period`, unknown `window`, "
        "or an unknown query parameter."
    },
    **DATABASE_UNAVAILABLE_RESPONSES,
}


@router.get(
    "/stats",
    response_model=StatsPublic,
    summary="Statistics of a period",
    responses=ERROR_RESPONSES,
    dependencies=[Depends(reject_unknown_parameters)],
)
async def get_stats(
    state: StateDep,
    user: CurrentUserDep,
    period: Annotated[Period, Depends(rate_limited_period)],
    window: WindowQuery = WindowMode.ROLLING,
) -> StatsPublic:
    """Summary with the previous period, activity timeline, recent dialogs, top users and LLM usage.

    Figures come from rollups kept exact by database triggers, so a new message counts at once.
    All queries read one consistent snapshot (REPEATABLE READ, read only).
    """
    return await stats_body(state, period, window, username=user.username)


TableParameter = Annotated[
    ExportTable,
    Path(description="`summary`, `timeline`, `recent_dialogs`, `top_users` or `models`"),
]


@router.get(
    "/stats/{table}.csv",
    summary="One table of the statistics as CSV",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "The table, a header row first."},
        **ERROR_RESPONSES,
        422: {"description": "Unknown table, or missing, unknown or repeated `period`."},
    },
    dependencies=[Depends(reject_unknown_parameters)],
)
async def export_stats(
    state: StateDep,
    user: CurrentUserDep,
    table: TableParameter,
    period: Annotated[Period, Depends(rate_limited_period)],
    window: WindowQuery = WindowMode.ROLLING,
) -> Response:
    """The same figures as GET /api/v1/stats for the period, one table per file (RFC 4180, UTF-8).

    Counted against the same rate limit as the JSON; cells that would start a spreadsheet formula
    are prefixed with an apostrophe.
    """
    body = await stats_body(state, period, window, username=user.username)
    return Response(
        content=render_csv(table, body),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename(table, body)}"'},
    )


async def stats_body(state: AppState, period: Period, mode: WindowMode, *, username: str) -> StatsPublic:
    """The response body of ``period``'s window: from the result cache, else collected."""
    settings = state.settings
    options = CollectorOptions(
        preview_length=settings.stats_preview_length if settings.stats_previews_enabled else None,
        dialog_gap=timedelta(minutes=settings.stats_dialog_gap_minutes),
        slow_query_seconds=settings.slow_query_seconds,
        slow_request_seconds=settings.slow_request_seconds,
        explain=settings.enable_query_analysis,
        budget_defaults=settings.budget_defaults(),
        budget_exempt_user_ids=frozenset(settings.budget_exempt_user_ids),
    )
    outcome = "error"
    try:
        collector = StatsCollector(state.engine, state.metrics, options)
        figures, now = await state.stats_cache.get(
            (period, mode), lambda now: collector.collect(period, mode, now=now, username=username)
        )
        outcome = "ok"
    finally:
        state.metrics.stats_requests.labels(period=period.value, status=outcome).inc()
    return present(figures, generated_at=now, previews_enabled=settings.stats_previews_enabled)
