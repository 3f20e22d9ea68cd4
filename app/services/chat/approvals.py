"""Tool calls that wait for a person: pausing a run, checking an answer, dropping unanswered ones."""

import uuid
from datetime import datetime
from typing import Any

import anyio
import structlog
from pydantic import ValidationError

from app.errors import ValidationFailedError
from app.repositories import approvals as approvals_repo
from app.repositories.runs import NewEvent
from app.runtime import Runtime
from app.services.chat import leases, run_hub
from app.services.chat.requests import Resume

log = structlog.get_logger(__name__)

# Why a waiting run was dropped: its row's error, and the line the transcript keeps.
DROPPED = {
    "new_message": ("approval_dropped", "A new message was sent before anyone decided, so it was not run."),
    "expired": ("approval_expired", "Nobody decided in time, so it was not run."),
    "cancelled": ("approval_dropped", "The run was cancelled, so it was not run."),
}


async def pause(
    rt: Runtime,
    lease: leases.Lease,
    *,
    text: str,
    waiting: dict[str, Any],
    checkpoint_id: str,
    expires_at: datetime,
    events: list[NewEvent],
) -> None:
    """Release the lease but keep the run's checkpoint, and leave the run waiting."""
    with anyio.CancelScope(shield=True):
        async with rt.db.pool.connection() as conn:
            paused = await approvals_repo.pause(
                conn,
                run_id=lease.run_id,
                thread_id=lease.thread_id,
                text=text,
                interrupt=waiting,
                checkpoint_id=checkpoint_id,
                expires_at=expires_at,
                events=events,
            )
    leases.settle(rt, lease)
    run_hub.notify(rt, lease.run_id, events[-1][0] if events else 0, finished=True)
    if not paused:
        log.warning("run.pause_lost_lease", run_id=str(lease.run_id))


async def drop(rt: Runtime, run_id: uuid.UUID, *, because: str) -> bool:
    """End a waiting run as cancelled, its transcript saying why; False if it was not waiting."""
    error, reason = DROPPED[because]
    async with rt.db.pool.connection() as conn:
        return await approvals_repo.drop(
            conn, run_id, error=error, reason=reason, event={"error": error, "detail": reason}
        )


def check_answer(rt: Runtime, answer: Resume, waiting: dict[str, Any]) -> None:
    """An edit names new arguments for the one call waiting, valid for its tool."""
    calls = waiting.get("tool_calls") or []
    if answer.decision != "edit":
        if answer.args is not None:
            raise ValidationFailedError("args go with decision edit", loc=("body", "args"))
        return
    if answer.args is None:
        raise ValidationFailedError("decision edit needs args", loc=("body", "args"))
    if len(calls) != 1:
        raise ValidationFailedError("only a single waiting tool call can be edited", loc=("body", "decision"))
    tool = rt.tools.get(calls[0]["name"])
    if tool is None:
        return
    try:
        tool.tool_call_schema.model_validate(answer.args)  # type: ignore[union-attr]
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise ValidationFailedError(f"args.{where}: {problem['msg']}", loc=("body", "args")) from exc


async def expire(rt: Runtime) -> int:
    """Drop the runs nobody answered in time; how many."""
    async with rt.db.pool.connection() as conn:
        overdue = await approvals_repo.expired(conn)
    dropped = 0
    for run_id in overdue:
        dropped += await drop(rt, run_id, because="expired")
    return dropped
