"""The dashboard in real Chromium against real API processes: login, figures, periods, windows, every state.

Figures on the page are compared with the JSON the API returned for the same period and window (the
very response the page rendered) and with the known totals of tests/e2e/seed.py.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, Request, Response, Route, expect

from parley_testing.waiting import wait_for
from tests.e2e.seed import (
    ACCOUNTS,
    EXPECTED,
    EXPECTED_AUDIENCE,
    EXPECTED_BUDGETS,
    EXPECTED_PREVIOUS_MESSAGES,
    EXPECTED_RETENTION,
    EXPECTED_SPENDERS,
    EXPECTED_STOPS,
    FALLBACK,
    LEDGER,
    LONG_ANSWER,
    PRIMARY,
)
from tests.e2e.support import PHONE, NewPage, RunningApi, screenshot

STORAGE_KEY = "parley.dashboard.credentials"
INTEGER_METRICS = ("total_users", "total_messages", "active_dialogs")
AUDIENCE_COUNTS = ("daily_active_users", "weekly_active_users", "monthly_active_users")
RETENTION_DAYS = ("d1", "d7", "d30")
EM_DASH = "\N{EM DASH}"  # a retention day no user has reached yet; an unknown latency percentile
PERCENTILES = (("p50", "latency_p50_ms"), ("p95", "latency_p95_ms"), ("p99", "latency_p99_ms"))
PERCENTILE_BIN = "the upper end of the 10 % latency bin holding the percentile"
BUDGET_PERIODS = (("day", "Budget today"), ("month", "Budget this month"))
MODELS_HEADER = [
    "Model",
    "Requests",
    "Share of answers",
    "Fallback",
    "Avg. latency",
    "p50 / p95 / p99 latency",
    "Stopped",
    "Retried",
    "Tokens",
]
TIMES, DASH = (
    "\N{MULTIPLICATION SIGN}",
    "\N{EN DASH}",
)  # the page writes "7 x 24 h" and "14:00-15:00" with these
# How the comparison names the previous window of equal length, per window mode and period.
WINDOW_LENGTH = {
    "rolling": {"day": "24 h", "week": f"7 {TIMES} 24 h", "month": f"30 {TIMES} 24 h"},
    "calendar": {"day": "24 hours", "week": "7 days", "month": "30 days"},
}


def is_stats(period: str, window: str | None = None) -> Any:
    """A predicate for page.expect_response/request: the stats call of ``period`` (and ``window``)."""
    wanted = f"/api/v1/stats?period={period}" + ("" if window is None else f"&window={window}")
    return lambda response: wanted in response.url


def is_export(table: str) -> Callable[[Request], bool]:
    """A predicate for page.expect_request: the CSV export of ``table``."""
    return lambda request: f"/api/v1/stats/{table}.csv?" in request.url


def sign_in(page: Page, account: str = "analyst", password: str | None = None) -> None:
    """Fill the login form and submit it."""
    page.fill("#login-username", account)
    page.fill("#login-password", ACCOUNTS[account] if password is None else password)
    page.click("#login-submit")


def open_overview(
    page: Page, api: RunningApi, period: str = "week", account: str = "analyst", window: str | None = None
) -> dict[str, Any]:
    """Load the page for ``period`` (and ``window``), sign in, wait for the overview; returns the JSON
    it rendered."""
    page.goto(f"{api.base_url}/?period={period}" + ("" if window is None else f"&window={window}"))
    with page.expect_response(is_stats(period, window or "rolling")) as response:
        sign_in(page, account)
    wait_rendered(page, period, window or "rolling")
    data: dict[str, Any] = response.value.json()
    return data


def wait_rendered(page: Page, period: str, window: str = "rolling") -> None:
    """Wait until the overview shows ``period`` in ``window`` mode and nothing is loading."""
    expect(page.locator("#dashboard-view")).to_be_visible()
    expect(
        page.locator(f'#overview[data-period="{period}"][data-window="{window}"][aria-busy="false"]')
    ).to_be_attached()


def switch_period(
    page: Page, period: str, *, keyboard: str | None = None, window: str = "rolling"
) -> dict[str, Any]:
    """Change the period by a click (or a key pressed in the control); returns the JSON rendered."""
    with page.expect_response(is_stats(period, window)) as response:
        if keyboard:
            page.locator('#period-control [aria-checked="true"]').press(keyboard)
        else:
            page.click(f'#period-control [data-period="{period}"]')
    wait_rendered(page, period, window)
    data: dict[str, Any] = response.value.json()
    return data


def switch_window(page: Page, window: str, period: str, *, keyboard: str | None = None) -> dict[str, Any]:
    """Change the window mode by a click (or a key pressed in the control); returns the JSON rendered."""
    with page.expect_response(is_stats(period, window)) as response:
        if keyboard:
            page.locator('#window-control [aria-checked="true"]').press(keyboard)
        else:
            page.click(f'#window-control [data-window="{window}"]')
    wait_rendered(page, period, window)
    data: dict[str, Any] = response.value.json()
    return data


def partial_indexes(data: dict[str, Any]) -> list[int]:
    """The timeline points the API flagged partial."""
    return [index for index, point in enumerate(data["activity_timeline"]) if point["partial"]]


def hhmm(timestamp: str) -> str:
    """14:37 of an API timestamp (UTC)."""
    return datetime.fromisoformat(timestamp).strftime("%H:%M")


def span_text(start: str, end: str) -> str:
    """A window as the page writes it: "Nov 26, 14:05 (en dash) Dec 3, 14:05 UTC"."""

    def when(timestamp: str) -> str:
        moment = datetime.fromisoformat(timestamp)
        return f"{moment:%b} {moment.day}, {moment:%H:%M}"

    return f"{when(start)} {DASH} {when(end)} UTC"


def number(text: str) -> float:
    """A figure as shown ("12,345", "3.25", "12.5%") as a number."""
    return float(text.replace(",", "").replace("%", "").strip())


def latency_ms(text: str) -> float:
    """A latency as shown ("875 ms", "1.3 s") in milliseconds."""
    return (
        number(text.removesuffix(" ms")) if text.endswith(" ms") else number(text.removesuffix(" s")) * 1000
    )


def usd_matches(text: str, value: float) -> bool:
    """Whether a dollar figure as shown ("$0.0375", "$12.34", "<$0.0001") is ``value`` as the page rounds
    it: to the cent from a dollar up, else to four decimals."""
    if text == "<$0.0001":
        return 0 < value < 0.00005
    shown = float(text.removeprefix("$").replace(",", ""))
    return abs(shown - value) <= (0.005 if value >= 1 else 0.00005) + 1e-12


def wait_until(page: Page, condition: Callable[[], bool]) -> None:
    """Let the page run (route handlers included) until ``condition`` holds."""

    def probe() -> bool:
        if condition():
            return True
        page.wait_for_timeout(50)  # Playwright's sync API runs the page only inside its own calls
        return False

    wait_for(probe, "the condition", timeout=10, interval=0)


def page_figures(page: Page) -> dict[str, Any]:
    """Everything the overview shows, read from the DOM."""
    figures: dict[str, Any] = page.evaluate(
        """() => {
        const text = (root, selector) => root.querySelector(selector)?.textContent.trim() ?? null;
        const cards = {};
        for (const card of document.querySelectorAll(".stat[data-metric]")) {
            cards[card.dataset.metric] = {
                value: text(card, "[data-role=value]"),
                badge: card.querySelector("[data-role=badge]").dataset.direction,
            };
        }
        return {
            cards,
            timeline: [...document.querySelectorAll("#chart-table tbody tr")].map(
                (row) => [...row.cells].slice(1).map((cell) => Number(cell.textContent))),
            partial: [...document.querySelectorAll("#chart-table tbody tr")].map(
                (row) => row.dataset.partial === "true"),
            badges: [...document.querySelectorAll(".stat[data-metric] [data-role=badge]")].map(
                (badge) => badge.getAttribute("aria-label")),
            topUsers: [...document.querySelectorAll("#top-users tbody tr")].map((row) => ({
                user: Number(row.dataset.userId), messages: text(row, ".bar-label"),
                days: row.cells[3].textContent })),
            dialogs: [...document.querySelectorAll("#recent-dialogs .dialog")].map((item) => ({
                user: Number(item.dataset.userId),
                messages: Number(item.querySelector(".dialog-meta").dataset.messages),
                preview: text(item, ".dialog-preview") })),
            models: [...document.querySelectorAll("#llm-models tbody tr")].map((row) => ({
                model: row.dataset.model, requests: text(row, ".bar-label"),
                share: row.cells[2].textContent, fallback: row.cells[3].textContent,
                latency: row.cells[4].textContent, warned: row.querySelector(".is-warning") !== null })),
            llmRequests: text(document, "#llm-requests"),
            llmFallback: text(document, "#llm-fallback"),
            llmFallbackWarned: document.querySelector("#llm-fallback").classList.contains("is-warning"),
            chartLine: document.querySelector("#chart .line--messages")?.getAttribute("d") ?? null,
        };
    }"""
    )
    return figures


def assert_page_matches(page: Page, data: dict[str, Any]) -> dict[str, Any]:
    """Every figure on the page equals the API's JSON ``data``; returns what the page showed."""
    shown = page_figures(page)
    summary = data["summary"]
    for metric, card in shown["cards"].items():
        assert number(card["value"]) == summary[metric], metric
        current, previous = summary[metric], summary["previous"][metric]
        direction = "up" if current > previous else "down" if current < previous else "flat"
        assert card["badge"] == direction, metric
    assert shown["timeline"] == [[p["message_count"], p["active_users"]] for p in data["activity_timeline"]]
    assert shown["partial"] == [p["partial"] for p in data["activity_timeline"]]
    length = WINDOW_LENGTH[data["window"]][data["period"]]
    assert all(label.endswith(f" vs the previous {length}") for label in shown["badges"]), shown["badges"]
    assert [(u["user"], number(u["messages"]), number(u["days"])) for u in shown["topUsers"]] == [
        (u["user_id"], u["total_messages"], u["dialog_count"]) for u in data["top_users"]
    ]
    assert [(d["user"], d["messages"]) for d in shown["dialogs"]] == [
        (d["user_id"], d["message_count"]) for d in data["recent_dialogs"]
    ]
    if data["previews_enabled"]:
        assert [d["preview"] for d in shown["dialogs"]] == [d["preview"] for d in data["recent_dialogs"]]
    else:
        assert all(d["preview"] is None for d in shown["dialogs"])
    usage = data["llm_usage"]
    assert number(shown["llmRequests"]) == usage["requests"]
    assert number(shown["llmFallback"]) == round(usage["fallback_share"] * 100, 1)
    assert shown["llmFallbackWarned"] == (usage["fallback_share"] > 0.2), "warned by the overall share only"
    assert len(shown["models"]) == len(usage["models"])
    for row, model in zip(shown["models"], usage["models"], strict=True):
        assert row["model"] == model["model"]
        assert number(row["requests"]) == model["requests"]
        assert number(row["share"]) == round(model["answer_share"] * 100, 1)
        assert number(row["fallback"]) == round(model["fallback_share"] * 100, 1)
        assert not row["warned"], "a model's own fallback share is no warning"
        assert abs(latency_ms(row["latency"]) - model["avg_latency_ms"]) <= 50, row
    assert_panels_match(page, data)
    return shown


