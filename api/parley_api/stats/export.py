"""CSV exports of the stats response: one table of it per file, the same figures as the JSON.

Each export is rendered from the very response body GET /api/v1/stats returns for the period (the
same cache entry, the same rounding and UTC timestamps), so a spreadsheet and the dashboard never
disagree. Text a user wrote (previews) or an operator configured (model names) could start with
``=``, ``+``, ``-`` or ``@``, which spreadsheets run as a formula; such cells are prefixed with an
apostrophe, the usual defence against CSV injection.
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from parley_api.stats.schemas import (
    LlmTimelinePointPublic,
    ModelUsagePublic,
    RecentDialogPublic,
    RetentionDayPublic,
    StatsPublic,
    SummaryFiguresPublic,
    TimelinePointPublic,
    TopUserPublic,
)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ExportTable(enum.StrEnum):
    """The parts of a stats response that export as a table."""

    SUMMARY = "summary"
    TIMELINE = "timeline"
    RECENT_DIALOGS = "recent_dialogs"
    TOP_USERS = "top_users"
    MODELS = "models"
    LLM_TIMELINE = "llm_timeline"
    RETENTION = "retention"
    TOP_SPENDERS = "top_spenders"


def _columns(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


COLUMNS: dict[ExportTable, list[str]] = {
    ExportTable.SUMMARY: ["window", "start", "end", *_columns(SummaryFiguresPublic)],
    ExportTable.TIMELINE: _columns(TimelinePointPublic),
    ExportTable.RECENT_DIALOGS: _columns(RecentDialogPublic),
    ExportTable.TOP_USERS: _columns(TopUserPublic),
    ExportTable.MODELS: _columns(ModelUsagePublic),
    ExportTable.LLM_TIMELINE: _columns(LlmTimelinePointPublic),
    # One row per signup week, each retention day's fields prefixed: d1_eligible_users, ...
    ExportTable.RETENTION: ["cohort_start", "users"]
    + [f"{day}_{field}" for day in ("d1", "d7", "d30") for field in _columns(RetentionDayPublic)],
    # One row per spender, each budget meter as its used and limit columns (empty: no such limit).
    ExportTable.TOP_SPENDERS: ["user_id", "cost_usd", "total_messages", "exempt"]
    + [f"{p}_{u}_{f}" for p in ("day", "month") for u in ("tokens", "usd") for f in ("used", "limit")],
}


# The tables that are a list of the response as it is.
LISTS: dict[ExportTable, Callable[[StatsPublic], Sequence[BaseModel]]] = {
    ExportTable.TIMELINE: lambda body: body.activity_timeline,
    ExportTable.RECENT_DIALOGS: lambda body: body.recent_dialogs,
    ExportTable.TOP_USERS: lambda body: body.top_users,
    ExportTable.MODELS: lambda body: body.llm_usage.models,
    ExportTable.LLM_TIMELINE: lambda body: body.llm_timeline,
}


def _records(table: ExportTable, body: StatsPublic) -> Sequence[dict[str, Any]]:
    match table:
        case ExportTable.SUMMARY:
            current = SummaryFiguresPublic.model_validate(body.summary, from_attributes=True)
            spans = body.model_dump(
                mode="json", include={"period_start", "period_end", "previous_start", "previous_end"}
            )
            return [
                {"window": "current", "start": spans["period_start"], "end": spans["period_end"],
                 **current.model_dump(mode="json")},
                {"window": "previous", "start": spans["previous_start"], "end": spans["previous_end"],
                 **body.summary.previous.model_dump(mode="json")},
            ]  # fmt: skip
        case ExportTable.RETENTION:
            return [
                {
                    "cohort_start": cohort["cohort_start"], "users": cohort["users"],
                    **{f"{day}_{field}": value for day in ("d1", "d7", "d30")
                       for field, value in cohort[day].items()},
                }
                for cohort in (c.model_dump(mode="json") for c in body.retention)
            ]  # fmt: skip
        case ExportTable.TOP_SPENDERS:
            return [_spender_record(spender.model_dump(mode="json")) for spender in body.top_spenders]
        case _:
            return [item.model_dump(mode="json") for item in LISTS[table](body)]


def _spender_record(spender: dict[str, Any]) -> dict[str, Any]:
    record = {key: spender[key] for key in ("user_id", "cost_usd", "total_messages", "exempt")}
    record |= dict.fromkeys(COLUMNS[ExportTable.TOP_SPENDERS][4:])
    for meter in spender["meters"]:
        prefix = f"{meter['period']}_{meter['unit']}"
        record |= {f"{prefix}_used": meter["used"], f"{prefix}_limit": meter["limit"]}
    return record


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet shows it, never as a formula; None as an empty cell, booleans as in JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # as the JSON writes it
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def render_csv(table: ExportTable, body: StatsPublic) -> str:
    """The table of ``body`` as CSV (RFC 4180: CRLF line ends, a header row)."""
    columns = COLUMNS[table]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for record in _records(table, body):
        writer.writerow([safe_cell(record[column]) for column in columns])
    return out.getvalue()


def filename(table: ExportTable, body: StatsPublic) -> str:
    """A name that says what and when: ``parley-top_users-week-rolling-20261203T1500Z.csv``."""
    return (
        f"parley-{table.value}-{body.period.value}-{body.window.value}-{body.generated_at:%Y%m%dT%H%M}Z.csv"
    )
