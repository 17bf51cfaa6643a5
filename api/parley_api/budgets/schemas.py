"""Bodies of the budget routes: an override in, a user's budget and usage out."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from parley_core.budgets import Budget, Limits, Meter, Override, Spending

# Dollars go out as JSON numbers (rounded to 10 decimals, what the ledger keeps), not strings.
Dollars = Annotated[Decimal, PlainSerializer(lambda value: float(round(value, 10)), return_type=float)]
TokenLimit = Annotated[int, Field(ge=0, lt=10**15)]
DollarLimit = Annotated[Decimal, Field(ge=0, lt=10**10, decimal_places=6, allow_inf_nan=False)]


class LimitsPublic(BaseModel):
    """Up to four limits; null means no limit of that kind (in an override: the default applies)."""

    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    usd_per_day: Dollars | None = None
    usd_per_month: Dollars | None = None

    @classmethod
    def of(cls, limits: Limits) -> LimitsPublic:
        return cls(
            tokens_per_day=limits.tokens_per_day,
            tokens_per_month=limits.tokens_per_month,
            usd_per_day=limits.usd_per_day,
            usd_per_month=limits.usd_per_month,
        )


class OverrideIn(BaseModel):
    """An admin's override of one user's budget: the limits given replace the defaults, the rest stay
    default; ``exempt`` lifts every limit."""

    model_config = ConfigDict(extra="forbid")

    tokens_per_day: TokenLimit | None = None
    tokens_per_month: TokenLimit | None = None
    usd_per_day: DollarLimit | None = None
    usd_per_month: DollarLimit | None = None
    exempt: bool = False

    def override(self) -> Override:
        return Override(
            limits=Limits(
                tokens_per_day=self.tokens_per_day,
                tokens_per_month=self.tokens_per_month,
                usd_per_day=self.usd_per_day,
                usd_per_month=self.usd_per_month,
            ),
            exempt=self.exempt,
        )


class OverridePublic(LimitsPublic):
    """A stored override, with who changed it last and when."""

    exempt: bool
    updated_by: str | None
    updated_at: datetime | None

    @classmethod
    def of_override(cls, override: Override) -> OverridePublic:
        return cls(
            **LimitsPublic.of(override.limits).model_dump(),
            exempt=override.exempt,
            updated_by=override.updated_by,
            updated_at=override.updated_at,
        )


class SpendingPublic(BaseModel):
    """What the user's answers consumed in the current UTC day and month (never reduced by /reset)."""

    day_tokens: int
    day_usd: Dollars
    month_tokens: int
    month_usd: Dollars

    @classmethod
    def of(cls, spending: Spending) -> SpendingPublic:
        return cls(
            day_tokens=spending.day_tokens,
            day_usd=spending.day_usd,
            month_tokens=spending.month_tokens,
            month_usd=spending.month_usd,
        )


class MeterPublic(BaseModel):
    """One limit that applies, against what was used of it."""

    period: Literal["day", "month"]
    unit: Literal["tokens", "usd"]
    used: Dollars
    limit: Dollars
    left: Dollars
    exhausted: bool = Field(description="True: the user's next message is refused until `resets_at`.")
    resets_at: datetime

    @classmethod
    def of(cls, meter: Meter) -> MeterPublic:
        return cls(
            period=meter.period,
            unit=meter.unit,
            used=meter.used,
            limit=meter.limit,
            left=meter.left,
            exhausted=meter.exhausted,
            resets_at=meter.resets_at,
        )


class BudgetPublic(BaseModel):
    """A Telegram user's budget: the defaults, their override, what applies, what was used and is left."""

    user_id: int
    defaults: LimitsPublic
    override: OverridePublic | None
    exempt: bool = Field(description="No limit applies (an override's exemption or BUDGET_EXEMPT_USER_IDS).")
    limits: LimitsPublic = Field(description="The limits that apply to this user.")
    spending: SpendingPublic
    meters: list[MeterPublic]

    @classmethod
    def of(
        cls,
        *,
        user_id: int,
        defaults: Limits,
        override: Override | None,
        budget: Budget,
        spending: Spending,
        meters: list[Meter],
    ) -> BudgetPublic:
        return cls(
            user_id=user_id,
            defaults=LimitsPublic.of(defaults),
            override=OverridePublic.of_override(override) if override is not None else None,
            exempt=budget.exempt,
            limits=LimitsPublic.of(budget.limits),
            spending=SpendingPublic.of(spending),
            meters=[MeterPublic.of(meter) for meter in meters],
        )


class OverrideListPublic(BaseModel):
    """A page of overrides in user id order; pass `next_after` as `after` for the next page."""

    items: list[OverrideEntryPublic]
    next_after: int | None


class OverrideEntryPublic(OverridePublic):
    """A stored override and whose it is."""

    user_id: int


OverrideListPublic.model_rebuild()
