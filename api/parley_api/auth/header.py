"""Reading HTTP Basic credentials (RFC 7617) strictly: anything malformed is a 401, never a 500.

FastAPI's own HTTPBasic decodes the credentials as ASCII, which refuses the UTF-8 passwords that
registration accepts; this parser decodes UTF-8 and refuses what is not.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from fastapi import HTTPException, status
from fastapi.security import HTTPBasic
from starlette.requests import HTTPConnection

REALM = "parley"
WWW_AUTHENTICATE = f'Basic realm="{REALM}", charset="UTF-8"'
# Usernames are at most 64 characters and passwords 72 bytes, so honest credentials encode to
# well under this; anything longer is refused before it is decoded.
MAX_CREDENTIALS_CHARS = 1024


class MalformedCredentialsError(ValueError):
    """The Authorization header is missing or is not usable Basic credentials."""


@dataclass(frozen=True)
class BasicCredentials:
    """A username and password as the client sent them."""

    username: str
    password: str = field(repr=False)


def parse_basic(authorization: str | None) -> BasicCredentials:
    """Decode ``Basic base64(username:password)``; raises MalformedCredentialsError saying what is wrong."""
    if not authorization:
        raise MalformedCredentialsError("missing Basic credentials")
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise MalformedCredentialsError("the Authorization scheme must be Basic")
    encoded = encoded.strip()
    if not encoded or len(encoded) > MAX_CREDENTIALS_CHARS:
        raise MalformedCredentialsError("malformed Basic credentials")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise MalformedCredentialsError("malformed Basic credentials: expected base64 of UTF-8") from None
    username, separator, password = decoded.partition(":")
    if not separator or not username:
        raise MalformedCredentialsError("malformed Basic credentials: expected username:password")
    if any(ord(char) < 32 or ord(char) == 127 for char in username):
        raise MalformedCredentialsError("malformed Basic credentials: control characters in the username")
    return BasicCredentials(username=username, password=password)


def unauthorized(detail: str) -> HTTPException:
    """A 401 that tells the client to use Basic auth."""
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": WWW_AUTHENTICATE},
    )


class BasicAuthScheme(HTTPBasic):
    """HTTPBasic as OpenAPI declares it, reading the header with :func:`parse_basic`."""

    # Returns our dataclass (its repr hides the password) rather than HTTPBasicCredentials.
    async def __call__(self, request: HTTPConnection) -> BasicCredentials:  # type: ignore[override]
        """The credentials of ``request``, or 401 with WWW-Authenticate: Basic."""
        try:
            return parse_basic(request.headers.get("Authorization"))
        except MalformedCredentialsError as exc:
            raise unauthorized(str(exc)) from None


basic_auth_scheme = BasicAuthScheme(
    scheme_name="HTTPBasic",
    realm=REALM,
    description="An api_users account (registration or the ApiUser operator), as HTTP Basic credentials.",
)
