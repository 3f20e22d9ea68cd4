"""SQL for users."""

import uuid
from typing import Any

from psycopg import AsyncConnection as PgConnection
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.models import Role, User


async def get_by_id(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


_LOAD = """
SELECT id, email, hashed_password, is_active, role, tokens_valid_after, created_at FROM "user" WHERE id = %s
"""


async def load(conn: PgConnection[Any], user_id: uuid.UUID) -> User | None:
    """A detached User by id, on the autocommit psycopg pool: it runs on every authenticated request."""
    cur = await conn.execute(_LOAD, (user_id,))
    row = await cur.fetchone()
    return None if row is None else User.model_validate(row)


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


async def add(
    session: AsyncSession, *, email: str, hashed_password: str, role: str = Role.user.value
) -> User:
    user = User(email=email, hashed_password=hashed_password, role=role)
    session.add(user)
    await session.flush()
    return user


async def delete_by_id(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Delete the user; sessions, threads and messages go by ON DELETE CASCADE."""
    await session.execute(delete(User).where(col(User.id) == user_id))
