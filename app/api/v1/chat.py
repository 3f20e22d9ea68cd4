"""Talking to the agent: one reply, or a stream of server-sent events. Both are thin shapes over a
run (app/services/chat/turn.py): refused while the session answers (reject), cancelled when the
client leaves; the run's row can be read, and cancelled from another device, under .../runs."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict

import structlog
from fastapi import APIRouter

from app.api.deps import RuntimeDep, TokenClaims
from app.api.limits import rate_limit
from app.api.sse import EventStreamResponse, sse_event
from app.errors import AppError
from app.observability.metrics import ACTIVE_STREAMS
from app.schemas.chat import ChatRequest, ChatResponse, ToolCallRead
from app.schemas.runs import InterruptRead
from app.services.chat.events import Interrupted, Restart, Token, ToolEvent, TurnResult
from app.services.chat.requests import TurnRequest
from app.services.chat.turn import Turn

router = APIRouter(prefix="/sessions", tags=["chat"])


def _response(run_id: uuid.UUID, result: TurnResult | Interrupted) -> ChatResponse:
    if isinstance(result, Interrupted):
        return ChatResponse(
            run_id=run_id,
            status="interrupted",
            message_id=None,
            reply="",
            tool_calls=[],
            input_tokens=0,
            output_tokens=0,
            interrupt=InterruptRead.model_validate(result.as_json()),
        )
    return ChatResponse(
        run_id=run_id,
        message_id=result.message_id,
        reply=result.reply,
        tool_calls=[ToolCallRead(**asdict(c)) for c in result.tool_calls],
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
    )


def _request(body: ChatRequest) -> TurnRequest:
    return TurnRequest(
        body.message,
        replace_last_turn=body.replace_last_turn,
        replaces=body.replaces_message_id,
        from_turn=body.from_turn,
    )


@router.post("/{session_id}/chat", response_model=ChatResponse, dependencies=[rate_limit("chat")])
async def chat(session_id: uuid.UUID, body: ChatRequest, token: TokenClaims, rt: RuntimeDep) -> ChatResponse:
    structlog.contextvars.bind_contextvars(session_id=str(session_id))
    turn = await Turn.begin(rt, token, session_id=session_id, request=_request(body))
    try:
        return _response(turn.run_id, await turn.outcome())
    finally:
        await turn.abandon(status="cancelled")  # a client that left: nothing once the turn ended


@router.post(
    "/{session_id}/chat/stream",
    dependencies=[rate_limit("stream")],
    response_class=EventStreamResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "token, tool, reset, interrupt, done and error events",
        }
    },
)
async def chat_stream(
    session_id: uuid.UUID, body: ChatRequest, token: TokenClaims, rt: RuntimeDep
) -> EventStreamResponse:
    structlog.contextvars.bind_contextvars(session_id=str(session_id))
    # Validation, ownership and the lease are settled before the stream starts, so they get real status codes.
    turn = await Turn.begin(rt, token, session_id=session_id, request=_request(body))
    events = turn.events(stream=True)

    async def sse() -> AsyncIterator[str]:
        ACTIVE_STREAMS.inc()
        try:
            async for event in events:
                if isinstance(event, Token):
                    yield sse_event("token", {"content": event.content})
                elif isinstance(event, ToolEvent):
                    yield sse_event("tool", ToolCallRead(**asdict(event.call)).model_dump())
                elif isinstance(event, Restart):
                    yield sse_event("reset", {"detail": "The model was retried; discard the partial reply."})
                elif isinstance(event, Interrupted):
                    yield sse_event("interrupt", event.as_json())
                else:
                    yield sse_event("done", _response(turn.run_id, event).model_dump(mode="json"))
        except AppError as exc:
            if rt.api_events is not None:  # the response is a 200: the error handlers never see it
                rt.api_events.record(exc.status_code, exc.error)
            yield sse_event("error", {"error": exc.error, "detail": exc.detail})
        finally:
            ACTIVE_STREAMS.dec()
            await events.aclose()

    async def on_close() -> None:
        # Also covers a response torn down before `sse()` ever started (its `finally` never runs).
        await turn.abandon(status="cancelled")

    return EventStreamResponse(
        sse(), on_close=on_close, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
