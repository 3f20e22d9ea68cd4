"""Taking, completing and abandoning a thread's run lease (one run at a time per thread).

The lease lives in PostgreSQL, so it holds across workers and replicas. No connection is held
while the model thinks: each step is a short statement or transaction of its own.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import structlog
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import (
    NotFoundError,
    QuotaExceededError,
    ThreadBusyError,
    TooManyStreamsError,
    UnauthorizedError,
)
from app.models import AuthSession
from app.repositories import checkpoints as checkpoints_repo
from app.repositories import sessions as sessions_repo
from app.repositories import threads as threads_repo
from app.repositories import turns as turns_repo
from app.repositories import usage as usage_repo
from app.repositories import users as users_repo
from app.repositories.turns import TurnLimits
from app.services import quotas
from app.services.tokens import TokenClaims
from app.services.turn_events import TurnResult

log = structlog.get_logger(__name__)


@dataclass
class Lease:
    thread_id: uuid.UUID
    user_id: uuid.UUID
    run_id: uuid.UUID
    checkpoint_id: str | None  # the last completed turn's checkpoint: where this run starts
    settled: bool = False  # completed or abandoned by this process: nothing left to release


async def take(
    pool: AsyncConnectionPool,
    db: async_sessionmaker[AsyncSession],
    *,
    token: TokenClaims,
    session_id: uuid.UUID,
    stale_after: timedelta,
    limits: TurnLimits,
) -> Lease:
    """Take the lease; the same statement checks the user, the token, ownership, quotas and the
    concurrency limits (turns._TAKE_LEASE)."""
    run_id = uuid.uuid4()
    now = datetime.now(UTC)
    async with pool.connection() as conn:
        taken = await turns_repo.take_lease(
            conn,
            session_id=session_id,
            user_id=token.user_id,
            login_id=token.login_id,
            run_id=run_id,
            stale_after=stale_after,
            limits=limits,
            day=now.date(),
        )
    if taken is not None:
        return Lease(taken.thread_id, token.user_id, run_id, taken.checkpoint_id)
    await _refusal(db, token, session_id=session_id, stale_after=stale_after, limits=limits, now=now)
    raise ThreadBusyError()


async def _refusal(
    db: async_sessionmaker[AsyncSession],
    token: TokenClaims,
    *,
    session_id: uuid.UUID,
    stale_after: timedelta,
    limits: TurnLimits,
    now: datetime,
) -> None:
    """Raise the error for whichever check refused the lease; return when only the thread was busy."""
    async with db() as session:
        user = await users_repo.get_by_id(session, token.user_id)
        if user is None or not user.is_active:
            raise UnauthorizedError("Invalid token")
        login = await session.get(AuthSession, token.login_id)
        if login is None or login.user_id != user.id:
            raise UnauthorizedError("Token has been revoked")
        if await sessions_repo.get_owned(session, session_id=session_id, user_id=user.id) is None:
            raise NotFoundError("Session not found")
        used = await usage_repo.on_day(session, user.id, now.date())
        quota_in_force = quotas.in_force(user, messages=limits.message_quota, tokens=limits.token_quota)
        reset = quotas.next_reset(now)
        for kind, spent, quota in [
            ("message", used.messages, quota_in_force.messages),
            ("token", used.tokens, quota_in_force.tokens),
        ]:
            if quota is not None and spent >= quota:
                raise QuotaExceededError(
                    f"Daily {kind} quota of {quota} reached; it resets at {reset.isoformat()}.",
                    retry_after=(reset - now).total_seconds(),
                )
        if (
            await threads_repo.count_running(session, stale_after=stale_after, user_id=user.id)
            >= limits.per_user
        ):
            raise TooManyStreamsError(
                f"At most {limits.per_user} replies can be in progress at once; wait for one to finish.",
                retry_after=1,
            )
        if await threads_repo.count_running(session, stale_after=stale_after) >= limits.total:
            raise TooManyStreamsError(
                "The service is answering as many messages as it can; retry shortly.", retry_after=1
            )


async def complete(
    pool: AsyncConnectionPool, lease: Lease, *, text: str, result: TurnResult, checkpoint_id: str | None
) -> None:
    """Store the turn and release the lease in one statement; NotFoundError if the lease was lost."""
    with anyio.CancelScope(shield=True):  # the reply exists: finish storing it even if the client left
        async with pool.connection() as conn:
            message_id = await turns_repo.record_turn(
                conn,
                thread_id=lease.thread_id,
                user_id=lease.user_id,
                run_id=lease.run_id,
                checkpoint_id=checkpoint_id,
                user_text=text,
                reply=result.reply,
                tool_calls=[c.as_json() for c in result.tool_calls] or None,
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
                now=datetime.now(UTC),
            )
    lease.settled = True
    if message_id is None:  # the session was deleted or cleared meanwhile
        raise NotFoundError("Session not found")
    result.message_id = message_id


async def abandon(db: async_sessionmaker[AsyncSession], lease: Lease) -> None:
    """Release the lease after a failed or cancelled run and drop what that run wrote.

    Idempotent, and only acts while this run still holds the lease: a run whose lease went stale
    and was taken over must not delete the new owner's checkpoints.
    """
    if lease.settled:
        return
    lease.settled = True
    with anyio.CancelScope(shield=True):  # runs while the request is being cancelled
        try:
            async with db() as session, session.begin():
                if await threads_repo.release_lease(session, thread_id=lease.thread_id, run_id=lease.run_id):
                    await checkpoints_repo.delete_newer_than(session, lease.thread_id, lease.checkpoint_id)
        except Exception:
            log.exception("chat.release_failed", thread_id=str(lease.thread_id))