def panel_figures(page: Page) -> dict[str, Any]:
    """The audience tiles and the retention table, read from the DOM."""
    figures: dict[str, Any] = page.evaluate(
        """() => {
        const text = (root, selector) => root.querySelector(selector)?.textContent.trim() ?? null;
        const audience = {};
        for (const tile of document.querySelectorAll(".stat[data-audience]")) {
            audience[tile.dataset.audience] = {
                value: text(tile, "[data-role=value]"), foot: text(tile, "[data-role=foot]") };
        }
        const retention = [...document.querySelectorAll("#retention tbody tr")].map((row) => {
            const days = {};
            for (const cell of row.querySelectorAll("td[data-day]")) {
                days[cell.dataset.day] = {
                    text: cell.textContent.trim(), rate: cell.dataset.rate, title: cell.title,
                    label: cell.dataset.label, dash: text(cell, ".retention-none") };
            }
            const time = row.querySelector("th time");
            return {
                start: row.dataset.cohortStart, week: time.textContent, date: time.dateTime,
                users: text(row, "[data-role=users]"), current: row.dataset.current === "true", days };
        });
        return { audience, retention };
    }"""
    )
    return figures


def rate_text(rate: float) -> str:
    """A retention rate as the page writes it: a whole percent, never "0%" above 0 or "100%" below 1."""
    if 0 < rate < 0.005:
        return "<1%"
    if 0.995 <= rate < 1:
        return ">99%"
    return f"{math.floor(rate * 100 + 0.5)}%"  # Intl rounds half away from zero


def week_label(cohort_start: str) -> str:
    """Nov 23: a signup week's Monday as the page writes it."""
    monday = datetime.fromisoformat(cohort_start)
    return f"{monday:%b} {monday.day}"


def assert_panels_match(page: Page, data: dict[str, Any]) -> dict[str, Any]:
    """The audience tiles, the retention table, the LLM chart, the models' percentiles, stops and
    retries, and the top spenders equal the API's JSON ``data``; returns what they showed."""
    shown = panel_figures(page)
    shown["llm"] = assert_llm_panels_match(page, data)
    audience = data["audience"]
    for key in AUDIENCE_COUNTS:
        assert number(shown["audience"][key]["value"]) == audience[key], key
    assert number(shown["audience"]["stickiness"]["value"]) == round(audience["stickiness"] * 100, 1)
    rows = shown["retention"]
    assert [row["start"] for row in rows] == [cohort["cohort_start"] for cohort in data["retention"]]
    assert [row["current"] for row in rows] == [False] * (len(rows) - 1) + [True], "the current week last"
    for row, cohort in zip(rows, data["retention"], strict=True):
        assert row["week"] == week_label(cohort["cohort_start"])
        assert row["date"] == cohort["cohort_start"][:10]
        assert number(row["users"]) == cohort["users"]
        for day in RETENTION_DAYS:
            figures, cell = cohort[day], row["days"][day]
            assert cell["label"] == f"Day {day[1:]}"
            if figures["rate"] is None:
                assert cell["dash"] == EM_DASH, (row["week"], day)
                assert cell["rate"] == "none"
                reason = (
                    "No users were first seen that week"
                    if cohort["users"] == 0
                    else f"Not yet: no user's day {day[1:]} has ended"
                )
                assert cell["title"] == reason, (row["week"], day)
            else:
                counts = f"({figures['retained_users']:,} of {figures['eligible_users']:,})"
                assert cell["text"] == f"{rate_text(figures['rate'])} {counts}", (row["week"], day)
                assert float(cell["rate"]) == figures["rate"]
    return shown


def llm_panel_figures(page: Page) -> dict[str, Any]:
    """The LLM chart, the models' percentiles, stops and retries, and the top spenders, read from the DOM."""
    figures: dict[str, Any] = page.evaluate(
        """() => {
        const text = (root, selector) => root.querySelector(selector)?.textContent.trim() ?? null;
        const chart = document.querySelector("#llm-chart");
        const series = {};
        const of = (key) => (series[key] ??= { solid: 0, dashed: 0, runs: 0, markers: [], fills: [],
                                               strokes: [], dash: "none", solidDash: "none", stroke: null });
        for (const path of chart.querySelectorAll("path.line")) {
            const drawn = of(path.dataset.series);
            const d = path.getAttribute("d");
            const curves = (d.match(/C/g) ?? []).length;
            if (path.classList.contains("line--partial")) {
                drawn.dashed += curves;
                drawn.runs += (d.match(/M/g) ?? []).length;
                drawn.dash = getComputedStyle(path).strokeDasharray;
            } else {
                drawn.solid += curves;
                drawn.solidDash = getComputedStyle(path).strokeDasharray;
                drawn.stroke = getComputedStyle(path).stroke;
            }
        }
        for (const marker of chart.querySelectorAll(".marker--partial")) {
            const drawn = of(marker.dataset.series);
            drawn.markers.push(Number(marker.dataset.index));
            drawn.fills.push(getComputedStyle(marker).fill);
            drawn.strokes.push(getComputedStyle(marker).stroke);
        }
        const note = document.querySelector("#llm-chart-partial-note");
        return {
            mode: document.querySelector('#llm-chart-mode [aria-checked="true"]').dataset.mode,
            title: text(document, "#llm-chart-title"),
            points: Number(chart.dataset.points),
            partialPoints: Number(chart.dataset.partialPoints),
            empty: text(chart, ".chart-empty"),
            series,
            surface: getComputedStyle(document.querySelector("#llm-chart-card")).backgroundColor,
            legend: [...document.querySelectorAll("#llm-chart-series .legend-item")].map((item) => ({
                key: item.dataset.series, label: text(item, ".legend-label"),
                sum: text(item, "[data-role=sum]"), pressed: item.getAttribute("aria-pressed") === "true" })),
            partialNote: note.hidden ? null : note.textContent.trim(),
            tableHead: [...document.querySelectorAll("#llm-chart-table thead th")].map(
                (th) => th.textContent),
            table: [...document.querySelectorAll("#llm-chart-table tbody tr")].map((row) => ({
                partial: row.dataset.partial === "true",
                values: [...row.cells].slice(1).map((cell) => Number(cell.dataset.value)) })),
            models: [...document.querySelectorAll("#llm-models tbody tr")].map((row) => ({
                model: row.dataset.model,
                p50: text(row, "[data-role=p50]"), p95: text(row, "[data-role=p95]"),
                p99: text(row, "[data-role=p99]"),
                percentiles: text(row, "[data-role=percentiles]"),
                percentilesTitle: row.querySelector("[data-role=percentiles]").title,
                percentilesLabel: row.querySelector("[data-role=percentiles]").dataset.label,
                stopped: text(row, "[data-role=stopped]"), retried: text(row, "[data-role=retried]") })),
            llmStopped: text(document, "#llm-stopped"),
            llmRetried: text(document, "#llm-retried"),
            spenders: [...document.querySelectorAll("#top-spenders tbody tr")].map((row) => ({
                user: Number(row.dataset.userId), userText: text(row, "th .user-id"),
                cost: text(row, "[data-role=cost]"), messages: text(row, "[data-role=messages]"),
                budgets: [...row.querySelectorAll("td.budget-cell")].map((cell) => ({
                    period: cell.dataset.period, label: cell.dataset.label, state: cell.dataset.state,
                    unit: cell.dataset.unit ?? null, text: text(cell, "[data-role=budget]"),
                    share: text(cell, "[data-role=share]"),
                    width: cell.querySelector(".budget-bar > span")?.style.width ?? null,
                    title: cell.title })) })),
            spendersEmpty: !document.querySelector('[data-empty-for="top-spenders"]').hidden,
        };
    }"""
    )
    return figures


def llm_chart_points(data: dict[str, Any]) -> dict[str, Any]:
    """What the LLM chart draws of ``data``: its points' timestamps and partial flags, the models (in
    the response's order), each model's cost and the tokens by kind per point."""
    entries = data["llm_timeline"]
    stamps = list(dict.fromkeys(entry["timestamp"] for entry in entries))
    models = list(dict.fromkeys(entry["model"] for entry in entries))
    activity = data["activity_timeline"]
    # The response's promise the page relies on: every model at every point of the activity timeline.
    assert len(entries) == len(stamps) * len(models)
    if entries:
        assert stamps == [point["timestamp"] for point in activity]
    else:
        stamps = [point["timestamp"] for point in activity]
    at = {(entry["timestamp"], entry["model"]): entry for entry in entries}
    partial = [
        any(at[(stamp, model)]["partial"] for model in models) if entries else activity[i]["partial"]
        for i, stamp in enumerate(stamps)
    ]
    if entries:
        assert partial == [point["partial"] for point in activity], "the activity timeline's flags"
    cost = {model: [at[(stamp, model)]["cost_usd"] for stamp in stamps] for model in models}
    tokens = {
        kind: [sum(at[(stamp, model)][f"{kind}_tokens"] for model in models) for stamp in stamps]
        for kind in ("prompt", "completion")
    }
    return {"stamps": stamps, "partial": partial, "models": models, "cost": cost, "tokens": tokens}


def expected_budget(spender: dict[str, Any], period: str) -> dict[str, Any]:
    """A spender's budget cell of ``period`` as the page should show it: exempt, no limit, or the
    period's dollar meter (else its tokens meter) with its state."""
    if spender["exempt"]:
        return {"state": "exempt", "text": "exempt", "meter": None}
    own = [meter for meter in spender["meters"] if meter["period"] == period]
    meter = next((m for m in own if m["unit"] == "usd"), None) or next(
        (m for m in own if m["unit"] == "tokens"), None
    )
    if meter is None:
        return {"state": "none", "text": "no limit", "meter": None}
    fraction = meter["used"] / meter["limit"] if meter["limit"] > 0 else 1.0
    state = "exhausted" if meter["exhausted"] else "warning" if fraction > 0.8 else "ok"
    return {"state": state, "meter": meter, "fraction": fraction}


def assert_llm_panels_match(page: Page, data: dict[str, Any]) -> dict[str, Any]:
    """The LLM chart (in the mode shown), the models' percentiles, stopped and retried answers, and the
    top spenders with their budgets equal the API's JSON ``data``; returns what the page showed."""
    shown = llm_panel_figures(page)
    assert_llm_chart_matches(shown, data)
    assert_models_stops_match(shown, data)
    assert_spenders_match(shown, data)
    return shown


