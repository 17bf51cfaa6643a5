"""Stats windows: which span of time a period covers, its timeline points, and the window before it.

Two kinds of window (`WindowMode`):

- **rolling** (the default): the last 24 h, 7 x 24 h or 30 x 24 h ending now. The timeline has one
  point per UTC hour (`day`) or day (`week`, `month`); the first point starts at the window's start,
  mid-hour or mid-day, and is partial, and so is the last, which ends now.
- **calendar**: the 24 UTC hours ending with the current hour, or the 7 or 30 UTC days ending with
  today. Only the last point (the current hour or day) is partial.

Either way the window before is the one of exactly the same length ending where this one starts.
A message stamped after now (a writer whose clock runs ahead) counts as now: in the current window's
last point, in every figure, until its time comes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

Granularity = Literal["h", "d"]
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class Period(enum.StrEnum):
    """The periods the dashboard offers."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class WindowMode(enum.StrEnum):
    """Where a period's window starts and ends."""

    ROLLING = "rolling"
    CALENDAR = "calendar"


_SHAPE: dict[Period, tuple[Granularity, timedelta, int]] = {
    Period.DAY: ("h", HOUR, 24),
    Period.WEEK: ("d", DAY, 7),
    Period.MONTH: ("d", DAY, 30),
}


@dataclass(frozen=True)
class Window:
    """The span [start, end) of one period; ``current`` when it ends now and so also counts messages
    stamped after ``end``. ``granularity``/``unit`` are the timeline's."""

    period: Period
    mode: WindowMode
    granularity: Granularity
    unit: timedelta
    start: datetime
    end: datetime
    current: bool = True

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def points(self) -> list[datetime]:
        """Start of every timeline point, oldest first: ``start``, then each UTC hour or day boundary
        before ``end``."""
        starts = [self.start]
        boundary = truncate(self.start, self.unit) + self.unit
        while boundary < self.end:
            starts.append(boundary)
            boundary += self.unit
        return starts

    @property
    def buckets(self) -> list[datetime]:
        """Alias of :attr:`points` for calendar windows, whose points are whole buckets."""
        return self.points

    def partial(self, index: int, count: int) -> bool:
        """Whether point ``index`` of ``count`` covers less than a whole hour or day."""
        first_cut = index == 0 and truncate(self.start, self.unit) != self.start
        return first_cut or (index == count - 1 and self.current)

    def previous(self) -> Window:
        """The window of exactly the same length ending where this one starts."""
        return replace(self, start=self.start - self.length, end=self.start, current=False)

    @property
    def kept_start(self) -> datetime:
        """Rolling windows: the first full UTC hour after the start, where kept hourly figures begin."""
        return truncate(self.start, HOUR) + HOUR

    @property
    def kind(self) -> str:
        """The name of the kept per-user totals of this window (`stats_windows.kind`)."""
        if self.mode is WindowMode.CALENDAR:
            return self.period.value
        return f"{'r' if self.current else 'p'}_{self.period.value}"


def truncate(moment: datetime, unit: timedelta) -> datetime:
    """Start of the UTC hour or day holding ``moment``."""
    moment = moment.astimezone(UTC)
    if unit == HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def window_for(period: Period, now: datetime, mode: WindowMode = WindowMode.CALENDAR) -> Window:
    """The window of ``period`` ending now."""
    granularity, unit, count = _SHAPE[period]
    now = now.astimezone(UTC)
    if mode is WindowMode.ROLLING:
        return Window(period, mode, granularity, unit, now - count * unit, now)
    current = truncate(now, unit)
    return Window(period, mode, granularity, unit, current - (count - 1) * unit, current + unit)
