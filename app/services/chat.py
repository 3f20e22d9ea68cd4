"""A chat turn: lease the thread, run the graph from the last good checkpoint, store the transcript.

No DB connection is held while the model thinks: the lease is taken and released in short
transactions of their own, and the checkpointer uses its own pool.
"""

import asyncio
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import anyio
import structlog
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StreamMode
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.agent.state import Context
from app.config import Settings
from app.errors import AppError, NotFoundError, ThreadBusyError, UnauthorizedError, ValidationFailedError
from app.repositories import checkpoints as checkpoints_repo
from app.repositories import sessions as sessions_repo
from app.repositories import threads as threads_repo
from app.repositories import turns as turns_repo
from app.repositories import users as users_repo
from app.services.isolated import in_own_task
from app.services.llm_errors import to_app_error

log = structlog.get_logger(__name__)

TOOL_RESULT_PREVIEW = 500


@dataclass
class ChatRuntime:
    """What a turn needs, built once by the lifespan."""

    graph: CompiledStateGraph[Any, Any, Any, Any]
    db: async_sessionmaker[AsyncSession]
    pool: AsyncConnectionPool  # psycopg, autocommit, shared with the checkpointer
    settings: Settings

    @property
    def stale_lease_after(self) -> timedelta:
        return timedelta(seconds=self.settings.llm_total_timeout + 30)


@dataclass
class ToolCallSummary:
    name: str
    args: dict[str, Any]
    result: str | None = None
    is_error: bool = False


@dataclass
class TurnResult:
    reply: str
    tool_calls: list[ToolCallSummary] = field(default_factory=list)
    message_id: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class Token:
    content: str


@dataclass(frozen=True)
class ToolEvent:
    call: ToolCallSummary


@dataclass(frozen=True)
class _Lease:
    thread_id: uuid.UUID
    run_id: uuid.UUID
    checkpoint_id: str | None


def validate_message(text: str, settings: Settings) -> str:
    if not text.strip():
        raise ValidationFailedError("message must not be empty")
    if len(text) > settings.max_message_chars:
        raise ValidationFailedError(f"message is longer than {settings.max_message_chars} characters")
    return text


async def begin_turn(rt: ChatRuntime, *, user_id: uuid.UUID, session_id: uuid.UUID) -> _Lease:
    """Take the thread's lease; the same statement checks the user is active and owns the session."""
    run_id = uuid.uuid4()
    async with rt.pool.connection() as conn:
        lease = await turns_repo.take_lease(
            conn, session_id=session_id, user_id=user_id, run_id=run_id, stale_after=rt.stale_lease_after
        )
    if lease is None:
        async with rt.db() as db:
            user = await users_repo.get_by_id(db, user_id)
            if user is None or not user.is_active:
                raise UnauthorizedError("Invalid token")
            if await sessions_repo.get_owned(db, session_id=session_id, user_id=user_id) is None:
                raise NotFoundError("Session not found")
        raise ThreadBusyError()
    return _Lease(lease.thread_id, run_id, lease.checkpoint_id)


async def _abandon(rt: ChatRuntime, lease: _Lease) -> None:
    # Shielded: this runs while the request is being cancelled (client gone) and must still finish.
    with anyio.CancelScope(shield=True):
        try:
            async with rt.db() as db, db.begin():
                await checkpoints_repo.delete_newer_than(db, lease.thread_id, lease.checkpoint_id)
                await threads_repo.release_lease(db, thread_id=lease.thread_id, run_id=lease.run_id)
        except Exception:
            log.exception("chat.release_failed", thread_id=str(lease.thread_id))


async def _complete(
    rt: ChatRuntime, lease: _Lease, *, text: str, result: TurnResult, checkpoint_id: str | None
) -> None:
    with anyio.CancelScope(shield=True):
        async with rt.pool.connection() as conn:
            message_id = await turns_repo.record_turn(
                conn,
                thread_id=lease.thread_id,
                run_id=lease.run_id,
                checkpoint_id=checkpoint_id,
                user_text=text,
                reply=result.reply,
                tool_calls=[_summary_json(c) for c in result.tool_calls] or None,
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
                now=datetime.now(UTC),
            )
    if message_id is None:  # the session was deleted or cleared meanwhile
        raise NotFoundError("Session not found")
    result.message_id = message_id


