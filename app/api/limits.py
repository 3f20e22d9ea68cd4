"""Rate-limit dependencies and the client's address.

A route names its limit; the client is the token's user when the request carries a valid access
token, else its address. The address is the TCP peer unless a trusted-proxy header is configured.
"""

import ipaddress
from typing import Annotated, Any

from fastapi import Depends, Request

from app.api.deps import RuntimeDep, SettingsDep
from app.config import Settings
from app.errors import UnauthorizedError
from app.services import rate_limits, tokens


def client_address(request: Request, settings: Settings) -> str:
    peer = request.client.host if request.client else "unknown"
    if settings.trusted_proxy_header is None:
        return peer
    # Each proxy appends the address it received from; the one our nearest trusted proxy appended
    # is `hops` from the end. Anything left of it was written by the client and proves nothing.
    values = request.headers.get(settings.trusted_proxy_header)
    if not values:
        return peer
    chain = [v.strip() for v in values.split(",") if v.strip()]
    if len(chain) < settings.trusted_proxy_hops:
        return peer
    candidate = chain[-settings.trusted_proxy_hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


async def get_client_address(request: Request, settings: SettingsDep) -> str:
    return client_address(request, settings)


ClientAddress = Annotated[str, Depends(get_client_address)]


def _subject(request: Request, settings: Settings) -> str:
    # Read from the header here, not through the OAuth2 dependency, which would mark public routes
    # (log-in, sign-up) as needing a token in the OpenAPI schema.
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        token = request.headers.get("x-api-key", "")  # the agent protocol's alias (app/api/deps.py)
    if token:
        try:
            claims = tokens.decode(token, settings, kind=tokens.ACCESS)
        except UnauthorizedError:
            pass  # the route itself refuses it; until then the address is the client
        else:
            request.state.access_claims = (token, claims)  # get_token_claims need not decode again
            return f"user:{claims.user_id}"
    return f"ip:{client_address(request, settings)}"


def rate_limit(name: str) -> Any:
    """A dependency counting the request against RATE_LIMIT_<NAME>; list it before the route's own
    dependencies so that a refused request costs no more work (a log-in's bcrypt, say)."""

    async def limited(request: Request, settings: SettingsDep, rt: RuntimeDep) -> None:
        if settings.rate_limit_enabled:
            await rate_limits.hit(
                rt.db.pool, name=name, subject=_subject(request, settings), rate=settings.rate(name)
            )

    return Depends(limited)
