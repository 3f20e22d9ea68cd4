"""Runs that outlive their request: started now or queued (double texting), read, cancelled and
resumed from any process, their events streamed (resumably) from `run_event` by any process."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import structlog

from app.errors import NotFoundError, RunNotWaitingError, ThreadBusyError
from app.repositories import runs as runs_repo
from app.repositories.runs import RunRow
from app.runtime import Runtime
from app.services.chat import approvals, dispatch
from app.services.chat.background import CANCELLED, launch
from app.services.chat.leases import Caller
from app.services.chat.requests import Resume, TurnRequest
from app.services.chat.turn import Claim, Turn
from app.services.sessions import Page

log = structlog.get_logger(__name__)


def _row(turn: Turn, *, status: str = "running") -> RunRow:
    """The run as its lease statement started it (no second read)."""
    lease = turn.lease
    return RunRow(
        id=lease.run_id,
        session_id=turn.session_id,
        source="runs",
        status=status,
        message=turn.text,
        multitask="reject",
        from_message_id=None,
        error=None,
        reply_message_id=None,
        cancel_requested=False,
        cancel_mode=None,
        interrupt=None,
        expires_at=None,
        last_seq=0,
        created_at=lease.created_at or datetime.now(UTC),
        started_at=lease.created_at,
        finished_at=None,
    )


async def start_run(
    rt: Runtime, caller: Caller, *, session_id: uuid.UUID, request: TurnRequest, multitask: str = "reject"
) -> RunRow:
    """Start the turn now in a task of this process (the same checks and refusals as a chat turn). While
    the session answers another run: `reject` refuses (409 thread_busy); `enqueue` queues the run;
    `interrupt` and `rollback` queue it and stop the current run, keeping what it finished or not."""
    request.validate(rt.settings)
    try:
        turn = await Turn.begin(
            rt, caller, session_id=session_id, request=request, source="runs", multitask=multitask
        )
    except ThreadBusyError:
        if multitask == "reject":
            raise
        return await dispatch.enqueue(rt, caller, session_id=session_id, request=request, multitask=multitask)
    launch(rt, turn)
    return _row(turn)


async def get_run(rt: Runtime, *, user_id: uuid.UUID, session_id: uuid.UUID, run_id: uuid.UUID) -> RunRow:
    async with rt.db.pool.connection() as conn:
        run = await runs_repo.get(conn, run_id=run_id, session_id=session_id, user_id=user_id)
    if run is None:
        raise NotFoundError("Run not found")
    return run


async def list_runs(
    rt: Runtime, *, user_id: uuid.UUID, session_id: uuid.UUID, limit: int, offset: int
) -> Page[RunRow]:
    async with rt.db.pool.connection() as conn:
        found = await runs_repo.list_for_session(
            conn, session_id=session_id, user_id=user_id, limit=limit, offset=offset
        )
    if found is None:
        raise NotFoundError("Session not found")
    return Page(found[0], found[1], limit, offset)


async def cancel_run(
    rt: Runtime, *, user_id: uuid.UUID, session_id: uuid.UUID, run_id: uuid.UUID
) -> tuple[RunRow, bool]:
    """Stop a run; (the run, whether anything was asked of it). A queued run ends at once; a waiting
    one is dropped; a running one stops at once on this process, or within RUN_CANCEL_POLL_SECONDS on
    another (watch_cancels). A finished run is returned unchanged."""
    async with rt.db.pool.connection() as conn:
        run = await runs_repo.request_cancel(
            conn, run_id=run_id, session_id=session_id, user_id=user_id, event=CANCELLED
        )
    if run is None:
        current = await get_run(rt, user_id=user_id, session_id=session_id, run_id=run_id)
        if current.status != "interrupted" or not await approvals.drop(rt, run_id, because="cancelled"):
            return current, False
        return await get_run(rt, user_id=user_id, session_id=session_id, run_id=run_id), True
    if (mine := rt.runs.get(run_id)) is not None:
        mine.stop("cancel")
    return run, True


async def resume_run(
    rt: Runtime, caller: Caller, *, session_id: uuid.UUID, run_id: uuid.UUID, answer: Resume
) -> RunRow:
    """Answer the tool call a run waits on and go on from its checkpoint, in a task of this process."""
    run = await get_run(rt, user_id=caller.user_id, session_id=session_id, run_id=run_id)
    if run.status != "interrupted" or run.interrupt is None:
        raise RunNotWaitingError()
    approvals.check_answer(rt, answer, run.interrupt)
    turn = await Turn.begin(
        rt,
        caller,
        session_id=session_id,
        request=TurnRequest(run.message, from_turn=run.from_message_id),
        source="runs",
        claim=Claim(run_id, "interrupted"),
        resume=answer,
    )
    launch(rt, turn, first_seq=run.last_seq)
    return replace(run, status="running", interrupt=None, expires_at=None)
