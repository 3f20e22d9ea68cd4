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

from app.errors import NotFoundError, ThreadBusyError, UnauthorizedError
from app.repositories import checkpoints as checkpoints_repo
from app.repositories import sessions as sessions_repo
from app.repositories import threads as threads_repo
from app.repositories import turns as turns_repo
from app.repositories import users as users_repo
from app.services import auth as auth_rules
from app.services.turn_events import TurnResult

log = structlog.get_logger(__name__)


@dataclass
class Lease:
    thread_id: uuid.UUID
    run_id: uuid.UUID
    checkpoint_id: str | None  # the last completed turn's checkpoint: where this run starts
    settled: bool = False  # completed or abandoned by this process: nothing left to release


async def take(
    pool: AsyncConnectionPool,
    db: async_sessionmaker[AsyncSession],
    *,
    user_id: uuid.UUID,
    issued_at: datetime | None,
    session_id: uuid.UUID,
    stale_after: timedelta,
) -> Lease:
    """Take the lease; the same statement checks the user is active, has not revoked tokens issued
    at `issued_at`, and owns the session."""
    run_id = uuid.uuid4()
    async with pool.connection() as conn:
        taken = await turns_repo.take_lease(
            conn,
            session_id=session_id,
            user_id=user_id,
            issued_at=issued_at,
            run_id=run_id,
            stale_after=stale_after,
        )
    if taken is not None:
        return Lease(taken.thread_id, run_id, taken.checkpoint_id)
    async with db() as session:
        user = await users_repo.get_by_id(session, user_id)
        if user is None or not user.is_active:
            raise UnauthorizedError("Invalid token")
        if auth_rules.is_revoked(user, issued_at):
            raise UnauthorizedError("Token has been revoked")
        if await sessions_repo.get_owned(session, session_id=session_id, user_id=user_id) is None:
            raise NotFoundError("Session not found")
    raise ThreadBusyError()


async def complete(
    pool: AsyncConnectionPool, lease: Lease, *, text: str, result: TurnResult, checkpoint_id: str | None
) -> None:
    """Store the turn and release the lease in one statement; NotFoundError if the lease was lost."""
    with anyio.CancelScope(shield=True):  # the reply exists: finish storing it even if the client left
        async with pool.connection() as conn:
            message_id = await turns_repo.record_turn(
                conn,
                thread_id=lease.thread_id,
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
