"""Structured logs: JSON lines with bound context, and secrets that never reach the output."""

from __future__ import annotations

import io
import json
import logging

import pytest

from parley_core import logging as parley_logging
from parley_core.logging import REDACTED, bind_context, clear_context, get_logger


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_bound_context(log_output: io.StringIO) -> None:
    bind_context(user_id=42, update_id=7)
    try:
        get_logger("parley.test").info("message_received", model="m1")
    finally:
        clear_context()

    (line,) = _lines(log_output)
    assert line["event"] == "message_received"
    assert (line["user_id"], line["update_id"], line["model"]) == (42, 7, "m1")
    assert line["level"] == "info"
    assert str(line["timestamp"]).endswith("Z")


def test_token_counts_stay_readable_while_tokens_are_redacted(log_output: io.StringIO) -> None:
    get_logger().info(
        "llm_answered",
        prompt_tokens=812,
        completion_tokens=64,
        max_tokens=1024,
        telegram_bot_token="opaque-value-1",
        accessToken="opaque-value-2",
    )
    get_logger().warning("retry: prompt_tokens=812 completion_tokens=64 token=opaque-value-3")

    first, second = _lines(log_output)
    assert (first["prompt_tokens"], first["completion_tokens"], first["max_tokens"]) == (812, 64, 1024)
    assert first["telegram_bot_token"] == first["accessToken"] == REDACTED
    assert second["event"] == f"retry: prompt_tokens=812 completion_tokens=64 token={REDACTED}"


@pytest.mark.parametrize(
    "key",
    [
        "passwords",
        "secrets",
        "tokens",
        "cookies",
        "dbPassword",
        "accesstoken",
        "clientSecret",
        "refresh_tokens",
    ],
)
def test_plural_and_run_together_secret_keys_are_redacted(log_output: io.StringIO, key: str) -> None:
    get_logger().info("called", **{key: "opaque-value-9"})
    get_logger().info(f"called with {key}=opaque-value-9")

    first, second = _lines(log_output)
    assert first[key] == REDACTED
    assert "opaque-value-9" not in str(second["event"])


def test_secret_keys_are_redacted(log_output: io.StringIO) -> None:
    get_logger().info(
        "login",
        password="hunter2-password",
        api_key="sk-or-v1-abcdefabcdefabcdef",
        headers={"Authorization": "Basic YWxpY2U6c2VjcmV0", "Accept": "json"},
        username="alice",
    )

    output = log_output.getvalue()
    for secret in ("hunter2-password", "sk-or-v1-abcdefabcdefabcdef", "YWxpY2U6c2VjcmV0"):
        assert secret not in output
    (line,) = _lines(log_output)
    assert line["password"] == REDACTED
    assert line["headers"] == {"Authorization": REDACTED, "Accept": "json"}
    assert line["username"] == "alice"


def test_secret_shapes_inside_free_text_are_masked(log_output: io.StringIO) -> None:
    bot_token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq"
    get_logger().warning(
        f"telegram call failed for https://api.telegram.org/bot{bot_token}/getMe "
        "with header Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig "
        "connecting to postgresql://parley:db-pass-42@db:5432/parley token=abc123def456"
    )

    output = log_output.getvalue()
    for secret in (bot_token, "eyJhbGciOiJIUzI1NiJ9", "db-pass-42", "abc123def456"):
        assert secret not in output
    assert "postgresql://parley:[REDACTED]@db:5432/parley" in output


def test_registered_secret_never_reaches_output_even_in_a_traceback(
    log_output: io.StringIO,
) -> None:
    parley_logging.secrets.add("plain-looking-value-9f3a")

    try:
        raise RuntimeError("auth failed with plain-looking-value-9f3a")
    except RuntimeError:
        get_logger().exception("request_failed")
    logging.getLogger("uvicorn.error").error("stdlib says plain-looking-value-9f3a")

    output = log_output.getvalue()
    assert "plain-looking-value-9f3a" not in output
    assert output.count(REDACTED) >= 2
    assert "RuntimeError" in output  # the traceback itself is kept


def test_console_format_is_redacted_too() -> None:
    stream = io.StringIO()
    parley_logging.configure_logging(level="INFO", fmt="console", stream=stream)
    get_logger("parley.test").info("connect", password="pw-console-secret", host="db")

    output = stream.getvalue()
    assert "pw-console-secret" not in output
    assert "connect" in output
    assert "host=db" in output


def test_level_filters_debug(log_output: io.StringIO) -> None:
    parley_logging.configure_logging(level="INFO", fmt="json", stream=log_output)
    get_logger().debug("hidden")
    get_logger().info("shown")
    parley_logging.flush_logs()

    assert [line["event"] for line in _lines(log_output)] == ["shown"]
