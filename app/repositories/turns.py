"""SQL that ends a chat turn: the transcript rows and the lease release in one round trip."""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.models import Message, Thread

_message: Table = Message.__table__  # type: ignore[attr-defined]
_thread: Table = Thread.__table__  # type: ignore[attr-defined]


async def record_turn(
    conn: AsyncSession | AsyncConnection,
    *,
    thread_id: uuid.UUID,
    run_id: uuid.UUID,
    checkpoint_id: str | None,
    messages: Sequence[dict[str, Any]],
) -> int | None:
    """Append the messages, release the lease and move the checkpoint pointer.

    Returns the last new message id, or None when this run no longer holds the lease (the session
    was deleted or cleared meanwhile); the caller then rolls back, so nothing is appended.
    """
    inserted = insert(_message).values([{**m, "thread_id": thread_id} for m in messages])
    new_ids = inserted.returning(_message.c.id).cte("new_ids")
    values: dict[str, Any] = {"run_id": None, "run_started_at": None}
    if checkpoint_id is not None:
        values["checkpoint_id"] = checkpoint_id
    result = await conn.execute(
        update(_thread)
        .where(_thread.c.id == thread_id, _thread.c.run_id == run_id)
        .values(**values)
        .returning(select(func.max(new_ids.c.id)).scalar_subquery())
    )
    row = result.one_or_none()
    return None if row is None else int(row[0])
