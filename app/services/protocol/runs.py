"""Runs under the protocol's names: our runs (app/services/chat/runs.py), started from a run body's
input, resumed by its `command`, forked from its `checkpoint`; waited for, read, listed, cancelled."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.errors import NotFoundError, RunNotWaitingError
from app.repositories import protocol as repo
from app.repositories.protocol import RunPlan
from app.repositories.runs import RunRow
from app.runtime import Runtime
from app.services import sessions as sessions_service
from app.services.chat import runs as runs_service
from app.services.chat.leases import Caller
from app.services.chat.requests import TurnRequest
from app.services.protocol import assistants, messages, state
from app.services.protocol.requests import RunRequest

# Our statuses under the protocol's: a run waiting for approval, or one stopped, is "interrupted".
STATUS = {
    "pending": "pending",
    "running": "running",
    "success": "success",
    "error": "error",
    "interrupted": "interrupted",
    "cancelled": "interrupted",
}
NATIVE: dict[str, list[str]] = {}
for _ours, _theirs in STATUS.items():
    NATIVE.setdefault(_theirs, []).append(_ours)
GOING = ("pending", "running")


@dataclass
class Run:
    run_id: uuid.UUID
    thread_id: uuid.UUID
    assistant_id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    status: str
    multitask_strategy: str
    cancel_reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    run_kwargs: dict[str, Any] = field(default_factory=dict)  # "kwargs": not kept


def view(row: RunRow) -> Run:
    return Run(
        run_id=row.id,
        thread_id=row.session_id,
        assistant_id=assistants.ASSISTANT_ID,
        created_at=row.created_at,
        updated_at=row.finished_at or row.started_at or row.created_at,
        status=STATUS.get(row.status, row.status),
        multitask_strategy=row.multitask,
        cancel_reason=(row.error or "cancelled") if row.status == "cancelled" else None,
    )


@dataclass(frozen=True)
class Started:
    run: RunRow
    after: int  # the run's events from here on are this request's (a resumed run's go on)
    start: list[dict[str, Any]] | None  # the state it starts from, its message included


async def _plan(rt: Runtime, caller: Caller, *, session_id: uuid.UUID, if_not_exists: str | None) -> RunPlan:
    async with rt.db.pool.connection() as conn:
        plan = await repo.prepare_run(
            conn, session_id=session_id, user_id=caller.user_id, merge=assistants.THREAD_METADATA
        )
        if plan is None and if_not_exists == "create":
            await repo.create_thread(
                conn,
                session_id=session_id,
                user_id=caller.user_id,
                name=sessions_service.DEFAULT_NAME,
                metadata=assistants.THREAD_METADATA,
            )
            plan = await repo.prepare_run(
                conn, session_id=session_id, user_id=caller.user_id, merge=assistants.THREAD_METADATA
            )
    if plan is None:
        raise NotFoundError(f"Thread {session_id} not found")
    return plan


def _fork_point(plan: RunPlan, checkpoint_id: str | None) -> int | None:
    """The turn a run forks before (its user message id), from a checkpoint id of the thread's history;
    None to go on from the thread's state."""
    if checkpoint_id is None or checkpoint_id in (plan.checkpoint_id, plan.waiting_checkpoint_id):
        return None
    before = state.parse_synthetic(checkpoint_id)
    if before is None:
        raise NotFoundError("Checkpoint not found: use one of the thread's history")
    return None if before == state.HEAD else before


async def start(
    rt: Runtime,
    caller: Caller,
    *,
    session_id: uuid.UUID,
    assistant_id: str,
    request: RunRequest,
    multitask: str,
    if_not_exists: str | None,
    want_start: bool,
) -> Started:
    """Start (or queue) the run, or resume the thread's run waiting for approval. `want_start`: read
    the state the run starts from (for a first `values` event)."""
    assistants.resolve(assistant_id)
    plan = await _plan(rt, caller, session_id=session_id, if_not_exists=if_not_exists)
    if request.resume is not None:
        if plan.waiting_id is None:
            raise RunNotWaitingError()
        start_messages = None
        if want_start:
            thread = await state.thread_row(rt, user_id=caller.user_id, session_id=session_id)
            start_messages = (await state.head(rt, thread)).values.get("messages")
        run = await runs_service.resume_run(
            rt, caller, session_id=session_id, run_id=plan.waiting_id, answer=request.resume
        )
        return Started(run, after=run.last_seq, start=start_messages)
    from_turn = _fork_point(plan, request.checkpoint_id)
    run = await runs_service.start_run(
        rt,
        caller,
        session_id=session_id,
        request=TurnRequest(request.text, from_turn=from_turn),
        multitask=multitask,
    )
    start_messages = None
    if want_start:
        thread = await state.thread_row(rt, user_id=caller.user_id, session_id=session_id)
        if from_turn is not None:
            base = await state.before_turn(rt, thread, from_turn)
        else:
            base = await state.head(rt, thread, waiting=False)  # a waiting run is dropped: a new message wins
        text = request.text if request.text is not None else run.message or ""
        message = messages.human(text, request.message_id or f"{run.id}-human")
        start_messages = [*(base.values.get("messages") or []), message]
    return Started(run, after=0, start=start_messages)


