"""Runs on a thread: started in the background, streamed, waited for, joined, read, listed and
cancelled. Every check (thread, assistant, multitask, body) answers before a stream begins."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Header, Query, Response, status

from app.api.deps import ProtocolClaims, ProtocolUser, RuntimeDep
from app.api.limits import rate_limit
from app.api.sse import EventStreamResponse
from app.errors import ValidationFailedError
from app.runtime import Runtime
from app.schemas.protocol import RunCreate, RunRead, RunStatus
from app.services.chat import runs as chat_runs
from app.services.protocol import runs as runs_service
from app.services.protocol import stream as stream_service
from app.services.protocol.requests import parse_request
from app.services.tokens import TokenClaims

router = APIRouter(prefix="/threads/{thread_id}/runs")
KEEP_ALIVE_SECONDS = 1.0  # a wait writes a newline this often, so no proxy or client gives up on it
MAX_SEQ = 2**31 - 1
SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {}},
        "description": "metadata, values, messages, updates, then end (or error); ids resume a join",
    }
}
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


class WaitResponse(EventStreamResponse):
    """A JSON body written once the run is over, after keep-alive newlines (JSON allows leading
    whitespace); a client that leaves is noticed as on a stream."""

    media_type = "application/json"


def _json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


def sse(out: stream_service.Out) -> str:
    head = f"event: {out.event}\ndata: {_json(out.data)}\n"
    return head + (f"id: {out.id}\n\n" if out.id is not None else "\n")


def read(row: Any) -> RunRead:
    return RunRead.model_validate(runs_service.view(row), from_attributes=True)


def _where(thread_id: uuid.UUID, run_id: uuid.UUID) -> str:
    return f"/threads/{thread_id}/runs/{run_id}"


async def _start(
    rt: Runtime, token: TokenClaims, thread_id: uuid.UUID, body: RunCreate, *, want_start: bool
) -> runs_service.Started:
    structlog.contextvars.bind_contextvars(session_id=str(thread_id))
    for name in ("interrupt_before", "interrupt_after"):
        if getattr(body, name):
            raise ValidationFailedError(f"{name} is not supported", loc=("body", name))
    request = parse_request(
        input=body.input, command=body.command, checkpoint=body.checkpoint, checkpoint_id=body.checkpoint_id
    )
    return await runs_service.start(
        rt,
        token,
        session_id=thread_id,
        assistant_id=body.assistant_id,
        request=request,
        multitask=body.multitask_strategy or "enqueue",
        if_not_exists=body.if_not_exists,
        want_start=want_start,
    )


@router.post("", response_model=RunRead, dependencies=[rate_limit("chat")])
async def create_run(
    thread_id: uuid.UUID, body: RunCreate, token: ProtocolClaims, rt: RuntimeDep, response: Response
) -> RunRead:
    """A run in the background: started now, or queued behind the thread's current one (multitask
    `enqueue`, the default); `reject` answers 409 instead, `interrupt`/`rollback` stop the current run.
    With `command: {"resume": ...}`, the thread's run waiting for approval goes on."""
    started = await _start(rt, token, thread_id, body, want_start=False)
    response.headers["Content-Location"] = _where(thread_id, started.run.id)
    return read(started.run)


@router.post(
    "/stream",
    dependencies=[rate_limit("chat")],
    response_class=EventStreamResponse,
    responses=SSE_RESPONSES,
)
async def stream_run(
    thread_id: uuid.UUID, body: RunCreate, token: ProtocolClaims, rt: RuntimeDep
) -> EventStreamResponse:
    """Start a run as POST .../runs does and stream it. `on_disconnect: cancel` stops the run when the
    client leaves; by default it goes on (join its stream again with the last event id)."""
    modes = stream_service.stream_modes(body.stream_mode, default=frozenset({stream_service.VALUES}))
    started = await _start(rt, token, thread_id, body, want_start=stream_service.VALUES in modes)
    run_id = started.run.id
    ended = asyncio.Event()

    async def events() -> AsyncIterator[str]:
        async for out in stream_service.events(
            rt,
            user_id=token.user_id,
            session_id=thread_id,
            run_id=run_id,
            after=started.after,
            modes=modes,
            start=started.start or [],
            announce=started.start is not None,
        ):
            yield sse(out)
        ended.set()

    return EventStreamResponse(
        events(),
        on_close=_canceller(rt, token, thread_id, run_id, ended, body.on_disconnect == "cancel"),
        headers={
            **STREAM_HEADERS,
            "Content-Location": _where(thread_id, run_id),
            "Location": _where(thread_id, run_id) + "/stream",
        },
    )


def _canceller(
    rt: Runtime,
    token: TokenClaims,
    thread_id: uuid.UUID,
    run_id: uuid.UUID,
    ended: asyncio.Event,
    cancel: bool,
) -> Callable[[], Awaitable[None]]:
    async def on_close() -> None:
        if cancel and not ended.is_set():
            await chat_runs.cancel_run(rt, user_id=token.user_id, session_id=thread_id, run_id=run_id)

    return on_close


def _outcome(
    rt: Runtime, user_id: uuid.UUID, thread_id: uuid.UUID, run_id: uuid.UUID, ended: asyncio.Event
) -> AsyncIterator[str]:
    async def body() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        last = loop.time()
        async for _ in runs_service.settle(rt, user_id=user_id, session_id=thread_id, run_id=run_id):
            if loop.time() - last >= KEEP_ALIVE_SECONDS:
                last = loop.time()
                yield "\n"
        result = await runs_service.result(rt, user_id=user_id, session_id=thread_id, run_id=run_id)
        ended.set()
        yield _json(result)

    return body()


