"""Executing a run in a task of this process: its turn's events go to the run's log (`run_event`) in
batches, and its row ends with the last of them."""

import asyncio
import contextlib
import uuid
from dataclasses import asdict
from typing import Any

import anyio
import structlog

from app.errors import AppError, RunCancelledError
from app.repositories import runs as runs_repo
from app.repositories.runs import NewEvent
from app.runtime import BackgroundRun, Runtime
from app.services.chat import run_hub
from app.services.chat.events import Interrupted, Restart, Token, ToolEvent, TurnResult
from app.services.chat.turn import STOP_ERRORS, Turn

log = structlog.get_logger(__name__)

FLUSH_EVERY = 0.05  # seconds: a run's events reach the database in batches at most this far apart
CANCELLED = {"error": "run_cancelled", "detail": "The run was cancelled."}


def done_payload(run_id: uuid.UUID, result: TurnResult) -> dict[str, Any]:
    """The `done` event's data: the same as the chat stream's."""
    return {
        "run_id": str(run_id),
        "status": "success",
        "message_id": result.message_id,
        "reply": result.reply,
        "tool_calls": [asdict(c) for c in result.tool_calls],
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
    }


def launch(rt: Runtime, turn: Turn, *, first_seq: int = 0) -> None:
    """Run the turn in a task of this process, its events going to the run's log."""
    scope = anyio.CancelScope()
    task = asyncio.create_task(_execute(rt, turn, scope, first_seq=first_seq))
    rt.background_runs[turn.run_id] = BackgroundRun(task, scope)
    task.add_done_callback(lambda _: _ended(rt, turn.run_id))


def _ended(rt: Runtime, run_id: uuid.UUID) -> None:
    rt.background_runs.pop(run_id, None)
    rt.dispatch_wake.set()  # the session may have a queued run to start


class _EventLog:
    """A run's events, numbered on from the run's last and written in batches by one statement each."""

    def __init__(self, rt: Runtime, run_id: uuid.UUID, first_seq: int = 0) -> None:
        self.rt, self.run_id = rt, run_id
        self.seq = first_seq
        self.pending: list[NewEvent] = []
        self.wake = asyncio.Event()
        self.lock = asyncio.Lock()

    def add(self, event: str, data: dict[str, Any]) -> None:
        self.seq += 1
        self.pending.append((self.seq, event, data))
        self.wake.set()

    def take_pending(self) -> list[NewEvent]:
        batch, self.pending = self.pending, []
        return batch

    async def flush(self) -> None:
        async with self.lock:
            batch = self.take_pending()
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
            batch = self.take_pending()
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


async def _execute(rt: Runtime, turn: Turn, scope: anyio.CancelScope, *, first_seq: int) -> None:
    events = _EventLog(rt, turn.run_id, first_seq)
    turn.sink = events
    flusher = asyncio.create_task(events.keep_flushing())
    status, error, reply_id = "error", None, None
    try:
        with scope:
            stream = turn.events(stream=True)
            try:
                async for event in stream:
                    if isinstance(event, Token):
                        events.add("token", {"content": event.content})
                    elif isinstance(event, ToolEvent):
                        events.add("tool", event.call.as_json())
                    elif isinstance(event, Restart):
                        events.add("reset", {"detail": "The model was retried; discard the partial reply."})
                    elif isinstance(event, Interrupted):
                        status = "interrupted"  # the pause statement wrote its status and last events
                    else:
                        events.add("done", done_payload(turn.run_id, event))
                        status, reply_id = "success", event.message_id
            finally:
                await stream.aclose()
        if scope.cancelled_caught and status != "success":
            status, error = "cancelled", None
            events.add("error", CANCELLED)
    except RunCancelledError:
        status, error = "cancelled", STOP_ERRORS.get(turn.lease.handle.stop_mode or "cancel")
        kept = turn.kept
        if kept is not None:
            reply_id = kept.message_id
            events.add("done", done_payload(turn.run_id, kept))
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
        log.exception("run.failed", run_id=str(turn.run_id))
        status, error = "error", "agent_error"
        events.add("error", {"error": "agent_error", "detail": "The run failed."})
    finally:
        async with events.lock:  # never cut a batch mid-statement: its events would be lost
            flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        with anyio.CancelScope(shield=True):
            await turn.abandon()  # nothing once the turn completed or paused: the lease is released
            if status != "interrupted":
                try:
                    await events.finish(status=status, error=error, reply_message_id=reply_id)
                except Exception as exc:  # boundary: the sweeper marks a run left unfinished
                    log.warning("run.finish_failed", run_id=str(turn.run_id), error_type=type(exc).__name__)
    log.info("run.finished", run_id=str(turn.run_id), status=status, error=error)
