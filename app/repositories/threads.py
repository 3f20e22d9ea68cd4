"""SQL for the per-thread run lease and the last-good-checkpoint pointer.

The lease lives in the thread row, not in process memory, so one run per thread holds across
every worker and replica; it needs no connection held during the LLM call. A lease older than
`stale_after` belongs to a process that died and may be taken over.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, func

from app.models import Thread


@dataclass(frozen=True)
class Lease:
    checkpoint_id: str | None


async def acquire_lease(
    session: AsyncSession, *, thread_id: uuid.UUID, run_id: uuid.UUID, stale_after: timedelta
) -> Lease | None:
    """Take the lease, or return None when another live run holds it."""
    result = await session.execute(
        update(Thread)
        .where(
            col(Thread.id) == thread_id,
            or_(
                col(Thread.run_id).is_(None),
                and_(col(Thread.run_started_at) < func.now() - stale_after),
            ),
        )
        .values(run_id=run_id, run_started_at=func.now())
        .returning(col(Thread.checkpoint_id))
    )
    row = result.one_or_none()
    return None if row is None else Lease(checkpoint_id=row[0])


async def release_lease(
    session: AsyncSession, *, thread_id: uuid.UUID, run_id: uuid.UUID, checkpoint_id: str | None = None
) -> bool:
    """Release the lease; with `checkpoint_id`, also record the completed turn's checkpoint."""
    values: dict[str, object] = {"run_id": None, "run_started_at": None}
    if checkpoint_id is not None:
        values["checkpoint_id"] = checkpoint_id
    result = await session.execute(
        update(Thread)
        .where(col(Thread.id) == thread_id, col(Thread.run_id) == run_id)
        .values(**values)
        .returning(col(Thread.id))
    )
    return result.one_or_none() is not None


async def clear(session: AsyncSession, thread_id: uuid.UUID) -> None:
    """Forget the checkpoint pointer and any lease: the thread starts afresh."""
    await session.execute(
        update(Thread)
        .where(col(Thread.id) == thread_id)
        .values(checkpoint_id=None, run_id=None, run_started_at=None)
    )
