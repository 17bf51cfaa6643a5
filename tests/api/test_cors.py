"""CORS: a whitelist from CORS_ORIGINS, GET/POST/OPTIONS, credentials; none at all by default."""

from __future__ import annotations

import httpx
import pytest

from parley_core.settings import ApiSettings, SettingsError, load_settings
from tests.utils.clients import client_from, lifespan_of, security_app

DASHBOARD = "https://dash.example.com"
PREFLIGHT = {
    "Origin": DASHBOARD,
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "authorization",
}


async def _request(
    database_url: str, method: str, path: str, headers: dict[str, str], **settings: object
) -> httpx.Response:
    app = security_app(database_url, **settings)
    async with lifespan_of(app), client_from(app) as client:
        return await client.request(method, path, headers=headers)


async def test_preflight_from_an_allowed_origin(database_url: str) -> None:
    response = await _request(
        database_url, "OPTIONS", "/api/v1/stats", PREFLIGHT, cors_origins=f"{DASHBOARD},http://localhost:3000"
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == DASHBOARD
    assert response.headers["access-control-allow-credentials"] == "true"
    assert set(response.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST", "OPTIONS"}
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


async def test_preflight_from_another_origin_is_refused(database_url: str) -> None:
    headers = {**PREFLIGHT, "Origin": "https://evil.example.net"}

    response = await _request(database_url, "OPTIONS", "/api/v1/stats", headers, cors_origins=DASHBOARD)

    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_preflight_for_another_method_is_refused(database_url: str) -> None:
    headers = {**PREFLIGHT, "Access-Control-Request-Method": "DELETE"}

    response = await _request(database_url, "OPTIONS", "/api/v1/stats", headers, cors_origins=DASHBOARD)

    assert response.status_code == 400


async def test_errors_carry_cors_headers_so_the_dashboard_can_read_them(database_url: str) -> None:
    response = await _request(
        database_url, "GET", "/api/v1/stats?period=day", {"Origin": DASHBOARD}, cors_origins=DASHBOARD
    )

    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == DASHBOARD
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "retry-after" in response.headers["access-control-expose-headers"].lower()


async def test_no_origins_means_no_cors_headers(database_url: str) -> None:
    response = await _request(database_url, "GET", "/health", {"Origin": DASHBOARD})

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_wildcard_without_credentials_is_allowed(database_url: str) -> None:
    response = await _request(
        database_url, "GET", "/health", {"Origin": DASHBOARD}, cors_origins="*", cors_allow_credentials=False
    )

    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


def test_wildcard_with_credentials_is_refused() -> None:
    with pytest.raises(
        SettingsError, match=r"CORS_ORIGINS=\* cannot be combined with CORS_ALLOW_CREDENTIALS"
    ):
        load_settings(ApiSettings, cors_origins="*")


@pytest.mark.parametrize(
    "origin", ["https://dash.example.com/", "dash.example.com", "https://x.com/path", "ftp://x"]
)
def test_malformed_origins_are_refused(origin: str) -> None:
    with pytest.raises(SettingsError, match="CORS_ORIGINS"):
        load_settings(ApiSettings, cors_origins=origin)


@pytest.mark.parametrize(
    "value", [f"{DASHBOARD}, http://localhost:3000", f'["{DASHBOARD}", "http://localhost:3000"]']
)
def test_origins_are_comma_separated_or_a_json_list(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CORS_ORIGINS", value)

    assert load_settings(ApiSettings).cors_origins == [DASHBOARD, "http://localhost:3000"]
