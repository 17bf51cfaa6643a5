"""Per-user budgets: which limits apply to a user, what is used and left, and when it resets.

A budget has up to four limits — tokens and US dollars, per UTC day and per UTC month — each
from the settings' defaults unless an admin overrode it for the user; an exempt user has none.
A turn may start while every limit has something left; the turn that crosses a limit finishes
(nobody gets a half-written answer), and the next one is refused until the period resets. The
bot, the API and the admin command all read budgets through this module.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal, TypeVar

Period = Literal["day", "month"]
Unit = Literal["tokens", "usd"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class Limits:
    """Up to four limits; None means no limit of that kind."""

    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    usd_per_day: Decimal | None = None
    usd_per_month: Decimal | None = None

    def any(self) -> bool:
        """Whether any limit is set."""
        return any(value is not None for value in self._values())

    def _values(self) -> tuple[int | Decimal | None, ...]:
        return (self.tokens_per_day, self.tokens_per_month, self.usd_per_day, self.usd_per_month)


@dataclass(frozen=True)
class Override:
    """An admin's override for one user: each limit set replaces the default; ``exempt`` lifts all."""

    limits: Limits
    exempt: bool = False
    updated_by: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Spending:
    """What a user's turns consumed in the current UTC day and month."""

    day_tokens: int = 0
    day_usd: Decimal = Decimal(0)
    month_tokens: int = 0
    month_usd: Decimal = Decimal(0)

    def plus(self, tokens: int, usd: Decimal) -> Spending:
        """This spending after one more turn's consumption."""
        return Spending(
            day_tokens=self.day_tokens + tokens,
            day_usd=self.day_usd + usd,
            month_tokens=self.month_tokens + tokens,
            month_usd=self.month_usd + usd,
        )


@dataclass(frozen=True)
class Budget:
    """The limits that apply to one user, and why."""

    limits: Limits
    exempt: bool
    overridden: bool  # an admin's override applies (a limit replaced, or an exemption)


@dataclass(frozen=True)
class Meter:
    """One limit against what was used of it."""

    period: Period
    unit: Unit
    used: Decimal
    limit: Decimal
    resets_at: datetime

    @property
    def left(self) -> Decimal:
        """What is left (never negative: the turn that crossed the limit may have gone over)."""
        return max(self.limit - self.used, Decimal(0))

    @property
    def exhausted(self) -> bool:
        """Nothing is left: the next turn is refused until ``resets_at``."""
        return self.used >= self.limit

    @property
    def fraction(self) -> float:
        """Share used, 1.0 and more once exhausted (a zero limit counts as exhausted)."""
        if self.limit <= 0:
            return 1.0
        return float(self.used / self.limit)


def effective_budget(
    *, user_id: int, defaults: Limits, override: Override | None, exempt_user_ids: Collection[int]
) -> Budget:
    """The user's limits: the defaults, each replaced by the override's when it sets one."""
    if user_id in exempt_user_ids or (override is not None and override.exempt):
        return Budget(limits=Limits(), exempt=True, overridden=override is not None and override.exempt)
    if override is None:
        return Budget(limits=defaults, exempt=False, overridden=False)
    own = override.limits
    return Budget(
        limits=Limits(
            tokens_per_day=_first(own.tokens_per_day, defaults.tokens_per_day),
            tokens_per_month=_first(own.tokens_per_month, defaults.tokens_per_month),
            usd_per_day=_first(own.usd_per_day, defaults.usd_per_day),
            usd_per_month=_first(own.usd_per_month, defaults.usd_per_month),
        ),
        exempt=False,
        overridden=own.any(),
    )


def meters(budget: Budget, spending: Spending, now: datetime) -> list[Meter]:
    """Each limit of ``budget`` against ``spending``, the day's before the month's, tokens first."""
    day_end, month_end = period_ends(now)
    limits = budget.limits
    candidates: list[tuple[Period, Unit, int | Decimal, int | Decimal | None, datetime]] = [
        ("day", "tokens", spending.day_tokens, limits.tokens_per_day, day_end),
        ("day", "usd", spending.day_usd, limits.usd_per_day, day_end),
        ("month", "tokens", spending.month_tokens, limits.tokens_per_month, month_end),
        ("month", "usd", spending.month_usd, limits.usd_per_month, month_end),
    ]
    return [
        Meter(period=period, unit=unit, used=Decimal(used), limit=Decimal(limit), resets_at=resets_at)
        for period, unit, used, limit, resets_at in candidates
        if limit is not None
    ]


def blocking(current: list[Meter]) -> Meter | None:
    """The exhausted limit that resets last (the turn waits for it), or None when a turn may start."""
    exhausted = [meter for meter in current if meter.exhausted]
    return max(exhausted, key=lambda meter: meter.resets_at) if exhausted else None


def newly_warned(before: list[Meter], after: list[Meter], *, percent: int) -> list[Meter]:
    """Limits this turn took to ``percent`` % or beyond (each is warned about once per period)."""
    threshold = percent / 100
    was = {(m.period, m.unit): m.fraction for m in before}
    return [m for m in after if m.fraction >= threshold > was.get((m.period, m.unit), 0.0)]


def period_ends(now: datetime) -> tuple[datetime, datetime]:
    """When the current UTC day and the current UTC month end (their budgets reset)."""
    today = now.astimezone(UTC).date()
    day_end = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    next_month = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return day_end, datetime.combine(next_month, datetime.min.time(), tzinfo=UTC)


def period_starts(now: datetime) -> tuple[date, date]:
    """The current UTC day and the first day of the current UTC month (the ledger's keys)."""
    today = now.astimezone(UTC).date()
    return today, today.replace(day=1)


def _first(own: _T | None, default: _T | None) -> _T | None:
    return own if own is not None else default
