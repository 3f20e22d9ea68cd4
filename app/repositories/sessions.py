"""SQL for chat sessions and their threads."""

import uuid
from datetime import datetime

from sqlalchemy import delete, func
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
