"""Locust scenarios for the stats API: what a room full of dashboards does to it.

Run by `make load` (tools in tools/load/run.py), or by hand against any deployment:

    LOAD_USER=analyst LOAD_PASSWORD=… uv run locust -f tools/load/api_locustfile.py --host http://localhost:8000

`DashboardUser` polls the stats like the dashboard does (day most, month least) plus the probes;
`RateLimitProbe` hammers /api/v1/stats with one account and counts a 429 carrying Retry-After as the
expected answer — it shows the limiter working under load, not a failure.
"""

from __future__ import annotations

import os

from locust import HttpUser, between, constant, task


def _credentials() -> tuple[str, str]:
    return os.environ.get("LOAD_USER", "analyst"), os.environ.get("LOAD_PASSWORD", "")


class DashboardUser(HttpUser):
    """An analyst's dashboard: polls the three periods and the health probe."""

    wait_time = between(0.05, 0.2)
    weight = int(os.environ.get("LOAD_DASHBOARD_WEIGHT", "1"))

    def on_start(self) -> None:
        """Basic credentials on every request, as the dashboard sends them."""
        self.client.auth = _credentials()

    @task(3)
    def stats_day(self) -> None:
        """The default view."""
        self.client.get("/api/v1/stats?period=day", name="/api/v1/stats?period=day")

    @task(2)
    def stats_week(self) -> None:
        """Switching to week."""
        self.client.get("/api/v1/stats?period=week", name="/api/v1/stats?period=week")

    @task(1)
    def stats_month(self) -> None:
        """Switching to month."""
        self.client.get("/api/v1/stats?period=month", name="/api/v1/stats?period=month")

    @task(1)
    def health(self) -> None:
        """The liveness probe."""
        self.client.get("/health")


class RateLimitProbe(HttpUser):
    """One account over its STATS_API_RATE_LIMIT: 429 with Retry-After is the correct answer."""

    wait_time = constant(0.1)
    weight = int(os.environ.get("LOAD_RATE_LIMIT_WEIGHT", "0"))

    def on_start(self) -> None:
        """Same account for every probe, so they share one budget."""
        self.client.auth = _credentials()

    @task
    def over_the_limit(self) -> None:
        """200 or 429-with-Retry-After are both right; anything else fails."""
        with self.client.get(
            "/api/v1/stats?period=day", name="rate-limited /api/v1/stats", catch_response=True
        ) as response:
            if response.status_code == 429 and response.headers.get("Retry-After", "").isdigit():
                response.success()
            elif response.status_code != 200:
                response.failure(f"unexpected {response.status_code}")
