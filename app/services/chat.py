"""A chat turn: lease the thread, run the graph from the last good checkpoint, store the transcript."""

import asyncio
import uuid
from collections.abc import AsyncGenerator
from typing import Any, cast

import anyio
import structlog
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import StreamMode

from app.agent import history
from app.agent.state import Context
from app.config import Settings
from app.errors import (
    AgentError,
    AppError,
    NoTurnToReplaceError,
    ShuttingDownError,
    TurnChangedError,
    ValidationFailedError,
)
from app.runtime import Runtime
from app.services import leases
from app.services.isolated import in_own_task
from app.services.llm_errors import to_app_error
from app.services.tokens import TokenClaims
from app.services.turn_events import Restart, Token, ToolEvent, TurnCollector, TurnResult, content_text

log = structlog.get_logger(__name__)

TurnEvent = Token | ToolEvent | Restart | TurnResult


_MESSAGE = ("body", "message")


def validate_message(
    text: str | None, settings: Settings, *, replace_last_turn: bool = False, replaces: int | None = None
) -> None:
    """None is a valid message only when replacing the last turn: that turn's message is sent again."""
    if replaces is not None and not replace_last_turn:
        raise ValidationFailedError(
            "replaces_message_id goes with replace_last_turn", loc=("body", "replaces_message_id")
        )
    if text is None:
        if not replace_last_turn:
            raise ValidationFailedError("message is required unless replace_last_turn is true", loc=_MESSAGE)
        return
    if not text.strip():
        raise ValidationFailedError("message must not be empty", loc=_MESSAGE)
    if len(text) > settings.max_message_chars:
        raise ValidationFailedError(
            f"message is longer than {settings.max_message_chars} characters", loc=_MESSAGE
        )


async def begin_turn(
    rt: Runtime,
    token: TokenClaims,
    *,
    session_id: uuid.UUID,
    replace_last_turn: bool = False,
    replaces: int | None = None,
) -> leases.Lease:
    """The lease statement also checks the user and token, quotas and the concurrency limits.

    With `replace_last_turn`, the run will replace the session's last completed turn: that turn is read
    under the lease (NoTurnToReplaceError when there is none; TurnChangedError when `replaces`, the id
    of its user message as the client knows it, names another), and nothing of it changes unless the
    new turn completes.
    """
    lease = await leases.take(rt, token, session_id=session_id)
    if replace_last_turn:
        try:
            await _prepare_replacement(rt, lease, replaces)
        except BaseException:
            await leases.abandon(rt, lease)
            raise
    return lease


async def _prepare_replacement(rt: Runtime, lease: leases.Lease, replaces: int | None) -> None:
    turn = await leases.last_turn(rt, lease)
    if turn is None:
        raise NoTurnToReplaceError()
    if replaces is not None and replaces != turn.user_message_id:
        raise TurnChangedError()
    lease.replacing = turn
    if not turn.parent_kept:
        # The state before the turn is gone (the first turn, or one recorded before parents were kept):
        # start from the turn's own checkpoint without its messages.
        state = await rt.graph.aget_state(_thread_config(lease.thread_id, lease.checkpoint_id))
        lease.drop_message_ids = tuple(
            m.id for m in history.last_turn(state.values.get("messages") or []) if m.id is not None
        )


def turn_text(text: str | None, lease: leases.Lease) -> str:
    """The message of the turn: the one sent, or the replaced turn's when regenerating (validate_message
    and begin_turn have made sure that one of them exists)."""
    if text is not None:
        return text
    if lease.replacing is None:
        raise RuntimeError("a turn without a message must replace the last turn")
    return lease.replacing.user_text


