"""Schemathesis against the app's own OpenAPI schema: no 5xx, every response matches the schema.

The app runs as a real process on its own migrated database, with an analyst account, the rate
limit off and the failed-login throttle wide open (so generated traffic is not a wall of 429s).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from parley_core.passwords import hash_password
from parley_testing.waiting import wait_for
from tests.api.constants import ANALYST_PASSWORD as PASSWORD
from tests.api.constants import ANALYST_USERNAME as USER
from tools.localpg import LocalPostgres, free_port


@pytest.fixture(scope="module")
def api_base_url(postgres_server: LocalPostgres, migrated_template: str) -> Iterator[str]:
    """A running `python -m parley_api` with an analyst account."""
    database = f"fuzz_{os.getpid()}"
    postgres_server.create_database(database, template=migrated_template)
    password_hash = hash_password(PASSWORD, rounds=4)
    insert = f"INSERT INTO api_users (username, password_hash, source) VALUES ('{USER}', '{password_hash}', 'registration')"  # noqa: S608,E501 - constants only
    postgres_server.psql(insert, database=database)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": postgres_server.url(database), "API_PORT": str(port),
           "RATE_LIMIT_ENABLED": "false", "ADMIN_REGISTRATION_TOKEN": "fuzz-admin-token-value",
           "BCRYPT_ROUNDS": "4", "LOG_LEVEL": "WARNING",
           # Schemathesis probes with wrong credentials on purpose; throttling them is tested elsewhere.
           "AUTH_FAILURE_LIMIT_PER_USERNAME": "100000/minute",
           "AUTH_FAILURE_LIMIT_PER_ADDRESS": "100000/minute"}  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "parley_api"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: httpx.get(f"{base}/ready", timeout=1).status_code == 200,
            "the API to be ready",
            timeout=30,
            interval=0.1,
            retry_on=(httpx.TransportError,),
        )
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        postgres_server.drop_database(database)


def test_no_server_errors_and_responses_match_the_schema(api_base_url: str) -> None:
    # Driven by hand rather than with schemathesis' pytest plugin, whose fixture loader does not
    # support this pytest version.
    schema = schemathesis.openapi.from_url(f"{api_base_url}/openapi.json")
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "the served schema has invalid operations"
    assert {op.path for op in operations} >= {"/api/v1/stats", "/api/v1/auth/register", "/health", "/ready"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def exercise(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            case.call_and_validate(base_url=api_base_url, auth=(USER, PASSWORD))

        exercise()
