"""Chat sessions and their transcripts."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from app.api.deps import CurrentUser, RuntimeDep, SessionDep
from app.api.limits import rate_limit
from app.schemas.chat import MessageRead
from app.schemas.common import Page, PageParams
from app.schemas.feedback import FeedbackRead, FeedbackUpdate
from app.schemas.sessions import SearchHit, SearchQuery, SessionCreate, SessionRead, SessionUpdate
from app.services import feedback as feedback_service
from app.services import sessions as sessions_service

router = APIRouter(prefix="/sessions", tags=["sessions"], dependencies=[rate_limit("api")])
Paging = Annotated[PageParams, Query()]
MessageId = Annotated[int, Path(ge=1, le=2**63 - 1)]  # a bigint: larger ids would fail in the database


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


@router.put("/{session_id}/messages/{message_id}/feedback", response_model=FeedbackRead)
async def put_feedback(
    session_id: uuid.UUID,
    message_id: MessageId,
    body: FeedbackUpdate,
    user: CurrentUser,
    session: SessionDep,
    rt: RuntimeDep,
) -> FeedbackRead:
    """Rate one of the assistant's messages (again: the new rating replaces the old)."""
    feedback = await feedback_service.set_feedback(
        session,
        rt.tracing,
        user_id=user.id,
        session_id=session_id,
        message_id=message_id,
        rating=body.rating,
        comment=body.comment,
    )
    return FeedbackRead.model_validate(feedback)


@router.delete("/{session_id}/messages/{message_id}/feedback", status_code=status.HTTP_204_NO_CONTENT)
async def delete_feedback(
    session_id: uuid.UUID, message_id: MessageId, user: CurrentUser, session: SessionDep
) -> Response:
    await feedback_service.delete_feedback(
        session, user_id=user.id, session_id=session_id, message_id=message_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
