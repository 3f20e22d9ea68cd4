"""SQL for chat sessions and their threads."""

import uuid
from datetime import datetime

from sqlalchemy import delete, func, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.models import ChatSession, Thread


async def add(
    session: AsyncSession, *, user_id: uuid.UUID, name: str, name_is_default: bool, memory_enabled: bool
) -> tuple[ChatSession, Thread]:
    chat = ChatSession(
        user_id=user_id, name=name, name_is_default=name_is_default, memory_enabled=memory_enabled
    )
    thread = Thread(session_id=chat.id)
    session.add(chat)
    await session.flush()
    session.add(thread)
    await session.flush()
    return chat, thread


async def list_for_user(
    session: AsyncSession, user_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[ChatSession], int]:
    rows = await session.execute(
        select(ChatSession)
        .where(ChatSession.user_id == user_id)
        .order_by(col(ChatSession.created_at).desc(), col(ChatSession.id).desc())
        .limit(limit)
        .offset(offset)
    )
    total = await session.execute(select(func.count()).where(ChatSession.user_id == user_id))
    return list(rows.scalars()), int(total.scalar_one())


async def page_with_threads(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[tuple[ChatSession, uuid.UUID]]:
    """The user's sessions with their thread ids, oldest first, after the (created_at, id) `after`:
    keyset pages that cost the same however far in they are."""
    query = (
        select(ChatSession, Thread.id)
        .join(Thread, col(Thread.session_id) == ChatSession.id)
        .where(ChatSession.user_id == user_id)
        .order_by(col(ChatSession.created_at), col(ChatSession.id))
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(col(ChatSession.created_at), col(ChatSession.id)) > tuple_(*after))
    rows = await session.execute(query)
    return [(row[0], row[1]) for row in rows.all()]


async def get_owned(
    session: AsyncSession, *, session_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[ChatSession, Thread] | None:
    result = await session.execute(
        select(ChatSession, Thread)
        .join(Thread, col(Thread.session_id) == ChatSession.id)
        .where(ChatSession.id == session_id, ChatSession.user_id == user_id)
    )
    row = result.one_or_none()
    return (row[0], row[1]) if row else None


async def update(
    session: AsyncSession, chat: ChatSession, *, name: str | None, memory_enabled: bool | None, now: datetime
) -> ChatSession:
    if name is not None:
        chat.name = name
        chat.name_is_default = False  # the user's choice: never renamed automatically again
    if memory_enabled is not None:
        chat.memory_enabled = memory_enabled
    chat.updated_at = now
    session.add(chat)
    await session.flush()
    return chat


async def delete_by_id(session: AsyncSession, session_id: uuid.UUID) -> None:
    await session.execute(delete(ChatSession).where(col(ChatSession.id) == session_id))