@router.post(
    "/wait",
    dependencies=[rate_limit("chat")],
    response_class=WaitResponse,
    responses={
        200: {"content": {"application/json": {}}, "description": "the thread's values at the run's end"}
    },
)
async def wait_run(
    thread_id: uuid.UUID, body: RunCreate, token: ProtocolClaims, rt: RuntimeDep
) -> WaitResponse:
    """Start a run and answer the thread's values once it is over: with `__interrupt__` when it waits
    for approval, `__error__` when it failed."""
    started = await _start(rt, token, thread_id, body, want_start=False)
    run_id = started.run.id
    ended = asyncio.Event()
    return WaitResponse(
        _outcome(rt, token.user_id, thread_id, run_id, ended),
        on_close=_canceller(rt, token, thread_id, run_id, ended, body.on_disconnect == "cancel"),
        headers={
            "Content-Location": _where(thread_id, run_id),
            "Location": _where(thread_id, run_id) + "/join",
        },
    )


@router.get("", response_model=list[RunRead], dependencies=[rate_limit("api")])
async def list_runs(
    thread_id: uuid.UUID,
    user: ProtocolUser,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    run_status: Annotated[RunStatus | None, Query(alias="status")] = None,
) -> list[RunRead]:
    """The thread's runs, newest first."""
    found = await runs_service.list_runs(
        rt, user_id=user.id, session_id=thread_id, status=run_status, limit=limit, offset=offset
    )
    return [read(r) for r in found]


@router.get("/{run_id}", response_model=RunRead, dependencies=[rate_limit("api")])
async def get_run(thread_id: uuid.UUID, run_id: uuid.UUID, user: ProtocolUser, rt: RuntimeDep) -> RunRead:
    return read(await runs_service.get(rt, user_id=user.id, session_id=thread_id, run_id=run_id))


@router.get(
    "/{run_id}/join",
    dependencies=[rate_limit("api")],
    response_class=WaitResponse,
    responses={
        200: {"content": {"application/json": {}}, "description": "the thread's values at the run's end"}
    },
)
async def join_run(
    thread_id: uuid.UUID, run_id: uuid.UUID, user: ProtocolUser, rt: RuntimeDep
) -> WaitResponse:
    """Wait for the run to be over (at once if it is) and answer as .../runs/wait does."""
    await runs_service.get(rt, user_id=user.id, session_id=thread_id, run_id=run_id)
    return WaitResponse(_outcome(rt, user.id, thread_id, run_id, asyncio.Event()))


def _resume_point(header: str | None) -> int:
    if header is None or not header.strip():
        return 0
    try:
        seq = int(header.strip())
    except ValueError:
        seq = MAX_SEQ + 1
    if seq > MAX_SEQ:
        raise ValidationFailedError("Last-Event-ID must be an event id", loc=("header", "last-event-id"))
    return max(seq, 0)  # -1: from the start


@router.get(
    "/{run_id}/stream",
    dependencies=[rate_limit("api")],
    response_class=EventStreamResponse,
    responses=SSE_RESPONSES,
)
async def join_stream(
    thread_id: uuid.UUID,
    run_id: uuid.UUID,
    token: ProtocolClaims,
    user: ProtocolUser,
    rt: RuntimeDep,
    stream_mode: Annotated[list[str] | None, Query()] = None,
    cancel_on_disconnect: bool = False,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventStreamResponse:
    """The run's events from its start, or after `Last-Event-ID` (-1: from the start), until it is
    over. Without `stream_mode`, every mode we produce."""
    after = _resume_point(last_event_id)
    modes = stream_service.stream_modes(stream_mode, default=stream_service.ALL)
    run = await runs_service.get(rt, user_id=user.id, session_id=thread_id, run_id=run_id)
    start = await runs_service.join_start(rt, user_id=user.id, run=run)
    ended = asyncio.Event()

    async def events() -> AsyncIterator[str]:
        async for out in stream_service.events(
            rt,
            user_id=user.id,
            session_id=thread_id,
            run_id=run_id,
            after=after,
            modes=modes,
            start=start,
            announce=after == 0 and bool(start),
        ):
            yield sse(out)
        ended.set()

    return EventStreamResponse(
        events(),
        on_close=_canceller(rt, token, thread_id, run_id, ended, cancel_on_disconnect),
        headers={**STREAM_HEADERS, "Location": _where(thread_id, run_id) + "/stream"},
    )


@router.post(
    "/{run_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[rate_limit("api")],
    response_class=Response,
    responses={202: {"description": "It will stop"}, 204: {"description": "wait=1: it has stopped"}},
)
async def cancel_run(
    thread_id: uuid.UUID,
    run_id: uuid.UUID,
    user: ProtocolUser,
    rt: RuntimeDep,
    wait: bool = False,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Response:
    """Stop the run: a queued or waiting one at once, a running one within moments; nothing of it is
    kept, whichever the action. 202, or with `wait=1` 204 once it has stopped. A finished run: unchanged."""
    await runs_service.cancel(rt, user_id=user.id, session_id=thread_id, run_id=run_id, wait=wait)
    return Response(status_code=status.HTTP_204_NO_CONTENT if wait else status.HTTP_202_ACCEPTED)
