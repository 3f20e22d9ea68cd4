"""Runs that outlive their request: a turn started now, executed by a task of this process, its
events written to `run_event` for any process to stream, cancellable from any process."""

import asyncio
import contextlib
import uuid
from dataclasses import asdict
from typing import Any

import anyio
import structlog

from app.errors import AppError, NotFoundError
from app.repositories import runs as runs_repo
from app.repositories.runs import NewEvent, RunRow
from app.runtime import BackgroundRun, Runtime
from app.services import chat as chat_service
from app.services import leases, run_hub
from app.services.sessions import Page
from app.services.tokens import TokenClaims
from app.services.turn_events import Restart, Token, ToolEvent, TurnResult

log = structlog.get_logger(__name__)

FLUSH_EVERY = 0.05  # seconds: a run's events reach the database in batches at most this far apart
CANCELLED = {"error": "run_cancelled", "detail": "The run was cancelled."}


def done_payload(result: TurnResult) -> dict[str, Any]:
    """The `done` event's data: the same as the chat stream's."""
    return {
        "message_id": result.message_id,
        "reply": result.reply,
        "tool_calls": [asdict(c) for c in result.tool_calls],
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
    }


async def start_run(rt: Runtime, token: TokenClaims, *, session_id: uuid.UUID, text: str) -> RunRow:
    """Take the lease now (the same checks and refusals as a chat turn), record the run and start it."""
    chat_service.validate_message(text, rt.settings)
    lease = await chat_service.begin_turn(rt, token, session_id=session_id)
    try:
        async with rt.db.pool.connection() as conn:
            run = await runs_repo.insert(
                conn, run_id=lease.run_id, session_id=session_id, user_id=token.user_id, message=text
            )
    except BaseException:
        await leases.abandon(rt, lease)
        raise
    scope = anyio.CancelScope()
    task = asyncio.create_task(_execute(rt, lease, scope, session_id=session_id, text=text))
    rt.background_runs[run.id] = BackgroundRun(task, scope)
    task.add_done_callback(lambda _: rt.background_runs.pop(run.id, None))
    return run


class _EventLog:
    """A run's events, numbered from 1 and written in batches by one statement each."""

    def __init__(self, rt: Runtime, run_id: uuid.UUID) -> None:
        self.rt, self.run_id = rt, run_id
        self.seq = 0
        self.pending: list[NewEvent] = []
        self.wake = asyncio.Event()
        self.lock = asyncio.Lock()

    def add(self, event: str, data: dict[str, Any]) -> None:
        self.seq += 1
        self.pending.append((self.seq, event, data))
        self.wake.set()

    async def flush(self) -> None:
        async with self.lock:
            batch, self.pending = self.pending, []
            if not batch:
                return
            try:
                async with self.rt.db.pool.connection() as conn:
                    await runs_repo.append(conn, self.run_id, batch)
                run_hub.notify(self.rt, self.run_id, batch[-1][0])
            except Exception as exc:  # boundary: kept for the next batch, or the final statement
                self.pending = batch + self.pending
                log.warning("run.events_failed", run_id=str(self.run_id), error_type=type(exc).__name__)

    async def keep_flushing(self) -> None:
        while True:
            await self.wake.wait()
            await asyncio.sleep(FLUSH_EVERY)
            self.wake.clear()
            await self.flush()

    async def finish(self, *, status: str, error: str | None, reply_message_id: int | None) -> None:
        async with self.lock:
            batch, self.pending = self.pending, []
            async with self.rt.db.pool.connection() as conn:
                await runs_repo.finish(
                    conn,
                    self.run_id,
                    status=status,
                    error=error,
                    reply_message_id=reply_message_id,
                    events=batch,
                )
            run_hub.notify(self.rt, self.run_id, self.seq, finished=True)


