"""FastAPI dependencies: the request's DB session, the current user, the long-lived runtime."""

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.errors import UnauthorizedError
from app.models import User
from app.services import auth as auth_service
from app.services.chat import ChatRuntime

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)

# Dependencies are `async def` even when they do not await: FastAPI runs plain `def` ones in a
# worker thread, a thread hop per dependency per request.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_chat_runtime(request: Request) -> ChatRuntime:
    runtime: ChatRuntime = request.app.state.chat
    return runtime


SettingsDep = Annotated[Settings, Depends(get_settings)]
ChatRuntimeDep = Annotated[ChatRuntime, Depends(get_chat_runtime)]


async def get_sessionmaker(chat: ChatRuntimeDep) -> async_sessionmaker[AsyncSession]:
    return chat.db


SessionMakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]


async def get_db_session(db: SessionMakerDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed once after the handler succeeds."""
    async with db() as session, session.begin():
        yield session


# scope="function": commit before the response is sent, so a failed commit is never reported as success.
SessionDep = Annotated[AsyncSession, Depends(get_db_session, scope="function")]


async def get_token_user_id(
    token: Annotated[str | None, Depends(oauth2_scheme)], settings: SettingsDep
) -> uuid.UUID:
    """The token's user id, unchecked against the database: for routes whose own statement checks
    that the user exists and is active (a chat turn folds it into taking the lease)."""
    if not token:
        raise UnauthorizedError()
    user_id = auth_service.user_id_from_token(token, settings)
    # Every later log line of this request carries it (CurrentUser builds on this dependency).
    structlog.contextvars.bind_contextvars(user_id=str(user_id))
    return user_id


TokenUserId = Annotated[uuid.UUID, Depends(get_token_user_id)]


async def get_current_user(
    user_id: TokenUserId,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    settings: SettingsDep,
    chat: ChatRuntimeDep,
) -> User:
    # iat is read by a second decode (microseconds) so that TokenUserId stays a plain id for chat.
    issued_at = auth_service.access_claims(token or "", settings).issued_at
    return await auth_service.active_user(chat.pool, user_id, issued_at=issued_at)


CurrentUser = Annotated[User, Depends(get_current_user)]
