"""Chat sessions and their transcripts."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.api.deps import CurrentUser, RuntimeDep, SessionDep
from app.api.limits import rate_limit
from app.schemas.chat import MessageRead
from app.schemas.common import Page, PageParams
from app.schemas.sessions import SearchHit, SearchQuery, SessionCreate, SessionRead, SessionUpdate
from app.services import sessions as sessions_service

router = APIRouter(prefix="/sessions", tags=["sessions"], dependencies=[rate_limit("api")])
Paging = Annotated[PageParams, Query()]


@router.post("", response_model=SessionRead, status_code=status.HTTP_201_CREATED)
async def create_session(body: SessionCreate, user: CurrentUser, session: SessionDep) -> SessionRead:
    chat = await sessions_service.create_session(
        session, user_id=user.id, name=body.name, memory_enabled=body.memory_enabled
    )
    return SessionRead.model_validate(chat)


@router.get("", response_model=Page[SessionRead])
async def list_sessions(user: CurrentUser, session: SessionDep, page: Paging) -> Page[SessionRead]:
    result = await sessions_service.list_sessions(
        session, user_id=user.id, limit=page.limit, offset=page.offset
    )
    return Page[SessionRead].model_validate(result, from_attributes=True)


# Before "/{session_id}", which would take "search" for a session id.
@router.get("/search", response_model=Page[SearchHit])
async def search_sessions(
    user: CurrentUser,
    session: SessionDep,
    page: Paging,
    q: Annotated[SearchQuery, Query()],
) -> Page[SearchHit]:
    """Full-text search over the caller's session titles and messages, newest first."""
    result = await sessions_service.search(
        session, user_id=user.id, query=q, limit=page.limit, offset=page.offset
    )
    return Page[SearchHit].model_validate(result, from_attributes=True)


@router.get("/{session_id}", response_model=SessionRead)
async def get_session(session_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> SessionRead:
    chat, _ = await sessions_service.get_owned(session, user_id=user.id, session_id=session_id)
    return SessionRead.model_validate(chat)


@router.patch("/{session_id}", response_model=SessionRead)
async def update_session(
    session_id: uuid.UUID, body: SessionUpdate, user: CurrentUser, session: SessionDep
) -> SessionRead:
    chat = await sessions_service.update_session(
        session, user_id=user.id, session_id=session_id, name=body.name, memory_enabled=body.memory_enabled
    )
    return SessionRead.model_validate(chat)


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_session(
    session_id: uuid.UUID, user: CurrentUser, session: SessionDep, rt: RuntimeDep
) -> Response:
    thread_id = await sessions_service.delete_session(
        session, user_id=user.id, session_id=session_id, lease_ttl=rt.lease_ttl
    )
    rt.forget_threads([thread_id])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{session_id}/messages", response_model=Page[MessageRead])
async def list_messages(
    session_id: uuid.UUID, user: CurrentUser, session: SessionDep, page: Paging
) -> Page[MessageRead]:
    result = await sessions_service.list_messages(
        session, user_id=user.id, session_id=session_id, limit=page.limit, offset=page.offset
    )
    return Page[MessageRead].model_validate(result, from_attributes=True)


@router.delete("/{session_id}/messages", status_code=status.HTTP_204_NO_CONTENT)
async def clear_messages(
    session_id: uuid.UUID, user: CurrentUser, session: SessionDep, rt: RuntimeDep
) -> Response:
    thread_id = await sessions_service.clear_messages(
        session, user_id=user.id, session_id=session_id, lease_ttl=rt.lease_ttl
    )
    rt.forget_threads([thread_id])
    return Response(status_code=status.HTTP_204_NO_CONTENT)
