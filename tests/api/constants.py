"""Test constants of the API area: accounts, tokens and addresses shared by its tests."""

from __future__ import annotations

ANALYST_USERNAME = "analyst"
ANALYST_PASSWORD = "correct-horse-battery"
ANALYST_AUTH = (ANALYST_USERNAME, ANALYST_PASSWORD)
ADMIN_TOKEN = "admin-token-for-tests-0123456789"
REGISTRATION_PASSWORD = "correct horse battery"
# Nothing listens on the discard port: a database that refuses connections at once.
UNREACHABLE_DATABASE_URL = "postgresql://parley:pw@127.0.0.1:9/parley"
