"""Talking to the agent: one reply, or a stream of server-sent events."""

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
from app.services import chat as chat_service
from app.services.turn_events import Restart, Token, ToolEvent, TurnResult

router = APIRouter(prefix="/sessions", tags=["chat"])


def _response(result: TurnResult) -> ChatResponse:
    return ChatResponse(
        message_id=result.message_id,
        reply=result.reply,
        tool_calls=[ToolCallRead(**asdict(c)) for c in result.tool_calls],
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
    )


@router.post("/{session_id}/chat", response_model=ChatResponse, dependencies=[rate_limit("chat")])
async def chat(session_id: uuid.UUID, body: ChatRequest, token: TokenClaims, rt: RuntimeDep) -> ChatResponse:
    structlog.contextvars.bind_contextvars(session_id=str(session_id))
    result = await chat_service.send_message(
        rt,
        token,
        session_id=session_id,
        text=body.message,
        replace_last_turn=body.replace_last_turn,
        replaces=body.replaces_message_id,
    )
    return _response(result)


@router.post(
    "/{session_id}/chat/stream",
    dependencies=[rate_limit("stream")],
    response_class=EventStreamResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "token, tool, reset, done and error events",
        }
    },
)
async def chat_stream(
    session_id: uuid.UUID, body: ChatRequest, token: TokenClaims, rt: RuntimeDep
) -> EventStreamResponse:
    structlog.contextvars.bind_contextvars(session_id=str(session_id))
    # Validation, ownership and the lease are settled before the stream starts, so they get real status codes.
    replace, replaces = body.replace_last_turn, body.replaces_message_id
    chat_service.validate_message(body.message, rt.settings, replace_last_turn=replace, replaces=replaces)
    lease = await chat_service.begin_turn(
        rt, token, session_id=session_id, replace_last_turn=replace, replaces=replaces
    )
    text = chat_service.turn_text(body.message, lease)
    turn = chat_service.run_turn(
        rt, user_id=token.user_id, session_id=session_id, text=text, lease=lease, stream=True
    )

    async def events() -> AsyncIterator[str]:
        ACTIVE_STREAMS.inc()
        try:
            async for event in turn:
                if isinstance(event, Token):
                    yield sse_event("token", {"content": event.content})
                elif isinstance(event, ToolEvent):
                    yield sse_event("tool", ToolCallRead(**asdict(event.call)).model_dump())
                elif isinstance(event, Restart):
                    yield sse_event("reset", {"detail": "The model was retried; discard the partial reply."})
                else:
                    yield sse_event("done", _response(event).model_dump())
        except AppError as exc:
            if rt.api_events is not None:  # the response is a 200: the error handlers never see it
                rt.api_events.record(exc.status_code, exc.error)
            yield sse_event("error", {"error": exc.error, "detail": exc.detail})
        finally:
            ACTIVE_STREAMS.dec()
            await turn.aclose()

    async def on_close() -> None:
        # Also covers a response torn down before `events()` ever started (its `finally` never runs).
        await chat_service.abandon_turn(rt, lease)

    return EventStreamResponse(
        events(), on_close=on_close, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