def assert_llm_chart_matches(shown: dict[str, Any], data: dict[str, Any]) -> None:
    """The LLM chart as ``llm_panel_figures`` read it draws ``data``'s llm_timeline in the mode shown."""
    drawn = llm_chart_points(data)
    flags = drawn["partial"]
    count = len(flags)
    if shown["mode"] == "cost":
        assert shown["title"] == "Cost over time by model"
        expected = {model: drawn["cost"][model] for model in drawn["models"]}
        labels = drawn["models"]
    else:
        assert shown["title"] == "Tokens over time by kind"
        expected = drawn["tokens"]
        labels = ["Prompt tokens", "Completion tokens"]
    legend = shown["legend"]
    assert [item["key"] for item in legend] == list(expected), "one legend entry per series"
    assert [item["label"] for item in legend] == labels
    for item in legend:
        total = sum(expected[item["key"]])
        if shown["mode"] == "cost":
            assert usd_matches(item["sum"], total), item
        else:
            assert number(item["sum"]) == total, item
    visible = [item["key"] for item in legend if item["pressed"]]
    assert visible or not legend, "never every series hidden"
    assert shown["points"] == count
    assert shown["partialPoints"] == sum(flags)
    if all(value == 0 for values in expected.values() for value in values):
        assert shown["empty"] is not None, "an empty chart says so"
        assert shown["series"] == {}
    else:
        assert shown["empty"] is None
        partial = [index for index, flag in enumerate(flags) if flag]
        dashed = [index for index in range(count - 1) if flags[index] or flags[index + 1]]
        runs = sum(1 for n, index in enumerate(dashed) if n == 0 or dashed[n - 1] != index - 1)
        assert sorted(shown["series"]) == sorted(visible), "one line per series shown"
        for key in visible:
            series = shown["series"][key]
            assert series["solid"] + series["dashed"] == max(0, count - 1), key  # one curve per segment
            assert series["dashed"] == len(dashed), key
            assert series["runs"] == (runs if count > 1 else 0), key
            assert series["markers"] == partial, key
            assert all(fill == shown["surface"] for fill in series["fills"]), f"{key}: hollow markers"
            assert all(stroke == series["stroke"] for stroke in series["strokes"]), key
            assert series["solidDash"] == "none", key
            if dashed:
                assert series["dash"] not in ("none", ""), key
    assert (shown["partialNote"] is not None) == any(flags)
    # The screen-reader table: every model's cost, then the tokens by kind, whatever the mode.
    assert shown["tableHead"] == [
        "Time",
        *[f"{model}: cost" for model in drawn["models"]],
        "Prompt tokens",
        "Completion tokens",
    ]
    assert [row["partial"] for row in shown["table"]] == flags
    for i, row in enumerate(shown["table"]):
        assert row["values"] == [
            *[drawn["cost"][model][i] for model in drawn["models"]],
            drawn["tokens"]["prompt"][i],
            drawn["tokens"]["completion"][i],
        ], drawn["stamps"][i]


def assert_models_stops_match(shown: dict[str, Any], data: dict[str, Any]) -> None:
    """The models' latency percentiles, stopped and retried answers, and their totals, equal ``data``'s."""
    usage = data["llm_usage"]
    assert [row["model"] for row in shown["models"]] == [model["model"] for model in usage["models"]]
    for row, model in zip(shown["models"], usage["models"], strict=True):
        for label, field in PERCENTILES:
            if model[field] is None:
                assert row[label] == EM_DASH, (model["model"], label)
            else:
                assert abs(latency_ms(row[label]) - model[field]) <= 50, (model["model"], label, row[label])
        assert row["percentiles"] == " / ".join(row[label] for label, _ in PERCENTILES)
        assert row["percentilesTitle"].endswith(f"each {PERCENTILE_BIN}"), row["percentilesTitle"]
        assert row["percentilesLabel"] == "p50 / p95 / p99"
        assert number(row["stopped"]) == model["stopped_count"], model["model"]
        assert number(row["retried"]) == model["retried_count"], model["model"]
    assert number(shown["llmStopped"]) == usage["stopped_count"]
    assert number(shown["llmRetried"]) == usage["retried_count"]


def assert_spenders_match(shown: dict[str, Any], data: dict[str, Any]) -> None:
    """The top spenders, most first, and each budget cell, equal ``data``'s."""
    spenders = data["top_spenders"]
    assert shown["spendersEmpty"] == (not spenders)
    assert [row["user"] for row in shown["spenders"]] == [spender["user_id"] for spender in spenders]
    for row, spender in zip(shown["spenders"], spenders, strict=True):
        assert row["userText"] == str(spender["user_id"])
        assert usd_matches(row["cost"], spender["cost_usd"]), (row["cost"], spender["cost_usd"])
        assert number(row["messages"]) == spender["total_messages"]
        assert [(cell["period"], cell["label"]) for cell in row["budgets"]] == list(BUDGET_PERIODS)
        for cell, (period, _) in zip(row["budgets"], BUDGET_PERIODS, strict=True):
            want = expected_budget(spender, period)
            where = (spender["user_id"], period)
            assert cell["state"] == want["state"], where
            meter = want["meter"]
            if meter is None:
                assert cell["text"] == want["text"], where
                assert cell["width"] is None, where
                continue
            assert cell["unit"] == meter["unit"], where
            if meter["unit"] == "tokens":
                assert cell["text"] == f"{round(meter['used']):,} of {round(meter['limit']):,} tokens", where
            else:
                used, limit = cell["text"].split(" of ")
                assert usd_matches(used, meter["used"]), where
                assert usd_matches(limit, meter["limit"]), where
            assert cell["share"] == ("exhausted" if meter["exhausted"] else rate_text(want["fraction"])), (
                where
            )
            assert abs(float(cell["width"].removesuffix("%")) - min(100, want["fraction"] * 100)) < 0.01, (
                where
            )


def test_wrong_login_is_refused_and_the_right_one_opens_the_overview(
    new_page: NewPage, api: RunningApi
) -> None:
    page = new_page()
    page.goto(f"{api.base_url}/")
    expect(page.locator("#login-view")).to_be_visible()
    expect(page).to_have_url(re.compile(r"\?period=week$"))
    expect(page.locator("#login-username")).to_be_focused()
    screenshot(page, "login")

    with page.expect_response(is_stats("week")) as refused:
        sign_in(page, "analyst", password="not-the-password")
    assert refused.value.status == 401
    expect(page.locator("#login-message")).to_have_text("Wrong username or password.")
    expect(page.locator("#dashboard-view")).to_be_hidden()
    assert page.evaluate(f"sessionStorage.getItem('{STORAGE_KEY}')") is None
    screenshot(page, "login-refused")

    with page.expect_response(is_stats("week")) as accepted:
        sign_in(page)
    wait_rendered(page, "week")
    data = accepted.value.json()
    expect(page.locator("#current-user")).to_have_text("analyst")
    assert_page_matches(page, data)
    assert page.evaluate("localStorage.length") == 0, "credentials never go to localStorage"
    assert page.evaluate("document.cookie") == ""
    screenshot(page, "overview-week")


def test_figures_equal_the_api_for_every_period_and_switching_changes_numbers_and_chart(
    new_page: NewPage, api: RunningApi
) -> None:
    page = new_page()
    week = open_overview(page, api, "week")
    week_shown = assert_page_matches(page, week)

    day = switch_period(page, "day")
    expect(page).to_have_url(re.compile(r"\?period=day$"))
    day_shown = assert_page_matches(page, day)
    screenshot(page, "overview-day")

    month = switch_period(page, "month", keyboard="ArrowLeft")  # day -> (wraps) month
    expect(page).to_have_url(re.compile(r"\?period=month$"))
    expect(page.locator('#period-control [data-period="month"]')).to_be_focused()
    month_shown = assert_page_matches(page, month)
    screenshot(page, "overview-month")

    for period, data in (("day", day), ("week", week), ("month", month)):
        assert {metric: data["summary"][metric] for metric in INTEGER_METRICS} == EXPECTED[period]
        assert data["summary"]["previous"]["total_messages"] == EXPECTED_PREVIOUS_MESSAGES[period]
        independent = api.stats(period).json()  # a separate request: the same figures
        assert {m: independent["summary"][m] for m in INTEGER_METRICS} == EXPECTED[period]
    # Rolling (the default): one point per hour or day the window touches, the first and last partial.
    assert len(day_shown["timeline"]) == 25
    assert len(week_shown["timeline"]) == 8
    assert len(month_shown["timeline"]) == 31
    figures = [shown["cards"]["total_messages"]["value"] for shown in (day_shown, week_shown, month_shown)]
    assert figures == ["12", "26", "42"]
    assert len({day_shown["chartLine"], week_shown["chartLine"], month_shown["chartLine"]}) == 3

    # The period lives in the URL: a reload (same tab, same session) keeps it and the session.
    with page.expect_response(is_stats("month")):
        page.reload()
    wait_rendered(page, "month")
    expect(page.locator('#period-control [aria-checked="true"]')).to_have_text("Month")
    # Back in history returns to the previous period.
    with page.expect_response(is_stats("day")):
        page.go_back()
    wait_rendered(page, "day")


def test_previews_are_text_cut_by_the_api_and_badges_say_the_change(
    new_page: NewPage, api: RunningApi
) -> None:
    page = new_page()
    data = open_overview(page, api, "day")

    first = data["recent_dialogs"][0]
    assert first["user_id"] == 1001
    assert first["preview"].endswith("…")
    assert LONG_ANSWER.startswith(first["preview"].removesuffix("…"))
    preview = page.locator('#recent-dialogs .dialog[data-user-id="1001"] .dialog-preview')
    expect(preview).to_have_text(first["preview"])  # the markup shows as text
    assert page.evaluate("window.pwned") is None
    assert page.locator("#recent-dialogs b, #recent-dialogs script").count() == 0
    users = page.locator('.stat[data-metric="total_users"] [data-role=badge]')
    expect(users).to_have_text("+16.7%")  # 7 users against 6 the day before
    expect(users).to_have_attribute("aria-label", "up 16.7% vs the previous 24 h")
    span = span_text(data["previous_start"], data["previous_end"])
    expect(users).to_have_attribute("title", f"up 16.7% vs the previous 24 h ({span})")
    messages = page.locator('.stat[data-metric="total_messages"] [data-role=badge]')
    expect(messages).to_have_text("+500%")  # 12 messages against 2


