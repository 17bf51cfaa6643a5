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
    EXPECTED_PREVIOUS_MESSAGES,
    EXPECTED_RETENTION,
    FALLBACK,
    LONG_ANSWER,
)
from tests.e2e.support import PHONE, NewPage, RunningApi, screenshot

STORAGE_KEY = "parley.dashboard.credentials"
INTEGER_METRICS = ("total_users", "total_messages", "active_dialogs")
AUDIENCE_COUNTS = ("daily_active_users", "weekly_active_users", "monthly_active_users")
RETENTION_DAYS = ("d1", "d7", "d30")
EM_DASH = "\N{EM DASH}"  # a retention day no user has reached yet
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
    """The audience tiles and the retention table equal the API's JSON ``data``; returns what they showed."""
    shown = panel_figures(page)
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
    expect(page.locator("#llm-models thead th")).to_have_text(
        ["Model", "Requests", "Share of answers", "Fallback", "Avg. latency", "Tokens"]
    )
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