async def join_start(rt: Runtime, *, user_id: uuid.UUID, run: RunRow) -> list[dict[str, Any]]:
    """The messages a joined run's state starts from: the thread's and the run's message while it is
    queued, runs or waits; none once it finished (its final `values` then comes from the transcript)."""
    if run.status not in (*GOING, "interrupted"):
        return []
    thread = await state.thread_row(rt, user_id=user_id, session_id=run.session_id)
    base = await state.head(rt, thread, waiting=False)
    return [*(base.values.get("messages") or []), messages.human(run.message or "", f"{run.id}-human")]


async def get(rt: Runtime, *, user_id: uuid.UUID, session_id: uuid.UUID, run_id: uuid.UUID) -> RunRow:
    try:
        return await runs_service.get_run(rt, user_id=user_id, session_id=session_id, run_id=run_id)
    except NotFoundError:
        raise NotFoundError(f"Run {run_id} not found") from None


async def list_runs(
    rt: Runtime, *, user_id: uuid.UUID, session_id: uuid.UUID, status: str | None, limit: int, offset: int
) -> list[RunRow]:
    async with rt.db.pool.connection() as conn:
        found = await repo.list_runs(
            conn,
            session_id=session_id,
            user_id=user_id,
            statuses=None if status is None else NATIVE.get(status, []),
            limit=limit,
            offset=offset,
        )
    if found is None:
        raise NotFoundError(f"Thread {session_id} not found")
    return found


async def settle(
    rt: Runtime, *, user_id: uuid.UUID, session_id: uuid.UUID, run_id: uuid.UUID
) -> AsyncIterator[None]:
    """Yields while the run is queued or running (a caller may write a keep-alive), until it finished,
    waits for approval, or RUN_STREAM_MAX_SECONDS passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + rt.settings.run_stream_max_seconds
    while True:
        async with rt.db.pool.connection() as conn:
            found = await repo.outcome(conn, run_id=run_id, session_id=session_id, user_id=user_id)
        if found is None:
            raise NotFoundError(f"Run {run_id} not found")
        if found.status not in GOING or loop.time() >= deadline:
            return
        yield
        await asyncio.sleep(rt.settings.run_stream_poll_seconds)


async def result(
    rt: Runtime, *, user_id: uuid.UUID, session_id: uuid.UUID, run_id: uuid.UUID
) -> dict[str, Any]:
    """What wait and join answer: the thread's values, with `__interrupt__` while the run waits for
    approval, or `__error__` when it failed."""
    async with rt.db.pool.connection() as conn:
        found = await repo.outcome(conn, run_id=run_id, session_id=session_id, user_id=user_id)
    if found is None:
        raise NotFoundError(f"Run {run_id} not found")
    if found.status == "error":
        event = found.error_event or {}
        return {
            "__error__": {"error": event.get("error") or found.error, "message": event.get("detail") or ""}
        }
    if found.status == "success":
        through = await state.messages_through(
            rt, user_id=user_id, session_id=session_id, message_id=found.reply_message_id
        )
        return {"messages": through}
    thread = await state.thread_row(rt, user_id=user_id, session_id=session_id)
    current = await state.head(rt, thread)
    values = dict(current.values)
    if found.status == "interrupted" and thread.waiting is not None and thread.waiting.id == run_id:
        values["__interrupt__"] = current.interrupts
    return values


async def cancel(
    rt: Runtime, *, user_id: uuid.UUID, session_id: uuid.UUID, run_id: uuid.UUID, wait: bool
) -> None:
    """Stop the run (nothing of it is kept); with `wait`, until it has stopped."""
    await get(rt, user_id=user_id, session_id=session_id, run_id=run_id)
    await runs_service.cancel_run(rt, user_id=user_id, session_id=session_id, run_id=run_id)
    if wait:
        async for _ in settle(rt, user_id=user_id, session_id=session_id, run_id=run_id):
            pass
