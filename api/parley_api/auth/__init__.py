"""Authentication of dashboard accounts: HTTP Basic against api_users, a verification cache,
failed-login throttling, and self-registration with the admin token."""

from __future__ import annotations

from fastapi import FastAPI

from parley_api.auth.basic import AuthenticatedUser, Authenticator, InvalidCredentialsError
from parley_api.auth.header import BasicCredentials, basic_auth_scheme, unauthorized
from parley_api.auth.throttle import LoginThrottledError
from parley_core.settings import ApiSettings

__all__ = [
    "AuthenticatedUser",
    "Authenticator",
    "BasicCredentials",
    "InvalidCredentialsError",
    "LoginThrottledError",
    "basic_auth_scheme",
    "install_authentication",
    "unauthorized",
]


def install_authentication(app: FastAPI, settings: ApiSettings) -> None:
    """Give ``app`` its own Authenticator (``app.state.authenticator``): cache and throttle per app."""
    app.state.authenticator = Authenticator.from_settings(settings)
