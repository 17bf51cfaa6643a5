"""Structured logging for every Parley process: JSON in production, console locally, secrets redacted.

Everything — structlog loggers and the stdlib loggers of uvicorn, SQLAlchemy, aiogram or kopf — goes
through the same processor chain, so the redaction processor sees every line before it is written.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

LogFormat = Literal["json", "console"]

REDACTED = "[REDACTED]"

# Keys whose values are secret whatever they contain: any key containing one of these (case and
# "_", "-", "." ignored: `dbPassword`, `refresh_tokens`, `client.secret`), except the counts below.
_SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "apikey",
    "privatekey",
    "cookie",
    "credential",
)
# Counts that merely contain "token": an SRE needs them, and they are never secret.
_COUNT_KEYS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens", "max_tokens"})

# Shapes of secrets that may hide inside free text (exception messages, URLs, headers).
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization headers: "Basic dXNlcjpwYXNz", "Bearer eyJ..."
    (re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 " + REDACTED),
    # Telegram bot tokens: 123456789:AA...
    (re.compile(r"(?<![0-9])\d{6,12}:[A-Za-z0-9_-]{30,}"), REDACTED),
    # OpenAI/OpenRouter style keys.
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}\b"), REDACTED),
    # Vault tokens.
    (re.compile(r"\bhv[sbr]\.[A-Za-z0-9_-]{16,}\b"), REDACTED),
    # Passwords inside connection URLs: scheme://user:password@host
    (re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+(?=@)"), r"\g<pre>" + REDACTED),
    # key=value / "key": "value" pairs with a secret-looking key.
    (
        re.compile(
            r"(?i)(?P<key>[\"']?\b(?!(?:prompt|completion|total|max)_tokens\b)[\w-]*"
            r"(?:password|passwd|secret|token|api_?key|cookie|credential)[\w-]*[\"']?"
            r"\s*[:=]\s*[\"']?)(?P<val>[^\s\"',;}&]+)"
        ),
        r"\g<key>" + REDACTED,
    ),
)


class SecretRegistry:
    """Exact secret values known to this process (from settings), masked wherever they appear."""

    _MIN_LENGTH = 4  # shorter values would mask ordinary words

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str | None) -> None:
        """Remember a secret value so it is masked in every later log line."""
        if value and len(value) >= self._MIN_LENGTH:
            with self._lock:
                self._values.add(value)

    def clear(self) -> None:
        """Forget every value (tests use it to stay independent)."""
        with self._lock:
            self._values.clear()

    def mask(self, text: str) -> str:
        """Replace every known secret value in ``text``; the longest first so overlaps stay masked."""
        values = sorted(self._values, key=len, reverse=True)
        for value in values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


secrets = SecretRegistry()


def redact_text(text: str) -> str:
    """Mask known secret values and secret-shaped substrings of ``text``."""
    text = secrets.mask(text)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@functools.lru_cache(maxsize=4096)  # called for every key of every line; keys repeat
def _is_secret_key(key: object) -> bool:
    lowered = str(key).lower().replace("-", "_")
    if lowered in _COUNT_KEYS:
        return False
    compact = lowered.replace("_", "").replace(".", "")
    return any(part in compact for part in _SECRET_KEY_PARTS)


def _redact_value(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if _is_secret_key(k) and v else _redact_value(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v, depth + 1) for v in value]
    if hasattr(value, "get_secret_value"):  # pydantic SecretStr/SecretBytes
        return REDACTED
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last line of defence that keeps secrets out of every log output."""
    for key in list(event_dict):
        value = event_dict[key]
        if _is_secret_key(key) and value not in (None, "", False):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact_value(value)
    return event_dict


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # uvicorn duplicates its message with ANSI colours; one copy is enough.
    event_dict.pop("color_message", None)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        _drop_color_message,
    ]


def configure_logging(
    *,
    level: str = "INFO",
    fmt: LogFormat = "json",
    stream: Any = None,
    quiet_loggers: Iterable[str] = ("asyncio", "hvac", "urllib3", "httpcore", "httpx"),
) -> None:
    """Route structlog and stdlib logging through one chain that renders JSON or console lines.

    Exceptions are formatted *before* redaction, so a secret inside a traceback is masked too.
    """
    renderer: Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    final_processors: list[Processor] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        redact_secrets,
        renderer,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=final_processors,
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in quiet_loggers:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # uvicorn installs its own handlers; make its loggers use ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None, **initial: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger; ``initial`` values are bound to every line it writes."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger.bind(**initial) if initial else logger


def bind_context(**values: Any) -> None:
    """Bind values (user id, update id, request id) to every log line of the current task."""
    structlog.contextvars.bind_contextvars(**values)


def clear_context() -> None:
    """Drop the values bound with :func:`bind_context` in the current task."""
    structlog.contextvars.clear_contextvars()


def flush_logs() -> None:
    """Flush every handler: called last on shutdown so no line is lost."""
    for handler in logging.getLogger().handlers:
        handler.flush()


__all__: list[str] = [
    "REDACTED",
    "bind_context",
    "clear_context",
    "configure_logging",
    "flush_logs",
    "get_logger",
    "redact_secrets",
    "redact_text",
    "secrets",
]