def _summary_json(call: ToolCallSummary) -> dict[str, Any]:
    return {"name": call.name, "args": call.args, "result": call.result, "is_error": call.is_error}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
    return "".join(parts)


async def run_turn(
    rt: ChatRuntime, *, user_id: uuid.UUID, session_id: uuid.UUID, text: str, lease: _Lease, stream: bool
) -> AsyncGenerator[Token | ToolEvent | TurnResult, None]:
    """Run one turn under a lease already taken.

    Yields tokens (when streaming) and tool events, then the result.
    """
    config: RunnableConfig = {
        "configurable": {"thread_id": str(lease.thread_id)},
        "recursion_limit": 2 * rt.settings.max_tool_steps + 2,
    }
    if lease.checkpoint_id:
        config["configurable"]["checkpoint_id"] = lease.checkpoint_id
    context = Context(user_id=user_id, session_id=session_id, db=rt.db)
    modes: list[StreamMode] = ["updates", "checkpoints", "messages"] if stream else ["updates", "checkpoints"]
    result = TurnResult(reply="")
    pending: dict[str, ToolCallSummary] = {}
    checkpoint_id: str | None = None
    graph_stream = in_own_task(
        rt.graph.astream(
            {"messages": [HumanMessage(text, id=str(uuid.uuid4()))]},
            config,
            context=context,
            stream_mode=modes,
            durability="exit",
        )
    )
    try:
        async with asyncio.timeout(rt.settings.llm_total_timeout):
            async for item in graph_stream:
                # With a list of stream modes, every item is a (mode, payload) pair.
                mode, chunk = cast(tuple[str, Any], item)
                if mode == "messages":
                    message, meta = chunk
                    if isinstance(message, AIMessageChunk) and meta.get("langgraph_node") == "agent":
                        token = _content_text(message.content)
                        if token:
                            yield Token(token)
                elif mode == "checkpoints":
                    checkpoint_id = chunk["config"]["configurable"]["checkpoint_id"]
                elif mode == "updates":
                    for event in _apply_update(chunk, result, pending):
                        yield event
    except BaseException as exc:
        # `async for` does not close the graph's stream on error or cancellation; until closed, its node
        # tasks (and the LLM's HTTP connection) would run on in the background.
        with anyio.CancelScope(shield=True):
            await graph_stream.aclose()
        await _abandon(rt, lease)
        if isinstance(exc, Exception) and not isinstance(exc, AppError):
            raise to_app_error(exc) from exc
        raise
    await _complete(rt, lease, text=text, result=result, checkpoint_id=checkpoint_id)
    log.info(
        "chat.turn_completed",
        thread_id=str(lease.thread_id),
        tool_calls=len(result.tool_calls),
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
    )
    yield result


def _apply_update(
    chunk: dict[str, Any], result: TurnResult, pending: dict[str, ToolCallSummary]
) -> list[ToolEvent]:
    events: list[ToolEvent] = []
    for update in chunk.values():
        for message in (update or {}).get("messages", []):
            if isinstance(message, AIMessage):
                if message.usage_metadata:
                    result.input_tokens += message.usage_metadata["input_tokens"]
                    result.output_tokens += message.usage_metadata["output_tokens"]
                for call in message.tool_calls:
                    summary = ToolCallSummary(name=call["name"], args=call["args"])
                    pending[call["id"] or summary.name] = summary
                    result.tool_calls.append(summary)
                if not message.tool_calls:
                    result.reply = _content_text(message.content)
            elif isinstance(message, ToolMessage):
                summary = pending.pop(
                    message.tool_call_id, ToolCallSummary(name=message.name or "?", args={})
                )
                summary.result = _content_text(message.content)[:TOOL_RESULT_PREVIEW]
                summary.is_error = message.status == "error"
                events.append(ToolEvent(summary))
    return events


async def send_message(
    rt: ChatRuntime, *, user_id: uuid.UUID, session_id: uuid.UUID, text: str
) -> TurnResult:
    validate_message(text, rt.settings)
    lease = await begin_turn(rt, user_id=user_id, session_id=session_id)
    async for event in run_turn(
        rt, user_id=user_id, session_id=session_id, text=text, lease=lease, stream=False
    ):
        if isinstance(event, TurnResult):
            return event
    raise AssertionError("a turn always ends with a result")