async def _execute(
    rt: Runtime, lease: leases.Lease, scope: anyio.CancelScope, *, session_id: uuid.UUID, text: str
) -> None:
    events = _EventLog(rt, lease.run_id)
    flusher = asyncio.create_task(events.keep_flushing())
    status, error, reply_id = "error", None, None
    try:
        with scope:
            async with rt.db.pool.connection() as conn:
                await runs_repo.start(conn, lease.run_id)
            turn = chat_service.run_turn(
                rt, user_id=lease.user_id, session_id=session_id, text=text, lease=lease, stream=True
            )
            try:
                async for event in turn:
                    if isinstance(event, Token):
                        events.add("token", {"content": event.content})
                    elif isinstance(event, ToolEvent):
                        events.add("tool", event.call.as_json())
                    elif isinstance(event, Restart):
                        events.add("reset", {"detail": "The model was retried; discard the partial reply."})
                    else:
                        events.add("done", done_payload(event))
                        status, reply_id = "success", event.message_id
            finally:
                await turn.aclose()
        if scope.cancelled_caught and status != "success":
            status, error = "cancelled", None
            events.add("error", CANCELLED)
    except AppError as exc:
        status, error = "error", exc.error
        events.add("error", {"error": exc.error, "detail": exc.detail})
    except asyncio.CancelledError:
        # The task itself was cancelled (the last resort at shutdown): its outcome is its row.
        if status != "success":
            status, error = "cancelled", None
            events.add("error", CANCELLED)
    except Exception:  # boundary: a background run must end with a status
        log.exception("run.failed", run_id=str(lease.run_id))
        status, error = "error", "agent_error"
        events.add("error", {"error": "agent_error", "detail": "The run failed."})
    finally:
        async with events.lock:  # never cut a batch mid-statement: its events would be lost
            flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        with anyio.CancelScope(shield=True):
            await leases.abandon(rt, lease)  # nothing once the turn completed: it released the lease
            try:
                await events.finish(status=status, error=error, reply_message_id=reply_id)
            except Exception as exc:  # boundary: the sweeper marks a run left unfinished
                log.warning("run.finish_failed", run_id=str(lease.run_id), error_type=type(exc).__name__)
    log.info("run.finished", run_id=str(lease.run_id), status=status, error=error)


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
    """Ask a pending or running run to stop; (the run, whether a cancel was requested). A finished run
    is returned unchanged. This process stops its own run at once; another process within
    RUN_CANCEL_POLL_SECONDS (watch_cancels)."""
    async with rt.db.pool.connection() as conn:
        run = await runs_repo.request_cancel(conn, run_id=run_id, session_id=session_id, user_id=user_id)
    if run is None:
        return await get_run(rt, user_id=user_id, session_id=session_id, run_id=run_id), False
    if (mine := rt.background_runs.get(run_id)) is not None:
        mine.scope.cancel()
    return run, True


async def watch_cancels(rt: Runtime) -> None:
    """Cancel this process's runs that another process was asked to cancel, until cancelled."""
    while True:
        await asyncio.sleep(rt.settings.run_cancel_poll_seconds)
        if not rt.background_runs:
            continue
        try:
            async with rt.db.pool.connection() as conn:
                cancelled = await runs_repo.cancelled_among(conn, list(rt.background_runs))
        except Exception as exc:  # boundary: an outage must not stop the watch once it is over
            log.warning("run.cancel_watch_failed", error_type=type(exc).__name__)
            continue
        for run_id in cancelled:
            if (mine := rt.background_runs.get(run_id)) is not None:
                mine.scope.cancel()


RUN_LOST_DETAIL = "The process running it stopped."


async def mark_lost(rt: Runtime) -> int:
    """End as `run_lost` the runs whose process stopped renewing their lease; how many."""
    async with rt.db.pool.connection() as conn:
        lost = await runs_repo.expired(conn)
        if not lost:
            return 0
        return await runs_repo.mark_orphans(conn, lost, detail=RUN_LOST_DETAIL)


async def watch_lost(rt: Runtime) -> None:
    """Every RUN_LOST_POLL_SECONDS, one statement (on a partial index of unfinished runs): a run whose
    process died is marked lost at most the lease's TTL plus this interval after its last renewal."""
    while True:
        await asyncio.sleep(rt.settings.run_lost_poll_seconds)
        try:
            if lost := await mark_lost(rt):
                log.warning("run.lost", runs=lost)
        except Exception as exc:  # boundary: an outage must not stop the watch once it is over
            log.warning("run.lost_watch_failed", error_type=type(exc).__name__)


async def wait_for_tasks(rt: Runtime, *, within: float) -> None:
    """At shutdown, after the turns were cut: let each run write its final status, then cancel the rest."""
    tasks = [run.task for run in rt.background_runs.values()]
    if not tasks:
        return
    _, left = await asyncio.wait(tasks, timeout=within)
    for task in left:
        task.cancel()
    if left:
        await asyncio.wait(left, timeout=within)
