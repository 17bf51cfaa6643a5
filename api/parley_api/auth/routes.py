"""Self-registration of dashboard accounts with the admin token (POST /api/v1/auth/register).

The order of checks keeps the rules private to token holders: registration off (404), then the
body's shape (422), the rate limit per address (429), the admin token (403), the account rules
(422, naming the rule), a taken username (400), and finally 201.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import SecretStr, ValidationError

from parley_api.auth.registration import admin_token_matches, register_account
from parley_api.auth.schemas import ApiUserCreate, ApiUserPublic, ApiUserRegister
from parley_api.errors import ErrorPublic, Responses, RuleViolationsPublic
from parley_api.plumbing.client_address import client_address
from parley_api.state import StateDep
from parley_core.logging import get_logger
from parley_core.repositories.api_users import DuplicateUsernameError

log = get_logger(__name__)


router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

REGISTRATION_DISABLED = "registration is disabled: ADMIN_REGISTRATION_TOKEN is not configured"


def get_registration_token(state: StateDep) -> SecretStr:
    """The configured admin token; registration is off (404) without one."""
    token = state.settings.admin_registration_token
    if token is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=REGISTRATION_DISABLED)
    return token


RegistrationTokenDep = Annotated[SecretStr, Depends(get_registration_token)]


async def rate_limited_body(request: Request, state: StateDep, body: ApiUserRegister) -> ApiUserRegister:
    """The body, once the request is counted against REGISTRATION_RATE_LIMIT for its client address.

    It takes the body so that it runs after the body parsed: a malformed one (422) costs no budget.
    """
    await state.rate_limiter.check(request, state.settings.registration_rate_limit, scope="registration")
    return body


def _checked(body: ApiUserRegister) -> ApiUserCreate:
    """The account rules, reported like FastAPI's own 422s but never echoing the input."""
    try:
        return ApiUserCreate(username=body.username, password=body.password)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise RequestValidationError(
            [
                {
                    "type": error["type"],
                    "loc": ("body", *(error["loc"] or ("password",))),
                    "msg": error["msg"],
                }
                for error in errors
            ]
        ) from None


_RESPONSES: Responses = {
    400: {"model": ErrorPublic, "description": "The username is taken."},
    403: {"model": ErrorPublic, "description": "Missing or wrong admin token."},
    404: {"model": ErrorPublic, "description": "Registration is off: ADMIN_REGISTRATION_TOKEN is not set."},
    422: {
        "model": RuleViolationsPublic,
        "description": "Malformed body, or an account rule failed; `type` names the rule "
        "(`username_invalid`, `password_too_short`, `password_too_long`, `password_too_common`, "
        "`password_equals_username`, `password_control_characters`).",
    },
    429: {
        "model": ErrorPublic,
        "description": "REGISTRATION_RATE_LIMIT exceeded for this client address.",
        "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    },
}


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiUserPublic,
    summary="Register a dashboard account",
    responses=_RESPONSES,
)
async def register(
    request: Request,
    state: StateDep,
    expected_token: RegistrationTokenDep,
    body: Annotated[ApiUserRegister, Depends(rate_limited_body)],
    x_admin_token: Annotated[
        SecretStr | None, Header(description="ADMIN_REGISTRATION_TOKEN; wins over `admin_token` in the body.")
    ] = None,
) -> ApiUserPublic:
    """Create an account for Basic auth; needs the admin token in `X-Admin-Token` or the body."""
    address = client_address(request, state.settings.trusted_proxies)
    if not admin_token_matches(x_admin_token or body.admin_token, expected_token):
        log.warning("registration_refused", reason="admin token", client=address)
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail="missing or invalid admin token")
    account = _checked(body)
    try:
        record = await register_account(
            state.engine,
            username=account.username,
            password=account.password,
            bcrypt_rounds=state.settings.bcrypt_rounds,
        )
    except DuplicateUsernameError:
        raise HTTPException(
            status_code=status.HTTP_400_BAD_REQUEST, detail="username already exists"
        ) from None
    log.info("api_user_registered", username=record.username, user_id=record.id, client=address)
    return ApiUserPublic(id=record.id, username=record.username, created_at=record.created_at)
