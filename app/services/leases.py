"""Taking, renewing, completing and abandoning a thread's run lease (rule: app/repositories/leases.py).

No connection is held while the model thinks: each step is a short statement of its own, and one
statement per process renews every lease it holds, every third of the TTL (not per token, not per turn).
"""

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
import structlog

from app.db.outage import is_outage
from app.errors import (
    AppError,
    NotFoundError,
    QuotaExceededError,
    ShuttingDownError,
    ThreadBusyError,
    TooManyStreamsError,
    UnauthorizedError,
)
from app.observability import metrics
from app.repositories import checkpoints as checkpoints_repo
from app.repositories import leases as leases_repo
from app.repositories import turns as turns_repo
from app.repositories.leases import Admission
from app.repositories.turns import LastTurn
from app.runtime import RunHandle, Runtime
from app.services import quotas, sessions
from app.services.tokens import TokenClaims
from app.services.turn_events import TurnResult

log = structlog.get_logger(__name__)


@dataclass
class Lease:
    thread_id: uuid.UUID
    user_id: uuid.UUID
    run_id: uuid.UUID
    checkpoint_id: str | None  # the last completed turn's checkpoint: kept if the run fails
    handle: RunHandle
    name_is_default: bool = False  # the session's placeholder name is to be replaced by this turn's
    memory_enabled: bool = True  # the session's switch: off, the turn neither recalls nor learns
    settled: bool = False  # completed or abandoned by this process: nothing left to release
    # Set when the run replaces the last completed turn (regenerate, edit): that turn, and the ids of
    # the graph messages to remove first when the run has to start from that turn's own checkpoint.
    replacing: LastTurn | None = None
    drop_message_ids: tuple[str, ...] = ()

    @property
    def start_checkpoint_id(self) -> str | None:
        """Where the run starts: the last completed turn's checkpoint, or the one before that turn
        when the run replaces it and that checkpoint was kept."""
        if self.replacing is not None and self.replacing.parent_kept:
            return self.replacing.parent_checkpoint_id
        return self.checkpoint_id

    @property
    def keep_checkpoint_id(self) -> str | None:
        """The checkpoint kept beside the one this run saves: the state before its turn, so that the
        turn can be replaced; none when the run started from the replaced turn's checkpoint."""
        if self.replacing is not None and not self.replacing.parent_kept:
            return None
        return self.start_checkpoint_id


async def take(rt: Runtime, token: TokenClaims, *, session_id: uuid.UUID) -> Lease:
    """Take the lease; the same statement checks the user, the token, ownership, quotas and limits."""
    if rt.draining:
        raise ShuttingDownError()
    run_id = uuid.uuid4()
    now = datetime.now(UTC)
    async with rt.db.pool.connection() as conn:
        found = await leases_repo.take(
            conn,
            session_id=session_id,
            user_id=token.user_id,
            login_id=token.login_id,
            run_id=run_id,
            ttl=rt.lease_ttl,
            limits=rt.limits,
            day=now.date(),
        )
    if found is None or not found.taken or found.thread_id is None:
        raise _refusal(found, rt, now=now)
    handle = RunHandle(found.thread_id)
    rt.runs[run_id] = handle
    return Lease(
        found.thread_id,
        token.user_id,
        run_id,
        found.checkpoint_id,
        handle,
        name_is_default=found.name_is_default,
        memory_enabled=found.memory_enabled,
    )


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


async def last_turn(rt: Runtime, lease: Lease) -> LastTurn | None:
    """The thread's last completed turn, read under the lease (only when a run replaces it)."""
    async with rt.db.pool.connection() as conn:
        return await turns_repo.last_turn(conn, thread_id=lease.thread_id, checkpoint_id=lease.checkpoint_id)


async def complete(
    rt: Runtime,
    lease: Lease,
    *,
    text: str,
    result: TurnResult,
    checkpoint_id: str | None,
    trace_id: str | None = None,
) -> None:
    """Store the turn, queue its memory job, name a session still under its placeholder name and
    release the lease in one statement; NotFoundError if the lease was lost. A run replacing the last
    turn deletes that turn's transcript in the same statement."""
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
            )
    _settle(rt, lease)
    if recorded.message_id is None:  # the session was deleted or cleared meanwhile
        raise NotFoundError("Session not found")
    if recorded.job_queued:
        rt.jobs_wake.set()
    elif remember:
        metrics.MEMORY_EXTRACTION_DROPPED.inc()
        log.warning("memory.extraction_dropped", reason="MEMORY_MAX_PENDING jobs are waiting")
    result.message_id = recorded.message_id


def _settle(rt: Runtime, lease: Lease) -> None:
    lease.settled = True
    rt.runs.pop(lease.run_id, None)


async def abandon(rt: Runtime, lease: Lease) -> None:
    """Release the lease after a failed or cancelled run and drop what that run wrote.

    Idempotent, and only acts while this run still holds the lease: a run whose lease expired and was
    taken over must not delete the new owner's checkpoints. If the database cannot be reached, the
    lease simply expires (it is no longer renewed) and the next turn forks from the last good checkpoint.
    """
    if lease.settled:
        return
    _settle(rt, lease)
    with anyio.CancelScope(shield=True):  # runs while the request is being cancelled
        try:
            async with rt.db.sessions() as session, session.begin():
                if await leases_repo.release(session, thread_id=lease.thread_id, run_id=lease.run_id):
                    await checkpoints_repo.delete_newer_than(session, lease.thread_id, lease.checkpoint_id)
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
