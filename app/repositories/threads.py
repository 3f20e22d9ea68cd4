"""SQL for the per-thread run lease and the last-good-checkpoint pointer.

The lease lives in the thread row, not in process memory, so one run per thread holds across
every worker and replica; it needs no connection held during the LLM call. A lease older than
`stale_after` belongs to a process that died and may be taken over. The per-turn statements live in
`turns.py`; these serve deleting and clearing sessions.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, Table, and_, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Thread

_thread: Table = Thread.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Lease:
    thread_id: uuid.UUID
    checkpoint_id: str | None


def _free(stale_after: timedelta) -> ColumnElement[bool]:
    return or_(_thread.c.run_id.is_(None), _thread.c.run_started_at < func.now() - stale_after)


async def acquire_lease(
    session: AsyncSession, *, thread_id: uuid.UUID, run_id: uuid.UUID, stale_after: timedelta
) -> Lease | None:
    """Take the lease, or return None when another live run holds it."""
    result = await session.execute(
        update(_thread)
        .where(_thread.c.id == thread_id, _free(stale_after))
        .values(run_id=run_id, run_started_at=func.now())
        .returning(_thread.c.id, _thread.c.checkpoint_id)
    )
    row = result.one_or_none()
    return None if row is None else Lease(row[0], row[1])


async def release_lease(
    session: AsyncSession, *, thread_id: uuid.UUID, run_id: uuid.UUID, checkpoint_id: str | None = None
) -> bool:
    """Release the lease; with `checkpoint_id`, also record the completed turn's checkpoint."""
    values: dict[str, object] = {"run_id": None, "run_started_at": None}
    if checkpoint_id is not None:
        values["checkpoint_id"] = checkpoint_id
    result = await session.execute(
        update(_thread)
        .where(and_(_thread.c.id == thread_id, _thread.c.run_id == run_id))
        .values(**values)
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