def test_tooltip_and_legend_on_the_chart(new_page: NewPage, api: RunningApi) -> None:
    page = new_page(color_scheme="light")
    data = open_overview(page, api, "week")
    chart = page.locator("#chart")

    chart.focus()
    page.keyboard.press("End")
    tooltip = page.locator("#chart-tooltip")
    expect(tooltip).to_be_visible()
    last = data["activity_timeline"][-1]
    expect(tooltip.locator('[data-series="messages"]')).to_have_text(f"{last['message_count']:,}")
    expect(tooltip.locator('[data-series="users"]')).to_have_text(str(last["active_users"]))
    drawn = chart.locator("svg").element_handle()
    chart.evaluate("chart => { chart.style.width = `${chart.clientWidth - 40}px`; }")  # as a resize does
    page.wait_for_function("svg => !svg.isConnected", arg=drawn)  # the chart was drawn anew
    expect(chart).to_be_focused()
    expect(tooltip.locator('[data-series="messages"]')).to_have_text(f"{last['message_count']:,}")
    page.keyboard.press("ArrowLeft")  # moves from where the read-out was, not from an end
    before = data["activity_timeline"][-2]
    expect(tooltip.locator('[data-series="messages"]')).to_have_text(f"{before['message_count']:,}")

    box = chart.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    expect(tooltip).to_be_visible()
    screenshot(page, "overview-light")

    page.click('#chart-legend [data-series="users"]')
    expect(page.locator('#chart-legend [data-series="users"]')).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#chart .line--users")).to_have_count(0)
    expect(page.locator("#chart .marker--users")).to_have_count(0)
    expect(page.locator("#chart .line--messages:not(.line--partial)")).to_have_count(1)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(243, 245, 250)", "the light theme follows prefers-color-scheme"


def assert_chart_marks_partial(page: Page, data: dict[str, Any]) -> None:
    """The chart draws exactly the points ``data`` flags partial as partial, for each series: a hollow
    marker on each, the segments into and out of them dashed, every other segment solid."""
    flags = [point["partial"] for point in data["activity_timeline"]]
    partial = [index for index, flag in enumerate(flags) if flag]
    dashed = [index for index in range(len(flags) - 1) if flags[index] or flags[index + 1]]
    runs = sum(1 for n, index in enumerate(dashed) if n == 0 or dashed[n - 1] != index - 1)
    drawn: dict[str, Any] = page.evaluate(
        """() => {
        const chart = document.querySelector("#chart");
        const series = {};
        for (const key of ["messages", "users"]) {
            const solid = chart.querySelector(`.line--${key}:not(.line--partial)`);
            const dashed = chart.querySelector(`.line--${key}.line--partial`);
            const markers = [...chart.querySelectorAll(`.marker--partial.marker--${key}`)];
            series[key] = {
                markers: markers.map((marker) => Number(marker.dataset.index)),
                fills: markers.map((marker) => getComputedStyle(marker).fill),
                strokes: markers.map((marker) => getComputedStyle(marker).stroke),
                line: getComputedStyle(solid).stroke,
                solid: solid.getAttribute("d"),
                solidDash: getComputedStyle(solid).strokeDasharray,
                dashed: dashed?.getAttribute("d") ?? "",
                dash: dashed ? getComputedStyle(dashed).strokeDasharray : "none",
            };
        }
        return {
            series,
            surface: getComputedStyle(document.querySelector(".chart-card")).backgroundColor,
            count: chart.dataset.partialPoints,
        };
    }"""
    )
    assert drawn["count"] == str(len(partial))
    for key, series in drawn["series"].items():
        assert series["markers"] == partial, key
        assert all(fill == drawn["surface"] for fill in series["fills"]), f"{key}: hollow markers"
        assert all(stroke == series["line"] for stroke in series["strokes"]), f"{key}: in the series' colour"
        assert series["dashed"].count("C") == len(dashed), key
        assert series["dashed"].count("M") == runs, key
        assert series["solid"].count("C") == len(flags) - 1 - len(dashed), key
        assert series["solidDash"] == "none", key
        if dashed:
            assert series["dash"] not in ("none", ""), key


def test_window_control_switches_the_request_the_points_and_the_url(
    new_page: NewPage, api: RunningApi
) -> None:
    page = new_page(color_scheme="light")
    requests: list[str] = []

    def record(request: Request) -> None:
        if "/api/v1/stats?" in request.url:
            requests.append(request.url)

    page.on("request", record)
    rolling = open_overview(page, api, "week")
    assert rolling["window"] == "rolling"
    assert requests[-1].endswith("/api/v1/stats?period=week&window=rolling")
    expect(page).to_have_url(re.compile(r"\?period=week$"))  # rolling, the default, stays out of the URL
    control = page.locator("#window-control")
    expect(control.locator('[data-window="rolling"]')).to_have_attribute("aria-checked", "true")
    expect(control.locator('[role="radio"][tabindex="0"]')).to_have_count(1)
    assert len(assert_page_matches(page, rolling)["timeline"]) == 8
    assert partial_indexes(rolling) == [0, 7]
    assert rolling["summary"]["total_messages"] == EXPECTED["week"]["total_messages"]
    expect(page.locator('.stat[data-metric="messages_per_active_user"] .stat-label')).to_have_text(
        "Messages per active user"
    )
    expect(page.locator('.stat[data-metric="total_messages"] [data-role=previous]')).to_have_text(
        f"vs {rolling['summary']['previous']['total_messages']} in the previous 7 {TIMES} 24 h"
    )
    page.locator("#chart").focus()
    page.keyboard.press("End")
    expect(page.locator("#chart-tooltip .tooltip-note")).to_have_text(
        f"Partial day, so far (to {hhmm(rolling['generated_at'])} UTC)"
    )
    screenshot(page, "rolling-week-light")

    calendar = switch_window(page, "calendar", "week")
    assert requests[-1].endswith("/api/v1/stats?period=week&window=calendar")
    assert calendar["window"] == "calendar"
    expect(page).to_have_url(re.compile(r"\?period=week&window=calendar$"))
    expect(control.locator('[data-window="calendar"]')).to_be_focused()
    expect(control.locator('[data-window="calendar"]')).to_have_attribute("aria-checked", "true")
    assert len(assert_page_matches(page, calendar)["timeline"]) == 7
    assert partial_indexes(calendar) == [6]
    assert calendar["previous_end"] == calendar["period_start"]
    expect(page.locator('.stat[data-metric="total_messages"] [data-role=badge]')).to_have_attribute(
        "title",
        re.compile(
            r" vs the previous 7 days \("
            + re.escape(span_text(calendar["previous_start"], calendar["previous_end"]))
            + r"\)$"
        ),
    )

    # The period keeps the window; the keyboard moves in the window control as in the period's.
    day = switch_period(page, "day", window="calendar")
    expect(page).to_have_url(re.compile(r"\?period=day&window=calendar$"))
    assert len(assert_page_matches(page, day)["timeline"]) == 24
    rolling_day = switch_window(page, "rolling", "day", keyboard="ArrowRight")  # calendar -> (wraps) rolling
    assert requests[-1].endswith("/api/v1/stats?period=day&window=rolling")
    expect(page).to_have_url(re.compile(r"\?period=day$"))
    expect(control.locator('[data-window="rolling"]')).to_be_focused()
    assert len(rolling_day["activity_timeline"]) == 25

    # Back and Forward restore the window (and the period) and fetch it again.
    rows = page.locator("#chart-table tbody tr")
    with page.expect_response(is_stats("day", "calendar")):
        page.go_back()
    wait_rendered(page, "day", "calendar")
    expect(control.locator('[data-window="calendar"]')).to_have_attribute("aria-checked", "true")
    expect(rows).to_have_count(24)
    with page.expect_response(is_stats("week", "calendar")):
        page.go_back()
    wait_rendered(page, "week", "calendar")
    expect(rows).to_have_count(7)
    with page.expect_response(is_stats("week", "rolling")):
        page.go_back()
    wait_rendered(page, "week", "rolling")
    expect(page).to_have_url(re.compile(r"\?period=week$"))
    expect(control.locator('[data-window="rolling"]')).to_have_attribute("aria-checked", "true")
    expect(control.locator('[data-window="calendar"]')).to_have_attribute("tabindex", "-1")
    expect(rows).to_have_count(8)
    with page.expect_response(is_stats("week", "calendar")):
        page.go_forward()
    wait_rendered(page, "week", "calendar")
    expect(page).to_have_url(re.compile(r"\?period=week&window=calendar$"))
    expect(rows).to_have_count(7)
    # A reload keeps it.
    with page.expect_response(is_stats("week", "calendar")):
        page.reload()
    wait_rendered(page, "week", "calendar")
    expect(control.locator('[aria-checked="true"]')).to_have_text("Calendar")


