"""FastAPI dependencies: the request's DB session, the current user, the long-lived runtime."""

from collections.abc import AsyncIterator
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.errors import UnauthorizedError
from app.models import User
from app.runtime import Runtime
from app.services import tokens

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)
# LangGraph's JS client sends its key as `x-api-key`: the agent protocol takes our access token there too.
api_key_scheme = APIKeyHeader(name="x-api-key", auto_error=False)

# Dependencies are `async def` even when they do not await: FastAPI runs plain `def` ones in a
# worker thread, a thread hop per dependency per request.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


SettingsDep = Annotated[Settings, Depends(get_settings)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_sessionmaker(rt: RuntimeDep) -> async_sessionmaker[AsyncSession]:
    return rt.db.sessions


SessionMakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]


async def get_db_session(db: SessionMakerDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed once after the handler succeeds."""
    async with db() as session, session.begin():
        yield session


# scope="function": commit before the response is sent, so a failed commit is never reported as success.
SessionDep = Annotated[AsyncSession, Depends(get_db_session, scope="function")]


async def get_token_claims(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)], settings: SettingsDep
) -> tokens.TokenClaims:
    """The token's user and login, unchecked against the database: for routes whose own statement
    checks the user is active and the login live (a chat turn takes its lease so)."""
    return _claims(request, token, settings)


def _claims(request: Request, token: str | None, settings: Settings) -> tokens.TokenClaims:
    if not token:
        raise UnauthorizedError()
    # The rate limiter, which runs first, may have decoded this very token already.
    decoded: tuple[str, tokens.TokenClaims] | None = getattr(request.state, "access_claims", None)
    claims = (
        decoded[1] if decoded and decoded[0] == token else tokens.decode(token, settings, kind=tokens.ACCESS)
    )
    # Every later log line of this request carries it (CurrentUser builds on this dependency).
    structlog.contextvars.bind_contextvars(user_id=str(claims.user_id))
    return claims


TokenClaims = Annotated[tokens.TokenClaims, Depends(get_token_claims)]


async def get_current_user(claims: TokenClaims, rt: RuntimeDep) -> User:
    return await tokens.active_user(rt.db.pool, claims)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_protocol_claims(
    request: Request,
    bearer: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
    settings: SettingsDep,
) -> tokens.TokenClaims:
    """The agent protocol's routes: `Authorization: Bearer <token>`, or the same token as `x-api-key`."""
    return _claims(request, bearer or api_key, settings)


ProtocolClaims = Annotated[tokens.TokenClaims, Depends(get_protocol_claims)]


async def get_protocol_user(claims: ProtocolClaims, rt: RuntimeDep) -> User:
    return await tokens.active_user(rt.db.pool, claims)


ProtocolUser = Annotated[User, Depends(get_protocol_user)]
