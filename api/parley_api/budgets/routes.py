"""/api/v1/budgets: admins read and set the bot users' budgets (analysts get 403).

The bot enforces the budgets; these routes read the same ledger and overrides through
``parley_core.repositories.budgets``. Every request is authenticated, must be an admin account
(ApiUser ``spec.role: admin``) and counts against BUDGETS_API_RATE_LIMIT for its user.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from parley_api.auth.basic import AuthenticatedUser
from parley_api.auth.dependencies import AdminUserDep
from parley_api.budgets.schemas import (
    BudgetPublic,
    OverrideEntryPublic,
    OverrideIn,
    OverrideListPublic,
    OverridePublic,
)
from parley_api.errors import AUTHENTICATED_RESPONSES, DATABASE_UNAVAILABLE_RESPONSES, ErrorPublic, Responses
from parley_api.state import AppState, StateDep
from parley_core import budgets
from parley_core.logging import get_logger
from parley_core.repositories import budgets as stored_budgets

log = get_logger(__name__)

router = APIRouter(prefix="/api/v1/budgets", tags=["budgets"])

UserIdPath = Annotated[int, Path(ge=1, lt=2**63, description="Telegram user id")]

ERROR_RESPONSES: Responses = {
    **AUTHENTICATED_RESPONSES,
    403: {"model": ErrorPublic, "description": "The account is not an admin (ApiUser `spec.role: admin`)."},
    422: {"description": "A malformed user id, body or query parameter."},
    **DATABASE_UNAVAILABLE_RESPONSES,
}


async def rate_limited_admin(request: Request, state: StateDep, user: AdminUserDep) -> AuthenticatedUser:
    """The admin, once the request is counted against BUDGETS_API_RATE_LIMIT (after 401/403)."""
    await state.rate_limiter.check(
        request, state.settings.budgets_api_rate_limit, scope="budgets", username=user.username
    )
    return user


AdminDep = Annotated[AuthenticatedUser, Depends(rate_limited_admin)]


async def _budget(state: AppState, user_id: int) -> BudgetPublic:
    now = datetime.now(UTC)
    async with state.engine.connect() as conn:
        found = await stored_budgets.read_budget(conn, user_id=user_id, today=now.date())
    settings = state.settings
    defaults = settings.budget_defaults()
    budget = budgets.effective_budget(
        user_id=user_id,
        defaults=defaults,
        override=found.override,
        exempt_user_ids=frozenset(settings.budget_exempt_user_ids),
    )
    return BudgetPublic.of(
        user_id=user_id,
        defaults=defaults,
        override=found.override,
        budget=budget,
        spending=found.spending,
        meters=budgets.meters(budget, found.spending, now),
    )


@router.get("", response_model=OverrideListPublic, summary="Budget overrides", responses=ERROR_RESPONSES)
async def list_overrides(
    state: StateDep,
    _admin: AdminDep,
    after: Annotated[int, Query(ge=0, lt=2**63, description="List user ids greater than this")] = 0,
    limit: Annotated[int, Query(ge=1, le=500, description="Largest page")] = 100,
) -> OverrideListPublic:
    """Users whose budget an admin overrode, in user id order (keyset pages)."""
    async with state.engine.connect() as conn:
        page = await stored_budgets.list_overrides(conn, after=after, limit=limit)
    items = [
        OverrideEntryPublic(user_id=user_id, **OverridePublic.of_override(override).model_dump())
        for user_id, override in page
    ]
    return OverrideListPublic(items=items, next_after=items[-1].user_id if len(items) == limit else None)


@router.get("/{user_id}", response_model=BudgetPublic, summary="A user's budget", responses=ERROR_RESPONSES)
async def get_budget(state: StateDep, _admin: AdminDep, user_id: UserIdPath) -> BudgetPublic:
    """The defaults, the user's override, the limits that apply, today's and this month's spending,
    and for each limit what is left and when it resets (UTC)."""
    return await _budget(state, user_id)


@router.put(
    "/{user_id}", response_model=BudgetPublic, summary="Override a user's budget", responses=ERROR_RESPONSES
)
async def put_budget(state: StateDep, admin: AdminDep, user_id: UserIdPath, body: OverrideIn) -> BudgetPublic:
    """Replace the user's override: each limit given replaces the default, a limit left out (or null)
    is the default; `exempt: true` lifts every limit. The bot applies it from the user's next turn."""
    async with state.engine.begin() as conn:
        await stored_budgets.set_override(
            conn, user_id=user_id, override=body.override(), updated_by=f"api:{admin.username}"
        )
    log.info("budget_changed", target_user_id=user_id, by=f"api:{admin.username}")
    return await _budget(state, user_id)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a user's override",
    responses=ERROR_RESPONSES,
)
async def delete_budget(state: StateDep, admin: AdminDep, user_id: UserIdPath) -> Response:
    """The defaults apply to the user again (204 whether or not there was an override)."""
    async with state.engine.begin() as conn:
        removed = await stored_budgets.clear_override(conn, user_id=user_id)
    if removed:
        log.info("budget_changed", target_user_id=user_id, by=f"api:{admin.username}", cleared=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
