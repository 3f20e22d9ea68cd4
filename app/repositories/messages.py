"""SQL for the readable transcript (the checkpoint only keeps a bounded window)."""

import uuid

from sqlalchemy import and_, delete, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.models import Feedback, Message


async def list_for_thread(
    session: AsyncSession, thread_id: uuid.UUID, *, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[tuple[Message, Feedback | None]], int]:
    """A page of the transcript, each message with `user_id`'s feedback on it (in the same query)."""
    rows = await session.execute(
        select(Message, Feedback)
        .outerjoin(Feedback, and_(col(Feedback.message_id) == Message.id, col(Feedback.user_id) == user_id))
        .where(Message.thread_id == thread_id)
        .order_by(col(Message.id))
        .limit(limit)
        .offset(offset)
    )
    total = await session.execute(select(func.count()).where(Message.thread_id == thread_id))
    return [(m, f) for m, f in rows], int(total.scalar_one())


async def page_after(
    session: AsyncSession, thread_id: uuid.UUID, *, after_id: int, limit: int
) -> list[Message]:
    """The thread's messages with ids above `after_id`, in order (a keyset page)."""
    rows = await session.execute(
        select(Message)
        .where(Message.thread_id == thread_id, col(Message.id) > after_id)
        .order_by(col(Message.id))
        .limit(limit)
    )
    return list(rows.scalars())


async def delete_for_thread(session: AsyncSession, thread_id: uuid.UUID) -> None:
    await session.execute(delete(Message).where(col(Message.thread_id) == thread_id))
