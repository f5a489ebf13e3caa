"""Bearer-token authentication, compared in constant time.

Every data route requires ``Authorization: Bearer <TWIN_API_TOKEN>``. The one
exception is ``GET /alerts/stream``, which also accepts ``?token=``: a
browser's ``EventSource`` cannot set headers. The query form is accepted on
that route only, and the access log never records query strings.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

__all__ = ["TokenCheck", "bearer", "require_token", "require_token_or_query"]

bearer = HTTPBearer(auto_error=False, description="TWIN_API_TOKEN")


class TokenCheck:
    """Holds the expected token; ``None`` means auth is off (``--insecure-dev`` only)."""

    def __init__(self, token: str | None) -> None:
        self._token = None if token is None else token.encode()

    def accepts(self, presented: str | None) -> bool:
        if self._token is None:
            return True
        if presented is None:
            return False
        return hmac.compare_digest(presented.encode(), self._token)


def _denied() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or invalid bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _check(request: Request) -> TokenCheck:
    check: TokenCheck = request.app.state.token_check
    return check


async def require_token(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Dependency: a valid bearer token in the ``Authorization`` header."""
    if not _check(request).accepts(creds.credentials if creds else None):
        raise _denied()


async def require_token_or_query(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    token: Annotated[
        str | None,
        Query(description="The API token, for EventSource clients that cannot set headers."),
    ] = None,
) -> None:
    """Dependency: the token in the header, or in ``?token=`` (SSE route only)."""
    presented = creds.credentials if creds else token
    if not _check(request).accepts(presented):
        raise _denied()
