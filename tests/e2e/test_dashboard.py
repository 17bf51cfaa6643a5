"""The dashboard in real Chromium against real API processes: login, figures, periods, every state.

Figures on the page are compared with the JSON the API returned for the same period (the very
response the page rendered) and with the known totals of tests/e2e/seed.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, Request, Response, Route, expect

from parley_testing.waiting import wait_for
from tests.e2e.seed import ACCOUNTS, EXPECTED, EXPECTED_PREVIOUS_MESSAGES, FALLBACK, LONG_ANSWER
from tests.e2e.support import PHONE, NewPage, RunningApi, screenshot

STORAGE_KEY = "parley.dashboard.credentials"
INTEGER_METRICS = ("total_users", "total_messages", "active_dialogs")


def is_stats(period: str) -> Any:
    """A predicate for page.expect_response: the stats call of ``period``."""
    return lambda response: f"/api/v1/stats?period={period}" in response.url


def sign_in(page: Page, account: str = "analyst", password: str | None = None) -> None:
    """Fill the login form and submit it."""
    page.fill("#login-username", account)
    page.fill("#login-password", ACCOUNTS[account] if password is None else password)
    page.click("#login-submit")


def open_overview(
    page: Page, api: RunningApi, period: str = "week", account: str = "analyst"
) -> dict[str, Any]:
    """Load the page for ``period``, sign in, wait for the overview; returns the JSON it rendered."""
    page.goto(f"{api.base_url}/?period={period}")
    with page.expect_response(is_stats(period)) as response:
        sign_in(page, account)
    wait_rendered(page, period)
    data: dict[str, Any] = response.value.json()
    return data


def wait_rendered(page: Page, period: str) -> None:
    """Wait until the overview shows ``period`` and nothing is loading."""
    expect(page.locator("#dashboard-view")).to_be_visible()
    expect(page.locator(f'#overview[data-period="{period}"][aria-busy="false"]')).to_be_attached()


def switch_period(page: Page, period: str, *, keyboard: str | None = None) -> dict[str, Any]:
    """Change the period by a click (or a key pressed in the control); returns the JSON rendered."""
    with page.expect_response(is_stats(period)) as response:
        if keyboard:
            page.locator('#period-control [aria-checked="true"]').press(keyboard)
        else:
            page.click(f'#period-control [data-period="{period}"]')
    wait_rendered(page, period)
    data: dict[str, Any] = response.value.json()
    return data


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
            topUsers: [...document.querySelectorAll("#top-users tbody tr")].map((row) => ({
                user: Number(row.dataset.userId), messages: text(row, ".bar-label"),
                days: row.cells[3].textContent })),
            dialogs: [...document.querySelectorAll("#recent-dialogs .dialog")].map((item) => ({
                user: Number(item.dataset.userId),
                messages: Number(item.querySelector(".dialog-meta").dataset.messages),
                preview: text(item, ".dialog-preview") })),
            models: [...document.querySelectorAll("#llm-models tbody tr")].map((row) => ({
                model: row.dataset.model, requests: text(row, ".bar-label"),
                fallback: row.cells[2].textContent, latency: row.cells[3].textContent })),
            llmRequests: text(document, "#llm-requests"),
            llmFallback: text(document, "#llm-fallback"),
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
    assert len(shown["models"]) == len(usage["models"])
    for row, model in zip(shown["models"], usage["models"], strict=True):
        assert row["model"] == model["model"]
        assert number(row["requests"]) == model["requests"]
        assert number(row["fallback"]) == round(model["fallback_share"] * 100, 1)
        assert abs(latency_ms(row["latency"]) - model["avg_latency_ms"]) <= 50, row
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
    assert len(day_shown["timeline"]) == 24
    assert len(week_shown["timeline"]) == 7
    assert len(month_shown["timeline"]) == 30
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
    expect(users).to_have_attribute("aria-label", "up 16.7% from the previous day")
    messages = page.locator('.stat[data-metric="total_messages"] [data-role=badge]')
    expect(messages).to_have_text("+500%")  # 12 messages against 2
    fallback = page.locator(f'#llm-models tr[data-model="{FALLBACK}"] td.is-fallback')
    expect(fallback).to_have_text("100.0%")  # user 1002's answers today all came from the fallback


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
    expect(page.locator("#chart .line--messages")).to_have_count(1)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(243, 245, 250)", "the light theme follows prefers-color-scheme"


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
        with page.expect_download() as download:
            page.click(f'[data-export="{table}"]')
        files[table] = download.value
    direct = {
        table: httpx.get(
            f"{api.base_url}/api/v1/stats/{table}.csv",
            params={"period": "day"},
            auth=("analyst", ACCOUNTS["analyst"]),
        )
        for table in files
    }

    for table, file in files.items():
        assert re.fullmatch(rf"parley-{table}-day-\d{{8}}T\d{{4}}Z\.csv", file.suggested_filename)
        content = Path(file.path()).read_bytes().decode("utf-8")
        header = content.split("\r\n", 1)[0]
        assert header == direct[table].text.split("\r\n", 1)[0]
        assert content.count("\r\n") == direct[table].text.count("\r\n")  # the same rows
    timeline = Path(files["timeline"].path()).read_bytes().decode("utf-8").strip().split("\r\n")
    assert timeline[0] == "timestamp,message_count,active_users"
    assert len(timeline) == 1 + 24  # the day's hourly buckets
    expect(page.locator("#banner")).to_be_hidden()