def _thread_config(thread_id: uuid.UUID, checkpoint_id: str | None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": str(thread_id)}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


async def abandon_turn(rt: Runtime, lease: leases.Lease) -> None:
    """Safe to call at any time: does nothing once the turn completed or was already abandoned."""
    await leases.abandon(rt, lease)


async def run_turn(
    rt: Runtime,
    *,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    text: str,
    lease: leases.Lease,
    stream: bool,
) -> AsyncGenerator[TurnEvent, None]:
    """Run one turn under a lease already taken: tokens (when streaming) and tool events, then the result."""
    config: RunnableConfig = {
        "configurable": {"thread_id": str(lease.thread_id)},
        "recursion_limit": 2 * rt.settings.max_tool_steps + 2,
        "callbacks": list(rt.callbacks),
    }
    if rt.tracing is not None:
        config["metadata"] = rt.tracing.run_metadata(user_id=user_id, session_id=session_id)
        # The graph's root run takes the lease's run id: the handler notes the trace it opens under it.
        config["run_id"] = lease.run_id
    if start := lease.start_checkpoint_id:
        # Fork from the last completed turn (or the one before it, to replace it), never from what
        # a failed run left behind.
        config["configurable"]["checkpoint_id"] = start
    new_messages: list[BaseMessage] = [HumanMessage(text, id=str(uuid.uuid4()))]
    if lease.drop_message_ids:
        new_messages = [*(RemoveMessage(id=i) for i in lease.drop_message_ids), *new_messages]
    modes: list[StreamMode] = ["updates", "checkpoints", "messages"] if stream else ["updates", "checkpoints"]
    collector = TurnCollector()
    checkpoint_id: str | None = None
    graph_stream = in_own_task(
        rt.graph.astream(
            {"messages": new_messages},
            config,
            context=Context(
                user_id=user_id, session_id=session_id, db=rt.db.sessions, memory_enabled=lease.memory_enabled
            ),
            stream_mode=modes,
            durability="exit",
        )
    )
    # The budget covers the model and tools only, not the time a slow client takes to read events.
    deadline = asyncio.get_running_loop().time() + rt.settings.llm_total_timeout
    handle = lease.handle
    streaming_call: str | None = None  # id of the model call whose tokens are being streamed
    try:
        while True:
            async with asyncio.timeout_at(deadline) as handle.timeout:
                if handle.cut:
                    handle.cut_now()
                try:
                    item = await anext(graph_stream)
                except StopAsyncIteration:
                    break
            mode, chunk = cast(tuple[str, Any], item)  # with several stream modes: (mode, payload)
            if mode == "messages":
                message, meta = chunk
                from_agent = isinstance(message, AIMessageChunk) and meta.get("langgraph_node") == "agent"
                if from_agent and (token := content_text(message.content)):
                    if streaming_call is not None and message.id != streaming_call:
                        yield Restart()  # a fallback took over from a call that failed mid-stream
                    streaming_call = message.id
                    yield Token(token)
            elif mode == "checkpoints":
                checkpoint_id = chunk["config"]["configurable"]["checkpoint_id"]
            elif mode == "updates":
                streaming_call = None  # a node finished: the next model call starts a new reply
                for event in collector.apply(chunk):
                    yield event
        handle.timeout = None
        trace_id = rt.tracing.take_trace_id(lease.run_id) if rt.tracing is not None else None
        await leases.complete(
            rt, lease, text=text, result=collector.result, checkpoint_id=checkpoint_id, trace_id=trace_id
        )
    except BaseException as exc:
        # Closing the stream stops the graph's node task and its LLM call; `async for` would not.
        with anyio.CancelScope(shield=True):
            await graph_stream.aclose()
        if rt.tracing is not None:
            rt.tracing.take_trace_id(lease.run_id)  # not kept for a turn that is not recorded
        await leases.abandon(rt, lease)
        if handle.cut and isinstance(exc, TimeoutError):
            raise ShuttingDownError() from exc
        if isinstance(exc, Exception) and not isinstance(exc, AppError):
            raise to_app_error(exc) from exc
        raise
    result = collector.result
    log.info(
        "chat.turn_completed",
        thread_id=str(lease.thread_id),
        tool_calls=len(result.tool_calls),
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
    )
    yield result


async def send_message(
    rt: Runtime,
    token: TokenClaims,
    *,
    session_id: uuid.UUID,
    text: str | None,
    replace_last_turn: bool = False,
    replaces: int | None = None,
) -> TurnResult:
    validate_message(text, rt.settings, replace_last_turn=replace_last_turn, replaces=replaces)
    lease = await begin_turn(
        rt, token, session_id=session_id, replace_last_turn=replace_last_turn, replaces=replaces
    )
    text = turn_text(text, lease)
    turn = run_turn(rt, user_id=token.user_id, session_id=session_id, text=text, lease=lease, stream=False)
    try:
        async for event in turn:
            if isinstance(event, TurnResult):
                return event
    finally:
        await turn.aclose()
    raise AgentError("The agent ended the turn without a reply.")
