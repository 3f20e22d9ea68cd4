"""The web app's refresh token: an HttpOnly, SameSite=Strict cookie scoped to the auth routes.

The access token stays in the page's memory and travels as a bearer header, so no other route reads
a cookie. A request that spends the cookie must carry the CSRF header: a cross-site form cannot set
a custom header, and a cross-site script needs a CORS preflight that this service does not grant.
Bearer clients never see any of this: they send the refresh token in the body.
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request, Response

from app.config import Settings
from app.errors import CsrfError
from app.services.tokens import TokenPair

COOKIE = "refresh_token"
PATH = "/api/v1/auth"
CSRF_HEADER = "X-CSRF-Protection"


def set_refresh_cookie(response: Response, pair: TokenPair, settings: Settings) -> None:
    max_age = int((pair.refresh_expires_at - datetime.now(UTC)).total_seconds())
    response.set_cookie(
        COOKIE,
        pair.refresh_token,
        max_age=max(max_age, 0),
        path=PATH,
        secure=settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )


def clear_refresh_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(COOKIE, path=PATH, secure=settings.cookie_secure, httponly=True, samesite="strict")


def _require_csrf_header(request: Request) -> None:
    if not request.headers.get(CSRF_HEADER):
        raise CsrfError(f"A request that sets or uses the session cookie must send the {CSRF_HEADER} header")


def cookie_refresh_token(request: Request) -> str | None:
    """The cookie's refresh token, if the request has one; refused without the CSRF header."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    _require_csrf_header(request)
    return token


async def _cookie_mode(
    request: Request,
    cookie: Annotated[
        bool,
        Query(description="Set the refresh token as an HttpOnly cookie instead of returning it in the body"),
    ] = False,
) -> bool:
    # Setting the cookie needs the header too: otherwise another site's form could log a visitor in
    # to the attacker's account.
    if cookie:
        _require_csrf_header(request)
    return cookie


CookieMode = Annotated[bool, Depends(_cookie_mode)]
