"""Taking, renewing, completing and abandoning a thread's run lease (rule: app/repositories/leases.py).

No connection is held while the model thinks: each step is a short statement of its own, and one
statement per process renews every lease it holds, every third of the TTL (not per token, not per turn).
"""

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import anyio
import structlog
from langchain_core.messages import BaseMessage

from app.db.outage import is_outage
from app.errors import (
    AppError,
    NotFoundError,
    QuotaExceededError,
    RunNotWaitingError,
    ShuttingDownError,
    ThreadBusyError,
    TooManyStreamsError,
    UnauthorizedError,
)
from app.observability import metrics
from app.repositories import checkpoints as checkpoints_repo
from app.repositories import leases as leases_repo
from app.repositories import runs as runs_repo
from app.repositories import turns as turns_repo
from app.repositories.leases import Admission, RunSpec
from app.repositories.turns import LastTurn
from app.runtime import RunHandle, Runtime
from app.services import quotas, sessions
from app.services.chat.events import TurnResult

log = structlog.get_logger(__name__)


class Caller(Protocol):
    """Who starts a turn: a token's claims, or a queued run's row."""

    @property
    def user_id(self) -> uuid.UUID: ...

    @property
    def login_id(self) -> uuid.UUID: ...


@dataclass
class Lease:
    thread_id: uuid.UUID
    user_id: uuid.UUID
    run_id: uuid.UUID
    checkpoint_id: str | None  # the last completed turn's checkpoint: kept if the run fails
    handle: RunHandle
    source: str = "chat"  # chat: the run's row ends with the turn; runs: with its event log
    created_at: datetime | None = None  # the run's
    resume_from: str | None = None  # a resumed run's checkpoint, where it waited for approval
    waiting_run_id: uuid.UUID | None = None  # another run of the session waiting for approval
    name_is_default: bool = False  # the session's placeholder name is to be replaced by this turn's
    memory_enabled: bool = True  # the session's switch: off, the turn neither recalls nor learns
    settled: bool = False  # completed or abandoned by this process: nothing left to release
    # Set when the run forks (regenerate, edit, from_turn): the turn it replaces, and the messages to
    # put first in its input when it cannot start from the state before that turn (turn.py).
    replacing: LastTurn | None = None
    lead_messages: tuple[BaseMessage, ...] = ()

    @property
    def start_checkpoint_id(self) -> str | None:
        """Where the run starts: the last completed turn's checkpoint, or the one before that turn
        when the run replaces it and that checkpoint was kept, or where a resumed run waited."""
        if self.resume_from is not None:
            return self.resume_from
        if self.replacing is not None and self.replacing.parent_kept:
            return self.replacing.parent_checkpoint_id
        return self.checkpoint_id

    @property
    def keep_checkpoint_id(self) -> str | None:
        """The checkpoint kept beside the one this run saves: the state before its turn, so that the
        turn can be replaced; none when the run started from the replaced turn's checkpoint."""
        if self.replacing is not None and not self.replacing.parent_kept:
            return None
        if self.resume_from is not None:
            return self.checkpoint_id
        return self.start_checkpoint_id


async def take(rt: Runtime, caller: Caller, *, session_id: uuid.UUID, run: RunSpec) -> Lease:
    """Take the lease and start the run's row; the same statement checks the user, the token,
    ownership, quotas and limits. RunNotWaitingError when a claimed run was no longer in its status."""
    if rt.draining:
        raise ShuttingDownError()
    now = datetime.now(UTC)
    async with rt.db.pool.connection() as conn:
        found = await leases_repo.take(
            conn,
            session_id=session_id,
            user_id=caller.user_id,
            login_id=caller.login_id,
            run=run,
            ttl=rt.lease_ttl,
            limits=rt.limits,
            day=now.date(),
        )
    if found is None or not found.taken or found.thread_id is None:
        raise _refusal(found, rt, now=now)
    handle = RunHandle(found.thread_id)
    rt.runs[run.run_id] = handle
    lease = Lease(
        found.thread_id,
        caller.user_id,
        run.run_id,
        found.checkpoint_id,
        handle,
        source=run.source,
        created_at=found.run_created_at,
        resume_from=found.resume_from,
        waiting_run_id=found.waiting_run_id,
        name_is_default=found.name_is_default,
        memory_enabled=found.memory_enabled,
    )
    if not found.run_started:  # a claimed run was cancelled or expired meanwhile
        await abandon(rt, lease)
        raise RunNotWaitingError()
    return lease


