"""Runs: a turn that outlives the request, started now or queued, read, streamed (resumably),
cancelled, and resumed when a tool call waited for approval."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Query, Response, status

from app.api.deps import CurrentUser, RuntimeDep, TokenClaims
from app.api.limits import rate_limit
from app.api.sse import EventStreamResponse, sse_event
from app.errors import ValidationFailedError
from app.repositories.runs import RunRow
from app.runtime import Runtime
from app.schemas.common import Page, PageParams
from app.schemas.runs import InterruptRead, RunCreate, RunRead, RunResume
from app.services.chat import run_hub
from app.services.chat import runs as runs_service
from app.services.chat.requests import Resume, TurnRequest

router = APIRouter(prefix="/sessions", tags=["runs"])
Paging = Annotated[PageParams, Query()]
MAX_SEQ = 2**31 - 1


def read(run: RunRow) -> RunRead:
    interrupt = None
    if run.status == "interrupted" and run.interrupt is not None:
        interrupt = InterruptRead(tool_calls=run.interrupt.get("tool_calls") or [], expires_at=run.expires_at)
    return RunRead(
        id=run.id,
        session_id=run.session_id,
        source=run.source,
        status=run.status,
        message=run.message,
        multitask=run.multitask,
        from_turn=run.from_message_id,
        error=run.error,
        reply_message_id=run.reply_message_id,
        cancel_requested=run.cancel_requested,
        interrupt=interrupt,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {}},
        "description": "token, tool, reset, interrupt, done and error events, each with its id (seq)",
    }
}


@router.post(
    "/{session_id}/runs",
    response_model=RunRead,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[rate_limit("chat")],
    responses=SSE_RESPONSES,
)
async def start_run(
    session_id: uuid.UUID, body: RunCreate, token: TokenClaims, rt: RuntimeDep
) -> RunRead | EventStreamResponse:
    """Start a turn that goes on without this request (202), or stream it (`stream: true`). While the
    session answers another run, `multitask` decides: 409 thread_busy (reject), or the run is queued
    (status pending) behind it, which is first stopped by interrupt and rollback."""
    structlog.contextvars.bind_contextvars(session_id=str(session_id))
    request = TurnRequest(body.message, from_turn=body.from_turn)
    run = await runs_service.start_run(
        rt, token, session_id=session_id, request=request, multitask=body.multitask
    )
    if not body.stream:
        return read(run)
    ended = asyncio.Event()  # the stream reached the run's end: nothing to cancel

    async def events() -> AsyncIterator[str]:
        async for event in _events(rt, run.id, 0):
            yield event
        ended.set()

    async def on_close() -> None:
        if body.on_disconnect == "cancel" and not ended.is_set():
            await runs_service.cancel_run(rt, user_id=token.user_id, session_id=session_id, run_id=run.id)

    return EventStreamResponse(
        events(),
        on_close=on_close,
        headers={**STREAM_HEADERS, "Content-Location": f"/api/v1/sessions/{session_id}/runs/{run.id}"},
    )


@router.get("/{session_id}/runs", response_model=Page[RunRead], dependencies=[rate_limit("api")])
async def list_runs(session_id: uuid.UUID, user: CurrentUser, rt: RuntimeDep, page: Paging) -> Page[RunRead]:
    """The session's runs, newest first: those of the chat routes too."""
    result = await runs_service.list_runs(
        rt, user_id=user.id, session_id=session_id, limit=page.limit, offset=page.offset
    )
    return Page[RunRead](
        items=[read(r) for r in result.items], total=result.total, limit=page.limit, offset=page.offset
    )


@router.get("/{session_id}/runs/{run_id}", response_model=RunRead, dependencies=[rate_limit("api")])
async def get_run(session_id: uuid.UUID, run_id: uuid.UUID, user: CurrentUser, rt: RuntimeDep) -> RunRead:
    run = await runs_service.get_run(rt, user_id=user.id, session_id=session_id, run_id=run_id)
    return read(run)


@router.post(
    "/{session_id}/runs/{run_id}/resume",
    response_model=RunRead,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[rate_limit("chat")],
)
async def resume_run(
    session_id: uuid.UUID, run_id: uuid.UUID, body: RunResume, token: TokenClaims, rt: RuntimeDep
) -> RunRead:
    """Answer the tool call an interrupted run waits on: approve it, run it with edited args, or reject
    it (the model is told, with the reason). The run goes on in the background; stream it again from
    the last event id. 409 run_not_waiting when it no longer waits."""
    answer = Resume(body.decision, args=body.args, reason=body.reason)
    run = await runs_service.resume_run(rt, token, session_id=session_id, run_id=run_id, answer=answer)
    return read(run)


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
    return read(run)


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
    responses=SSE_RESPONSES,
)
async def stream_run(
    session_id: uuid.UUID,
    run_id: uuid.UUID,
    user: CurrentUser,
    rt: RuntimeDep,
    after: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventStreamResponse:
    """The run's events from the start, or after `Last-Event-ID` (or `?after=`), until it finished or
    waits for approval. A chat route's run keeps no events: its reply is in the transcript."""
    start = _resume_point(last_event_id, after)
    await runs_service.get_run(rt, user_id=user.id, session_id=session_id, run_id=run_id)
    return EventStreamResponse(_events(rt, run_id, start), headers=STREAM_HEADERS)


async def _events(rt: Runtime, run_id: uuid.UUID, after: int) -> AsyncIterator[str]:
    async for event in run_hub.follow(rt, run_id=run_id, after=after):
        yield sse_event(event.event, event.data, event_id=event.seq)
