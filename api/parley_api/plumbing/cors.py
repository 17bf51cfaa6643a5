"""CORS for a dashboard served from another origin: an explicit whitelist, or no CORS headers at all."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from parley_core.settings import ApiSettings

ALLOWED_METHODS = ["GET", "POST", "OPTIONS"]
ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-Admin-Token"]
# Let browser code read why it must wait after a 429.
EXPOSED_HEADERS = ["Retry-After"]
PREFLIGHT_MAX_AGE_SECONDS = 600


def install_cors(app: FastAPI, settings: ApiSettings) -> None:
    """Add the CORS middleware when CORS_ORIGINS is set; call it last so it wraps every response."""
    if not settings.cors_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=settings.cors_allow_credentials,
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
    )