def test_partial_points_are_drawn_as_partial(new_page: NewPage, api: RunningApi) -> None:
    page = new_page()
    day = open_overview(page, api, "day")
    assert partial_indexes(day) == [0, 24]  # rolling: the first from the window's start, the last so far
    assert_chart_marks_partial(page, day)
    first = hhmm(day["activity_timeline"][0]["timestamp"])
    expect(page.locator("#chart-partial-note")).to_be_visible()
    expect(page.locator("#chart-partial-note")).to_have_text(f"Dashed: partial hours (from {first}; so far)")
    chart = page.locator("#chart")
    expect(chart).to_have_attribute(
        "aria-label", re.compile(r"; dashed parts and hollow points are partial hours$")
    )
    expect(page.locator("#chart-table tbody tr").first.locator("td").first).to_contain_text(
        f"(partial hour, from {first})"
    )
    expect(page.locator("#chart-table tbody tr").last.locator("td").first).to_contain_text(
        "(partial hour, so far)"
    )

    chart.focus()
    note = page.locator("#chart-tooltip .tooltip-note")
    page.keyboard.press("Home")
    expect(note).to_have_text(f"Partial hour, from {first}")
    expect(page.locator("#chart-tooltip .tooltip-title")).to_contain_text(f"{first}{DASH}")
    expect(page.locator("#chart .dot--partial")).to_have_count(2)  # the read-out's dots are hollow too
    page.keyboard.press("ArrowRight")
    expect(note).to_have_count(0)
    expect(page.locator("#chart .dot--partial")).to_have_count(0)
    page.keyboard.press("End")
    expect(note).to_have_text("Partial hour, so far")
    expect(page.locator("#chart-tooltip .tooltip-title")).to_contain_text(
        f"{DASH}{hhmm(day['generated_at'])} UTC"
    )

    switch_period(page, "week")
    calendar = switch_window(page, "calendar", "week")
    assert partial_indexes(calendar) == [6]  # calendar: only today
    assert_chart_marks_partial(page, calendar)
    expect(page.locator("#chart-partial-note")).to_have_text("Dashed: partial day, so far")
    chart.focus()
    page.keyboard.press("End")
    expect(note).to_have_text(f"Partial day, so far (to {hhmm(calendar['generated_at'])} UTC)")
    screenshot(page, "calendar-week-dark")

    # The flag is the API's, never guessed from the time: a point flagged partial is drawn so.
    altered: list[dict[str, Any]] = []

    def flag_a_middle_point(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["activity_timeline"][3]["partial"] = True
        altered.append(body)
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/api/v1/stats?*", flag_a_middle_point)
    with page.expect_response(is_stats("week", "calendar")):
        page.click("#refresh-button")
    wait_rendered(page, "week", "calendar")
    assert partial_indexes(altered[-1]) == [3, 6]
    assert_chart_marks_partial(page, altered[-1])
    page.unroute("**/api/v1/stats?*", flag_a_middle_point)
    with page.expect_response(is_stats("week", "calendar")):
        page.click("#refresh-button")
    wait_rendered(page, "week", "calendar")
    expect(page.locator("#chart .marker--partial.marker--messages")).to_have_count(1)


def test_models_table_shows_each_models_share_of_answers(new_page: NewPage, api: RunningApi) -> None:
    page = new_page()
    day = open_overview(page, api, "day")
    expect(page.locator("#llm-models thead th")).to_have_text(MODELS_HEADER)
    shown = assert_page_matches(page, day)  # every model's share equals its answer_share
    models = {model["model"]: model for model in day["llm_usage"]["models"]}
    assert models[FALLBACK]["fallback_share"] == 1.0
    assert models[FALLBACK]["requests"] == 2
    assert day["llm_usage"]["requests"] == 6
    assert abs(sum(number(row["share"]) for row in shown["models"]) - 100) <= 0.2
    row = page.locator(f'#llm-models tr[data-model="{FALLBACK}"]')
    expect(row.locator('[data-role="answer-share"]')).to_have_text("33.3%")  # 2 of the day's 6 answers
    expect(row.locator("td").nth(3)).to_have_text("100.0%")  # of its own answers, naturally
    expect(row.locator(".is-warning")).to_have_count(0)  # ...which is no warning
    expect(page.locator("#llm-fallback")).to_have_class(re.compile(r"\bis-warning\b"))  # 2 of 6 overall
    expect(page.locator("#llm-fallback")).to_have_attribute("title", re.compile(r"^2 of 6 answers came from"))

    week = switch_period(page, "week")
    assert round(week["llm_usage"]["fallback_share"], 3) == round(2 / 13, 3)
    assert_page_matches(page, week)
    expect(page.locator("#llm-fallback")).not_to_have_class(re.compile(r"\bis-warning\b"))


def test_csv_buttons_carry_the_window(new_page: NewPage, api: RunningApi) -> None:
    page = new_page()
    open_overview(page, api, "week", window="calendar")

    def download(table: str) -> tuple[str, str, str]:
        with (
            page.expect_request(is_export(table)) as request,
            page.expect_download() as file,
        ):
            page.click(f'[data-export="{table}"]')
        content = Path(file.value.path()).read_bytes().decode("utf-8")
        return request.value.url, file.value.suggested_filename, content

    url, name, content = download("timeline")
    assert url.endswith("/api/v1/stats/timeline.csv?period=week&window=calendar")
    assert re.fullmatch(r"parley-timeline-week-calendar-\d{8}T\d{4}Z\.csv", name)
    rows = content.strip().split("\r\n")
    assert len(rows) == 1 + 7  # the calendar week's days
    flags = [row.rsplit(",", 1)[1] for row in rows[1:]]  # booleans as the JSON writes them
    assert flags == ["false"] * 6 + ["true"]  # today, so far

    # The LLM chart's and the top spenders' CSV: the same period and window.
    url, name, content = download("llm_timeline")
    assert url.endswith("/api/v1/stats/llm_timeline.csv?period=week&window=calendar")
    assert re.fullmatch(r"parley-llm_timeline-week-calendar-\d{8}T\d{4}Z\.csv", name)
    rows = content.strip().split("\r\n")
    assert (
        rows[0] == "timestamp,model,requests,prompt_tokens,completion_tokens,fallback_count,cost_usd,partial"
    )
    assert len(rows) == 1 + 7 * 2  # every model at every day
    assert {row.split(",")[1] for row in rows[1:]} == {PRIMARY, FALLBACK}
    url, name, content = download("top_spenders")
    assert url.endswith("/api/v1/stats/top_spenders.csv?period=week&window=calendar")
    assert re.fullmatch(r"parley-top_spenders-week-calendar-\d{8}T\d{4}Z\.csv", name)
    rows = content.strip().split("\r\n")
    assert rows[0].startswith("user_id,cost_usd,total_messages,exempt,day_tokens_used,day_tokens_limit,")
    shown = page.eval_on_selector_all(
        "#top-spenders tbody tr", "rows => rows.map((row) => row.dataset.userId)"
    )
    assert [row.split(",")[0] for row in rows[1:]] == shown, "the users the page shows"

    switch_window(page, "rolling", "week")
    url, name, content = download("models")
    assert url.endswith("/api/v1/stats/models.csv?period=week&window=rolling")
    assert re.fullmatch(r"parley-models-week-rolling-\d{8}T\d{4}Z\.csv", name)
    assert "answer_share" in content.split("\r\n", 1)[0]
    expect(page.locator("#banner")).to_be_hidden()


def test_keyboard_only_sign_in_and_period_control(new_page: NewPage, api: RunningApi) -> None:
    page = new_page()
    page.goto(f"{api.base_url}/?period=day")
    page.keyboard.type("analyst")
    page.keyboard.press("Tab")
    page.keyboard.type(ACCOUNTS["analyst"])
    with page.expect_response(is_stats("day")):
        page.keyboard.press("Enter")
    wait_rendered(page, "day")

    page.keyboard.press("Tab")  # the first stop of the overview: the selected period
    focused = page.locator('#period-control [data-period="day"]')
    expect(focused).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid", "focus is visible"
    with page.expect_response(is_stats("week")):
        page.keyboard.press("ArrowRight")
    wait_rendered(page, "week")
    expect(page.locator('#period-control [data-period="week"]')).to_be_focused()
    expect(page.locator('#period-control [data-period="week"]')).to_have_attribute("aria-checked", "true")
    expect(page.locator('#period-control [role="radio"][tabindex="0"]')).to_have_count(1)


def test_phone_viewport(new_page: NewPage, api: RunningApi) -> None:
    page = new_page(viewport=PHONE)
    data = open_overview(page, api, "week")

    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling"
    for selector in (
        "#period-control",
        "#window-control",
        ".stat",
        "#chart svg",
        "#top-users",
        "#recent-dialogs",
        "#llm-models",
        "#llm-chart svg",
        "#top-spenders",
    ):
        box = page.locator(selector).first.bounding_box()
        assert box is not None, selector
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"], selector
    assert_page_matches(page, data)
    screenshot(page, "phone")
    switch_period(page, "month")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_empty_database(new_page: NewPage, empty_api: RunningApi) -> None:
    page = new_page()
    data = open_overview(page, empty_api, "week")

    assert data["summary"]["total_users"] == 0
    assert_page_matches(page, data)
    expect(page.locator("#empty-hint")).to_be_visible()
    expect(page.locator("#chart .chart-empty")).to_have_text("No activity in this period")
    expect(page.locator('[data-empty-for="top-users"]')).to_be_visible()
    expect(page.locator('[data-empty-for="recent-dialogs"]')).to_be_visible()
    expect(page.locator('[data-empty-for="llm-models"]')).to_be_visible()
    expect(page.locator('.stat[data-metric="total_messages"] [data-role=badge]')).to_have_text("0%")
    screenshot(page, "empty")

    # The LLM chart keeps its time axis, says there is nothing, and so do the tokens; no spenders.
    assert data["llm_timeline"] == []
    assert data["top_spenders"] == []
    expect(page.locator("#llm-chart .chart-empty")).to_have_text("No answers from a model in this period")
    expect(page.locator("#llm-chart-series .legend-item")).to_have_count(0)
    expect(page.locator("#llm-chart-table tbody tr")).to_have_count(len(data["activity_timeline"]))
    expect(page.locator('[data-empty-for="top-spenders"]')).to_be_visible()
    expect(page.locator("#top-spenders")).to_be_hidden()
    expect(page.locator("#llm-stopped")).to_have_text("0")
    expect(page.locator("#llm-retried")).to_have_text("0")
    page.click('#llm-chart-mode [data-mode="tokens"]')
    expect(page.locator("#llm-chart .chart-empty")).to_have_text("No answers from a model in this period")
    expect(page.locator("#llm-chart-series .legend-item")).to_have_count(2)
    assert_page_matches(page, data)
    panel_screenshot(page, "llm-costs-empty", "#llm-costs")


def test_a_disabled_account_is_sent_back_to_login(new_page: NewPage, api: RunningApi) -> None:
    page = new_page()
    open_overview(page, api, "week", account="leaver")
    assert page.evaluate(f"sessionStorage.getItem('{STORAGE_KEY}')") is not None

    api.sql("UPDATE api_users SET is_active = false WHERE username = 'leaver'")
    try:
        with page.expect_response(is_stats("week")) as refused:
            page.click("#refresh-button")
        assert refused.value.status == 401
        expect(page.locator("#login-view")).to_be_visible()
        expect(page.locator("#login-message")).to_contain_text("Your session has ended")
        expect(page.locator("#login-username")).to_have_value("leaver")
        assert page.evaluate(f"sessionStorage.getItem('{STORAGE_KEY}')") is None
        screenshot(page, "session-ended")
    finally:
        api.sql("UPDATE api_users SET is_active = true WHERE username = 'leaver'")


def test_rate_limit_says_when_to_retry(new_page: NewPage, limited_api: RunningApi) -> None:
    page = new_page()
    data = open_overview(page, limited_api, "week", account="limited")  # call 1 of 2
    assert data["previews_enabled"] is False
    assert_page_matches(page, data)
    expect(page.locator("#recent-dialogs .dialog").first).to_be_visible()
    expect(page.locator("#recent-dialogs .dialog-preview")).to_have_count(0)
    expect(page.locator("#recent-sub")).to_contain_text("previews are turned off")

    with page.expect_response(is_stats("week")):
        page.click("#refresh-button")  # call 2 of 2
    wait_rendered(page, "week")
    with page.expect_response(is_stats("week")) as limited:
        page.click("#refresh-button")
    response: Response = limited.value
    assert response.status == 429
    retry_after = int(response.headers["retry-after"])
    banner = page.locator("#banner")
    expect(banner).to_be_visible()
    expect(banner).to_have_text(re.compile(r"Too many requests, retry in \d+ s\."))
    shown = int(re.findall(r"\d+", banner.inner_text())[0])
    assert 0 < shown <= retry_after
    # The figures already shown stay on the page.
    expect(page.locator('.stat[data-metric="total_messages"] [data-role=value]')).to_have_text("26")
    screenshot(page, "rate-limited")


def test_api_unreachable_then_back(new_page: NewPage, api: RunningApi) -> None:
    page = new_page()
    open_overview(page, api, "week")

    def refuse(route: Route) -> None:
        route.abort("connectionrefused")

    page.route("**/api/v1/stats*", refuse)
    page.click("#refresh-button")
    banner = page.locator("#banner")
    expect(banner).to_contain_text("Cannot reach the API")
    expect(page.locator("#banner-retry")).to_be_visible()
    screenshot(page, "unreachable")

    page.unroute("**/api/v1/stats*", refuse)
    with page.expect_response(is_stats("week")):
        page.click("#banner-retry")
    wait_rendered(page, "week")
    expect(banner).to_be_hidden()


def test_loading_state_until_the_first_answer(new_page: NewPage, api: RunningApi) -> None:
    page = new_page()
    page.goto(f"{api.base_url}/?period=month")
    held: list[Route] = []

    def hold(route: Route) -> None:  # a plain function: Playwright cannot wrap a bound builtin
        held.append(route)

    page.route("**/api/v1/stats*", hold)
    sign_in(page)

    # Signing in checks the credentials with a stats call, whose answer is the first overview.
    expect(page.locator("#login-submit")).to_have_text("Signing in…")
    wait_until(page, lambda: len(held) == 1)
    held.pop().continue_()
    wait_rendered(page, "month")
    with page.expect_request(lambda request: "period=month" in request.url):
        page.reload()
    expect(page.locator('#overview[aria-busy="true"].is-initial')).to_be_attached()
    expect(page.locator("#progress")).to_be_visible()
    screenshot(page, "loading")
    wait_until(page, lambda: len(held) == 1)
    held.pop().continue_()
    wait_rendered(page, "month")
    expect(page.locator("#progress")).to_be_hidden()


def test_sign_out_forgets_the_credentials(new_page: NewPage, api: RunningApi) -> None:
    page = new_page()
    open_overview(page, api, "week")
    stored = page.evaluate(f"sessionStorage.getItem('{STORAGE_KEY}')")
    assert stored is not None

    page.click("#logout-button")
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#login-message")).to_have_text("You have signed out.")
    assert page.evaluate("sessionStorage.length") == 0
    assert page.evaluate("localStorage.length") == 0
    expect(page.locator("#login-password")).to_have_value("")
    screenshot(page, "signed-out")

    requests: list[Request] = []

    def record(request: Request) -> None:
        requests.append(request)

    page.on("request", record)
    page.reload()
    expect(page.locator("#login-view")).to_be_visible()
    assert not [r for r in requests if "/api/v1/stats" in r.url], "no call without credentials"


def test_csv_buttons_download_the_period_shown(new_page: NewPage, api: RunningApi) -> None:
    page = new_page()
    open_overview(page, api, "week")
    switch_period(page, "day")
    screenshot(page, "csv-buttons", full_page=False)

    files = {}
    for table in ("timeline", "top_users", "models", "recent_dialogs"):
        with (
            page.expect_request(is_export(table)) as request,
            page.expect_download() as download,
        ):
            page.click(f'[data-export="{table}"]')
        assert request.value.url.endswith(f"/api/v1/stats/{table}.csv?period=day&window=rolling")
        files[table] = download.value
    direct = {
        table: httpx.get(
            f"{api.base_url}/api/v1/stats/{table}.csv",
            params={"period": "day", "window": "rolling"},
            auth=("analyst", ACCOUNTS["analyst"]),
        )
        for table in files
    }

    for table, file in files.items():
        assert re.fullmatch(rf"parley-{table}-day-rolling-\d{{8}}T\d{{4}}Z\.csv", file.suggested_filename)
        content = Path(file.path()).read_bytes().decode("utf-8")
        header = content.split("\r\n", 1)[0]
        assert header == direct[table].text.split("\r\n", 1)[0]
        assert content.count("\r\n") == direct[table].text.count("\r\n")  # the same rows
    timeline = Path(files["timeline"].path()).read_bytes().decode("utf-8").strip().split("\r\n")
    assert timeline[0] == "timestamp,message_count,active_users,partial"
    assert len(timeline) == 1 + 25  # the rolling day's hours: 23 whole ones, the first and the last partial
    expect(page.locator("#banner")).to_be_hidden()


def signup_weeks(api: RunningApi) -> dict[str, frozenset[int]]:
    """The seeded users by signup week (Monday 00:00 UTC of their first day), from the database itself."""
    rows = api.sql(
        "SELECT to_char(date_trunc('week', created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD\"T00:00:00Z\"'), "
        "string_agg(id::text, ',') FROM users GROUP BY 1"
    )
    weeks = {}
    for line in rows.splitlines():
        week, ids = line.split("|")
        weeks[week] = frozenset(int(user) for user in ids.split(","))
    return weeks


def test_audience_tiles_show_the_rolling_audience_whatever_the_period(
    new_page: NewPage, api: RunningApi
) -> None:
    page = new_page()
    week = open_overview(page, api, "week")
    assert week["audience"] == EXPECTED_AUDIENCE
    # The seed's rolling day, week and month: their active dialogs are the DAU, WAU and MAU.
    assert [EXPECTED[period]["active_dialogs"] for period in ("day", "week", "month")] == [
        EXPECTED_AUDIENCE[key] for key in AUDIENCE_COUNTS
    ]
    shown = assert_panels_match(page, week)
    tile = page.locator(".stat[data-audience]")
    expect(tile.locator(".stat-label")).to_have_text(
        ["Daily active users", "Weekly active users", "Monthly active users", "Stickiness (DAU / MAU)"]
    )
    expect(tile.locator("[data-role=value]")).to_have_text(["3", "4", "6", "50.0%"])
    expect(tile.locator("[data-role=foot]")).to_have_text(
        ["last 24 h", f"last 7 {TIMES} 24 h", f"last 30 {TIMES} 24 h", "3 of the 6 monthly active users"]
    )
    expect(page.locator("#audience-sub")).to_have_text(
        f"Distinct users with messages in the last 24 h / 7 {TIMES} 24 h / 30 {TIMES} 24 h ending now, "
        "whatever the period"
    )
    expect(page.locator("#audience")).to_have_attribute("aria-describedby", "audience-sub")

    # Whatever the period and window the page asks, the same figures (the API's and the page's).
    calendar = switch_window(page, "calendar", "week")
    day = switch_period(page, "day", window="calendar")
    month = switch_period(page, "month", window="calendar")
    for data in (calendar, day, month, api.stats("day").json(), api.stats("month", window="calendar").json()):
        assert data["audience"] == EXPECTED_AUDIENCE, (data["period"], data["window"])
    assert panel_figures(page)["audience"] == shown["audience"]
    assert_page_matches(page, month)


def test_retention_table_by_signup_week_and_its_csv(new_page: NewPage, api: RunningApi) -> None:
    page = new_page()
    data = open_overview(page, api, "week")
    cohorts = data["retention"]
    assert len(cohorts) == 8
    starts = [datetime.fromisoformat(cohort["cohort_start"]) for cohort in cohorts]
    now = datetime.fromisoformat(data["generated_at"])
    this_monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    assert starts == [this_monday - timedelta(weeks=7 - i) for i in range(8)], "Mondays, oldest first"

    # The API's figures are the seed's: each group of users in the week of its first day.
    weeks = signup_weeks(api)
    in_range = {weeks[c["cohort_start"]] for c in cohorts if c["cohort_start"] in weeks}
    assert set(EXPECTED_RETENTION) <= in_range, "every seeded signup week is one of the last 8"
    for cohort in cohorts:
        users = weeks.get(cohort["cohort_start"], frozenset())
        assert cohort["users"] == len(users), cohort["cohort_start"]
        expected = EXPECTED_RETENTION.get(users, dict.fromkeys(RETENTION_DAYS, (0, 0)))
        for day, (eligible, retained) in expected.items():
            rate = round(retained / eligible, 4) if eligible else None
            assert cohort[day] == {"eligible_users": eligible, "retained_users": retained, "rate": rate}, day

    shown = assert_panels_match(page, data)
    assert len(shown["retention"]) == 8
    expect(page.locator("#retention thead th")).to_have_text(["Week", "Users", "Day 1", "Day 7", "Day 30"])
    labels = [week_label(cohort["cohort_start"]) for cohort in cohorts]
    expect(page.locator("#retention tbody th time")).to_have_text(labels)
    expect(page.locator("#retention tbody tr").last.locator("th .tag")).to_have_text("this week")
    expect(page.locator("#retention caption")).to_contain_text(
        "Share of the users first seen that week who came back on the N-th day after their first day"
    )

    # 1004 and 1007 share a first day: 1004 came back the next day, 1007 (only /reset messages) never.
    pair = next(c["cohort_start"] for c in cohorts if weeks.get(c["cohort_start"]) == frozenset({1004, 1007}))
    row = page.locator(f'#retention tbody tr[data-cohort-start="{pair}"]')
    expect(row.locator("[data-role=users]")).to_have_text("2")
    expect(row.locator('[data-day="d1"]')).to_have_text("50% (1 of 2)")
    expect(row.locator('[data-day="d1"]')).to_have_attribute(
        "title", "1 of the 2 users whose day 1 has ended came back on it"
    )
    expect(row.locator('[data-day="d7"]')).to_have_text("0% (0 of 2)")
    null_day = row.locator('[data-day="d30"]')  # their day 30 is 9 days ahead
    expect(null_day.locator(".retention-none")).to_have_text(EM_DASH)
    expect(null_day.locator(".retention-none")).to_have_attribute("aria-hidden", "true")
    expect(null_day.locator(".visually-hidden")).to_have_text("not yet: no user's day 30 has ended")
    expect(null_day).to_have_attribute("title", "Not yet: no user's day 30 has ended")
    day30 = next(c["cohort_start"] for c in cohorts if weeks.get(c["cohort_start"]) == frozenset({1005}))
    expect(page.locator(f'#retention tr[data-cohort-start="{day30}"] [data-day="d30"]')).to_have_text(
        "100% (1 of 1)"
    )
    empty_week = next(c["cohort_start"] for c in cohorts if c["users"] == 0)
    nobody = page.locator(f'#retention tr[data-cohort-start="{empty_week}"] [data-day="d1"]')
    expect(nobody).to_have_attribute("title", "No users were first seen that week")

    # The CSV of the period and window shown: the same weeks and figures.
    switch_window(page, "calendar", "week")
    month = switch_period(page, "month", window="calendar")
    assert month["retention"] == cohorts, "whatever the period and window"
    with page.expect_request(is_export("retention")) as request, page.expect_download() as file:
        page.click('[data-export="retention"]')
    assert request.value.url.endswith("/api/v1/stats/retention.csv?period=month&window=calendar")
    assert re.fullmatch(r"parley-retention-month-calendar-\d{8}T\d{4}Z\.csv", file.value.suggested_filename)
    rows = Path(file.value.path()).read_bytes().decode("utf-8").strip().split("\r\n")
    fields = ("eligible_users", "retained_users", "rate")
    assert rows[0] == ",".join(
        ["cohort_start", "users"] + [f"{day}_{field}" for day in RETENTION_DAYS for field in fields]
    )
    assert [row.split(",")[0] for row in rows[1:]] == [c["cohort_start"] for c in cohorts]
    pair_row = next(row for row in rows[1:] if row.startswith(pair))
    assert pair_row == f"{pair},2,2,1,0.5,2,0,0.0,0,0,"  # a null rate is an empty cell
    expect(page.locator("#banner")).to_be_hidden()


def test_audience_and_retention_in_both_themes_and_at_phone_width(new_page: NewPage, api: RunningApi) -> None:
    panels = "#audience-retention"
    tints = {}
    for scheme in ("dark", "light"):
        page = new_page(color_scheme=scheme)
        data = open_overview(page, api, "week")
        assert_panels_match(page, data)
        expect(page.locator("#retention thead")).to_be_visible()
        label = page.evaluate(
            "getComputedStyle(document.querySelector('#retention td[data-day]'), '::before').content"
        )
        assert label == "none", "no stacked labels on a wide screen"
        tints[scheme] = page.evaluate(
            """() => [...document.querySelectorAll("#retention .heat")].map((chip) => ({
                rate: Number(chip.closest("td").dataset.rate),
                background: getComputedStyle(chip).backgroundColor,
                color: getComputedStyle(chip).color }))"""
        )
        assert tints[scheme], "some rates are shown"
        assert all(tint["background"] not in ("", "rgba(0, 0, 0, 0)") for tint in tints[scheme]), "tinted"
        by_rate = {tint["rate"]: tint["background"] for tint in tints[scheme]}
        assert by_rate[0.0] != by_rate[1.0], "the tint follows the rate"
        page.locator(panels).scroll_into_view_if_needed()
        screenshot(page, f"audience-retention-{scheme}", element=page.locator(panels))
    assert tints["dark"][0]["color"] != tints["light"][0]["color"], "each theme its own text colour"

    page = new_page(viewport=PHONE)
    data = open_overview(page, api, "week")
    assert_panels_match(page, data)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling"
    for selector in ("#audience", ".stat[data-audience]", "#retention", "#retention tbody tr"):
        for box in [element.bounding_box() for element in page.locator(selector).all()]:
            assert box is not None, selector
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= PHONE["width"], selector
    expect(page.locator("#retention thead")).to_be_hidden()  # each week a block of labelled figures
    labels = page.evaluate(
        """() => [...document.querySelectorAll("#retention tbody tr:first-child td")].map(
            (cell) => getComputedStyle(cell, "::before").content)"""
    )
    assert labels == ['"Users"', '"Day 1"', '"Day 7"', '"Day 30"']
    screenshot(page, "audience-retention-phone", element=page.locator(panels))


def test_empty_database_audience_and_retention(new_page: NewPage, empty_api: RunningApi) -> None:
    page = new_page()
    data = open_overview(page, empty_api, "week")
    assert data["audience"] == dict.fromkeys([*AUDIENCE_COUNTS, "stickiness"], 0)
    assert len(data["retention"]) == 8
    for cohort in data["retention"]:
        assert cohort["users"] == 0
        assert all(cohort[day]["rate"] is None for day in RETENTION_DAYS)
    assert_panels_match(page, data)
    expect(page.locator(".stat[data-audience] [data-role=value]")).to_have_text(["0", "0", "0", "0.0%"])
    expect(page.locator('.stat[data-audience="stickiness"] [data-role=foot]')).to_have_text(
        "no monthly active users yet"
    )
    expect(page.locator("#retention tbody tr")).to_have_count(8)
    expect(page.locator("#retention .retention-none")).to_have_count(8 * 3)
    expect(page.locator("#retention .heat")).to_have_count(0)
    expect(page.locator('[data-empty-for="retention"]')).to_be_hidden()
    screenshot(page, "audience-retention-empty", element=page.locator("#audience-retention"))


def panel_screenshot(page: Page, name: str, selector: str) -> None:
    """A screenshot of one panel, the page scrolled to its top first: the sticky top bar is not over it."""
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, name, element=page.locator(selector))


