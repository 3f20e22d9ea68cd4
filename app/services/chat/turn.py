"""A turn's life in one object: admitted (the request is valid), leased (`Turn.begin`), running
(`Turn.events`), then stored, waiting for a person's approval (interrupted), or abandoned.

The chat routes, the runs API (in an API process or a worker) and the evals all drive a `Turn`.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import anyio
import structlog
from langchain_core.messages import (
    AIMessage,
    HumanMessage,
)
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, StreamMode

from app.agent.state import Context
from app.errors import (
    AgentError,
    AppError,
    RunCancelledError,
    ShuttingDownError,
)
from app.repositories.leases import RunSpec
from app.repositories.runs import NewEvent
from app.runtime import Runtime
from app.services.chat import approvals, leases
from app.services.chat.events import (
    EventSink,
    Interrupted,
    TurnEvent,
    TurnResult,
)
from app.services.chat.fork import at, prepare_fork, replaced_text
from app.services.chat.isolated import in_own_task
from app.services.chat.progress import Progress
from app.services.chat.requests import Resume, TurnRequest
from app.services.llm_errors import to_app_error

log = structlog.get_logger(__name__)

# Why a stopped run ended, as its row's `error` (a plain cancel has none).
STOP_ERRORS = {"cancel": None, "interrupt": "superseded", "rollback": "rolled_back"}


@dataclass(frozen=True)
class Claim:
    """An existing run taking the lease under its own id: a queued one (status pending) or one
    waiting for approval (interrupted)."""

    run_id: uuid.UUID
    status: str


class Turn:
    def __init__(
        self, rt: Runtime, lease: leases.Lease, *, session_id: uuid.UUID, text: str, resume: Resume | None
    ) -> None:
        self.rt, self.lease, self.session_id, self.text, self.resume = rt, lease, session_id, text, resume
        self.sink: EventSink | None = None  # the runs API's event log: its last batch goes with a pause
        self.kept: TurnResult | None = None  # what a superseded (interrupt) run had finished, recorded

    @property
    def run_id(self) -> uuid.UUID:
        return self.lease.run_id

    @classmethod
    async def begin(
        cls,
        rt: Runtime,
        caller: leases.Caller,
        *,
        session_id: uuid.UUID,
        request: TurnRequest,
        source: str = "chat",
        multitask: str = "reject",
        claim: Claim | None = None,
        resume: Resume | None = None,
    ) -> "Turn":
        """Take the lease (the statement that checks the user, token, quotas and limits) and prepare
        a fork. A run of the session still waiting for approval is dropped: a new message wins."""
        if claim is None:
            request.validate(rt.settings)
        spec = RunSpec(
            run_id=claim.run_id if claim else uuid.uuid4(),
            source=source,
            message=request.text,
            multitask=multitask,
            from_message_id=request.from_turn,
            claim=claim.status if claim else None,
        )
        lease = await leases.take(rt, caller, session_id=session_id, run=spec)
        try:
            if lease.waiting_run_id is not None:
                await approvals.drop(rt, lease.waiting_run_id, because="new_message")
            if request.forks:
                await prepare_fork(rt, lease, request, resuming=resume is not None)
        except BaseException:
            await leases.abandon(rt, lease)
            raise
        text = request.text if request.text is not None else replaced_text(lease)
        return cls(rt, lease, session_id=session_id, text=text, resume=resume)

    async def abandon(self, *, status: str = "error", error: str | None = None) -> None:
        """Safe at any time: does nothing once the turn was stored, paused or already abandoned."""
        await leases.abandon(self.rt, self.lease, status=status, error=error)

    async def outcome(self) -> TurnResult | Interrupted:
        """Run to the end without streaming tokens."""
        turn = self.events(stream=False)
        try:
            async for event in turn:
                if isinstance(event, TurnResult | Interrupted):
                    return event
        finally:
            await turn.aclose()
        raise AgentError("The agent ended the turn without a reply.")

    def _config(self) -> RunnableConfig:
        rt, lease = self.rt, self.lease
        # From the last completed turn (or the one before it, to replace it), never from what a failed
        # run left behind; a resumed run from where it waited.
        config = at(lease.thread_id, lease.start_checkpoint_id)
        config["recursion_limit"] = 2 * rt.settings.max_tool_steps + 2
        config["callbacks"] = list(rt.callbacks)
        if rt.tracing is not None:
            config["metadata"] = rt.tracing.run_metadata(user_id=lease.user_id, session_id=self.session_id)
            # The graph's root run takes the lease's run id: the handler notes the trace it opens under it.
            config["run_id"] = lease.run_id
        return config

    def _input(self) -> Any:
        if self.resume is not None:
            return Command(resume=self.resume.as_value())
        return {"messages": [*self.lease.lead_messages, HumanMessage(self.text, id=str(uuid.uuid4()))]}

    async def events(self, *, stream: bool) -> AsyncGenerator[TurnEvent, None]:
        """Tokens (when streaming) and tool events, then the result, or `Interrupted` when a tool call
        waits for approval (the lease is then released and the run left waiting)."""
        rt, lease = self.rt, self.lease
        config = self._config()
        progress = Progress()
        if self.resume is not None and self.resume.decision != "edit":
            # The model call that asked for the tool ran before the pause: its calls and tokens are
            # this turn's too (an edit sends that message again, edited).
            paused = await rt.graph.aget_state(at(lease.thread_id, lease.resume_from))
            progress.on_update({"agent": {"messages": (paused.values.get("messages") or [])[-1:]}})
        modes: list[StreamMode] = (
            ["updates", "checkpoints", "messages"] if stream else ["updates", "checkpoints"]
        )
        checkpoint_id: str | None = None
        waiting: dict[str, Any] | None = None
        graph_stream = in_own_task(
            rt.graph.astream(
                self._input(),
                config,
                context=Context(
                    user_id=lease.user_id,
                    session_id=self.session_id,
                    db=rt.db.sessions,
                    memory_enabled=lease.memory_enabled,
                ),
                stream_mode=modes,
                durability="exit",
            )
        )
        # The budget covers the model and tools only, not the time a slow client takes to read events.
        deadline = asyncio.get_running_loop().time() + rt.settings.llm_total_timeout
        handle = lease.handle
        try:
            while True:
                async with asyncio.timeout_at(deadline) as handle.timeout:
                    if handle.ending:
                        handle.expire()
                    try:
                        item = await anext(graph_stream)
                    except StopAsyncIteration:
                        break
                mode, chunk = cast(tuple[str, Any], item)  # with several stream modes: (mode, payload)
                if mode == "messages":
                    for event in progress.on_message(*chunk):
                        yield event
                elif mode == "checkpoints":
                    checkpoint_id = chunk["config"]["configurable"]["checkpoint_id"]
                elif mode == "updates":
                    if "__interrupt__" in chunk:
                        waiting = _waiting(chunk["__interrupt__"])
                        continue
                    for event in progress.on_update(chunk):
                        yield event
            handle.timeout = None
            if waiting is not None and checkpoint_id is not None:
                yield await self._pause(waiting, checkpoint_id)
                return
            await self._store(progress.collector.result, checkpoint_id)
        except BaseException as exc:
            # Closing the stream stops the graph's node task and its LLM call; `async for` would not.
            with anyio.CancelScope(shield=True):
                await graph_stream.aclose()
            if rt.tracing is not None:
                rt.tracing.take_trace_id(lease.run_id)  # not kept for a turn that is not recorded
            await self._end_stopped(exc, progress)
            raise self._error(exc) from exc
        result = progress.collector.result
        log.info(
            "chat.turn_completed",
            thread_id=str(lease.thread_id),
            tool_calls=len(result.tool_calls),
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
        )
        yield result

    async def _store(
        self, result: TurnResult, checkpoint_id: str | None, ended: tuple[str, str | None] = ("success", None)
    ) -> None:
        rt = self.rt
        trace_id = rt.tracing.take_trace_id(self.lease.run_id) if rt.tracing is not None else None
        await leases.complete(
            rt,
            self.lease,
            text=self.text,
            result=result,
            checkpoint_id=checkpoint_id,
            trace_id=trace_id,
            ended=ended,
        )

    async def _pause(self, waiting: dict[str, Any], checkpoint_id: str) -> Interrupted:
        expires_at = datetime.now(UTC) + timedelta(seconds=self.rt.settings.approval_timeout_seconds)
        event = Interrupted(run_id=self.run_id, tool_calls=waiting["tool_calls"], expires_at=expires_at)
        sink = self.sink
        async with contextlib.AsyncExitStack() as stack:
            pending: list[NewEvent] = []
            if sink is not None:
                await stack.enter_async_context(sink.lock)  # no batch of the log may land after this one
                sink.add("interrupt", event.as_json())
                pending = sink.take_pending()
            await approvals.pause(
                self.rt, self.lease, text=self.text, waiting=waiting, checkpoint_id=checkpoint_id,
                expires_at=expires_at, events=pending,
            )  # fmt: skip
        return event

    async def _end_stopped(self, exc: BaseException, progress: Progress) -> None:
        """After a failure or a stop: keep what an interrupted (superseded) run finished, else drop it."""
        mode = self.lease.handle.stop_mode
        if mode == "interrupt" and isinstance(exc, TimeoutError | asyncio.CancelledError):
            with anyio.CancelScope(shield=True):
                try:
                    await self._keep_partial(progress)
                    return
                except Exception as kept_exc:  # boundary: the run still ends, as a plain cancel
                    log.warning("chat.partial_not_kept", error_type=type(kept_exc).__name__)
        if mode is not None:
            await self.abandon(status="cancelled", error=STOP_ERRORS.get(mode))
            return
        error = self._error(exc)
        if isinstance(error, AppError):
            await self.abandon(error=error.error)
        else:  # the client left (the request's task was cancelled)
            await self.abandon(status="cancelled")

    async def _keep_partial(self, progress: Progress) -> None:
        """Record the turn as far as it went: the steps it finished and the reply streamed so far."""
        rt, lease = self.rt, self.lease
        lead = [] if self.resume is not None else self._input()["messages"]
        partial = progress.partial_reply()
        messages = [*lead, *progress.finished_messages(), AIMessage(partial, id=str(uuid.uuid4()))]
        start = at(lease.thread_id, lease.start_checkpoint_id)
        config = await rt.graph.aupdate_state(start, {"messages": messages}, as_node="agent")
        result = progress.collector.result
        result.reply = partial
        await self._store(result, config["configurable"]["checkpoint_id"], ended=("cancelled", "superseded"))
        self.kept = result

    def _error(self, exc: BaseException) -> BaseException:
        handle = self.lease.handle
        if handle.cut and isinstance(exc, TimeoutError):
            return ShuttingDownError()
        if handle.stop_mode is not None and isinstance(exc, TimeoutError):
            return RunCancelledError()
        if isinstance(exc, Exception) and not isinstance(exc, AppError):
            return to_app_error(exc)
        return exc


def _waiting(interrupts: Any) -> dict[str, Any]:
    """The tool calls that wait for approval, from the graph's `__interrupt__` update."""
    calls: list[dict[str, Any]] = []
    for item in interrupts:
        value = getattr(item, "value", None)
        if isinstance(value, dict):
            calls += value.get("tool_calls") or []
    return {"tool_calls": calls}
