"""The one way a test waits: call a probe until it passes, then return what it returned.

A probe passes when it returns a truthy value without raising. A falsy value or an exception of
one of the ``retry_on`` types means "not yet": it is remembered and the probe is called again after
``interval`` seconds. Any other exception ends the wait at once (a probe raises one, e.g. a
RuntimeError, when waiting longer cannot help, say because the process under test died). At the
deadline the wait fails with a ``WaitTimeoutError`` naming ``what``, the last value or exception, and
``describe()`` when given (a log tail, say).

``eventually`` is for async tests (the probe may be sync or async; the event loop keeps running
between calls); ``wait_for`` is its blocking twin for sync tests and fixtures.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

TIMEOUT = 30.0
INTERVAL = 0.2


class WaitTimeoutError(AssertionError):
    """A probe never passed within its timeout."""


class _Attempts:
    """The deadline and the last "not yet" of one wait."""

    def __init__(self, what: str, timeout: float, describe: Callable[[], str] | None) -> None:
        self.what = what
        self.timeout = timeout
        self.describe = describe
        self.deadline = time.monotonic() + timeout
        self.last = "no attempt"

    def not_yet(self, value: object) -> None:
        self.last = f"last value: {value!r}"

    def failed(self, exc: BaseException) -> None:
        self.last = f"last exception: {type(exc).__name__}: {exc}"

    def over(self) -> bool:
        return time.monotonic() >= self.deadline

    def timed_out(self) -> WaitTimeoutError:
        message = f"timed out after {self.timeout:g} s waiting for {self.what}; {self.last}"
        if self.describe is not None:
            message = f"{message}\n{self.describe()}"
        return WaitTimeoutError(message)


@overload
async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    what: str,
    *,
    timeout: float = ...,
    interval: float = ...,
    retry_on: tuple[type[BaseException], ...] = ...,
    describe: Callable[[], str] | None = ...,
) -> T: ...


@overload
async def eventually(
    probe: Callable[[], T | None],
    what: str,
    *,
    timeout: float = ...,
    interval: float = ...,
    retry_on: tuple[type[BaseException], ...] = ...,
    describe: Callable[[], str] | None = ...,
) -> T: ...


async def eventually(
    probe: Callable[[], Any],
    what: str,
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    describe: Callable[[], str] | None = None,
) -> Any:
    """Await ``probe()`` (a coroutine function or a plain one) until it passes; return its value."""
    attempts = _Attempts(what, timeout, describe)
    while True:
        try:
            result = probe()
            value = await result if inspect.isawaitable(result) else result
        except WaitTimeoutError:
            raise
        except retry_on as exc:
            attempts.failed(exc)
        else:
            if value:
                return value
            attempts.not_yet(value)
        if attempts.over():
            raise attempts.timed_out()
        await asyncio.sleep(interval)


def wait_for(
    probe: Callable[[], T | None],
    what: str,
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    describe: Callable[[], str] | None = None,
) -> T:
    """Call ``probe()`` until it passes, blocking between calls; return its value."""
    attempts = _Attempts(what, timeout, describe)
    while True:
        try:
            value = probe()
        except WaitTimeoutError:
            raise
        except retry_on as exc:
            attempts.failed(exc)
        else:
            if value:
                return value
            attempts.not_yet(value)
        if attempts.over():
            raise attempts.timed_out()
        time.sleep(interval)