def read_out(page: Page, chart: str, index: int) -> None:
    """Move the keyboard read-out of ``chart`` (a selector) to point ``index``."""
    page.locator(chart).focus()
    page.keyboard.press("Home")
    for _ in range(index):
        page.keyboard.press("ArrowRight")


def test_llm_chart_draws_a_series_per_model_and_switches_to_tokens(
    new_page: NewPage, api: RunningApi
) -> None:
    page = new_page()
    day = open_overview(page, api, "day")
    drawn = llm_chart_points(day)
    assert drawn["models"] == [FALLBACK, PRIMARY], "every model of the period, in the response's order"
    assert len(drawn["stamps"]) == 25
    assert partial_indexes(day) == [0, 24]
    models = {model["model"]: model for model in day["llm_usage"]["models"]}
    assert models[PRIMARY]["cost_usd"] == 0.0375  # user 1001's three answers; 1006's is unpriced
    assert models[FALLBACK]["cost_usd"] == 0.0008
    assert day["llm_usage"]["cost_usd"] == 0.0383
    assert_page_matches(page, day)  # one line per model, 25 points, the partial ones drawn as partial

    shown = llm_panel_figures(page)
    assert sorted(shown["series"]) == [FALLBACK, PRIMARY]
    for key, series in shown["series"].items():
        assert series["solid"] + series["dashed"] == 24, key
        assert series["markers"] == [0, 24], key
    assert shown["series"][PRIMARY]["stroke"] != shown["series"][FALLBACK]["stroke"], "a colour per model"
    legend = page.locator("#llm-chart-series .legend-item")
    expect(legend.locator(".legend-label")).to_have_text([FALLBACK, PRIMARY])
    expect(legend.locator("[data-role=sum]")).to_have_text(["$0.0008", "$0.0375"])
    first = hhmm(day["activity_timeline"][0]["timestamp"])
    expect(page.locator("#llm-chart-partial-note")).to_have_text(
        f"Dashed: partial hours (from {first}; so far)"
    )
    expect(page.locator("#llm-chart-sub")).to_have_text(
        "US dollars each model's answers cost per hour (UTC), the last 24 h \N{MIDDLE DOT} $0.0383 in all"
    )
    expect(page.locator("#llm-chart")).to_have_attribute(
        "aria-label", re.compile(r"^LLM cost chart: .*; dashed parts and hollow points are partial hours$")
    )
    expect(page.locator("#llm-chart-table tbody tr").first.locator("td").first).to_contain_text(
        f"(partial hour, from {first})"
    )

    # The read-out: each model's cost at the point, all models together, and the partial point said so.
    priced = next(i for i, cost in enumerate(drawn["cost"][PRIMARY]) if cost)
    tooltip = page.locator("#llm-chart-tooltip")
    read_out(page, "#llm-chart", priced)
    expect(tooltip).to_be_visible()
    for model in (PRIMARY, FALLBACK):
        value = tooltip.locator(f'[data-series="{model}"]').inner_text()
        assert usd_matches(value, drawn["cost"][model][priced]), (model, value)
    total = sum(drawn["cost"][model][priced] for model in drawn["models"])
    assert usd_matches(tooltip.locator('[data-series="total"]').inner_text(), total)
    page.keyboard.press("End")
    expect(tooltip.locator(".tooltip-note")).to_have_text("Partial hour, so far")
    page.keyboard.press("Home")
    expect(tooltip.locator(".tooltip-note")).to_have_text(f"Partial hour, from {first}")
    screenshot(page, "llm-chart-day")

    # The legend hides a model, never the last one shown.
    fallback = page.locator(f'#llm-chart-series [data-series="{FALLBACK}"]')
    primary = page.locator(f'#llm-chart-series [data-series="{PRIMARY}"]')
    fallback.click()
    expect(fallback).to_have_attribute("aria-pressed", "false")
    expect(page.locator(f'#llm-chart path.line[data-series="{FALLBACK}"]')).to_have_count(0)
    expect(page.locator(f'#llm-chart .marker[data-series="{FALLBACK}"]')).to_have_count(0)
    expect(page.locator(f'#llm-chart path.line[data-series="{PRIMARY}"]:not(.line--partial)')).to_have_count(
        1
    )
    primary.click()
    expect(primary).to_have_attribute("aria-pressed", "true")
    assert_page_matches(page, day)
    fallback.click()
    expect(fallback).to_have_attribute("aria-pressed", "true")

    # Tokens by kind instead: prompt and completion of all models together.
    tokens = page.locator('#llm-chart-mode [data-mode="tokens"]')
    tokens.click()
    expect(tokens).to_have_attribute("aria-checked", "true")
    expect(tokens).to_be_focused()
    expect(page.locator('#llm-chart-mode [role="radio"][tabindex="0"]')).to_have_count(1)
    expect(page.locator("#llm-chart-title")).to_have_text("Tokens over time by kind")
    expect(legend.locator(".legend-label")).to_have_text(["Prompt tokens", "Completion tokens"])
    prompt, completion = (sum(drawn["tokens"][kind]) for kind in ("prompt", "completion"))
    assert prompt == sum(model["prompt_tokens"] for model in models.values())
    assert completion == sum(model["completion_tokens"] for model in models.values())
    expect(legend.locator("[data-role=sum]")).to_have_text([f"{prompt:,}", f"{completion:,}"])
    assert_page_matches(page, day)
    assert sorted(llm_panel_figures(page)["series"]) == ["completion", "prompt"]
    read_out(page, "#llm-chart", priced)
    expect(tooltip.locator('[data-series="prompt"]')).to_have_text(f"{drawn['tokens']['prompt'][priced]:,}")
    expect(tooltip.locator('[data-series="completion"]')).to_have_text(
        f"{drawn['tokens']['completion'][priced]:,}"
    )
    both = drawn["tokens"]["prompt"][priced] + drawn["tokens"]["completion"][priced]
    expect(tooltip.locator('[data-series="total"]')).to_have_text(f"{both:,}")
    panel_screenshot(page, "llm-chart-tokens", "#llm-chart-card")

    # The choice stays over a period change; the keyboard moves in the control like in the period's.
    week = switch_period(page, "week")
    expect(page.locator("#llm-chart-title")).to_have_text("Tokens over time by kind")
    assert_page_matches(page, week)
    page.locator('#llm-chart-mode [aria-checked="true"]').press("ArrowRight")  # tokens -> (wraps) cost
    cost = page.locator('#llm-chart-mode [data-mode="cost"]')
    expect(cost).to_have_attribute("aria-checked", "true")
    expect(cost).to_be_focused()
    expect(page.locator("#llm-chart-title")).to_have_text("Cost over time by model")
    assert_page_matches(page, week)

    # The flags are the API's: a point llm_timeline flags partial is drawn so.
    middle = llm_chart_points(week)["stamps"][3]

    def flag_a_middle_point(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        for entry in body["llm_timeline"]:
            entry["partial"] = entry["partial"] or entry["timestamp"] == middle
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/api/v1/stats?*", flag_a_middle_point)
    with page.expect_response(is_stats("week")):
        page.click("#refresh-button")
    wait_rendered(page, "week")
    for key, series in llm_panel_figures(page)["series"].items():
        assert series["markers"] == [0, 3, 7], key
    expect(page.locator("#chart .marker--partial.marker--messages")).to_have_count(
        2
    )  # activity: its own flags
    page.unroute("**/api/v1/stats?*", flag_a_middle_point)
    with page.expect_response(is_stats("week")) as response:
        page.click("#refresh-button")
    wait_rendered(page, "week")
    assert_page_matches(page, response.value.json())


def test_models_table_shows_latency_percentiles_stops_and_retries(new_page: NewPage, api: RunningApi) -> None:
    page = new_page()
    day = open_overview(page, api, "day")
    headers = page.locator("#llm-models thead th")
    expect(headers).to_have_text(MODELS_HEADER)
    expect(headers.nth(5)).to_have_attribute("title", re.compile(re.escape(PERCENTILE_BIN)))
    assert_page_matches(page, day)  # every model's percentiles, stopped and retried equal the JSON's
    usage = day["llm_usage"]
    models = {model["model"]: model for model in usage["models"]}
    assert (usage["stopped_count"], usage["retried_count"]) == EXPECTED_STOPS["day"]
    assert (models[PRIMARY]["stopped_count"], models[PRIMARY]["retried_count"]) == (1, 0)
    assert (models[FALLBACK]["stopped_count"], models[FALLBACK]["retried_count"]) == (0, 1)
    for model in models.values():
        figures = [model[field] for _, field in PERCENTILES]
        assert None not in figures, model["model"]
        assert figures == sorted(figures), model["model"]
    row = page.locator(f'#llm-models tr[data-model="{PRIMARY}"]')
    expect(row.locator("[data-role=stopped]")).to_have_text("1")
    expect(row.locator("[data-role=stopped]")).to_have_attribute(
        "title", "1 of this model's 4 answers were stopped by the user while being written"
    )
    expect(row.locator("[data-role=retried]")).to_have_text("0")
    fallback = page.locator(f'#llm-models tr[data-model="{FALLBACK}"]')
    expect(fallback.locator("[data-role=retried]")).to_have_text("1")
    expect(fallback.locator("[data-role=retried]")).to_have_attribute(
        "title", "1 of this model's 2 answers were asked again for with /retry"
    )
    expect(row.locator("[data-role=percentiles]")).to_have_attribute(
        "title", re.compile(r"^p50 .+, p95 .+, p99 ")
    )
    expect(page.locator("#llm-stopped")).to_have_text("1")
    expect(page.locator("#llm-stopped")).to_have_attribute(
        "title", "1 of 6 answers were stopped by the user while being written"
    )
    expect(page.locator("#llm-retried")).to_have_text("1")

    # A percentile the API does not know (no answer with a latency) is a dash.
    def unknown_p95(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["llm_usage"]["models"][0]["latency_p95_ms"] = None
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/api/v1/stats?*", unknown_p95)
    with page.expect_response(is_stats("day")):
        page.click("#refresh-button")
    wait_rendered(page, "day")
    first = page.locator("#llm-models tbody tr").first
    expect(first.locator("[data-role=p95]")).to_have_text(EM_DASH)
    expect(first.locator("[data-role=percentiles]")).to_have_attribute("title", re.compile(f"p95 {EM_DASH},"))
    page.unroute("**/api/v1/stats?*", unknown_p95)

    week = switch_period(page, "week")
    assert (week["llm_usage"]["stopped_count"], week["llm_usage"]["retried_count"]) == EXPECTED_STOPS["week"]
    assert_page_matches(page, week)
    expect(page.locator("#llm-retried")).to_have_text("2")
    month = api.stats("month").json()["llm_usage"]
    assert (month["stopped_count"], month["retried_count"]) == EXPECTED_STOPS["month"]


def ledger_is_today(api: RunningApi, data: dict[str, Any]) -> bool:
    """Whether the seeded ledger's day is the API's current UTC day (it is not once the suite ran past
    midnight)."""
    today: str = data["generated_at"][:10]
    return api.sql("SELECT day FROM usage_counters WHERE user_id = 1003").strip() == today


def test_top_spenders_table_and_budget_bars(new_page: NewPage, api: RunningApi) -> None:
    page = new_page()
    week = open_overview(page, api, "week")
    expect(page.locator("#top-spenders thead th")).to_have_text(
        ["User", "Cost in period", "Messages", "Budget today", "Budget this month"]
    )
    expect(page.locator("#top-spenders caption")).to_contain_text("from the budget ledger")
    for period in ("week", "day", "month"):
        data = week if period == "week" else switch_period(page, period)
        spenders = data["top_spenders"]
        assert [(s["user_id"], s["cost_usd"], s["total_messages"]) for s in spenders] == EXPECTED_SPENDERS[
            period
        ]
        assert_page_matches(page, data)  # rows, costs, messages and every budget cell equal the JSON's
        users = [str(user) for user, _, _ in EXPECTED_SPENDERS[period]]
        expect(page.locator("#top-spenders tbody th .user-id")).to_have_text(users)
        expect(
            page.locator("#top-spenders tr[data-user-id='1006'], #top-spenders tr[data-user-id='1007']")
        ).to_have_count(0)
        if not ledger_is_today(api, data):
            continue  # midnight passed since the seed: the ledger's day is over, the figures above still hold
        for user in users:
            row = page.locator(f'#top-spenders tr[data-user-id="{user}"]')
            for index, (state, text) in enumerate(EXPECTED_BUDGETS[int(user)]):
                cell = row.locator("td.budget-cell").nth(index)
                expect(cell).to_have_attribute("data-state", state)
                expect(cell.locator("[data-role=budget]")).to_have_text(text)

    for cell in page.locator('#top-spenders tr[data-user-id="1004"] td.budget-cell').all():
        expect(cell).to_have_attribute("title", "No budget limit applies to this user")
    expect(page.locator('#top-spenders tr[data-user-id="1004"] .tag')).to_have_text(["exempt", "exempt"])
    expect(page.locator('#top-spenders tr[data-user-id="1004"] [data-role=cost]')).to_have_text("$0.10")
    expect(page.locator("#overview")).to_have_attribute("data-period", "month")
    if ledger_is_today(api, week):
        spender = next(s for s in week["top_spenders"] if s["user_id"] == 1001)
        assert [(m["period"], m["unit"], m["used"], m["limit"]) for m in spender["meters"]] == [
            ("day", "tokens", LEDGER[1001][0], 1000),
            ("day", "usd", float(LEDGER[1001][1]), 0.05),
            ("month", "usd", float(LEDGER[1001][1]), 1),  # the earlier month's row counts in no meter
        ]
        today = page.locator('#top-spenders tr[data-user-id="1001"] td.budget-cell').first
        expect(today.locator("[data-role=share]")).to_have_text("92%")
        expect(today).to_have_attribute(
            "title",
            re.compile(
                r"^Today \(UTC\): \$0\.046 used of the \$0\.05 daily limit, \$0\.004 left; resets .*"
                r"\. Tokens: 480 of 1,000 tokens$"
            ),
        )
        width = today.locator(".budget-bar > span").evaluate("fill => fill.style.width")
        assert abs(float(width.removesuffix("%")) - 92) < 0.01
        spent = page.locator('#top-spenders tr[data-user-id="1003"] td.budget-cell').first
        expect(spent.locator("[data-role=share]")).to_have_text("exhausted")
        expect(spent).to_have_attribute(
            "title", re.compile(r"exhausted: the user's next message is refused until ")
        )
        assert spent.locator(".budget-bar > span").evaluate("fill => fill.style.width") == "100%"
        colours = page.evaluate(
            """() => Object.fromEntries(
                [...document.querySelectorAll("#top-spenders td.budget-cell[data-unit]")]
                .map((cell) => [cell.dataset.state, [
                    getComputedStyle(cell.querySelector(".budget-bar > span")).backgroundColor,
                    getComputedStyle(cell.querySelector("[data-role=share]")).color]]))"""
        )
        assert set(colours) == {"ok", "warning", "exhausted"}
        assert len({bar for bar, _ in colours.values()}) == 3, "ok, amber and red bars"
        assert colours["warning"][1] != colours["exhausted"][1] != colours["ok"][1]
    nobody = page.locator('#top-spenders tr[data-user-id="1002"] td.budget-cell')
    expect(nobody.locator("[data-role=budget]")).to_have_text(["no limit", "no limit"])
    expect(nobody.first).to_have_attribute("title", "No daily limit applies to this user")
    expect(page.locator('[data-empty-for="top-spenders"]')).to_be_hidden()
    panel_screenshot(page, "top-spenders-month", "#top-spenders-card")


def test_llm_panels_in_both_themes_and_at_phone_width(new_page: NewPage, api: RunningApi) -> None:
    panels = (
        ("llm-chart", "#llm-chart-card"),
        ("models", ".llm-card"),
        ("top-spenders", "#top-spenders-card"),
        ("llm-costs", "#llm-costs"),
    )
    strokes, bars = {}, {}
    for scheme in ("dark", "light"):
        page = new_page(color_scheme=scheme)
        data = open_overview(page, api, "week")
        assert_page_matches(page, data)
        strokes[scheme] = llm_panel_figures(page)["series"][PRIMARY]["stroke"]
        bars[scheme] = page.evaluate(
            """() => Object.fromEntries(
                [...document.querySelectorAll("#top-spenders td.budget-cell[data-unit]")]
                .map((cell) => [cell.dataset.state,
                    getComputedStyle(cell.querySelector(".budget-bar > span")).backgroundColor]))"""
        )
        assert bars[scheme], "some budgets are bars"
        expect(page.locator("#top-spenders thead")).to_be_visible()
        label = page.evaluate(
            "getComputedStyle(document.querySelector('#top-spenders td.budget-cell'), '::before').content"
        )
        assert label == "none", "no stacked labels on a wide screen"
        for name, selector in panels:
            panel_screenshot(page, f"{name}-{scheme}", selector)
    assert strokes["dark"] != strokes["light"], "each theme its own series colours"
    for state in set(bars["dark"]) & set(bars["light"]):
        assert bars["dark"][state] != bars["light"][state], state

    page = new_page(viewport=PHONE)
    data = open_overview(page, api, "week")
    assert_page_matches(page, data)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling"
    for selector in (
        "#llm-chart-card",
        "#llm-chart svg",
        "#llm-chart-mode",
        "#llm-chart-series .legend-item",
        ".llm-card",
        "#llm-models tbody tr",
        "#top-spenders-card",
        "#top-spenders tbody tr",
        "#top-spenders td.budget-cell",
    ):
        for box in [element.bounding_box() for element in page.locator(selector).all()]:
            assert box is not None, selector
            assert box["x"] >= 0, selector
            assert box["x"] + box["width"] <= PHONE["width"], selector
    expect(page.locator("#top-spenders thead")).to_be_hidden()  # each user a block of labelled figures
    labels = page.evaluate(
        """() => [...document.querySelectorAll("#top-spenders tbody tr:first-child td")].map(
            (cell) => getComputedStyle(cell, "::before").content)"""
    )
    assert labels == ['"Cost in period"', '"Messages"', '"Budget today"', '"Budget this month"']
    labels = page.evaluate(
        """() => [...document.querySelectorAll("#llm-models tbody tr:first-child td[data-label]")].map(
            (cell) => getComputedStyle(cell, "::before").content)"""
    )
    assert labels == ['"Requests"', '"Share of answers"', '"Fallback"', '"Avg. latency"', '"p50 / p95 / p99"',
                      '"Stopped"', '"Retried"', '"Tokens"']  # fmt: skip
    for name, selector in panels[:3]:
        panel_screenshot(page, f"{name}-phone", selector)
