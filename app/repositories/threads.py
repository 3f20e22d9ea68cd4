"""SQL for a thread's last-good-checkpoint pointer (its lease is in leases.py, turns in turns.py)."""

import uuid

from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Thread

_thread: Table = Thread.__table__  # type: ignore[attr-defined]


async def clear(session: AsyncSession, thread_id: uuid.UUID) -> None:
    """Forget the checkpoint pointer and any lease: the thread starts afresh."""
    await session.execute(
        update(_thread)
        .where(_thread.c.id == thread_id)
        .values(checkpoint_id=None, run_id=None, lease_expires_at=None)
    )
