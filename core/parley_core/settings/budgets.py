"""Default per-user budgets, shared by the bot (which enforces them) and the API (which shows them)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from parley_core.budgets import Limits
from parley_core.settings.base import ParleySettings, split_commas


class BudgetSettings(ParleySettings):
    """Limits that apply to every user without an admin's override; unset limits do not apply."""

    budget_tokens_per_day: int | None = Field(
        default=None,
        ge=0,
        description="Tokens (prompt + completion) a user's answers may use per UTC day; unset: no limit.",
    )
    budget_tokens_per_month: int | None = Field(
        default=None, ge=0, description="Tokens a user's answers may use per UTC calendar month."
    )
    budget_usd_per_day: Decimal | None = Field(
        default=None,
        ge=0,
        description="US dollars a user's answers may cost per UTC day (the gateway's reported cost, "
        "else LLM_PRICES; an answer of an unpriced model counts as free).",
    )
    budget_usd_per_month: Decimal | None = Field(
        default=None, ge=0, description="US dollars a user's answers may cost per UTC calendar month."
    )
    budget_exempt_user_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Comma-separated Telegram user ids no budget applies to."
    )
    budget_warn_percent: int = Field(
        default=80,
        ge=1,
        le=99,
        description="A user is told once per period when an answer takes a budget to this share.",
    )

    @field_validator("budget_exempt_user_ids", mode="before")
    @classmethod
    def _split_user_ids(cls, value: object) -> object:
        return split_commas(value)

    def budget_defaults(self) -> Limits:
        """The default limits as the budget rules take them."""
        return Limits(
            tokens_per_day=self.budget_tokens_per_day,
            tokens_per_month=self.budget_tokens_per_month,
            usd_per_day=self.budget_usd_per_day,
            usd_per_month=self.budget_usd_per_month,
        )
