"""The current user of a request (HTTP Basic), as a dependency of the routes that need one."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status

from parley_api.auth.basic import AuthenticatedUser, InvalidCredentialsError
from parley_api.auth.header import BasicCredentials, basic_auth_scheme, unauthorized
from parley_api.auth.throttle import LoginThrottledError
from parley_api.plumbing.client_address import client_address
from parley_api.state import StateDep


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
