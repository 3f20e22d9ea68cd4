"""SQL for the per-thread run lease and the last-good-checkpoint pointer.

The lease lives in the thread row, not in process memory, so one run per thread holds across
every worker and replica; it needs no connection held during the LLM call. A lease older than
`stale_after` belongs to a process that died and may be taken over. The per-turn statements live in
`turns.py`; these serve deleting and clearing sessions.
"""

import uuid
from datetime import timedelta

from sqlalchemy import ColumnElement, Table, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ChatSession, Thread

_thread: Table = Thread.__table__  # type: ignore[attr-defined]
_session: Table = ChatSession.__table__  # type: ignore[attr-defined]


def _free(stale_after: timedelta) -> ColumnElement[bool]:
    # The same rule is in turns._TAKE_LEASE (the per-turn statement); keep the two in step.
    return or_(_thread.c.run_id.is_(None), _thread.c.run_started_at < func.now() - stale_after)


async def acquire_lease(
    session: AsyncSession, *, thread_id: uuid.UUID, run_id: uuid.UUID, stale_after: timedelta
) -> bool:
    """Take the lease; False when another live run holds it."""
    result = await session.execute(
        update(_thread)
        .where(_thread.c.id == thread_id, _free(stale_after))
        .values(run_id=run_id, run_started_at=func.now())
        .returning(_thread.c.id)
    )
    return result.one_or_none() is not None


async def release_lease(session: AsyncSession, *, thread_id: uuid.UUID, run_id: uuid.UUID) -> bool:
    """Release the lease if `run_id` still holds it; True when it did (the row stays locked until commit)."""
    result = await session.execute(
        update(_thread)
        .where(and_(_thread.c.id == thread_id, _thread.c.run_id == run_id))
        .values(run_id=None, run_started_at=None)
        .returning(_thread.c.id)
    )
    return result.one_or_none() is not None


async def clear(session: AsyncSession, thread_id: uuid.UUID) -> None:
    """Forget the checkpoint pointer and any lease: the thread starts afresh."""
    await session.execute(
        update(_thread)
        .where(_thread.c.id == thread_id)
        .values(checkpoint_id=None, run_id=None, run_started_at=None)
    )


async def lease_all_for_user(
    session: AsyncSession, user_id: uuid.UUID, *, run_id: uuid.UUID, stale_after: timedelta
) -> list[uuid.UUID] | None:
    """Lease every thread of a user at once; their ids, or None when any of them is answering."""
    owned = select(_session.c.id).where(_session.c.user_id == user_id)
    all_ids = (await session.execute(select(_thread.c.id).where(_thread.c.session_id.in_(owned)))).scalars()
    thread_ids = list(all_ids)
    result = await session.execute(
        update(_thread)
        .where(_thread.c.id.in_(thread_ids), _free(stale_after))
        .values(run_id=run_id, run_started_at=func.now())
        .returning(_thread.c.id)
    )
    return thread_ids if len(result.all()) == len(thread_ids) else None


async def count_running(
    session: AsyncSession, *, stale_after: timedelta, user_id: uuid.UUID | None = None
) -> int:
    """Runs in progress (live leases), of one user or of everyone."""
    query = (
        select(func.count())
        .select_from(_thread)
        .where(_thread.c.run_id.is_not(None), _thread.c.run_started_at >= func.now() - stale_after)
    )
    if user_id is not None:
        owned = select(_session.c.id).where(_session.c.user_id == user_id)
        query = query.where(_thread.c.session_id.in_(owned))
    return int((await session.execute(query)).scalar_one())
