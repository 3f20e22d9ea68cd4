"""Runs: a turn started now that outlives the request, read, streamed (resumably) and cancelled."""

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import structlog
from fastapi import APIRouter, Header, Query, Response, status

from app.api.deps import CurrentUser, RuntimeDep, TokenClaims
from app.api.limits import rate_limit
from app.api.sse import EventStreamResponse, sse_event
from app.errors import ValidationFailedError
from app.schemas.common import Page, PageParams
from app.schemas.runs import RunCreate, RunRead
from app.services import run_hub
from app.services import runs as runs_service

router = APIRouter(prefix="/sessions", tags=["runs"])
Paging = Annotated[PageParams, Query()]
MAX_SEQ = 2**31 - 1


@router.post(
    "/{session_id}/runs",
    response_model=RunRead,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[rate_limit("chat")],
)
async def start_run(session_id: uuid.UUID, body: RunCreate, token: TokenClaims, rt: RuntimeDep) -> RunRead:
    """Start a turn that goes on without this request: 409 thread_busy while the session answers."""
    structlog.contextvars.bind_contextvars(session_id=str(session_id))
    run = await runs_service.start_run(rt, token, session_id=session_id, text=body.message)
    return RunRead.model_validate(run)


@router.get("/{session_id}/runs", response_model=Page[RunRead], dependencies=[rate_limit("api")])
async def list_runs(session_id: uuid.UUID, user: CurrentUser, rt: RuntimeDep, page: Paging) -> Page[RunRead]:
    """The session's runs, newest first."""
    result = await runs_service.list_runs(
        rt, user_id=user.id, session_id=session_id, limit=page.limit, offset=page.offset
    )
    return Page[RunRead].model_validate(result, from_attributes=True)


@router.get("/{session_id}/runs/{run_id}", response_model=RunRead, dependencies=[rate_limit("api")])
async def get_run(session_id: uuid.UUID, run_id: uuid.UUID, user: CurrentUser, rt: RuntimeDep) -> RunRead:
    run = await runs_service.get_run(rt, user_id=user.id, session_id=session_id, run_id=run_id)
    return RunRead.model_validate(run)


@router.post(
    "/{session_id}/runs/{run_id}/cancel",
    response_model=RunRead,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[rate_limit("api")],
    responses={200: {"model": RunRead, "description": "The run had already finished: unchanged"}},
)
async def cancel_run(
    session_id: uuid.UUID, run_id: uuid.UUID, user: CurrentUser, rt: RuntimeDep, response: Response
) -> RunRead:
    """202: the run will stop (its status turns `cancelled`); 200: it had finished, unchanged."""
    run, requested = await runs_service.cancel_run(rt, user_id=user.id, session_id=session_id, run_id=run_id)
    if not requested:
        response.status_code = status.HTTP_200_OK
    return RunRead.model_validate(run)


def _resume_point(header: str | None, after: int | None) -> int:
    if after is not None:
        return after
    if header is None or not header.strip():
        return 0
    try:
        seq = int(header.strip())
    except ValueError:
        seq = -1
    if not 0 <= seq <= MAX_SEQ:
        raise ValidationFailedError("Last-Event-ID must be an event id", loc=("header", "last-event-id"))
    return seq


@router.get(
    "/{session_id}/runs/{run_id}/stream",
    dependencies=[rate_limit("api")],
    response_class=EventStreamResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "token, tool, reset, done and error events, each with its id (seq)",
        }
    },
)
async def stream_run(
    session_id: uuid.UUID,
    run_id: uuid.UUID,
    user: CurrentUser,
    rt: RuntimeDep,
    after: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventStreamResponse:
    """The run's events from the start, or after `Last-Event-ID` (or `?after=`), until it finished."""
    start = _resume_point(last_event_id, after)
    await runs_service.get_run(rt, user_id=user.id, session_id=session_id, run_id=run_id)

    async def events() -> AsyncIterator[str]:
        async for event in run_hub.follow(rt, run_id=run_id, after=start):
            yield sse_event(event.event, event.data, event_id=event.seq)

    return EventStreamResponse(events(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
