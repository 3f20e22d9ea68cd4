"""Threads: the caller's sessions, their state and history. Another user's thread is a 404."""

import uuid

import structlog
from fastapi import APIRouter, Query, Response, status

from app.api.deps import ProtocolUser, RuntimeDep
from app.api.limits import rate_limit
from app.errors import ValidationFailedError
from app.schemas.protocol import HistoryQuery, ThreadCreate, ThreadRead, ThreadSearch, ThreadStateRead
from app.services.protocol import state as state_service
from app.services.protocol import threads as threads_service

router = APIRouter(prefix="/threads")


@router.post("", response_model=ThreadRead, dependencies=[rate_limit("api")])
async def create_thread(user: ProtocolUser, rt: RuntimeDep, body: ThreadCreate | None = None) -> ThreadRead:
    """A new session. With `thread_id` an id of the client's choosing: 409 when taken, or with
    `if_exists: do_nothing` the caller's existing thread."""
    body = body or ThreadCreate()
    if body.supersteps:
        raise ValidationFailedError("supersteps are not supported", loc=("body", "supersteps"))
    thread = await threads_service.create(
        rt,
        user_id=user.id,
        thread_id=body.thread_id,
        metadata=body.metadata or {},
        if_exists=body.if_exists or "raise",
    )
    return ThreadRead.model_validate(thread, from_attributes=True)


@router.post("/search", response_model=list[ThreadRead], dependencies=[rate_limit("api")])
async def search_threads(
    user: ProtocolUser, rt: RuntimeDep, body: ThreadSearch | None = None
) -> list[ThreadRead]:
    """The caller's threads whose metadata contains `metadata`, newest first by default. Each one's
    `values` holds its first message only; GET /threads/{id} has the whole state."""
    body = body or ThreadSearch()
    if body.values:
        raise ValidationFailedError("searching by values is not supported", loc=("body", "values"))
    found = await threads_service.search(
        rt,
        user_id=user.id,
        metadata=body.metadata or {},
        ids=body.ids,
        status=body.status,
        sort_by=body.sort_by or "created_at",
        descending=(body.sort_order or "desc") == "desc",
        limit=body.limit,
        offset=body.offset,
    )
    return [ThreadRead.model_validate(t, from_attributes=True) for t in found]


@router.get("/{thread_id}", response_model=ThreadRead, dependencies=[rate_limit("api")])
async def get_thread(thread_id: uuid.UUID, user: ProtocolUser, rt: RuntimeDep) -> ThreadRead:
    thread = await threads_service.get(rt, user_id=user.id, session_id=thread_id)
    return ThreadRead.model_validate(thread, from_attributes=True)


@router.delete("/{thread_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[rate_limit("api")])
async def delete_thread(thread_id: uuid.UUID, user: ProtocolUser, rt: RuntimeDep) -> Response:
    """Cancel its runs, then delete the session with its transcript, runs and checkpoints."""
    structlog.contextvars.bind_contextvars(session_id=str(thread_id))
    await threads_service.delete(rt, user_id=user.id, session_id=thread_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{thread_id}/state", response_model=ThreadStateRead, dependencies=[rate_limit("api")])
async def get_state(
    thread_id: uuid.UUID, user: ProtocolUser, rt: RuntimeDep, subgraphs: bool = Query(default=False)
) -> ThreadStateRead:
    """The thread's state now (no checkpoint yet: `checkpoint` null). The graph has no subgraphs."""
    found = await state_service.state_at(rt, user_id=user.id, session_id=thread_id, checkpoint_id=None)
    return ThreadStateRead.model_validate(found, from_attributes=True)


@router.get(
    "/{thread_id}/state/{checkpoint_id}", response_model=ThreadStateRead, dependencies=[rate_limit("api")]
)
async def get_state_at(
    thread_id: uuid.UUID,
    checkpoint_id: str,
    user: ProtocolUser,
    rt: RuntimeDep,
    subgraphs: bool = Query(default=False),
) -> ThreadStateRead:
    """The state at one of the checkpoint ids the thread's history lists."""
    found = await state_service.state_at(
        rt, user_id=user.id, session_id=thread_id, checkpoint_id=checkpoint_id
    )
    return ThreadStateRead.model_validate(found, from_attributes=True)


@router.post("/{thread_id}/history", response_model=list[ThreadStateRead], dependencies=[rate_limit("api")])
async def get_history(
    thread_id: uuid.UUID, user: ProtocolUser, rt: RuntimeDep, body: HistoryQuery | None = None
) -> list[ThreadStateRead]:
    """The thread's states, newest first: a run waiting for approval, then one per completed turn (the
    last under its LangGraph checkpoint id, earlier ones under synthetic ids a run can fork from), then
    the empty state before the first turn."""
    body = body or HistoryQuery()
    if (body.checkpoint or {}).get("checkpoint_ns"):
        return []  # no subgraphs
    found = await state_service.history(
        rt,
        user_id=user.id,
        session_id=thread_id,
        limit=body.limit,
        before=state_service.checkpoint_of(body.before),
        metadata=body.metadata,
    )
    return [ThreadStateRead.model_validate(s, from_attributes=True) for s in found]