def _refusal(found: Admission | None, rt: Runtime, *, now: datetime) -> AppError:
    """The error for whichever check refused the lease, in the order a user would fix them."""
    if found is None or not found.active:
        return UnauthorizedError("Invalid token")
    if not found.login_live:
        return UnauthorizedError("Token has been revoked")
    if found.thread_id is None:
        return NotFoundError("Session not found")
    reset = quotas.next_reset(now)
    for kind, spent, quota in [
        ("message", found.messages_used, found.message_quota),
        ("token", found.tokens_used, found.token_quota),
    ]:
        if quota is not None and spent >= quota:
            return QuotaExceededError(
                f"Daily {kind} quota of {quota} reached; it resets at {reset.isoformat()}.",
                retry_after=(reset - now).total_seconds(),
            )
    if found.mine >= rt.limits.per_user:
        return TooManyStreamsError(
            f"At most {rt.limits.per_user} replies can be in progress at once; wait for one to finish.",
            retry_after=1,
        )
    if found.running >= rt.limits.total:
        return TooManyStreamsError(
            "The service is answering as many messages as it can; retry shortly.", retry_after=1
        )
    return ThreadBusyError()


async def complete(
    rt: Runtime,
    lease: Lease,
    *,
    text: str,
    result: TurnResult,
    checkpoint_id: str | None,
    trace_id: str | None = None,
    ended: tuple[str, str | None] = ("success", None),
) -> None:
    """Store the turn, queue its memory job, name a session still under its placeholder name and
    release the lease in one statement; NotFoundError if the lease was lost. A run replacing the last
    turn deletes that turn's transcript in the same statement. A chat route's run row ends as `ended`
    (status, error) there too."""
    replacing = lease.replacing
    # Regenerating sends the same message again: nothing new to learn from it.
    remember = (
        rt.memory is not None and lease.memory_enabled and (replacing is None or replacing.user_text != text)
    )
    with anyio.CancelScope(shield=True):  # the reply exists: finish storing it even if the client left
        async with rt.db.pool.connection() as conn:
            recorded = await turns_repo.record_turn(
                conn,
                thread_id=lease.thread_id,
                user_id=lease.user_id,
                run_id=lease.run_id,
                checkpoint_id=checkpoint_id,
                keep_checkpoint_id=lease.keep_checkpoint_id,
                replace_from_id=replacing.user_message_id if replacing else None,
                user_text=text,
                reply=result.reply,
                tool_calls=[c.as_json() for c in result.tool_calls] or None,
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
                now=datetime.now(UTC),
                remember=remember,
                max_jobs=rt.settings.memory_max_pending,
                auto_name=sessions.name_from_message(text) if lease.name_is_default else None,
                trace_id=trace_id,
                run_status=ended[0] if lease.source == "chat" else None,
                run_error=ended[1],
            )
    settle(rt, lease)
    if recorded.message_id is None:  # the session was deleted or cleared meanwhile
        raise NotFoundError("Session not found")
    if recorded.job_queued:
        rt.jobs_wake.set()
    elif remember:
        metrics.MEMORY_EXTRACTION_DROPPED.inc()
        log.warning("memory.extraction_dropped", reason="MEMORY_MAX_PENDING jobs are waiting")
    result.message_id = recorded.message_id


def settle(rt: Runtime, lease: Lease) -> None:
    lease.settled = True
    rt.runs.pop(lease.run_id, None)


async def abandon(rt: Runtime, lease: Lease, *, status: str = "error", error: str | None = None) -> None:
    """Release the lease after a failed or cancelled run and drop what that run wrote. A chat route's
    run row ends as `status` with `error` in the same transaction.

    Idempotent, and only acts while this run still holds the lease: a run whose lease expired and was
    taken over must not delete the new owner's checkpoints. If the database cannot be reached, the
    lease simply expires (it is no longer renewed) and the next turn forks from the last good checkpoint.
    """
    if lease.settled:
        return
    settle(rt, lease)
    with anyio.CancelScope(shield=True):  # runs while the request is being cancelled
        try:
            async with rt.db.sessions() as session, session.begin():
                if await leases_repo.release(session, thread_id=lease.thread_id, run_id=lease.run_id):
                    await checkpoints_repo.delete_newer_than(session, lease.thread_id, lease.checkpoint_id)
                if lease.source == "chat":
                    await runs_repo.end_chat_run(session, lease.run_id, status=status, error=error)
        except Exception as exc:  # boundary: the turn's own error is what the client sees
            if not is_outage(exc):
                log.exception("chat.release_failed", thread_id=str(lease.thread_id))
            else:
                log.warning(
                    "chat.release_failed", thread_id=str(lease.thread_id), error_type=type(exc).__name__
                )


async def keep_alive(rt: Runtime) -> None:
    """Renew this process's leases every third of the TTL until cancelled (at shutdown)."""
    interval = rt.renew_every
    while True:
        await asyncio.sleep(interval)
        run_ids = list(rt.runs)
        if not run_ids:
            continue
        try:
            async with rt.db.pool.connection() as conn:
                held = await leases_repo.renew(conn, run_ids, rt.lease_ttl)
        except Exception as exc:  # boundary: an outage must not stop renewing once it is over
            log.warning("lease.renew_failed", runs=len(run_ids), error_type=type(exc).__name__)
            continue
        # A run still here whose lease was not renewed lost it (an outage longer than the TTL): its
        # result will not be recorded, as another run may own the thread now.
        if lost := [r for r in run_ids if r in rt.runs and r not in held]:
            log.warning("lease.lost", runs=len(lost))
