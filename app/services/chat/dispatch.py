"""Double texting: runs queued behind a session's current run, and the loop that starts them.

Every process (API and `python -m app.worker`) runs the loop. A queued run starts by taking the lease
under its own id, with the same statement and checks as any turn, so whichever process wins starts it
and the others skip it. A process looks at once when one of its runs ended or it queued one, and
every RUN_DISPATCH_POLL_SECONDS for runs that ended elsewhere.
"""

import asyncio
import contextlib
import uuid
from dataclasses import dataclass

import structlog

from app.errors import (
    AppError,
    NotFoundError,
    QueueFullError,
    RunNotWaitingError,
    ThreadBusyError,
    TooManyStreamsError,
)
from app.repositories import run_queue
from app.repositories.runs import RunRow
from app.runtime import Runtime
from app.services.chat.background import launch
from app.services.chat.leases import Caller
from app.services.chat.requests import TurnRequest
from app.services.chat.turn import Claim, Turn

log = structlog.get_logger(__name__)

BATCH = 20  # queued runs looked at per pass


@dataclass(frozen=True)
class QueuedCaller:
    user_id: uuid.UUID
    login_id: uuid.UUID


async def enqueue(
    rt: Runtime, caller: Caller, *, session_id: uuid.UUID, request: TurnRequest, multitask: str
) -> RunRow:
    """Queue the run; with `interrupt` or `rollback` the session's running run is asked to stop in the
    same statement, and stopped at once if it runs here."""
    async with rt.db.pool.connection() as conn:
        found = await run_queue.enqueue(
            conn,
            run_id=uuid.uuid4(),
            session_id=session_id,
            user_id=caller.user_id,
            login_id=caller.login_id,
            message=request.text,
            multitask=multitask,
            from_message_id=request.from_turn,
            max_queued=rt.settings.run_queue_max,
        )
    if not found.owned:
        raise NotFoundError("Session not found")
    if found.run is None:
        raise QueueFullError(rt.settings.run_queue_max)
    for run_id in found.stopped:
        if (mine := rt.runs.get(run_id)) is not None:
            mine.stop(multitask)
    rt.dispatch_wake.set()  # the current run may have ended between the lease and the queue
    return found.run


async def dispatch(rt: Runtime) -> int:
    """Start the queued runs whose session is free; how many started."""
    if rt.draining:
        return 0
    async with rt.db.pool.connection() as conn:
        queued = await run_queue.next_queued(conn, limit=BATCH)
    started = 0
    for row in queued:
        if row.login_id is None:
            continue
        try:
            turn = await Turn.begin(
                rt,
                QueuedCaller(row.user_id, row.login_id),
                session_id=row.session_id,
                request=TurnRequest(row.message, from_turn=row.from_message_id),
                source="runs",
                multitask=row.multitask,
                claim=Claim(row.id, "pending"),
            )
        except (ThreadBusyError, TooManyStreamsError, RunNotWaitingError):
            continue  # another process took it, or it waits for room
        except AppError as exc:  # this run cannot start (quota, disabled user, revoked login, ...)
            async with rt.db.pool.connection() as conn:
                await run_queue.fail(conn, row.id, error=exc.error, detail=exc.detail)
            continue
        launch(rt, turn)
        started += 1
    return started


async def keep_dispatching(rt: Runtime) -> None:
    """Until cancelled: start queued runs when woken, and every RUN_DISPATCH_POLL_SECONDS."""
    while True:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(rt.settings.run_dispatch_poll_seconds):
                await rt.dispatch_wake.wait()
        rt.dispatch_wake.clear()
        try:
            await dispatch(rt)
        except Exception as exc:  # boundary: an outage must not stop the loop once it is over
            log.warning("run.dispatch_failed", error_type=type(exc).__name__)
