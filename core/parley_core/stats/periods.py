"""Stats periods as bucket-aligned UTC windows, and the window before each one.

`day` is the 24 hourly buckets ending with the current hour; `week` and `month` are the 7 and 30
daily buckets ending with today. Aligning windows to buckets is what lets the rollups answer
exactly; the timeline shows the same buckets.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

Granularity = Literal["h", "d"]


class Period(enum.StrEnum):
    """The periods the dashboard offers."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


_SHAPE: dict[Period, tuple[Granularity, timedelta, int]] = {
    Period.DAY: ("h", timedelta(hours=1), 24),
    Period.WEEK: ("d", timedelta(days=1), 7),
    Period.MONTH: ("d", timedelta(days=1), 30),
}


@dataclass(frozen=True)
class Window:
    """Buckets [start, end) of one granularity; ``end`` is the end of the current bucket."""

    period: Period
    granularity: Granularity
    unit: timedelta
    start: datetime
    end: datetime

    @property
    def buckets(self) -> list[datetime]:
        """Start of every bucket, oldest first."""
        count = round((self.end - self.start) / self.unit)
        return [self.start + i * self.unit for i in range(count)]

    def previous(self) -> Window:
        """The window of equal length just before this one."""
        length = self.end - self.start
        return Window(self.period, self.granularity, self.unit, self.start - length, self.start)


def truncate(moment: datetime, unit: timedelta) -> datetime:
    """Start of the UTC hour or day holding ``moment``."""
    moment = moment.astimezone(UTC)
    if unit == timedelta(hours=1):
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def window_for(period: Period, now: datetime) -> Window:
    """The window of ``period`` that ends with the bucket holding ``now``."""
    granularity, unit, count = _SHAPE[period]
    current = truncate(now, unit)
    return Window(period, granularity, unit, current - (count - 1) * unit, current + unit)
