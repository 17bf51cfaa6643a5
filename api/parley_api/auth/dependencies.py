"""The current user of a request (HTTP Basic), as a dependency of the routes that need one."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status

from parley_api.auth.basic import AuthenticatedUser, InvalidCredentialsError
from parley_api.auth.header import BasicCredentials, basic_auth_scheme, unauthorized
from parley_api.auth.throttle import LoginThrottledError
from parley_api.plumbing.client_address import client_address
from parley_api.state import StateDep
from parley_core.models import ApiUserRole


async def get_current_user(
    request: Request,
    state: StateDep,
    credentials: Annotated[BasicCredentials, Security(basic_auth_scheme)],
) -> AuthenticatedUser:
    """HTTP Basic against api_users: 401 (WWW-Authenticate: Basic) or 429 after too many failures."""
    address = client_address(request, state.settings.trusted_proxies)
    try:
        user = await state.authenticator.authenticate(state.engine, credentials, address=address)
    except LoginThrottledError as exc:
        raise HTTPException(
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many failed logins; retry later",
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    except InvalidCredentialsError:
        raise unauthorized("invalid username or password") from None
    return user


CurrentUserDep = Annotated[AuthenticatedUser, Depends(get_current_user)]


async def get_admin_user(user: CurrentUserDep) -> AuthenticatedUser:
    """The current user, if the account is an admin (ApiUser ``spec.role: admin``); else 403."""
    if user.role is not ApiUserRole.ADMIN:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN, detail="this endpoint needs an admin account"
        )
    return user


AdminUserDep = Annotated[AuthenticatedUser, Depends(get_admin_user)]
