"""The web app's refresh token: an HttpOnly, SameSite=Strict cookie scoped to the auth routes.

The access token stays in the page's memory and travels as a bearer header, so no other route reads
a cookie. A request that spends the cookie must carry the CSRF header: a cross-site form cannot set
a custom header, and a cross-site script needs a CORS preflight that this service does not grant.
Bearer clients never see any of this: they send the refresh token in the body.
"""

from datetime import UTC, datetime

from fastapi import Request, Response

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


def cookie_refresh_token(request: Request) -> str | None:
    """The cookie's refresh token, if the request has one; refused without the CSRF header."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    if not request.headers.get(CSRF_HEADER):
        raise CsrfError(f"A request that uses the session cookie must send the {CSRF_HEADER} header")
    return token
